//! Pure builders of registry entries: each custom resource becomes the metadata dict
//! the SDK published for it (reference §1.1, §4, §5.1, §9), with the SDK's key names,
//! URL forms and defaults. `updated_at` is not part of an entry: the writer adds it
//! when the content changes (see [`super::Registry::upsert`]).

use std::fmt;

use licenseware_crds::{
    DataTable, Flag, ReportComponent, ReportFilter, Uploader,
    data_table::ResolvedColumn,
    names::{dash, title},
    report::Report,
};
use serde_json::{Map, Value, json};

/// The kinds of registry document; the first segment of every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Uploader,
    Report,
    Component,
    DataTable,
    App,
}

impl EntryKind {
    /// Every kind, in key order.
    pub const ALL: [Self; 5] =
        [Self::Uploader, Self::Report, Self::Component, Self::DataTable, Self::App];

    /// The name used in keys and in the documents' `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploader => "uploader",
            Self::Report => "report",
            Self::Component => "component",
            Self::DataTable => "datatable",
            Self::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{kind}/{appId}/{id}`: the MongoDB `_id` and the Kafka record key of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryKey {
    pub kind: EntryKind,
    pub app_id: String,
    pub id: String,
}

impl RegistryKey {
    pub fn new(kind: EntryKind, app_id: impl Into<String>, id: impl Into<String>) -> Self {
        Self { kind, app_id: app_id.into(), id: id.into() }
    }

    /// Parses `{kind}/{appId}/{id}`.
    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.splitn(3, '/');
        let kind = EntryKind::parse(parts.next()?)?;
        let app_id = parts.next()?;
        let id = parts.next()?;
        Some(Self::new(kind, app_id, id))
    }
}

impl fmt::Display for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.app_id, self.id)
    }
}

/// One registry document before it is written: the SDK metadata of a resource and the
/// resource it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEntry {
    pub key: RegistryKey,
    /// Namespace of the resource the entry is written for.
    pub namespace: String,
    /// `metadata.name` of that resource.
    pub resource_name: String,
    /// The SDK's metadata dict, exact key names, without `updated_at`.
    pub metadata: Map<String, Value>,
}

impl RegistryEntry {
    /// The document stored in MongoDB and published on the registry topic: the SDK
    /// metadata, plus `_id`, `kind`, `app_id`, `namespace`, `resource_name` and
    /// `updated_at` (UTC ISO format without time zone, like the SDK's).
    pub fn document(&self, updated_at: &str) -> Map<String, Value> {
        let mut document = Map::new();
        document.insert("_id".into(), json!(self.key.to_string()));
        document.extend(self.metadata.clone());
        document.insert("kind".into(), json!(self.key.kind.as_str()));
        // Data tables have no app_id in the SDK's metadata; every document carries it
        // here so that the app's documents can be found.
        document.insert("app_id".into(), json!(self.key.app_id));
        document.insert("namespace".into(), json!(self.namespace));
        document.insert("resource_name".into(), json!(self.resource_name));
        document.insert("updated_at".into(), json!(updated_at));
        document
    }
}

fn namespace_and_name<K: kube::ResourceExt>(resource: &K) -> (String, String) {
    (resource.namespace().unwrap_or_default(), resource.name_any())
}

/// SDK lists whose default is `None`: an empty list is published as `null`.
fn list_or_null<T: serde::Serialize>(items: &[T]) -> Value {
    if items.is_empty() { Value::Null } else { json!(items) }
}

fn text_or_null(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { json!(text) }
}

fn flags(flags: &[Flag]) -> Value {
    list_or_null(flags)
}

/// The part of the app's metadata an entry carries as `parrent_app` (sic, the SDK's
/// key). The resources describe no app beyond its id, so that is all it holds.
fn parrent_app(app_id: &str) -> Value {
    json!({ "app_id": app_id })
}

/// A report filter in the SDK's shape: `{column, allowed_filters, column_type,
/// allowed_values, visible_name}` with the SDK's inference and defaults.
pub fn filter_metadata(filter: &ReportFilter) -> Value {
    json!({
        "column": filter.column,
        "allowed_filters": filter.effective_allowed_filters(),
        "column_type": filter.effective_column_type(),
        "allowed_values": filter.allowed_values,
        "visible_name": filter.effective_visible_name(),
    })
}

fn filters(filters: &[ReportFilter]) -> Value {
    if filters.is_empty() {
        Value::Null
    } else {
        Value::Array(filters.iter().map(filter_metadata).collect())
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// SDK `NewUploader.get_metadata`: `app_id, name, uploader_id, description, upload_url,
/// upload_validation_url, quota_validation_url, status_check_url, accepted_file_types,
/// icon, flags, validation_parameters, encryption_parameters, status, parrent_app`.
/// `status` (per-tenant processing states, kept in Redis) is runtime state, so the
/// registry holds `[]`; the app's API reports the live values.
pub fn uploader_entry(uploader: &Uploader) -> RegistryEntry {
    let spec = &uploader.spec;
    let uploader_id = uploader.uploader_id();
    let d = dash(&uploader_id);
    let v = &spec.validation;
    let e = &spec.encryption;
    let metadata = json!({
        "app_id": spec.app_id,
        "name": spec.name,
        "uploader_id": uploader_id,
        "description": spec.description,
        "upload_url": format!("/uploads/{d}/files"),
        "upload_validation_url": format!("/uploads/{d}/validation"),
        "quota_validation_url": format!("/uploads/{d}/quota"),
        "status_check_url": format!("/uploads/{d}/status"),
        "accepted_file_types": spec.accepted_file_types,
        "icon": spec.icon,
        "flags": flags(&spec.flags),
        "validation_parameters": {
            "required_input_type": v.required_input_type,
            "filename_contains": v.filename_contains,
            "filename_endswith": v.filename_endswith,
            "required_sheets": v.required_sheets,
            "required_columns": v.required_columns,
            "min_rows_number": v.min_rows_number,
            "header_starts_at": v.header_starts_at,
            "text_contains_all": v.text_contains_all,
            "text_contains_any": v.text_contains_any,
            "ignore_filenames": v.ignore_filenames,
            "buffer": v.buffer,
            "filename_valid_message": v.filename_valid_message,
            "filename_ignored_message": v.filename_ignored_message,
            "regex_escape": v.regex_escape,
            "ignored_by_uup": v.ignored_by_uup,
        },
        "encryption_parameters": {
            "filepaths": list_or_null(&e.filepaths),
            "filecontent": list_or_null(&e.filecontent),
            "columns": list_or_null(&e.columns),
        },
        "status": [],
        "parrent_app": parrent_app(&spec.app_id),
    });
    let (namespace, resource_name) = namespace_and_name(uploader);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::Uploader, &spec.app_id, uploader_id),
        namespace,
        resource_name,
        metadata: object(metadata),
    }
}

/// SDK `NewReportComponent.get_metadata`: `app_id, component_id, description, url,
/// public_url, snapshot_url, order, style_attributes, attributes, title, type, filters`.
/// `order` is `spec.order`, `null` when unset (a report fills in the position).
pub fn component_metadata(component: &ReportComponent, order: Option<i32>) -> Map<String, Value> {
    let spec = &component.spec;
    let component_id = component.component_id();
    let c = dash(&component_id);
    object(json!({
        "app_id": spec.app_id,
        "component_id": component_id,
        "description": text_or_null(&spec.description),
        "url": format!("/report-components/{c}"),
        "public_url": format!("/public-report-components/{c}"),
        "snapshot_url": format!("/snapshot-report-components/{c}"),
        "order": order,
        "style_attributes": spec.style,
        "attributes": spec.attributes,
        "title": spec.title,
        "type": spec.component_type,
        "filters": filters(&spec.filters),
    }))
}

/// The registry entry of a ReportComponent (see [`component_metadata`]).
pub fn component_entry(component: &ReportComponent) -> RegistryEntry {
    let (namespace, resource_name) = namespace_and_name(component);
    RegistryEntry {
        key: RegistryKey::new(
            EntryKind::Component,
            &component.spec.app_id,
            component.component_id(),
        ),
        namespace,
        resource_name,
        metadata: component_metadata(component, component.spec.order),
    }
}

/// The components of `report`, in display order, with the order each one gets: the
/// ones `spec.components` lists, in that order (unknown ids are left out: validation
/// reports them); when the list is empty, every component of the report's app, by
/// `spec.order` then componentId. A component without `order` gets its 1-based
/// position, as the SDK's `attach` does.
pub fn report_components<'a>(
    report: &Report,
    components: &'a [ReportComponent],
) -> Vec<(&'a ReportComponent, i32)> {
    let app = &report.spec.app_id;
    let same_app = |c: &&ReportComponent| &c.spec.app_id == app;
    let chosen: Vec<&ReportComponent> = if report.spec.components.is_empty() {
        let mut all: Vec<&ReportComponent> = components.iter().filter(same_app).collect();
        all.sort_by_key(|c| (c.spec.order.unwrap_or(i32::MAX), c.component_id()));
        all.dedup_by_key(|c| c.component_id());
        all
    } else {
        report
            .spec
            .components
            .iter()
            .filter_map(|id| components.iter().filter(same_app).find(|c| c.component_id() == *id))
            .collect()
    };
    chosen
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, c.spec.order.unwrap_or_else(|| i32::try_from(i + 1).unwrap_or(i32::MAX))))
        .collect()
}

/// SDK `NewReport.get_metadata`: `app_id, report_id, name, description, url,
/// connected_apps, report_components, flags, filters, public_url, snapshot_url,
/// parrent_app, registrable`. `components` are the ReportComponents the report may
/// use (those of its namespace); see [`report_components`] for which are embedded.
/// The SDK's `status` and `apps` are computed per request from Redis and other apps'
/// registries, so they are left to the app's API.
pub fn report_entry(report: &Report, components: &[ReportComponent]) -> RegistryEntry {
    let spec = &report.spec;
    let report_id = report.report_id();
    let r = dash(&report_id);
    let embedded: Vec<Value> = report_components(report, components)
        .into_iter()
        .map(|(c, order)| Value::Object(component_metadata(c, Some(order))))
        .collect();
    let metadata = json!({
        "app_id": spec.app_id,
        "report_id": report_id,
        "name": spec.name,
        "description": spec.description,
        "url": format!("/reports/{r}"),
        "connected_apps": report.connected_apps(),
        "report_components": embedded,
        "flags": flags(&spec.flags),
        "filters": filters(&spec.filters),
        "public_url": format!("/public-reports/{r}"),
        "snapshot_url": format!("/snapshot-reports/{r}"),
        "parrent_app": parrent_app(&spec.app_id),
        "registrable": spec.registrable,
    });
    let (namespace, resource_name) = namespace_and_name(report);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::Report, &spec.app_id, report_id),
        namespace,
        resource_name,
        metadata: object(metadata),
    }
}

/// `/datatables/{dash(componentId)}`.
pub fn datatable_path(component_id: &str) -> String {
    format!("/datatables/{}", dash(component_id))
}

/// A column in the SDK's shape: `{name, prop, editable, type, values, required,
/// visible, hashable, entities_url, distinct_key, foreign_key}`.
pub fn column_metadata(path: &str, column: &ResolvedColumn) -> Value {
    let entities_url = (column.distinct_key.is_some() || column.foreign_key.is_some()).then(|| {
        let mut url = format!("{path}?id=%7Bentity_id%7D");
        if let Some(key) = &column.distinct_key {
            url.push_str(&format!("&distinct_key={key}"));
        }
        if let Some(key) = &column.foreign_key {
            url.push_str(&format!("&foreign_key={key}"));
        }
        url
    });
    json!({
        "name": column.name,
        "prop": column.prop,
        "editable": column.editable,
        "type": column.column_type,
        "values": column.values,
        "required": column.required,
        "visible": column.visible,
        "hashable": column.hashable,
        "entities_url": entities_url,
        "distinct_key": column.distinct_key,
        "foreign_key": column.foreign_key,
    })
}

/// SDK `DataTable.metadata`: `url, path, type ("editable_table"), order,
/// style_attributes ({"width": "full"}), title, component_id, columns`. `order` is the
/// table's 0-based position among its app's tables (SDK `RegisteredDataTables`).
pub fn datatable_entry(table: &DataTable, order: usize) -> RegistryEntry {
    let spec = &table.spec;
    let component_id = table.component_id();
    let path = datatable_path(&component_id);
    let columns: Vec<Value> =
        spec.columns.iter().map(|c| column_metadata(&path, &c.resolve())).collect();
    let metadata = json!({
        "url": path,
        "path": path,
        "type": "editable_table",
        "order": order,
        "style_attributes": {"width": "full"},
        "title": spec.title,
        "component_id": component_id,
        "columns": columns,
    });
    let (namespace, resource_name) = namespace_and_name(table);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::DataTable, &spec.app_id, component_id),
        namespace,
        resource_name,
        metadata: object(metadata),
    }
}

/// The 0-based position of `table` among `tables` of the same app, by componentId.
pub fn datatable_order(table: &DataTable, tables: &[DataTable]) -> usize {
    let id = table.component_id();
    let mut ids: Vec<String> = tables
        .iter()
        .filter(|t| t.spec.app_id == table.spec.app_id)
        .map(DataTable::component_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids.iter().position(|other| *other == id).unwrap_or(ids.len())
}

/// The app document (SDK `NewApp.get_metadata`, as far as the resources describe an
/// app): `app_id`, `name` (title form of the id), `status: "available"`, the SDK's
/// fixed URLs, and the ids of the app's registered uploaders, reports, components and
/// data tables, sorted. `members` are the keys of the app's other entries.
pub fn app_entry(app_id: &str, members: &[RegistryKey]) -> RegistryEntry {
    let ids = |kind: EntryKind| {
        let mut ids: Vec<&str> =
            members.iter().filter(|k| k.kind == kind).map(|k| k.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let metadata = json!({
        "app_id": app_id,
        "name": title(app_id),
        "status": "available",
        "history_report_url": "/reports/history-report",
        "editable_tables_url": "/datatables",
        "datatables_url": "/datatables",
        "uploaders": ids(EntryKind::Uploader),
        "reports": ids(EntryKind::Report),
        "report_components": ids(EntryKind::Component),
        "datatables": ids(EntryKind::DataTable),
    });
    RegistryEntry {
        key: RegistryKey::new(EntryKind::App, app_id, app_id),
        // An app spans every resource with its id, whatever their namespace.
        namespace: String::new(),
        resource_name: String::new(),
        metadata: object(metadata),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).unwrap()
    }

    fn keys(entry: &RegistryEntry) -> Vec<&str> {
        let mut keys: Vec<&str> = entry.metadata.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    fn sorted(mut keys: Vec<&str>) -> Vec<&str> {
        keys.sort_unstable();
        keys
    }

    pub(crate) fn devices_by_os() -> ReportComponent {
        yaml(
            r#"
apiVersion: licenseware.io/v1alpha1
kind: ReportComponent
metadata: {name: devices-by-os, namespace: ifmp}
spec:
  appId: ifmp-service
  title: Devices by operating system
  type: pie
  attributes:
    series:
      - {label_key: os, label_description: Operating System}
      - {value_key: count, value_description: Count}
  style: {width: "1/2"}
  filters:
    - {column: os, allowedValues: [linux, windows]}
  data:
    pipeline:
      - {$group: {_id: "$os", count: {$sum: 1}}}
"#,
        )
    }

    pub(crate) fn devices_overview() -> ReportComponent {
        yaml(
            r#"
apiVersion: licenseware.io/v1alpha1
kind: ReportComponent
metadata: {name: devices-overview, namespace: ifmp}
spec:
  componentId: devices_overview
  appId: ifmp-service
  title: Overview
  description: Devices at a glance.
  type: summary
  order: 7
  attributes:
    series:
      - {value_key: number_of_devices, value_description: Devices, icon: ServersIcon}
"#,
        )
    }

    pub(crate) fn devices_report() -> Report {
        yaml(
            r"
apiVersion: licenseware.io/v1alpha1
kind: Report
metadata: {name: devices-report, namespace: ifmp}
spec:
  appId: ifmp-service
  name: Devices
  description: Your devices.
  connectedApps: [odb-service]
  components: [devices_by_os, devices_overview]
  filters:
    - {column: number_of_devices}
    - {column: result, allowedValues: [Verified, Used]}
  flags: [beta]
",
        )
    }

    #[test]
    fn uploader_has_the_sdk_keys_urls_and_defaults() {
        let uploader: Uploader = yaml(
            r#"
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata: {name: rv-tools, namespace: ifmp}
spec:
  appId: ifmp-service
  name: RVTools
  description: XLSX export from RVTools.
  acceptedFileTypes: [".xls", ".xlsx"]
  icon: ServersIcon
  validation:
    filenameContains: [rv, tools]
    requiredSheets: [[tabvInfo]]
  encryption:
    columns: [Device]
"#,
        );
        let entry = uploader_entry(&uploader);
        assert_eq!(entry.key.to_string(), "uploader/ifmp-service/rv_tools");
        assert_eq!((entry.namespace.as_str(), entry.resource_name.as_str()), ("ifmp", "rv-tools"));
        assert_eq!(
            keys(&entry),
            sorted(vec![
                "app_id",
                "name",
                "uploader_id",
                "description",
                "upload_url",
                "upload_validation_url",
                "quota_validation_url",
                "status_check_url",
                "accepted_file_types",
                "icon",
                "flags",
                "validation_parameters",
                "encryption_parameters",
                "status",
                "parrent_app",
            ])
        );
        let m = &entry.metadata;
        // SDK acceptance case 13.
        assert_eq!(m["upload_url"], "/uploads/rv-tools/files");
        assert_eq!(m["upload_validation_url"], "/uploads/rv-tools/validation");
        assert_eq!(m["quota_validation_url"], "/uploads/rv-tools/quota");
        assert_eq!(m["status_check_url"], "/uploads/rv-tools/status");
        assert_eq!(m["uploader_id"], "rv_tools");
        assert_eq!(m["flags"], Value::Null);
        assert_eq!(m["status"], json!([]));
        assert_eq!(m["parrent_app"], json!({"app_id": "ifmp-service"}));
        let v = &m["validation_parameters"];
        assert_eq!(v["filename_contains"], json!(["rv", "tools"]));
        assert_eq!(v["required_sheets"], json!([["tabvInfo"]]));
        assert_eq!(v["filename_endswith"], Value::Null);
        assert_eq!(v["buffer"], 15000);
        assert_eq!(v["filename_valid_message"], "File is valid");
        assert_eq!(v["regex_escape"], true);
        assert_eq!(v["ignored_by_uup"], false);
        assert_eq!(v.as_object().unwrap().len(), 15);
        assert_eq!(
            m["encryption_parameters"],
            json!({"filepaths": null, "filecontent": null, "columns": ["Device"]})
        );
    }

    #[test]
    fn component_has_the_sdk_keys_and_dash_urls() {
        let entry = component_entry(&devices_by_os());
        assert_eq!(entry.key.to_string(), "component/ifmp-service/devices_by_os");
        assert_eq!(
            keys(&entry),
            sorted(vec![
                "app_id",
                "component_id",
                "description",
                "url",
                "public_url",
                "snapshot_url",
                "order",
                "style_attributes",
                "attributes",
                "title",
                "type",
                "filters",
            ])
        );
        let m = &entry.metadata;
        assert_eq!(m["url"], "/report-components/devices-by-os");
        assert_eq!(m["public_url"], "/public-report-components/devices-by-os");
        assert_eq!(m["snapshot_url"], "/snapshot-report-components/devices-by-os");
        assert_eq!(m["order"], Value::Null);
        assert_eq!(m["description"], Value::Null);
        assert_eq!(m["type"], "pie");
        assert_eq!(m["style_attributes"], json!({"width": "1/2"}));
        assert_eq!(m["attributes"]["series"][0]["label_key"], "os");
        assert_eq!(
            m["filters"],
            json!([{
                "column": "os",
                "allowed_filters": ["equals", "contains", "in_list"],
                "column_type": "enum",
                "allowed_values": ["linux", "windows"],
                "visible_name": "Os",
            }])
        );
        assert_eq!(component_entry(&devices_overview()).metadata["order"], 7);
    }

    #[test]
    fn report_embeds_its_components_in_order() {
        let report = devices_report();
        let components = [devices_overview(), devices_by_os()];
        let entry = report_entry(&report, &components);
        assert_eq!(entry.key.to_string(), "report/ifmp-service/devices_report");
        assert_eq!(
            keys(&entry),
            sorted(vec![
                "app_id",
                "report_id",
                "name",
                "description",
                "url",
                "connected_apps",
                "report_components",
                "flags",
                "filters",
                "public_url",
                "snapshot_url",
                "parrent_app",
                "registrable",
            ])
        );
        let m = &entry.metadata;
        assert_eq!(m["url"], "/reports/devices-report");
        assert_eq!(m["public_url"], "/public-reports/devices-report");
        assert_eq!(m["snapshot_url"], "/snapshot-reports/devices-report");
        assert_eq!(m["connected_apps"], json!(["ifmp-service", "odb-service"]));
        assert_eq!(m["flags"], json!(["beta"]));
        assert_eq!(m["registrable"], true);
        let embedded = m["report_components"].as_array().unwrap();
        let ids: Vec<&str> = embedded.iter().map(|c| c["component_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["devices_by_os", "devices_overview"]);
        // Position 1 by default, the explicit order otherwise.
        assert_eq!(embedded[0]["order"], 1);
        assert_eq!(embedded[1]["order"], 7);
        // SDK acceptance case 18: filters are strings, with the SDK defaults.
        assert_eq!(m["filters"][0]["column_type"], "number");
        assert_eq!(m["filters"][0]["visible_name"], "Number Of Devices");
        assert_eq!(m["filters"][0]["allowed_filters"].as_array().unwrap().len(), 5);
        assert_eq!(m["filters"][1]["column_type"], "enum");
    }

    #[test]
    fn report_without_a_list_takes_every_component_of_its_app() {
        let mut report = devices_report();
        report.spec.components.clear();
        let mut other_app = devices_by_os();
        other_app.spec.app_id = "odb-service".into();
        other_app.metadata.name = Some("other".into());
        let components = [devices_by_os(), other_app, devices_overview()];
        let chosen: Vec<(String, i32)> = report_components(&report, &components)
            .into_iter()
            .map(|(c, order)| (c.component_id(), order))
            .collect();
        // Explicit order first, then by id; positions count from 1.
        assert_eq!(chosen, [("devices_overview".into(), 7), ("devices_by_os".into(), 2)]);
    }

    #[test]
    fn datatable_has_the_sdk_shape() {
        let table: DataTable = yaml(
            r"
apiVersion: licenseware.io/v1alpha1
kind: DataTable
metadata: {name: devices, namespace: ifmp}
spec:
  appId: ifmp-service
  title: Devices
  columns:
    - {prop: _id}
    - {prop: tenant_id}
    - {prop: device_name, name: Device, required: true}
    - {prop: number_of_cores}
    - {prop: os, values: [linux, windows]}
    - {prop: host, distinctKey: name, foreignKey: host_name}
",
        );
        let entry = datatable_entry(&table, 2);
        assert_eq!(entry.key.to_string(), "datatable/ifmp-service/devices");
        assert_eq!(
            keys(&entry),
            sorted(vec![
                "url",
                "path",
                "type",
                "order",
                "style_attributes",
                "title",
                "component_id",
                "columns",
            ])
        );
        let m = &entry.metadata;
        assert_eq!(m["url"], "/datatables/devices");
        assert_eq!(m["path"], "/datatables/devices");
        assert_eq!(m["type"], "editable_table");
        assert_eq!(m["order"], 2);
        assert_eq!(m["style_attributes"], json!({"width": "full"}));
        let columns = m["columns"].as_array().unwrap();
        assert_eq!(
            columns[1],
            json!({
                "name": "Tenant Id", "prop": "tenant_id", "editable": false, "type": "string",
                "values": null, "required": true, "visible": false, "hashable": false,
                "entities_url": null, "distinct_key": null, "foreign_key": null,
            })
        );
        assert_eq!(columns[2]["name"], "Device");
        assert_eq!(columns[3]["type"], "number");
        assert_eq!(columns[4]["type"], "enum");
        assert_eq!(columns[5]["type"], "entity");
        assert_eq!(
            columns[5]["entities_url"],
            "/datatables/devices?id=%7Bentity_id%7D&distinct_key=name&foreign_key=host_name"
        );
        let mut other = table.clone();
        other.spec.component_id = Some("a_first".into());
        let mut foreign = table.clone();
        foreign.spec.component_id = Some("0".into());
        foreign.spec.app_id = "odb-service".into();
        let all = [table.clone(), other.clone(), foreign];
        assert_eq!(datatable_order(&table, &all), 1);
        assert_eq!(datatable_order(&other, &all), 0);
    }

    #[test]
    fn documents_carry_the_key_and_traceability_fields() {
        let entry = component_entry(&devices_by_os());
        let document = entry.document("2026-01-02T03:04:05.000006");
        assert_eq!(document["_id"], "component/ifmp-service/devices_by_os");
        assert_eq!(document["kind"], "component");
        assert_eq!(document["app_id"], "ifmp-service");
        assert_eq!(document["namespace"], "ifmp");
        assert_eq!(document["resource_name"], "devices-by-os");
        assert_eq!(document["updated_at"], "2026-01-02T03:04:05.000006");
        assert_eq!(
            RegistryKey::parse("datatable/app/devices"),
            Some(RegistryKey::new(EntryKind::DataTable, "app", "devices"))
        );
        assert_eq!(RegistryKey::parse("nope/app/x"), None);
    }

    #[test]
    fn app_lists_its_members() {
        let members = [
            RegistryKey::new(EntryKind::Report, "ifmp-service", "devices_report"),
            RegistryKey::new(EntryKind::Component, "ifmp-service", "b"),
            RegistryKey::new(EntryKind::Component, "ifmp-service", "a"),
            RegistryKey::new(EntryKind::DataTable, "ifmp-service", "devices"),
        ];
        let entry = app_entry("ifmp-service", &members);
        assert_eq!(entry.key.to_string(), "app/ifmp-service/ifmp-service");
        let m = &entry.metadata;
        assert_eq!(m["name"], "Ifmp Service");
        assert_eq!(m["status"], "available");
        assert_eq!(m["uploaders"], json!([]));
        assert_eq!(m["reports"], json!(["devices_report"]));
        assert_eq!(m["report_components"], json!(["a", "b"]));
        assert_eq!(m["datatables"], json!(["devices"]));
    }
}
