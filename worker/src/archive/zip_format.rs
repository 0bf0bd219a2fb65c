use std::fs::File;
use std::io::BufReader;

use zip::result::ZipError;

use super::error::{ArchiveError, Limit};
use super::limits::{Budget, exceeded};
use super::write::ArchiveRun;
use super::zip_open::{ZipOpenError, open_zip};

/// Unix file-type bits of an entry's mode (zip keeps them in its external attributes).
const TYPE_MASK: u32 = 0o170_000;
const TYPE_FILE: u32 = 0o100_000;
const TYPE_DIR: u32 = 0o040_000;

pub(super) fn unpack_zip(
    run: &mut ArchiveRun<'_>,
    budget: &mut Budget,
) -> Result<(), ArchiveError> {
    let archive = run.archive;
    let file = File::open(archive).map_err(ArchiveError::io(archive))?;
    let archive_size = file.metadata().map_err(ArchiveError::io(archive))?.len();
    let mut zip = open_zip(BufReader::new(file), budget.entries_left(), false).map_err(
        |error| match error {
            ZipOpenError::TooManyEntries { .. } => {
                exceeded(archive, "", Limit::Entries(budget.limits.max_entries))
            }
            ZipOpenError::Duplicate(entry) => {
                ArchiveError::DuplicateEntry { archive: archive.to_owned(), entry }
            }
            ZipOpenError::Zip(error) => zip_error(run, "", error),
            ZipOpenError::Io(error) => ArchiveError::corrupt(archive, error),
        },
    )?;
    for index in 0..zip.len() {
        let entry_name = zip
            .name_for_index(index)
            .and_then(Result::ok)
            .map(|name| name.into_owned())
            .unwrap_or_default();
        let mut entry = zip.by_index(index).map_err(|error| zip_error(run, &entry_name, error))?;
        let name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        budget.add_entry(archive, &name)?;
        if entry.is_symlink() {
            return Err(ArchiveError::Link {
                archive: archive.to_owned(),
                entry: name,
                kind: "symbolic link",
            });
        }
        let file_type = entry.unix_mode().map_or(0, |mode| mode & TYPE_MASK);
        if ![0, TYPE_FILE, TYPE_DIR].contains(&file_type) {
            return Err(ArchiveError::SpecialEntry {
                archive: archive.to_owned(),
                entry: name,
                kind: format!("special file (mode {file_type:o})"),
            });
        }
        if entry.is_dir() {
            run.create_dir(&name)?;
            continue;
        }
        // The zip reader never reads past the entry's compressed size, so that size
        // bounds the input the entry's output came from.
        let compressed = entry.compressed_size();
        run.write_file(budget, &name, &mut entry, Some(compressed), &|| archive_size)?;
    }
    Ok(())
}

fn zip_error(run: &ArchiveRun<'_>, entry: &str, error: ZipError) -> ArchiveError {
    match error {
        ZipError::UnsupportedArchive(what) => ArchiveError::Unsupported {
            archive: run.archive.to_owned(),
            entry: entry.to_owned(),
            what: what.to_owned(),
        },
        ZipError::CompressionMethodNotSupported(method) => ArchiveError::Unsupported {
            archive: run.archive.to_owned(),
            entry: entry.to_owned(),
            what: format!("compression method {method}"),
        },
        other => ArchiveError::corrupt(run.archive, other),
    }
}
