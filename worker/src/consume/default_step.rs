//! TEMPORARY: the processor of the plain `consume` command until the default pipeline
//! (validation + readers + `processing.tables` mapping) is wired in by
//! `crate::processing::default_processor(&spec)`. Every file fails permanently, so an
//! event reaches the dead letters at once instead of being half processed.

use std::sync::Arc;

use licenseware_crds::UploaderSpec;

use super::processor::{DocumentSink, FileJob, FileProcessor, FileReport, ProcessError};

/// Stands in for `crate::processing::default_processor`.
pub fn default_processor_not_wired(_spec: &UploaderSpec) -> Arc<dyn FileProcessor> {
    Arc::new(NotWired)
}

#[derive(Debug)]
struct NotWired;

impl FileProcessor for NotWired {
    fn process_file(
        &self,
        _job: &FileJob,
        _sink: &mut dyn DocumentSink,
    ) -> Result<FileReport, ProcessError> {
        Err(ProcessError::permanent("the default processing step is not wired yet"))
    }
}
