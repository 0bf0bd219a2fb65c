//! Documents as plain JSON, for the `process` tool's output and for hashing key
//! values: dates are RFC 3339 strings rather than extended JSON's `{"$date": ...}`.

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

/// A document as plain JSON, fields in the document's order.
pub fn document_to_json(document: &Document) -> Value {
    Value::Object(document_fields(document))
}

/// One BSON value as plain JSON. Dates beyond RFC 3339's range (years past 9999) fall
/// back to their milliseconds since the epoch; non-finite doubles (JSON has none)
/// become the strings `NaN`, `inf`, `-inf`.
pub fn bson_to_json(value: &Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(value) => Value::Bool(*value),
        Bson::String(text) => Value::String(text.clone()),
        Bson::Int32(number) => Value::from(*number),
        Bson::Int64(number) => Value::from(*number),
        Bson::Double(number) => serde_json::Number::from_f64(*number)
            .map_or_else(|| Value::String(number.to_string()), Value::Number),
        Bson::DateTime(instant) => instant
            .try_to_rfc3339_string()
            .map_or_else(|_| Value::from(instant.timestamp_millis()), Value::String),
        Bson::ObjectId(id) => Value::String(id.to_hex()),
        Bson::Array(items) => Value::Array(items.iter().map(bson_to_json).collect()),
        Bson::Document(document) => Value::Object(document_fields(document)),
        // Types mapping never produces (binary, regex, timestamps...): extended JSON.
        other => other.clone().into_relaxed_extjson(),
    }
}

fn document_fields(document: &Document) -> Map<String, Value> {
    document.iter().map(|(field, value)| (field.clone(), bson_to_json(value))).collect()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{DateTime, doc};
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_become_plain_json_in_field_order() {
        let document = doc! {
            "_id": "abc",
            "updated_at": DateTime::from_millis(1_598_090_416_000),
            "count": 3_i64,
            "ratio": 0.5,
            "flag": true,
            "missing": Bson::Null,
            "nested": { "list": [1_i32, "two"] },
        };
        let json = document_to_json(&document);
        assert_eq!(
            json,
            json!({
                "_id": "abc",
                "updated_at": "2020-08-22T10:00:16Z",
                "count": 3,
                "ratio": 0.5,
                "flag": true,
                "missing": null,
                "nested": {"list": [1, "two"]},
            })
        );
        let order: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(order, ["_id", "updated_at", "count", "ratio", "flag", "missing", "nested"]);
    }

    #[test]
    fn values_json_cannot_hold_still_render() {
        assert_eq!(bson_to_json(&Bson::Double(f64::NAN)), json!("NaN"));
        assert_eq!(bson_to_json(&Bson::DateTime(DateTime::MAX)), json!(i64::MAX));
    }
}
