//! The processing step: the one part of the consumer a custom worker image replaces.
//! Everything around it (Kafka, status, history, retries, compensation, dead letters,
//! commits) is the runtime's, so every worker behaves the same on the wire.

use std::path::PathBuf;

use licenseware_crds::UploaderSpec;
use mongodb::bson::Document;

/// Turns the files of processing events into MongoDB documents.
///
/// `process_file` runs on a blocking thread (file readers are synchronous), once per
/// file of an event, possibly again for the same file when the event is retried or
/// redelivered: it must be deterministic. Documents go to `sink`, which applies
/// backpressure (it blocks while the writer is behind).
pub trait FileProcessor: Send + Sync + 'static {
    /// Processes one file. `Ok` with [`FileReport::rejected`] when the file itself is
    /// not acceptable (the event goes on with its other files); `Err` when processing
    /// failed: the event is compensated, retried, and dead-lettered in the end.
    fn process_file(
        &self,
        job: &FileJob,
        sink: &mut dyn DocumentSink,
    ) -> Result<FileReport, ProcessError>;

    /// The `step` name of this processor's records in ProcessingHistory.
    fn step(&self) -> &str {
        "process_file"
    }

    /// The `source` of this processor's records in ProcessingHistory.
    fn source(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }

    /// Collections this processor may write to, besides the uploader's usedCollections
    /// and processing tables: compensation looks for leftovers of a crashed attempt in
    /// all of them.
    fn collections(&self) -> Vec<String> {
        Vec::new()
    }
}

impl std::fmt::Debug for dyn FileProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source())
    }
}

/// One file of a processing event, as the processor sees it.
#[derive(Debug, Clone)]
pub struct FileJob {
    pub tenant_id: String,
    pub app_id: String,
    pub uploader_id: String,
    pub event_id: String,
    /// The checked, canonical path: always inside the upload root.
    pub path: PathBuf,
    /// The path as the event gave it (what history records as `filepath`).
    pub filepath: String,
    /// The file name, e.g. `RVTools.xlsx`.
    pub filename: String,
    /// Position of the file in the event's `filepaths`: with the event id it makes
    /// deterministic document ids.
    pub file_index: usize,
    /// The Uploader's spec, with uploaderId filled in.
    pub spec: UploaderSpec,
}

/// Where documents go. The runtime stamps each one with the event's `tenant_id`,
/// `app_id`, `uploader_id`, `event_id` (the processor cannot write for another tenant
/// or event), and with `source_file`, `updated_at` and a deterministic `_id` when the
/// processor left them out. A document with a `_key` field replaces the document of the
/// same `_id` instead of failing as a duplicate, and supersedes, once the event
/// succeeded, the documents of earlier events with the same `_key`.
pub trait DocumentSink {
    /// Queues one document for `collection`. Blocks while the writer is behind; fails
    /// when the writer stopped (its error is what the event reports).
    fn emit(&mut self, collection: &str, document: Document) -> Result<(), SinkClosed>;
}

/// The writer behind a [`DocumentSink`] stopped, after a MongoDB error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the document writer stopped")]
pub struct SinkClosed;

/// What happened to one file, recorded in ProcessingHistory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// `Some(reason)` when the file was not acceptable: a failed step, no retry.
    pub rejected: Option<String>,
    /// Recorded as the step's `success` message.
    pub message: Option<String>,
    /// Problems that did not stop the file, e.g. values that failed to convert.
    pub warnings: Vec<String>,
}

impl FileReport {
    /// The file was processed.
    pub fn processed(message: impl Into<String>) -> Self {
        Self { message: Some(message.into()), ..Self::default() }
    }

    /// The file was not acceptable; it should have emitted nothing.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self { rejected: Some(reason.into()), ..Self::default() }
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    pub fn is_accepted(&self) -> bool {
        self.rejected.is_none()
    }
}

type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why a file could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// May succeed on another attempt (I/O, a file still being written...): retried up
    /// to maxAttempts, then dead-lettered.
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// Will fail again whatever happens (a corrupt file...): dead-lettered at once.
    #[error("{message}")]
    Permanent {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// The sink refused a document: the writer's own error explains why.
    #[error(transparent)]
    Sink(#[from] SinkClosed),
}

impl ProcessError {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed { message: message.into(), source: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent { message: message.into(), source: None }
    }

    /// A retryable failure caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Failed { message: message.into(), source: Some(Box::new(source)) }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "ProcessingFailed",
            Self::Permanent { .. } => "ProcessingFailedPermanently",
            Self::Sink(_) => "WriterStopped",
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }
}

/// The error and its causes, outermost first, one per line: history's `traceback`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut lines = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        lines.push(format!("caused by: {cause}"));
        source = cause.source();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_lists_every_cause() {
        let io = std::io::Error::other("disk on fire");
        let error = ProcessError::caused_by("cannot read a.csv", io);
        assert_eq!(error_chain(&error), "cannot read a.csv\ncaused by: disk on fire");
        assert_eq!(error.reason(), "ProcessingFailed");
        assert!(!error.is_permanent());
        assert!(ProcessError::permanent("corrupt").is_permanent());
        assert_eq!(ProcessError::from(SinkClosed).reason(), "WriterStopped");
    }

    #[test]
    fn reports_say_whether_the_file_was_accepted() {
        assert!(FileReport::processed("12 lines").is_accepted());
        let rejected = FileReport::rejected("not a CSV file");
        assert!(!rejected.is_accepted());
        assert_eq!(rejected.rejected.as_deref(), Some("not a CSV file"));
    }
}
