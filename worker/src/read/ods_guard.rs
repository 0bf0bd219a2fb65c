//! calamine loads every table of an ods when it opens it, expanding
//! `table:number-columns-repeated` and `table:number-rows-repeated` into cells (up to
//! 16,384 columns, 1,048,576 rows and 100 million cells, each held twice: value and
//! formula). A few compressed bytes can ask for that much, and a failed allocation
//! aborts the whole process. content.xml is streamed here first, counting the cells
//! calamine would hold, and a file asking for more than `MAX_CELLS` is refused.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;

use super::ReadError;
use super::bounded::BoundedXml;
use super::limits::{LIMIT_MARK, MAX_CELL_BYTES, MAX_PACKAGE_ENTRIES, MAX_PART_BYTES};
use super::xlsx_head::xml::attr;
use crate::archive::{ZipOpenError, open_zip};

/// About 600 MB of cells (value and formula) in calamine: far more than a spreadsheet
/// uploaded for an app holds.
const MAX_CELLS: u64 = 10_000_000;
/// Bytes of cell text calamine holds for all tables, each repeated cell counted.
const MAX_TEXT_BYTES: u64 = 256 << 20;
/// calamine's caps on a row's columns and a table's rows.
const MAX_COLUMNS: u64 = 16_384;
const MAX_ROWS: u64 = 1_048_576;
/// The other parts calamine reads at open.
const OTHER_PARTS: [&str; 2] = ["META-INF/manifest.xml", "meta.xml"];

/// Why counting stopped.
enum Stop {
    /// A limit: the file is refused.
    Limit(String),
    /// The file ends inside a table: calamine reads a table until `</table:table>`
    /// and an unclosed annotation until `</office:annotation>`, whatever comes first,
    /// the end of the file included: it would loop for ever.
    Unclosed,
    /// Something calamine refuses too, with its own typed error.
    Unparsed,
}

impl From<quick_xml::Error> for Stop {
    fn from(error: quick_xml::Error) -> Self {
        let message = error.to_string();
        if message.contains(LIMIT_MARK) { Self::Limit(message) } else { Self::Unparsed }
    }
}

fn ods_reader<R: std::io::Read>(
    part: R,
    name: &str,
) -> quick_xml::Reader<BufReader<BoundedXml<R>>> {
    let mut xml =
        quick_xml::Reader::from_reader(BufReader::new(BoundedXml::new(part, name, MAX_PART_BYTES)));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    xml
}

/// Fails when the tables of the ods at `path` would make calamine hold more than
/// `MAX_CELLS` cells or `MAX_TEXT_BYTES` of text, or when a part calamine reads has a
/// token or a size over the limits. What this cannot parse is left to calamine, which
/// refuses it with a typed error before allocating for it.
pub(crate) fn check_ods(path: &Path) -> Result<(), ReadError> {
    let reader = BufReader::new(File::open(path)?);
    let mut zip = match open_zip(reader, MAX_PACKAGE_ENTRIES, false) {
        Ok(zip) => zip,
        Err(ZipOpenError::Io(error)) => return Err(ReadError::Io(error)),
        Err(error @ (ZipOpenError::TooManyEntries { .. } | ZipOpenError::Duplicate(_))) => {
            return Err(refused(error.to_string()));
        }
        Err(ZipOpenError::Zip(_)) => return Ok(()),
    };
    for name in OTHER_PARTS {
        if let Ok(part) = zip.by_name(name)
            && let Err(Stop::Limit(detail)) = drain(&mut ods_reader(part, name))
        {
            return Err(ReadError::TooLarge { detail });
        }
    }
    let Ok(entry) = zip.by_name("content.xml") else {
        return Ok(());
    };
    let unclosed = || refused("content.xml ends inside a table".into());
    let counted = count_cells(&mut ods_reader(entry, "content.xml"));
    match counted {
        Ok(()) => Ok(()),
        Err(Stop::Limit(detail)) => Err(ReadError::TooLarge { detail }),
        Err(Stop::Unclosed) => Err(unclosed()),
        // calamine may read on where this stopped (its attribute scanner is laxer than
        // quick-xml's): whether it would reach the end inside a table is checked alone.
        Err(Stop::Unparsed) => {
            let Ok(entry) = zip.by_name("content.xml") else {
                return Ok(());
            };
            if ends_inside_a_table(&mut ods_reader(entry, "content.xml")) {
                return Err(unclosed());
            }
            Ok(())
        }
    }
}

/// Whether calamine, reading a named table until `</table:table>` and an annotation
/// until `</office:annotation>` (the table's end tag inside it consumed), would meet
/// the end of the file first; an XML error stops calamine too.
fn ends_inside_a_table<R: BufRead>(xml: &mut quick_xml::Reader<R>) -> bool {
    let (mut table, mut annotation) = (false, false);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e))
                if e.name() == QName("table:table")
                    && matches!(attr(&e, "table:name"), Ok(Some(_))) =>
            {
                table = true;
            }
            Ok(Event::Start(e)) if table && e.name() == QName("office:annotation") => {
                annotation = true;
            }
            Ok(Event::End(e)) if e.name() == QName("office:annotation") => annotation = false,
            Ok(Event::End(e)) if !annotation && e.name() == QName("table:table") => table = false,
            Ok(Event::Eof) => return table,
            Err(_) => return false,
            _ => {}
        }
    }
}

fn refused(detail: String) -> ReadError {
    ReadError::not_a_workbook("ods", detail)
}

fn drain<R: BufRead>(xml: &mut quick_xml::Reader<R>) -> Result<(), Stop> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if let Event::Eof = xml.read_event_into(&mut buf)? {
            return Ok(());
        }
    }
}

/// What calamine would hold for all tables, refused past the limits.
fn count_cells<R: BufRead>(xml: &mut quick_xml::Reader<R>) -> Result<(), Stop> {
    let (mut total, mut text) = (0u64, 0u64);
    let mut table: Option<Table> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf)? {
            // calamine reads a table only when it has a name (its raw attribute scan).
            Event::Start(e)
                if e.name() == QName("table:table")
                    && matches!(attr(&e, "table:name"), Ok(Some(_))) =>
            {
                table = Some(Table::default());
            }
            Event::Start(e) if e.name() == QName("table:table-row") => {
                let Some(current) = &mut table else { continue };
                let repeats = repeat(&e, "table:number-rows-repeated")?;
                let row = row_width(xml)?;
                current.add_row(repeats, row.width);
                let cells = total.saturating_add(current.cells());
                if cells > MAX_CELLS {
                    return Err(Stop::Limit(format!(
                        "its tables expand to {cells} cells, more than {MAX_CELLS}, {LIMIT_MARK}"
                    )));
                }
                text = text.saturating_add(row.text.saturating_mul(repeats.min(MAX_ROWS)));
                if text > MAX_TEXT_BYTES {
                    return Err(Stop::Limit(format!(
                        "its cells expand to more than {MAX_TEXT_BYTES} bytes of text, {LIMIT_MARK}"
                    )));
                }
            }
            Event::End(e) if e.name() == QName("table:table") => {
                total = total.saturating_add(table.take().map_or(0, |t| t.cells()));
            }
            Event::Eof if table.is_some() => return Err(Stop::Unclosed),
            Event::Eof => return Ok(()),
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

/// `attribute` as a count (1 when absent); unparsed when calamine would fail to parse it.
fn repeat(e: &BytesStart<'_>, attribute: &str) -> Result<u64, Stop> {
    match e.try_get_attribute(attribute).map_err(|_| Stop::Unparsed)? {
        Some(value) => value.value.parse().map_err(|_| Stop::Unparsed),
        None => Ok(1),
    }
}

/// A row as calamine holds it: its width, and its text with repeated cells counted.
struct Row {
    width: u64,
    text: u64,
}

/// The cells calamine pushes for the row just opened: up to its last non-empty cell,
/// repeats included, at most `MAX_COLUMNS`. A cell with a value attribute, a formula or
/// any content counts as non-empty (more than calamine may count, never less). A cell's
/// text counts its spaces (`<text:s text:c>`) expanded, as calamine expands them.
fn row_width<R: BufRead>(xml: &mut quick_xml::Reader<R>) -> Result<Row, Stop> {
    let (mut width, mut pending_empty, mut text) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf)? {
            Event::Start(e)
                if e.name() == QName("table:table-cell")
                    || e.name() == QName("table:covered-table-cell") =>
            {
                let repeats = repeat(&e, "table:number-columns-repeated")?;
                // A value or formula in an attribute is held, and cloned per repeat, too.
                let (mut valued, mut attribute_text) = (false, 0u64);
                for a in e.attributes().flatten() {
                    let key = a.key.as_ref();
                    if key == "table:formula"
                        || (key.starts_with("office:") && key.ends_with("value"))
                    {
                        valued = true;
                        attribute_text = attribute_text.saturating_add(a.value.len() as u64);
                    }
                }
                let name = e.name().as_ref().to_owned();
                let content = cell_content(xml, &name)?;
                width = (width + pending_empty).min(MAX_COLUMNS);
                pending_empty = 0;
                if valued || content.any {
                    width = (width + repeats).min(MAX_COLUMNS);
                    let cell_text = content.text.saturating_add(attribute_text);
                    text = text.saturating_add(cell_text.saturating_mul(repeats.min(MAX_COLUMNS)));
                } else {
                    pending_empty = repeats.min(MAX_COLUMNS - width);
                }
            }
            Event::End(e) if e.name() == QName("table:table-row") => {
                return Ok(Row { width, text });
            }
            // calamine refuses anything else in a row.
            _ => return Err(Stop::Unparsed),
        }
    }
}

struct Content {
    any: bool,
    /// Characters of its text with spaces expanded (an upper bound of calamine's).
    text: u64,
}

/// Reads a cell up to its end tag `name`, measuring its text.
fn cell_content<R: BufRead>(xml: &mut quick_xml::Reader<R>, name: &str) -> Result<Content, Stop> {
    let (mut any, mut text, mut depth) = (false, 0u64, 0usize);
    // calamine keeps an annotation's events in one buffer: the cell's raw size counts.
    let start = xml.buffer_position();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf)? {
            Event::End(e) if depth == 0 && e.name().as_ref() == name => {
                return Ok(Content { any, text });
            }
            Event::Start(e) => {
                any = true;
                depth += 1;
                text = text.saturating_add(match e.name().as_ref() {
                    "text:s" => match e.try_get_attribute("text:c").map_err(|_| Stop::Unparsed)? {
                        // Decoded first, as calamine decodes it (`&#50;` is 2).
                        Some(count) => quick_xml::escape::unescape(&count.value)
                            .map_err(|_| Stop::Unparsed)?
                            .parse::<u64>()
                            .map_err(|_| Stop::Unparsed)?,
                        None => 1,
                    },
                    "text:tab" | "text:line-break" | "text:p" => 1,
                    _ => 0,
                });
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                any = true;
                text = text.saturating_add(t.len() as u64);
            }
            Event::GeneralRef(_) | Event::CData(_) => {
                any = true;
                text = text.saturating_add(4);
            }
            Event::Eof => return Err(Stop::Unclosed),
            _ => {}
        }
        if text.max(xml.buffer_position() - start) > MAX_CELL_BYTES {
            return Err(Stop::Limit(format!(
                "a cell's text expands to more than {MAX_CELL_BYTES} characters, {LIMIT_MARK}"
            )));
        }
    }
}
