//! A minimal manifest of each kind gets every SDK default, both when the worker or
//! operator deserializes it and in the schema the apiserver defaults from.

use licenseware_crds::{
    ColumnType, DataTable, DeletionPolicy, MappingType, Report, ReportComponent, Topic, Uploader,
    generate::crds,
};
use serde_json::{Value, json};

fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).expect("valid manifest")
}

const MINIMAL_UPLOADER: &str = r#"
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata:
  name: rv-tools
  namespace: apps
spec:
  appId: ifmp-service
  name: RVTools
  acceptedFileTypes: [".xls", ".xlsx"]
"#;

#[test]
fn uploader_defaults_are_the_sdk_defaults() {
    let up: Uploader = from_yaml(MINIMAL_UPLOADER);
    let spec = &up.spec;
    assert_eq!(up.uploader_id(), "rv_tools");
    assert_eq!(spec.description, "");
    assert_eq!(spec.icon, None);
    assert!(spec.flags.is_empty());
    assert_eq!(spec.free_quota_units, 1);
    assert_eq!(spec.used_collections, vec!["Data"]);
    assert!(spec.registrable);

    let v = &spec.validation;
    assert_eq!(v.required_input_type, None);
    assert_eq!(v.filename_contains, None);
    assert_eq!(v.filename_endswith, None);
    assert_eq!(v.required_sheets, None);
    assert_eq!(v.required_columns, None);
    assert_eq!(v.min_rows_number, 0);
    assert_eq!(v.header_starts_at, 0);
    assert_eq!(v.text_contains_all, None);
    assert_eq!(v.text_contains_any, None);
    assert_eq!(v.ignore_filenames, None);
    assert_eq!(v.buffer, 15000);
    assert_eq!(v.filename_valid_message, "File is valid");
    assert_eq!(v.filename_ignored_message, "File is ignored");
    assert!(v.regex_escape);
    assert!(!v.ignored_by_uup);

    assert!(spec.encryption.filepaths.is_empty());
    assert!(spec.encryption.filecontent.is_empty());
    assert!(spec.encryption.columns.is_empty());
    assert!(spec.processing.tables.is_empty());

    let w = &spec.worker;
    assert_eq!(w.image, "");
    assert_eq!(w.min_replicas, 0);
    assert_eq!(w.max_replicas, 10);
    assert_eq!(w.lag_per_replica, 5);
    assert_eq!(w.activation_lag, 0);
    assert_eq!(w.cooldown_seconds, 300);
    assert_eq!(w.max_attempts, 5);
    assert_eq!(w.resources, None);
    assert_eq!(up.status, None);
}

#[test]
fn an_empty_block_gets_the_same_defaults_as_a_missing_one() {
    let with_blocks = MINIMAL_UPLOADER.to_owned()
        + "  validation: {}\n  encryption: {}\n  processing: {}\n  worker: {}\n";
    let a: Uploader = from_yaml(MINIMAL_UPLOADER);
    let b: Uploader = from_yaml(&with_blocks);
    assert_eq!(a, b);
    // Default blocks are left out when serializing, so a rendered spec stays small.
    let rendered = serde_json::to_value(&b.spec).unwrap();
    for block in ["validation", "encryption", "processing", "worker"] {
        assert!(rendered.get(block).is_none(), "{block} should be left out");
    }
}

#[test]
fn processing_table_defaults() {
    let up: Uploader = from_yaml(
        &(MINIMAL_UPLOADER.to_owned()
            + "  processing:\n    tables:\n      - columns: [{from: VM, to: name}]\n"),
    );
    let table = &up.spec.processing.tables[0];
    assert_eq!(table.sheets, None);
    assert_eq!(table.header_starts_at, 0);
    assert_eq!(table.collection, "Data");
    assert_eq!(table.document_type, None);
    assert!(table.key.is_empty());
    assert_eq!(table.columns[0].value_type, MappingType::String);
}

#[test]
fn report_defaults() {
    let report: Report = from_yaml(
        r"
metadata: {name: cpuq-report}
spec: {appId: ifmp-service, name: CPUQ}
",
    );
    assert_eq!(report.report_id(), "cpuq_report");
    assert_eq!(report.spec.description, "");
    assert!(report.spec.components.is_empty());
    assert!(report.spec.filters.is_empty());
    assert!(report.spec.flags.is_empty());
    assert!(report.spec.registrable);
    // The SDK's connected_apps default: the report's own app.
    assert_eq!(report.connected_apps(), vec!["ifmp-service"]);
}

#[test]
fn report_component_defaults() {
    let rc: ReportComponent = from_yaml(
        r"
metadata: {name: virtual-overview}
spec:
  appId: ifmp-service
  title: Overview
  type: summary
  attributes: {series: []}
",
    );
    assert_eq!(rc.component_id(), "virtual_overview");
    assert_eq!(rc.spec.description, "");
    assert!(rc.spec.style.is_empty());
    assert_eq!(rc.spec.order, None);
    assert!(rc.spec.filters.is_empty());
    assert!(rc.spec.registrable);
    assert_eq!(rc.spec.data.collection, "Data");
    assert!(rc.spec.data.pipeline.is_empty());
    assert_eq!(rc.spec.data.cache_ttl_seconds, 300);
}

#[test]
fn data_table_defaults() {
    let dt: DataTable = from_yaml(
        r"
metadata: {name: devices}
spec:
  appId: ifmp-service
  title: Devices
  columns: [{prop: device_name}]
",
    );
    assert_eq!(dt.component_id(), "devices");
    assert_eq!(dt.spec.collection, "Data");
    assert!(dt.spec.registrable);
    let c = &dt.spec.columns[0];
    assert_eq!(c.name, None);
    assert_eq!(c.column_type, None);
    assert!(c.editable && c.visible && c.hashable && !c.required);
    let resolved = c.resolve();
    assert_eq!(resolved.name, "Device Name");
    assert_eq!(resolved.column_type, ColumnType::String);
}

#[test]
fn topic_defaults() {
    let topic: Topic = from_yaml("metadata: {name: app-events}\nspec: {}\n");
    assert_eq!(topic.topic_name(), "app-events");
    assert_eq!(topic.spec.partitions, 1);
    assert_eq!(topic.spec.replication_factor, None);
    assert!(topic.spec.config.is_empty());
    assert_eq!(topic.spec.retention, None);
    assert_eq!(topic.spec.schema, None);
    assert_eq!(topic.spec.deletion_policy, DeletionPolicy::Retain);
    // min(3, brokers), at least 1.
    assert_eq!(topic.replication_factor(1), 1);
    assert_eq!(topic.replication_factor(2), 2);
    assert_eq!(topic.replication_factor(5), 3);
    assert_eq!(topic.replication_factor(0), 1);
}

/// The `default` the apiserver applies at `path` (property names) in a kind's spec.
fn schema_default(kind: &str, path: &[&str]) -> Option<Value> {
    let crd = crds().into_iter().find(|c| c.spec.names.kind == kind).expect("kind");
    let mut node = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema to JSON")
        ["openAPIV3Schema"]["properties"]["spec"]
        .clone();
    for name in path {
        // Step through a list to the schema of its items.
        if node.get("items").is_some() {
            node = node["items"].clone();
        }
        node = node["properties"][name].clone();
    }
    node.get("default").cloned()
}

#[test]
fn the_schema_carries_the_same_defaults() {
    let cases: &[(&str, &[&str], Value)] = &[
        ("Uploader", &["freeQuotaUnits"], json!(1)),
        ("Uploader", &["usedCollections"], json!(["Data"])),
        ("Uploader", &["registrable"], json!(true)),
        ("Uploader", &["validation", "buffer"], json!(15000)),
        ("Uploader", &["validation", "minRowsNumber"], json!(0)),
        ("Uploader", &["validation", "headerStartsAt"], json!(0)),
        ("Uploader", &["validation", "filenameValidMessage"], json!("File is valid")),
        ("Uploader", &["validation", "filenameIgnoredMessage"], json!("File is ignored")),
        ("Uploader", &["validation", "regexEscape"], json!(true)),
        ("Uploader", &["validation", "ignoredByUup"], json!(false)),
        ("Uploader", &["worker", "minReplicas"], json!(0)),
        ("Uploader", &["worker", "maxReplicas"], json!(10)),
        ("Uploader", &["worker", "lagPerReplica"], json!(5)),
        ("Uploader", &["worker", "activationLag"], json!(0)),
        ("Uploader", &["worker", "cooldownSeconds"], json!(300)),
        ("Uploader", &["worker", "maxAttempts"], json!(5)),
        ("Uploader", &["processing", "tables", "collection"], json!("Data")),
        ("Uploader", &["processing", "tables", "columns", "type"], json!("string")),
        ("Report", &["registrable"], json!(true)),
        ("ReportComponent", &["data", "collection"], json!("Data")),
        ("ReportComponent", &["data", "cacheTtlSeconds"], json!(300)),
        ("DataTable", &["collection"], json!("Data")),
        ("DataTable", &["columns", "editable"], json!(true)),
        ("DataTable", &["columns", "visible"], json!(true)),
        ("DataTable", &["columns", "hashable"], json!(true)),
        ("DataTable", &["columns", "required"], json!(false)),
        ("Topic", &["partitions"], json!(1)),
        ("Topic", &["deletionPolicy"], json!("Retain")),
    ];
    for (kind, path, expected) in cases {
        assert_eq!(schema_default(kind, path).as_ref(), Some(expected), "{kind} {path:?}");
    }
    // Optional blocks and values the operator computes have no schema default.
    for (kind, path) in [
        ("Uploader", &["validation"][..]),
        ("Uploader", &["worker"]),
        ("Uploader", &["uploaderId"]),
        ("Uploader", &["flags"]),
        ("Topic", &["topicName"]),
        ("Topic", &["replicationFactor"]),
    ] {
        assert_eq!(schema_default(kind, path), None, "{kind} {path:?}");
    }
}
