//! The sample app of `manifests/examples/` against the real stack, the way a user
//! installs it: the CRDs, then every file the kustomization lists, server-side applied
//! into a fresh namespace, with the operator running in-process (unique topic prefix
//! and registry database). Everything must become Ready and land in Kafka, in the
//! worker Deployment and in the registry; deleting it all must clean up per policy.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery,
};
use licenseware_e2e::{OperatorUnderTest, Options, eventually, kube::FIELD_MANAGER};
use licenseware_operator::config::WorkerConfig;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

const UPLOADER_KEY: &str = "uploader/ifmp-service/rv_tools";
const REPORT_KEY: &str = "report/ifmp-service/devices";
const OVERVIEW_KEY: &str = "component/ifmp-service/devices_overview";
const BY_OS_KEY: &str = "component/ifmp-service/devices_by_os";
const TABLE_KEY: &str = "datatable/ifmp-service/devices";
const APP_KEY: &str = "app/ifmp-service/ifmp-service";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples")
}

/// One resource of the sample app: its file, what it is, and the Api to reach it.
struct Applied {
    file: String,
    kind: String,
    name: String,
    api: Api<DynamicObject>,
}

/// The files `kustomization.yaml` lists, parsed; fails when a YAML file of the
/// directory is not listed (the `-k` and `-f` installs would differ).
fn example_objects() -> Vec<(String, DynamicObject)> {
    let dir = examples_dir();
    let kustomization: Value = serde_yaml::from_str(
        &std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml"),
    )
    .expect("kustomization YAML");
    assert!(kustomization.get("namespace").is_none(), "the examples must not pin a namespace");
    let listed: Vec<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read manifests/examples")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), on_disk);
    listed
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(dir.join(&file)).expect("example file");
            let object: DynamicObject =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(object.metadata.namespace.is_none(), "{file} pins a namespace");
            (file, object)
        })
        .collect()
}

/// Waits until `object` has Ready=True for its latest generation.
async fn wait_ready(object: &Applied) -> DynamicObject {
    eventually(WAIT, &format!("{} {} to be Ready", object.kind, object.name), || async {
        let found = object.api.get(&object.name).await.ok()?;
        let status = found.data.get("status")?;
        let ready = status["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let current = status["observedGeneration"].as_i64() == found.metadata.generation;
        (ready && current).then_some(found)
    })
    .await
}

fn condition<'a>(object: &'a DynamicObject, type_: &str) -> &'a Value {
    object.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition on {}", object.name_any()))
}

#[tokio::test]
async fn sample_app_installs_becomes_ready_and_uninstalls_cleanly() {
    let workers = WorkerConfig { poll_interval_secs: 1, ..WorkerConfig::default() };
    let h =
        OperatorUnderTest::start(Options::new("sample-app").own_registry().workers(workers)).await;
    let (client, namespace, prefix) = (&h.client, &h.namespace, &h.prefix);
    let (kafka, registry) = (&h.kafka, h.registry());

    // Install: every file, as `kubectl apply --server-side -n <namespace> -f` would.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::new();
    for (file, object) in example_objects() {
        let types = object.types.clone().unwrap_or_else(|| panic!("{file}: no apiVersion/kind"));
        let gvk = GroupVersionKind::try_from(&types).expect("apiVersion");
        let (resource, _): (ApiResource, _) =
            discovery::pinned_kind(client, &gvk).await.expect("discover the kind");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let name = object.name_any();
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        applied.push(Applied { file, kind: types.kind, name, api });
    }
    let kinds: BTreeSet<&str> = applied.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["App", "DataTable", "Report", "ReportComponent", "Topic", "Uploader"]),
        "the sample app has every kind"
    );

    // Every resource becomes Ready; the Uploader with all of its conditions.
    let mut ready = BTreeMap::new();
    for object in &applied {
        ready.insert(object.file.clone(), wait_ready(object).await);
    }
    let uploader = &ready["rv-tools.uploader.yaml"];
    for type_ in ["TopicReady", "WorkerReady", "Registered", "Ready"] {
        assert_eq!(condition(uploader, type_)["status"], "True", "{type_}");
    }
    assert_eq!(condition(uploader, "Registered")["reason"], "Reconciled");
    assert!(uploader.finalizers().iter().any(|f| f == "licenseware.io/registry"));
    let events = format!("{prefix}ifmp-service.rv_tools.events");
    let dlq = format!("{prefix}ifmp-service.rv_tools.dlq");
    let notifications = format!("{prefix}notifications");
    assert_eq!(uploader.data["status"]["topicName"], events.as_str());
    assert_eq!(uploader.data["status"]["dlqTopicName"], dlq.as_str());
    let topic = &ready["notifications.topic.yaml"];
    assert_eq!(topic.data["status"]["topicName"], notifications.as_str());
    assert!(topic.finalizers().iter().any(|f| f == "licenseware.io/topic"), "Delete policy");

    // Kafka: the uploader's topics (one events partition per possible replica) and the
    // notifications topic with its retention.
    assert_eq!(kafka.partitions(&events).await, Some(4));
    assert_eq!(kafka.partitions(&dlq).await, Some(1));
    assert_eq!(kafka.partitions(&notifications).await, Some(3));
    let configs = kafka.configs(&notifications).await;
    assert_eq!(configs.get("retention.ms").map(String::as_str), Some("604800000"), "{configs:?}");

    // The worker: its ConfigMap carries the processing tables, the Deployment is
    // hardened and starts at minReplicas.
    let config_map: ConfigMap =
        Api::namespaced(client.clone(), namespace).get("rv-tools-worker").await.expect("ConfigMap");
    let file: Value =
        serde_yaml::from_str(&config_map.data.expect("data")["worker.yaml"]).expect("YAML");
    assert_eq!(file["eventsTopic"], events.as_str());
    assert_eq!(file["dlqTopic"], dlq.as_str());
    assert_eq!(file["consumerGroup"], format!("{prefix}ifmp-service.rv_tools.worker"));
    assert_eq!(file["maxAttempts"], 5);
    let tables = &file["spec"]["processing"]["tables"];
    assert_eq!(tables[0]["sheets"], json!(["tabvInfo", "vInfo"]));
    assert_eq!(tables[0]["documentType"], "virtual_machine");
    assert_eq!(tables[0]["columns"][0], json!({"from": "VM", "to": "name", "type": "string"}));
    assert_eq!(tables[1]["sheets"], json!(["tabvHost", "vHost"]));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = eventually(WAIT, "the worker Deployment at minReplicas", || async {
        let deployment = deployments.get("rv-tools-worker").await.ok()?;
        (deployment.spec.as_ref()?.replicas == Some(0)).then_some(deployment)
    })
    .await;
    let owner = &deployment.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Uploader", "rv-tools"));
    assert_eq!(owner.controller, Some(true));
    let spec = deployment.spec.expect("spec");
    assert_eq!(
        spec.selector
            .match_labels
            .as_ref()
            .and_then(|l| l.get("licenseware.io/uploader"))
            .map(String::as_str),
        Some("rv-tools")
    );
    let (_, pod, container) = licenseware_e2e::worker::assert_hardened_worker(&spec);
    let env: BTreeMap<&str, &str> = container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some((e.name.as_str(), e.value.as_deref()?)))
        .collect();
    assert_eq!(env.get("LW_WORKER_CONFIG"), Some(&"/etc/licenseware/worker.yaml"));
    let volumes = pod.volumes.expect("volumes");
    assert!(volumes.iter().any(|v| v.name == "config"
        && v.config_map.as_ref().map(|c| c.name.as_str()) == Some("rv-tools-worker")));
    assert!(volumes.iter().any(|v| v.name == "uploads" && v.persistent_volume_claim.is_some()));

    // The registry: one document per resource, and the app's.
    let entry = registry.wait_document(UPLOADER_KEY, WAIT).await;
    assert_eq!(entry["upload_url"], "/uploads/rv-tools/files");
    assert_eq!(entry["name"], "RVTools");
    assert_eq!(entry["flags"], json!(["beta"]));
    let validation = &entry["validation_parameters"];
    assert_eq!(
        validation["required_sheets"][0],
        json!(["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"])
    );
    assert_eq!(validation["required_columns"][0][0], "VM");
    assert_eq!(entry["encryption_parameters"]["columns"], json!(["VM", "DNS Name", "Host"]));
    // The worker's config, as its ConfigMap holds it, with the Uploader's upload limits.
    assert_eq!(entry["worker"], file);
    assert_eq!(entry["parrent_app"]["app_id"], "ifmp-service");
    // Every document reads as the typed document the API uses.
    for key in [UPLOADER_KEY, REPORT_KEY, OVERVIEW_KEY, BY_OS_KEY, TABLE_KEY, APP_KEY] {
        registry.typed_document(key).await.expect("a document");
    }
    let report = registry.wait_document(REPORT_KEY, WAIT).await;
    assert_eq!(report["name"], "Devices");
    let embedded: Vec<&str> = report["report_components"]
        .as_array()
        .expect("report_components")
        .iter()
        .filter_map(|c| c["component_id"].as_str())
        .collect();
    assert_eq!(embedded, ["devices_overview", "devices_by_os"]);
    let overview = registry.wait_document(OVERVIEW_KEY, WAIT).await;
    assert_eq!(
        (overview["type"].as_str(), overview["url"].as_str()),
        (Some("summary"), Some("/report-components/devices-overview"))
    );
    let by_os = registry.wait_document(BY_OS_KEY, WAIT).await;
    assert_eq!(by_os["type"], "table");
    assert_eq!(by_os["filters"][0]["visible_name"], "Operating System");
    let table = registry.wait_document(TABLE_KEY, WAIT).await;
    assert_eq!(table["path"], "/datatables/devices");
    assert_eq!(table["columns"].as_array().expect("columns").len(), 10);
    let app = registry.wait_document(APP_KEY, WAIT).await;
    assert_eq!(app["uploaders"], json!(["rv_tools"]));
    assert_eq!(app["reports"], json!(["devices"]));
    assert_eq!(app["datatables"], json!(["devices"]));
    let mut expected =
        [APP_KEY, UPLOADER_KEY, REPORT_KEY, OVERVIEW_KEY, BY_OS_KEY, TABLE_KEY].map(str::to_owned);
    expected.sort();
    assert_eq!(registry.keys().await, expected);

    // Uninstall: every resource goes (finalizers done), the Delete-policy topic with it,
    // the Retain-policy uploader topics stay, and the registry empties.
    for object in &applied {
        object.api.delete(&object.name, &DeleteParams::default()).await.expect("delete");
    }
    for object in &applied {
        eventually(WAIT, &format!("{} {} to be gone", object.kind, object.name), || async {
            object.api.get_opt(&object.name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    kafka.wait_partitions(&notifications, None, WAIT).await;
    eventually(WAIT, "the registry to be empty", || async {
        registry.keys().await.is_empty().then_some(())
    })
    .await;
    assert_eq!(kafka.partitions(&events).await, Some(4), "Retain keeps the events topic");
    assert_eq!(kafka.partitions(&dlq).await, Some(1), "Retain keeps the dead letters");

    let kafka = kafka.clone();
    let registry_topic = format!("{prefix}licenseware.registry");
    h.stop().await;
    kafka.delete_topics(&[&events, &dlq, &registry_topic]).await;
}
