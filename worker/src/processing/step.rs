//! The default worker's processing step: [`process_file`](super::process_file) behind
//! the consumer's [`FileProcessor`] trait, run in a sandbox child per file, so that
//! `licenseware-worker consume` runs the Uploader's declarative pipeline with the same
//! runtime a custom worker gets, and no file can take the worker down.

use std::{collections::BTreeSet, path::PathBuf, sync::Arc};

use mongodb::bson::{DateTime, Document};

use super::{FileContext, FileReport as ProcessedFile};
use crate::consume::{DocumentSink, FileJob, FileProcessor, FileReport, ProcessError};
use crate::sandbox::{ProcessOutput, ProcessSink, Sandbox, SandboxError, SandboxLimits};

/// The processor of the plain `consume` command, with the default file limits.
pub fn default_processor(
    spec: &licenseware_crds::UploaderSpec,
) -> Result<Arc<dyn FileProcessor>, SandboxError> {
    Ok(default_processor_with(spec, Sandbox::new(SandboxLimits::default())?))
}

/// The processor of the plain `consume` command, its files read in `sandbox`.
pub fn default_processor_with(
    spec: &licenseware_crds::UploaderSpec,
    sandbox: Sandbox,
) -> Arc<dyn FileProcessor> {
    let collections: BTreeSet<String> =
        spec.processing.tables.iter().map(|table| table.collection.clone()).collect();
    Arc::new(DefaultProcessor {
        collections: collections.into_iter().collect(),
        // The pod's /tmp is an emptyDir: archives unpack there, not on the shared uploads.
        scratch: std::env::temp_dir(),
        sandbox,
    })
}

#[derive(Debug)]
struct DefaultProcessor {
    collections: Vec<String>,
    scratch: PathBuf,
    sandbox: Sandbox,
}

/// The consumer's sink behind the sandbox: documents counted, so that a child that
/// dies half-way is known to have left some.
struct ToSink<'a> {
    sink: &'a mut dyn DocumentSink,
    documents: u64,
    closed: bool,
}

impl ProcessSink for ToSink<'_> {
    fn document(&mut self, collection: &str, document: Document) -> Result<(), String> {
        self.documents += 1;
        self.sink.emit(collection, document).map_err(|closed| {
            self.closed = true;
            closed.to_string()
        })
    }

    fn output(&mut self, _: &[u8]) -> Result<(), String> {
        Err("the consumer takes documents, not printed output".to_owned())
    }
}

impl FileProcessor for DefaultProcessor {
    fn process_file(
        &self,
        job: &FileJob,
        sink: &mut dyn DocumentSink,
    ) -> Result<FileReport, ProcessError> {
        let context = FileContext {
            tenant_id: job.tenant_id.clone(),
            app_id: job.app_id.clone(),
            uploader_id: job.uploader_id.clone(),
            event_id: job.event_id.clone(),
            source_file: job.filename.clone(),
            updated_at: DateTime::now(),
        };
        let mut to_sink = ToSink { sink, documents: 0, closed: false };
        let outcome = self.sandbox.process_file(
            &job.spec,
            &context,
            &job.path,
            &self.scratch,
            ProcessOutput::Documents,
            &mut to_sink,
        );
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(_) if to_sink.closed => return Err(ProcessError::Sink(crate::consume::SinkClosed)),
            // The file stopped its reader before any document: this file is refused, the
            // event's other files go on.
            Err(error) if error.is_the_files() && to_sink.documents == 0 => {
                return Ok(FileReport::rejected(format!("{}: {error}", error.reason())));
            }
            // Some of its documents are written: the event fails and is compensated; the
            // same file with the same limits fails the same way.
            Err(error) if error.is_the_files() => {
                return Err(ProcessError::Permanent {
                    message: format!("{}: {error}", error.reason()),
                    source: Some(Box::new(error)),
                });
            }
            // No reader could run (no scratch space, no process): the worker's trouble.
            Err(error) => {
                return Err(ProcessError::caused_by(format!("{}: {error}", error.reason()), error));
            }
        };
        match (outcome.report, outcome.error) {
            (Some(report), _) => Ok(FileReport {
                rejected: report.rejected,
                message: report.message,
                warnings: report.warnings,
            }),
            // Nothing was read yet: this file is refused, the event's other files go on.
            (None, Some(failure)) if failure.before_reading => {
                Ok(FileReport::rejected(format!("{}: {}", failure.reason, failure.message)))
            }
            // Some of its documents may be written: the event fails and is compensated;
            // a file that cannot be read will not read better on a retry.
            (None, Some(failure)) => {
                Err(ProcessError::permanent(format!("{}: {}", failure.reason, failure.message)))
            }
            (None, None) => Err(ProcessError::failed("the file reader gave no outcome")),
        }
    }

    fn step(&self) -> &str {
        "process_file"
    }

    fn collections(&self) -> Vec<String> {
        self.collections.clone()
    }
}

/// One file's report for the history: accepted when any of its files (an archive's
/// members) was valid; warnings list invalid members, skipped tables and raw values.
pub fn step_report(files: &[ProcessedFile]) -> FileReport {
    let mut warnings = Vec::new();
    for file in files {
        if !file.valid() {
            warnings
                .push(format!("{}: not processed: {}", file.source_file, file.validation.message));
            continue;
        }
        for skipped in &file.skipped_tables {
            warnings.push(format!(
                "{}: table {} skipped ({}): {}",
                file.source_file, skipped.table_index, skipped.reason, skipped.message
            ));
        }
        for table in &file.tables {
            if !table.missing_columns.is_empty() {
                warnings.push(format!(
                    "{}: table {} lacks columns {:?}",
                    file.source_file, table.table_index, table.missing_columns
                ));
            }
            for (field, count) in &table.conversion_failures {
                warnings.push(format!(
                    "{}: table {}: {count} values of {field} kept raw (they did not convert)",
                    file.source_file, table.table_index
                ));
            }
        }
    }
    let valid: Vec<&ProcessedFile> = files.iter().filter(|file| file.valid()).collect();
    if valid.is_empty() {
        let reasons: Vec<String> =
            files.iter().map(|f| format!("{}: {}", f.source_file, f.validation.message)).collect();
        return FileReport::rejected(if reasons.is_empty() {
            "the archive holds no files".to_owned()
        } else {
            reasons.join("; ")
        })
        .with_warnings(warnings);
    }
    let documents: u64 = valid.iter().map(|file| file.documents()).sum();
    FileReport::processed(format!("{documents} documents from {} file(s)", valid.len()))
        .with_warnings(warnings)
}
