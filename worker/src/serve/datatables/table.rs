//! Data tables as the registry holds them: the SDK's table metadata of an app, and one
//! table (by either form of its id) with what its routes need.

use licenseware_crds::{
    DEFAULT_COLLECTION,
    registry::{ColumnEntry, DataTableEntry},
    report_component::check_app_collection,
};
use serde_json::{Map, Value};

use super::super::{
    error::ApiError,
    registry::RegistryView,
    reports::metadata::{id_matches, report_metadata},
};

/// What the routes of one table need.
#[derive(Debug, Clone)]
pub struct Table {
    pub app_id: String,
    pub component_id: String,
    pub collection: String,
    pub columns: Vec<ColumnEntry>,
}

impl Table {
    /// Whether `field` may be asked for its distinct values: a column's prop, or a
    /// key a column declares (what its `entities_url` sends).
    pub fn has_key(&self, field: &str) -> bool {
        self.columns.iter().any(|c| {
            c.prop == field
                || c.distinct_key.as_deref() == Some(field)
                || c.foreign_key.as_deref() == Some(field)
        })
    }

    /// The fields that may be asked for distinct values, for a refusal's message.
    pub fn keys(&self) -> String {
        let mut keys: Vec<&str> = self
            .columns
            .iter()
            .flat_map(|c| {
                std::iter::once(c.prop.as_str())
                    .chain(c.distinct_key.as_deref())
                    .chain(c.foreign_key.as_deref())
            })
            .filter(|k| *k != "tenant_id")
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.join(", ")
    }
}

/// The SDK's metadata of every table of `app`, in their `order`: the registry's
/// document without the keys the registry adds, nor the collection.
pub fn tables_metadata(registry: &RegistryView, app: &str) -> Vec<Value> {
    let mut tables: Vec<Map<String, Value>> = registry.documents("datatable", Some(app));
    tables.sort_by_key(|d| d.get("order").and_then(Value::as_u64).unwrap_or(u64::MAX));
    tables
        .into_iter()
        .map(|mut document| {
            document.remove("collection");
            report_metadata(document)
        })
        .collect()
}

/// The table `component` (dash form or id) of `app`.
pub fn find_table(registry: &RegistryView, app: &str, component: &str) -> Result<Table, ApiError> {
    let document = registry
        .documents("datatable", Some(app))
        .into_iter()
        .find(|d| {
            d.get("component_id")
                .and_then(Value::as_str)
                .is_some_and(|id| id_matches(id, component))
        })
        .ok_or_else(|| ApiError::NotFound("Data table not found".to_owned()))?;
    let entry: DataTableEntry = serde_json::from_value(Value::Object(document))
        .map_err(|error| ApiError::internal("RegistryDocumentUnreadable", error))?;
    let collection = entry.collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_owned());
    // The operator refused these already; checked again because the registry is only
    // as trustworthy as whatever wrote to its topic.
    check_app_collection(&collection, [collection.as_str()])
        .map_err(|error| ApiError::internal("CollectionRefused", error))?;
    Ok(Table {
        app_id: app.to_owned(),
        component_id: entry.component_id,
        collection,
        columns: entry.columns,
    })
}
