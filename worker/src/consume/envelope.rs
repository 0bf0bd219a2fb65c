//! The processing event as it travels on `{appId}.{uploaderId}.events`: a kafkaesk
//! envelope `{"schema": "ProcessingEvent:1", "data": {...}}`, key = event_id. A message
//! that does not parse is dead-lettered at once: no retry can fix it.

use serde::{Deserialize, Serialize};

/// The envelope's `schema` value.
pub const SCHEMA: &str = licenseware_crds::event_schema::PROCESSING_EVENT_SCHEMA;

/// The SDK's processing event (§2.2), the `data` of the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingEvent {
    pub tenant_id: String,
    /// The uploading user's token. The worker does not use it; a producer may leave it
    /// out.
    #[serde(default)]
    pub authorization: Option<String>,
    pub uploader_id: String,
    /// Saved file paths, absolute or relative to the upload root.
    pub filepaths: Vec<String>,
    pub clear_data: bool,
    pub event_id: String,
    pub app_id: String,
}

#[derive(Deserialize)]
struct Envelope {
    schema: Option<String>,
    data: Option<serde_json::Value>,
}

/// Why a message is not a processing event of this uploader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message has no value")]
    Empty,
    #[error("the message is not a JSON object: {0}")]
    NotJson(String),
    #[error("the envelope's schema is {found:?}; expected {SCHEMA:?}")]
    WrongSchema { found: Option<String> },
    #[error("the envelope has no data")]
    NoData,
    #[error("the event's data is invalid: {0}")]
    InvalidData(String),
    #[error("{field} is {value:?}, not a UUID")]
    NotUuid { field: &'static str, value: String },
    #[error("the event is for {found}; this worker consumes {expected}")]
    WrongUploader { found: String, expected: String },
}

impl EnvelopeError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "EmptyMessage",
            Self::NotJson(_) => "NotJson",
            Self::WrongSchema { .. } => "WrongSchema",
            Self::NoData => "MissingData",
            Self::InvalidData(_) => "InvalidEventData",
            Self::NotUuid { .. } => "InvalidId",
            Self::WrongUploader { .. } => "WrongUploader",
        }
    }
}

/// Parses a message value into the event of `app_id`/`uploader_id`.
pub fn parse(
    payload: Option<&[u8]>,
    app_id: &str,
    uploader_id: &str,
) -> Result<ProcessingEvent, EnvelopeError> {
    let payload = payload.filter(|bytes| !bytes.is_empty()).ok_or(EnvelopeError::Empty)?;
    let envelope: Envelope = serde_json::from_slice(payload)
        .map_err(|error| EnvelopeError::NotJson(error.to_string()))?;
    if envelope.schema.as_deref() != Some(SCHEMA) {
        return Err(EnvelopeError::WrongSchema { found: envelope.schema });
    }
    let data = envelope.data.filter(|data| !data.is_null()).ok_or(EnvelopeError::NoData)?;
    let event: ProcessingEvent = serde_json::from_value(data)
        .map_err(|error| EnvelopeError::InvalidData(error.to_string()))?;
    for (field, value) in [("tenant_id", &event.tenant_id), ("event_id", &event.event_id)] {
        if uuid::Uuid::try_parse(value).is_err() {
            return Err(EnvelopeError::NotUuid { field, value: value.clone() });
        }
    }
    if event.app_id != app_id || event.uploader_id != uploader_id {
        return Err(EnvelopeError::WrongUploader {
            found: format!("{}/{}", event.app_id, event.uploader_id),
            expected: format!("{app_id}/{uploader_id}"),
        });
    }
    Ok(event)
}

/// The envelope around `event`, as producers send it.
pub fn to_envelope(event: &ProcessingEvent) -> serde_json::Value {
    serde_json::json!({ "schema": SCHEMA, "data": event })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TENANT: &str = "0b0b7c44-0d6a-4c53-9ab2-3c9c1f43b2f1";
    const EVENT: &str = "6a2f41a3-c54c-4a3a-8cbe-7d7e2d3c1b01";

    fn data() -> serde_json::Value {
        json!({
            "tenant_id": TENANT, "authorization": "Bearer x", "uploader_id": "rv_tools",
            "filepaths": ["/uploads/a.xlsx"], "clear_data": true, "event_id": EVENT,
            "app_id": "ifmp-service"
        })
    }

    fn parse_value(value: &serde_json::Value) -> Result<ProcessingEvent, EnvelopeError> {
        parse(Some(value.to_string().as_bytes()), "ifmp-service", "rv_tools")
    }

    #[test]
    fn a_well_formed_event_parses() {
        let event = parse_value(&json!({"schema": SCHEMA, "data": data()})).unwrap();
        assert_eq!(event.tenant_id, TENANT);
        assert_eq!(event.filepaths, ["/uploads/a.xlsx"]);
        assert!(event.clear_data);
        assert_eq!(to_envelope(&event), json!({"schema": SCHEMA, "data": data()}));
    }

    #[test]
    fn authorization_may_be_left_out() {
        let mut data = data();
        data.as_object_mut().unwrap().remove("authorization");
        assert_eq!(
            parse_value(&json!({"schema": SCHEMA, "data": data})).unwrap().authorization,
            None
        );
    }

    #[test]
    fn each_malformation_has_its_reason() {
        let reason =
            |bytes: Option<&[u8]>| parse(bytes, "ifmp-service", "rv_tools").unwrap_err().reason();
        assert_eq!(reason(None), "EmptyMessage");
        assert_eq!(reason(Some(b"")), "EmptyMessage");
        assert_eq!(reason(Some(b"{not json")), "NotJson");
        assert_eq!(reason(Some(b"[1]")), "NotJson");
        let reason = |value: serde_json::Value| parse_value(&value).unwrap_err().reason();
        assert_eq!(reason(data()), "WrongSchema", "a bare event without envelope");
        assert_eq!(reason(json!({"schema": "ProcessingEvent:2", "data": data()})), "WrongSchema");
        assert_eq!(reason(json!({"schema": SCHEMA})), "MissingData");
        assert_eq!(reason(json!({"schema": SCHEMA, "data": null})), "MissingData");
        let mut missing = data();
        missing.as_object_mut().unwrap().remove("filepaths");
        assert_eq!(reason(json!({"schema": SCHEMA, "data": missing})), "InvalidEventData");
        let mut wrong_type = data();
        wrong_type["clear_data"] = json!("yes");
        assert_eq!(reason(json!({"schema": SCHEMA, "data": wrong_type})), "InvalidEventData");
        let mut not_uuid = data();
        not_uuid["event_id"] = json!("TODO");
        let error = parse_value(&json!({"schema": SCHEMA, "data": not_uuid})).unwrap_err();
        assert_eq!(error.reason(), "InvalidId");
        assert_eq!(error.to_string(), "event_id is \"TODO\", not a UUID");
        let mut other = data();
        other["uploader_id"] = json!("lms_detail");
        assert_eq!(reason(json!({"schema": SCHEMA, "data": other})), "WrongUploader");
    }
}
