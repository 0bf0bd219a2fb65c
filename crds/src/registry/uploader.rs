//! The uploader: SDK `NewUploader.get_metadata`, plus the worker's config.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppMetadata, EntryKind, RegistryMetadata};
use crate::{EncryptionParameters, Flag, ValidationParameters, WorkerConfigFile};

/// SDK `NewUploader.get_metadata` (`UploaderMetadataModel`), in its key order, then
/// `worker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploaderEntry {
    pub app_id: String,
    pub name: String,
    pub uploader_id: String,
    pub description: String,
    /// `/uploads/{dash(uploader_id)}/files`.
    pub upload_url: String,
    /// `/uploads/{dash(uploader_id)}/validation`.
    pub upload_validation_url: String,
    /// `/uploads/{dash(uploader_id)}/quota`.
    pub quota_validation_url: String,
    /// `/uploads/{dash(uploader_id)}/status`.
    pub status_check_url: String,
    pub accepted_file_types: Vec<String>,
    pub icon: Option<String>,
    /// `null` when the Uploader has none.
    pub flags: Option<Vec<Flag>>,
    /// The document's `updated_at`.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `null` when the Uploader has no `validation` (or only its defaults).
    pub validation_parameters: Option<ValidationParametersEntry>,
    /// `null` when the Uploader has no `encryption`.
    pub encryption_parameters: Option<EncryptionParametersEntry>,
    /// The per-tenant processing states (Redis, runtime state): always `[]` in the
    /// registry; the API reports the live values.
    pub status: Vec<Value>,
    /// The app's metadata (sic, the SDK's key).
    pub parrent_app: AppMetadata,
    /// Not in the SDK: the worker's config, exactly as the operator writes it into the
    /// worker's ConfigMap (`worker.yaml`): the Kafka topics with the operator's prefix,
    /// and the full Uploader spec (`spec.upload` limits included).
    pub worker: WorkerConfigFile,
}

impl RegistryMetadata for UploaderEntry {
    fn entry_kind(&self) -> EntryKind {
        EntryKind::Uploader
    }

    fn stamp(&mut self, updated_at: &str) {
        self.updated_at = Some(updated_at.to_owned());
        self.parrent_app.updated_at = Some(updated_at.to_owned());
    }
}

/// SDK `UploaderValidationParameters` as a dict: every key, `null` where unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationParametersEntry {
    pub required_input_type: Option<String>,
    pub filename_contains: Option<Vec<String>>,
    pub filename_endswith: Option<Vec<String>>,
    pub required_sheets: Option<Vec<Vec<String>>>,
    pub required_columns: Option<Vec<Vec<String>>>,
    pub min_rows_number: i64,
    pub header_starts_at: i64,
    pub text_contains_all: Option<Vec<String>>,
    pub text_contains_any: Option<Vec<String>>,
    pub ignore_filenames: Option<Vec<String>>,
    pub buffer: i64,
    pub filename_valid_message: String,
    pub filename_ignored_message: String,
    pub regex_escape: bool,
    pub ignored_by_uup: bool,
}

impl ValidationParametersEntry {
    /// The SDK's `validation_parameters`: `None` (null) when `validation` is absent, that
    /// is equal to its default.
    pub fn from_spec(v: &ValidationParameters) -> Option<Self> {
        (*v != ValidationParameters::default()).then(|| Self {
            required_input_type: v.required_input_type.clone(),
            filename_contains: v.filename_contains.clone(),
            filename_endswith: v.filename_endswith.clone(),
            required_sheets: v.required_sheets.clone(),
            required_columns: v.required_columns.clone(),
            min_rows_number: v.min_rows_number,
            header_starts_at: v.header_starts_at,
            text_contains_all: v.text_contains_all.clone(),
            text_contains_any: v.text_contains_any.clone(),
            ignore_filenames: v.ignore_filenames.clone(),
            buffer: v.buffer,
            filename_valid_message: v.filename_valid_message.clone(),
            filename_ignored_message: v.filename_ignored_message.clone(),
            regex_escape: v.regex_escape,
            ignored_by_uup: v.ignored_by_uup,
        })
    }
}

/// SDK `UploaderEncryptionParameters` as a dict: an empty list is `null` (the SDK's
/// default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncryptionParametersEntry {
    pub filepaths: Option<Vec<String>>,
    pub filecontent: Option<Vec<String>>,
    pub columns: Option<Vec<String>>,
}

impl EncryptionParametersEntry {
    /// The SDK's `encryption_parameters`: `None` (null) when `encryption` is absent.
    pub fn from_spec(e: &EncryptionParameters) -> Option<Self> {
        let list = |items: &Vec<String>| (!items.is_empty()).then(|| items.clone());
        (*e != EncryptionParameters::default()).then(|| Self {
            filepaths: list(&e.filepaths),
            filecontent: list(&e.filecontent),
            columns: list(&e.columns),
        })
    }
}
