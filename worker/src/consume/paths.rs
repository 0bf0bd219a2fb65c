//! Files of an event must lie inside the event's own upload directory,
//! `{upload root}/{tenant_id}/{event_id}/`: an event names paths, and a forged or buggy
//! one must make the worker read neither `/etc/shadow` nor another tenant's upload.

use std::path::{Path, PathBuf};

/// Why a file path of an event is refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{path} does not exist or cannot be read: {source}")]
    Unreadable { path: String, source: std::io::Error },
    #[error("{path} is outside the upload root {root}")]
    OutsideRoot { path: String, root: String },
    #[error("{path} is outside the event's upload directory {dir}")]
    OutsideEventDirectory { path: String, dir: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("the event's {field} {value:?} is not a single safe path segment")]
    UnsafeSegment { field: &'static str, value: String },
}

impl PathError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "FileNotFound",
            Self::OutsideRoot { .. } => "OutsideUploadRoot",
            Self::OutsideEventDirectory { .. } => "OutsideEventDirectory",
            Self::NotAFile { .. } => "NotAFile",
            Self::UnsafeSegment { .. } => "UnsafePathSegment",
        }
    }
}

/// `value` as one path component that names a child of its parent: not empty, not `.`
/// or `..`, no separator, no NUL, and not so long that it cannot be a file name.
pub fn safe_segment(field: &'static str, value: &str) -> Result<(), PathError> {
    let safe = !value.is_empty()
        && value.len() <= 255
        && value != "."
        && value != ".."
        && !value.contains(['/', '\\', '\0']);
    if safe { Ok(()) } else { Err(PathError::UnsafeSegment { field, value: value.to_owned() }) }
}

/// The directory an event's files must be in. It is not canonicalized: a tenant or
/// event directory that is itself a symbolic link to elsewhere (another tenant's
/// upload) must not become the reference the files are checked against.
pub fn event_dir(root: &Path, tenant_id: &str, event_id: &str) -> Result<PathBuf, PathError> {
    safe_segment("tenant_id", tenant_id)?;
    safe_segment("event_id", event_id)?;
    Ok(root.join(tenant_id).join(event_id))
}

/// The canonical path of `filepath` (absolute, or relative to `root`) when it is a file
/// inside the event's directory `{root}/{tenant_id}/{event_id}/`. `root` must be
/// canonical already. Symbolic links are resolved first, so a link pointing out of the
/// event's directory is refused too.
pub fn check(
    root: &Path,
    tenant_id: &str,
    event_id: &str,
    filepath: &str,
) -> Result<PathBuf, PathError> {
    let dir = event_dir(root, tenant_id, event_id)?;
    let canonical = root
        .join(filepath)
        .canonicalize()
        .map_err(|source| PathError::Unreadable { path: filepath.to_owned(), source })?;
    if !canonical.starts_with(root) {
        return Err(PathError::OutsideRoot {
            path: filepath.to_owned(),
            root: root.display().to_string(),
        });
    }
    if !canonical.starts_with(&dir) {
        return Err(PathError::OutsideEventDirectory {
            path: filepath.to_owned(),
            dir: dir.display().to_string(),
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

    const TENANT: &str = "tenant";
    const EVENT: &str = "event";

    fn scratch() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("lw-paths-{}", uuid::Uuid::new_v4()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("tenant/event")).unwrap();
        std::fs::create_dir_all(root.join("tenant/other-event")).unwrap();
        std::fs::create_dir_all(root.join("other-tenant/event")).unwrap();
        std::fs::write(root.join("tenant/event/a.csv"), "x").unwrap();
        std::fs::write(root.join("tenant/other-event/b.csv"), "x").unwrap();
        std::fs::write(root.join("other-tenant/event/c.csv"), "x").unwrap();
        std::fs::write(root.join("tenant/loose.csv"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        (base.canonicalize().unwrap(), root.canonicalize().unwrap())
    }

    fn reason(root: &Path, path: &str) -> &'static str {
        check(root, TENANT, EVENT, path).unwrap_err().reason()
    }

    #[test]
    fn files_inside_the_event_directory_pass_absolute_or_relative() {
        let (base, root) = scratch();
        let absolute = root.join("tenant/event/a.csv");
        let checked = |path: &str| check(&root, TENANT, EVENT, path).unwrap();
        assert_eq!(checked(absolute.to_str().unwrap()), absolute);
        assert_eq!(checked("tenant/event/a.csv"), absolute);
        assert_eq!(checked("tenant/../tenant/event/a.csv"), absolute);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn escapes_and_missing_files_are_refused() {
        let (base, root) = scratch();
        let outside = base.join("secret.txt");
        assert_eq!(reason(&root, outside.to_str().unwrap()), "OutsideUploadRoot");
        assert_eq!(reason(&root, "../secret.txt"), "OutsideUploadRoot");
        assert_eq!(reason(&root, "tenant/event/missing.csv"), "FileNotFound");
        assert_eq!(reason(&root, "tenant/event"), "NotAFile");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("tenant/event/link.txt")).unwrap();
            assert_eq!(reason(&root, "tenant/event/link.txt"), "OutsideUploadRoot");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn other_tenants_and_other_events_are_refused() {
        let (base, root) = scratch();
        assert_eq!(reason(&root, "other-tenant/event/c.csv"), "OutsideEventDirectory");
        let absolute = root.join("other-tenant/event/c.csv");
        assert_eq!(reason(&root, absolute.to_str().unwrap()), "OutsideEventDirectory");
        assert_eq!(reason(&root, "tenant/other-event/b.csv"), "OutsideEventDirectory");
        assert_eq!(reason(&root, "tenant/loose.csv"), "OutsideEventDirectory");
        assert_eq!(
            reason(&root, "tenant/event/../../other-tenant/event/c.csv"),
            "OutsideEventDirectory"
        );
        #[cfg(unix)]
        {
            // A link to another tenant's file, and an event directory that is a link to
            // another tenant's: both resolve elsewhere.
            let theirs = root.join("other-tenant/event/c.csv");
            std::os::unix::fs::symlink(&theirs, root.join("tenant/event/theirs.csv")).unwrap();
            assert_eq!(reason(&root, "tenant/event/theirs.csv"), "OutsideEventDirectory");
            std::os::unix::fs::symlink(root.join("other-tenant/event"), root.join("tenant/linked"))
                .unwrap();
            let linked = check(&root, TENANT, "linked", "tenant/linked/c.csv").unwrap_err();
            assert_eq!(linked.reason(), "OutsideEventDirectory");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn tenant_and_event_must_be_single_segments() {
        let (base, root) = scratch();
        for (tenant, event) in
            [("..", EVENT), (TENANT, ".."), ("a/b", EVENT), ("", EVENT), (TENANT, ".")]
        {
            let error = check(&root, tenant, event, "tenant/event/a.csv").unwrap_err();
            assert_eq!(error.reason(), "UnsafePathSegment", "{tenant:?}/{event:?}");
        }
        assert!(safe_segment("event_id", &"x".repeat(256)).is_err());
        assert!(safe_segment("event_id", "6a2f41a3-c54c-4a3a-8cbe-7d7e2d3c1b01").is_ok());
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn the_filename_is_the_last_component() {
        assert_eq!(filename("/uploads/t/e/RVTools.xlsx"), "RVTools.xlsx");
        assert_eq!(filename("a.csv"), "a.csv");
    }
}
