//! calamine loads every table of an ods when it opens it, expanding
//! `table:number-columns-repeated` and `table:number-rows-repeated` into cells (up to
//! 16,384 columns, 1,048,576 rows and 100 million cells, each held twice: value and
//! formula). A few compressed bytes can ask for that much, and a failed allocation
//! aborts the whole process. content.xml is streamed here first, counting the cells
//! calamine would hold, and a file asking for more than `MAX_CELLS` is refused.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;

use super::ReadError;

/// About 600 MB of cells (value and formula) in calamine: far more than a spreadsheet
/// uploaded for an app holds.
const MAX_CELLS: u64 = 10_000_000;
/// calamine's caps on a row's columns and a table's rows.
const MAX_COLUMNS: u64 = 16_384;
const MAX_ROWS: u64 = 1_048_576;

/// Fails when the tables of the ods at `path` would make calamine hold more than
/// `MAX_CELLS` cells. What this cannot parse is left to calamine, which refuses it with
/// a typed error before allocating for it.
pub(crate) fn check_ods(path: &Path) -> Result<(), ReadError> {
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(File::open(path)?)) else {
        return Ok(());
    };
    let Ok(entry) = zip.by_name("content.xml") else {
        return Ok(());
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let cells = count_cells(&mut xml).unwrap_or(0);
    if cells > MAX_CELLS {
        return Err(ReadError::NotAWorkbook {
            format: "ods",
            detail: format!("its tables expand to {cells} cells, more than {MAX_CELLS}"),
        });
    }
    Ok(())
}

/// The cells calamine would hold for all tables; `None` where calamine would fail.
fn count_cells<R: std::io::BufRead>(xml: &mut quick_xml::Reader<R>) -> Option<u64> {
    let mut total = 0u64;
    let mut table: Option<Table> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            // calamine reads a table only when it has a name.
            Event::Start(e)
                if e.name() == QName("table:table")
                    && matches!(e.try_get_attribute("table:name"), Ok(Some(_))) =>
            {
                table = Some(Table::default());
            }
            Event::Start(e) if e.name() == QName("table:table-row") => {
                let Some(current) = &mut table else { continue };
                let repeats = repeat(&e, "table:number-rows-repeated")?;
                let width = row_width(xml)?;
                current.add_row(repeats, width);
                if total.saturating_add(current.cells()) > MAX_CELLS {
                    return Some(total.saturating_add(current.cells()));
                }
            }
            Event::End(e) if e.name() == QName("table:table") => {
                total = total.saturating_add(table.take().map_or(0, |t| t.cells()));
            }
            Event::Eof => return Some(total),
            _ => {}
        }
    }
}

/// One table's rows as calamine keeps them: each row's cells once, then the span from
/// the first to the last non-empty row expanded by its repeats, as wide as the widest.
#[derive(Default)]
struct Table {
    rows: u64,
    stored: u64,
    first: Option<u64>,
    end: u64,
    widest: u64,
}

impl Table {
    fn add_row(&mut self, repeats: u64, width: u64) {
        let repeats = repeats.min(MAX_ROWS.saturating_sub(self.rows));
        self.stored += width;
        if width > 0 {
            self.first.get_or_insert(self.rows);
            self.end = self.rows + repeats;
            self.widest = self.widest.max(width);
        }
        self.rows += repeats;
    }

    fn cells(&self) -> u64 {
        let span = self.first.map_or(0, |first| self.end - first);
        self.stored.saturating_add(span.saturating_mul(self.widest))
    }
}

/// `attribute` as a count (1 when absent); `None` when calamine would fail to parse it.
fn repeat(e: &BytesStart<'_>, attribute: &str) -> Option<u64> {
    match e.try_get_attribute(attribute).ok()? {
        Some(value) => value.value.parse().ok(),
        None => Some(1),
    }
}

/// The cells calamine pushes for the row just opened: up to its last non-empty cell,
/// repeats included, at most `MAX_COLUMNS`. A cell with a value attribute, a formula or
/// any content counts as non-empty (more than calamine may count, never less).
fn row_width<R: std::io::BufRead>(xml: &mut quick_xml::Reader<R>) -> Option<u64> {
    let (mut width, mut pending_empty) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).ok()? {
            Event::Start(e)
                if e.name() == QName("table:table-cell")
                    || e.name() == QName("table:covered-table-cell") =>
            {
                let repeats = repeat(&e, "table:number-columns-repeated")?;
                let valued = e.attributes().flatten().any(|a| {
                    let key = a.key.as_ref();
                    key == "table:formula" || (key.starts_with("office:") && key.ends_with("value"))
                });
                let name = e.name().as_ref().to_owned();
                let mut inner = Vec::new();
                let content = xml.read_to_end_into(QName(name.as_str()), &mut inner).ok()?;
                width = (width + pending_empty).min(MAX_COLUMNS);
                pending_empty = 0;
                if valued || content.start < content.end {
                    width = (width + repeats).min(MAX_COLUMNS);
                } else {
                    pending_empty = repeats.min(MAX_COLUMNS - width);
                }
            }
            Event::End(e) if e.name() == QName("table:table-row") => return Some(width),
            // calamine refuses anything else in a row.
            _ => return None,
        }
    }
}
