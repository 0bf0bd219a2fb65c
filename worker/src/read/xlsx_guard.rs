//! calamine reserves memory for an xlsx's shared strings from the count the file
//! declares (`<sst uniqueCount="...">`) before reading one: a few bytes claiming a
//! trillion strings make the allocation fail, and a failed allocation aborts the whole
//! process, not only this file. The declared count is checked here first.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::ReadError;

/// More distinct strings than this are refused: holding them would take gigabytes.
const MAX_SHARED_STRINGS: u64 = 16 * 1024 * 1024;
/// The shortest shared-string item, `<si/>`.
const SHORTEST_ITEM: u64 = 5;
/// Deflate expands at most about 1032 times.
const MAX_DEFLATE_RATIO: u64 = 1100;
/// Where the `<sst>` element starts, at the latest.
const HEAD: u64 = 64 * 1024;

/// Fails when the shared-string table declares more strings than its size can hold,
/// or more than `MAX_SHARED_STRINGS`. A file this cannot parse is left to calamine,
/// which reports it.
pub(crate) fn check_shared_strings(path: &Path) -> Result<(), ReadError> {
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(File::open(path)?)) else {
        return Ok(());
    };
    let Some(index) = zip
        .file_names_raw()
        .position(|name| name.to_ascii_lowercase().ends_with(b"sharedstrings.xml"))
    else {
        return Ok(());
    };
    let Ok(entry) = zip.by_index(index) else {
        return Ok(());
    };
    let holdable =
        entry.size().min(entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO)) / SHORTEST_ITEM;
    let mut head = Vec::new();
    if entry.take(HEAD).read_to_end(&mut head).is_err() {
        return Ok(());
    }
    match declared_count(&head) {
        Some(count) if count > holdable => Err(too_many(format!(
            "its shared-string table declares {count} strings, more than it can hold"
        ))),
        Some(count) if count > MAX_SHARED_STRINGS => Err(too_many(format!(
            "it has {count} distinct strings, more than the {MAX_SHARED_STRINGS} the worker reads"
        ))),
        _ => Ok(()),
    }
}

fn too_many(detail: String) -> ReadError {
    ReadError::NotAWorkbook { format: "xlsx", detail }
}

/// The `uniqueCount` attribute of the `<sst>` element, as calamine reads it.
fn declared_count(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    let sst = text.find("<sst").or_else(|| text.find(":sst"))?;
    let tag = &text[sst..sst + text[sst..].find('>')?];
    let value = tag.split("uniqueCount=").nth(1)?;
    let digits: String =
        value.trim_start_matches(['"', '\'']).chars().take_while(char::is_ascii_digit).collect();
    // Beyond u64 is beyond any bound: saturate so that it is refused.
    Some(digits.parse::<u64>().unwrap_or(if digits.is_empty() { 0 } else { u64::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_count_is_read_from_the_sst_tag() {
        let xml = br#"<?xml version="1.0"?><sst xmlns="x" count="9" uniqueCount="42"><si>"#;
        assert_eq!(declared_count(xml), Some(42));
        assert_eq!(declared_count(br#"<x:sst uniqueCount='7'>"#), Some(7));
        assert_eq!(declared_count(br#"<sst count="3">"#), None);
        assert_eq!(
            declared_count(br#"<sst uniqueCount="99999999999999999999999">"#),
            Some(u64::MAX)
        );
        assert_eq!(declared_count(b"<sst uniqueCount=\"12"), None, "an unclosed tag");
    }
}
