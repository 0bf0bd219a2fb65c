//! One table's mapping, resolved against one file's header: rows in, documents out.

use licenseware_crds::uploader::processing::{MappingType, TableMapping};
use mongodb::bson::{Bson, Document};
use serde::Serialize;

use super::context::FileContext;
use super::convert::{OwnedConversion, convert_owned_cell, is_blank};
use super::ids::{document_id, keyed_document_id, row_key};
use super::row_document::RowDocument;
use crate::read::Cell;

/// Fields every document gets from its context: a mapping may not write them (a
/// column mapped to `tenant_id` would move rows to another tenant).
const RESERVED_FIELDS: [&str; 9] = [
    "_id",
    "_key",
    "tenant_id",
    "app_id",
    "uploader_id",
    "event_id",
    "source_file",
    "updated_at",
    "document_type",
];

/// A table mapping that cannot produce sound documents, whatever the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error("column {column:?} maps to {field:?}, a field every document gets from its upload")]
    ReservedField { column: String, field: String },
    #[error("field {field:?} is the target of more than one column")]
    DuplicateField { field: String },
    #[error("field name {field:?} is not usable in MongoDB: it is empty or starts with '$'")]
    InvalidFieldName { field: String },
    #[error("key field {field:?} is not the target of any column")]
    UnknownKeyField { field: String },
}

impl MappingError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReservedField { .. } => "MappingReservedField",
            Self::DuplicateField { .. } => "MappingDuplicateField",
            Self::InvalidFieldName { .. } => "MappingInvalidFieldName",
            Self::UnknownKeyField { .. } => "MappingUnknownKeyField",
        }
    }
}

/// A value kept raw because it did not convert to its column's type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversionFailure {
    pub field: String,
    /// The value as the file shows it.
    pub raw: String,
    pub target: MappingType,
}

/// What one row became: `D` is a BSON [`Document`] from [`TableMapper::map_row`], a
/// [`RowDocument`] from [`TableMapper::map_cells`].
#[derive(Debug, Clone, PartialEq)]
pub enum MappedRow<D = Document> {
    /// Every cell of the row was empty: no document.
    Empty,
    Document(MappedDocument<D>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MappedDocument<D = Document> {
    pub document: D,
    /// Fields whose value was kept raw; the document has them all the same.
    pub failures: Vec<ConversionFailure>,
}

#[derive(Debug, Clone)]
struct ResolvedColumn {
    to: String,
    value_type: MappingType,
    /// Position in the header; `None` when the file lacks the column.
    index: Option<usize>,
}

/// A table mapping resolved against a file's header, built once per table and file.
///
/// A mapped column the header lacks does not stop the table: its field is left out of
/// every document and [`TableMapper::missing_columns`] names it, so that the history
/// can say why the field is absent. (Whether a file must have the columns is the
/// validation rules' business, which run before processing.)
#[derive(Debug, Clone)]
pub struct TableMapper {
    table_index: usize,
    collection: String,
    document_type: Option<String>,
    key: Vec<String>,
    columns: Vec<ResolvedColumn>,
    missing_columns: Vec<String>,
}

impl TableMapper {
    /// `table_index` is the table's position in `processing.tables` (it is part of the
    /// documents' ids). Headers match a column's `from` exactly (case-sensitive) once
    /// both are trimmed; when the header repeats a name, the first one is used.
    pub fn new(
        table_index: usize,
        table: &TableMapping,
        header: &[String],
    ) -> Result<Self, MappingError> {
        check_table_mapping(table)?;
        let mut missing_columns = Vec::new();
        let columns = table
            .columns
            .iter()
            .map(|column| {
                let wanted = column.from.trim();
                let index = header.iter().position(|name| name.trim() == wanted);
                if index.is_none() {
                    missing_columns.push(column.from.clone());
                }
                ResolvedColumn { to: column.to.clone(), value_type: column.value_type, index }
            })
            .collect();
        Ok(Self {
            table_index,
            collection: table.collection.clone(),
            document_type: table.document_type.clone(),
            key: table.key.clone(),
            columns,
            missing_columns,
        })
    }

    pub fn table_index(&self) -> usize {
        self.table_index
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Mapped columns (their `from`) the file's header lacks, in mapping order.
    pub fn missing_columns(&self) -> &[String] {
        &self.missing_columns
    }

    /// Maps one data row. `row_number` is the row's position among the table's data
    /// rows (0 = the first row after the header), counting empty rows too, so that it
    /// does not change when the file is read again. Cells past the row's end are empty.
    pub fn map_row(&self, context: &FileContext, row_number: u64, row: &[Cell]) -> MappedRow {
        match self.map_cells(context, row_number, row.to_vec()) {
            MappedRow::Empty => MappedRow::Empty,
            MappedRow::Document(MappedDocument { document, failures }) => {
                MappedRow::Document(MappedDocument { document: document.into_document(), failures })
            }
        }
    }

    /// [`TableMapper::map_row`] for a row the caller gives away: text cells move into
    /// the document instead of being copied, and the document is built only when the
    /// caller asks ([`RowDocument::into_document`]).
    pub fn map_cells<'a>(
        &'a self,
        context: &'a FileContext,
        row_number: u64,
        mut row: Vec<Cell>,
    ) -> MappedRow<RowDocument<'a>> {
        if row.iter().all(is_blank) {
            return MappedRow::Empty;
        }
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut failures = Vec::new();
        for column in &self.columns {
            let Some(index) = column.index else { continue };
            let cell =
                row.get_mut(index).map_or(Cell::Empty, |cell| std::mem::replace(cell, Cell::Empty));
            let value = match convert_owned_cell(cell, column.value_type) {
                OwnedConversion::Value(value) => value,
                OwnedConversion::Raw { value, text } => {
                    failures.push(ConversionFailure {
                        field: column.to.clone(),
                        raw: text,
                        target: column.value_type,
                    });
                    value
                }
            };
            fields.push((column.to.as_str(), value));
        }
        let key = (!self.key.is_empty()).then(|| {
            let key_values: Vec<(&str, &Bson)> = self
                .key
                .iter()
                .map(|field| {
                    let value = fields.iter().find(|(to, _)| to == field).map(|(_, v)| v);
                    (field.as_str(), value.unwrap_or(&Bson::Null))
                })
                .collect();
            row_key(context, &self.collection, self.document_type.as_deref(), &key_values)
        });
        let id = match &key {
            Some(key) => keyed_document_id(context, key),
            None => document_id(context, self.table_index, row_number),
        };
        let document = RowDocument {
            collection: &self.collection,
            context,
            document_type: self.document_type.as_deref(),
            id,
            key,
            fields,
        };
        MappedRow::Document(MappedDocument { document, failures })
    }
}

/// Checks what [`TableMapper::new`] refuses, without a file: for the consumer to check
/// its configuration once at start.
pub fn check_table_mapping(table: &TableMapping) -> Result<(), MappingError> {
    let mut seen = std::collections::HashSet::new();
    for column in &table.columns {
        let field = column.to.as_str();
        if RESERVED_FIELDS.contains(&field) {
            return Err(MappingError::ReservedField {
                column: column.from.clone(),
                field: field.to_owned(),
            });
        }
        if field.is_empty() || field.starts_with('$') {
            return Err(MappingError::InvalidFieldName { field: field.to_owned() });
        }
        if !seen.insert(field) {
            return Err(MappingError::DuplicateField { field: field.to_owned() });
        }
    }
    match table.key.iter().find(|field| !seen.contains(field.as_str())) {
        Some(field) => Err(MappingError::UnknownKeyField { field: field.clone() }),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "mapper_tests.rs"]
mod tests;
