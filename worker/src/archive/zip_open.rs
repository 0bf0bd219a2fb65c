//! Opening a zip (an uploaded archive or a workbook package) with its entry count
//! checked first: the zip reader reads the whole central directory at open, so the
//! count the end record declares is read here before it, and a zip declaring more
//! entries than allowed is refused without that read. Duplicate names are refused after
//! it: which of two same-named entries a reader picks differs between readers (a guard
//! could check one and calamine read the other).

use std::io::{Read, Seek, SeekFrom};

use zip::ZipArchive;
use zip::result::ZipError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ZipOpenError {
    #[error("it has {declared} entries, more than the {max} allowed")]
    TooManyEntries { declared: u64, max: u64 },
    #[error("it has two entries named {0:?}")]
    Duplicate(String),
    #[error("{0}")]
    Zip(#[from] ZipError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";
const MAX_COMMENT: u64 = 65_535;

/// Opens the zip `reader` holds, refusing more than `max_entries` entries and
/// duplicate names; with `fold_case`, names equal but for case or `\` vs `/` are
/// duplicates too (workbook readers look parts up that way).
pub(crate) fn open_zip<R: Read + Seek>(
    mut reader: R,
    max_entries: u64,
    fold_case: bool,
) -> Result<ZipArchive<R>, ZipOpenError> {
    if let Some(declared) = declared_entries(&mut reader)?
        && declared > max_entries
    {
        return Err(ZipOpenError::TooManyEntries { declared, max: max_entries });
    }
    reader.seek(SeekFrom::Start(0))?;
    let zip = ZipArchive::new(reader)?;
    if zip.len() as u64 > max_entries {
        return Err(ZipOpenError::TooManyEntries { declared: zip.len() as u64, max: max_entries });
    }
    if zip.has_duplicate_names() {
        return Err(ZipOpenError::Duplicate(first_duplicate(&zip, false).unwrap_or_default()));
    }
    if fold_case && let Some(name) = first_duplicate(&zip, true) {
        return Err(ZipOpenError::Duplicate(name));
    }
    Ok(zip)
}

fn first_duplicate<R: Read + Seek>(zip: &ZipArchive<R>, fold_case: bool) -> Option<String> {
    let mut seen = std::collections::HashSet::with_capacity(zip.len());
    zip.file_names_raw().find_map(|raw| {
        let name = String::from_utf8_lossy(raw);
        let key = if fold_case {
            name.replace('\\', "/").to_ascii_lowercase()
        } else {
            name.clone().into_owned()
        };
        (!seen.insert(key)).then(|| name.into_owned())
    })
}

/// The entry count of the end record (zip64's when the classic one overflows); `None`
/// when there is no end record to read (the zip reader then reports the file).
fn declared_entries<R: Read + Seek>(reader: &mut R) -> std::io::Result<Option<u64>> {
    let size = reader.seek(SeekFrom::End(0))?;
    let tail_len = size.min(EOCD_LEN + MAX_COMMENT);
    reader.seek(SeekFrom::Start(size - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    reader.by_ref().take(tail_len).read_to_end(&mut tail)?;
    let Some(at) = tail
        .windows(4)
        .enumerate()
        .rev()
        .find(|(at, window)| *window == EOCD && (tail.len() - at) as u64 >= EOCD_LEN)
        .map(|(at, _)| at)
    else {
        return Ok(None);
    };
    let record = &tail[at..];
    let entries = u64::from(u16::from_le_bytes([record[10], record[11]]));
    if entries != 0xFFFF {
        return Ok(Some(entries));
    }
    // Zip64: the locator sits just before the end record and points at the zip64 one.
    let eocd_offset = size - tail_len + at as u64;
    let Some(locator_offset) = eocd_offset.checked_sub(ZIP64_LOCATOR_LEN) else {
        return Ok(Some(entries));
    };
    let mut locator = [0u8; ZIP64_LOCATOR_LEN as usize];
    reader.seek(SeekFrom::Start(locator_offset))?;
    reader.read_exact(&mut locator)?;
    if &locator[..4] != ZIP64_LOCATOR {
        return Ok(Some(entries));
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&locator[8..16]);
    let mut record64 = [0u8; 40];
    reader.seek(SeekFrom::Start(u64::from_le_bytes(offset)))?;
    if reader.read_exact(&mut record64).is_err() || &record64[..4] != ZIP64_EOCD {
        return Ok(Some(entries));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&record64[32..40]);
    Ok(Some(u64::from_le_bytes(count)))
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn zip_of(names: &[&str]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for name in names {
            writer.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(b"x").unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn the_declared_count_is_checked_before_the_directory_is_read() {
        let bytes = zip_of(&["a", "b", "c"]);
        assert!(open_zip(Cursor::new(&bytes), 3, false).is_ok());
        let error = open_zip(Cursor::new(&bytes), 2, false).unwrap_err();
        assert!(matches!(error, ZipOpenError::TooManyEntries { declared: 3, max: 2 }), "{error}");
    }

    #[test]
    fn names_equal_but_for_case_are_duplicates_in_a_package() {
        let bytes = zip_of(&["xl/a.xml", "XL/A.xml"]);
        assert!(open_zip(Cursor::new(&bytes), 10, false).is_ok());
        let error = open_zip(Cursor::new(&bytes), 10, true).unwrap_err();
        assert!(matches!(error, ZipOpenError::Duplicate(_)), "{error}");
    }
}
