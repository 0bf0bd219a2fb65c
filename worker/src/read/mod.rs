//! Readers of uploaded files: sheet names, headers and rows of workbooks (calamine),
//! CSV with delimiter sniffing (csv), and the first bytes of text files. Streamed, so
//! that validating a file costs what the rule needs, not what the file holds.
//!
//! - [`FileKind::from_name`]: what a file is, from its name.
//! - [`Workbook::open`] then [`Workbook::sheet_names`] and [`Workbook::table`];
//!   [`open_csv`] for a CSV file. A [`Table`] gives its header, then its data rows as
//!   an iterator of `Result<Vec<Cell>, ReadError>` that can stop at any time.
//! - [`text_prefix`]: the first bytes of a file as text.

mod cell;
mod csv_table;
mod error;
mod kind;
mod sniff;
mod table;
#[cfg(test)]
pub(crate) mod test_xlsx;
mod text;
mod workbook;
mod xlsx_guard;

pub use cell::Cell;
pub use csv_table::{csv_delimiter, open_csv};
pub use error::ReadError;
pub use kind::FileKind;
pub use sniff::sniff_delimiter;
pub use table::Table;
pub use text::{decode_text, text_prefix};
pub use workbook::{Workbook, sheet_names};
