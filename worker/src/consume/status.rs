//! The uploader's processing status (SDK §2.3, §2.4): a Redis key the API's
//! `GET /uploads/{id}/status` reads, and an `UploaderStatusUpdated` notification.

use serde_json::{Value, json};

/// How long a status lives: a worker that dies mid-event reverts to `idle` after 2 h.
pub const STATUS_TTL_SECONDS: u64 = 7200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Idle,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Idle => "idle",
        }
    }
}

/// Who the status is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSubject<'a> {
    pub tenant_id: &'a str,
    pub app_id: &'a str,
    pub uploader_id: &'a str,
    pub event_id: &'a str,
    /// The uploader's name shown to users (spec.name).
    pub uploader_name: &'a str,
}

/// `uploader_status:{uploader_id}:{tenant_id}`.
pub fn redis_key(uploader_id: &str, tenant_id: &str) -> String {
    format!("uploader_status:{uploader_id}:{tenant_id}")
}

/// The Redis value: JSON (the SDK pickled it), with the real event id (the SDK wrote
/// "TODO").
pub fn redis_value(subject: &StatusSubject<'_>, status: Status, updated_at: &str) -> String {
    json!({
        "event_id": subject.event_id,
        "tenant_id": subject.tenant_id,
        "uploader_id": subject.uploader_id,
        "status": status.as_str(),
        "updated_at": updated_at,
    })
    .to_string()
}

/// What the status streams get for each step of an event: which file, how it went.
pub fn step_value(record: &super::history::StepRecord, event_id: &str) -> String {
    json!({
        "type": "step",
        "event_id": event_id,
        "step": record.step,
        "filename": record.filename,
        "status": record.status,
        "message": record.success,
        "error": record.error,
        "reason": record.reason,
        "attempt": record.attempt,
        "updated_at": record.updated_at,
    })
    .to_string()
}

/// The `UploaderStatusUpdated` notification published on AppEvents.
pub fn notification(
    subject: &StatusSubject<'_>,
    status: Status,
    frontend_url: &str,
    updated_at: &str,
) -> Value {
    let title = match status {
        Status::Idle => format!("Data processing completed for uploader {}", subject.uploader_name),
        Status::Running => {
            format!("Data processing started for uploader {}", subject.uploader_name)
        }
    };
    json!({
        "event_type": "UploaderStatusUpdated",
        "id": uuid::Uuid::new_v4().to_string(),
        "tenant_id": subject.tenant_id,
        "title": title,
        "icon": "Uploader",
        "url": format!(
            "{frontend_url}/uploaders?app_id={}&uploader_id={}",
            subject.app_id, subject.uploader_id
        ),
        "read_at": null,
        "updated_at": updated_at,
        "extra": {
            "app_id": subject.app_id,
            "uploader_id": subject.uploader_id,
            "status": status.as_str(),
            "tenant_id": subject.tenant_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: StatusSubject<'static> = StatusSubject {
        tenant_id: "t-1",
        app_id: "ifmp-service",
        uploader_id: "rv_tools",
        event_id: "e-1",
        uploader_name: "RVTools",
    };

    #[test]
    fn the_redis_value_is_json_with_the_real_event_id() {
        assert_eq!(redis_key("rv_tools", "t-1"), "uploader_status:rv_tools:t-1");
        let value: Value =
            serde_json::from_str(&redis_value(&SUBJECT, Status::Running, "2026-01-01T00:00:00"))
                .unwrap();
        assert_eq!(
            value,
            json!({"event_id": "e-1", "tenant_id": "t-1", "uploader_id": "rv_tools",
                   "status": "running", "updated_at": "2026-01-01T00:00:00"})
        );
    }

    #[test]
    fn the_notification_has_the_sdk_fields() {
        let started = notification(&SUBJECT, Status::Running, "https://app", "now");
        assert_eq!(started["event_type"], "UploaderStatusUpdated");
        assert_eq!(started["title"], "Data processing started for uploader RVTools");
        assert_eq!(
            started["url"],
            "https://app/uploaders?app_id=ifmp-service&uploader_id=rv_tools"
        );
        assert_eq!(started["icon"], "Uploader");
        assert!(started["read_at"].is_null());
        assert_eq!(
            started["extra"],
            json!({"app_id": "ifmp-service", "uploader_id": "rv_tools", "status": "running",
                   "tenant_id": "t-1"})
        );
        assert_eq!(started["id"].as_str().unwrap().len(), 36);
        let done = notification(&SUBJECT, Status::Idle, "", "now");
        assert_eq!(done["title"], "Data processing completed for uploader RVTools");
        assert_ne!(done["id"], started["id"], "every notification has its own id");
    }
}
