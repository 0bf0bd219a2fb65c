//! The registry controllers (Report, ReportComponent, DataTable) against the real
//! stack: each test runs its own operator in-process, watching a fresh namespace, with
//! a unique topic prefix and registry database, and reads the registry back from
//! MongoDB and from the compacted Kafka topic.

use std::{collections::BTreeMap, time::Duration};

use futures::TryStreamExt;
use k8s_openapi::serde::{Serialize, de::DeserializeOwned};
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use licenseware_e2e::{Stack, eventually, unique_name};
use licenseware_operator::{
    config::{Config, LeaderConfig, LogFormat},
    crds::{DataTable, RegistrationStatus, Report, ReportComponent, generate::crds},
};
use mongodb::bson::{Bson, Document, doc};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "ifmp-service";

/// One operator, one namespace, one topic prefix, one registry database.
struct Harness {
    client: Client,
    namespace: String,
    topic: String,
    brokers: String,
    registry: mongodb::Collection<Document>,
    stop: Option<oneshot::Sender<()>>,
    operator: Option<JoinHandle<Result<(), licenseware_operator::Error>>>,
}

impl Harness {
    async fn start(resync_interval_secs: u64) -> Self {
        let stack = Stack::from_env();
        let client = Client::try_default().await.expect("kubeconfig");
        install_crds(&client).await;
        let namespace = unique_name("registry");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(namespace.clone()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await.expect("create namespace");
        let prefix = format!("{}.", unique_name("e2e"));
        let database = unique_name("registry").replace('-', "_");
        let mongo = mongodb::Client::with_uri_str(&stack.mongo_url).await.expect("mongodb client");
        let registry = mongo.database(&database).collection::<Document>("Registry");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
        let config = Config {
            kafka_brokers: stack.kafka_brokers.clone(),
            mongo_url: stack.mongo_url,
            redis_url: stack.redis_url,
            probe_addr: listener.local_addr().expect("addr"),
            readiness_interval_secs: 5,
            log_format: LogFormat::Text,
            namespaces: vec![namespace.clone()],
            topic_prefix: prefix.clone(),
            resync_interval_secs,
            registry_database: Some(database),
            workers: Default::default(),
            leader: LeaderConfig::disabled(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let operator = tokio::spawn(licenseware_operator::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self {
            client,
            namespace,
            topic: format!("{prefix}licenseware.registry"),
            brokers: stack.kafka_brokers,
            registry,
            stop: Some(stop),
            operator: Some(operator),
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create<K>(&self, kind: &str, manifest: Value) -> K
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + Serialize,
    {
        let mut manifest = manifest;
        manifest["apiVersion"] = json!("licenseware.io/v1alpha1");
        manifest["kind"] = json!(kind);
        let object: K = serde_json::from_value(manifest).expect("manifest");
        self.api::<K>().create(&PostParams::default(), &object).await.expect("create")
    }

    /// Waits for condition `type_` of `name` to have `status` and `reason` for the
    /// latest generation.
    async fn condition<K>(&self, name: &str, type_: &str, status: &str, reason: &str) -> Condition
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + HasStatus,
    {
        let api = self.api::<K>();
        eventually(WAIT, &format!("{name}: {type_}={status} {reason}"), || {
            let api = api.clone();
            async move {
                let object = api.get(name).await.ok()?;
                let generation = object.meta().generation;
                let current = object.status()?.clone();
                let condition = current.conditions.into_iter().find(|c| c.type_ == type_)?;
                (condition.status == status
                    && condition.reason == reason
                    && current.observed_generation == generation)
                    .then_some(condition)
            }
        })
        .await
    }

    async fn ready<K>(&self, name: &str) -> Condition
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + HasStatus,
    {
        self.condition::<K>(name, "Ready", "True", "Reconciled").await
    }

    async fn delete<K>(&self, name: &str)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        let api = self.api::<K>();
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        eventually(WAIT, &format!("{name} to be gone"), || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    /// The registry document with this `_id`, as JSON.
    async fn document(&self, key: &str) -> Option<serde_json::Map<String, Value>> {
        let found = self.registry.find_one(doc! { "_id": key }).await.expect("find")?;
        match licenseware_operator::registry::storage::unwrap_nested_arrays(
            Bson::Document(found).into_relaxed_extjson(),
        ) {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    async fn wait_document(&self, key: &str) -> serde_json::Map<String, Value> {
        eventually(WAIT, &format!("registry document {key}"), || self.document(key)).await
    }

    async fn wait_no_document(&self, key: &str) {
        eventually(WAIT, &format!("registry document {key} to be removed"), || async {
            self.document(key).await.is_none().then_some(())
        })
        .await;
    }

    async fn keys(&self) -> Vec<String> {
        let all: Vec<Document> =
            self.registry.find(doc! {}).await.expect("find").try_collect().await.expect("cursor");
        let mut keys: Vec<String> =
            all.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect();
        keys.sort();
        keys
    }

    /// A consumer of the registry topic from its first offset.
    fn follow(&self) -> RegistryTopic {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", unique_name("registry-reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition_offset(&self.topic, 0, Offset::Beginning).expect("partition");
        consumer.assign(&partitions).expect("assign");
        RegistryTopic { consumer, latest: BTreeMap::new() }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(operator) = self.operator.take() {
            let outcome = tokio::time::timeout(Duration::from_secs(30), operator)
                .await
                .expect("operator stops within 30 s")
                .expect("operator task did not panic");
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.namespace, &DeleteParams::default()).await;
        let _ = self.registry.drop().await;
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

/// Kinds with a RegistrationStatus.
trait HasStatus {
    fn status(&self) -> Option<&RegistrationStatus>;
}

impl HasStatus for Report {
    fn status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }
}

impl HasStatus for ReportComponent {
    fn status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }
}

impl HasStatus for DataTable {
    fn status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }
}

/// Server-side applies every CRD (idempotent) and waits until they serve.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("licenseware-e2e").force();
    for crd in crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply CRD");
    }
    for name in
        ["reports.licenseware.io", "reportcomponents.licenseware.io", "datatables.licenseware.io"]
    {
        eventually(WAIT, &format!("the CRD {name} to be established"), || async {
            let crd = api.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
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
                {"value_key": "number_of_devices", "value_description": "Devices", "icon": "ServersIcon"}
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
                {"prop": "host", "distinctKey": "name", "foreignKey": "host_name"}
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
            "public_url",
            "snapshot_url",
            "parrent_app",
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
    let updated_at = report["updated_at"].as_str().expect("updated_at").to_owned();
    assert_eq!(updated_at.len(), "2026-01-02T03:04:05.123456".len(), "{updated_at}");

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
        ])
    );
    assert_eq!(component["url"], "/report-components/devices-by-os");
    assert_eq!(component["public_url"], "/public-report-components/devices-by-os");
    assert_eq!(component["snapshot_url"], "/snapshot-report-components/devices-by-os");
    assert_eq!(component["type"], "pie");
    assert_eq!(component["filters"][0]["column_type"], "enum");

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

    let app = h.wait_document(APP_KEY).await;
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
    let published = topic.latest[REPORT_KEY].clone().expect("payload");
    assert_eq!(published["_id"], REPORT_KEY);
    assert_eq!(published["report_components"], report["report_components"]);
    assert_eq!(published["updated_at"], json!(updated_at));

    // A spec change that leaves the entries as they are writes nothing.
    h.api::<ReportComponent>()
        .patch(
            "devices-by-os",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"data": {"cacheTtlSeconds": 30}}})),
        )
        .await
        .expect("patch");
    let ready = h.ready::<ReportComponent>("devices-by-os").await;
    assert_eq!(ready.observed_generation, Some(2));
    assert_eq!(h.wait_document(BY_OS_KEY).await["updated_at"], component["updated_at"]);
    assert_eq!(h.wait_document(REPORT_KEY).await["updated_at"], json!(updated_at));

    // A component title change reaches the report's embedded copy.
    h.api::<ReportComponent>()
        .patch(
            "devices-overview",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"title": "At a glance"}})),
        )
        .await
        .expect("patch");
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

    // A pipeline stage that reads another collection makes the component invalid.
    let mut lookup = devices_by_os();
    lookup["spec"]["data"]["pipeline"] = json!([
        {"$match": {"document_type": "virtual_machine"}},
        {"$facet": {"hosts": [{"$lookup": {"from": "Quota", "localField": "a", "foreignField": "b", "as": "c"}}]}}
    ]);
    h.create::<ReportComponent>("ReportComponent", lookup).await;
    let invalid =
        h.condition::<ReportComponent>("devices-by-os", "Ready", "False", "InvalidSpec").await;
    assert!(invalid.message.contains("$lookup"), "{}", invalid.message);
    h.condition::<ReportComponent>("devices-by-os", "Registered", "False", "InvalidSpec").await;
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
    h.api::<Report>()
        .patch(
            "devices-report",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"registrable": false}})),
        )
        .await
        .expect("patch");
    h.condition::<Report>("devices-report", "Ready", "True", "NotRegistrable").await;
    h.wait_no_document(REPORT_KEY).await;

    // Fixing the pipeline registers the component.
    h.api::<ReportComponent>()
        .patch(
            "devices-by-os",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"data": {"pipeline": [{"$group": {"_id": "$os"}}]}}})),
        )
        .await
        .expect("patch");
    h.ready::<ReportComponent>("devices-by-os").await;
    h.wait_document(BY_OS_KEY).await;
    h.stop().await;
}
