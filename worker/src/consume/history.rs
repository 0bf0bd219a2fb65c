//! ProcessingHistory (SDK §6.2): one document per {tenant_id, event_id}; every step of
//! the processing appends a record to `processing_details`, and each record is also
//! published as a `DataProcessingLog` event. This module builds the records and the
//! update documents; `store` runs them.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use mongodb::bson::{self, Document, doc};
use serde::Serialize;
use serde_json::Value;

use super::clock;

/// The collection of history documents.
pub const COLLECTION: &str = "ProcessingHistory";
/// The field only processing runs write (the API's validation records do not): its
/// presence says an earlier run of the event started.
pub const RUN_MARKER: &str = "processing_time";

/// One step of a processing: the SDK's fields (without the Python call details) plus
/// wall-clock start and end times (the SDK kept a process-local counter).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub filepath: Option<String>,
    pub filename: Option<String>,
    /// `success` or `failed`.
    pub status: &'static str,
    /// The success message, null on failure.
    pub success: Option<String>,
    /// The error message, null on success.
    pub error: Option<String>,
    /// The error and its causes, one per line.
    pub traceback: Option<String>,
    /// A stable reason for the failure, e.g. `OutsideUploadRoot`.
    pub reason: Option<String>,
    pub source: String,
    /// Which attempt of the event this step belongs to (1-based).
    pub attempt: u32,
    /// Problems that did not fail the step.
    pub warnings: Vec<String>,
    pub updated_at: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_ms: i64,
    /// `HH:MM:SS.ffffff`.
    pub func_processing_time: String,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Success { message: String, warnings: Vec<String> },
    Failed { error: String, traceback: String, reason: String },
}

impl StepOutcome {
    pub fn success(message: impl Into<String>) -> Self {
        Self::Success { message: message.into(), warnings: Vec::new() }
    }

    pub fn failed(error: &(dyn std::error::Error + 'static), reason: &str) -> Self {
        Self::Failed {
            error: error.to_string(),
            traceback: super::processor::error_chain(error),
            reason: reason.to_owned(),
        }
    }
}

/// What a step is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSubject {
    pub step: String,
    pub source: String,
    pub filepath: Option<String>,
    pub filename: Option<String>,
    pub attempt: u32,
}

/// Times a step from its start.
#[derive(Debug, Clone, Copy)]
pub struct StepTimer {
    started_at: Timestamp,
    started: Instant,
}

impl StepTimer {
    pub fn start() -> Self {
        Self { started_at: Timestamp::now(), started: Instant::now() }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_at(&self) -> String {
        clock::iso(self.started_at)
    }

    /// The record of the step, ended now.
    pub fn finish(&self, subject: StepSubject, outcome: StepOutcome) -> StepRecord {
        record(subject, outcome, self.started_at, self.elapsed())
    }
}

fn record(
    subject: StepSubject,
    outcome: StepOutcome,
    started_at: Timestamp,
    took: Duration,
) -> StepRecord {
    let ended_at =
        clock::iso(started_at + jiff::SignedDuration::try_from(took).unwrap_or_default());
    let (status, success, error, traceback, reason, warnings) = match outcome {
        StepOutcome::Success { message, warnings } => {
            ("success", Some(message), None, None, None, warnings)
        }
        StepOutcome::Failed { error, traceback, reason } => {
            ("failed", None, Some(error), Some(traceback), Some(reason), Vec::new())
        }
    };
    StepRecord {
        step: subject.step,
        filepath: subject.filepath,
        filename: subject.filename,
        status,
        success,
        error,
        traceback,
        reason,
        source: subject.source,
        attempt: subject.attempt,
        warnings,
        updated_at: ended_at.clone(),
        started_at: clock::iso(started_at),
        ended_at,
        duration_ms: clock::millis(took),
        func_processing_time: clock::hms(took),
    }
}

/// The event's identity, shared by its history document and its log events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIds {
    pub tenant_id: String,
    pub event_id: String,
    pub app_id: String,
    pub uploader_id: String,
}

impl EventIds {
    pub fn filter(&self) -> Document {
        doc! { "tenant_id": &self.tenant_id, "event_id": &self.event_id }
    }
}

/// The `DataProcessingLog` event of a record: flat JSON, as on the SDK's LogEvents.
pub fn log_event(record: &StepRecord, ids: &EventIds) -> Value {
    let mut event = serde_json::Map::new();
    event.insert("event_type".into(), "DataProcessingLog".into());
    if let Ok(Value::Object(fields)) = serde_json::to_value(record) {
        event.extend(fields);
    }
    event.insert("tenant_id".into(), ids.tenant_id.clone().into());
    event.insert("event_id".into(), ids.event_id.clone().into());
    event.insert("app_id".into(), ids.app_id.clone().into());
    event.insert("uploader_id".into(), ids.uploader_id.clone().into());
    Value::Object(event)
}

/// The upsert that appends `record` to the event's history document.
pub fn append_update(ids: &EventIds, record: &StepRecord) -> Result<Document, bson::ser::Error> {
    Ok(doc! {
        "$setOnInsert": ids.filter(),
        "$set": { "app_id": &ids.app_id, "uploader_id": &ids.uploader_id,
                  "updated_at": &record.updated_at },
        "$push": { "processing_details": bson::to_bson(record)? },
    })
}

/// The upsert that marks the start of a processing run (one delivery of the event).
pub fn start_update(ids: &EventIds, started_at: &str) -> Document {
    doc! {
        "$setOnInsert": ids.filter(),
        "$set": {
            "app_id": &ids.app_id,
            "uploader_id": &ids.uploader_id,
            "updated_at": started_at,
            "processing_status": "running",
            "processing_time": { "started_at": started_at, "ended_at": null },
        },
    }
}

/// The upsert that closes a processing run: `outcome` is `success`, `failed` (dead
/// lettered) or `interrupted` (the worker stopped before the event's end).
pub fn end_update(ids: &EventIds, timer: &StepTimer, outcome: &str, attempts: u32) -> Document {
    let took = timer.elapsed();
    let ended_at = clock::now_iso();
    let mut update = doc! {
        "$setOnInsert": ids.filter(),
        "$set": {
            "app_id": &ids.app_id,
            "uploader_id": &ids.uploader_id,
            "updated_at": &ended_at,
            "processing_status": outcome,
            "attempts": i64::from(attempts),
            "processing_time": {
                "started_at": timer.started_at(),
                "ended_at": &ended_at,
                "duration_ms": clock::millis(took),
                "elapsed": clock::hms(took),
            },
        },
    };
    // A success ends the delivery count: a redelivery (a commit lost) may redo the
    // event from attempt 1. A dead letter keeps it, so that a redelivery of the
    // dead-lettered message is dead-lettered again instead of processed.
    if outcome == "success" {
        update.insert("$unset", doc! { super::delivery::FIELD: "" });
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> EventIds {
        EventIds {
            tenant_id: "t".into(),
            event_id: "e".into(),
            app_id: "app".into(),
            uploader_id: "up".into(),
        }
    }

    fn subject() -> StepSubject {
        StepSubject {
            step: "process_file".into(),
            source: "lines".into(),
            filepath: Some("/u/a.csv".into()),
            filename: Some("a.csv".into()),
            attempt: 2,
        }
    }

    #[test]
    fn a_success_record_has_the_sdk_fields_and_wall_clock_times() {
        let start: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let record = record(
            subject(),
            StepOutcome::success("12 documents"),
            start,
            Duration::from_millis(1500),
        );
        assert_eq!(record.status, "success");
        assert_eq!(record.success.as_deref(), Some("12 documents"));
        assert_eq!((record.error.as_deref(), record.traceback.as_deref()), (None, None));
        assert_eq!(record.started_at, "2026-01-02T03:04:05.000000");
        assert_eq!(record.ended_at, "2026-01-02T03:04:06.500000");
        assert_eq!(record.updated_at, record.ended_at);
        assert_eq!(record.duration_ms, 1500);
        assert_eq!(record.func_processing_time, "00:00:01.500000");
        let stored = bson::to_document(&record).unwrap();
        assert_eq!(stored.get("error"), Some(&bson::Bson::Null), "null like the SDK's");
        assert_eq!(
            stored.get_i64("attempt").ok().or(stored.get_i32("attempt").ok().map(i64::from)),
            Some(2)
        );
    }

    #[test]
    fn a_failed_record_keeps_the_error_chain() {
        let error = super::super::processor::ProcessError::caused_by(
            "cannot read a.csv",
            std::io::Error::other("gone"),
        );
        let record =
            StepTimer::start().finish(subject(), StepOutcome::failed(&error, error.reason()));
        assert_eq!(record.status, "failed");
        assert_eq!(record.success, None);
        assert_eq!(record.error.as_deref(), Some("cannot read a.csv"));
        assert_eq!(record.traceback.as_deref(), Some("cannot read a.csv\ncaused by: gone"));
        assert_eq!(record.reason.as_deref(), Some("ProcessingFailed"));
    }

    #[test]
    fn the_log_event_is_the_record_flattened_with_the_ids() {
        let record = StepTimer::start().finish(subject(), StepOutcome::success("ok"));
        let event = log_event(&record, &ids());
        assert_eq!(event["event_type"], "DataProcessingLog");
        assert_eq!(event["step"], "process_file");
        assert_eq!(event["filename"], "a.csv");
        assert_eq!(event["tenant_id"], "t");
        assert_eq!(event["event_id"], "e");
        assert_eq!(event["app_id"], "app");
        assert_eq!(event["uploader_id"], "up");
    }

    #[test]
    fn updates_upsert_on_tenant_and_event() {
        let record = StepTimer::start().finish(subject(), StepOutcome::success("ok"));
        let append = append_update(&ids(), &record).unwrap();
        assert_eq!(
            append.get_document("$setOnInsert").unwrap(),
            &doc! {"tenant_id": "t", "event_id": "e"}
        );
        let pushed =
            append.get_document("$push").unwrap().get_document("processing_details").unwrap();
        assert_eq!(pushed.get_str("step").unwrap(), "process_file");
        let start = start_update(&ids(), "now");
        assert!(start.get_document("$set").unwrap().contains_key(RUN_MARKER), "marks a run");
        let end = end_update(&ids(), &StepTimer::start(), "success", 3);
        let set = end.get_document("$set").unwrap();
        assert_eq!(set.get_str("processing_status").unwrap(), "success");
        let time = set.get_document("processing_time").unwrap();
        assert_eq!(time.get_str("elapsed").unwrap().len(), "00:00:00.000000".len());
        assert!(time.get_str("ended_at").is_ok());
        assert_eq!(end.get_document("$unset").unwrap(), &doc! {"delivery": ""}, "count ended");
        let failed = end_update(&ids(), &StepTimer::start(), "failed", 3);
        assert!(!failed.contains_key("$unset"), "a dead letter keeps its count");
    }
}
