//! What the runtime shares between events, and the saga's building blocks: waiting
//! out MongoDB outages, history records, status updates.

use std::{future::Future, sync::Arc};

use mongodb::Database;

use super::{
    clock,
    config::Settings,
    envelope::ProcessingEvent,
    history::{self, EventIds, StepRecord, StepSubject},
    notify::Notifier,
    paths,
    probes::ConsumeMetrics,
    processor::FileProcessor,
    shutdown::Shutdown,
    status::{self, Status, StatusSubject},
    status_store::StatusStore,
    store::{self, StoreError},
};

/// The `source` of the runtime's own history records.
pub const RUNTIME_SOURCE: &str = "licenseware_worker::consume";

/// What the runtime shares between events.
#[derive(Debug)]
pub struct Context {
    pub settings: Settings,
    pub processor: Arc<dyn FileProcessor>,
    pub db: Database,
    pub status: StatusStore,
    pub notifier: Notifier,
    pub shutdown: Shutdown,
    /// Where compensation looks for the event's documents.
    pub collections: Vec<String>,
    pub metrics: Arc<ConsumeMetrics>,
}

/// Why an attempt ended early.
pub enum AttemptError {
    Interrupted,
    Unavailable(String),
    Failed { error: String, reason: String, permanent: bool },
}

impl Context {
    /// Runs `op` until it succeeds; an unreachable MongoDB is waited for (not the
    /// event's fault). `Err(None)`: shutdown came first; `Err(Some)`: MongoDB refused.
    pub async fn ensure<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Option<StoreError>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut outages = 0;
        loop {
            let started = std::time::Instant::now();
            match op().await {
                Ok(value) => {
                    tracing::debug!(what, took_ms = clock::millis(started.elapsed()), "stored");
                    return Ok(value);
                }
                Err(error) if error.is_unavailable() => {
                    outages += 1;
                    tracing::warn!(what, %error, outages, "MongoDB unavailable; waiting");
                    if !self.shutdown.sleep(self.settings.backoff.delay(outages)).await {
                        return Err(None);
                    }
                }
                Err(error) => return Err(Some(error)),
            }
        }
    }

    /// Appends a step to history and publishes it on LogEvents.
    pub async fn record(&self, ids: &EventIds, record: StepRecord) -> Result<(), AttemptError> {
        self.notifier.log_event(&ids.event_id, &history::log_event(&record, ids));
        self.status
            .publish_step(
                &ids.uploader_id,
                &ids.tenant_id,
                &status::step_value(&record, &ids.event_id),
            )
            .await;
        match self.ensure("history", || store::history_append(&self.db, ids, &record)).await {
            Ok(()) => Ok(()),
            Err(None) => Err(AttemptError::Interrupted),
            // A record the server refuses (it should not happen) is not worth blocking
            // the partition for: the data is right, the log says what is missing.
            Err(Some(error)) => {
                tracing::error!(%error, step = record.step, "history record refused");
                Ok(())
            }
        }
    }

    pub async fn set_status(&self, event: &ProcessingEvent, status: Status) {
        let subject = StatusSubject {
            tenant_id: &event.tenant_id,
            app_id: &event.app_id,
            uploader_id: &event.uploader_id,
            event_id: &event.event_id,
            uploader_name: &self.settings.manifest.spec.name,
        };
        let now = clock::now_iso();
        self.status.set(&subject, status, &now).await;
        let notification =
            status::notification(&subject, status, &self.settings.frontend_url, &now);
        self.notifier.app_event(&event.tenant_id, &notification);
    }

    /// A step of the runtime itself (path checks, compensation, supersede, clear_data).
    pub fn subject(&self, step: &str, filepath: Option<&str>, attempt: u32) -> StepSubject {
        StepSubject {
            step: step.to_owned(),
            source: RUNTIME_SOURCE.to_owned(),
            filepath: filepath.map(str::to_owned),
            filename: filepath.map(paths::filename),
            attempt,
        }
    }
}

pub fn event_ids(event: &ProcessingEvent) -> EventIds {
    EventIds {
        tenant_id: event.tenant_id.clone(),
        event_id: event.event_id.clone(),
        app_id: event.app_id.clone(),
        uploader_id: event.uploader_id.clone(),
    }
}
