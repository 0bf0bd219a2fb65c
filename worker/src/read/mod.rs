//! Readers of uploaded files: sheet names, headers and rows of workbooks (calamine),
//! CSV with delimiter sniffing (csv), and the first bytes of text files. Streamed, so
//! that validating a file costs what the rule needs, not what the file holds.
//!
//! - [`FileKind::from_name`]: what a file is, from its name.
//! - [`Workbook::open`] then [`Workbook::sheet_names`] and [`Workbook::table`];
//!   [`open_csv`] for a CSV file. A [`Table`] gives its header, then its data rows as
//!   an iterator of `Result<Vec<Cell>, ReadError>` that can stop at any time.
//! - [`WorkbookHead`]: what validation reads of a workbook (sheet names, a sheet's
//!   header and row count up to a bound); xlsx through the bounded [`XlsxHead`].
//! - [`text_prefix`]: the first bytes of a file as text.

mod bounded;
mod calamine_errors;
mod cell;
mod csv_table;
mod error;
#[cfg(test)]
mod guard_tests;
mod kind;
pub(crate) mod limits;
mod ods_guard;
mod ole_guard;
mod sniff;
mod table;
#[cfg(test)]
pub(crate) mod test_xlsx;
mod text;
mod workbook;
mod workbook_head;
mod xls_guard;
mod xlsx_guard;
mod xlsx_head;

pub use cell::Cell;
pub use csv_table::{csv_delimiter, open_csv};
pub use error::ReadError;
pub use kind::FileKind;
pub use sniff::sniff_delimiter;
pub use table::Table;
pub use text::{decode_text, text_prefix};
pub use workbook::{Workbook, check_before_calamine, sheet_names};
pub use workbook_head::WorkbookHead;
pub use xlsx_head::{SheetHead, XlsxHead};
