//! A full example of each kind survives deserialize → serialize → deserialize, and the
//! pure helpers give the names the operator uses.

use licenseware_crds::{
    ComponentType, DataTable, DeletionPolicy, Flag, MappingType, Report, ReportComponent, Topic,
    Uploader, duration::DurationError,
};
use serde::{Serialize, de::DeserializeOwned};

/// Parses `yaml`, serializes it back, parses that again: both parses must agree, and
/// the serialized form must hold every field the example wrote (nothing dropped).
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(yaml: &str) -> T {
    let first: T = serde_yaml::from_str(yaml).expect("example parses");
    let json = serde_json::to_value(&first).expect("serializes");
    let second: T = serde_json::from_value(json.clone()).expect("parses again");
    assert_eq!(first, second);

    let written: serde_json::Value = serde_yaml::from_str(yaml).expect("example is YAML");
    assert_contains(&json, &written, "$");
    first
}

/// Every key and value of `expected` is in `actual` (which may have more: defaults).
fn assert_contains(actual: &serde_json::Value, expected: &serde_json::Value, at: &str) {
    use serde_json::Value::*;
    match (actual, expected) {
        (Object(a), Object(e)) => {
            for (k, v) in e {
                let child = a.get(k).unwrap_or_else(|| panic!("{at}.{k} was dropped"));
                assert_contains(child, v, &format!("{at}.{k}"));
            }
        }
        (Array(a), Array(e)) => {
            assert_eq!(a.len(), e.len(), "{at} length");
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                assert_contains(x, y, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

// The SDK's RVTools uploader (acceptance case 7), with its processing and worker.
const RV_TOOLS: &str = r##"
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata:
  name: rv-tools
  namespace: ifmp
  generation: 3
spec:
  appId: ifmp-service
  uploaderId: rv_tools
  name: RVTools
  description: XLSX export from RVTools after scanning your VMware infrastructure.
  acceptedFileTypes: [".xls", ".xlsx"]
  icon: ServersIcon
  flags: [beta]
  freeQuotaUnits: 1
  usedCollections: [Data]
  registrable: true
  validation:
    requiredInputType: excel
    filenameContains: [rv, tools]
    filenameEndswith: [".xls", ".xlsx"]
    requiredSheets:
      - [tabvInfo, tabvCPU, tabvHost, tabvCluster]
      - [vInfo, vCPU, vHost, vCluster]
    requiredColumns:
      - [VM, Host, OS, Sockets, CPUs, Model, CPU Model, Cluster, "# CPU", "# Cores",
         ESX Version, HT Active, Name, NumCpuThreads, NumCpuCores]
    minRowsNumber: 1
    headerStartsAt: 0
    textContainsAll: []
    textContainsAny: []
    ignoreFilenames: []
    buffer: 15000
    filenameValidMessage: File is valid
    filenameIgnoredMessage: File is ignored
    regexEscape: true
    ignoredByUup: false
  encryption:
    filepaths: ["DeviceX", "Device-(\\w+)"]
    filecontent: ["SECRET"]
    columns: [Device, Host]
  processing:
    tables:
      - sheets: [tabvInfo, vInfo]
        headerStartsAt: 0
        collection: Data
        documentType: virtual_machine
        key: [name]
        columns:
          - {from: VM, to: name}
          - {from: CPUs, to: cpus, type: number}
          - {from: Powerstate, to: powered_on, type: bool}
          - {from: "# Cores", to: cores, type: integer}
          - {from: Creation date, to: created_at, type: date}
      - sheets: [tabvHost, vHost]
        collection: Data
        documentType: host
        columns:
          - {from: Host, to: name}
  worker:
    image: ghcr.io/licenseware/rvtools-worker:1.0
    minReplicas: 0
    maxReplicas: 10
    lagPerReplica: 5
    activationLag: 0
    cooldownSeconds: 300
    maxAttempts: 5
    resources:
      requests: {cpu: 100m, memory: 256Mi}
      limits: {memory: 1Gi}
status:
  observedGeneration: 3
  topicName: lw.ifmp-service.rv_tools.events
  dlqTopicName: lw.ifmp-service.rv_tools.dlq
  replicas: 2
  desiredReplicas: 2
  lag: 7
  lastScaleTime: "2026-01-02T03:04:05Z"
  conditions:
    - {type: Ready, status: "True", reason: Reconciled, message: "", observedGeneration: 3,
       lastTransitionTime: "2026-01-02T03:00:00Z"}
    - {type: TopicReady, status: "True", reason: Reconciled, message: "",
       lastTransitionTime: "2026-01-02T03:00:00Z"}
"##;

#[test]
fn rv_tools_uploader() {
    let up: Uploader = round_trip(RV_TOOLS);
    assert_eq!(up.uploader_id(), "rv_tools");
    assert_eq!(up.events_topic_name(), "ifmp-service.rv_tools.events");
    assert_eq!(up.dlq_topic_name(), "ifmp-service.rv_tools.dlq");
    assert_eq!(up.spec.flags, vec![Flag::Beta]);
    let sheets = up.spec.validation.required_sheets.as_ref().unwrap();
    assert_eq!(sheets.len(), 2);
    assert_eq!(sheets[1], ["vInfo", "vCPU", "vHost", "vCluster"]);
    assert_eq!(up.spec.validation.required_columns.as_ref().unwrap()[0].len(), 15);
    assert_eq!(up.spec.encryption.filepaths[1], r"Device-(\w+)");
    let table = &up.spec.processing.tables[0];
    assert_eq!(table.columns[1].value_type, MappingType::Number);
    assert_eq!(table.columns[3].value_type, MappingType::Integer);
    let status = up.status.unwrap();
    assert_eq!(status.lag, Some(7));
    assert_eq!(status.conditions.len(), 2);
}

#[test]
fn uploader_id_from_the_name() {
    let mut up: Uploader = serde_yaml::from_str(RV_TOOLS).unwrap();
    up.spec.uploader_id = None;
    up.metadata.name = Some("lms-options-ora".into());
    assert_eq!(up.uploader_id(), "lms_options_ora");
    assert_eq!(up.events_topic_name(), "ifmp-service.lms_options_ora.events");
}

#[test]
fn full_report() {
    let report: Report = round_trip(
        r"
apiVersion: licenseware.io/v1alpha1
kind: Report
metadata: {name: virtualization-details, namespace: ifmp}
spec:
  reportId: virtualization_details
  appId: ifmp-service
  name: Virtualization Details
  description: Overview of your virtual machines and hosts.
  connectedApps: [odb-service, ifmp-service]
  components: [virtual_overview, devices_by_os]
  filters:
    - {column: result, allowedValues: [Verified, Used, Licensed]}
    - column: total_number_of_cores
      columnType: string
      allowedFilters: [equals, contains, in_list]
      visibleName: Total Number Of Cores
    - {column: number_of_devices}
  flags: [soon, partner_app]
  registrable: false
status:
  observedGeneration: 1
  conditions:
    - {type: Registered, status: 'False', reason: NotRegistrable, message: registrable is false,
       lastTransitionTime: '2026-01-02T03:00:00Z'}
",
    );
    assert_eq!(report.report_id(), "virtualization_details");
    // The report's own app first, no duplicates (SDK).
    assert_eq!(report.connected_apps(), vec!["ifmp-service", "odb-service"]);
    assert_eq!(report.spec.flags, vec![Flag::Soon, Flag::PartnerApp]);
}

#[test]
fn full_report_component() {
    let rc: ReportComponent = round_trip(
        r#"
apiVersion: licenseware.io/v1alpha1
kind: ReportComponent
metadata: {name: devices-by-os, namespace: ifmp}
spec:
  componentId: devices_by_os
  appId: ifmp-service
  title: Devices by operating system
  description: How many virtual machines run each operating system.
  type: pie
  attributes:
    series:
      - {label_key: os, label_description: Operating System}
      - {value_key: count, value_description: Count}
  style: {width: "1/2", height: full}
  order: 2
  filters:
    - {column: os, columnType: enum, allowedValues: [linux, windows]}
  registrable: true
  data:
    collection: Data
    pipeline:
      - {$match: {document_type: virtual_machine}}
      - {$group: {_id: "$os", count: {$sum: 1}}}
      - {$project: {_id: 0, os: "$_id", count: 1}}
    cacheTtlSeconds: 60
"#,
    );
    assert_eq!(rc.component_id(), "devices_by_os");
    assert_eq!(rc.spec.component_type, ComponentType::Pie);
    assert_eq!(rc.spec.data.pipeline.len(), 3);
    assert!(rc.spec.data.check_pipeline().is_ok());
}

#[test]
fn full_data_table() {
    let dt: DataTable = round_trip(
        r"
apiVersion: licenseware.io/v1alpha1
kind: DataTable
metadata: {name: devices, namespace: ifmp}
spec:
  componentId: devices
  appId: ifmp-service
  title: Devices
  collection: Data
  columns:
    - {prop: _id}
    - {prop: tenant_id}
    - {prop: device_name, name: Device, required: true}
    - {prop: number_of_cores, type: number}
    - {prop: os, values: [linux, windows], editable: false}
    - {prop: host, distinctKey: name, foreignKey: host_name, hashable: false}
    - {prop: details, type: json, visible: false}
    - {prop: updated_at, type: date}
  registrable: true
",
    );
    assert_eq!(dt.spec.columns.len(), 8);
    let tenant = dt.spec.columns[1].resolve();
    assert!(!tenant.editable && !tenant.visible && tenant.required);
}

const TOPIC: &str = r#"
apiVersion: licenseware.io/v1alpha1
kind: Topic
metadata: {name: processing-events, namespace: ifmp}
spec:
  topicName: ifmp-service.rv_tools.events
  partitions: 6
  replicationFactor: 3
  config: {cleanup.policy: delete, min.insync.replicas: "2"}
  retention: 7d
  schema:
    id: ProcessingEvent
    version: 1
    jsonSchema:
      type: object
      required: [tenant_id, uploader_id, filepaths, event_id, app_id]
      properties:
        tenant_id: {type: string}
        filepaths: {type: array, items: {type: string}}
        clear_data: {type: boolean}
  deletionPolicy: Delete
status:
  observedGeneration: 1
  topicName: lw.ifmp-service.rv_tools.events
  topicId: 3Ni6cNjRQ2SLaPiZ2b1BLw
  partitions: 6
  replicationFactor: 1
  conditions:
    - {type: Ready, status: "False", reason: KafkaError, message: "replication factor: 3 larger than available brokers: 1",
       lastTransitionTime: "2026-01-02T03:00:00Z"}
"#;

#[test]
fn full_topic() {
    let topic: Topic = round_trip(TOPIC);
    assert_eq!(topic.topic_name(), "ifmp-service.rv_tools.events");
    assert_eq!(topic.spec.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(topic.spec.schema.as_ref().unwrap().envelope_name(), "ProcessingEvent:1");
    assert_eq!(topic.retention_ms(), Ok(Some(604_800_000)));
    let config = topic.kafka_config().unwrap();
    assert_eq!(config["retention.ms"], "604800000");
    assert_eq!(config["cleanup.policy"], "delete");
    assert_eq!(config["min.insync.replicas"], "2");
    assert_eq!(topic.replication_factor(1), 3, "the spec wins over the broker count");
}

#[test]
fn topic_name_defaults_to_metadata_name() {
    let mut topic: Topic = serde_yaml::from_str(TOPIC).unwrap();
    topic.spec.topic_name = None;
    assert_eq!(topic.topic_name(), "processing-events");
}

#[test]
fn bad_retention_is_a_clear_error() {
    let mut topic: Topic = serde_yaml::from_str(TOPIC).unwrap();
    topic.spec.retention = Some("7 days".into());
    let err = topic.kafka_config().unwrap_err();
    assert_eq!(err, DurationError::UnknownUnit("7 days".into()));
    assert!(err.to_string().contains("(ms, s, m, h, d or w)"), "{err}");
    topic.spec.retention = None;
    assert_eq!(topic.retention_ms(), Ok(None));
    assert!(!topic.kafka_config().unwrap().contains_key("retention.ms"));
}
