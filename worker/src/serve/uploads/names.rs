//! Upload file names: the client's name is never a path. Only its last component is
//! kept, cleaned of what a file system or a shell treats specially, and names that
//! repeat in one upload are kept apart.

use std::collections::HashSet;

/// Longest stored name, in bytes (file systems allow 255).
const MAX_NAME_BYTES: usize = 200;

/// The name a file is stored and validated under.
pub fn sanitize(client_name: &str) -> String {
    let last = client_name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Leading dots would make hidden files, or `.`/`..`.
    let trimmed = cleaned.trim().trim_start_matches('.');
    let mut name = if trimmed.is_empty() { "file".to_owned() } else { trimmed.to_owned() };
    if name.len() > MAX_NAME_BYTES {
        name = shorten(&name);
    }
    name
}

/// Cut to the byte limit on a character boundary, keeping the extension(s) that the
/// validation rules look at.
fn shorten(name: &str) -> String {
    let extension = name.find('.').map(|dot| &name[dot..]).filter(|e| e.len() <= 20).unwrap_or("");
    let mut stem_end = MAX_NAME_BYTES - extension.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{extension}", &name[..stem_end])
}

/// Names already used in one upload.
#[derive(Debug, Default)]
pub struct UsedNames(HashSet<String>);

impl UsedNames {
    /// `name`, or `name (2)`, `name (3)`... before the extension when it is taken.
    pub fn claim(&mut self, name: String) -> String {
        if self.0.insert(name.clone()) {
            return name;
        }
        let (stem, extension) = match name.find('.') {
            Some(0) | None => (name.as_str(), ""),
            Some(dot) => name.split_at(dot),
        };
        let mut n = 2;
        loop {
            let candidate = format!("{stem} ({n}){extension}");
            if self.0.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cut_to_their_last_component() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("a/../../b.xlsx"), "b.xlsx");
        assert_eq!(sanitize("C:\\Users\\x\\RVTools.xlsx"), "RVTools.xlsx");
        assert_eq!(sanitize(".."), "file");
        assert_eq!(sanitize("../"), "file");
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize(""), "file");
        assert_eq!(sanitize("a\nb\0c.csv"), "a_b_c.csv");
        assert_eq!(sanitize("RVTools.xlsx"), "RVTools.xlsx");
    }

    #[test]
    fn long_names_keep_their_extension_and_utf8() {
        let long = format!("{}.xlsx", "é".repeat(300));
        let short = sanitize(&long);
        assert!(short.len() <= MAX_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with(".xlsx"));
    }

    #[test]
    fn repeated_names_are_kept_apart() {
        let mut used = UsedNames::default();
        assert_eq!(used.claim("a.csv".into()), "a.csv");
        assert_eq!(used.claim("a.csv".into()), "a (2).csv");
        assert_eq!(used.claim("a.csv".into()), "a (3).csv");
        assert_eq!(used.claim("a (2).csv".into()), "a (2) (2).csv");
        assert_eq!(used.claim("noext".into()), "noext");
        assert_eq!(used.claim("noext".into()), "noext (2)");
    }
}
