//! Scratch directories a killed worker left behind. Archives are unpacked into
//! `unpack-*` directories (in `sandbox-*` ones once files are read in a child) under the
//! temporary directory and removed when their file is done, but an aborted or out-of-memory-killed worker never gets there, and in a pod
//! `/tmp` is an emptyDir that outlives the container: a crash-looping worker would fill
//! its `sizeLimit` with them. `consume` removes them when it starts.
//!
//! Which ones: a scratch directory is a leftover when nothing in it (the directory, its files
//! and subdirectories, a bounded number of them) changed for `older_than`. In a pod one
//! worker owns `/tmp`, so every `unpack-*` directory found at start is a dead process's;
//! where several workers share one (tests, a developer's machine), a live worker's
//! directory changes while it unpacks, and a file read for longer than `older_than`
//! without a write is cut by the per-file time limit first. The age is a flag
//! (`--scratch-leftover-age-secs`), 15 minutes by default.

use std::{
    fs,
    path::Path,
    time::{Duration, SystemTime},
};

/// Prefixes of the scratch directories of file processing: archives unpack into
/// `unpack-*` (`processing::process_file`), and the file sandbox gives each child run a
/// `sandbox-*` directory, which only its parent removes, so a killed worker leaks it.
pub const PREFIXES: [&str; 2] = ["unpack-", "sandbox-"];

/// Entries looked at per directory to find its last change: enough for an archive's
/// tree, bounded for one of a million members.
const ENTRIES_LOOKED_AT: usize = 1000;

/// What a clean-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub removed: usize,
    pub kept: usize,
}

/// Removes the scratch directories ([`PREFIXES`]) directly under `dir` that did not change for
/// `older_than`. Symbolic links are never followed nor removed.
pub fn clean_leftovers(dir: &Path, older_than: Duration) -> Cleaned {
    let mut cleaned = Cleaned::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return cleaned;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !PREFIXES.iter().any(|prefix| name.to_string_lossy().starts_with(prefix)) {
            continue;
        }
        let path = entry.path();
        let Ok(metadata) = fs::symlink_metadata(&path) else { continue };
        if !metadata.is_dir() {
            continue;
        }
        let changed = last_change(&path);
        let idle = changed.and_then(|changed| now.duration_since(changed).ok());
        if idle.is_none_or(|idle| idle < older_than) {
            cleaned.kept += 1;
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                cleaned.removed += 1;
                tracing::info!(path = %path.display(), "removed a scratch directory left by a stopped worker");
            }
            Err(error) => {
                cleaned.kept += 1;
                tracing::warn!(path = %path.display(), %error, "cannot remove a leftover scratch directory");
            }
        }
    }
    cleaned
}

/// The latest modification time in `dir`'s tree (the first [`ENTRIES_LOOKED_AT`]
/// entries, breadth first, links not followed); `None` when unreadable.
fn last_change(dir: &Path) -> Option<SystemTime> {
    let mut latest = fs::symlink_metadata(dir).and_then(|m| m.modified()).ok()?;
    let mut queue = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(current) = queue.pop() {
        let Ok(entries) = fs::read_dir(&current) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > ENTRIES_LOOKED_AT {
                return Some(latest);
            }
            let Ok(metadata) = entry.metadata() else { continue };
            if let Ok(modified) = metadata.modified() {
                latest = latest.max(modified);
            }
            if metadata.is_dir() {
                queue.push(entry.path());
            }
        }
    }
    Some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, by: Duration) {
        let then = SystemTime::now() - by;
        fs::File::open(path).unwrap().set_modified(then).unwrap();
    }

    #[test]
    fn only_old_unpack_directories_are_removed() {
        let base = std::env::temp_dir().join(format!("lw-scratch-{}", uuid::Uuid::new_v4()));
        let hour = Duration::from_secs(3600);
        // A crashed worker's tree: every part of it old.
        let old = base.join("unpack-old");
        fs::create_dir_all(old.join("files/sub")).unwrap();
        fs::write(old.join("files/sub/a.csv"), "x").unwrap();
        for part in ["files/sub/a.csv", "files/sub", "files", ""] {
            age(&old.join(part), hour);
        }
        let sandbox = base.join("sandbox-old");
        fs::create_dir_all(&sandbox).unwrap();
        age(&sandbox, hour);
        // A live worker's: an old directory whose file is being written.
        let live = base.join("unpack-live");
        fs::create_dir_all(live.join("files")).unwrap();
        fs::write(live.join("files/b.csv"), "x").unwrap();
        age(&live.join("files"), hour);
        age(&live, hour);
        // Not ours, however old.
        let other = base.join("other-dir");
        fs::create_dir_all(&other).unwrap();
        age(&other, hour);
        let file = base.join("unpack-file");
        fs::write(&file, "x").unwrap();
        age(&file, hour);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&other, base.join("unpack-link")).unwrap();

        let cleaned = clean_leftovers(&base, Duration::from_secs(600));
        assert_eq!(cleaned, Cleaned { removed: 2, kept: 1 });
        assert!(!old.exists() && !sandbox.exists());
        assert!(live.join("files/b.csv").exists());
        assert!(other.exists() && file.exists());
        #[cfg(unix)]
        assert!(fs::symlink_metadata(base.join("unpack-link")).is_ok(), "links are left alone");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_missing_directory_is_nothing_to_clean() {
        let missing = Path::new("/nonexistent/lw-scratch");
        assert_eq!(clean_leftovers(missing, Duration::ZERO), Cleaned::default());
    }
}
