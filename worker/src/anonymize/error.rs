//! Why anonymization or decryption did not happen. Setup errors (key file, rules) stop
//! the command before any file is touched; file errors name the file and let the other
//! files go on.

use std::path::PathBuf;

/// The key file cannot give a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the key file {path} is empty: it must hold a passphrase")]
    Empty { path: PathBuf },
    #[error("cannot derive a key from the passphrase: {0}")]
    Derivation(String),
}

impl KeyError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "KeyFileUnreadable",
            Self::Empty { .. } => "KeyFileEmpty",
            Self::Derivation(_) => "KeyDerivationFailed",
        }
    }
}

/// A pattern of the Uploader's `encryption` rules is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("encryption.{target} pattern {pattern:?} is not a valid regular expression: {source}")]
pub struct RuleError {
    /// Which list the pattern is in: `filepaths`, `filecontent` or `columns`.
    pub target: &'static str,
    pub pattern: String,
    pub source: Box<regex::Error>,
}

impl RuleError {
    pub fn reason(&self) -> &'static str {
        "InvalidPattern"
    }
}

/// A value could not be turned into a token, or a token back into its value.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{token:?} is not a token: the text between the tags is not base64")]
    NotBase64 { token: String },
    #[error("{token:?} does not decrypt with this key (another key, or a damaged token)")]
    WrongKeyOrDamaged { token: String },
    #[error("the value cannot be encrypted: {0}")]
    Encrypt(String),
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotBase64 { .. } => "TokenNotBase64",
            Self::WrongKeyOrDamaged { .. } => "TokenDoesNotDecrypt",
            Self::Encrypt(_) => "EncryptFailed",
        }
    }
}

/// One input file could not be anonymized. The other files go on.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable CSV file: {source}")]
    Csv { path: PathBuf, source: Box<csv::Error> },
    #[error("{path} is not a readable workbook: {source}")]
    Workbook { path: PathBuf, source: Box<calamine::Error> },
    /// Refused by the readers' guards before calamine opened it (a crafted workbook).
    #[error("{path} is not a readable workbook: {source}")]
    WorkbookRefused { path: PathBuf, source: Box<crate::read::ReadError> },
    #[error("cannot write the workbook {path}: {source}")]
    WorkbookWrite { path: PathBuf, source: Box<rust_xlsxwriter::XlsxError> },
    #[error("{input} would be written to {output}, which is an input file; choose another --out")]
    WouldOverwriteInput { input: PathBuf, output: PathBuf },
    #[error("{input} and {other} would both be written to {output}")]
    SameOutput { input: PathBuf, other: PathBuf, output: PathBuf },
    #[error("{path}: {source}")]
    Token { path: PathBuf, source: TokenError },
    /// The file's reader (a sandbox child) stopped: a limit, or a crash.
    #[error("{path}: {message}")]
    Contained { path: PathBuf, message: String },
}

impl FileError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "FileUnreadable",
            Self::Write { .. } => "OutputUnwritable",
            Self::Csv { .. } => "CsvInvalid",
            Self::Workbook { .. } => "WorkbookInvalid",
            Self::WorkbookRefused { source, .. } => source.reason(),
            Self::WorkbookWrite { .. } => "WorkbookUnwritable",
            Self::WouldOverwriteInput { .. } => "OutputIsInput",
            Self::SameOutput { .. } => "OutputCollision",
            Self::Token { source, .. } => source.reason(),
            Self::Contained { .. } => "FileReaderStopped",
        }
    }
}
