//! How registry documents are stored in MongoDB when the server cannot hold them as they
//! are. The SDK's shapes have arrays inside arrays (an uploader's `required_sheets` and
//! `required_columns` alternatives); real MongoDB stores them, FerretDB v1 (the local
//! stack's server) refuses them. Against such a server each inner array is wrapped in an
//! object under [`NESTED_ARRAY_KEY`]. Reading always unwraps, so the rest of the
//! operator, and the Kafka registry topic, only ever see the SDK's shapes.

use mongodb::bson::{Document, doc};
use serde_json::{Map, Value};

/// The key an inner array is wrapped under. Long and odd enough that no SDK document
/// has it.
pub const NESTED_ARRAY_KEY: &str = "__licenseware_nested_array";

/// Whether the server behind `database` refuses arrays inside arrays. FerretDB v1 says
/// who it is in `buildInfo`; any other server is taken to be MongoDB.
pub async fn refuses_nested_arrays(
    database: &mongodb::Database,
) -> Result<bool, mongodb::error::Error> {
    let info: Document = database.run_command(doc! { "buildInfo": 1 }).await?;
    Ok(info.contains_key("ferretdbVersion") || info.contains_key("ferretdbFeatures"))
}

/// The prefix a key starting with `$` gets (a component's pipeline has such keys):
/// FerretDB v1 refuses them as field names.
pub const DOLLAR_KEY_PREFIX: &str = "__licenseware_dollar_";

fn escape_key(key: String) -> String {
    match key.strip_prefix('$') {
        Some(rest) => format!("{DOLLAR_KEY_PREFIX}{rest}"),
        None => key,
    }
}

fn unescape_key(key: String) -> String {
    match key.strip_prefix(DOLLAR_KEY_PREFIX) {
        Some(rest) => format!("${rest}"),
        None => key,
    }
}

/// Wraps every array that sits directly inside another array, and escapes keys that
/// start with `$`.
pub fn wrap_nested_arrays(value: Value) -> Value {
    transform(value, false)
}

/// Undoes [`wrap_nested_arrays`]; documents written without wrapping pass unchanged.
pub fn unwrap_nested_arrays(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if map.len() == 1
                && let Some(Value::Array(items)) = map.remove(NESTED_ARRAY_KEY)
            {
                return Value::Array(items.into_iter().map(unwrap_nested_arrays).collect());
            }
            Value::Object(
                map.into_iter().map(|(k, v)| (unescape_key(k), unwrap_nested_arrays(v))).collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unwrap_nested_arrays).collect()),
        other => other,
    }
}

fn transform(value: Value, inside_array: bool) -> Value {
    match value {
        Value::Array(items) => {
            let array = Value::Array(items.into_iter().map(|item| transform(item, true)).collect());
            if inside_array {
                let mut wrapper = Map::new();
                wrapper.insert(NESTED_ARRAY_KEY.to_owned(), array);
                Value::Object(wrapper)
            } else {
                array
            }
        }
        Value::Object(map) => Value::Object(
            map.into_iter().map(|(k, v)| (escape_key(k), transform(v, false))).collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inner_arrays_are_wrapped_and_unwrapped_back() {
        let sdk = json!({
            "validation_parameters": {
                "required_sheets": [["tabvInfo", "tabvCPU"], ["vInfo", "vCPU"]],
                "filename_contains": ["rv", "tools"],
            },
            "deep": [[[1, 2], [3]], []],
        });
        let stored = wrap_nested_arrays(sdk.clone());
        assert_eq!(
            stored["validation_parameters"]["required_sheets"][0],
            json!({ NESTED_ARRAY_KEY: ["tabvInfo", "tabvCPU"] })
        );
        assert_eq!(stored["validation_parameters"]["filename_contains"], json!(["rv", "tools"]));
        assert_eq!(
            stored["deep"][0],
            json!({ NESTED_ARRAY_KEY: [{ NESTED_ARRAY_KEY: [1, 2] }, { NESTED_ARRAY_KEY: [3] }] })
        );
        assert_eq!(unwrap_nested_arrays(stored), sdk);
    }

    #[test]
    fn dollar_keys_are_escaped_and_restored() {
        let pipeline = json!({"pipeline": [{"$match": {"os": {"$ne": null}}}], "price": "$5"});
        let stored = wrap_nested_arrays(pipeline.clone());
        assert_eq!(
            stored["pipeline"][0]["__licenseware_dollar_match"]["os"]["__licenseware_dollar_ne"],
            Value::Null
        );
        assert_eq!(stored["price"], "$5");
        assert_eq!(unwrap_nested_arrays(stored), pipeline);
    }

    #[test]
    fn documents_without_nested_arrays_are_untouched() {
        let plain = json!({ "a": [1, {"b": [2]}], "c": {"d": "e"} });
        assert_eq!(wrap_nested_arrays(plain.clone()), plain);
        assert_eq!(unwrap_nested_arrays(plain.clone()), plain);
    }
}
