//! The SDK's bulk delete of snapshot items (`DELETE /reports/{r}/snapshot` with a body
//! `[{"version": …}, {"_id": …}, …]`), parsed and checked before anything is deleted.
//! Pure. The SDK's `component_uuid`/`report_uuid` items named its storage layout;
//! here they are refused by name rather than ignored.

use mongodb::bson::oid::ObjectId;
use serde_json::Value;

use super::version;

/// Items one request may name.
pub const MAX_ITEMS: usize = 1_000;

/// What a bulk delete names: whole versions of the report, and single rows of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BulkDelete {
    pub versions: Vec<String>,
    pub rows: Vec<ObjectId>,
}

/// Why a bulk delete body is refused; nothing is deleted then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    #[error("the body must be a JSON list of {{\"version\": …}} or {{\"_id\": …}} items: {0}")]
    Malformed(String),
    #[error("at most {MAX_ITEMS} items may be deleted at once")]
    TooMany,
    #[error("item {index}: {message}")]
    Item { index: usize, message: String },
}

impl BulkError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "BulkDeleteMalformed",
            Self::TooMany => "BulkDeleteTooMany",
            Self::Item { .. } => "BulkDeleteItemInvalid",
        }
    }
}

pub fn parse(body: &[u8]) -> Result<BulkDelete, BulkError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| BulkError::Malformed(error.to_string()))?;
    let Value::Array(items) = value else {
        return Err(BulkError::Malformed("not a list".to_owned()));
    };
    if items.is_empty() {
        return Err(BulkError::Malformed("the list is empty".to_owned()));
    }
    if items.len() > MAX_ITEMS {
        return Err(BulkError::TooMany);
    }
    let mut wanted = BulkDelete::default();
    for (index, item) in items.iter().enumerate() {
        let refuse = |message: &str| BulkError::Item { index, message: message.to_owned() };
        let Some(fields) = item.as_object().filter(|fields| fields.len() == 1) else {
            return Err(refuse("an object with exactly one of `version` or `_id`"));
        };
        match fields.iter().next() {
            Some((key, Value::String(version))) if key == "version" => {
                if !version::is_version(version) {
                    return Err(refuse("not a snapshot version"));
                }
                wanted.versions.push(version.clone());
            }
            Some((key, Value::String(id))) if key == "_id" => {
                let id = ObjectId::parse_str(id).map_err(|_| refuse("not a snapshot row id"))?;
                wanted.rows.push(id);
            }
            Some((key, _)) if key == "component_uuid" || key == "report_uuid" => {
                return Err(refuse(
                    "component_uuid and report_uuid name the SDK's storage: delete a version \
                     or a row by its _id",
                ));
            }
            _ => return Err(refuse("`version` or `_id`, as a string")),
        }
    }
    wanted.versions.sort();
    wanted.versions.dedup();
    wanted.rows.sort();
    wanted.rows.dedup();
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_row_ids_are_taken_and_deduplicated() {
        let id = ObjectId::new();
        let body = format!(
            r#"[{{"version": "ABC123"}}, {{"_id": "{id}"}}, {{"version": "ABC123"}}]"#,
            id = id.to_hex()
        );
        let wanted = parse(body.as_bytes()).unwrap();
        assert_eq!(wanted, BulkDelete { versions: vec!["ABC123".to_owned()], rows: vec![id] });
    }

    #[test]
    fn anything_else_is_refused_before_a_delete_with_the_item_named() {
        for (body, reason) in [
            ("{}", "BulkDeleteMalformed"),
            ("[]", "BulkDeleteMalformed"),
            ("not json", "BulkDeleteMalformed"),
            (r#"[{"version": "ABC123", "_id": "x"}]"#, "BulkDeleteItemInvalid"),
            (r#"[{"version": {"$ne": null}}]"#, "BulkDeleteItemInvalid"),
            (r#"[{"version": "../x"}]"#, "BulkDeleteItemInvalid"),
            (r#"[{"_id": "not-an-id"}]"#, "BulkDeleteItemInvalid"),
            (r#"[{"report_uuid": "u"}]"#, "BulkDeleteItemInvalid"),
            (r#"[{"tenant_id": "t"}]"#, "BulkDeleteItemInvalid"),
        ] {
            let refused = parse(body.as_bytes()).unwrap_err();
            assert_eq!(refused.reason(), reason, "{body}: {refused}");
        }
        let too_many = format!("[{}]", vec![r#"{"version": "ABC123"}"#; MAX_ITEMS + 1].join(","));
        assert_eq!(parse(too_many.as_bytes()).unwrap_err(), BulkError::TooMany);
    }
}
