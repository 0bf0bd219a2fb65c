//! calamine is not bounded against crafted xlsx files: it reserves memory for the count
//! of shared strings the file declares (`<sst uniqueCount>`), holds every XML token and
//! every string whole, and a failed allocation aborts the whole process. Before calamine
//! opens an xlsx, and before it streams a sheet, the parts it will read are read here
//! first, found exactly as calamine finds them (the package relationships, the same
//! case-insensitive lookup: `xlsx_head::parts`), through the bounded reader: what passes
//! here costs calamine bounded memory. Only the limits refuse a part here: XML that
//! does not parse is left to calamine, which meets the same error (same parser, same
//! settings) or, for the theme, ignores the part.

use std::path::Path;

use quick_xml::events::Event;
use zip::ZipArchive;

use super::ReadError;
use super::limits::{
    MAX_CELL_BYTES, MAX_PACKAGE_PART_BYTES, MAX_ROW_CELLS, MAX_SHARED_STRINGS,
    MAX_SHARED_STRINGS_BYTES,
};
use super::xlsx_head::parts::{Package, open_package};
use super::xlsx_head::xml::{FileReader, XmlReader, attr, read_string, xml_error};

/// The package parts calamine reads when it opens a workbook, besides the relationships
/// and the workbook part (`Package::read` reads those) and the shared strings.
const OPENED_PARTS: [&str; 2] = ["styles.xml", "theme/theme1.xml"];

/// Reads what calamine reads at open: the package, the whole shared-string table and
/// the styles, bounded.
pub(crate) fn check_workbook(path: &Path) -> Result<(), ReadError> {
    let mut zip = open_package(path)?;
    let package = Package::read(&mut zip)?;
    limits_only(check_shared_strings(&mut zip, &package, true))?;
    for name in OPENED_PARTS {
        let part = format!("{}{name}", package.xl_path);
        if let Some(xml) = package.open_bounded(&mut zip, &part, MAX_PACKAGE_PART_BYTES)? {
            limits_only(drain(xml, &part))?;
        }
    }
    Ok(())
}

/// A limit refuses the file; another error is calamine's to report.
pub(crate) fn limits_only(result: Result<(), ReadError>) -> Result<(), ReadError> {
    match result {
        Err(error @ ReadError::TooLarge { .. }) => Err(error),
        _ => Ok(()),
    }
}

/// Reads the part of `sheet` as calamine will stream it: tokens and bytes bounded, no
/// row with more cells than a sheet has columns, no cell larger than `MAX_CELL_BYTES`.
pub(crate) fn check_sheet(path: &Path, sheet: &str) -> Result<(), ReadError> {
    let mut zip = open_package(path)?;
    let package = Package::read(&mut zip)?;
    let Some((_, part)) = package.sheets.iter().find(|(name, _)| name == sheet) else {
        return Ok(());
    };
    let Some(xml) = package.open(&mut zip, part)? else {
        return Ok(());
    };
    limits_only(scan_sheet(xml, part))
}

fn scan_sheet(mut xml: XmlReader<'_>, part: &str) -> Result<(), ReadError> {
    let fail = |detail: String| xml_error(part, detail);
    let (mut buf, mut row, mut cells) = (Vec::new(), 0u64, 0usize);
    let mut cell_start = None;
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == "row" => {
                row += 1;
                cells = 0;
            }
            Event::Start(e) if e.local_name().as_ref() == "c" => {
                cells += 1;
                if cells > MAX_ROW_CELLS {
                    return Err(ReadError::too_large(format!(
                        "{part}: row {row} of the sheet has more than {MAX_ROW_CELLS} cells"
                    )));
                }
                cell_start = Some(xml.buffer_position());
            }
            Event::End(e) if e.local_name().as_ref() == "c" => {
                let size = cell_start.take().map_or(0, |start| xml.buffer_position() - start);
                if size > MAX_CELL_BYTES {
                    return Err(ReadError::too_large(format!(
                        "{part}: a cell of row {row} is larger than {MAX_CELL_BYTES} bytes"
                    )));
                }
            }
            // calamine stops there too.
            Event::End(e) if e.local_name().as_ref() == "sheetData" => return Ok(()),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Refuses a shared-string table declaring more strings than `MAX_SHARED_STRINGS` (the
/// attribute read as calamine reads it, from the `<sst>` element of the part calamine
/// opens); with `whole`, also one holding more, or a string longer than a cell may be.
pub(crate) fn check_shared_strings(
    zip: &mut ZipArchive<FileReader>,
    package: &Package,
    whole: bool,
) -> Result<(), ReadError> {
    let part = format!("{}sharedStrings.xml", package.xl_path);
    let Some(mut xml) = package.open_bounded(zip, &part, MAX_SHARED_STRINGS_BYTES)? else {
        return Ok(());
    };
    let fail = |detail: String| xml_error(&part, detail);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == "sst" => {
                if let Some(count) = attr(&e, "uniqueCount").map_err(fail)?
                    && declared_count(count) > MAX_SHARED_STRINGS
                {
                    return Err(ReadError::too_large(format!(
                        "its shared-string table declares {count} strings, more than {MAX_SHARED_STRINGS}"
                    )));
                }
                break;
            }
            // calamine refuses a table without <sst>, and says so.
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
    if !whole {
        return Ok(());
    }
    let (mut inner, mut count) = (Vec::new(), 0u64);
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).map_err(|e| fail(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == "si" => {
                count += 1;
                if count > MAX_SHARED_STRINGS {
                    return Err(ReadError::too_large(format!(
                        "its shared-string table holds more than {MAX_SHARED_STRINGS} strings"
                    )));
                }
                read_string(&mut xml, e.name(), &mut inner).map_err(fail)?;
            }
            Event::End(e) if e.local_name().as_ref() == "sst" => return Ok(()),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The count calamine reserves for: digits (a leading `+` allowed); a number beyond
/// u64 saturates, so that it is refused.
fn declared_count(value: &str) -> u64 {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    digits.parse().unwrap_or(u64::MAX)
}

/// Reads a part to its end, which bounds its tokens and bytes.
fn drain(mut xml: XmlReader<'_>, part: &str) -> Result<(), ReadError> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(error) => return Err(xml_error(part, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_counts_are_read_as_calamine_reads_them() {
        assert_eq!(declared_count("42"), 42);
        assert_eq!(declared_count("+7"), 7);
        assert_eq!(declared_count("x7"), 0);
        assert_eq!(declared_count(""), 0);
        assert_eq!(declared_count("99999999999999999999999"), u64::MAX);
    }
}
