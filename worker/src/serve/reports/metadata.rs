//! Reports and components as the registry holds them: lookups by either form of the
//! id (`devices-by-os` as in the URLs, or `devices_by_os`), the SDK's report metadata,
//! and, for a data request, the component with every filter the request may use.

use std::sync::Arc;

use licenseware_crds::{
    names::dash,
    registry::{ComponentEntry, FilterEntry, ReportEntry},
    report_component::ComponentData,
};
use serde_json::{Map, Value};

use super::super::{error::ApiError, registry::RegistryView};

/// Keys a registry document adds to the SDK's metadata, left out of what the SDK
/// returned (`app_id` and `updated_at` are the SDK's own).
const REGISTRY_KEYS: [&str; 4] = ["_id", "kind", "namespace", "resource_name"];

/// A report document as the SDK's report metadata.
pub fn report_metadata(mut document: Map<String, Value>) -> Value {
    for key in REGISTRY_KEYS {
        document.remove(key);
    }
    Value::Object(document)
}

/// Whether a registry id `id` is the one a URL names (`wanted`: the id or its dash form).
pub fn id_matches(id: &str, wanted: &str) -> bool {
    id == wanted || dash(id) == wanted
}

fn id_of(document: &Map<String, Value>, field: &str) -> Option<String> {
    document.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// The report document `report` (either id form) of `app`.
pub fn find_report(
    registry: &RegistryView,
    app: &str,
    report: &str,
) -> Result<Map<String, Value>, ApiError> {
    registry
        .documents("report", Some(app))
        .into_iter()
        .find(|d| id_of(d, "report_id").is_some_and(|id| id_matches(&id, report)))
        .ok_or_else(|| ApiError::NotFound("Report not found".to_owned()))
}

/// The ids of the components a report document shows, in its order.
pub fn report_component_ids(document: &Map<String, Value>) -> Vec<String> {
    document
        .get("report_components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("component_id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn find_component_document(
    registry: &RegistryView,
    app: &str,
    component: &str,
) -> Option<Map<String, Value>> {
    registry
        .documents("component", Some(app))
        .into_iter()
        .find(|d| id_of(d, "component_id").is_some_and(|id| id_matches(&id, component)))
}

/// What a data request needs of its component.
#[derive(Debug, Clone)]
pub struct Target {
    /// The app whose data is read: the component's.
    pub app_id: String,
    pub component_id: String,
    pub data: ComponentData,
    /// The report's and the component's filters: the columns a request may filter on.
    pub allowed: Vec<FilterEntry>,
    /// When the component's document last changed: part of the cache key, so a new
    /// pipeline is never answered with rows of the old one.
    pub version: String,
}

fn entry(document: Map<String, Value>) -> Result<(ComponentEntry, String), ApiError> {
    let version = id_of(&document, "updated_at").unwrap_or_default();
    let entry: ComponentEntry = serde_json::from_value(Value::Object(document))
        .map_err(|error| ApiError::internal("RegistryDocumentUnreadable", error))?;
    Ok((entry, version))
}

fn target(
    entry: ComponentEntry,
    version: String,
    extra: impl IntoIterator<Item = FilterEntry>,
) -> Result<Target, ApiError> {
    // A component registered by an operator that did not publish `data` yet: nothing
    // to run until the operator rewrites it.
    let data = entry.data.ok_or_else(|| {
        ApiError::unavailable(
            "the component's data",
            format!("component {} was registered without data", entry.component_id),
        )
    })?;
    let mut allowed: Vec<FilterEntry> = extra.into_iter().collect();
    allowed.extend(entry.filters.unwrap_or_default());
    Ok(Target { app_id: entry.app_id, component_id: entry.component_id, data, allowed, version })
}

/// `/{app}/report-components/{component}`: the component of `app`, filterable on its
/// own filters and on those of every report of `app` that shows it (the UI sends a
/// report's filters to each component's URL).
pub fn component_target(
    registry: &RegistryView,
    app: &str,
    component: &str,
) -> Result<Arc<Target>, ApiError> {
    registry.derived(format!("component-target/{app}/{component}"), || {
        derive_component_target(registry, app, component)
    })
}

fn derive_component_target(
    registry: &RegistryView,
    app: &str,
    component: &str,
) -> Result<Target, ApiError> {
    let document = find_component_document(registry, app, component)
        .ok_or_else(|| ApiError::NotFound("Report component not found".to_owned()))?;
    let (entry, version) = entry(document)?;
    let id = entry.component_id.clone();
    let report_filters: Vec<FilterEntry> = registry
        .documents("report", Some(app))
        .into_iter()
        .filter_map(|d| serde_json::from_value::<ReportEntry>(Value::Object(d)).ok())
        .filter(|r| r.report_components.iter().flatten().any(|c| c.component_id == id))
        .flat_map(|r| r.filters.unwrap_or_default())
        .collect();
    target(entry, version, report_filters)
}

/// `/{app}/reports/{report}/{component}`: a component the report shows, or one of a
/// connected app's (read from that app's data, for the same tenant), filterable on the
/// report's filters and its own.
pub fn report_component_target(
    registry: &RegistryView,
    app: &str,
    report: &str,
    component: &str,
) -> Result<Arc<Target>, ApiError> {
    // `/` cannot be in an id (they are path segments): the name is unambiguous.
    registry.derived(format!("report-component-target/{app}/{report}/{component}"), || {
        derive_report_component_target(registry, app, report, component)
    })
}

fn derive_report_component_target(
    registry: &RegistryView,
    app: &str,
    report: &str,
    component: &str,
) -> Result<Target, ApiError> {
    let document = find_report(registry, app, report)?;
    let report: ReportEntry = serde_json::from_value(Value::Object(document))
        .map_err(|error| ApiError::internal("RegistryDocumentUnreadable", error))?;
    let shown = report
        .report_components
        .iter()
        .flatten()
        .find(|c| id_matches(&c.component_id, component))
        .map(|c| (c.app_id.clone(), c.component_id.clone()));
    let found = match shown {
        Some((owner, id)) => find_component_document(registry, &owner, &id),
        None => report
            .connected_apps
            .iter()
            .filter(|other| other.as_str() != app)
            .find_map(|other| find_component_document(registry, other, component)),
    };
    let document =
        found.ok_or_else(|| ApiError::NotFound("Report component not found".to_owned()))?;
    let (entry, version) = entry(document)?;
    target(entry, version, report.filters.unwrap_or_default())
}
