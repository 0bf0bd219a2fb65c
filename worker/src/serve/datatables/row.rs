//! A data-table row as a client sends it, checked against the table's columns and made
//! into what MongoDB is sent: the `$set` of an edit or the document of an insert. Pure.
//!
//! The SDK's `DataTable.validate` (§5.2) with its messages, and what it got wrong fixed:
//! - every error is collected and returned as one 400, where the first one was raised
//!   and the client saw a bare 500;
//! - the fields the server owns (`_id`, `tenant_id`, `updated_at` and the provenance
//!   fields processing writes) are dropped whether the table declares them or not: the
//!   SDK passed undeclared fields through, so a body with `tenant_id` moved a row to
//!   another tenant;
//! - no key of a value may begin with `$` (it would be an operator, or extended JSON
//!   such as `{"$oid": ...}`), at any depth;
//! - a `number` is a JSON number, not also a boolean (Python's `isinstance(True, int)`).

use licenseware_crds::{ColumnType, registry::ColumnEntry};
use mongodb::bson::{Bson, DateTime, Document, oid::ObjectId};
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::processing::parse_date_text;

/// Fields the server sets: never taken from a client, declared or not.
pub const SERVER_FIELDS: [&str; 7] =
    ["_id", "tenant_id", "updated_at", "app_id", "uploader_id", "event_id", "source_file"];
/// Deepest value accepted (json and entity columns, undeclared fields).
const MAX_DEPTH: usize = 32;

/// Which write a row is for: an insert also needs every required column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Update,
    Insert,
}

fn is_server_field(field: &str) -> bool {
    SERVER_FIELDS.iter().any(|server| field == *server || field.starts_with(&format!("{server}.")))
}

/// Why a key is not a field name: MongoDB would read `$` as an operator, and an empty
/// segment of a dotted path names no field.
fn bad_field_name(field: &str) -> Option<String> {
    if field.is_empty() || field.split('.').any(str::is_empty) {
        return Some(format!("Field '{field}' is not a field name (empty segment)"));
    }
    if field.starts_with('$') || field.split('.').any(|s| s.starts_with('$')) {
        return Some(format!("Field '{field}' is not a field name (it starts with '$')"));
    }
    if field.chars().any(char::is_control) {
        return Some(format!("Field '{field}' is not a field name (a control character)"));
    }
    None
}

/// The `$set` of an update or the fields of an insert: the row's fields, each checked
/// against its column, in the body's order; or every message (SDK wording where the
/// SDK had one).
pub fn check_row(
    columns: &[ColumnEntry],
    row: &Map<String, Value>,
    write: Write,
) -> Result<Document, Vec<String>> {
    let mut fields = Document::new();
    let mut errors = Vec::new();
    for (field, value) in row {
        if is_server_field(field) {
            continue;
        }
        let column = columns.iter().find(|c| c.prop == *field);
        // The SDK drops non-editable fields silently: a UI sends the whole row back.
        if column.is_some_and(|c| !c.editable) {
            continue;
        }
        if let Some(error) = bad_field_name(field) {
            errors.push(error);
            continue;
        }
        let checked = match column {
            Some(column) => typed(column, value),
            // Undeclared fields pass, as in the SDK, as plain data.
            None => literal(value, 0).map_err(|why| format!("Field '{field}': {why}")),
        };
        match checked {
            Ok(bson) => {
                fields.insert(field.clone(), bson);
            }
            Err(error) => errors.push(error),
        }
    }
    if write == Write::Insert {
        for column in columns {
            let given = row.get(&column.prop).is_some_and(|v| !v.is_null());
            if column.required && column.editable && !is_server_field(&column.prop) && !given {
                errors.push(format!("Field '{}' is required", column.prop));
            }
        }
    }
    if errors.is_empty() { Ok(fields) } else { Err(errors) }
}

/// The SDK's message for a value that is not of the column's type.
pub fn type_message(column: &ColumnEntry) -> String {
    let f = &column.prop;
    match column.column_type {
        // The SDK's message has two spaces before the example.
        ColumnType::String => format!("Field '{f}' must be 'string'  (ex: 'some-string')"),
        ColumnType::Number => format!("Field '{f}' must be 'number' (ex: 12, or 14.3)"),
        ColumnType::Date => {
            format!("Field '{f}' must be 'date' (ex: '2022-09-01T06:01:38.621461')")
        }
        ColumnType::Bool => format!("Field '{f}' must be 'bool'"),
        ColumnType::Json => format!("Field '{f}' must be 'json'"),
        ColumnType::Enum => format!(
            "Field '{f}' must be an 'enum' from {}",
            python_list(column.values.as_deref().unwrap_or_default())
        ),
        ColumnType::Entity => format!("Field '{f}' must be an 'entity'"),
    }
}

/// `['a', 'b']`: how the SDK's message printed the enum's values.
fn python_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("[{}]", items.join(", "))
}

/// `value` as the column's type. A null is accepted on a column that is not required
/// (the SDK skipped those), and refused with the type's message on one that is.
fn typed(column: &ColumnEntry, value: &Value) -> Result<Bson, String> {
    let wrong = || type_message(column);
    if value.is_null() {
        return if column.required { Err(wrong()) } else { Ok(Bson::Null) };
    }
    match column.column_type {
        ColumnType::String => value.as_str().map(|s| Bson::String(s.to_owned())).ok_or_else(wrong),
        ColumnType::Number => match value {
            Value::Number(number) => number_bson(number).ok_or_else(wrong),
            _ => Err(wrong()),
        },
        ColumnType::Date => value.as_str().and_then(date).map(Bson::DateTime).ok_or_else(wrong),
        ColumnType::Bool => value.as_bool().map(Bson::Boolean).ok_or_else(wrong),
        ColumnType::Json => match value {
            Value::Object(_) | Value::Array(_) => {
                literal(value, 0).map_err(|why| format!("Field '{}': {why}", column.prop))
            }
            _ => Err(wrong()),
        },
        ColumnType::Enum => match (value, column.values.as_deref()) {
            (Value::String(text), Some(values)) if values.contains(text) => {
                Ok(Bson::String(text.clone()))
            }
            // An enum declared without values takes any text.
            (Value::String(text), None) => Ok(Bson::String(text.clone())),
            _ => Err(wrong()),
        },
        // The SDK checked nothing here; a value still has to be data.
        ColumnType::Entity => {
            literal(value, 0).map_err(|why| format!("Field '{}': {why}", column.prop))
        }
    }
}

/// The SDK's date shape `YYYY-MM-DDTHH:MM:SS.ffffff` (naive, taken as UTC, as
/// processing stores dates), or RFC 3339 with a zone; stored as a BSON date so that
/// the reports' date filters compare it with the dates processing wrote.
pub fn date(text: &str) -> Option<DateTime> {
    let sdk_shape = text.len() == 26
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            _ => b.is_ascii_digit(),
        });
    if sdk_shape || OffsetDateTime::parse(text, &Rfc3339).is_ok() {
        parse_date_text(text)
    } else {
        None
    }
}

fn number_bson(number: &serde_json::Number) -> Option<Bson> {
    if let Some(n) = number.as_i64() {
        return Some(Bson::Int64(n));
    }
    number.as_f64().filter(|n| n.is_finite()).map(Bson::Double)
}

/// Any JSON as plain BSON data: no key beginning with `$` at any depth, bounded depth.
pub fn literal(value: &Value, depth: usize) -> Result<Bson, String> {
    if depth > MAX_DEPTH {
        return Err(format!("values are nested at most {MAX_DEPTH} levels"));
    }
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_bson(n).ok_or_else(|| format!("{n} is out of range"))?,
        Value::String(text) => Bson::String(text.clone()),
        Value::Array(items) => {
            Bson::Array(items.iter().map(|i| literal(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            let mut document = Document::new();
            for (key, inner) in map {
                if key.starts_with('$') || key.chars().any(char::is_control) {
                    return Err(format!("key '{key}': keys starting with '$' are not data"));
                }
                document.insert(key.clone(), literal(inner, depth + 1)?);
            }
            Bson::Document(document)
        }
    })
}

/// The fields of an insert as a document: dotted names (`details.quantity`, as a
/// column's prop may be) become nested documents, as `$set` would have made them.
pub fn nest(fields: Document) -> Result<Document, Vec<String>> {
    let mut document = Document::new();
    let mut errors = Vec::new();
    for (path, value) in fields {
        let parts: Vec<&str> = path.split('.').collect();
        if !put(&mut document, &parts, value) {
            errors.push(format!("Field '{path}' is given twice (as a value and as a path)"));
        }
    }
    if errors.is_empty() { Ok(document) } else { Err(errors) }
}

/// Puts `value` at `path` in `document`; false when something is there already.
fn put(document: &mut Document, path: &[&str], value: Bson) -> bool {
    match path {
        [] => false,
        [last] => {
            if document.contains_key(*last) {
                return false;
            }
            document.insert(*last, value);
            true
        }
        [first, rest @ ..] => {
            let entry = document
                .entry((*first).to_owned())
                .or_insert_with(|| Bson::Document(Document::new()));
            match entry {
                Bson::Document(inner) => put(inner, rest, value),
                _ => false,
            }
        }
    }
}

/// The row id of a request as the `_id` to match: a 24-hex id may be an ObjectId (rows
/// inserted here, or by the SDK) or a string (processing's deterministic ids), so both
/// are matched; anything else is a string. Always a value, never an operator.
pub fn id_match(id: &str) -> Bson {
    match ObjectId::parse_str(id) {
        Ok(oid) => mongodb::bson::bson!({"$in": [oid, id]}),
        Err(_) => Bson::String(id.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(prop: &str, column_type: ColumnType) -> ColumnEntry {
        ColumnEntry {
            name: prop.to_owned(),
            prop: prop.to_owned(),
            editable: true,
            column_type,
            values: None,
            required: false,
            visible: true,
            hashable: true,
            entities_url: None,
            distinct_key: None,
            foreign_key: None,
        }
    }

    fn columns() -> Vec<ColumnEntry> {
        let mut id = column("_id", ColumnType::String);
        id.editable = false;
        let mut locked = column("serial", ColumnType::String);
        locked.editable = false;
        let mut os = column("os", ColumnType::Enum);
        os.values = Some(vec!["linux".into(), "windows".into()]);
        let mut name = column("name", ColumnType::String);
        name.required = true;
        vec![
            id,
            locked,
            name,
            column("cpus", ColumnType::Number),
            column("seen", ColumnType::Date),
            column("on", ColumnType::Bool),
            column("tags", ColumnType::Json),
            os,
            column("host", ColumnType::Entity),
            column("details.quantity", ColumnType::Number),
        ]
    }

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn valid_values_become_typed_bson_and_locked_fields_are_dropped() {
        let set = check_row(
            &columns(),
            &row(json!({
                "_id": "x", "serial": "locked", "tenant_id": "other", "updated_at": 1,
                "app_id": "a", "tenant_id.x": 1,
                "name": "vm", "cpus": 4, "seen": "2022-09-01T06:01:38.621461", "on": true,
                "tags": {"env": "prod"}, "os": "linux", "host": "h1", "extra": [1, "x"],
                "details.quantity": 2.5,
            })),
            Write::Update,
        )
        .unwrap();
        let keys: Vec<&str> = set.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["name", "cpus", "seen", "on", "tags", "os", "host", "extra", "details.quantity"]
        );
        assert_eq!(set.get_i64("cpus").unwrap(), 4);
        let seen = set.get_datetime("seen").unwrap();
        assert_eq!(seen.try_to_rfc3339_string().unwrap(), "2022-09-01T06:01:38.621Z");
        assert_eq!(set.get_f64("details.quantity").unwrap(), 2.5);
    }

    #[test]
    fn every_type_error_is_reported_with_the_sdks_message() {
        let errors = check_row(
            &columns(),
            &row(json!({
                "name": 3, "cpus": true, "seen": "2022-09-01", "on": "yes", "tags": "x",
                "os": "beos", "$where": "1", "a..b": 1, "host": {"$ne": null},
            })),
            Write::Update,
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "Field 'name' must be 'string'  (ex: 'some-string')",
                "Field 'cpus' must be 'number' (ex: 12, or 14.3)",
                "Field 'seen' must be 'date' (ex: '2022-09-01T06:01:38.621461')",
                "Field 'on' must be 'bool'",
                "Field 'tags' must be 'json'",
                "Field 'os' must be an 'enum' from ['linux', 'windows']",
                "Field '$where' is not a field name (it starts with '$')",
                "Field 'a..b' is not a field name (empty segment)",
                "Field 'host': key '$ne': keys starting with '$' are not data",
            ]
        );
    }

    #[test]
    fn nulls_pass_on_optional_columns_only_and_inserts_need_required_ones() {
        let set = check_row(&columns(), &row(json!({"cpus": null})), Write::Update).unwrap();
        assert_eq!(set.get("cpus"), Some(&Bson::Null));
        let errors = check_row(&columns(), &row(json!({"name": null})), Write::Update);
        assert_eq!(errors.unwrap_err(), ["Field 'name' must be 'string'  (ex: 'some-string')"]);
        let errors = check_row(&columns(), &row(json!({"cpus": 1})), Write::Insert);
        assert_eq!(errors.unwrap_err(), ["Field 'name' is required"]);
        assert!(check_row(&columns(), &row(json!({"name": "a"})), Write::Insert).is_ok());
    }

    #[test]
    fn dates_are_the_sdks_shape_or_rfc3339() {
        assert!(date("2022-09-01T06:01:38.621461").is_some());
        assert!(date("2022-09-01T06:01:38Z").is_some());
        assert!(date("2022-09-01T06:01:38.5+02:00").is_some());
        for bad in ["2022-09-01", "2022-09-01 06:01:38.621461", "yesterday", "2022-13-01T00:00:00Z"]
        {
            assert!(date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn inserts_nest_dotted_fields() {
        let fields =
            mongodb::bson::doc! {"details.quantity": 2_i64, "details.unit": "u", "a": 1_i64};
        assert_eq!(
            nest(fields).unwrap(),
            mongodb::bson::doc! {"details": {"quantity": 2_i64, "unit": "u"}, "a": 1_i64}
        );
        let clash = mongodb::bson::doc! {"a": 1_i64, "a.b": 2_i64};
        assert_eq!(nest(clash).unwrap_err().len(), 1);
    }

    #[test]
    fn ids_match_both_forms_of_a_hex_id_and_are_never_operators() {
        let hex = "64b7f0a1c2d3e4f5a6b7c8d9";
        let matched = id_match(hex);
        let list = matched.as_document().unwrap().get_array("$in").unwrap();
        assert_eq!(list[1], Bson::String(hex.to_owned()));
        assert!(matches!(list[0], Bson::ObjectId(_)));
        assert_eq!(id_match("{\"$ne\": 1}"), Bson::String("{\"$ne\": 1}".to_owned()));
    }
}
