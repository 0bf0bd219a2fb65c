//! Anonymization: an Uploader's `encryption` rules applied to files before they leave
//! the customer's site, and the tokens read back with the key (`anonymize`, `decrypt`).
//!
//! - [`token`]: the SDK's token form around AES-256-SIV, deterministic per key;
//!   [`legacy`]: the SDK v2 form (AES-256-CBC), read only.
//! - [`key`]: the key file (a passphrase) and the keys derived from it.
//! - [`rules`]: `filepaths` and `filecontent` patterns.
//! - [`plan`]: which files, written where; then per kind of file [`text`],
//!   [`delimited`] (CSV) and [`workbook`] (xlsx/xls), each written whole or not at all
//!   ([`output`]). Input files are only ever read.

pub mod delimited;
pub mod error;
pub mod key;
pub mod legacy;
pub mod output;
pub mod plan;
pub mod rules;
pub mod text;
pub mod token;
pub mod workbook;

use std::path::{Path, PathBuf};

use licenseware_crds::EncryptionParameters;

pub use error::{FileError, KeyError, RuleError, TokenError};
pub use key::Keys;
pub use plan::FileKind;
pub use rules::Rules;
pub use token::Tokenizer;

/// What was done to a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Values of named columns replaced (CSV or workbook).
    Columns,
    /// `filecontent` matches replaced in the text.
    Text,
    /// No named column nor `filecontent` match in the content: values unchanged (only
    /// the path anonymized; a workbook other than .xlsx is still converted).
    Unchanged,
    /// A kind of file the rules are not applied to (archives among them): copied as it
    /// is, only its path anonymized.
    NotRead,
}

/// The outcome of one input file.
#[derive(Debug)]
pub enum FileOutcome {
    Written { input: PathBuf, output: PathBuf, treatment: Treatment },
    Failed(FileError),
}

/// The compiled rules of one Uploader with the key's tokenizer.
#[derive(Debug)]
pub struct Anonymizer {
    tokenizer: Tokenizer,
    filepaths: Rules,
    filecontent: Rules,
    columns: Vec<String>,
}

impl Anonymizer {
    pub fn new(encryption: &EncryptionParameters, tokenizer: Tokenizer) -> Result<Self, RuleError> {
        Ok(Self {
            tokenizer,
            filepaths: Rules::compile("filepaths", &encryption.filepaths)?,
            filecontent: Rules::compile("filecontent", &encryption.filecontent)?,
            columns: encryption.columns.clone(),
        })
    }

    /// Anonymizes the inputs (files, or directories walked) into `out_dir`, reporting
    /// each file's outcome as it is known. Returns how many files failed.
    pub fn anonymize(
        &mut self,
        inputs: &[PathBuf],
        out_dir: &Path,
        on_outcome: &mut dyn FnMut(&FileOutcome),
    ) -> usize {
        self.anonymize_with(inputs, out_dir, on_outcome, &mut |anonymizer, file| {
            anonymizer.anonymize_file(file)
        })
    }

    /// [`Self::anonymize`] with each planned file's content done by `content` (e.g. in
    /// a sandbox child); the plan (walking, output names) is made here.
    pub fn anonymize_with(
        &mut self,
        inputs: &[PathBuf],
        out_dir: &Path,
        on_outcome: &mut dyn FnMut(&FileOutcome),
        content: &mut dyn FnMut(&mut Self, &plan::PlannedFile) -> Result<Treatment, FileError>,
    ) -> usize {
        let plan = plan::plan(inputs, out_dir, &self.filepaths, &mut self.tokenizer);
        let mut failed = 0;
        for failure in plan.failures {
            failed += 1;
            on_outcome(&FileOutcome::Failed(failure));
        }
        for file in plan.files {
            let outcome = match content(self, &file) {
                Ok(treatment) => {
                    FileOutcome::Written { input: file.input, output: file.output, treatment }
                }
                Err(error) => {
                    failed += 1;
                    FileOutcome::Failed(error)
                }
            };
            on_outcome(&outcome);
        }
        failed
    }

    /// One planned file's content, written whole or not at all.
    pub fn anonymize_file(&mut self, file: &plan::PlannedFile) -> Result<Treatment, FileError> {
        let Self { tokenizer, filecontent, columns, .. } = self;
        let input = file.input.as_path();
        let mut treatment = Treatment::NotRead;
        output::write_whole(&file.output, |temporary| {
            treatment = match file.kind {
                FileKind::Workbook
                    if workbook::anonymize(input, temporary, columns, tokenizer)? =>
                {
                    Treatment::Columns
                }
                FileKind::Workbook => Treatment::Unchanged,
                FileKind::Csv
                    if delimited::anonymize(input, temporary, columns, filecontent, tokenizer)? =>
                {
                    Treatment::Columns
                }
                FileKind::Csv | FileKind::Text if !filecontent.is_empty() => {
                    text::anonymize(input, temporary, filecontent, tokenizer)?;
                    Treatment::Text
                }
                FileKind::Csv | FileKind::Text => {
                    text::copy(input, temporary)?;
                    Treatment::Unchanged
                }
                FileKind::Other => {
                    text::copy(input, temporary)?;
                    Treatment::NotRead
                }
            };
            Ok(())
        })?;
        Ok(treatment)
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    /// Replaces every token in `text` by its plain value.
    fn reveal_all(text: &str, tokenizer: &mut Tokenizer) -> String {
        let tokens = Regex::new("#sc#[A-Za-z0-9:=-]+#ec#").unwrap();
        let mut revealed = text.to_owned();
        for token in tokens.find_iter(text) {
            let plain = tokenizer.reveal(token.as_str()).unwrap();
            revealed = revealed.replacen(token.as_str(), std::str::from_utf8(&plain).unwrap(), 1);
        }
        revealed
    }

    /// SDK §11 case 24: paths round trip, with this tool's tokens and with SDK v2 ones.
    #[test]
    fn sdk_path_cases_round_trip() {
        let keys = Keys::from_passphrase(b"password").unwrap();
        let mut tokenizer = Tokenizer::new(&keys).unwrap();
        let cases: [(&[&str], &str); 3] = [
            (&["SECRET"], "/uploads/SECRET/report.csv"),
            (&["deviceName", "database"], "/data/deviceName/database/options.txt"),
            (&["LMS_OPTIONS_(.*?).csv"], "/lms/LMS_OPTIONS_server42.csv"),
        ];
        for (patterns, path) in cases {
            let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            let rules = Rules::compile("filepaths", &owned).unwrap();
            let anonymized = rules.apply(path.as_bytes(), &mut tokenizer).unwrap();
            let anonymized = String::from_utf8(anonymized.into_owned()).unwrap();
            assert_ne!(anonymized, path);
            assert!(!anonymized.contains("SECRET") && !anonymized.contains("server42"));
            assert_eq!(reveal_all(&anonymized, &mut tokenizer), path);

            // The SDK v2 way: each match's value encrypted with a random IV.
            let mut v2 = path.to_owned();
            for pattern in patterns {
                let pattern = Regex::new(pattern).unwrap();
                let captures = pattern.captures(path).unwrap();
                let value = captures.get(1).or(captures.get(0)).unwrap().as_str();
                let sealed = legacy::encrypt(&keys.legacy, legacy::random_iv(), value.as_bytes());
                v2 = v2.replace(value, &token::encode(&sealed));
            }
            assert_ne!(v2, path);
            assert_eq!(reveal_all(&v2, &mut tokenizer), path);
        }
    }
}
