//! The header and the count of data rows of one sheet, with `Table`'s rules (rows above
//! `header_starts_at` skipped, blank rows skipped everywhere, the header the first
//! non-blank row) but shared strings looked up in batches: whether a row is blank can
//! depend on a string (`""` is blank), so the rows read ahead wait for one pass over
//! the string table instead of one pass each.

use std::collections::BTreeSet;

use super::super::limits::{MAX_ROW_BYTES, MAX_ROW_CELLS};
use super::super::{Cell, ReadError};
use super::cells::{Raw, RawCell, SheetCells};
use super::strings::SharedStrings;

/// What validation reads of a sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetHead {
    /// The header cells as text, in column order, as `Table::header` gives them.
    pub header: Vec<String>,
    /// The data rows found, at most the number asked for.
    pub rows: usize,
}

/// Rows waiting for their strings, at most this many at a time: a rule asking for a
/// million rows reads them in rounds instead of holding them all.
const BATCH: usize = 4096;

/// One row: the cells that follow one another with the same row number (as
/// `Table` groups them).
struct Row {
    index: u32,
    cells: Vec<(u32, Raw)>,
    /// Bytes of its inline texts.
    bytes: usize,
}

/// Groups streamed cells into rows.
struct Rows<'c, 'a> {
    cells: &'c mut SheetCells<'a>,
    pending: Option<RawCell>,
    ended: bool,
}

impl Rows<'_, '_> {
    fn next_row(&mut self) -> Result<Option<Row>, ReadError> {
        let mut row: Option<Row> = None;
        loop {
            let cell = match self.pending.take() {
                Some(cell) => Some(cell),
                None if self.ended => None,
                None => self.cells.next_cell()?,
            };
            let Some((index, column, value)) = cell else {
                self.ended = true;
                return Ok(row);
            };
            match &mut row {
                None => {
                    let bytes = value_bytes(&value);
                    row = Some(Row { index, cells: vec![(column, value)], bytes });
                }
                Some(current) if current.index != index => {
                    self.pending = Some((index, column, value));
                    return Ok(row);
                }
                Some(current) => {
                    current.bytes += value_bytes(&value);
                    current.cells.push((column, value));
                    current.check()?;
                }
            }
        }
    }
}

fn value_bytes(raw: &Raw) -> usize {
    match raw {
        Raw::Value(Cell::Text(text) | Cell::IsoDateTime(text) | Cell::Error(text)) => text.len(),
        _ => 0,
    }
}

impl Row {
    /// A row is held whole: more cells than a sheet has columns (one reference repeated
    /// millions of times) or more text than `MAX_ROW_BYTES` is refused.
    fn check(&self) -> Result<(), ReadError> {
        let row = u64::from(self.index) + 1;
        if self.cells.len() > MAX_ROW_CELLS {
            return Err(ReadError::too_large(format!(
                "row {row} has more than {MAX_ROW_CELLS} cells"
            )));
        }
        if self.bytes > MAX_ROW_BYTES {
            return Err(ReadError::too_large(format!(
                "row {row} has more than {MAX_ROW_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// A row as far as the strings known so far tell.
enum Blankness {
    Blank,
    NonBlank,
    /// Its non-empty values are shared strings not looked up yet (sorted).
    Unknown(Vec<usize>),
}

/// The value of each column, the last cell winning when a column repeats (as a
/// `Table` row is built).
fn by_column(cells: &[(u32, Raw)]) -> Vec<&Raw> {
    if cells.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return cells.iter().map(|(_, raw)| raw).collect();
    }
    let mut last = std::collections::BTreeMap::new();
    for (column, raw) in cells {
        last.insert(*column, raw);
    }
    last.into_values().collect()
}

fn blankness(row: &Row, strings: &SharedStrings) -> Blankness {
    let mut unknown = Vec::new();
    for raw in by_column(&row.cells) {
        match raw {
            Raw::Value(cell) if cell.is_empty() => {}
            Raw::Value(_) => return Blankness::NonBlank,
            Raw::Shared(index) => match strings.is_empty(*index) {
                Some(true) => {}
                Some(false) => return Blankness::NonBlank,
                None => unknown.push(*index),
            },
        }
    }
    if unknown.is_empty() {
        return Blankness::Blank;
    }
    unknown.sort_unstable();
    unknown.dedup();
    Blankness::Unknown(unknown)
}

/// The header and up to `rows_wanted` data rows of the sheet `cells` streams.
pub(super) fn sheet_head(
    cells: &mut SheetCells<'_>,
    strings: &mut SharedStrings,
    header_starts_at: u64,
    rows_wanted: usize,
) -> Result<SheetHead, ReadError> {
    let mut rows = Rows { cells, pending: None, ended: false };
    let Some(header) = header(&mut rows, strings, header_starts_at)? else {
        return Ok(SheetHead { header: Vec::new(), rows: 0 });
    };
    let mut counted = 0;
    // Rows whose blankness waits for strings: their unresolved indices.
    let mut waiting: Vec<Vec<usize>> = Vec::new();
    while counted < rows_wanted {
        // Read ahead as many rows as may still count, as if each waiting one will.
        while counted + waiting.len() < rows_wanted && waiting.len() < BATCH {
            let Some(row) = rows.next_row()? else { break };
            match blankness(&row, strings) {
                Blankness::Blank => {}
                Blankness::NonBlank => counted += 1,
                Blankness::Unknown(indices) => waiting.push(indices),
            }
        }
        if waiting.is_empty() {
            break;
        }
        // One pass tells the emptiness of every string the waiting rows use.
        let wanted: BTreeSet<usize> = waiting.iter().flatten().copied().collect();
        strings.look_up(&wanted)?;
        waiting = settle(waiting, strings, &mut counted);
    }
    Ok(SheetHead { header, rows: counted.min(rows_wanted) })
}

/// The first row at or below `header_starts_at` that is not blank, as text; `None`
/// when the sheet has none.
fn header(
    rows: &mut Rows<'_, '_>,
    strings: &mut SharedStrings,
    header_starts_at: u64,
) -> Result<Option<Vec<String>>, ReadError> {
    while let Some(row) = rows.next_row()? {
        if u64::from(row.index) < header_starts_at {
            continue;
        }
        let wanted: BTreeSet<usize> = row
            .cells
            .iter()
            .filter_map(|(_, raw)| match raw {
                Raw::Shared(index) => Some(*index),
                Raw::Value(_) => None,
            })
            .collect();
        strings.look_up(&wanted)?;
        if matches!(blankness(&row, strings), Blankness::Blank) {
            continue;
        }
        strings.keep_texts(&wanted)?;
        // Sparse cells are placed at their columns, the gaps empty, as `Table` does.
        let mut texts = Vec::new();
        let mut bytes = 0;
        for (column, raw) in &row.cells {
            let column = *column as usize;
            if column >= texts.len() {
                texts.resize(column + 1, String::new());
            }
            let text = match raw {
                Raw::Value(cell) => cell.to_text(),
                Raw::Shared(index) => strings.text(*index).unwrap_or_default().to_owned(),
            };
            bytes += text.len();
            if bytes > MAX_ROW_BYTES {
                return Err(ReadError::too_large(format!(
                    "row {} has more than {MAX_ROW_BYTES} bytes",
                    u64::from(row.index) + 1
                )));
            }
            texts[column] = text;
        }
        return Ok(Some(texts));
    }
    Ok(None)
}

/// The waiting rows after a look-up: those with a non-empty string counted, those whose
/// strings are all `""` dropped (blank), the others still waiting.
fn settle(
    waiting: Vec<Vec<usize>>,
    strings: &SharedStrings,
    counted: &mut usize,
) -> Vec<Vec<usize>> {
    let mut still = Vec::new();
    'rows: for indices in waiting {
        let mut unknown = Vec::new();
        for index in indices {
            match strings.is_empty(index) {
                Some(true) => {}
                Some(false) => {
                    *counted += 1;
                    continue 'rows;
                }
                None => unknown.push(index),
            }
        }
        if !unknown.is_empty() {
            still.push(unknown);
        }
    }
    still
}
