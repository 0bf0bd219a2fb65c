//! Multi-tenant safety of the operator against the real stack (issue 10): what a
//! Topic, an Uploader or a ReportComponent in one namespace may reach. Each test runs
//! its own operator in-process on a fresh namespace with a unique topic prefix.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, ResourceExt, api::DeleteParams};
use licenseware_e2e::{
    OperatorUnderTest, Options, eventually,
    kube::{Expected, apply, create_custom, delete_and_wait, merge_patch, wait_condition},
};
use licenseware_operator::{
    config::{TopicSafetyConfig, WorkerConfig},
    crds::{DataTable, ReportComponent, Topic, Uploader},
};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "safety-service";

async fn start(topics: TopicSafetyConfig) -> OperatorUnderTest {
    let workers = WorkerConfig { poll_interval_secs: 1, ..WorkerConfig::default() };
    OperatorUnderTest::start(Options::new("safety").own_registry().workers(workers).topics(topics))
        .await
}

async fn condition<K>(h: &OperatorUnderTest, name: &str, status: &str, reason: &str) -> Condition
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + licenseware_e2e::kube::Conditioned,
{
    wait_condition(&h.api::<K>(), name, Expected::new("Ready", status, reason), WAIT).await
}

// ---------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_existing_topic_is_not_adopted_and_its_deletion_leaves_it() {
    let h = start(TopicSafetyConfig::default()).await;
    let kafka_name = format!("{}someone-elses", h.prefix);
    h.kafka.create_topic(&kafka_name, 2, &[("cleanup.policy", "compact")], WAIT).await;
    create_custom(
        &h.api::<Topic>(),
        "Topic",
        json!({
            "metadata": {"name": "someone-elses"},
            "spec": {"partitions": 4, "config": {"retention.ms": "1000"}, "deletionPolicy": "Delete"}
        }),
    )
    .await;
    let conflict = condition::<Topic>(&h, "someone-elses", "False", "ResourceConflict").await;
    assert!(
        conflict.message.contains(&format!("Kafka topic {kafka_name} (id "))
            && conflict.message.contains("was not created by this resource")
            && conflict.message.contains("licenseware.io/adopt"),
        "{}",
        conflict.message
    );
    // Nothing changed: partitions, and the config (compaction kept, no retention).
    assert_eq!(h.kafka.partitions(&kafka_name).await, Some(2));
    let configs = h.kafka.configs(&kafka_name).await;
    assert_eq!(configs.get("cleanup.policy").map(String::as_str), Some("compact"));
    assert_eq!(configs.get("retention.ms"), None, "{configs:?}");
    let status = h.api::<Topic>().get("someone-elses").await.expect("get").status.expect("status");
    assert_eq!((status.topic_name, status.topic_id), (None, None), "no claim is recorded");

    // deletionPolicy: Delete only deletes what the resource created or adopted.
    delete_and_wait(&h.api::<Topic>(), "someone-elses", WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.kafka.partitions(&kafka_name).await, Some(2), "the topic was deleted");

    // A topic the resource did create is deleted, as before.
    create_custom(
        &h.api::<Topic>(),
        "Topic",
        json!({"metadata": {"name": "mine"}, "spec": {"deletionPolicy": "Delete"}}),
    )
    .await;
    condition::<Topic>(&h, "mine", "True", "Reconciled").await;
    delete_and_wait(&h.api::<Topic>(), "mine", WAIT).await;
    h.kafka.wait_partitions(&format!("{}mine", h.prefix), None, WAIT).await;
    h.kafka.delete_topics(&[&kafka_name]).await;
    h.stop().await;
}

#[tokio::test]
async fn deletion_deletes_by_id_and_spares_a_topic_created_again_by_someone_else() {
    let h = start(TopicSafetyConfig::default()).await;
    let kafka_name = format!("{}recycled", h.prefix);
    create_custom(
        &h.api::<Topic>(),
        "Topic",
        json!({"metadata": {"name": "recycled"}, "spec": {"deletionPolicy": "Delete"}}),
    )
    .await;
    condition::<Topic>(&h, "recycled", "True", "Reconciled").await;
    let ours = h.kafka.topic_id_from_cli(&kafka_name).await;
    // Behind the operator's back (before any resync can notice), the name changes hands.
    h.kafka.delete_topics(&[&kafka_name]).await;
    h.kafka.wait_partitions(&kafka_name, None, WAIT).await;
    eventually(WAIT, "the name to be taken by another topic", || async {
        // A create right after a delete may be refused for a moment: try again.
        let new = NewTopic::new(&kafka_name, 3, TopicReplication::Fixed(1));
        let _ = h.kafka.admin().create_topics(&[new], &AdminOptions::new()).await;
        (h.kafka.partitions(&kafka_name).await == Some(3)).then_some(())
    })
    .await;
    assert_ne!(h.kafka.topic_id_from_cli(&kafka_name).await, ours);
    // The resource still records the old id: its deletion must not take the new topic.
    delete_and_wait(&h.api::<Topic>(), "recycled", WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.kafka.partitions(&kafka_name).await, Some(3), "someone else's topic was deleted");
    h.kafka.delete_topics(&[&kafka_name]).await;
    h.stop().await;
}

#[tokio::test]
async fn internal_registry_and_notification_topics_are_refused() {
    let h = start(TopicSafetyConfig::default()).await;
    let names = [
        ("internal", "__consumer_offsets"),
        ("registry", "licenseware.registry"),
        ("app-events", "AppEvents"),
        ("log-events", "LogEvents"),
    ];
    for (name, topic_name) in names {
        create_custom(
            &h.api::<Topic>(),
            "Topic",
            json!({
                "metadata": {"name": name, "annotations": {"licenseware.io/adopt": "true"}},
                "spec": {"topicName": topic_name, "deletionPolicy": "Delete"}
            }),
        )
        .await;
    }
    for (name, topic_name) in names {
        let refused = condition::<Topic>(&h, name, "False", "NotSupported").await;
        assert!(refused.message.contains(topic_name), "{}", refused.message);
        assert!(
            refused.message.contains("reserved") || refused.message.contains("internal"),
            "{}",
            refused.message
        );
    }
    // Not even created (the prefix keeps these names the test's own).
    for (_, topic_name) in &names[1..] {
        assert_eq!(h.kafka.partitions(&format!("{}{topic_name}", h.prefix)).await, None);
    }
    h.stop().await;
}

#[tokio::test]
async fn topic_names_can_be_bound_to_the_namespace() {
    let h =
        start(TopicSafetyConfig { namespace_prefix: true, ..TopicSafetyConfig::default() }).await;
    let own = format!("{}.orders", h.namespace);
    for (name, topic_name) in [("own", own.as_str()), ("other", "other-team.orders")] {
        create_custom(
            &h.api::<Topic>(),
            "Topic",
            json!({"metadata": {"name": name}, "spec": {"topicName": topic_name}}),
        )
        .await;
    }
    condition::<Topic>(&h, "own", "True", "Reconciled").await;
    let refused = condition::<Topic>(&h, "other", "False", "NotSupported").await;
    assert!(
        refused.message.contains(&format!("{:?}", format!("{}.", h.namespace))),
        "{}",
        refused.message
    );
    assert_eq!(h.kafka.partitions(&format!("{}other-team.orders", h.prefix)).await, None);
    h.stop().await;
}

// ---------------------------------------------------------------------------------
// Uploaders
// ---------------------------------------------------------------------------------

fn uploader(name: &str, worker: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "appId": APP,
            "name": name,
            "acceptedFileTypes": [".csv"],
            "usedCollections": ["Devices"],
            "worker": worker
        }
    })
}

fn managers<K: ResourceExt>(object: &K) -> Vec<String> {
    object.managed_fields().iter().filter_map(|m| m.manager.clone()).collect()
}

#[tokio::test]
async fn an_uploader_does_not_take_over_a_deployment_or_config_map_it_does_not_own() {
    let h = start(TopicSafetyConfig::default()).await;
    let deployments: Api<Deployment> = h.api();
    let config_maps: Api<ConfigMap> = h.api();
    let selector = json!({"app": "theirs"});
    // Someone else's Deployment, even carrying the operator's label.
    let theirs = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "files-worker", "labels": {"licenseware.io/uploader": "files"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector},
                         "spec": {"containers": [{"name": "app", "image": "example.com/theirs:1"}]}}
        }
    });
    let before = apply(&deployments, &theirs).await;
    create_custom(&h.api::<Uploader>(), "Uploader", uploader("files", json!({}))).await;
    let conflict = condition::<Uploader>(&h, "files", "False", "ResourceConflict").await;
    assert!(
        conflict.message.starts_with(
            "Deployment files-worker already exists and is not owned by this Uploader"
        ),
        "{}",
        conflict.message
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = deployments.get("files-worker").await.expect("get");
    assert_eq!(after.metadata.generation, before.metadata.generation, "the Deployment changed");
    assert!(after.owner_references().is_empty());
    assert!(
        !managers(&after).iter().any(|m| m.starts_with("licenseware-operator")),
        "{:?}",
        managers(&after)
    );
    // Nothing else was applied either.
    assert!(config_maps.get_opt("files-worker").await.expect("get").is_none());
    assert!(h.api::<Topic>().get_opt("files-events").await.expect("get").is_none());

    // Once the name is free, the Uploader gets its worker.
    deployments.delete("files-worker", &DeleteParams::default()).await.expect("delete");
    condition::<Uploader>(&h, "files", "True", "Reconciled").await;
    let ours = deployments.get("files-worker").await.expect("get");
    assert_eq!(ours.owner_references()[0].kind, "Uploader");

    // Someone else's ConfigMap.
    let map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "reports-worker"},
        "data": {"worker.yaml": "theirs"}
    });
    apply(&config_maps, &map).await;
    create_custom(&h.api::<Uploader>(), "Uploader", uploader("reports", json!({}))).await;
    let conflict = condition::<Uploader>(&h, "reports", "False", "ResourceConflict").await;
    assert!(
        conflict.message.starts_with("ConfigMap reports-worker already exists"),
        "{}",
        conflict.message
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = config_maps.get("reports-worker").await.expect("get");
    assert_eq!(kept.data.as_ref().expect("data")["worker.yaml"], "theirs");
    assert!(kept.owner_references().is_empty());
    assert!(deployments.get_opt("reports-worker").await.expect("get").is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_worker_image_outside_the_allowed_registries_is_refused() {
    let h = start(TopicSafetyConfig::default()).await;
    let deployments: Api<Deployment> = h.api();
    create_custom(
        &h.api::<Uploader>(),
        "Uploader",
        uploader("mined", json!({"image": "evil.example.com/miner:1"})),
    )
    .await;
    let refused = condition::<Uploader>(&h, "mined", "False", "ImageNotAllowed").await;
    assert!(
        refused.message.contains("evil.example.com/miner:1")
            && refused.message.contains("ghcr.io/licenseware"),
        "{}",
        refused.message
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(deployments.get_opt("mined-worker").await.expect("get").is_none());

    // The default image's registry and organisation are allowed.
    let allowed = "ghcr.io/licenseware/custom-worker:1";
    merge_patch(&h.api::<Uploader>(), "mined", json!({"spec": {"worker": {"image": allowed}}}))
        .await;
    condition::<Uploader>(&h, "mined", "True", "Reconciled").await;
    let worker = deployments.get("mined-worker").await.expect("worker");
    let pod = worker.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.containers[0].image.as_deref(), Some(allowed));
    // Defaults of the worker pod: limits, a sized /tmp, read-only uploads.
    let limits = pod.containers[0].resources.clone().expect("resources").limits.expect("limits");
    for key in ["cpu", "memory", "ephemeral-storage"] {
        assert!(limits.contains_key(key), "{key}: {limits:?}");
    }
    let volumes = pod.volumes.expect("volumes");
    let tmp = volumes.iter().find(|v| v.name == "tmp").expect("tmp");
    assert!(tmp.empty_dir.as_ref().expect("emptyDir").size_limit.is_some());
    let uploads = volumes.iter().find(|v| v.name == "uploads").expect("uploads");
    assert_eq!(uploads.persistent_volume_claim.as_ref().expect("pvc").read_only, Some(true));
    h.stop().await;
}

// ---------------------------------------------------------------------------------
// ReportComponents
// ---------------------------------------------------------------------------------

fn component(name: &str, collection: &str, pipeline: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "appId": APP,
            "title": name,
            "type": "table",
            "attributes": {"columns": []},
            "data": {"collection": collection, "pipeline": pipeline}
        }
    })
}

#[tokio::test]
async fn a_component_with_accumulator_or_a_foreign_collection_is_refused() {
    let h = start(TopicSafetyConfig::default()).await;
    let components = h.api::<ReportComponent>();
    let javascript = json!([
        {"$group": {"_id": "$os", "x": {"$accumulator": {
            "init": "function() { return 0 }", "accumulate": "function(s) { return s }",
            "accumulateArgs": [], "merge": "function(a, b) { return a }", "lang": "js"
        }}}}
    ]);
    create_custom(&components, "ReportComponent", component("javascript", "Data", javascript))
        .await;
    let refused =
        condition::<ReportComponent>(&h, "javascript", "False", "PipelineNotAllowed").await;
    assert!(
        refused
            .message
            .starts_with("data.pipeline[0].$group.x.$accumulator: operator $accumulator"),
        "{}",
        refused.message
    );

    let plain = json!([{"$group": {"_id": "$os", "count": {"$sum": 1}}}]);
    create_custom(&components, "ReportComponent", component("registry", "Registry", plain.clone()))
        .await;
    create_custom(&components, "ReportComponent", component("devices", "Devices", plain)).await;
    let reserved =
        condition::<ReportComponent>(&h, "registry", "False", "CollectionNotAllowed").await;
    assert!(reserved.message.contains("Registry is reserved"), "{}", reserved.message);
    let undeclared =
        condition::<ReportComponent>(&h, "devices", "False", "CollectionNotAllowed").await;
    assert!(undeclared.message.contains("Devices"), "{}", undeclared.message);
    // A data table (whose rows the API also writes) follows the same rule.
    create_custom(
        &h.api::<DataTable>(),
        "DataTable",
        json!({
            "metadata": {"name": "registry-table"},
            "spec": {"appId": APP, "title": "T", "collection": "Registry", "columns": [{"prop": "x"}]}
        }),
    )
    .await;
    let table = condition::<DataTable>(&h, "registry-table", "False", "CollectionNotAllowed").await;
    assert!(table.message.contains("Registry is reserved"), "{}", table.message);
    assert!(h.registry().document(&format!("component/{APP}/devices")).await.is_none());

    // An Uploader of the app declaring the collection makes the component valid.
    create_custom(&h.api::<Uploader>(), "Uploader", uploader("devices", json!({}))).await;
    condition::<ReportComponent>(&h, "devices", "True", "Reconciled").await;
    eventually(WAIT, "the component's registry entry", || async {
        h.registry().document(&format!("component/{APP}/devices")).await
    })
    .await;
    h.stop().await;
}
