//! The SDK's report filters (`[{column, filter_type, filter_value}]`) translated to one
//! MongoDB `$match` document. Pure.
//!
//! What the SDK got wrong and this does not:
//! - its filters were merged with `dict.update`, so a `tenant_id` filter replaced the
//!   tenant's own match and a second filter on a column replaced the first; here every
//!   filter is one clause of an `$and`, and the tenant's match is a stage of its own
//!   ahead of this one (see `query`), which a clause can only narrow;
//! - `contains` was an unescaped regex; here the value is a literal;
//! - any column and any value went through; here only the columns the report or the
//!   component declares, only their allowed filter types, values of the column's type,
//!   and never a `$` key or a `$`-led column, so a value cannot become an operator.

use licenseware_crds::{ColumnType, FilterType, registry::FilterEntry};
use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::processing::parse_date_text;

/// Most filters in one request.
pub const MAX_FILTERS: usize = 100;
/// Most values in one `in_list`.
pub const MAX_LIST: usize = 1_000;
/// Longest string value accepted (bytes).
pub const MAX_TEXT: usize = 4_096;
/// Deepest JSON value accepted for json/entity columns.
const MAX_DEPTH: usize = 16;

/// One filter as the client sends it. `filter_type` is kept as text so that a bad one
/// is named in the error rather than refused by the JSON parser.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilterItem {
    pub column: String,
    pub filter_type: String,
    #[serde(default)]
    pub filter_value: Value,
}

/// Why filters are refused: a 400 whose message says which filter and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filters must be a JSON list of {{column, filter_type, filter_value}}: {0}")]
    Malformed(String),
    #[error("at most {MAX_FILTERS} filters are accepted, {0} were sent")]
    TooMany(usize),
    #[error(
        "filter {index}: column '{column}' is not a filter of this report or component (filters: {allowed})"
    )]
    UnknownColumn { index: usize, column: String, allowed: String },
    #[error("filter {index}: column '{column}' cannot be filtered on: {why}")]
    ForbiddenColumn { index: usize, column: String, why: &'static str },
    #[error(
        "filter {index}: filter_type '{filter_type}' is not one of equals, contains, in_list, greater_than, greater_or_equal_to, less_than, less_or_equal_to"
    )]
    UnknownFilterType { index: usize, filter_type: String },
    #[error(
        "filter {index}: filter_type '{filter_type}' is not allowed on column '{column}' (allowed: {allowed})"
    )]
    FilterTypeNotAllowed { index: usize, column: String, filter_type: String, allowed: String },
    #[error("filter {index}: column '{column}' is of type {column_type}: {why}")]
    BadValue { index: usize, column: String, column_type: &'static str, why: String },
}

impl FilterError {
    /// A stable reason, for clients and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "FiltersMalformed",
            Self::TooMany(_) => "TooManyFilters",
            Self::UnknownColumn { .. } => "FilterColumnNotAllowed",
            Self::ForbiddenColumn { .. } => "FilterColumnForbidden",
            Self::UnknownFilterType { .. } => "FilterTypeUnknown",
            Self::FilterTypeNotAllowed { .. } => "FilterTypeNotAllowed",
            Self::BadValue { .. } => "FilterValueInvalid",
        }
    }
}

/// Parses a filters body: the SDK's list, or `{"filters": [...]}`; empty means none.
pub fn parse(body: &[u8]) -> Result<Vec<FilterItem>, FilterError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        List(Vec<FilterItem>),
        Wrapped { filters: Vec<FilterItem> },
    }
    let filters = match serde_json::from_slice::<Body>(body) {
        Ok(Body::List(filters) | Body::Wrapped { filters }) => filters,
        Err(_) => {
            // The untagged error says nothing useful: parse as a list for the message.
            let error = serde_json::from_slice::<Vec<FilterItem>>(body)
                .err()
                .map_or_else(|| "not a list".to_owned(), |e| e.to_string());
            return Err(FilterError::Malformed(error));
        }
    };
    if filters.len() > MAX_FILTERS {
        return Err(FilterError::TooMany(filters.len()));
    }
    Ok(filters)
}

/// A request's filters: the body when it has one (POST), else the `filters` query
/// parameter (GET).
pub fn from_request(query: Option<&str>, body: &[u8]) -> Result<Vec<FilterItem>, FilterError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        parse(query.unwrap_or_default().as_bytes())
    } else {
        parse(body)
    }
}

fn type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::String => "string",
        ColumnType::Number => "number",
        ColumnType::Date => "date",
        ColumnType::Bool => "bool",
        ColumnType::Json => "json",
        ColumnType::Enum => "enum",
        ColumnType::Entity => "entity",
    }
}

fn filter_name(filter_type: FilterType) -> &'static str {
    match filter_type {
        FilterType::Equals => "equals",
        FilterType::Contains => "contains",
        FilterType::InList => "in_list",
        FilterType::GreaterThan => "greater_than",
        FilterType::GreaterOrEqualTo => "greater_or_equal_to",
        FilterType::LessThan => "less_than",
        FilterType::LessOrEqualTo => "less_or_equal_to",
    }
}

/// Why a column is never a filter, whatever a resource declares: the tenant is the
/// server's, and `$` or empty path segments would make MongoDB read the name as an
/// operator or a different field.
fn forbidden_column(column: &str) -> Option<&'static str> {
    if column == "tenant_id" || column.starts_with("tenant_id.") {
        return Some("the tenant is set by the server from the verified token");
    }
    if column.is_empty() || column.split('.').any(str::is_empty) {
        return Some("empty field names are not fields");
    }
    if column.contains('$') || column.contains('\0') {
        return Some("'$' and NUL are not allowed in field names");
    }
    None
}

/// `text` as a regex that matches it literally: every metacharacter outside a class
/// gets a backslash, which PCRE (MongoDB) and RE2 (FerretDB) read the same way. The
/// pattern has no class and no extended mode, so `-` and `#` need none.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `$match` document for `filters`, each checked against `allowed` (the report's
/// and the component's filters); `None` when there are no filters.
pub fn to_match(
    filters: &[FilterItem],
    allowed: &[FilterEntry],
) -> Result<Option<Document>, FilterError> {
    if filters.len() > MAX_FILTERS {
        return Err(FilterError::TooMany(filters.len()));
    }
    let mut clauses: Vec<Bson> = Vec::with_capacity(filters.len());
    for (index, filter) in filters.iter().enumerate() {
        clauses.push(Bson::Document(clause(index, filter, allowed)?));
    }
    Ok(match clauses.len() {
        0 => None,
        // One clause needs no `$and`; it is a document with one column key.
        1 => clauses.pop().and_then(|c| c.as_document().cloned()),
        _ => Some(doc! {"$and": clauses}),
    })
}

fn clause(
    index: usize,
    filter: &FilterItem,
    allowed: &[FilterEntry],
) -> Result<Document, FilterError> {
    let column = filter.column.as_str();
    if let Some(why) = forbidden_column(column) {
        return Err(FilterError::ForbiddenColumn { index, column: column.to_owned(), why });
    }
    let declared: Vec<&FilterEntry> = allowed.iter().filter(|f| f.column == column).collect();
    if declared.is_empty() {
        let mut names: Vec<&str> = allowed.iter().map(|f| f.column.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(FilterError::UnknownColumn {
            index,
            column: column.to_owned(),
            allowed: if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        });
    }
    let filter_type: FilterType =
        serde_json::from_value(Value::String(filter.filter_type.clone())).map_err(|_| {
            FilterError::UnknownFilterType { index, filter_type: filter.filter_type.clone() }
        })?;
    // A column declared by both the report and the component: either declaration that
    // allows the filter type decides its type.
    let Some(entry) = declared.iter().find(|f| f.allowed_filters.contains(&filter_type)) else {
        let mut names: Vec<&str> = declared
            .iter()
            .flat_map(|f| f.allowed_filters.iter().map(|t| filter_name(*t)))
            .collect();
        names.dedup();
        return Err(FilterError::FilterTypeNotAllowed {
            index,
            column: column.to_owned(),
            filter_type: filter.filter_type.clone(),
            allowed: names.join(", "),
        });
    };
    let bad = |why: String| FilterError::BadValue {
        index,
        column: column.to_owned(),
        column_type: type_name(entry.column_type),
        why,
    };
    let value = &filter.filter_value;
    let condition = match filter_type {
        FilterType::Equals => doc! {"$eq": typed(entry, value, true).map_err(bad)?},
        FilterType::Contains => {
            let Value::String(text) = value else {
                return Err(bad("contains takes a string".to_owned()));
            };
            check_text(text).map_err(bad)?;
            // Case-insensitive, as a user of a search box expects (the SDK's was
            // case-sensitive and unescaped).
            doc! {"$regex": escape_regex(text), "$options": "i"}
        }
        FilterType::InList => {
            let Value::Array(items) = value else {
                return Err(bad("in_list takes a list of values".to_owned()));
            };
            if items.len() > MAX_LIST {
                return Err(bad(format!("in_list takes at most {MAX_LIST} values")));
            }
            let items: Vec<Bson> = items
                .iter()
                .map(|item| typed(entry, item, false))
                .collect::<Result<_, _>>()
                .map_err(bad)?;
            doc! {"$in": items}
        }
        FilterType::GreaterThan => doc! {"$gt": ordered(entry, value).map_err(bad)?},
        FilterType::GreaterOrEqualTo => doc! {"$gte": ordered(entry, value).map_err(bad)?},
        FilterType::LessThan => doc! {"$lt": ordered(entry, value).map_err(bad)?},
        FilterType::LessOrEqualTo => doc! {"$lte": ordered(entry, value).map_err(bad)?},
    };
    let mut clause = Document::new();
    clause.insert(column, condition);
    Ok(clause)
}

fn check_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEXT {
        return Err(format!("strings are at most {MAX_TEXT} bytes"));
    }
    Ok(())
}

/// A comparison bound: null compares with nothing useful, so it is refused.
fn ordered(entry: &FilterEntry, value: &Value) -> Result<Bson, String> {
    if value.is_null() {
        return Err("a comparison needs a value".to_owned());
    }
    typed(entry, value, false)
}

/// `value` as the column's type. `null` is accepted by `equals` (a missing or empty
/// field), as the SDK did.
fn typed(entry: &FilterEntry, value: &Value, null_ok: bool) -> Result<Bson, String> {
    if value.is_null() {
        return if null_ok { Ok(Bson::Null) } else { Err("null is not a value here".to_owned()) };
    }
    match entry.column_type {
        ColumnType::String => match value {
            Value::String(text) => {
                check_text(text)?;
                Ok(Bson::String(text.clone()))
            }
            _ => Err(format!("expected a string, got {}", kind(value))),
        },
        ColumnType::Enum => match value {
            Value::String(text) => {
                check_text(text)?;
                match &entry.allowed_values {
                    Some(values) if !values.iter().any(|v| v == text) => {
                        Err(format!("'{text}' is not one of its values ({})", values.join(", ")))
                    }
                    _ => Ok(Bson::String(text.clone())),
                }
            }
            _ => Err(format!("expected one of its values as a string, got {}", kind(value))),
        },
        ColumnType::Number => match value {
            Value::Number(number) => number_bson(number),
            // A number typed in a text box arrives as a string.
            Value::String(text) => match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Bson::Double(n)),
                _ => Err(format!("'{text}' is not a number")),
            },
            _ => Err(format!("expected a number, got {}", kind(value))),
        },
        ColumnType::Date => match value {
            Value::String(text) => parse_date_text(text).map(Bson::DateTime).ok_or_else(|| {
                format!("'{text}' is not a date (YYYY-MM-DD, or ISO 8601 date and time)")
            }),
            _ => Err(format!("expected a date as a string, got {}", kind(value))),
        },
        ColumnType::Bool => match value {
            Value::Bool(b) => Ok(Bson::Boolean(*b)),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Bson::Boolean(true)),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Bson::Boolean(false)),
            _ => Err(format!("expected true or false, got {}", kind(value))),
        },
        ColumnType::Json | ColumnType::Entity => literal(value, 0),
    }
}

fn number_bson(number: &serde_json::Number) -> Result<Bson, String> {
    if let Some(n) = number.as_i64() {
        return Ok(Bson::Int64(n));
    }
    match number.as_f64() {
        Some(n) if n.is_finite() => Ok(Bson::Double(n)),
        _ => Err(format!("{number} is out of range")),
    }
}

/// Any JSON as plain BSON data: no `$` key anywhere (so neither an operator nor
/// extended JSON such as `{"$oid": ...}` can come in through a value), bounded depth.
fn literal(value: &Value, depth: usize) -> Result<Bson, String> {
    if depth > MAX_DEPTH {
        return Err(format!("values are nested at most {MAX_DEPTH} levels"));
    }
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number_bson(n)?,
        Value::String(text) => {
            check_text(text)?;
            Bson::String(text.clone())
        }
        Value::Array(items) => {
            if items.len() > MAX_LIST {
                return Err(format!("lists hold at most {MAX_LIST} values"));
            }
            Bson::Array(items.iter().map(|i| literal(i, depth + 1)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            let mut document = Document::new();
            for (key, inner) in map {
                if key.starts_with('$') || key.contains('\0') {
                    return Err(format!("key '{key}': keys starting with '$' are not data"));
                }
                document.insert(key.clone(), literal(inner, depth + 1)?);
            }
            Bson::Document(document)
        }
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(column: &str, column_type: ColumnType, values: Option<&[&str]>) -> FilterEntry {
        FilterEntry {
            column: column.to_owned(),
            allowed_filters: column_type.default_filters(),
            column_type,
            allowed_values: values.map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
            visible_name: column.to_owned(),
        }
    }

    fn allowed() -> Vec<FilterEntry> {
        vec![
            entry("os", ColumnType::String, None),
            entry("cpus", ColumnType::Number, None),
            entry("seen", ColumnType::Date, None),
            entry("on", ColumnType::Bool, None),
            entry("state", ColumnType::Enum, Some(&["poweredOn", "poweredOff"])),
            entry("extra.tags", ColumnType::Json, None),
            entry("tenant_id", ColumnType::Json, None),
        ]
    }

    fn filter(column: &str, filter_type: &str, value: Value) -> FilterItem {
        FilterItem {
            column: column.to_owned(),
            filter_type: filter_type.to_owned(),
            filter_value: value,
        }
    }

    fn one(column: &str, filter_type: &str, value: Value) -> Result<Document, FilterError> {
        to_match(&[filter(column, filter_type, value)], &allowed()).map(Option::unwrap_or_default)
    }

    #[test]
    fn every_filter_type_becomes_its_operator() {
        assert_eq!(one("os", "equals", json!("linux")).unwrap(), doc! {"os": {"$eq": "linux"}});
        assert_eq!(
            one("os", "contains", json!("lin")).unwrap(),
            doc! {"os": {"$regex": "lin", "$options": "i"}}
        );
        assert_eq!(
            one("state", "in_list", json!(["poweredOn"])).unwrap(),
            doc! {"state": {"$in": ["poweredOn"]}}
        );
        assert_eq!(one("cpus", "greater_than", json!(2)).unwrap(), doc! {"cpus": {"$gt": 2_i64}});
        assert_eq!(
            one("cpus", "greater_or_equal_to", json!(2.5)).unwrap(),
            doc! {"cpus": {"$gte": 2.5}}
        );
        assert_eq!(one("cpus", "less_than", json!("8")).unwrap(), doc! {"cpus": {"$lt": 8.0}});
        assert_eq!(
            one("cpus", "less_or_equal_to", json!(8)).unwrap(),
            doc! {"cpus": {"$lte": 8_i64}}
        );
        let date = one("seen", "greater_than", json!("2024-01-02")).unwrap();
        let bound = date.get_document("seen").unwrap().get_datetime("$gt").unwrap();
        assert_eq!(bound.try_to_rfc3339_string().unwrap(), "2024-01-02T00:00:00Z");
        assert_eq!(one("on", "equals", json!("TRUE")).unwrap(), doc! {"on": {"$eq": true}});
        assert_eq!(
            one("extra.tags", "equals", json!({"a": [1, "x"]})).unwrap(),
            doc! {"extra.tags": {"$eq": {"a": [1_i64, "x"]}}}
        );
    }

    #[test]
    fn filters_are_anded_never_merged() {
        let filters =
            [filter("cpus", "greater_than", json!(2)), filter("cpus", "less_than", json!(8))];
        let found = to_match(&filters, &allowed()).unwrap().unwrap();
        assert_eq!(found, doc! {"$and": [{"cpus": {"$gt": 2_i64}}, {"cpus": {"$lt": 8_i64}}]});
        assert_eq!(to_match(&[], &allowed()).unwrap(), None);
    }

    #[test]
    fn contains_is_a_literal() {
        let m = one("os", "contains", json!("a.*(b)|[c]^$\\")).unwrap();
        let pattern = m.get_document("os").unwrap().get_str("$regex").unwrap().to_owned();
        assert_eq!(pattern, "a\\.\\*\\(b\\)\\|\\[c\\]\\^\\$\\\\");
        let regex = regex::Regex::new(&pattern).unwrap();
        assert!(regex.is_match("xa.*(b)|[c]^$\\y"));
        assert!(!regex.is_match("aaa(b)c"));
        for text in ["-#&~/", "{1,2}", "?+"] {
            let regex = regex::Regex::new(&escape_regex(text)).unwrap();
            assert!(regex.is_match(text), "{text}");
        }
    }

    #[test]
    fn the_tenant_and_operator_columns_are_never_filters() {
        for column in ["tenant_id", "tenant_id.x", "$where", "a.$b", "a..b", "", ".a", "a\0"] {
            let error = one(column, "equals", json!("x")).unwrap_err();
            assert_eq!(error.reason(), "FilterColumnForbidden", "{column}: {error}");
        }
    }

    #[test]
    fn values_cannot_become_operators() {
        for value in [json!({"$ne": null}), json!({"a": {"$gt": 1}}), json!([{"$oid": "x"}])] {
            let error = one("extra.tags", "equals", value.clone()).unwrap_err();
            assert_eq!(error.reason(), "FilterValueInvalid", "{value}: {error}");
        }
        // On typed columns an object is not a value at all.
        let error = one("os", "equals", json!({"$ne": "x"})).unwrap_err();
        assert_eq!(error.reason(), "FilterValueInvalid");
        // A `$` inside a string is just text.
        assert_eq!(one("os", "equals", json!("$ne")).unwrap(), doc! {"os": {"$eq": "$ne"}});
    }

    #[test]
    fn bad_filters_say_why() {
        let error = one("name", "equals", json!("x")).unwrap_err();
        assert_eq!(error.reason(), "FilterColumnNotAllowed");
        assert!(error.to_string().contains("column 'name'"), "{error}");
        let error = one("os", "like", json!("x")).unwrap_err();
        assert_eq!(error.reason(), "FilterTypeUnknown");
        let error = one("os", "greater_than", json!("x")).unwrap_err();
        assert_eq!(error.reason(), "FilterTypeNotAllowed");
        assert!(error.to_string().contains("allowed: equals, contains"), "{error}");
        let error = one("cpus", "equals", json!("many")).unwrap_err();
        assert_eq!(error.reason(), "FilterValueInvalid");
        let error = one("state", "equals", json!("suspended")).unwrap_err();
        assert!(error.to_string().contains("poweredOn, poweredOff"), "{error}");
        let error = one("seen", "less_than", json!("22/08/2020")).unwrap_err();
        assert_eq!(error.reason(), "FilterValueInvalid");
        let error = one("state", "in_list", json!("poweredOn")).unwrap_err();
        assert_eq!(error.reason(), "FilterValueInvalid");
        let error = one("cpus", "greater_than", Value::Null).unwrap_err();
        assert_eq!(error.reason(), "FilterValueInvalid");
    }

    #[test]
    fn bodies_are_the_sdk_list_or_wrapped() {
        let list = br#"[{"column": "os", "filter_type": "equals", "filter_value": "x"}]"#;
        assert_eq!(parse(list).unwrap().len(), 1);
        let wrapped = br#"{"filters": [{"column": "os", "filter_type": "equals"}]}"#;
        assert_eq!(parse(wrapped).unwrap()[0].filter_value, Value::Null);
        assert!(parse(b"  ").unwrap().is_empty());
        assert_eq!(parse(b"{}").unwrap_err().reason(), "FiltersMalformed");
        assert_eq!(parse(br#"[{"column": "os"}]"#).unwrap_err().reason(), "FiltersMalformed");
        let many =
            serde_json::to_vec(&vec![filter("os", "equals", json!("x")); MAX_FILTERS + 1]).unwrap();
        assert_eq!(parse(&many).unwrap_err().reason(), "TooManyFilters");
    }
}
