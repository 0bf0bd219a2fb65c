//! What the parent asks of a child, and what the child answers: plain data, so that
//! nothing of the parent's state (connections, secrets) crosses into the child.

use std::path::PathBuf;

use licenseware_crds::{EncryptionParameters, UploaderSpec, ValidationParameters};
use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};

use crate::processing::FileContext;
use crate::validation::ValidationResponse;

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub job: Job,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Job {
    /// The name and content checks of one file, or the content checks alone for the
    /// member of an archive (`member`).
    Validate { validation: ValidationParameters, path: PathBuf, filename: String, member: bool },
    /// The default processing of one uploaded file (archives unpacked under `scratch`).
    Process {
        spec: Box<UploaderSpec>,
        context: WireContext,
        path: PathBuf,
        scratch: PathBuf,
        output: ProcessOutput,
    },
    /// No file: allocates and touches `allocate_mib` MiB, then answers. Shows that
    /// children start and that their memory limit holds on this machine.
    SelfTest { allocate_mib: u64 },
    /// The encryption rules applied to one file, written to `output`.
    Anonymize {
        encryption: EncryptionParameters,
        key_file: PathBuf,
        input: PathBuf,
        output: PathBuf,
        kind: WireFileKind,
    },
}

/// How processed documents come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessOutput {
    /// BSON documents with their collection, for the consumer's sink.
    Documents,
    /// The `process` command's JSON lines, as they are to be printed.
    JsonLines,
}

/// [`FileContext`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireContext {
    pub tenant_id: String,
    pub app_id: String,
    pub uploader_id: String,
    pub event_id: String,
    pub source_file: String,
    pub updated_at_millis: i64,
}

impl From<&FileContext> for WireContext {
    fn from(context: &FileContext) -> Self {
        Self {
            tenant_id: context.tenant_id.clone(),
            app_id: context.app_id.clone(),
            uploader_id: context.uploader_id.clone(),
            event_id: context.event_id.clone(),
            source_file: context.source_file.clone(),
            updated_at_millis: context.updated_at.timestamp_millis(),
        }
    }
}

impl From<WireContext> for FileContext {
    fn from(context: WireContext) -> Self {
        Self {
            tenant_id: context.tenant_id,
            app_id: context.app_id,
            uploader_id: context.uploader_id,
            event_id: context.event_id,
            source_file: context.source_file,
            updated_at: DateTime::from_millis(context.updated_at_millis),
        }
    }
}

/// [`crate::anonymize::FileKind`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireFileKind {
    Text,
    Csv,
    Workbook,
    Other,
}

/// The answer to [`Job::Validate`].
pub type ValidateOutcome = ValidationResponse;

/// The answer to [`Job::Process`]: what the `process` command prints per file, and
/// what the consumer records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessOutcome {
    /// One summary line per file (an archive's members each have one).
    pub summaries: Vec<String>,
    /// The step's report, when processing ran to the end.
    pub report: Option<StepReport>,
    /// Why processing stopped, when it did.
    pub error: Option<ProcessFailure>,
}

/// [`crate::consume::FileReport`] on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub rejected: Option<String>,
    pub message: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFailure {
    pub reason: String,
    pub message: String,
    /// The file was refused before any of it was read (an archive that does not
    /// unpack): no document was produced.
    pub before_reading: bool,
}

/// The answer to [`Job::Anonymize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnonymizeOutcome {
    Written(WireTreatment),
    Failed { reason: String, message: String },
}

/// [`crate::anonymize::Treatment`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireTreatment {
    Columns,
    Text,
    Unchanged,
    NotRead,
}
