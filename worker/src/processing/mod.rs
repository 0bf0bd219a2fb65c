//! Processing: turning the rows of an accepted file into MongoDB documents, as the
//! Uploader's `processing.tables` say. Pure: the readers (`crate::read`) produce the
//! header and the rows, this module maps them, the consumer writes the documents.
//!
//! Per table and file: [`select_table`] picks the sheet, [`TableMapper::new`] resolves
//! the columns against the header once, [`TableMapper::map_row`] turns each row into a
//! document, and a [`TableOutcome`] counts what happened for the processing history.

mod context;
mod convert;
mod dates;
mod file;
mod ids;
mod json;
mod mapper;
mod outcome;
mod row_document;
mod select;
mod step;

pub use context::FileContext;
pub use convert::{Converted, OwnedConversion, convert_cell, convert_owned_cell};
pub use dates::{excel_serial_to_datetime, parse_date_text};
pub use file::{Emit, FileReport, OutputLine, ProcessError, SkippedTable, process_file};
pub use ids::{document_id, keyed_document_id, row_key};
pub use json::{PlainJsonDocument, bson_to_json, document_to_json};
pub use mapper::{
    ConversionFailure, MappedDocument, MappedRow, MappingError, TableMapper, check_table_mapping,
};
pub use outcome::TableOutcome;
pub use row_document::RowDocument;
pub use select::{SelectionError, TableSource, select_table};
pub use step::{default_processor, default_processor_with, step_report};
