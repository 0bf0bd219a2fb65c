//! Writing entries into the destination: directories and new regular files only, with
//! every byte counted against the limits as it is written.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::entry_path::safe_relative_path;
use super::error::{ArchiveError, Limit};
use super::limits::{Budget, exceeded, stream_error};

const CHUNK: usize = 64 * 1024;

/// One archive being unpacked into `dest`: where entries go, and how much it has read
/// and written (for its overall compression ratio).
#[derive(Debug)]
pub(super) struct ArchiveRun<'a> {
    pub archive: &'a Path,
    pub dest: &'a Path,
    pub written: u64,
}

impl ArchiveRun<'_> {
    /// The entry's path in the destination, refusing names that leave it.
    pub fn target(&self, entry: &str) -> Result<PathBuf, ArchiveError> {
        let relative = safe_relative_path(entry).ok_or_else(|| ArchiveError::UnsafePath {
            archive: self.archive.to_owned(),
            entry: entry.to_owned(),
        })?;
        Ok(self.dest.join(relative))
    }

    pub fn create_dir(&self, entry: &str) -> Result<(), ArchiveError> {
        let target = self.target(entry)?;
        std::fs::create_dir_all(&target).map_err(ArchiveError::io(target))
    }

    /// Writes a regular file from `content`. `entry_input` is the entry's compressed
    /// size when the format gives one (zip), for a per-entry ratio; `archive_input`
    /// reports the compressed bytes read so far from the archive, for the overall ratio.
    /// The destination holds only what this unpack created (directories and regular
    /// files), so creating parents cannot follow a link out of it.
    pub fn write_file(
        &mut self,
        budget: &mut Budget,
        entry: &str,
        content: &mut dyn Read,
        entry_input: Option<u64>,
        archive_input: &dyn Fn() -> u64,
    ) -> Result<(), ArchiveError> {
        let target = self.target(entry)?;
        if target == self.dest {
            return Err(ArchiveError::UnsafePath {
                archive: self.archive.to_owned(),
                entry: entry.to_owned(),
            });
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(ArchiveError::io(parent))?;
        }
        let mut file = create_new(&target).map_err(|source| match source.kind() {
            ErrorKind::AlreadyExists => ArchiveError::DuplicateEntry {
                archive: self.archive.to_owned(),
                entry: entry.to_owned(),
            },
            _ => ArchiveError::Io { path: target.clone(), source },
        })?;
        let mut buffer = vec![0_u8; CHUNK];
        let mut entry_written = 0_u64;
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(error) => return Err(stream_error(self.archive, entry, error)),
            };
            budget.add_bytes(self.archive, entry, read as u64)?;
            file.write_all(&buffer[..read]).map_err(ArchiveError::io(&target))?;
            entry_written += read as u64;
            self.written += read as u64;
            let limits = budget.limits;
            let entry_bomb =
                entry_input.is_some_and(|input| limits.ratio_exceeded(entry_written, input));
            if entry_bomb || limits.ratio_exceeded(self.written, archive_input()) {
                return Err(exceeded(self.archive, entry, Limit::Ratio(limits.max_ratio)));
            }
        }
        file.flush().map_err(ArchiveError::io(&target))
    }
}

/// A new file only: never truncates or writes through an existing path.
fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}
