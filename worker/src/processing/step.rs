//! The default worker's processing step: [`process_file`](super::process_file) behind
//! the consumer's [`FileProcessor`] trait, so `licenseware-worker consume` runs the
//! Uploader's declarative pipeline with the same runtime a custom worker gets.

use std::{collections::BTreeSet, path::PathBuf, sync::Arc};

use licenseware_crds::UploaderSpec;
use mongodb::bson::DateTime;

use super::{FileContext, FileReport as ProcessedFile, ProcessError as ProcessingError};
use crate::consume::{DocumentSink, FileJob, FileProcessor, FileReport, ProcessError};

/// The processor of the plain `consume` command.
pub fn default_processor(spec: &UploaderSpec) -> Arc<dyn FileProcessor> {
    let collections: BTreeSet<String> =
        spec.processing.tables.iter().map(|table| table.collection.clone()).collect();
    Arc::new(DefaultProcessor {
        collections: collections.into_iter().collect(),
        // The pod's /tmp is an emptyDir: archives unpack there, not on the shared uploads.
        scratch: std::env::temp_dir(),
    })
}

#[derive(Debug)]
struct DefaultProcessor {
    collections: Vec<String>,
    scratch: PathBuf,
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
        let mut sink_closed = false;
        let mut emit = |row: super::RowDocument<'_>| {
            sink.emit(row.collection(), row.into_document()).map_err(|closed| {
                sink_closed = true;
                closed.to_string()
            })
        };
        let outcome = super::process_file(&job.spec, &context, &job.path, &self.scratch, &mut emit);
        match outcome {
            Ok(files) => Ok(report(&files)),
            Err(_) if sink_closed => Err(ProcessError::Sink(crate::consume::SinkClosed)),
            // Nothing was read yet: this file is refused, the event's other files go on.
            Err(error @ (ProcessingError::Archive { .. } | ProcessingError::Scratch(_))) => {
                Ok(FileReport::rejected(format!("{}: {error}", error.reason())))
            }
            // Some of its documents may be written: the event fails and is compensated;
            // a file that cannot be read will not read better on a retry.
            Err(error) => Err(ProcessError::Permanent {
                message: format!("{}: {error}", error.reason()),
                source: Some(Box::new(error)),
            }),
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
fn report(files: &[ProcessedFile]) -> FileReport {
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
