//! The data table: SDK `DataTable.metadata`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{EntryKind, RegistryMetadata};
use crate::{ColumnType, data_table::ResolvedColumn};

/// The `type` of every data table.
pub const DATATABLE_TYPE: &str = "editable_table";

/// SDK `DataTable.metadata`, in its key order: `{url, path, type, order,
/// style_attributes, title, component_id, columns}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataTableEntry {
    /// `/datatables/{dash(component_id)}`.
    pub url: String,
    /// The same as `url`.
    pub path: String,
    /// Always `editable_table`.
    #[serde(rename = "type")]
    pub table_type: String,
    /// 0-based position among the app's tables, by component_id.
    pub order: u32,
    /// Always `{"width": "full"}`.
    pub style_attributes: Map<String, Value>,
    pub title: String,
    pub component_id: String,
    pub columns: Vec<ColumnEntry>,
    /// `spec.collection`: where the apps' API reads and edits the rows (not in the
    /// SDK's metadata, where the CrudHandler hard-coded `Data`). Absent in documents of
    /// older operators, which means `Data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

impl RegistryMetadata for DataTableEntry {
    fn entry_kind(&self) -> EntryKind {
        EntryKind::DataTable
    }
}

/// A column in the SDK's shape: `{name, prop, editable, type, values, required,
/// visible, hashable, entities_url, distinct_key, foreign_key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    pub prop: String,
    pub editable: bool,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    pub values: Option<Vec<String>>,
    pub required: bool,
    pub visible: bool,
    pub hashable: bool,
    /// `{path}?id=%7Bentity_id%7D[&distinct_key=..][&foreign_key=..]`, URL-encoded, when
    /// a key is set.
    pub entities_url: Option<String>,
    pub distinct_key: Option<String>,
    pub foreign_key: Option<String>,
}

impl ColumnEntry {
    /// The column of the table at `path`.
    pub fn new(path: &str, column: &ResolvedColumn) -> Self {
        Self {
            name: column.name.clone(),
            prop: column.prop.clone(),
            editable: column.editable,
            column_type: column.column_type,
            values: column.values.clone(),
            required: column.required,
            visible: column.visible,
            hashable: column.hashable,
            entities_url: entities_url(
                path,
                column.distinct_key.as_deref(),
                column.foreign_key.as_deref(),
            ),
            distinct_key: column.distinct_key.clone(),
            foreign_key: column.foreign_key.clone(),
        }
    }
}

/// The SDK's `entities_url`: `{path}?` and Python's `urlencode` of `id={entity_id}`,
/// then `distinct_key` and `foreign_key` when set; `None` when neither is.
pub fn entities_url(
    path: &str,
    distinct_key: Option<&str>,
    foreign_key: Option<&str>,
) -> Option<String> {
    if distinct_key.is_none() && foreign_key.is_none() {
        return None;
    }
    let mut url = format!("{path}?id={}", urlencode("{entity_id}"));
    if let Some(key) = distinct_key {
        url.push_str(&format!("&distinct_key={}", urlencode(key)));
    }
    if let Some(key) = foreign_key {
        url.push_str(&format!("&foreign_key={}", urlencode(key)));
    }
    Some(url)
}

/// Python's `urllib.parse.quote_plus` (what `urlencode` applies to each value): letters,
/// digits and `_.-~` stay, a space becomes `+`, every other byte of the UTF-8 form
/// becomes `%XX`.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
