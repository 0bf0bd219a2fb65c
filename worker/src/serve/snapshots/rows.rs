//! Snapshot rows: how a component's row is stored (nested under [`ROW`], so that its
//! fields can never collide with the snapshot's bookkeeping fields, as they could in
//! the SDK, which wrote both side by side), how the SDK's filters reach it, how it is
//! answered and how an edit is checked. Pure.

use mongodb::bson::{Bson, Document, oid::ObjectId};
use serde_json::{Map, Value};

/// The field that holds a row's own fields.
pub const ROW: &str = "row";

/// The fields the SDK stripped from an edit (`update_snapshot_component_data`): kept
/// out of `new_data` so a client written for the SDK gets the same result.
pub const SDK_BOOKKEEPING: [&str; 8] = [
    "_id",
    "tenant_id",
    "version",
    "for_report_uuid",
    "report_id",
    "component_uuid",
    "component_id",
    "report_snapshot_date",
];

/// Most fields in one edit.
pub const MAX_EDIT_FIELDS: usize = 200;

/// `filters::to_match`'s document, on the stored rows: every column moves under
/// [`ROW`]. That document is a `{column: condition}` or an `$and` of them, and its
/// columns never start with `$` (filters refuses them), so every other key is a column.
pub fn nest_match(user_match: Document) -> Document {
    let mut nested = Document::new();
    for (key, value) in user_match {
        if key == "$and" {
            let clauses = match value {
                Bson::Array(clauses) => clauses
                    .into_iter()
                    .map(|clause| match clause {
                        Bson::Document(clause) => Bson::Document(nest_match(clause)),
                        other => other,
                    })
                    .collect(),
                other => return Document::from_iter([(key, other)]),
            };
            nested.insert(key, Bson::Array(clauses));
        } else {
            nested.insert(format!("{ROW}.{key}"), value);
        }
    }
    nested
}

/// A stored row as clients get it: the component's row, with `_id` the stored row's
/// id (the handle an edit takes, as in the SDK, whose rows' `_id` were their stored
/// ids). A row's own `_id` (e.g. a `$group` key) is replaced: components that need it
/// project it into a field of its own, as they do for live data.
pub fn answer_row(id: &ObjectId, row: Document) -> Document {
    let mut answer = Document::new();
    answer.insert("_id", id.to_hex());
    for (key, value) in row {
        if key != "_id" {
            answer.insert(key, value);
        }
    }
    answer
}

/// Why an edit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the body must be {{\"_id\": <row id>, \"new_data\": {{field: value, ...}}}}: {0}")]
    Malformed(String),
    #[error("Didn't found any match on field `_id` on this `tenant_id`")]
    NoMatch,
    #[error(
        "Provided fields {0} can't be updated: bookkeeping fields, or names with '$', '.' or NUL"
    )]
    NothingEditable(String),
    #[error("new_data has more than {MAX_EDIT_FIELDS} fields")]
    TooMany,
}

impl EditError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "SnapshotEditMalformed",
            Self::NoMatch => "SnapshotRowNotFound",
            Self::NothingEditable(_) => "SnapshotFieldsNotEditable",
            Self::TooMany => "SnapshotEditTooLarge",
        }
    }
}

/// An edit, checked: the row's id and the `$set` of its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub id: ObjectId,
    pub set: Document,
}

/// Reads `{_id, new_data}`. The SDK's bookkeeping names are dropped from `new_data`;
/// names that MongoDB would read as operators or paths are refused; an edit left with
/// no field is refused rather than silently doing nothing.
pub fn parse_edit(body: &[u8]) -> Result<Edit, EditError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| EditError::Malformed(error.to_string()))?;
    let Value::Object(mut body) = value else {
        return Err(EditError::Malformed("not an object".to_owned()));
    };
    let id = match body.remove("_id") {
        Some(Value::String(id)) => ObjectId::parse_str(&id).map_err(|_| EditError::NoMatch)?,
        Some(_) => return Err(EditError::Malformed("_id is a string".to_owned())),
        None => return Err(EditError::Malformed("_id is missing".to_owned())),
    };
    let new_data: Map<String, Value> = match body.remove("new_data") {
        Some(Value::Object(data)) => data,
        Some(_) => return Err(EditError::Malformed("new_data is an object".to_owned())),
        None => return Err(EditError::Malformed("new_data is missing".to_owned())),
    };
    if new_data.len() > MAX_EDIT_FIELDS {
        return Err(EditError::TooMany);
    }
    let mut set = Document::new();
    let mut refused = Vec::new();
    for (key, value) in new_data {
        let editable = !key.is_empty()
            && !SDK_BOOKKEEPING.contains(&key.as_str())
            && !key.contains(['$', '.', '\0']);
        if !editable {
            refused.push(key);
            continue;
        }
        let value =
            Bson::try_from(value).map_err(|error| EditError::Malformed(error.to_string()))?;
        set.insert(format!("{ROW}.{key}"), value);
    }
    if set.is_empty() {
        return Err(EditError::NothingEditable(format!("{refused:?}")));
    }
    Ok(Edit { id, set })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn filters_reach_the_nested_row_only() {
        assert_eq!(nest_match(doc! {"name": {"$eq": "a"}}), doc! {"row.name": {"$eq": "a"}});
        let both = doc! {"$and": [{"cpus": {"$gt": 1}}, {"tags.env": {"$in": ["prod"]}}]};
        assert_eq!(
            nest_match(both),
            doc! {"$and": [{"row.cpus": {"$gt": 1}}, {"row.tags.env": {"$in": ["prod"]}}]}
        );
    }

    #[test]
    fn answers_carry_the_stored_id() {
        let id = ObjectId::new();
        let row = answer_row(&id, doc! {"_id": "linux", "name": "a", "n": 2});
        assert_eq!(row, doc! {"_id": id.to_hex(), "name": "a", "n": 2});
    }

    #[test]
    fn edits_set_row_fields_and_never_bookkeeping() {
        let id = ObjectId::new();
        let body = serde_json::json!({"_id": id.to_hex(), "new_data": {
            "name": "b", "tenant_id": "other", "version": "X", "$set": 1, "a.b": 2, "n": 3}});
        let edit = parse_edit(body.to_string().as_bytes()).unwrap();
        assert_eq!(edit, Edit { id, set: doc! {"row.name": "b", "row.n": 3_i32} });
    }

    #[test]
    fn bad_edits_have_reasons() {
        let id = ObjectId::new().to_hex();
        let cases = [
            (serde_json::json!([]), "SnapshotEditMalformed"),
            (serde_json::json!({"new_data": {"a": 1}}), "SnapshotEditMalformed"),
            (serde_json::json!({"_id": 1, "new_data": {"a": 1}}), "SnapshotEditMalformed"),
            (serde_json::json!({"_id": "nope", "new_data": {"a": 1}}), "SnapshotRowNotFound"),
            (serde_json::json!({"_id": id, "new_data": [1]}), "SnapshotEditMalformed"),
            (serde_json::json!({"_id": id, "new_data": {"_id": 1}}), "SnapshotFieldsNotEditable"),
        ];
        for (body, reason) in cases {
            let error = parse_edit(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(error.reason(), reason, "{body}");
        }
        assert_eq!(parse_edit(b"{").unwrap_err().reason(), "SnapshotEditMalformed");
    }
}
