//! The validation rules of one Uploader, compiled once and applied to file names and
//! files: the SDK's default filenames and filecontents handlers (§1.6, §1.7) with the
//! fixes of §12 rows 1-6.

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
};

use licenseware_crds::ValidationParameters;

use super::input_type::ends_with_any;
use super::keywords::{InvalidKeyword, Keywords};
use super::pyrepr::py_list;
use super::response::{
    CONTENTS_ANALYSED, FILENAMES_ANALYSED, FileValidationResponse, Status, ValidationResponse,
};

/// A file to validate: where it is, and the name it was uploaded as (the name checks
/// and the entry use it; the worker may store the file under another name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToValidate {
    pub path: PathBuf,
    pub filename: String,
}

impl FileToValidate {
    pub fn new(path: impl Into<PathBuf>, filename: impl Into<String>) -> Self {
        Self { path: path.into(), filename: filename.into() }
    }

    /// A file known by its own base name.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let filename = path.file_name().map(|name| name.to_string_lossy().into_owned());
        let filename = filename.unwrap_or_else(|| path.to_string_lossy().into_owned());
        Self { path, filename }
    }
}

/// An Uploader's validation rules, ready to apply.
#[derive(Debug, Clone)]
pub struct Validator<'p> {
    pub(super) params: &'p ValidationParameters,
    filename_contains: Cow<'p, Result<Keywords, InvalidKeyword>>,
    name_failures: Cow<'p, NameFailures>,
    pub(super) text_contains_all: Option<Cow<'p, Result<Keywords, InvalidKeyword>>>,
    pub(super) text_contains_any: Option<Cow<'p, Result<Keywords, InvalidKeyword>>>,
}

/// The messages of the two name checks, written once per set of rules: they depend on
/// the rules alone, and `/validation` would otherwise write them again for every name.
#[derive(Debug, Clone)]
struct NameFailures {
    contains: String,
    /// Empty when `filenameEndswith` is absent (nothing can fail it).
    endswith: String,
}

impl NameFailures {
    fn new(params: &ValidationParameters, contains: &Result<Keywords, InvalidKeyword>) -> Self {
        let contains = match contains {
            Ok(keywords) => format!(
                "File must contain at least one of the following keywords: {}",
                keywords.listed()
            ),
            Err(invalid) => invalid.to_string(),
        };
        let endswith = params.filename_endswith.as_ref().map_or_else(String::new, |suffixes| {
            format!("File is not of required input type: {}", py_list(suffixes))
        });
        Self { contains, endswith }
    }
}

/// An Uploader's rules compiled once and kept (the API's registry holds one per
/// uploader): a [`Validator`] from it costs a few reference counts, not a regex build.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    params: ValidationParameters,
    filename_contains: Result<Keywords, InvalidKeyword>,
    name_failures: NameFailures,
    text_contains_all: Option<Result<Keywords, InvalidKeyword>>,
    text_contains_any: Option<Result<Keywords, InvalidKeyword>>,
}

impl CompiledRules {
    pub fn new(params: ValidationParameters) -> Self {
        let compiled = Validator::new(&params);
        let (filename_contains, name_failures, text_contains_all, text_contains_any) = (
            compiled.filename_contains.into_owned(),
            compiled.name_failures.into_owned(),
            compiled.text_contains_all.map(Cow::into_owned),
            compiled.text_contains_any.map(Cow::into_owned),
        );
        Self { params, filename_contains, name_failures, text_contains_all, text_contains_any }
    }

    pub fn params(&self) -> &ValidationParameters {
        &self.params
    }

    pub fn validator(&self) -> Validator<'_> {
        Validator {
            params: &self.params,
            filename_contains: Cow::Borrowed(&self.filename_contains),
            name_failures: Cow::Borrowed(&self.name_failures),
            text_contains_all: self.text_contains_all.as_ref().map(Cow::Borrowed),
            text_contains_any: self.text_contains_any.as_ref().map(Cow::Borrowed),
        }
    }
}

impl<'p> Validator<'p> {
    pub fn new(params: &'p ValidationParameters) -> Self {
        let compile = |terms: &Vec<String>| Cow::Owned(Keywords::new(terms, params.regex_escape));
        let no_terms = Vec::new();
        let filename_contains = compile(params.filename_contains.as_ref().unwrap_or(&no_terms));
        Self {
            params,
            name_failures: Cow::Owned(NameFailures::new(params, &filename_contains)),
            filename_contains,
            text_contains_all: params.text_contains_all.as_ref().map(compile),
            text_contains_any: params.text_contains_any.as_ref().map(compile),
        }
    }

    /// Whether the content checks read the file (text or tabular rules): without them
    /// they look at its name and that it exists, and need no containment.
    pub fn reads_contents(&self) -> bool {
        let params = self.params;
        self.text_contains_all.is_some()
            || self.text_contains_any.is_some()
            || params.required_sheets.is_some()
            || params.required_columns.is_some()
            || params.min_rows_number > 0
    }

    /// The name checks of one file: `skipped` when ignored, else filenameContains then
    /// filenameEndswith, their failures joined by a space as the SDK did.
    pub fn check_filename(&self, filename: &str) -> ValidationResponse {
        let params = self.params;
        if self.is_ignored(filename) {
            return ValidationResponse::skipped(filename, &params.filename_ignored_message);
        }
        let contains =
            matches!(&*self.filename_contains, Ok(keywords) if keywords.any_in(filename));
        // Absent: any name passes (the SDK crashed, divergence 2); empty: none does.
        let ends_well = params
            .filename_endswith
            .as_ref()
            .is_none_or(|suffixes| ends_with_any(filename, suffixes));
        let failures = &self.name_failures;
        match (contains, ends_well) {
            (true, true) => ValidationResponse::success(filename, &params.filename_valid_message),
            (false, true) => ValidationResponse::failed(filename, failures.contains.clone()),
            (true, false) => ValidationResponse::failed(filename, failures.endswith.clone()),
            (false, false) => ValidationResponse::failed(
                filename,
                format!("{} {}", failures.contains, failures.endswith),
            ),
        }
    }

    /// The name checks of a batch, skipped entries first (as the SDK ordered them).
    pub fn check_filenames<S: AsRef<str>>(
        &self,
        filenames: &[S],
        event_id: Option<&str>,
    ) -> FileValidationResponse {
        let entries = filenames.iter().map(|name| self.check_filename(name.as_ref())).collect();
        FileValidationResponse::new(FILENAMES_ANALYSED, skipped_first(entries), event_id)
    }

    /// The name then content checks of one file: a file whose name fails, or that is
    /// ignored, is not opened (the SDK answered 500 to a batch with a bad name,
    /// divergence 4).
    pub fn check_file(&self, file: &FileToValidate) -> ValidationResponse {
        let name_entry = self.check_filename(&file.filename);
        if name_entry.status != Status::Success {
            return name_entry;
        }
        let failures = self.content_failures(&file.path, &file.filename);
        if failures.is_empty() {
            name_entry
        } else {
            ValidationResponse::failed(&file.filename, failures.join(", "))
        }
    }

    /// The content checks alone, for the members of an unpacked archive: the archive's
    /// name was checked at upload, its members' names are whatever the user zipped.
    pub fn check_member(&self, file: &FileToValidate) -> ValidationResponse {
        let failures = self.content_failures(&file.path, &file.filename);
        if failures.is_empty() {
            ValidationResponse::success(&file.filename, &self.params.filename_valid_message)
        } else {
            ValidationResponse::failed(&file.filename, failures.join(", "))
        }
    }

    /// The name and content checks of a batch, skipped entries first.
    pub fn check_files(
        &self,
        files: &[FileToValidate],
        event_id: Option<&str>,
    ) -> FileValidationResponse {
        let entries = files.iter().map(|file| self.check_file(file)).collect();
        FileValidationResponse::new(CONTENTS_ANALYSED, skipped_first(entries), event_id)
    }

    /// ignoreFilenames: exact, case-sensitive equality.
    pub fn is_ignored(&self, filename: &str) -> bool {
        self.params
            .ignore_filenames
            .as_ref()
            .is_some_and(|names| names.iter().any(|n| n == filename))
    }

    /// The content failure messages of a file on disk, in the SDK's order.
    fn content_failures(&self, path: &Path, filename: &str) -> Vec<String> {
        let readable = match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_file() => Ok(()),
            Ok(_) => Err(std::io::Error::other("it is not a regular file")),
            Err(error) => Err(error),
        };
        if let Err(error) = readable.and_then(|()| std::fs::File::open(path).map(drop)) {
            return vec![crate::read::ReadError::from(error).to_string()];
        }
        let mut failures = Vec::new();
        failures.extend(self.input_type_failure(filename));
        failures.extend(self.text_failures(path));
        failures.extend(self.tabular_failures(path, filename));
        failures
    }
}

fn skipped_first(entries: Vec<ValidationResponse>) -> Vec<ValidationResponse> {
    let (mut skipped, others): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|entry| entry.status == Status::Skipped);
    skipped.extend(others);
    skipped
}

/// The SDK's filenames handler: `File names were analysed`.
pub fn validate_filenames<S: AsRef<str>>(
    filenames: &[S],
    params: &ValidationParameters,
    event_id: Option<&str>,
) -> FileValidationResponse {
    Validator::new(params).check_filenames(filenames, event_id)
}

/// The SDK's filecontents handler: `File names and contents were analysed`.
pub fn validate_files(
    files: &[FileToValidate],
    params: &ValidationParameters,
    event_id: Option<&str>,
) -> FileValidationResponse {
    Validator::new(params).check_files(files, event_id)
}
