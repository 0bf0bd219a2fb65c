//! The registry controllers (Report, ReportComponent, DataTable) against the real
//! stack: each test runs its own operator in-process, watching a fresh namespace, with
//! a unique topic prefix and registry database, and reads the registry back from
//! MongoDB and from the compacted Kafka topic.

use std::{collections::BTreeMap, ops::Deref, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::serde::{Serialize, de::DeserializeOwned};
use kube::{Resource, ResourceExt};
use licenseware_e2e::{
    OperatorUnderTest, Options, eventually,
    kube::{Conditioned, Expected, create_custom, delete_and_wait, merge_patch, wait_condition},
    unique_name,
};
use licenseware_operator::crds::{DataTable, RegistryRecord, Report, ReportComponent};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "ifmp-service";
const FINALIZER: &str = "licenseware.io/registry";

/// One operator, one namespace, one topic prefix, one registry database.
struct Harness(OperatorUnderTest);

impl Deref for Harness {
    type Target = OperatorUnderTest;

    fn deref(&self) -> &OperatorUnderTest {
        &self.0
    }
}

/// The kinds of the registry controllers.
trait Kind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Conditioned
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Serialize
        + Conditioned
{
}

impl Harness {
    async fn start(resync_interval_secs: u64) -> Self {
        let options =
            Options::new("registry").resync_interval_secs(resync_interval_secs).own_registry();
        Self(OperatorUnderTest::start(options).await)
    }

    /// The registry topic's name.
    fn topic(&self) -> String {
        format!("{}licenseware.registry", self.prefix)
    }

    async fn create<K: Kind>(&self, kind: &str, manifest: Value) -> K {
        create_custom(&self.api::<K>(), kind, manifest).await
    }

    /// Waits for condition `type_` of `name` to have `status` and `reason` for the
    /// latest generation.
    async fn condition<K: Kind>(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> Condition {
        wait_condition(&self.api::<K>(), name, Expected::new(type_, status, reason), WAIT).await
    }

    async fn ready<K: Kind>(&self, name: &str) -> Condition {
        self.condition::<K>(name, "Ready", "True", "Reconciled").await
    }

    async fn delete<K: Kind>(&self, name: &str) {
        delete_and_wait(&self.api::<K>(), name, WAIT).await;
    }

    /// The registry document with this `_id`, as JSON.
    async fn document(&self, key: &str) -> Option<serde_json::Map<String, Value>> {
        self.registry().document(key).await
    }

    async fn wait_document(&self, key: &str) -> serde_json::Map<String, Value> {
        self.registry().wait_document(key, WAIT).await
    }

    async fn wait_no_document(&self, key: &str) {
        self.registry().wait_no_document(key, WAIT).await;
    }

    async fn keys(&self) -> Vec<String> {
        self.registry().keys().await
    }

    /// A consumer of the registry topic from its first offset.
    fn follow(&self) -> RegistryTopic {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.brokers())
            .set("group.id", unique_name("registry-reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition_offset(&self.topic(), 0, Offset::Beginning).expect("partition");
        consumer.assign(&partitions).expect("assign");
        RegistryTopic { consumer, latest: BTreeMap::new() }
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

/// The last record of every key seen on the registry topic; `None` is a tombstone.
struct RegistryTopic {
    consumer: StreamConsumer,
    latest: BTreeMap<String, Option<Value>>,
}

impl RegistryTopic {
    /// Reads records until `done` holds for what was read.
    async fn until(&mut self, what: &str, done: impl Fn(&BTreeMap<String, Option<Value>>) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.latest) {
            let message = tokio::time::timeout_at(deadline, self.consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; read {:?}", self.latest))
                .expect("consume");
            let key = String::from_utf8(message.key().expect("a key").to_vec()).expect("utf-8");
            let payload =
                message.payload().map(|p| serde_json::from_slice(p).expect("JSON payload"));
            self.latest.insert(key, payload);
        }
    }
}

fn devices_by_os() -> Value {
    json!({
        "metadata": {"name": "devices-by-os"},
        "spec": {
            "appId": APP,
            "title": "Devices by operating system",
            "type": "pie",
            "attributes": {"series": [
                {"label_key": "os", "label_description": "Operating System"},
                {"value_key": "count", "value_description": "Count"}
            ]},
            "style": {"width": "1/2"},
            "filters": [{"column": "os", "allowedValues": ["linux", "windows"]}],
            "data": {"pipeline": [
                {"$match": {"document_type": "virtual_machine"}},
                {"$group": {"_id": "$os", "count": {"$sum": 1}}}
            ]}
        }
    })
}

fn devices_overview() -> Value {
    json!({
        "metadata": {"name": "devices-overview"},
        "spec": {
            "appId": APP,
            "title": "Overview",
            "description": "Devices at a glance.",
            "type": "summary",
            "attributes": {"series": [
                {"value_key": "number_of_devices", "value_description": "Devices", "icon": "ServersIcon"},
                {"value_key": "number_of_cpus", "extra": "dropped"}
            ]},
            "data": {"pipeline": [{"$count": "number_of_devices"}]}
        }
    })
}

fn devices_report(components: &[&str]) -> Value {
    json!({
        "metadata": {"name": "devices-report"},
        "spec": {
            "appId": APP,
            "name": "Devices",
            "description": "Your devices and their operating systems.",
            "connectedApps": ["odb-service"],
            "components": components,
            "filters": [{"column": "number_of_devices"}, {"column": "device_name"}],
            "flags": ["beta"]
        }
    })
}

fn devices_table() -> Value {
    json!({
        "metadata": {"name": "devices"},
        "spec": {
            "appId": APP,
            "title": "Devices",
            "columns": [
                {"prop": "_id"},
                {"prop": "tenant_id"},
                {"prop": "device_name", "name": "Device", "required": true},
                {"prop": "number_of_cores"},
                {"prop": "os", "values": ["linux", "windows"]},
                {"prop": "host", "distinctKey": "host name", "foreignKey": "host_name"}
            ]
        }
    })
}

fn sorted_keys(document: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = document.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn with_trace_fields(sdk_keys: &[&'static str]) -> Vec<&'static str> {
    let mut keys = sdk_keys.to_vec();
    for extra in ["_id", "kind", "app_id", "namespace", "resource_name", "updated_at"] {
        if !keys.contains(&extra) {
            keys.push(extra);
        }
    }
    keys.sort_unstable();
    keys
}

const REPORT_KEY: &str = "report/ifmp-service/devices_report";
const BY_OS_KEY: &str = "component/ifmp-service/devices_by_os";
const OVERVIEW_KEY: &str = "component/ifmp-service/devices_overview";
const TABLE_KEY: &str = "datatable/ifmp-service/devices";
const APP_KEY: &str = "app/ifmp-service/ifmp-service";

#[tokio::test]
async fn devices_report_components_and_table_are_registered_published_and_removed() {
    let h = Harness::start(120).await;
    h.create::<ReportComponent>("ReportComponent", devices_by_os()).await;
    h.create::<ReportComponent>("ReportComponent", devices_overview()).await;
    h.create::<Report>("Report", devices_report(&["devices_by_os", "devices_overview"])).await;
    h.create::<DataTable>("DataTable", devices_table()).await;
    for name in ["devices-by-os", "devices-overview"] {
        h.ready::<ReportComponent>(name).await;
        h.condition::<ReportComponent>(name, "Registered", "True", "Reconciled").await;
    }
    h.ready::<Report>("devices-report").await;
    h.ready::<DataTable>("devices").await;

    // MongoDB: one document per resource, in the SDK's shapes.
    let report = h.wait_document(REPORT_KEY).await;
    assert_eq!(
        sorted_keys(&report),
        with_trace_fields(&[
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
        ])
    );
    assert_eq!(report["url"], "/reports/devices-report");
    assert_eq!(report["public_url"], "/public-reports/devices-report");
    assert_eq!(report["snapshot_url"], "/snapshot-reports/devices-report");
    assert_eq!(report["connected_apps"], json!([APP, "odb-service"]));
    assert_eq!(report["flags"], json!(["beta"]));
    assert_eq!(report["namespace"], json!(h.namespace));
    assert_eq!(report["resource_name"], "devices-report");
    assert_eq!(report["kind"], "report");
    let embedded = report["report_components"].as_array().expect("components");
    let embedded: Vec<(&str, i64)> = embedded
        .iter()
        .map(|c| (c["component_id"].as_str().expect("id"), c["order"].as_i64().expect("order")))
        .collect();
    assert_eq!(embedded, [("devices_by_os", 1), ("devices_overview", 2)]);
    assert_eq!(report["filters"][0]["column_type"], "number");
    assert_eq!(report["filters"][1]["allowed_filters"], json!(["equals", "contains"]));
    assert_eq!(report["status"], json!([]));
    assert_eq!(report["parrent_app"]["name"], "Ifmp Service");
    assert_eq!(report["parrent_app"]["updated_at"], report["updated_at"]);
    assert_eq!(report["apps"], json!([report["parrent_app"]]));
    let updated_at = report["updated_at"].as_str().expect("updated_at").to_owned();
    assert_eq!(updated_at.len(), "2026-01-02T03:04:05.123456".len(), "{updated_at}");

    // The component's order comes from the report, once that is reconciled.
    eventually(WAIT, "the components to take their order from the report", || async {
        let by_os = h.document(BY_OS_KEY).await?;
        let overview = h.document(OVERVIEW_KEY).await?;
        (by_os["order"] == 1 && overview["order"] == 2).then_some(())
    })
    .await;
    let component = h.wait_document(BY_OS_KEY).await;
    assert_eq!(
        sorted_keys(&component),
        with_trace_fields(&[
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
        ])
    );
    assert_eq!(component["url"], "/report-components/devices-by-os");
    assert_eq!(component["public_url"], "/public-report-components/devices-by-os");
    assert_eq!(component["snapshot_url"], "/snapshot-report-components/devices-by-os");
    assert_eq!(component["type"], "pie");
    assert_eq!(component["filters"][0]["column_type"], "enum");
    // An empty description stays "", the order is the position in the attaching report,
    // and the attributes have the SDK builder's shape (unknown keys dropped).
    assert_eq!(component["description"], "");
    assert_eq!(component["order"], 1);
    assert_eq!(
        component["attributes"],
        json!({"series": [
            {"label_key": "os", "label_description": "Operating System"},
            {"value_key": "count", "value_description": "Count"}
        ]})
    );
    let overview = h.wait_document(OVERVIEW_KEY).await;
    assert_eq!(overview["order"], 2);
    assert_eq!(overview["attributes"]["series"][0]["icon"], "ServersIcon");
    assert_eq!(overview["attributes"]["series"][1]["value_description"], "Number Of Cpus");
    assert_eq!(overview["attributes"]["series"][1]["icon"], Value::Null);

    let table = h.wait_document(TABLE_KEY).await;
    assert_eq!(
        sorted_keys(&table),
        with_trace_fields(&[
            "url",
            "path",
            "type",
            "order",
            "style_attributes",
            "title",
            // Where the API reads and edits the table's rows (not in the SDK's shape).
            "collection",
            "component_id",
            "columns",
        ])
    );
    assert_eq!(table["path"], "/datatables/devices");
    assert_eq!(table["type"], "editable_table");
    assert_eq!(table["order"], 0);
    assert_eq!(table["style_attributes"], json!({"width": "full"}));
    let columns = table["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), 6);
    assert_eq!(columns[1]["prop"], "tenant_id");
    assert_eq!(columns[1]["editable"], false);
    assert_eq!(columns[1]["visible"], false);
    assert_eq!(columns[1]["required"], true);
    assert_eq!(columns[3]["type"], "number");
    assert_eq!(columns[5]["type"], "entity");
    assert_eq!(
        columns[5]["entities_url"],
        "/datatables/devices?id=%7Bentity_id%7D&distinct_key=host+name&foreign_key=host_name"
    );

    let app = h.wait_document(APP_KEY).await;
    assert_eq!(app["name"], "Ifmp Service");
    assert_eq!(app["status"], "available");
    for key in ["description", "icon", "flags", "app_meta", "features", "integration_details"] {
        assert_eq!(app.get(key), Some(&Value::Null), "{key}");
    }
    assert_eq!(app["reports"], json!(["devices_report"]));
    assert_eq!(app["report_components"], json!(["devices_by_os", "devices_overview"]));
    assert_eq!(app["datatables"], json!(["devices"]));
    let mut expected = [APP_KEY, BY_OS_KEY, OVERVIEW_KEY, TABLE_KEY, REPORT_KEY].map(str::to_owned);
    expected.sort();
    assert_eq!(h.keys().await, expected);

    // Kafka: the same documents on the compacted topic, keyed by kind/appId/id.
    let mut topic = h.follow();
    topic
        .until("every entry on the registry topic", |latest| {
            [REPORT_KEY, BY_OS_KEY, OVERVIEW_KEY, TABLE_KEY, APP_KEY]
                .iter()
                .all(|k| latest.get(*k).is_some_and(Option::is_some))
        })
        .await;
    // Every published document reads as the typed document the API uses, and the topic
    // comes to hold what MongoDB holds.
    let mut stored = BTreeMap::new();
    for key in [REPORT_KEY, BY_OS_KEY, OVERVIEW_KEY, TABLE_KEY] {
        stored.insert(key, h.registry().typed_document(key).await.expect("stored"));
    }
    topic
        .until("the topic to hold MongoDB's documents", |latest| {
            stored.iter().all(|(key, document)| {
                let Some(Some(value)) = latest.get(*key) else { return false };
                let bytes = serde_json::to_vec(value).expect("JSON");
                match RegistryRecord::parse(key, Some(&bytes)) {
                    Ok(RegistryRecord::Document(published)) => *published == *document,
                    other => panic!("{key}: {other:?}"),
                }
            })
        })
        .await;
    let published = topic.latest[REPORT_KEY].clone().expect("payload");
    assert_eq!(published["_id"], REPORT_KEY);
    assert_eq!(published["report_components"], report["report_components"]);
    assert_eq!(published["updated_at"], json!(updated_at));

    // A change of `data` alone reaches the component's own document (the API runs its
    // `data`) and leaves the report's embedded copy, which has the SDK's shape, as it is.
    merge_patch(
        &h.api::<ReportComponent>(),
        "devices-by-os",
        json!({"spec": {"data": {"cacheTtlSeconds": 30}}}),
    )
    .await;
    let ready = h.ready::<ReportComponent>("devices-by-os").await;
    assert_eq!(ready.observed_generation, Some(2));
    assert_eq!(h.wait_document(BY_OS_KEY).await["data"]["cacheTtlSeconds"], 30);
    assert_eq!(h.wait_document(REPORT_KEY).await["updated_at"], json!(updated_at));

    // A component title change reaches the report's embedded copy.
    merge_patch(
        &h.api::<ReportComponent>(),
        "devices-overview",
        json!({"spec": {"title": "At a glance"}}),
    )
    .await;
    eventually(WAIT, "the report to embed the new title", || async {
        let report = h.document(REPORT_KEY).await?;
        (report["report_components"][1]["title"] == "At a glance").then_some(())
    })
    .await;

    // Deletion: documents go, tombstones follow; the app goes with its last entry.
    h.delete::<Report>("devices-report").await;
    h.wait_no_document(REPORT_KEY).await;
    topic.until("the report's tombstone", |latest| latest.get(REPORT_KEY) == Some(&None)).await;
    h.delete::<ReportComponent>("devices-by-os").await;
    h.delete::<ReportComponent>("devices-overview").await;
    h.delete::<DataTable>("devices").await;
    h.wait_no_document(APP_KEY).await;
    assert!(h.keys().await.is_empty(), "{:?}", h.keys().await);
    topic
        .until("tombstones for every entry", |latest| {
            [REPORT_KEY, BY_OS_KEY, OVERVIEW_KEY, TABLE_KEY, APP_KEY]
                .iter()
                .all(|k| latest.get(*k) == Some(&None))
        })
        .await;
    h.stop().await;
}

#[tokio::test]
async fn invalid_component_and_missing_component_keep_entries_out() {
    let h = Harness::start(120).await;

    // A pipeline stage outside the allowlist (this one reads another collection) makes
    // the component invalid; the message gives its path.
    let mut lookup = devices_by_os();
    lookup["spec"]["data"]["pipeline"] = json!([
        {"$match": {"document_type": "virtual_machine"}},
        {"$facet": {"hosts": [{"$lookup": {"from": "Quota", "localField": "a", "foreignField": "b", "as": "c"}}]}}
    ]);
    h.create::<ReportComponent>("ReportComponent", lookup).await;
    let invalid = h
        .condition::<ReportComponent>("devices-by-os", "Ready", "False", "PipelineNotAllowed")
        .await;
    assert!(
        invalid.message.starts_with("data.pipeline[1].$facet.hosts[0].$lookup: stage $lookup"),
        "{}",
        invalid.message
    );
    h.condition::<ReportComponent>("devices-by-os", "Registered", "False", "PipelineNotAllowed")
        .await;
    assert!(h.document(BY_OS_KEY).await.is_none());

    // A report listing a component that does not exist waits for it.
    h.create::<Report>("Report", devices_report(&["devices_overview"])).await;
    let missing =
        h.condition::<Report>("devices-report", "Ready", "False", "ComponentNotFound").await;
    assert!(missing.message.contains("devices_overview"), "{}", missing.message);
    assert!(h.document(REPORT_KEY).await.is_none());
    h.create::<ReportComponent>("ReportComponent", devices_overview()).await;
    h.ready::<Report>("devices-report").await;
    h.wait_document(REPORT_KEY).await;

    // registrable: false removes the entry and is Ready.
    merge_patch(&h.api::<Report>(), "devices-report", json!({"spec": {"registrable": false}}))
        .await;
    h.condition::<Report>("devices-report", "Ready", "True", "NotRegistrable").await;
    h.wait_no_document(REPORT_KEY).await;
    // With nothing left outside Kubernetes, the finalizer goes too.
    eventually(WAIT, "the finalizer of a report no longer registrable to go", || async {
        let report = h.api::<Report>().get("devices-report").await.ok()?;
        (!report.finalizers().iter().any(|f| f == FINALIZER)).then_some(())
    })
    .await;
    // A report that is not registrable from the start never gets one.
    let mut hidden = devices_report(&["devices_overview"]);
    hidden["metadata"]["name"] = json!("hidden-report");
    hidden["spec"]["registrable"] = json!(false);
    h.create::<Report>("Report", hidden).await;
    h.condition::<Report>("hidden-report", "Ready", "True", "NotRegistrable").await;
    let hidden = h.api::<Report>().get("hidden-report").await.expect("get");
    assert!(hidden.finalizers().is_empty(), "{:?}", hidden.finalizers());

    // Fixing the pipeline registers the component.
    merge_patch(
        &h.api::<ReportComponent>(),
        "devices-by-os",
        json!({"spec": {"data": {"pipeline": [{"$group": {"_id": "$os"}}]}}}),
    )
    .await;
    h.ready::<ReportComponent>("devices-by-os").await;
    h.wait_document(BY_OS_KEY).await;
    h.stop().await;
}

#[tokio::test]
async fn a_changed_component_id_moves_the_entry_and_the_app_document_follows() {
    let h = Harness::start(120).await;
    h.create::<ReportComponent>("ReportComponent", devices_overview()).await;
    h.create::<ReportComponent>("ReportComponent", devices_by_os()).await;
    h.ready::<ReportComponent>("devices-overview").await;
    h.ready::<ReportComponent>("devices-by-os").await;
    h.wait_document(OVERVIEW_KEY).await;

    // The same resource under a new id: the old entry goes, the app lists the new one.
    merge_patch(
        &h.api::<ReportComponent>(),
        "devices-overview",
        json!({"spec": {"componentId": "fleet_overview"}}),
    )
    .await;
    h.ready::<ReportComponent>("devices-overview").await;
    let moved = "component/ifmp-service/fleet_overview";
    h.wait_document(moved).await;
    h.wait_no_document(OVERVIEW_KEY).await;
    eventually(WAIT, "the app document lists the new id", || async {
        let app = h.document(APP_KEY).await?;
        (app["report_components"] == json!(["devices_by_os", "fleet_overview"])).then_some(())
    })
    .await;
    let mut expected = [APP_KEY, BY_OS_KEY, moved].map(str::to_owned);
    expected.sort();
    assert_eq!(h.keys().await, expected);
    h.stop().await;
}
