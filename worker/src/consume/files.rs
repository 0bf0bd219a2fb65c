//! One file of an event: the processor on a blocking thread, the writer on the async
//! runtime, a bounded channel between them.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{
    history::EventIds,
    processor::{FileJob, FileProcessor, FileReport, error_chain},
    store::StoreError,
    writer::{self, ChannelSink, Written},
};

/// Why a file failed the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFailure {
    /// MongoDB is unreachable: wait and retry, not the event's fault.
    Unavailable { error: String, traceback: String },
    /// The processing or the database refused: an attempt of the event failed.
    Failed { error: String, traceback: String, reason: String, permanent: bool },
}

impl FileFailure {
    fn from_store(error: &StoreError) -> Self {
        let traceback = error_chain(error);
        if error.is_unavailable() {
            Self::Unavailable { error: error.to_string(), traceback }
        } else {
            Self::Failed {
                error: error.to_string(),
                traceback,
                reason: error.reason().to_owned(),
                permanent: false,
            }
        }
    }

    fn panicked(what: &str, error: &tokio::task::JoinError) -> Self {
        let error = format!("the {what} stopped: {error}");
        Self::Failed {
            traceback: error.clone(),
            error,
            reason: "ProcessorPanicked".to_owned(),
            permanent: false,
        }
    }
}

/// Runs `processor` on `job`, writing what it emits; returns its report and what was
/// written.
pub async fn process(
    db: &mongodb::Database,
    processor: &Arc<dyn FileProcessor>,
    job: FileJob,
    ids: &EventIds,
) -> Result<(FileReport, Written), FileFailure> {
    let (tx, rx) = mpsc::channel(writer::CHANNEL_CAPACITY);
    let writing = tokio::spawn(writer::write_all(db.clone(), rx, ids.clone()));
    let sink = ChannelSink {
        tx,
        ids: ids.clone(),
        source_file: job.filename.clone(),
        file_index: job.file_index,
        updated_at: mongodb::bson::DateTime::now(),
        emitted: 0,
    };
    let processor = Arc::clone(processor);
    let processing = tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        // The sink (the channel's sender) is dropped when this closure returns, which
        // tells the writer that the file is done.
        processor.process_file(&job, &mut sink)
    });
    let processed = processing.await;
    let written = writing.await;
    // The writer's error first: a processor that failed on a closed sink failed
    // because of it.
    let written = match written {
        Ok(Ok(written)) => written,
        Ok(Err(error)) => return Err(FileFailure::from_store(&error)),
        Err(error) => return Err(FileFailure::panicked("document writer", &error)),
    };
    match processed {
        Ok(Ok(report)) => Ok((report, written)),
        Ok(Err(error)) => Err(FileFailure::Failed {
            error: error.to_string(),
            traceback: error_chain(&error),
            reason: error.reason().to_owned(),
            permanent: error.is_permanent(),
        }),
        Err(error) => Err(FileFailure::panicked("processor", &error)),
    }
}
