//! Why a file could not be read. Messages name no path: they reach the uploader's user
//! (validation entries) who knows the file by its name, not by where the worker keeps it;
//! they read as the SDK's validation messages do ("File ...").

/// A file that cannot be read as asked. Each variant has a stable `reason()`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("File cannot be read: {0}")]
    Io(std::io::Error),
    #[error(
        "File is a password-protected or encrypted {format} workbook; save it without a password and upload it again"
    )]
    Encrypted { format: &'static str },
    #[error("File is not a valid {format} workbook: {detail}")]
    NotAWorkbook { format: &'static str, detail: String },
    #[error("File {name} is not a workbook (.xls, .xlsx, .xlsm, .xlsb or .ods)")]
    NotAWorkbookName { name: String },
    #[error("Workbook cannot be read: {detail}")]
    Workbook { detail: String },
    #[error("Workbook has no sheet named {sheet:?}")]
    SheetNotFound { sheet: String },
    #[error("File is not a valid csv file: {detail}")]
    Csv { detail: String },
    /// A bound of `read::limits` (a crafted or absurd file), not a broken one.
    #[error("File is too large to read: {detail}")]
    TooLarge { detail: String },
}

use super::limits::LIMIT_MARK;

impl ReadError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Io(_) => "FileUnreadable",
            Self::Encrypted { .. } => "WorkbookEncrypted",
            Self::NotAWorkbook { .. } => "NotAWorkbook",
            Self::NotAWorkbookName { .. } => "NotAWorkbookName",
            Self::Workbook { .. } => "WorkbookUnreadable",
            Self::SheetNotFound { .. } => "SheetNotFound",
            Self::Csv { .. } => "CsvUnreadable",
            Self::TooLarge { .. } => "FileTooLarge",
        }
    }

    /// A workbook that cannot be read; a limit when the detail says so (a limit hit
    /// inside the XML parser reaches here as its message).
    pub(crate) fn workbook(error: impl std::fmt::Display) -> Self {
        Self::classify(error.to_string(), |detail| Self::Workbook { detail })
    }

    /// A workbook that is not valid `format`; a limit when the detail says so.
    pub(crate) fn not_a_workbook(format: &'static str, error: impl std::fmt::Display) -> Self {
        Self::classify(error.to_string(), |detail| Self::NotAWorkbook { format, detail })
    }

    pub(crate) fn too_large(detail: impl std::fmt::Display) -> Self {
        Self::TooLarge { detail: format!("{detail}, {LIMIT_MARK}") }
    }

    fn classify(detail: String, otherwise: impl FnOnce(String) -> Self) -> Self {
        if detail.contains(LIMIT_MARK) { Self::TooLarge { detail } } else { otherwise(detail) }
    }
}

impl From<std::io::Error> for ReadError {
    fn from(error: std::io::Error) -> Self {
        if error.to_string().contains(LIMIT_MARK) {
            Self::TooLarge { detail: error.to_string() }
        } else {
            Self::Io(error)
        }
    }
}

impl From<csv::Error> for ReadError {
    fn from(error: csv::Error) -> Self {
        let detail = error.to_string();
        match error.into_kind() {
            csv::ErrorKind::Io(error) => error.into(),
            _ => Self::Csv { detail },
        }
    }
}
