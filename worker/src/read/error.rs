//! Why a file could not be read. Messages name no path: they reach the uploader's user
//! (validation entries) who knows the file by its name, not by where the worker keeps it;
//! they read as the SDK's validation messages do ("File ...").

/// A file that cannot be read as asked. Each variant has a stable `reason()`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("File cannot be read: {0}")]
    Io(#[from] std::io::Error),
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
}

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
        }
    }

    pub(crate) fn workbook(error: impl std::fmt::Display) -> Self {
        Self::Workbook { detail: error.to_string() }
    }
}

impl From<csv::Error> for ReadError {
    fn from(error: csv::Error) -> Self {
        let detail = error.to_string();
        match error.into_kind() {
            csv::ErrorKind::Io(error) => Self::Io(error),
            _ => Self::Csv { detail },
        }
    }
}
