//! The recursive walk: unpack, find archives in the output, unpack each next to itself,
//! delete it, and so on down to `max_depth` levels.

use std::path::{Path, PathBuf};

use super::error::{ArchiveError, Limit};
use super::format::{ArchiveFormat, archive_format};
use super::limits::{ArchiveLimits, Budget, exceeded};
use super::tar_format::unpack_tar;
use super::write::ArchiveRun;
use super::zip_format::unpack_zip;

/// The result of an unpack: the directory that holds it, and the regular files in it
/// (nested archives already replaced by their content), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Where the SDK unpacks an archive: `{path}_extracted`, a sibling of the archive.
pub fn extracted_dir(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push("_extracted");
    PathBuf::from(name)
}

/// Unpacks `archive` into [`extracted_dir`], recursively. A directory already there is
/// the leftover of an interrupted attempt (the worker's upload directory is its own,
/// and a redelivered event unpacks again): it is replaced.
pub fn unpack(archive: &Path, limits: &ArchiveLimits) -> Result<Unpacked, ArchiveError> {
    let dest = extracted_dir(archive);
    remove_leftover(&dest)?;
    unpack_into(archive, &dest, limits)
}

/// Unpacks `archive` into `dest`, recursively. `dest` must not exist or be an empty
/// directory. On error, everything written is removed (and `dest` too if this call
/// created it).
pub fn unpack_into(
    archive: &Path,
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<Unpacked, ArchiveError> {
    let format = archive_format(archive)
        .ok_or_else(|| ArchiveError::NotAnArchive { path: archive.to_owned() })?;
    let created = prepare_destination(dest)?;
    let mut budget = Budget::new(*limits);
    let result = unpack_level(archive, format, dest, &mut budget, 1).and_then(|()| {
        let mut files = Vec::new();
        list_files(dest, &mut files)?;
        files.sort();
        Ok(Unpacked { dir: dest.to_owned(), files })
    });
    if result.is_err() {
        // Best effort: the error being reported matters more than a cleanup failure.
        let _ = if created { std::fs::remove_dir_all(dest) } else { empty_directory(dest) };
    }
    result
}

fn unpack_level(
    archive: &Path,
    format: ArchiveFormat,
    dest: &Path,
    budget: &mut Budget,
    depth: u32,
) -> Result<(), ArchiveError> {
    if depth > budget.limits.max_depth {
        let name = archive.file_name().unwrap_or_default().to_string_lossy();
        return Err(exceeded(archive, &name, Limit::Depth(budget.limits.max_depth)));
    }
    let mut run = ArchiveRun { archive, dest, written: 0 };
    match format {
        ArchiveFormat::Zip => unpack_zip(&mut run, budget)?,
        _ => unpack_tar(&mut run, format, budget)?,
    }
    // Found before any is unpacked, so that this level's walk never enters the
    // directories of the nested ones (they handle their own nesting).
    let mut nested = Vec::new();
    find_archives(dest, &mut nested)?;
    nested.sort_by(|(left, _), (right, _)| left.cmp(right));
    for (inner, inner_format) in nested {
        let inner_dest = extracted_dir(&inner);
        prepare_destination(&inner_dest)?;
        unpack_level(&inner, inner_format, &inner_dest, budget, depth + 1)?;
        std::fs::remove_file(&inner).map_err(ArchiveError::io(&inner))?;
    }
    Ok(())
}

/// Creates `dest` when missing (returns true), accepts an empty directory (false).
fn prepare_destination(dest: &Path) -> Result<bool, ArchiveError> {
    match std::fs::symlink_metadata(dest) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dest).map_err(ArchiveError::io(dest))?;
            Ok(true)
        }
        Err(source) => Err(ArchiveError::Io { path: dest.to_owned(), source }),
        Ok(metadata) if metadata.is_dir() && is_empty_dir(dest)? => Ok(false),
        Ok(_) => Err(ArchiveError::DestinationNotEmpty { path: dest.to_owned() }),
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool, ArchiveError> {
    let mut entries = std::fs::read_dir(dir).map_err(ArchiveError::io(dir))?;
    Ok(entries.next().is_none())
}

fn remove_leftover(dest: &Path) -> Result<(), ArchiveError> {
    let removed = match std::fs::symlink_metadata(dest) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // A link is removed itself, never followed.
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(dest),
        _ => std::fs::remove_file(dest),
    };
    removed.map_err(ArchiveError::io(dest))
}

fn empty_directory(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Archives among the regular files under `dir` (links are not followed: none are
/// created, but the walk does not rely on it).
fn find_archives(
    dir: &Path,
    found: &mut Vec<(PathBuf, ArchiveFormat)>,
) -> Result<(), ArchiveError> {
    for entry in std::fs::read_dir(dir).map_err(ArchiveError::io(dir))? {
        let entry = entry.map_err(ArchiveError::io(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(ArchiveError::io(&path))?;
        if file_type.is_dir() {
            find_archives(&path, found)?;
        } else if let Some(format) = file_type.is_file().then(|| archive_format(&path)).flatten() {
            found.push((path, format));
        }
    }
    Ok(())
}

fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ArchiveError> {
    for entry in std::fs::read_dir(dir).map_err(ArchiveError::io(dir))? {
        let entry = entry.map_err(ArchiveError::io(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(ArchiveError::io(&path))?;
        if file_type.is_dir() {
            list_files(&path, files)?;
        } else if file_type.is_file() {
            files.push(path);
        }
    }
    Ok(())
}
