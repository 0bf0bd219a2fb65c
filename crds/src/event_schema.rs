//! The processing event the API produces for an upload, and its check against the
//! events Topic's message contract ([`TopicSchema`]): the envelope's `schema` must name
//! the contract (`{id}:{version}`) and its `data` must match the JSON schema.
//!
//! The shape lives here, not in the worker, so that the API (which sends it) and the
//! operator (which checks an Uploader's events Topic against it) use one definition.

use serde_json::{Value, json};

use crate::TopicSchema;

/// The envelope's `schema` value of every processing event.
pub const PROCESSING_EVENT_SCHEMA: &str = "ProcessingEvent:1";

/// At most this many schema violations are named in an error: a hostile schema or
/// event must not make the message (logged, and put in a status) unbounded.
const MAX_VIOLATIONS: usize = 3;
/// And each is cut to this many characters.
const MAX_VIOLATION_CHARS: usize = 200;

/// What the API sends on the events topic for one upload (`data` of the envelope).
#[derive(Debug, Clone, Copy)]
pub struct UploadEvent<'a> {
    pub tenant_id: &'a str,
    pub uploader_id: &'a str,
    pub filepaths: &'a [String],
    pub clear_data: bool,
    pub event_id: &'a str,
    pub app_id: &'a str,
}

impl UploadEvent<'_> {
    /// The kafkaesk envelope `{"schema": "ProcessingEvent:1", "data": {...}}`.
    pub fn envelope(&self) -> Value {
        json!({
            "schema": PROCESSING_EVENT_SCHEMA,
            "data": {
                "tenant_id": self.tenant_id,
                "uploader_id": self.uploader_id,
                "filepaths": self.filepaths,
                "clear_data": self.clear_data,
                "event_id": self.event_id,
                "app_id": self.app_id,
            },
        })
    }
}

/// An envelope like those the API sends for `app_id`/`uploader_id`: one file, made-up
/// tenant and event ids of the real form (UUIDs). What the operator checks an events
/// Topic's schema against.
pub fn sample_upload_envelope(app_id: &str, uploader_id: &str) -> Value {
    const TENANT: &str = "00000000-0000-4000-8000-000000000000";
    const EVENT: &str = "00000000-0000-4000-8000-000000000001";
    let filepaths = [format!("{TENANT}/{EVENT}/file.csv")];
    UploadEvent {
        tenant_id: TENANT,
        uploader_id,
        filepaths: &filepaths,
        clear_data: false,
        event_id: EVENT,
        app_id,
    }
    .envelope()
}

/// Why an envelope cannot go on a topic with a schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventSchemaError {
    #[error("the JSON schema of {name} does not compile: {cause}")]
    InvalidSchema { name: String, cause: String },
    #[error("the envelope names schema {found:?}; the topic's contract is {expected:?}")]
    WrongSchemaName { found: Option<String>, expected: String },
    #[error("the event's data does not match {name}: {violations}")]
    Refused { name: String, violations: String },
}

impl EventSchemaError {
    /// A stable reason, for logs, metrics and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSchema { .. } => "InvalidTopicSchema",
            Self::WrongSchemaName { .. } => "WrongEventSchemaName",
            Self::Refused { .. } => "EventSchemaRefused",
        }
    }
}

/// A Topic's contract compiled once, to check any number of envelopes.
#[derive(Debug)]
pub struct CompiledEventSchema {
    name: String,
    validator: jsonschema::Validator,
}

impl CompiledEventSchema {
    /// Compiles the JSON schema. Remote `$ref`s are not fetched (this build has no
    /// resolver for them): such a schema does not compile.
    pub fn compile(schema: &TopicSchema) -> Result<Self, EventSchemaError> {
        let name = schema.envelope_name();
        let json_schema = Value::Object(schema.json_schema.clone());
        let validator = jsonschema::validator_for(&json_schema).map_err(|error| {
            EventSchemaError::InvalidSchema { name: name.clone(), cause: bounded(&error) }
        })?;
        Ok(Self { name, validator })
    }

    /// `{id}:{version}` of the contract.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `envelope` names this contract and its `data` matches the JSON schema.
    pub fn check(&self, envelope: &Value) -> Result<(), EventSchemaError> {
        let found = envelope.get("schema").and_then(Value::as_str);
        if found != Some(self.name.as_str()) {
            return Err(EventSchemaError::WrongSchemaName {
                found: found.map(|name| name.chars().take(MAX_VIOLATION_CHARS).collect()),
                expected: self.name.clone(),
            });
        }
        let data = envelope.get("data").unwrap_or(&Value::Null);
        let violations: Vec<String> =
            self.validator.iter_errors(data).take(MAX_VIOLATIONS).map(|e| bounded(&e)).collect();
        if violations.is_empty() {
            return Ok(());
        }
        Err(EventSchemaError::Refused {
            name: self.name.clone(),
            violations: violations.join("; "),
        })
    }
}

/// An error's text, with where it happened, cut to [`MAX_VIOLATION_CHARS`].
fn bounded(error: &jsonschema::ValidationError<'_>) -> String {
    let path = error.instance_path().to_string();
    let text = if path.is_empty() { error.to_string() } else { format!("{path}: {error}") };
    text.chars().take(MAX_VIOLATION_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json_schema: Value) -> TopicSchema {
        let Value::Object(json_schema) = json_schema else { panic!("an object") };
        TopicSchema { id: "ProcessingEvent".into(), version: 1, json_schema }
    }

    fn envelope() -> Value {
        sample_upload_envelope("ifmp-service", "rv_tools")
    }

    #[test]
    fn a_schema_the_event_matches_accepts_it() {
        let compiled = CompiledEventSchema::compile(&schema(json!({
            "type": "object",
            "required": ["tenant_id", "event_id", "filepaths", "clear_data"],
            "properties": {
                "tenant_id": {"type": "string", "format": "uuid"},
                "filepaths": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "clear_data": {"type": "boolean"},
            },
        })))
        .expect("compiles");
        assert_eq!(compiled.name(), "ProcessingEvent:1");
        assert_eq!(compiled.check(&envelope()), Ok(()));
    }

    #[test]
    fn a_schema_the_event_misses_refuses_it_naming_the_field() {
        let compiled = CompiledEventSchema::compile(&schema(json!({
            "type": "object",
            "required": ["authorization"],
            "properties": {"clear_data": {"type": "string"}},
        })))
        .expect("compiles");
        let error = compiled.check(&envelope()).expect_err("refused");
        assert_eq!(error.reason(), "EventSchemaRefused");
        let text = error.to_string();
        assert!(text.contains("authorization"), "{text}");
        assert!(text.contains("/clear_data"), "{text}");
    }

    #[test]
    fn another_contract_name_is_refused() {
        let mut other = schema(json!({}));
        other.version = 2;
        let compiled = CompiledEventSchema::compile(&other).expect("compiles");
        let error = compiled.check(&envelope()).expect_err("refused");
        assert_eq!(error.reason(), "WrongEventSchemaName");
        assert!(error.to_string().contains("ProcessingEvent:2"), "{error}");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_a_clear_error() {
        let error = CompiledEventSchema::compile(&schema(json!({"type": 12})))
            .expect_err("does not compile");
        assert_eq!(error.reason(), "InvalidTopicSchema");
    }

    #[test]
    fn remote_references_are_not_fetched() {
        let error =
            CompiledEventSchema::compile(&schema(json!({"$ref": "http://127.0.0.1:9/x.json"})))
                .expect_err("not resolved");
        assert_eq!(error.reason(), "InvalidTopicSchema");
    }

    #[test]
    fn violations_are_bounded() {
        let properties: serde_json::Map<String, Value> =
            (0..50).map(|i| (format!("p{i}"), json!({"type": "string"}))).collect();
        let required: Vec<String> = (0..50).map(|i| format!("p{i}{}", "x".repeat(500))).collect();
        let compiled = CompiledEventSchema::compile(&schema(
            json!({"type": "object", "properties": properties, "required": required}),
        ))
        .expect("compiles");
        let error = compiled.check(&envelope()).expect_err("refused");
        assert!(error.to_string().len() < 1000, "{}", error.to_string().len());
    }
}
