//! A table read from the top: rows before the header are skipped, the header is kept as
//! text, then the data rows come one at a time, so a caller that needs ten rows reads
//! ten rows. Blank rows are skipped everywhere, as pandas (the SDK's reader) skipped
//! them.

use super::csv_table::CsvRows;
use super::limits::{MAX_ROW_BYTES, MAX_ROW_CELLS};
use super::{Cell, ReadError};

/// Excel's last column is XFD. A streamed cell beyond it (a crafted reference such as
/// `ZZZZZZ1`) is refused: the row is built as wide as its last cell, and such a row
/// would take gigabytes.
const MAX_SHEET_COLUMNS: u32 = 16_384;

/// A non-blank row and its 0-based position from the top of the sheet.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub(crate) index: u64,
    pub(crate) cells: Vec<Cell>,
}

/// A cell with its 0-based (row, column) position, as streamed workbook readers give it.
pub(crate) type PlacedCell = (u32, u32, Cell);

/// Gives the next cell of a streamed sheet in file order, `None` at the end.
pub(crate) type NextCell<'a> =
    Box<dyn FnMut() -> Result<Option<PlacedCell>, ReadError> + Send + 'a>;

/// Where the rows come from.
pub(crate) enum RowSource<'a> {
    /// xlsx and xlsb: cells streamed from the sheet's XML or records.
    Streamed {
        next_cell: NextCell<'a>,
        pending: Option<PlacedCell>,
        ended: bool,
    },
    /// xls and ods: calamine reads the whole sheet; the rows are handed out from it.
    Loaded {
        range: calamine::Range<calamine::Data>,
        next: usize,
    },
    Csv(CsvRows),
}

impl std::fmt::Debug for RowSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Streamed { .. } => f.write_str("Streamed"),
            Self::Loaded { next, .. } => write!(f, "Loaded(next: {next})"),
            Self::Csv(_) => f.write_str("Csv"),
        }
    }
}

impl RowSource<'_> {
    /// The next row, blank or not; `None` at the end.
    fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        match self {
            Self::Streamed { next_cell, pending, ended } => {
                next_streamed_row(next_cell, pending, ended)
            }
            Self::Loaded { range, next } => next_loaded_row(range, next).map(Ok),
            Self::Csv(rows) => rows.next_row(),
        }
    }
}

/// Gathers the cells of one row. `ended` remembers the end of the sheet: the cell
/// readers fail when asked again after it.
fn next_streamed_row(
    next_cell: &mut NextCell<'_>,
    pending: &mut Option<PlacedCell>,
    ended: &mut bool,
) -> Option<Result<RawRow, ReadError>> {
    let mut row: Option<RawRow> = None;
    let (mut cells, mut bytes) = (0usize, 0usize);
    loop {
        let cell = match pending.take() {
            Some(cell) => Some(cell),
            None if *ended => None,
            None => match next_cell() {
                Ok(cell) => cell,
                Err(error) => return Some(Err(error)),
            },
        };
        let Some((index, column, value)) = cell else {
            *ended = true;
            return row.map(Ok);
        };
        if column >= MAX_SHEET_COLUMNS {
            *ended = true;
            return Some(Err(ReadError::workbook(format!(
                "a cell of row {} is in column {}, beyond the last column a sheet can have (XFD)",
                u64::from(index) + 1,
                u64::from(column) + 1
            ))));
        }
        match &mut row {
            None => row = Some(RawRow { index: u64::from(index), cells: Vec::new() }),
            // A cell of the next row ends this one; it opens the next call.
            Some(current) if current.index != u64::from(index) => {
                *pending = Some((index, column, value));
                return row.map(Ok);
            }
            Some(_) => {}
        }
        cells += 1;
        bytes += value.text_bytes();
        if let Err(error) = check_row(u64::from(index), cells, bytes) {
            *ended = true;
            return Some(Err(error));
        }
        if let Some(current) = &mut row {
            place(&mut current.cells, column as usize, value);
        }
    }
}

/// A row is held whole: one with more cells than a sheet has columns (a reference
/// repeated millions of times, a line of commas) or more text than `MAX_ROW_BYTES` is
/// refused. `index` is 0-based.
pub(crate) fn check_row(index: u64, cells: usize, bytes: usize) -> Result<(), ReadError> {
    if cells > MAX_ROW_CELLS {
        return Err(ReadError::too_large(format!(
            "row {} has more than {MAX_ROW_CELLS} cells",
            index + 1
        )));
    }
    if bytes > MAX_ROW_BYTES {
        return Err(ReadError::too_large(format!(
            "row {} has more than {MAX_ROW_BYTES} bytes",
            index + 1
        )));
    }
    Ok(())
}

/// Puts a cell at its column, filling skipped columns (sparse rows) with `Empty`.
fn place(cells: &mut Vec<Cell>, column: usize, value: Cell) {
    if column >= cells.len() {
        cells.resize(column + 1, Cell::Empty);
    }
    cells[column] = value;
}

fn next_loaded_row(range: &calamine::Range<calamine::Data>, next: &mut usize) -> Option<RawRow> {
    let (top, left) = range.start()?;
    if *next >= range.height() {
        return None;
    }
    let offset = *next;
    *next += 1;
    // Ranges start at their first used cell; the leading columns are put back so that
    // column positions match the streamed readers'.
    let mut cells = vec![Cell::Empty; left as usize];
    cells.extend((0..range.width()).map(|column| {
        range.get((offset, column)).map_or(Cell::Empty, super::workbook::cell_from_data)
    }));
    Some(RawRow { index: u64::from(top) + offset as u64, cells })
}

fn is_blank(cells: &[Cell]) -> bool {
    cells.iter().all(Cell::is_empty)
}

/// The header and the data rows of one sheet or CSV file. Iterating yields the data
/// rows, each at least as wide as the header; it stops after the first error.
#[derive(Debug)]
pub struct Table<'a> {
    header: Vec<String>,
    source: RowSource<'a>,
    finished: bool,
}

impl<'a> Table<'a> {
    /// Skips the rows above `header_starts_at` (0-based) and the blank rows after them;
    /// the next row is the header. A sheet with no such row has an empty header and no
    /// data rows.
    pub(crate) fn start(
        mut source: RowSource<'a>,
        header_starts_at: u64,
    ) -> Result<Self, ReadError> {
        let mut header = None;
        while let Some(row) = source.next_row() {
            let row = row?;
            if row.index >= header_starts_at && !is_blank(&row.cells) {
                header = Some(row.cells.iter().map(Cell::to_text).collect());
                break;
            }
        }
        let finished = header.is_none();
        Ok(Self { header: header.unwrap_or_default(), source, finished })
    }

    /// The header cells as text, in column order (an empty header cell is "").
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The delimiter of a CSV table; `None` for a sheet.
    pub fn delimiter(&self) -> Option<u8> {
        match &self.source {
            RowSource::Csv(rows) => Some(rows.delimiter()),
            _ => None,
        }
    }

    /// Counts data rows, reading no more than `at_most` of them.
    pub fn count_rows(&mut self, at_most: usize) -> Result<usize, ReadError> {
        let mut count = 0;
        while count < at_most {
            match self.next() {
                Some(row) => {
                    row?;
                    count += 1;
                }
                None => break,
            }
        }
        Ok(count)
    }
}

impl Iterator for Table<'_> {
    type Item = Result<Vec<Cell>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            match self.source.next_row() {
                None => self.finished = true,
                Some(Err(error)) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                Some(Ok(row)) if is_blank(&row.cells) => {}
                Some(Ok(mut row)) => {
                    if row.cells.len() < self.header.len() {
                        row.cells.resize(self.header.len(), Cell::Empty);
                    }
                    return Some(Ok(row.cells));
                }
            }
        }
        None
    }
}
