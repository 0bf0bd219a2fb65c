//! calamine loads every sheet of an xls when it opens it, each as a dense grid spanning
//! its cells: a few bytes placing one cell at A1 and one at row 65,536, column 65,536
//! make it allocate billions of cells, and a DIMENSIONS record claiming more rows than
//! it has makes it reserve as many. A failed allocation aborts the whole process. The
//! records are walked here first, as calamine walks them, and such a file is refused.

use std::path::Path;

use super::ReadError;
use super::ole_guard::workbook_stream;

/// The largest grid an xls sheet can hold in Excel (65,536 rows of 256 columns); all
/// sheets together are held to it too.
const MAX_CELLS: u64 = 65_536 * 256;

fn refused(detail: impl Into<String>) -> ReadError {
    ReadError::NotAWorkbook { format: "xls", detail: detail.into() }
}

fn u16_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// BIFF records `(type, data)` as calamine's `RecordIter` splits them; CONTINUE records
/// (0x003C) belong to the record before and are skipped. Stops at a cut record, where
/// calamine stops with an error.
fn records(mut stream: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            let kind = u16_at(stream, 0)?;
            let len = u16_at(stream, 2)? as usize;
            let data = stream.get(4..4 + len)?;
            stream = &stream[4 + len..];
            if kind != 0x003C {
                return Some((kind, data));
            }
        }
    })
}

/// Refuses an OLE file whose xls records would make calamine allocate beyond reason, or
/// whose container would make it panic (see `ole_guard`).
pub(crate) fn check_xls(path: &Path) -> Result<(), ReadError> {
    let data = std::fs::read(path)?;
    let Some(stream) = workbook_stream(&data)? else {
        return Ok(());
    };
    drop(data);
    // Sheet substreams start where the globals' BOUNDSHEET records say.
    let mut starts = Vec::new();
    for (kind, record) in records(&stream) {
        match kind {
            0x0085 => starts.push(u32_at(record, 0).ok_or_else(|| refused("a cut BOUNDSHEET"))?),
            0x000A => break,
            _ => {}
        }
    }
    let mut total = 0u64;
    for start in starts {
        let sheet = stream
            .get(start as usize..)
            .ok_or_else(|| refused(format!("a sheet starts at {start}, past the stream")))?;
        total += sheet_cells(sheet)?;
        if total > MAX_CELLS {
            return Err(refused(format!("its sheets span {total} cells, more than {MAX_CELLS}")));
        }
    }
    Ok(())
}

/// The cells of the grid calamine builds for one sheet: the span of its cell records.
fn sheet_cells(sheet: &[u8]) -> Result<u64, ReadError> {
    let (mut rows, mut columns) = ((u32::MAX, 0u32), (u32::MAX, 0u32));
    let mut seen_bof = false;
    let mut depth = 0usize;
    for (kind, data) in records(sheet) {
        // Embedded charts are substreams of their own, skipped as calamine skips them.
        if depth > 0 {
            match kind {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            continue;
        }
        let cell = match kind {
            0x0809 if seen_bof => {
                depth += 1;
                None
            }
            0x0809 => {
                seen_bof = true;
                None
            }
            0x000A => break,
            0x0200 => {
                check_dimensions(data)?;
                None
            }
            // Number, Label, RString, BoolErr, RK, LabelSST, Formula.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                u16_at(data, 0).zip(u16_at(data, 2)).map(|(row, col)| (row, col, col))
            }
            // MulRK: a row of RK values from its first column to its last.
            0x00BD if data.len() >= 6 => {
                let (row, first) = (u16_at(data, 0), u16_at(data, 2));
                let last = u16_at(data, data.len() - 2);
                match (row, first, last) {
                    (Some(row), Some(first), Some(last)) if first <= last && last < 0xFFFF => {
                        Some((row, first, last))
                    }
                    // calamine computes `last - first + 1` in 16 bits: it would overflow.
                    _ => return Err(refused("a MULRK record with a bad column range")),
                }
            }
            _ => None,
        };
        if let Some((row, first, last)) = cell {
            rows = (rows.0.min(row), rows.1.max(row));
            columns = (columns.0.min(first), columns.1.max(last));
        }
    }
    if rows.0 > rows.1 {
        return Ok(0);
    }
    Ok(u64::from(rows.1 - rows.0 + 1) * u64::from(columns.1 - columns.0 + 1))
}

/// DIMENSIONS as calamine parses it, then reserves rows × columns cells from it.
fn check_dimensions(data: &[u8]) -> Result<(), ReadError> {
    let fields = match data.len() {
        10 => (u16_at(data, 0), u16_at(data, 2), u16_at(data, 4), u16_at(data, 6)),
        14 | 16 => (u32_at(data, 0), u32_at(data, 4), u16_at(data, 8), u16_at(data, 10)),
        _ => return Ok(()), // calamine refuses it with a typed error
    };
    let (Some(first_row), Some(last_row), Some(mut first_col), Some(last_col)) = fields else {
        return Ok(());
    };
    if first_col > 0xFF || last_col < first_col {
        first_col = 0;
    }
    if last_row == 0 || last_col == 0 {
        return Ok(());
    }
    // calamine subtracts without checking: a first row or column after the last wraps.
    let rows = (last_row - 1).checked_sub(first_row).map(|n| u64::from(n) + 1);
    let columns = (last_col - 1).checked_sub(first_col).map(|n| u64::from(n) + 1);
    match rows.zip(columns) {
        Some((rows, columns)) if rows * columns <= MAX_CELLS => Ok(()),
        _ => Err(refused(format!(
            "its DIMENSIONS record claims rows {first_row}..{last_row}, columns {first_col}..{last_col}"
        ))),
    }
}
