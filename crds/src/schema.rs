//! Hand-written schema pieces for fields that schemars cannot describe structurally.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Ids that end up in URLs, Kafka topic names and registry keys: lowercase letters,
/// digits, `_` and `-`, starting and ending with a letter or digit. No `.`, because
/// `.` separates the parts of a topic name such as `{appId}.{uploaderId}.events`.
pub(crate) const ID_PATTERN: &str = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$";
/// Longest id; like a DNS label, so an id always fits in a Kubernetes name.
pub(crate) const ID_MAX_LENGTH: u32 = 63;

/// A JSON object whose content the apiserver must keep as it is (no pruning).
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A list of JSON objects kept as they are, e.g. the stages of an aggregation pipeline.
pub(crate) fn free_form_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}
