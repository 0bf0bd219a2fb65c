use std::path::PathBuf;

/// An entry's name as a path relative to the destination, or `None` when it would land
/// outside it: absolute (`/etc/x`, `C:\x`, `\\server\x`), with a `..` component, or
/// with a NUL byte. Backslashes count as separators (Windows tools write them). `.`
/// and empty components are dropped, so `./a//b` is `a/b`; the root itself is empty.
pub(super) fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') {
        return None;
    }
    let name = name.replace('\\', "/");
    if name.starts_with('/') {
        return None;
    }
    let mut path = PathBuf::new();
    for (position, component) in name.split('/').enumerate() {
        match component {
            "" | "." => {}
            ".." => return None,
            drive if position == 0 && is_drive(drive) => return None,
            normal => path.push(normal),
        }
    }
    Some(path)
}

/// `C:` and the like: absolute on Windows, where the archive may have been made.
fn is_drive(component: &str) -> bool {
    let bytes = component.as_bytes();
    bytes.len() == 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_are_kept_and_normalised() {
        assert_eq!(safe_relative_path("a/b.csv"), Some(PathBuf::from("a/b.csv")));
        assert_eq!(safe_relative_path("./a//b.csv"), Some(PathBuf::from("a/b.csv")));
        assert_eq!(safe_relative_path("dir\\file.csv"), Some(PathBuf::from("dir/file.csv")));
        assert_eq!(safe_relative_path("a:b"), Some(PathBuf::from("a:b")));
        assert_eq!(safe_relative_path("..."), Some(PathBuf::from("...")));
        assert_eq!(safe_relative_path("./"), Some(PathBuf::new()));
    }

    #[test]
    fn names_escaping_the_destination_are_refused() {
        for name in
            ["../x", "a/../../x", "a/..", "/etc/passwd", "\\\\server\\x", "C:\\x", "c:/x", "a\0b"]
        {
            assert_eq!(safe_relative_path(name), None, "{name:?}");
        }
    }
}
