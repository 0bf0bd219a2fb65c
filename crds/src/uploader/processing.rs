//! The declarative processing pipeline of the default worker: which rows to read and
//! how they become MongoDB documents. (The SDK had Python code here instead.)

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the default worker turns accepted files into documents.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingSpec {
    /// Tables to read from each file; each becomes documents in a collection. Empty: the
    /// default worker stores nothing (a custom worker image does the processing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableMapping>,
}

/// One table of a file (a sheet, or the whole csv or text file) and how its rows map to
/// document fields.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableMapping {
    /// Sheet names to read, for Excel files: the first one present in the workbook is
    /// used, e.g. [tabvInfo, vInfo]. Leave out for csv and text files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub sheets: Option<Vec<String>>,
    /// Number of lines or rows before the header.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub header_starts_at: i64,
    /// MongoDB collection the documents go to.
    #[serde(default = "crate::defaults::collection")]
    #[schemars(length(min = 1))]
    pub collection: String,
    /// Value of the `document_type` field of every document from this table, e.g.
    /// `virtual_machine`, so that one collection can hold several kinds of rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// Target fields that identify a row: a row with the same key (within the tenant and
    /// uploader) replaces the earlier document instead of adding one. Empty: every row is
    /// a new document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub key: Vec<String>,
    /// Columns to keep, and the field each one becomes. Columns not listed are dropped.
    #[schemars(length(min = 1))]
    pub columns: Vec<ColumnMapping>,
}

/// One source column and the document field it becomes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMapping {
    /// Header of the source column, exactly as in the file (case-sensitive), e.g. `VM`.
    #[schemars(length(min = 1))]
    pub from: String,
    /// Name of the document field, e.g. `name`.
    #[schemars(length(min = 1))]
    pub to: String,
    /// Type the value is converted to: string, number, integer, bool or date.
    #[serde(rename = "type", default)]
    pub value_type: MappingType,
}

/// Type a mapped value is converted to: string, number, integer, bool or date.
// No variant docs: they would turn the schema into `oneOf` branches.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappingType {
    #[default]
    String,
    Number,
    Integer,
    Bool,
    Date,
}
