//! `DataTable`: SDK `DataTable`, an editable table over the tenant's documents.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::RegistrationStatus;
use crate::filter::ColumnType;
use crate::names;
use crate::schema::{ID_MAX_LENGTH, ID_PATTERN};

/// Status of a DataTable.
pub type DataTableStatus = RegistrationStatus;

/// Columns the server manages: always read-only, hidden, not hashed and required,
/// whatever the spec says.
pub const SYSTEM_COLUMNS: [&str; 3] = ["_id", "tenant_id", "updated_at"];

/// A table of the tenant's documents that users can view, edit and delete in the UI.
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "DataTable",
    namespaced,
    status = "DataTableStatus",
    derive = "PartialEq",
    shortname = "lwdt",
    category = "licenseware",
    doc = "A table of the tenant's documents that users can view, edit and delete.",
    printcolumn(name = "App", type_ = "string", json_path = ".spec.appId"),
    printcolumn(name = "Collection", type_ = "string", json_path = ".spec.collection"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DataTableSpec {
    /// Id of the table, e.g. `devices`; its URL is /datatables/{dash form}. Default:
    /// metadata.name with '-' replaced by '_'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub component_id: Option<String>,
    /// Id of the app the table belongs to.
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub app_id: String,
    /// Title shown above the table.
    #[schemars(length(min = 1))]
    pub title: String,
    /// MongoDB collection the rows come from: Data, or a collection that an Uploader of
    /// the same appId in this namespace declares (usedCollections or
    /// processing.tables[].collection). Registry, ProcessingHistory and system.* are
    /// never allowed. Otherwise Ready=False (CollectionNotAllowed).
    #[serde(default = "crate::defaults::collection")]
    #[schemars(length(min = 1))]
    pub collection: String,
    /// Columns of the table, in display order. Each prop may appear once.
    #[schemars(
        length(min = 1),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["prop"])
    )]
    pub columns: Vec<DataTableColumn>,
    /// Whether the table is published in the registry.
    #[serde(default = "crate::defaults::yes")]
    pub registrable: bool,
}

/// One column of a data table.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataTableColumn {
    /// Document field shown in the column, e.g. `device_name`. _id, tenant_id and
    /// updated_at are always read-only and hidden.
    #[schemars(length(min = 1))]
    pub prop: String,
    /// Column header. Default: prop in title case (`device_name` → "Device Name").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Type of the values: string, number, date, bool, json, enum or entity, checked when
    /// a row is edited. Default: enum when values is set, entity when both distinctKey
    /// and foreignKey are set, number when prop contains "number", else string.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
    /// Allowed values of an enum column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Whether users can change the value.
    #[serde(default = "crate::defaults::yes")]
    pub editable: bool,
    /// Whether the column is shown.
    #[serde(default = "crate::defaults::yes")]
    pub visible: bool,
    /// Whether the value may be anonymized (hashed).
    #[serde(default = "crate::defaults::yes")]
    pub hashable: bool,
    /// Whether an edited row must have a value.
    #[serde(default)]
    pub required: bool,
    /// For entity columns: field whose distinct values list the entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct_key: Option<String>,
    /// For entity columns: field of the related documents that refers to this row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_key: Option<String>,
}

/// A column with the SDK's defaults, inference and forced flags applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedColumn {
    /// Document field.
    pub prop: String,
    /// Column header.
    pub name: String,
    /// Type of the values.
    pub column_type: ColumnType,
    /// Allowed values of an enum column.
    pub values: Option<Vec<String>>,
    /// Whether users can change the value.
    pub editable: bool,
    /// Whether the column is shown.
    pub visible: bool,
    /// Whether the value may be anonymized.
    pub hashable: bool,
    /// Whether an edited row must have a value.
    pub required: bool,
    /// Field whose distinct values list the entities.
    pub distinct_key: Option<String>,
    /// Field of the related documents that refers to this row.
    pub foreign_key: Option<String>,
}

impl DataTableColumn {
    /// The column type after the SDK's inference.
    pub fn effective_column_type(&self) -> ColumnType {
        if let Some(t) = self.column_type {
            return t;
        }
        if self.values.is_some() {
            ColumnType::Enum
        } else if self.distinct_key.is_some() && self.foreign_key.is_some() {
            ColumnType::Entity
        } else if self.prop.contains("number") {
            ColumnType::Number
        } else {
            ColumnType::String
        }
    }

    /// The column as the registry and the API see it.
    pub fn resolve(&self) -> ResolvedColumn {
        let system = SYSTEM_COLUMNS.contains(&self.prop.as_str());
        ResolvedColumn {
            prop: self.prop.clone(),
            name: self.name.clone().unwrap_or_else(|| names::title(&self.prop)),
            column_type: self.effective_column_type(),
            values: self.values.clone(),
            editable: self.editable && !system,
            visible: self.visible && !system,
            hashable: self.hashable && !system,
            required: self.required || system,
            distinct_key: self.distinct_key.clone(),
            foreign_key: self.foreign_key.clone(),
        }
    }
}

impl DataTable {
    /// `spec.componentId`, or metadata.name with '-' replaced by '_'.
    pub fn component_id(&self) -> String {
        match &self.spec.component_id {
            Some(id) => id.clone(),
            None => self.metadata.name.as_deref().unwrap_or_default().replace('-', "_"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(yaml: &str) -> DataTableColumn {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_inference() {
        let c = column("{prop: device_name}").resolve();
        assert_eq!(c.name, "Device Name");
        assert_eq!(c.column_type, ColumnType::String);
        assert!(c.editable && c.visible && c.hashable && !c.required);

        assert_eq!(column("{prop: number_of_cores}").resolve().column_type, ColumnType::Number);
        assert_eq!(
            column("{prop: os, values: [linux, windows]}").resolve().column_type,
            ColumnType::Enum
        );
        assert_eq!(
            column("{prop: device, distinctKey: name, foreignKey: device_name}")
                .resolve()
                .column_type,
            ColumnType::Entity
        );
        // One key alone is not enough for entity.
        assert_eq!(
            column("{prop: device, distinctKey: name}").resolve().column_type,
            ColumnType::String
        );
        assert_eq!(column("{prop: number_x, type: date}").resolve().column_type, ColumnType::Date);
    }

    // SDK acceptance case 17: tenant_id is a non-editable, hidden string.
    #[test]
    fn system_columns_are_forced() {
        for prop in SYSTEM_COLUMNS {
            let c = column(&format!("{{prop: {prop}, editable: true, visible: true}}")).resolve();
            assert!(!c.editable && !c.visible && !c.hashable && c.required, "{prop}");
        }
        assert_eq!(column("{prop: tenant_id}").resolve().column_type, ColumnType::String);
    }
}
