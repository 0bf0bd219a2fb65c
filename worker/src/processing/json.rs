//! Documents as plain JSON, for the `process` tool's output and for hashing key
//! values: dates are RFC 3339 strings rather than extended JSON's `{"$date": ...}`.

use mongodb::bson::{Bson, Document};
use serde::{Serialize, Serializer, ser::SerializeMap, ser::SerializeSeq};
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

/// A document serialized straight to the JSON [`document_to_json`] gives, without
/// building the `Value` tree first: the `process` command prints millions of them.
#[derive(Debug, Clone, Copy)]
pub struct PlainJsonDocument<'a>(pub &'a Document);

impl Serialize for PlainJsonDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (field, value) in self.0 {
            map.serialize_entry(field, &PlainJsonValue(value))?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct PlainJsonValue<'a>(pub(super) &'a Bson);

impl Serialize for PlainJsonValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Bson::Null | Bson::Undefined => serializer.serialize_unit(),
            Bson::Boolean(value) => serializer.serialize_bool(*value),
            Bson::String(text) => serializer.serialize_str(text),
            Bson::Int32(number) => serializer.serialize_i32(*number),
            Bson::Int64(number) => serializer.serialize_i64(*number),
            Bson::Double(number) if number.is_finite() => serializer.serialize_f64(*number),
            Bson::Double(number) => serializer.collect_str(number),
            Bson::DateTime(instant) => match instant.try_to_rfc3339_string() {
                Ok(text) => serializer.serialize_str(&text),
                Err(_) => serializer.serialize_i64(instant.timestamp_millis()),
            },
            Bson::ObjectId(id) => serializer.serialize_str(&id.to_hex()),
            Bson::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&PlainJsonValue(item))?;
                }
                seq.end()
            }
            Bson::Document(document) => PlainJsonDocument(document).serialize(serializer),
            other => bson_to_json(other).serialize(serializer),
        }
    }
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
    fn the_direct_serializer_prints_what_the_value_tree_prints() {
        let document = doc! {
            "_id": "abc",
            "updated_at": DateTime::from_millis(1_598_090_416_000),
            "far": DateTime::MAX,
            "count": 3_i64,
            "small": -7_i32,
            "ratio": 0.1,
            "whole": 42.0,
            "nan": f64::NAN,
            "inf": f64::NEG_INFINITY,
            "flag": false,
            "missing": Bson::Null,
            "quoted": "a \"b\"\n\u{e9}",
            "nested": { "list": [1_i32, "two", { "x": 1.5 }] },
            "oid": mongodb::bson::oid::ObjectId::from_bytes([7; 12]),
            "binary": mongodb::bson::Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic,
                bytes: vec![1, 2],
            },
        };
        let direct = serde_json::to_string(&PlainJsonDocument(&document)).unwrap();
        let via_value = serde_json::to_string(&document_to_json(&document)).unwrap();
        assert_eq!(direct, via_value);
    }

    #[test]
    fn values_json_cannot_hold_still_render() {
        assert_eq!(bson_to_json(&Bson::Double(f64::NAN)), json!("NaN"));
        assert_eq!(bson_to_json(&Bson::DateTime(DateTime::MAX)), json!(i64::MAX));
    }
}
