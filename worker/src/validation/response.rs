//! The SDK's validation responses, field for field (§1.5): what the upload endpoints
//! return and `licenseware-worker validate` prints.

use serde::{Deserialize, Serialize};

/// The outcome of one file, or of a whole validation (always `success` there: the SDK
/// reports the analysis as done even when every file failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
    Skipped,
}

/// One file's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationResponse {
    pub status: Status,
    pub filename: String,
    pub message: String,
}

impl ValidationResponse {
    pub fn success(filename: &str, message: &str) -> Self {
        Self { status: Status::Success, filename: filename.to_owned(), message: message.to_owned() }
    }

    pub fn failed(filename: &str, message: String) -> Self {
        Self { status: Status::Failed, filename: filename.to_owned(), message }
    }

    pub fn skipped(filename: &str, message: &str) -> Self {
        Self { status: Status::Skipped, filename: filename.to_owned(), message: message.to_owned() }
    }
}

/// The outcome of a batch of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileValidationResponse {
    pub status: Status,
    pub message: String,
    pub validation: Vec<ValidationResponse>,
    pub event_id: String,
}

/// `message` of a filename-only validation.
pub const FILENAMES_ANALYSED: &str = "File names were analysed";
/// `message` of a validation of names and contents.
pub const CONTENTS_ANALYSED: &str = "File names and contents were analysed";

impl FileValidationResponse {
    /// A batch's envelope; `event_id` is the caller's, or a new UUID v4 as the SDK made.
    pub fn new(message: &str, validation: Vec<ValidationResponse>, event_id: Option<&str>) -> Self {
        let event_id = event_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        Self { status: Status::Success, message: message.to_owned(), validation, event_id }
    }

    /// Whether any file passed: the upload flow stores and processes only those.
    pub fn any_success(&self) -> bool {
        self.validation.iter().any(|entry| entry.status == Status::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_shape_is_the_sdks() {
        let response = FileValidationResponse::new(
            FILENAMES_ANALYSED,
            vec![ValidationResponse::skipped("a.csv", "File is ignored")],
            Some("e-1"),
        );
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            json,
            r#"{"status":"success","message":"File names were analysed","validation":[{"status":"skipped","filename":"a.csv","message":"File is ignored"}],"event_id":"e-1"}"#
        );
        assert!(!response.any_success());
    }

    #[test]
    fn a_missing_event_id_becomes_a_new_uuid() {
        let response = FileValidationResponse::new(CONTENTS_ANALYSED, Vec::new(), None);
        let id = uuid::Uuid::parse_str(&response.event_id).unwrap();
        assert_eq!(id.get_version_num(), 4);
    }
}
