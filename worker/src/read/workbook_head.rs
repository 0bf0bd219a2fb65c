//! What validation reads of a workbook: sheet names, and per sheet its header and
//! whether it has enough rows. An xlsx/xlsm goes through the bounded reader
//! ([`XlsxHead`]), whose cost does not grow with the file; the other formats through
//! calamine ([`Workbook`]), which streams xlsb and loads xls and ods sheets whole.

use std::path::Path;

use super::kind::WorkbookFormat;
use super::workbook::{Container, container_of};
use super::xlsx_head::{SheetHead, XlsxHead};
use super::{ReadError, Workbook};

/// A workbook opened for validation.
#[derive(Debug)]
pub struct WorkbookHead {
    book: Book,
}

#[derive(Debug)]
enum Book {
    Bounded(Box<XlsxHead>),
    Calamine(Box<Workbook>),
}

impl WorkbookHead {
    /// Opens the workbook at `path` whose file name (for its format) is `name`. A zip
    /// named .xlsx, .xlsm or .xls is an xlsx (as [`Workbook::open_named`] judges it).
    pub fn open_named(path: &Path, name: &str) -> Result<Self, ReadError> {
        let zipped_xlsx = matches!(
            WorkbookFormat::from_name(name),
            Some(WorkbookFormat::Xlsx | WorkbookFormat::Xls)
        ) && matches!(container_of(path)?, Container::Zip);
        let book = if zipped_xlsx {
            Book::Bounded(Box::new(XlsxHead::open(path)?))
        } else {
            Book::Calamine(Box::new(Workbook::open_named(path, name)?))
        };
        Ok(Self { book })
    }

    /// The sheet names, in workbook order.
    pub fn sheet_names(&self) -> Vec<String> {
        match &self.book {
            Book::Bounded(book) => book.sheet_names(),
            Book::Calamine(book) => book.sheet_names(),
        }
    }

    /// The header of `sheet` found from the 0-based row `header_starts_at`, and its
    /// data rows counted up to `rows_wanted`.
    pub fn sheet_head(
        &mut self,
        sheet: &str,
        header_starts_at: u64,
        rows_wanted: usize,
    ) -> Result<SheetHead, ReadError> {
        match &mut self.book {
            Book::Bounded(book) => book.sheet_head(sheet, header_starts_at, rows_wanted),
            Book::Calamine(book) => {
                let mut table = book.table(sheet, header_starts_at)?;
                let header = table.header().to_vec();
                let rows = if rows_wanted == 0 { 0 } else { table.count_rows(rows_wanted)? };
                Ok(SheetHead { header, rows })
            }
        }
    }

    /// Whether the bounded xlsx reader reads it (tests and fuzzing compare the two).
    pub fn is_bounded(&self) -> bool {
        matches!(self.book, Book::Bounded(_))
    }
}
