//! Workbooks through calamine. xlsx/xlsm and xlsb sheets are streamed cell by cell;
//! calamine has no streaming reader for xls and ods, so their sheets are loaded whole
//! when a table is opened (an xls is at most 65,536 rows; ods uploads are rare).
//!
//! Opening an xlsx loads its shared-string table whole (calamine's design): a workbook
//! with many distinct strings costs memory in proportion to them even when one row is
//! read. That is why validation reads xlsx through `xlsx_head` instead; processing,
//! which reads every row, needs the strings anyway.
//!
//! calamine is not trusted with crafted files: the guards refuse what would make it
//! allocate without bound (`xlsx_guard`, `xls_guard`, `ods_guard`), and its panics are
//! caught (`calamine_errors`).
//!
//! The reader is chosen by the file's first bytes, not only its extension: an xlsx
//! saved as .xls opens, a csv renamed .xlsx gets a clear message instead of a zip error.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use calamine::{Data, DataRef, Ods, Reader, Xls, Xlsb, Xlsx, XlsxError};

use super::calamine_errors::{PasswordError, unpanicked};
use super::kind::WorkbookFormat;
use super::ods_guard::check_ods;
use super::table::{RowSource, Table};
use super::xls_guard::check_xls;
use super::xlsx_guard::{check_sheet, check_workbook};
use super::xlsx_head::parts::open_package;
use super::{Cell, ReadError};

type FileReader = BufReader<File>;

/// An open workbook.
pub struct Workbook {
    book: Book,
    format: WorkbookFormat,
    /// For the checks of a sheet before calamine streams it.
    path: PathBuf,
}

enum Book {
    Xlsx(Box<Xlsx<FileReader>>),
    Xlsb(Box<Xlsb<FileReader>>),
    Xls(Box<Xls<FileReader>>),
    Ods(Box<Ods<FileReader>>),
}

impl std::fmt::Debug for Workbook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workbook").field("format", &self.format.name()).finish_non_exhaustive()
    }
}

/// What the first bytes of a file say it is.
pub(crate) enum Container {
    Zip,
    /// Microsoft's compound file: an xls, or an encrypted xlsx/xlsb.
    Ole,
    Empty,
    Text,
    Unknown,
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

pub(crate) fn container_of(path: &Path) -> Result<Container, ReadError> {
    let mut head = Vec::with_capacity(512);
    File::open(path)?.take(512).read_to_end(&mut head)?;
    Ok(if head.starts_with(ZIP_MAGIC) {
        Container::Zip
    } else if head.starts_with(OLE_MAGIC) {
        Container::Ole
    } else if head.is_empty() {
        Container::Empty
    } else if std::str::from_utf8(&head).is_ok() || head.starts_with(b"\xFF\xFE") {
        Container::Text
    } else {
        Container::Unknown
    })
}

/// The guards [`Workbook`] runs, for the workbook and every sheet, for a caller that
/// hands the file to calamine itself (the anonymizer loads whole sheets).
pub fn check_before_calamine(path: &Path) -> Result<(), ReadError> {
    let workbook = Workbook::open(path)?;
    if matches!(workbook.book, Book::Xlsx(_)) {
        for sheet in workbook.sheet_names() {
            check_sheet(path, &sheet)?;
        }
    }
    Ok(())
}

impl Workbook {
    /// Opens the workbook at `path`; its format comes from the path's file name.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
        Self::open_named(path, &name)
    }

    /// Opens the workbook at `path` whose file name (for its format) is `name`, so that
    /// a file stored under another name keeps its upload's extension.
    pub fn open_named(path: &Path, name: &str) -> Result<Self, ReadError> {
        let format = WorkbookFormat::from_name(name)
            .ok_or_else(|| ReadError::NotAWorkbookName { name: name.to_owned() })?;
        let not_a_workbook =
            |detail: &str| ReadError::NotAWorkbook { format: format.name(), detail: detail.into() };
        let book = match container_of(path)? {
            Container::Zip => match format {
                WorkbookFormat::Xlsb => {
                    open_package(path)?;
                    open_book(path, format, Book::Xlsb)?
                }
                WorkbookFormat::Ods => {
                    check_ods(path)?;
                    open_book(path, format, Book::Ods)?
                }
                // An .xls that is a zip is an xlsx under the old extension.
                WorkbookFormat::Xlsx | WorkbookFormat::Xls => {
                    check_workbook(path)?;
                    open_book(path, format, Book::Xlsx)?
                }
            },
            Container::Ole => open_ole(path, format)?,
            Container::Empty => return Err(not_a_workbook("the file is empty")),
            Container::Text => {
                return Err(not_a_workbook("it holds text (a csv or text file renamed?)"));
            }
            Container::Unknown => return Err(not_a_workbook("it is not a zip or OLE container")),
        };
        Ok(Self { book, format, path: path.to_owned() })
    }

    /// The sheet names, in workbook order.
    pub fn sheet_names(&self) -> Vec<String> {
        match &self.book {
            Book::Xlsx(book) => book.sheet_names(),
            Book::Xlsb(book) => book.sheet_names(),
            Book::Xls(book) => book.sheet_names(),
            Book::Ods(book) => book.sheet_names(),
        }
    }

    /// The table of `sheet` whose header is the first non-blank row at or after the
    /// 0-based row `header_starts_at`. The table borrows the workbook: drop it before
    /// opening the next sheet.
    pub fn table(&mut self, sheet: &str, header_starts_at: u64) -> Result<Table<'_>, ReadError> {
        if !self.sheet_names().iter().any(|name| name == sheet) {
            return Err(ReadError::SheetNotFound { sheet: sheet.to_owned() });
        }
        let source = match &mut self.book {
            Book::Xlsx(book) => {
                check_sheet(&self.path, sheet)?;
                // Opening the reader parses `<dimension>`, which can panic in calamine.
                let mut cells =
                    unpanicked(|| book.worksheet_cells_reader(sheet).map_err(ReadError::workbook))?;
                RowSource::Streamed {
                    next_cell: Box::new(move || {
                        let cell = unpanicked(|| cells.next_cell().map_err(ReadError::workbook))?;
                        Ok(cell.map(placed))
                    }),
                    pending: None,
                    ended: false,
                }
            }
            Book::Xlsb(book) => {
                let mut cells =
                    unpanicked(|| book.worksheet_cells_reader(sheet).map_err(ReadError::workbook))?;
                RowSource::Streamed {
                    next_cell: Box::new(move || {
                        let cell = unpanicked(|| cells.next_cell().map_err(ReadError::workbook))?;
                        Ok(cell.map(placed))
                    }),
                    pending: None,
                    ended: false,
                }
            }
            Book::Xls(book) => {
                loaded(unpanicked(|| book.worksheet_range(sheet).map_err(ReadError::workbook))?)
            }
            Book::Ods(book) => {
                loaded(unpanicked(|| book.worksheet_range(sheet).map_err(ReadError::workbook))?)
            }
        };
        Table::start(source, header_starts_at)
    }

    /// The format calamine reads it as: "xlsx", "xlsb", "xls" or "ods".
    pub fn format_name(&self) -> &'static str {
        match self.book {
            Book::Xlsx(_) => "xlsx",
            Book::Xlsb(_) => "xlsb",
            Book::Xls(_) => "xls",
            Book::Ods(_) => "ods",
        }
    }
}

/// The sheet names of the workbook at `path`.
pub fn sheet_names(path: &Path) -> Result<Vec<String>, ReadError> {
    Ok(Workbook::open(path)?.sheet_names())
}

fn loaded(range: calamine::Range<Data>) -> RowSource<'static> {
    RowSource::Loaded { range, next: 0 }
}

fn placed(cell: calamine::Cell<DataRef<'_>>) -> (u32, u32, Cell) {
    let (row, column) = cell.get_position();
    (row, column, cell_from_data_ref(cell.get_value()))
}

/// Opens with reader `R`, telling an encrypted workbook from a broken one.
fn open_book<R, E>(
    path: &Path,
    format: WorkbookFormat,
    wrap: impl FnOnce(Box<R>) -> Book,
) -> Result<Book, ReadError>
where
    R: Reader<FileReader, Error = E>,
    E: PasswordError,
{
    let reader = BufReader::new(File::open(path)?);
    match unpanicked(|| Ok(R::new(reader)))? {
        Ok(book) => Ok(wrap(Box::new(book))),
        Err(error) if error.is_password() => Err(ReadError::Encrypted { format: format.name() }),
        Err(error) => {
            Err(ReadError::NotAWorkbook { format: format.name(), detail: error.to_string() })
        }
    }
}

/// An OLE file is an xls, or an xlsx/xlsb that was saved with a password (Office
/// wraps encrypted packages in OLE). calamine's xlsx reader recognises the latter.
fn open_ole(path: &Path, format: WorkbookFormat) -> Result<Book, ReadError> {
    check_xls(path)?;
    if format != WorkbookFormat::Xls {
        let reader = BufReader::new(File::open(path)?);
        if let Ok(Err(XlsxError::Password)) = unpanicked(|| Ok(Xlsx::new(reader))) {
            return Err(ReadError::Encrypted { format: format.name() });
        }
    }
    open_book(path, format, Book::Xls)
}

pub(crate) fn cell_from_data(data: &Data) -> Cell {
    match data {
        Data::Int(value) => Cell::Int(*value),
        Data::Float(value) => Cell::Float(*value),
        Data::String(text) => Cell::Text(text.clone()),
        Data::Bool(value) => Cell::Bool(*value),
        Data::DateTime(value) => Cell::ExcelDateTime(value.as_f64()),
        Data::DateTimeIso(text) | Data::DurationIso(text) => Cell::IsoDateTime(text.clone()),
        Data::Error(error) => Cell::Error(error.to_string()),
        Data::Empty => Cell::Empty,
    }
}

fn cell_from_data_ref(data: &DataRef<'_>) -> Cell {
    match data {
        DataRef::Int(value) => Cell::Int(*value),
        DataRef::Float(value) => Cell::Float(*value),
        DataRef::String(text) => Cell::Text(text.clone()),
        DataRef::SharedString(text) => Cell::Text((*text).to_owned()),
        DataRef::Bool(value) => Cell::Bool(*value),
        DataRef::DateTime(value) => Cell::ExcelDateTime(value.as_f64()),
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => Cell::IsoDateTime(text.clone()),
        DataRef::Error(error) => Cell::Error(error.to_string()),
        DataRef::Empty => Cell::Empty,
    }
}

#[cfg(test)]
#[path = "workbook_tests.rs"]
mod tests;
