//! A worksheet's cells in file order, as calamine's `XlsxCellReader::next_cell` gives
//! them (positions from `r` attributes, counted when absent), except that a shared
//! string stays an index: looking it up is the caller's business, so that the string
//! table is read only as far as the needed indices.

use quick_xml::events::{BytesStart, Event};

use super::super::{Cell, ReadError};
use super::xml::{XmlReader, attr, push_entity, read_string, unescape_xml};

/// Excel's last column is XFD (16,384 columns). A reference beyond it is refused: a row
/// is held as wide as its last column, and `ZZZZZZ1` would make that gigabytes.
pub(super) const MAX_COLUMNS: u32 = 16_384;

/// A cell's value as the sheet holds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Raw {
    /// An index into the shared-string table, not looked up yet.
    Shared(usize),
    Value(Cell),
}

/// `(row, column, value)`, 0-based.
pub(super) type RawCell = (u32, u32, Raw);

pub(super) struct SheetCells<'a> {
    xml: XmlReader<'a>,
    part: String,
    row: u32,
    column: u32,
    buf: Vec<u8>,
    cell_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl<'a> SheetCells<'a> {
    /// Reads up to `<sheetData>`; a part without one is not a worksheet.
    pub(super) fn start(mut xml: XmlReader<'a>, part: &str) -> Result<Self, ReadError> {
        let fail = |detail: String| ReadError::workbook(format!("{part}: {detail}"));
        let mut buf = Vec::new();
        let mut first_element = None;
        loop {
            buf.clear();
            match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
                Event::Start(e) => match e.local_name().as_ref() {
                    "sheetData" => break,
                    // calamine refuses a malformed `<dimension ref>`; so does this reader.
                    "dimension" => match attr(&e, "ref").map_err(fail)? {
                        Some(range) => check_dimension(range).map_err(fail)?,
                        None => return Err(fail("a <dimension> without ref".into())),
                    },
                    name => {
                        first_element.get_or_insert_with(|| name.to_owned());
                    }
                },
                Event::Eof => {
                    return Err(fail(match first_element {
                        Some(name) => format!("a {name} is not a worksheet"),
                        None => "no <sheetData>".into(),
                    }));
                }
                _ => {}
            }
        }
        Ok(Self {
            xml,
            part: part.to_owned(),
            row: 0,
            column: 0,
            buf,
            cell_buf: Vec::new(),
            value_buf: Vec::new(),
        })
    }

    /// The next cell; `None` at `</sheetData>`.
    pub(super) fn next_cell(&mut self) -> Result<Option<RawCell>, ReadError> {
        self.next_inner().map_err(|detail| ReadError::workbook(format!("{}: {detail}", self.part)))
    }

    fn next_inner(&mut self) -> Result<Option<RawCell>, String> {
        loop {
            self.buf.clear();
            match self.xml.read_event_into(&mut self.buf).map_err(|e| e.to_string())? {
                Event::Start(e) if e.local_name().as_ref() == "row" => {
                    if let Some(r) = attr(&e, "r")? {
                        self.row = parse_reference(r)?.0;
                    }
                }
                Event::End(e) if e.local_name().as_ref() == "row" => {
                    self.row = self.row.checked_add(1).ok_or("too many rows")?;
                    self.column = 0;
                }
                Event::Start(e) if e.local_name().as_ref() == "c" => {
                    let (r, t) = (attr(&e, "r")?, attr(&e, "t")?.map(str::to_owned));
                    let position = match r {
                        Some(r) => {
                            let (row, column) = parse_reference(r)?;
                            let column = column.ok_or_else(|| format!("cell {r} has no column"))?;
                            self.column = column;
                            (row, column)
                        }
                        None => (self.row, self.column),
                    };
                    if position.1 >= MAX_COLUMNS {
                        return Err(format!("a cell is beyond the last column (XFD): {r:?}"));
                    }
                    let value = self.cell_value(t.as_deref())?;
                    self.column = self.column.saturating_add(1);
                    return Ok(Some((position.0, position.1, value)));
                }
                Event::End(e) if e.local_name().as_ref() == "sheetData" => return Ok(None),
                Event::Eof => return Err("the sheet ends before </sheetData>".into()),
                _ => {}
            }
        }
    }

    /// The value of the `<c>` just opened, up to its `</c>`: the last of its `<v>`,
    /// `<is>` and `<f>` children decides, as in calamine.
    fn cell_value(&mut self, t: Option<&str>) -> Result<Raw, String> {
        let mut value = Raw::Value(Cell::Empty);
        loop {
            self.cell_buf.clear();
            match self.xml.read_event_into(&mut self.cell_buf).map_err(|e| e.to_string())? {
                Event::Start(e) => value = read_value(&mut self.xml, &e, t, &mut self.value_buf)?,
                Event::End(e) if e.local_name().as_ref() == "c" => return Ok(value),
                Event::Eof => return Err("the sheet ends inside a cell".into()),
                _ => {}
            }
        }
    }
}

fn read_value(
    xml: &mut XmlReader<'_>,
    e: &BytesStart<'_>,
    t: Option<&str>,
    buf: &mut Vec<u8>,
) -> Result<Raw, String> {
    let skip = |xml: &mut XmlReader<'_>, buf: &mut Vec<u8>| {
        buf.clear();
        xml.read_to_end_into(e.name(), buf).map(drop).map_err(|e| e.to_string())
    };
    match e.local_name().as_ref() {
        "is" => Ok(Raw::Value(Cell::Text(read_string(xml, e.name(), buf)?))),
        // A formula's text, and the `<v>` of an inline string, are not the value.
        "f" => skip(xml, buf).map(|()| Raw::Value(Cell::Empty)),
        "v" if matches!(t, Some("inlineStr" | "is")) => {
            skip(xml, buf).map(|()| Raw::Value(Cell::Empty))
        }
        // These types are plain ASCII: calamine takes the first text event as it is.
        "v" if matches!(t, None | Some("n" | "s" | "b" | "e")) => {
            buf.clear();
            let text = match xml.read_event_into(buf).map_err(|e| e.to_string())? {
                Event::Text(text) => Some(text.into_inner().into_owned()),
                Event::End(end) if end.name() == e.name() => return Ok(Raw::Value(Cell::Empty)),
                Event::Eof => return Err("the sheet ends inside a <v>".into()),
                _ => None,
            };
            skip(xml, buf)?;
            text.map_or(Ok(Raw::Value(Cell::Empty)), |text| plain_value(&text, t))
        }
        "v" => {
            let mut text = String::new();
            loop {
                buf.clear();
                match xml.read_event_into(buf).map_err(|e| e.to_string())? {
                    Event::Text(part) => text.push_str(&part.xml10_content()),
                    Event::GeneralRef(entity) => push_entity(&entity, &mut text)?,
                    Event::End(end) if end.name() == e.name() => break,
                    Event::Eof => return Err("the sheet ends inside a <v>".into()),
                    _ => {}
                }
            }
            match t {
                Some("d") => Ok(Raw::Value(Cell::IsoDateTime(text))),
                Some("str") => Ok(Raw::Value(Cell::Text(unescape_xml(&text).into_owned()))),
                other => Err(format!("unknown cell type t={other:?}")),
            }
        }
        name => Err(format!("unexpected <{name}> in a cell (expected v, f or is)")),
    }
}

/// A `<v>` of type n, s, b, e or none. Dates are numbers styled as dates: their text
/// is the number's, the only thing validation looks at, so styles are not read.
fn plain_value(text: &str, t: Option<&str>) -> Result<Raw, String> {
    let value = match t {
        Some("s") if text.is_empty() => Cell::Empty,
        // calamine reads an index that is not all digits (or overflows) as 0.
        Some("s") if text.bytes().all(|b| b.is_ascii_digit()) => {
            return Ok(Raw::Shared(text.parse().unwrap_or(0)));
        }
        Some("s") => return Ok(Raw::Shared(0)),
        Some("b") => match text.trim() {
            "" => Cell::Empty,
            v if v == "0" || v.eq_ignore_ascii_case("false") => Cell::Bool(false),
            v if v == "1" || v.eq_ignore_ascii_case("true") => Cell::Bool(true),
            _ => return Err(format!("unrecognized boolean cell value {text:?}")),
        },
        Some("e") => match text {
            "#DIV/0!" | "#N/A" | "#NAME?" | "#NULL!" | "#NUM!" | "#REF!" | "#VALUE!" => {
                Cell::Error(text.to_owned())
            }
            _ => return Err(format!("unknown cell error {text:?}")),
        },
        _ if text.is_empty() => Cell::Empty,
        _ => match text.parse::<f64>() {
            Ok(number) => Cell::Float(number),
            // Without a type a value that is not a number is text; with t="n" an error.
            Err(_) if t.is_none() => Cell::Text(text.to_owned()),
            Err(error) => return Err(format!("cell value {text:?}: {error}")),
        },
    };
    Ok(Raw::Value(value))
}

/// An A1 reference as 0-based `(row, column)`; the column is absent in a row's `r`.
pub(super) fn parse_reference(reference: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("bad cell reference {reference:?}");
    let digits_at = reference.find(|c: char| c.is_ascii_digit()).ok_or_else(bad)?;
    let (letters, digits) = reference.split_at(digits_at);
    let mut column: u32 = 0;
    for c in letters.bytes() {
        let letter = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            _ => return Err(bad()),
        };
        column = column
            .checked_mul(26)
            .and_then(|n| n.checked_add(u32::from(letter) + 1))
            .ok_or_else(bad)?;
    }
    let row: u32 = digits.parse().map_err(|_| bad())?;
    let row = row.checked_sub(1).ok_or_else(bad)?;
    Ok((row, column.checked_sub(1)))
}

/// A `<dimension ref>`: one reference or two joined by `:`.
fn check_dimension(range: &str) -> Result<(), String> {
    let parts: Vec<&str> = range.split(':').collect();
    if parts.len() > 2 {
        return Err(format!("bad dimension {range:?}"));
    }
    for part in parts {
        if parse_reference(part)?.1.is_none() {
            return Err(format!("bad dimension {range:?}"));
        }
    }
    Ok(())
}
