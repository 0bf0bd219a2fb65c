//! Pure builders of registry entries: each custom resource becomes the metadata the SDK
//! published for it (reference §1.1, §4, §5.1, §9), as the typed structs of
//! [`licenseware_crds::registry`], with the SDK's key names, URL forms and defaults.
//! The times in an entry (`updated_at`, and that of the app metadata it embeds) are
//! set by the writer when the content changes (see [`super::Registry::upsert`]).

use licenseware_crds::{
    DataTable, ReportComponent, Uploader, WorkerConfigFile,
    names::dash,
    registry::{
        AnyRegistryDocument, AppEntry, AppMetadata, ColumnEntry, ComponentAttributes,
        ComponentEntry, DATATABLE_TYPE, DataTableEntry, EncryptionParametersEntry, EntryMetadata,
        FilterEntry, RegistryDocument, ReportEntry, UploaderEntry, ValidationParametersEntry,
    },
    report::Report,
};
use serde_json::{Map, Value, json};

pub use licenseware_crds::registry::{EntryKind, RegistryKey};

/// One registry document before it is written: the SDK metadata of a resource and the
/// resource it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEntry {
    pub key: RegistryKey,
    /// Namespace of the resource the entry is written for.
    pub namespace: String,
    /// `metadata.name` of that resource.
    pub resource_name: String,
    /// The SDK's metadata, its times not set yet.
    pub metadata: EntryMetadata,
}

impl RegistryEntry {
    /// The document stored in MongoDB and published on the registry topic: the SDK
    /// metadata, plus `_id`, `kind`, `app_id`, `namespace`, `resource_name` and
    /// `updated_at` (UTC ISO format without time zone, like the SDK's), the metadata's
    /// own times set to `updated_at` too.
    pub fn document(&self, updated_at: &str) -> AnyRegistryDocument {
        RegistryDocument::new(
            self.key.clone(),
            &self.namespace,
            &self.resource_name,
            updated_at,
            self.metadata.clone(),
        )
    }

    /// [`Self::document`] as a JSON object.
    pub fn document_json(&self, updated_at: &str) -> Result<Map<String, Value>, serde_json::Error> {
        self.document(updated_at).to_json()
    }
}

fn namespace_and_name<K: kube::ResourceExt>(resource: &K) -> (String, String) {
    (resource.namespace().unwrap_or_default(), resource.name_any())
}

/// SDK lists whose default is `None`: an empty list is published as `null`.
fn list_or_null<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// SDK `NewUploader.get_metadata(parrent_app)`: `app_id, name, uploader_id,
/// description, upload_url, upload_validation_url, quota_validation_url,
/// status_check_url, accepted_file_types, icon, flags, updated_at,
/// validation_parameters, encryption_parameters, status, parrent_app`, then `worker`:
/// the worker's config exactly as its ConfigMap holds it (`worker`, built once by the
/// Uploader controller for both). `status` (per-tenant processing states, kept in
/// Redis) is runtime state, so the registry holds `[]`; the app's API reports the live
/// values.
pub fn uploader_metadata(
    uploader: &Uploader,
    worker: &WorkerConfigFile,
    app: &AppMetadata,
) -> UploaderEntry {
    let spec = &uploader.spec;
    let uploader_id = uploader.uploader_id();
    let d = dash(&uploader_id);
    UploaderEntry {
        app_id: spec.app_id.clone(),
        name: spec.name.clone(),
        uploader_id,
        description: spec.description.clone(),
        upload_url: format!("/uploads/{d}/files"),
        upload_validation_url: format!("/uploads/{d}/validation"),
        quota_validation_url: format!("/uploads/{d}/quota"),
        status_check_url: format!("/uploads/{d}/status"),
        accepted_file_types: spec.accepted_file_types.clone(),
        icon: spec.icon.clone(),
        flags: list_or_null(&spec.flags),
        updated_at: None,
        validation_parameters: ValidationParametersEntry::from_spec(&spec.validation),
        encryption_parameters: EncryptionParametersEntry::from_spec(&spec.encryption),
        status: Vec::new(),
        parrent_app: app.clone(),
        worker: worker.clone(),
    }
}

/// The registry entry of an Uploader (see [`uploader_metadata`]).
pub fn uploader_entry(
    uploader: &Uploader,
    worker: &WorkerConfigFile,
    app: &AppMetadata,
) -> RegistryEntry {
    let (namespace, resource_name) = namespace_and_name(uploader);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::Uploader, &uploader.spec.app_id, uploader.uploader_id()),
        namespace,
        resource_name,
        metadata: uploader_metadata(uploader, worker, app).into(),
    }
}

/// SDK `NewReportComponent.get_metadata`: `app_id, component_id, description, url,
/// public_url, snapshot_url, order, style_attributes, attributes, title, type,
/// filters`. `attributes` get the SDK attribute builders' defaults (validation refuses
/// attributes they could not have built; such a component gets empty ones here).
pub fn component_metadata(component: &ReportComponent, order: Option<i32>) -> ComponentEntry {
    let spec = &component.spec;
    let component_id = component.component_id();
    let c = dash(&component_id);
    let attributes = ComponentAttributes::from_spec(spec.component_type, &spec.attributes)
        .unwrap_or_else(|_| ComponentAttributes::empty(spec.component_type));
    ComponentEntry {
        app_id: spec.app_id.clone(),
        component_id,
        description: spec.description.clone(),
        url: format!("/report-components/{c}"),
        public_url: format!("/public-report-components/{c}"),
        snapshot_url: format!("/snapshot-report-components/{c}"),
        order,
        style_attributes: spec.style.clone(),
        attributes,
        title: spec.title.clone(),
        component_type: spec.component_type,
        filters: FilterEntry::list(&spec.filters),
        data: None,
    }
}

/// The `order` of a component's own entry: `spec.order`, else its position in the
/// first Report (by reportId) of its app that attaches it, as the SDK's `attach` sets
/// it on the component; `None` when no report does. `reports` and `components`: those
/// of the component's namespace.
pub fn component_order(
    component: &ReportComponent,
    reports: &[Report],
    components: &[ReportComponent],
) -> Option<i32> {
    if let Some(order) = component.spec.order {
        return Some(order);
    }
    let id = component.component_id();
    let mut reports: Vec<&Report> =
        reports.iter().filter(|r| r.spec.app_id == component.spec.app_id).collect();
    reports.sort_by_key(|r| r.report_id());
    reports.into_iter().find_map(|report| {
        report_components(report, components)
            .into_iter()
            .find(|(c, _)| c.component_id() == id)
            .map(|(_, order)| order)
    })
}

/// The registry entry of a ReportComponent (see [`component_metadata`] and
/// [`component_order`]).
pub fn component_entry(
    component: &ReportComponent,
    reports: &[Report],
    components: &[ReportComponent],
) -> RegistryEntry {
    let (namespace, resource_name) = namespace_and_name(component);
    RegistryEntry {
        key: RegistryKey::new(
            EntryKind::Component,
            &component.spec.app_id,
            component.component_id(),
        ),
        namespace,
        resource_name,
        metadata: ComponentEntry {
            // The API runs it; the copies embedded in reports stay the SDK's shape.
            data: Some(component.spec.data.clone()),
            ..component_metadata(component, component_order(component, reports, components))
        }
        .into(),
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

/// SDK `NewReport.get_metadata(parrent_app)`: `app_id, report_id, name, description,
/// url, connected_apps, report_components, flags, filters, updated_at, public_url,
/// snapshot_url, parrent_app, apps, status, registrable`. `components` are the
/// ReportComponents the report may use (those of its namespace); see
/// [`report_components`] for which are embedded (`null` for one that is not
/// registrable, as the SDK's `get_metadata` returns `None` for it). `apps` holds the
/// report's own app (the other connected apps are in their own app documents) and
/// `status` is `[]`: the SDK computes it per request from Redis, and so does the API.
pub fn report_metadata(
    report: &Report,
    components: &[ReportComponent],
    app: &AppMetadata,
) -> ReportEntry {
    let spec = &report.spec;
    let report_id = report.report_id();
    let r = dash(&report_id);
    ReportEntry {
        app_id: spec.app_id.clone(),
        report_id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        url: format!("/reports/{r}"),
        connected_apps: report.connected_apps(),
        report_components: report_components(report, components)
            .into_iter()
            .map(|(c, order)| c.spec.registrable.then(|| component_metadata(c, Some(order))))
            .collect(),
        flags: list_or_null(&spec.flags),
        filters: FilterEntry::list(&spec.filters),
        updated_at: None,
        public_url: format!("/public-reports/{r}"),
        snapshot_url: format!("/snapshot-reports/{r}"),
        parrent_app: app.clone(),
        apps: vec![app.clone()],
        status: Vec::new(),
        registrable: spec.registrable,
    }
}

/// The registry entry of a Report (see [`report_metadata`]).
pub fn report_entry(
    report: &Report,
    components: &[ReportComponent],
    app: &AppMetadata,
) -> RegistryEntry {
    let (namespace, resource_name) = namespace_and_name(report);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::Report, &report.spec.app_id, report.report_id()),
        namespace,
        resource_name,
        metadata: report_metadata(report, components, app).into(),
    }
}

/// `/datatables/{dash(componentId)}`.
pub fn datatable_path(component_id: &str) -> String {
    format!("/datatables/{}", dash(component_id))
}

/// SDK `DataTable.metadata`: `url, path, type ("editable_table"), order,
/// style_attributes ({"width": "full"}), title, component_id, columns`. `order` is the
/// table's 0-based position among its app's tables (SDK `RegisteredDataTables`).
pub fn datatable_metadata(table: &DataTable, order: u32) -> DataTableEntry {
    let spec = &table.spec;
    let component_id = table.component_id();
    let path = datatable_path(&component_id);
    let mut style = Map::new();
    style.insert("width".into(), json!("full"));
    DataTableEntry {
        url: path.clone(),
        table_type: DATATABLE_TYPE.to_owned(),
        order,
        style_attributes: style,
        title: spec.title.clone(),
        component_id,
        columns: spec.columns.iter().map(|c| ColumnEntry::new(&path, &c.resolve())).collect(),
        collection: Some(spec.collection.clone()),
        path,
    }
}

/// The registry entry of a DataTable (see [`datatable_metadata`]).
pub fn datatable_entry(table: &DataTable, order: u32) -> RegistryEntry {
    let (namespace, resource_name) = namespace_and_name(table);
    RegistryEntry {
        key: RegistryKey::new(EntryKind::DataTable, &table.spec.app_id, table.component_id()),
        namespace,
        resource_name,
        metadata: datatable_metadata(table, order).into(),
    }
}

/// The 0-based position of `table` among `tables` of the same app, by componentId.
pub fn datatable_order(table: &DataTable, tables: &[DataTable]) -> u32 {
    let id = table.component_id();
    let mut ids: Vec<String> = tables
        .iter()
        .filter(|t| t.spec.app_id == table.spec.app_id)
        .map(DataTable::component_id)
        .collect();
    ids.sort();
    ids.dedup();
    let position = ids.iter().position(|other| *other == id).unwrap_or(ids.len());
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// The app document: SDK `NewApp.get_metadata` (`app`), then the ids of the app's
/// registered uploaders, reports, components and data tables, sorted. `members` are
/// the keys of the app's other entries.
pub fn app_entry(app: AppMetadata, members: &[RegistryKey]) -> RegistryEntry {
    let ids = |kind: EntryKind| {
        let mut ids: Vec<String> =
            members.iter().filter(|k| k.kind == kind).map(|k| k.id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    RegistryEntry {
        key: RegistryKey::new(EntryKind::App, &app.app_id, &app.app_id),
        // An app spans every resource with its id, whatever their namespace.
        namespace: String::new(),
        resource_name: String::new(),
        metadata: AppEntry {
            uploaders: ids(EntryKind::Uploader),
            reports: ids(EntryKind::Report),
            report_components: ids(EntryKind::Component),
            datatables: ids(EntryKind::DataTable),
            app,
        }
        .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licenseware_crds::AnyRegistryDocument;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).unwrap()
    }

    /// The metadata as JSON, before the writer stamps it.
    fn json_of(entry: &RegistryEntry) -> Map<String, Value> {
        match serde_json::to_value(&entry.metadata).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    fn sorted(mut keys: Vec<&str>) -> Vec<&str> {
        keys.sort_unstable();
        keys
    }

    const SDK_APP_KEYS: [&str; 13] = [
        "app_id",
        "status",
        "name",
        "description",
        "icon",
        "history_report_url",
        "updated_at",
        "editable_tables_url",
        "datatables_url",
        "flags",
        "app_meta",
        "features",
        "integration_details",
    ];

    /// The operator-built document goes to JSON (what MongoDB and the topic get) and
    /// back into the typed document unchanged.
    fn round_trips(entry: &RegistryEntry) -> Map<String, Value> {
        let document = entry.document("2026-01-02T03:04:05.000006");
        let bytes = serde_json::to_vec(&document).unwrap();
        assert_eq!(AnyRegistryDocument::from_slice(&bytes).unwrap(), document);
        entry.document_json("2026-01-02T03:04:05.000006").unwrap()
    }

    fn app() -> AppMetadata {
        AppMetadata::for_app("ifmp-service")
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
      - {label_key: os, label_description: Operating System, color: red}
      - {value_key: number_of_devices}
    legend: true
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
      - {value_key: number_of_cpus}
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

    fn rv_tools(extra: &str) -> Uploader {
        yaml(&format!(
            r#"
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata: {{name: rv-tools, namespace: ifmp}}
spec:
  appId: ifmp-service
  name: RVTools
  description: XLSX export from RVTools.
  acceptedFileTypes: [".xls", ".xlsx"]
  icon: ServersIcon
{extra}
"#
        ))
    }

    fn worker_config(uploader: &Uploader) -> WorkerConfigFile {
        let mut spec = uploader.spec.clone();
        spec.uploader_id = Some(uploader.uploader_id());
        WorkerConfigFile {
            app_id: spec.app_id.clone(),
            uploader_id: uploader.uploader_id(),
            uploader: "ifmp/rv-tools".into(),
            events_topic: "lw.ifmp-service.rv_tools.events".into(),
            dlq_topic: "lw.ifmp-service.rv_tools.dlq".into(),
            events_topic_schema: None,
            consumer_group: "lw.ifmp-service.rv_tools".into(),
            max_attempts: 5,
            upload_root: "/uploads".into(),
            spec,
        }
    }

    #[test]
    fn uploader_has_the_sdk_keys_urls_and_defaults() {
        let uploader = rv_tools(
            "  validation:\n    filenameContains: [rv, tools]\n    requiredSheets: [[tabvInfo]]\n  \
             encryption:\n    columns: [Device]\n  upload: {maxFiles: 3}",
        );
        let worker = worker_config(&uploader);
        let entry = uploader_entry(&uploader, &worker, &app());
        assert_eq!(entry.key.to_string(), "uploader/ifmp-service/rv_tools");
        assert_eq!((entry.namespace.as_str(), entry.resource_name.as_str()), ("ifmp", "rv-tools"));
        let m = json_of(&entry);
        // The SDK's keys in its order, then the worker's config.
        assert_eq!(
            keys(&m),
            [
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
                "updated_at",
                "validation_parameters",
                "encryption_parameters",
                "status",
                "parrent_app",
                "worker",
            ]
        );
        // SDK acceptance case 13.
        assert_eq!(m["upload_url"], "/uploads/rv-tools/files");
        assert_eq!(m["upload_validation_url"], "/uploads/rv-tools/validation");
        assert_eq!(m["quota_validation_url"], "/uploads/rv-tools/quota");
        assert_eq!(m["status_check_url"], "/uploads/rv-tools/status");
        assert_eq!(m["uploader_id"], "rv_tools");
        assert_eq!(m["flags"], Value::Null);
        assert_eq!(m["status"], json!([]));
        // parrent_app is the whole app metadata.
        assert_eq!(
            sorted(keys(m["parrent_app"].as_object().unwrap())),
            sorted(SDK_APP_KEYS.to_vec())
        );
        assert_eq!(m["parrent_app"]["name"], "Ifmp Service");
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
        // The worker's config, exactly as the ConfigMap has it.
        assert_eq!(m["worker"], serde_json::to_value(&worker).unwrap());
        assert_eq!(m["worker"]["eventsTopic"], "lw.ifmp-service.rv_tools.events");
        assert_eq!(m["worker"]["spec"]["upload"]["maxFiles"], 3);

        let document = round_trips(&entry);
        assert_eq!(document["updated_at"], "2026-01-02T03:04:05.000006");
        assert_eq!(document["parrent_app"]["updated_at"], "2026-01-02T03:04:05.000006");
    }

    #[test]
    fn absent_validation_and_encryption_are_null() {
        let uploader = rv_tools("");
        let entry = uploader_entry(&uploader, &worker_config(&uploader), &app());
        let m = json_of(&entry);
        assert_eq!(m["validation_parameters"], Value::Null);
        assert_eq!(m["encryption_parameters"], Value::Null);
        // Only the defaults written out is still "absent".
        let defaults = rv_tools("  validation: {buffer: 15000, regexEscape: true}");
        let entry = uploader_entry(&defaults, &worker_config(&defaults), &app());
        assert_eq!(json_of(&entry)["validation_parameters"], Value::Null);
        round_trips(&entry);
    }

    #[test]
    fn component_has_the_sdk_keys_builder_defaults_and_dash_urls() {
        let entry = component_entry(&devices_by_os(), &[], &[]);
        assert_eq!(entry.key.to_string(), "component/ifmp-service/devices_by_os");
        let m = json_of(&entry);
        assert_eq!(
            keys(&m),
            [
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
                "data",
            ]
        );
        assert_eq!(m["data"]["collection"], "Data");
        assert_eq!(m["data"]["cacheTtlSeconds"], 300);
        assert_eq!(m["url"], "/report-components/devices-by-os");
        assert_eq!(m["public_url"], "/public-report-components/devices-by-os");
        assert_eq!(m["snapshot_url"], "/snapshot-report-components/devices-by-os");
        // No report attaches it and it has no order of its own.
        assert_eq!(m["order"], Value::Null);
        // An empty description stays "".
        assert_eq!(m["description"], "");
        assert_eq!(m["type"], "pie");
        assert_eq!(m["style_attributes"], json!({"width": "1/2"}));
        // The SDK builder's shape: defaults filled in, unknown keys dropped.
        assert_eq!(
            m["attributes"],
            json!({"series": [
                {"label_key": "os", "label_description": "Operating System"},
                {"value_key": "number_of_devices", "value_description": "Number Of Devices"},
            ]})
        );
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
        let overview = json_of(&component_entry(&devices_overview(), &[], &[]));
        assert_eq!(overview["order"], 7);
        assert_eq!(
            overview["attributes"]["series"][1],
            json!({"value_key": "number_of_cpus", "value_description": "Number Of Cpus", "icon": null})
        );
        assert_eq!(overview["filters"], Value::Null);
        round_trips(&entry);
    }

    #[test]
    fn a_component_takes_its_order_from_the_report_that_attaches_it() {
        let components = [devices_overview(), devices_by_os()];
        let mut report = devices_report();
        report.spec.components = vec!["devices_overview".into(), "devices_by_os".into()];
        let entry = component_entry(&devices_by_os(), std::slice::from_ref(&report), &components);
        assert_eq!(json_of(&entry)["order"], 2);
        // The first report by reportId decides; reports of other apps do not count.
        let mut first = report.clone();
        first.spec.report_id = Some("a_first".into());
        first.spec.components = vec!["devices_by_os".into()];
        let mut other_app = first.clone();
        other_app.spec.report_id = Some("0".into());
        other_app.spec.app_id = "odb-service".into();
        let reports = [report, first, other_app];
        assert_eq!(component_order(&devices_by_os(), &reports, &components), Some(1));
        // An order of its own wins.
        assert_eq!(component_order(&devices_overview(), &reports, &components), Some(7));
    }

    #[test]
    fn report_embeds_its_components_in_order() {
        let report = devices_report();
        let components = [devices_overview(), devices_by_os()];
        let entry = report_entry(&report, &components, &app());
        assert_eq!(entry.key.to_string(), "report/ifmp-service/devices_report");
        let m = json_of(&entry);
        assert_eq!(
            keys(&m),
            [
                "app_id",
                "report_id",
                "name",
                "description",
                "url",
                "connected_apps",
                "report_components",
                "flags",
                "filters",
                "updated_at",
                "public_url",
                "snapshot_url",
                "parrent_app",
                "apps",
                "status",
                "registrable",
            ]
        );
        assert_eq!(m["url"], "/reports/devices-report");
        assert_eq!(m["public_url"], "/public-reports/devices-report");
        assert_eq!(m["snapshot_url"], "/snapshot-reports/devices-report");
        assert_eq!(m["connected_apps"], json!(["ifmp-service", "odb-service"]));
        assert_eq!(m["flags"], json!(["beta"]));
        assert_eq!(m["registrable"], true);
        assert_eq!(m["status"], json!([]));
        assert_eq!(m["parrent_app"], serde_json::to_value(app()).unwrap());
        assert_eq!(m["apps"], json!([m["parrent_app"]]));
        let embedded = m["report_components"].as_array().unwrap();
        let ids: Vec<&str> = embedded.iter().map(|c| c["component_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["devices_by_os", "devices_overview"]);
        // Position 1 by default, the explicit order otherwise.
        assert_eq!(embedded[0]["order"], 1);
        assert_eq!(embedded[1]["order"], 7);
        assert_eq!(
            embedded[0]["attributes"]["series"][1]["value_description"],
            "Number Of Devices"
        );
        // SDK acceptance case 18: filters are strings, with the SDK defaults.
        assert_eq!(m["filters"][0]["column_type"], "number");
        assert_eq!(m["filters"][0]["visible_name"], "Number Of Devices");
        assert_eq!(m["filters"][0]["allowed_filters"].as_array().unwrap().len(), 5);
        assert_eq!(m["filters"][1]["column_type"], "enum");
        let document = round_trips(&entry);
        assert_eq!(document["parrent_app"]["updated_at"], "2026-01-02T03:04:05.000006");
        assert_eq!(document["apps"][0]["updated_at"], "2026-01-02T03:04:05.000006");
    }

    #[test]
    fn a_component_that_is_not_registrable_is_null_in_its_report() {
        let mut hidden = devices_overview();
        hidden.spec.registrable = false;
        let components = [hidden, devices_by_os()];
        let entry = report_entry(&devices_report(), &components, &app());
        let m = json_of(&entry);
        assert_eq!(m["report_components"][1], Value::Null);
        assert_eq!(m["report_components"][0]["component_id"], "devices_by_os");
        round_trips(&entry);
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
    - {prop: host, distinctKey: host name, foreignKey: host_name}
",
        );
        let entry = datatable_entry(&table, 2);
        assert_eq!(entry.key.to_string(), "datatable/ifmp-service/devices");
        let m = json_of(&entry);
        assert_eq!(
            keys(&m),
            [
                "url",
                "path",
                "type",
                "order",
                "style_attributes",
                "title",
                "component_id",
                "columns",
                "collection",
            ]
        );
        assert_eq!(m["collection"], "Data");
        assert_eq!(m["url"], "/datatables/devices");
        assert_eq!(m["path"], "/datatables/devices");
        assert_eq!(m["type"], "editable_table");
        assert_eq!(m["order"], 2);
        assert_eq!(m["style_attributes"], json!({"width": "full"}));
        let columns = m["columns"].as_array().unwrap();
        assert_eq!(
            keys(columns[1].as_object().unwrap()),
            [
                "name",
                "prop",
                "editable",
                "type",
                "values",
                "required",
                "visible",
                "hashable",
                "entities_url",
                "distinct_key",
                "foreign_key",
            ]
        );
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
        // Python's urlencode: the values are encoded too.
        assert_eq!(
            columns[5]["entities_url"],
            "/datatables/devices?id=%7Bentity_id%7D&distinct_key=host+name&foreign_key=host_name"
        );
        let mut other = table.clone();
        other.spec.component_id = Some("a_first".into());
        let mut foreign = table.clone();
        foreign.spec.component_id = Some("0".into());
        foreign.spec.app_id = "odb-service".into();
        let all = [table.clone(), other.clone(), foreign];
        assert_eq!(datatable_order(&table, &all), 1);
        assert_eq!(datatable_order(&other, &all), 0);
        let document = round_trips(&entry);
        // Data tables have no app_id in the SDK's metadata; the document has.
        assert_eq!(document["app_id"], "ifmp-service");
    }

    #[test]
    fn documents_carry_the_key_and_traceability_fields() {
        let entry = component_entry(&devices_by_os(), &[], &[]);
        let document = entry.document_json("2026-01-02T03:04:05.000006").unwrap();
        assert_eq!(document["_id"], "component/ifmp-service/devices_by_os");
        assert_eq!(document["kind"], "component");
        assert_eq!(document["app_id"], "ifmp-service");
        assert_eq!(document["namespace"], "ifmp");
        assert_eq!(document["resource_name"], "devices-by-os");
        assert_eq!(document["updated_at"], "2026-01-02T03:04:05.000006");
    }

    #[test]
    fn app_has_the_sdk_keys_and_lists_its_members() {
        let members = [
            RegistryKey::new(EntryKind::Report, "ifmp-service", "devices_report"),
            RegistryKey::new(EntryKind::Component, "ifmp-service", "b"),
            RegistryKey::new(EntryKind::Component, "ifmp-service", "a"),
            RegistryKey::new(EntryKind::DataTable, "ifmp-service", "devices"),
        ];
        let entry = app_entry(app(), &members);
        assert_eq!(entry.key.to_string(), "app/ifmp-service/ifmp-service");
        let m = json_of(&entry);
        let mut expected = SDK_APP_KEYS.to_vec();
        expected.extend(["uploaders", "reports", "report_components", "datatables"]);
        assert_eq!(keys(&m), expected);
        assert_eq!(m["name"], "Ifmp Service");
        assert_eq!(m["status"], "available");
        assert_eq!(m["history_report_url"], "/reports/history-report");
        assert_eq!(m["datatables_url"], "/datatables");
        assert_eq!(m["editable_tables_url"], "/datatables");
        for key in ["description", "icon", "flags", "app_meta", "features", "integration_details"] {
            assert_eq!(m[key], Value::Null, "{key}");
        }
        assert_eq!(m["uploaders"], json!([]));
        assert_eq!(m["reports"], json!(["devices_report"]));
        assert_eq!(m["report_components"], json!(["a", "b"]));
        assert_eq!(m["datatables"], json!(["devices"]));
        let document = round_trips(&entry);
        assert_eq!(document["updated_at"], "2026-01-02T03:04:05.000006");
    }
}
