//! The pure parts of a download: file types, the columns of a stream of rows, cell
//! values for CSV and xlsx, and Excel's sheet names.

use std::borrow::Cow;

use mongodb::bson::{Bson, Document};
use serde::Deserialize;

use crate::processing::bson_to_json;

/// What a download is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filetype {
    Json,
    Csv,
    Xlsx,
}

impl Filetype {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// Rows whose fields make the columns of a CSV or a sheet. A header is written before
/// the rows and, in constant memory, cannot be changed after: fields first seen past
/// these rows are left out of CSV and xlsx (json has every field).
pub const SAMPLE_ROWS: usize = 1_000;
/// Excel's columns per sheet.
pub const MAX_COLUMNS: usize = 16_384;
/// Excel's characters per cell: longer text is cut.
pub const MAX_CELL_CHARS: usize = 32_767;
/// Excel's characters per sheet name.
pub const MAX_SHEET_NAME: usize = 31;

/// The fields of `rows`, in the order they are first seen, at most [`MAX_COLUMNS`].
pub fn columns(rows: &[Document]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::new();
    for row in rows {
        for key in row.keys() {
            if columns.len() < MAX_COLUMNS && seen.insert(key.as_str()) {
                columns.push(key.clone());
            }
        }
    }
    columns
}

/// A value as a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(Cow<'a, str>),
    Integer(i64),
    Number(f64),
    Bool(bool),
    /// Milliseconds since the Unix epoch.
    Date(i64),
}

/// `value` as a cell: scalars as themselves, ObjectIds as hex, documents and lists as
/// their JSON text.
pub fn cell(value: Option<&Bson>) -> Cell<'_> {
    match value {
        None | Some(Bson::Null | Bson::Undefined) => Cell::Empty,
        Some(Bson::String(text)) => Cell::Text(Cow::Borrowed(text)),
        Some(Bson::Int32(n)) => Cell::Integer(i64::from(*n)),
        Some(Bson::Int64(n)) => Cell::Integer(*n),
        Some(Bson::Double(n)) if n.is_finite() => Cell::Number(*n),
        Some(Bson::Boolean(b)) => Cell::Bool(*b),
        Some(Bson::DateTime(at)) => Cell::Date(at.timestamp_millis()),
        Some(Bson::ObjectId(id)) => Cell::Text(Cow::Owned(id.to_hex())),
        Some(other) => Cell::Text(Cow::Owned(match bson_to_json(other) {
            serde_json::Value::String(text) => text,
            json => json.to_string(),
        })),
    }
}

impl Cell<'_> {
    /// The CSV field: dates as RFC 3339, as the JSON download has them.
    pub fn csv_text(&self) -> Cow<'_, str> {
        match self {
            Self::Empty => Cow::Borrowed(""),
            Self::Text(text) => Cow::Borrowed(text),
            Self::Integer(n) => Cow::Owned(n.to_string()),
            Self::Number(n) => Cow::Owned(n.to_string()),
            Self::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Self::Date(millis) => Cow::Owned(
                mongodb::bson::DateTime::from_millis(*millis)
                    .try_to_rfc3339_string()
                    .unwrap_or_else(|_| millis.to_string()),
            ),
        }
    }
}

/// Milliseconds since the Unix epoch as an Excel serial date (days since 1899-12-30).
pub fn excel_serial(millis: i64) -> f64 {
    // Exact for every date Excel shows (|millis| < 2^53).
    #[allow(clippy::cast_precision_loss)]
    let days = millis as f64 / 86_400_000.0;
    days + 25_569.0
}

/// `text` cut to Excel's cell limit.
pub fn cell_text(text: &str) -> &str {
    match text.char_indices().nth(MAX_CELL_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Excel sheet names for `ids`, in order: the characters Excel refuses (`[]:*?/\`)
/// replaced, no apostrophe at either end, cut to 31 characters, never "History"
/// (reserved by Excel), and unique without regard to case (Excel's rule), a clash
/// getting `~2`, `~3`... within the 31.
pub fn sheet_names(ids: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let cleaned: String = id
            .chars()
            .map(|c| if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') { '_' } else { c })
            .collect();
        let mut base = cleaned.trim_matches('\'').to_owned();
        if base.is_empty() {
            base = "Sheet".to_owned();
        }
        if base.eq_ignore_ascii_case("history") {
            base.push('_');
        }
        let taken = |name: &str| names.iter().any(|n| n.to_lowercase() == name.to_lowercase());
        let mut name = cut(&base, MAX_SHEET_NAME);
        let mut n = 2;
        while taken(&name) {
            let suffix = format!("~{n}");
            name = format!("{}{suffix}", cut(&base, MAX_SHEET_NAME - suffix.chars().count()));
            n += 1;
        }
        names.push(name);
    }
    names
}

/// The first `chars` characters of `text`, without an apostrophe at the end.
fn cut(text: &str, chars: usize) -> String {
    let cut: String = text.chars().take(chars).collect();
    cut.trim_end_matches('\'').to_owned()
}

/// The attachment's file name: the id's safe characters.
pub fn file_name(id: &str, filetype: Filetype) -> String {
    let safe: String =
        id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
    let stem = if safe.is_empty() { "download" } else { safe.as_str() };
    format!("{stem}.{}", filetype.extension())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{DateTime, doc, oid::ObjectId};

    #[test]
    fn sheet_names_fit_excel() {
        let long = "a_component_id_that_is_longer_than_thirty_one".to_owned();
        let ids = vec![
            long.clone(),
            long.clone(),
            format!("{long}_again"),
            "devices/by:os?".to_owned(),
            "'quoted'".to_owned(),
            "History".to_owned(),
            "DEVICES_BY_OS_".to_owned(),
            String::new(),
        ];
        let names = sheet_names(&ids);
        assert_eq!(names[0], "a_component_id_that_is_longer_t");
        assert_eq!(names[1], "a_component_id_that_is_longer~2");
        assert_eq!(names[2], "a_component_id_that_is_longer~3");
        assert_eq!(names[3], "devices_by_os_");
        assert_eq!(names[4], "quoted");
        assert_eq!(names[5], "History_");
        assert_eq!(names[6], "DEVICES_BY_OS_~2", "unique without regard to case");
        assert_eq!(names[7], "Sheet");
        for name in &names {
            assert!(name.chars().count() <= MAX_SHEET_NAME, "{name}");
            rust_xlsxwriter::utility::check_sheet_name(name).unwrap();
        }
    }

    #[test]
    fn columns_are_the_fields_in_first_seen_order() {
        let rows = [doc! {"b": 1, "a": 2}, doc! {"a": 3, "c": 4}];
        assert_eq!(columns(&rows), ["b", "a", "c"]);
    }

    #[test]
    fn values_become_cells() {
        let id = ObjectId::new();
        let row = doc! {
            "s": "x", "i": 3_i32, "l": 4_i64, "d": 2.5, "b": true, "n": null,
            "t": DateTime::from_millis(86_400_000), "o": id, "nested": {"a": [1_i32]},
        };
        assert_eq!(cell(row.get("s")), Cell::Text("x".into()));
        assert_eq!(cell(row.get("i")), Cell::Integer(3));
        assert_eq!(cell(row.get("l")), Cell::Integer(4));
        assert_eq!(cell(row.get("d")), Cell::Number(2.5));
        assert_eq!(cell(row.get("b")).csv_text(), "true");
        assert_eq!(cell(row.get("n")), Cell::Empty);
        assert_eq!(cell(row.get("missing")), Cell::Empty);
        assert_eq!(cell(row.get("t")).csv_text(), "1970-01-02T00:00:00Z");
        assert_eq!(excel_serial(86_400_000), 25_570.0);
        assert_eq!(cell(row.get("o")).csv_text(), id.to_hex());
        assert_eq!(cell(row.get("nested")).csv_text(), r#"{"a":[1]}"#);
    }

    #[test]
    fn long_text_is_cut_to_excels_limit_and_names_are_safe() {
        let long = "é".repeat(MAX_CELL_CHARS + 5);
        assert_eq!(cell_text(&long).chars().count(), MAX_CELL_CHARS);
        assert_eq!(cell_text("short"), "short");
        assert_eq!(file_name("devices_by_os", Filetype::Csv), "devices_by_os.csv");
        assert_eq!(file_name("\"; x=../", Filetype::Xlsx), "x.xlsx");
        assert_eq!(file_name("", Filetype::Json), "download.json");
    }
}
