//! Files of an event must lie inside the upload root: an event names paths, and a
//! forged or buggy one must not make the worker read `/etc/shadow` or another volume.

use std::path::{Path, PathBuf};

/// Why a file path of an event is refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{path} does not exist or cannot be read: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{path} is outside the upload root {root}")]
    OutsideRoot { path: String, root: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
}

impl PathError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "FileNotFound",
            Self::OutsideRoot { .. } => "OutsideUploadRoot",
            Self::NotAFile { .. } => "NotAFile",
        }
    }
}

/// The canonical path of `filepath` (absolute, or relative to `root`) when it is a file
/// inside `root`. `root` must be canonical already. Symbolic links are resolved first,
/// so a link inside the root pointing out of it is refused too.
pub fn check(root: &Path, filepath: &str) -> Result<PathBuf, PathError> {
    let joined = root.join(filepath);
    let canonical = joined
        .canonicalize()
        .map_err(|source| PathError::Unreadable { path: filepath.to_owned(), source })?;
    if !canonical.starts_with(root) {
        return Err(PathError::OutsideRoot {
            path: filepath.to_owned(),
            root: root.display().to_string(),
        });
    }
    if !canonical.is_file() {
        return Err(PathError::NotAFile { path: filepath.to_owned() });
    }
    Ok(canonical)
}

/// The file name history records: the last component of the path as given.
pub fn filename(filepath: &str) -> String {
    Path::new(filepath)
        .file_name()
        .map_or_else(|| filepath.to_owned(), |name| name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("lw-paths-{}", uuid::Uuid::new_v4()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("tenant/event")).unwrap();
        std::fs::write(root.join("tenant/event/a.csv"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        (base.canonicalize().unwrap(), root.canonicalize().unwrap())
    }

    #[test]
    fn files_inside_the_root_pass_absolute_or_relative() {
        let (base, root) = scratch();
        let absolute = root.join("tenant/event/a.csv");
        assert_eq!(check(&root, absolute.to_str().unwrap()).unwrap(), absolute);
        assert_eq!(check(&root, "tenant/event/a.csv").unwrap(), absolute);
        assert_eq!(check(&root, "tenant/../tenant/event/a.csv").unwrap(), absolute);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn escapes_and_missing_files_are_refused() {
        let (base, root) = scratch();
        let outside = base.join("secret.txt");
        let reason = |path: &str| check(&root, path).unwrap_err().reason();
        assert_eq!(reason(outside.to_str().unwrap()), "OutsideUploadRoot");
        assert_eq!(reason("../secret.txt"), "OutsideUploadRoot");
        assert_eq!(reason("tenant/event/missing.csv"), "FileNotFound");
        assert_eq!(reason("tenant/event"), "NotAFile");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("tenant/link.txt")).unwrap();
            assert_eq!(reason("tenant/link.txt"), "OutsideUploadRoot");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn the_filename_is_the_last_component() {
        assert_eq!(filename("/uploads/t/e/RVTools.xlsx"), "RVTools.xlsx");
        assert_eq!(filename("a.csv"), "a.csv");
    }
}
