//! XML helpers shared by the bounded xlsx reader, each a copy of what calamine 0.38 does
//! (`xml_reader`, its raw attribute scanner, `read_string_with_bufs`, `unescape_xml`), so
//! that the texts validation compares are the texts processing later reads.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;
use zip::read::ZipFile;

use super::super::ReadError;
use super::super::bounded::BoundedXml;
use super::super::limits::{LIMIT_MARK, MAX_CELL_BYTES};

pub(crate) type FileReader = BufReader<File>;
pub(crate) type XmlReader<'a> = quick_xml::Reader<BufReader<BoundedXml<ZipFile<'a, FileReader>>>>;

/// A reader configured as calamine's: empty elements expanded into start and end (so
/// `<c r="A1"/>` is a cell and `<row r="2"/>` moves the row), text kept untrimmed. The
/// part's bytes and tokens are bounded (`BoundedXml`), at most `max_bytes`.
pub(crate) fn xml_reader<'a>(
    entry: ZipFile<'a, FileReader>,
    part: &str,
    max_bytes: u64,
) -> XmlReader<'a> {
    let bounded = BoundedXml::new(entry, part, max_bytes);
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(bounded));
    let config = reader.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    reader
}

/// An error in a part's XML, naming the part.
pub(crate) fn xml_error(part: &str, error: impl std::fmt::Display) -> ReadError {
    ReadError::workbook(format!("{part}: {error}"))
}

/// The value of attribute `name` (raw, entities not decoded), scanning as calamine does:
/// a malformed attribute before it is an error.
pub(crate) fn attr<'e>(e: &'e BytesStart<'_>, name: &str) -> Result<Option<&'e str>, String> {
    for item in raw_attrs(e.attributes_raw()) {
        let (key, value) = item?;
        if key == name {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// `(key, value)` pairs of a tag's attribute text; a key without `=` or an unquoted
/// value is an error (calamine's `RawAttrIter`).
pub(crate) fn raw_attrs(raw: &str) -> impl Iterator<Item = Result<(&str, &str), String>> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            return None;
        }
        let Some(eq) = trimmed.find('=') else {
            rest = "";
            return Some(Err(format!("attribute without a value: {trimmed}")));
        };
        let key = trimmed[..eq].trim_end_matches(|c: char| c.is_ascii_whitespace());
        let after = trimmed[eq + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let quote = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => quote,
            _ => {
                rest = "";
                return Some(Err(format!("attribute {key} has an unquoted value")));
            }
        };
        let value_and_rest = &after[1..];
        let end = value_and_rest.find(quote).unwrap_or(value_and_rest.len());
        rest = value_and_rest.get(end + 1..).unwrap_or("");
        Some(Ok((key, &value_and_rest[..end])))
    })
}

/// Whether an attribute key is `local` with or without a namespace prefix (`r:id`).
pub(super) fn local_name_is(key: &str, local: &str) -> bool {
    key == local || key.strip_suffix(local).is_some_and(|prefix| prefix.ends_with(':'))
}

/// Appends the character of an entity or character reference (`&amp;`, `&#xA0;`).
pub(super) fn push_entity(entity: &BytesRef<'_>, out: &mut String) -> Result<(), String> {
    if let Some(text) = quick_xml::escape::resolve_xml_entity(entity) {
        out.push_str(text);
        return Ok(());
    }
    match entity.resolve_char_ref() {
        Ok(Some(c)) => {
            out.push(c);
            Ok(())
        }
        Ok(None) => Err(format!("unknown entity &{};", &**entity)),
        Err(error) => Err(error.to_string()),
    }
}

/// The text of a string item (`<si>` or `<is>`) up to its end tag `closing`: plain
/// `<t>`, or rich text runs `<r><t>` concatenated; phonetic runs (`<rPh>`) left out.
/// Text outside `xml:space="preserve"` is trimmed of ASCII whitespace as Excel does.
pub(crate) fn read_string(
    xml: &mut XmlReader<'_>,
    closing: QName<'_>,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
    let mut text = String::new();
    let mut phonetic = false;
    let mut inner = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(buf).map_err(|e| e.to_string())? {
            Event::End(e) if e.name() == closing => return Ok(text),
            Event::Start(e) if e.local_name().as_ref() == "rPh" => phonetic = true,
            Event::End(e) if e.local_name().as_ref() == "rPh" => phonetic = false,
            Event::Start(e) if e.local_name().as_ref() == "t" && !phonetic => {
                let preserve = attr(&e, "xml:space")? == Some("preserve");
                let mut value = String::new();
                loop {
                    inner.clear();
                    match xml.read_event_into(&mut inner).map_err(|e| e.to_string())? {
                        Event::Text(t) => value.push_str(&t.xml10_content()),
                        Event::CData(t) => value.push_str(&t.xml10_content()),
                        Event::GeneralRef(entity) => push_entity(&entity, &mut value)?,
                        Event::End(end) if end.name() == e.name() => break,
                        Event::Eof => return Err("the file ends inside a <t>".into()),
                        _ => {}
                    }
                }
                let value = if preserve {
                    value.as_str()
                } else {
                    value.trim_matches([' ', '\t', '\r', '\n'])
                };
                text.push_str(&unescape_xml(value));
                if text.len() as u64 > MAX_CELL_BYTES {
                    return Err(format!(
                        "a string is longer than {MAX_CELL_BYTES} bytes, {LIMIT_MARK}"
                    ));
                }
            }
            Event::Eof => return Err("the file ends inside a string".into()),
            _ => {}
        }
    }
}

const ESCAPE_LENGTH: usize = "_x000D_".len();

/// Excel's `_xHHHH_` escapes (a UTF-16 unit each, surrogate pairs as two escapes)
/// turned back into characters; a lone surrogate becomes U+FFFD.
pub(super) fn unescape_xml(original: &str) -> Cow<'_, str> {
    let Some((mut index, mut unit)) = find_escape(original, 0) else {
        return Cow::Borrowed(original);
    };
    let mut out = String::with_capacity(original.len());
    let mut copied = 0;
    loop {
        out.push_str(&original[copied..index]);
        index += ESCAPE_LENGTH;
        let c = match unit {
            0xD800..=0xDBFF => match parse_escape(original, index) {
                Some(low @ 0xDC00..=0xDFFF) => {
                    index += ESCAPE_LENGTH;
                    let code =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    char::from_u32(code)
                }
                _ => None,
            },
            _ => char::from_u32(u32::from(unit)),
        };
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
        copied = index;
        match find_escape(original, index) {
            Some(next) => (index, unit) = next,
            None => break,
        }
    }
    out.push_str(&original[copied..]);
    Cow::Owned(out)
}

fn find_escape(text: &str, mut start: usize) -> Option<(usize, u16)> {
    while let Some(offset) = text.get(start..)?.find('_') {
        let index = start + offset;
        if let Some(unit) = parse_escape(text, index) {
            return Some((index, unit));
        }
        start = index + 1;
    }
    None
}

fn parse_escape(text: &str, index: usize) -> Option<u16> {
    let bytes = text.as_bytes().get(index..index + ESCAPE_LENGTH)?;
    if bytes[0] != b'_' || bytes[1] != b'x' || bytes[6] != b'_' {
        return None;
    }
    let hex = std::str::from_utf8(&bytes[2..6]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}
