//! Which files are anonymized and where each one is written.
//!
//! Layout: a FILE argument is written to `{out}/{its anonymized name}`; the files found
//! below a DIR argument (walked recursively, symbolic links followed, each directory
//! once) to `{out}/{their anonymized path relative to DIR}`. The `filepaths` rules see
//! that output-relative path with `/` separators, so a pattern can span folders, but
//! never the location of the input on this machine. Tokens contain `:` and `-`: fine on
//! Linux and macOS, not valid in Windows file names. A name longer than the file system
//! allows (about 170 bytes of matched value) fails to be written, with its error.
//!
//! Workbooks other than .xlsx are written as .xlsx: the output name ends in `.xlsx`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::error::FileError;
use super::rules::Rules;
use super::token::Tokenizer;

/// How a file's content is anonymized, from the input's extension (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// .txt, .xml: `filecontent` rules on the whole text.
    Text,
    /// .csv: `columns` when one of its headers is named, else like text.
    Csv,
    /// .xlsx, .xls, .xlsm, .xlsb, .ods: `columns`, written as .xlsx.
    Workbook,
    /// Anything else (archives too): copied unchanged.
    Other,
}

impl FileKind {
    pub fn of(path: &Path) -> Self {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        match extension.to_ascii_lowercase().as_str() {
            "txt" | "xml" => Self::Text,
            "csv" => Self::Csv,
            "xlsx" | "xls" | "xlsm" | "xlsb" | "ods" => Self::Workbook,
            _ => Self::Other,
        }
    }
}

/// One input file and the output it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    pub input: PathBuf,
    pub output: PathBuf,
    pub kind: FileKind,
}

/// The files to write, and the inputs that cannot be (unreadable, or clashing outputs).
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<PlannedFile>,
    pub failures: Vec<FileError>,
}

/// Lists the inputs and names their outputs under `out_dir`.
pub fn plan(
    inputs: &[PathBuf],
    out_dir: &Path,
    path_rules: &Rules,
    tokenizer: &mut Tokenizer,
) -> Plan {
    let mut plan = Plan::default();
    // The output directory may sit inside an input directory: never walk into it.
    let out_canonical = out_dir.canonicalize().ok();
    let mut found = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Err(source) => plan.failures.push(FileError::Read { path: input.clone(), source }),
            Ok(meta) if meta.is_dir() => {
                let mut walk = Walk { out_dir: out_canonical.as_deref(), ..Walk::default() };
                walk.directory(input, input, &mut found, &mut plan.failures);
            }
            Ok(_) => {
                let name = input.file_name().map(PathBuf::from).unwrap_or_else(|| input.clone());
                found.push((input.clone(), name));
            }
        }
    }
    let inputs: HashSet<PathBuf> =
        found.iter().filter_map(|(input, _)| input.canonicalize().ok()).collect();
    let mut outputs: HashMap<PathBuf, PathBuf> = HashMap::new();
    for (input, relative) in found {
        let kind = FileKind::of(&input);
        let relative = match output_path(&relative, kind, path_rules, tokenizer) {
            Ok(relative) => relative,
            Err(source) => {
                plan.failures.push(FileError::Token { path: input, source });
                continue;
            }
        };
        let output = out_dir.join(relative);
        if output.canonicalize().is_ok_and(|existing| inputs.contains(&existing)) {
            plan.failures.push(FileError::WouldOverwriteInput { input, output });
            continue;
        }
        if let Some(other) = outputs.get(&output) {
            plan.failures.push(FileError::SameOutput { input, other: other.clone(), output });
            continue;
        }
        outputs.insert(output.clone(), input.clone());
        plan.files.push(PlannedFile { input, output, kind });
    }
    plan
}

/// The anonymized relative path, with `.xlsx` for workbooks written in that format.
fn output_path(
    relative: &Path,
    kind: FileKind,
    path_rules: &Rules,
    tokenizer: &mut Tokenizer,
) -> Result<PathBuf, super::error::TokenError> {
    // Lossy: a path that is not UTF-8 is rare on the systems that produce these files.
    let text = relative.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
    let anonymized = path_rules.apply(text.as_bytes(), tokenizer)?;
    let mut anonymized = String::from_utf8_lossy(&anonymized).into_owned();
    let is_xlsx = relative.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if kind == FileKind::Workbook && !is_xlsx {
        anonymized.push_str(".xlsx");
    }
    // Tokens hold no `/` and the walk yields no `..` nor root, so the path stays below
    // `--out`; empty components (a token-free match of `/`) are dropped.
    Ok(anonymized.split('/').filter(|part| !part.is_empty() && *part != "..").collect())
}

/// A recursive directory walk in name order, each directory visited once.
#[derive(Debug, Default)]
struct Walk<'a> {
    out_dir: Option<&'a Path>,
    visited: HashSet<PathBuf>,
}

impl Walk<'_> {
    fn directory(
        &mut self,
        root: &Path,
        directory: &Path,
        found: &mut Vec<(PathBuf, PathBuf)>,
        failures: &mut Vec<FileError>,
    ) {
        let read = |source| FileError::Read { path: directory.to_owned(), source };
        let canonical = match directory.canonicalize() {
            Ok(canonical) => canonical,
            Err(source) => return failures.push(read(source)),
        };
        if self.out_dir == Some(canonical.as_path()) || !self.visited.insert(canonical) {
            return;
        }
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(source) => return failures.push(read(source)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(source) => failures.push(read(source)),
            }
        }
        paths.sort();
        for path in paths {
            match std::fs::metadata(&path) {
                Err(source) => failures.push(FileError::Read { path, source }),
                Ok(meta) if meta.is_dir() => self.directory(root, &path, found, failures),
                Ok(_) => {
                    let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
                    found.push((path, relative));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::key::Keys;

    fn tokenizer() -> Tokenizer {
        Tokenizer::new(&Keys::from_passphrase(b"plan").unwrap()).unwrap()
    }

    fn rules(patterns: &[&str]) -> Rules {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Rules::compile("filepaths", &patterns).unwrap()
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }

    #[test]
    fn files_keep_their_name_and_directories_their_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        touch(&data.join("DeviceX/report.csv"));
        touch(&data.join("b.xls"));
        touch(&dir.path().join("single/DeviceX.txt"));
        let out = dir.path().join("out");
        let inputs = [data.clone(), dir.path().join("single/DeviceX.txt")];
        let mut tokenizer = tokenizer();
        let plan = plan(&inputs, &out, &rules(&["DeviceX"]), &mut tokenizer);
        assert!(plan.failures.is_empty(), "{:?}", plan.failures);
        let token = tokenizer.token(b"DeviceX").unwrap();
        let outputs: Vec<_> = plan.files.iter().map(|f| (f.output.clone(), f.kind)).collect();
        assert_eq!(
            outputs,
            [
                (out.join(format!("{token}/report.csv")), FileKind::Csv),
                (out.join("b.xls.xlsx"), FileKind::Workbook),
                (out.join(format!("{token}.txt")), FileKind::Text),
            ]
        );
    }

    #[test]
    fn the_out_directory_inside_an_input_directory_is_not_walked() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a.csv"));
        touch(&dir.path().join("out/old.csv"));
        let plan =
            plan(&[dir.path().to_owned()], &dir.path().join("out"), &rules(&[]), &mut tokenizer());
        let inputs: Vec<_> = plan.files.iter().map(|f| f.input.clone()).collect();
        assert_eq!(inputs, [dir.path().join("a.csv")]);
    }

    #[test]
    fn an_output_that_is_an_input_or_shared_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a.csv"));
        let first = plan(&[dir.path().join("a.csv")], dir.path(), &rules(&[]), &mut tokenizer());
        assert_eq!(first.failures[0].reason(), "OutputIsInput");
        assert!(first.files.is_empty());

        touch(&dir.path().join("x/b.csv"));
        touch(&dir.path().join("y/b.csv"));
        let inputs = [dir.path().join("x/b.csv"), dir.path().join("y/b.csv")];
        let second = plan(&inputs, &dir.path().join("out"), &rules(&[]), &mut tokenizer());
        assert_eq!(second.failures[0].reason(), "OutputCollision");
        assert_eq!(second.files.len(), 1, "the first one is written");
    }

    #[test]
    fn a_missing_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.csv");
        let plan = plan(std::slice::from_ref(&missing), dir.path(), &rules(&[]), &mut tokenizer());
        assert!(plan.failures[0].to_string().contains(&*missing.to_string_lossy()));
        assert_eq!(plan.failures[0].reason(), "FileUnreadable");
    }
}
