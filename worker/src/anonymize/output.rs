//! Writing an output file whole or not at all: the content goes to a hidden temporary
//! name beside it, renamed into place once complete, so a failed file never leaves a
//! half-anonymized output that looks finished.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::FileError;

/// Runs `write` on a temporary path, then moves the result to `output`.
pub fn write_whole<F>(output: &Path, write: F) -> Result<(), FileError>
where
    F: FnOnce(&Path) -> Result<(), FileError>,
{
    let write_error = |source| FileError::Write { path: output.to_owned(), source };
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let temporary = temporary_path(output);
    let result = write(&temporary).and_then(|()| {
        std::fs::rename(&temporary, output)
            .map_err(|source| FileError::Write { path: output.to_owned(), source })
    });
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Where [`write_whole`] writes before the rename.
pub fn temporary_path(output: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(output.file_name().unwrap_or_default());
    name.push(".partial");
    output.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("sub/out.csv");
        let error = write_whole(&output, |temporary| {
            std::fs::write(temporary, "half").unwrap();
            Err(FileError::Write { path: temporary.to_owned(), source: std::io::Error::other("x") })
        })
        .unwrap_err();
        assert_eq!(error.reason(), "OutputUnwritable");
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 0);
    }

    #[test]
    fn a_complete_write_is_moved_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("a/b/out.txt");
        write_whole(&output, |temporary| {
            std::fs::write(temporary, "done")
                .map_err(|source| FileError::Write { path: temporary.to_owned(), source })
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&output).unwrap(), "done");
        assert_eq!(std::fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);
    }
}
