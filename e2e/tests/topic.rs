//! The Topic controller against the real stack: each test runs its own operator
//! in-process, watching a fresh namespace with a unique topic prefix, and reads the
//! results back from Kafka and from the apiserver.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use licenseware_e2e::{Stack, eventually, unique_name};
use licenseware_operator::{
    config::{Config, LeaderConfig, LogFormat},
    crds::{Topic, generate::crds},
};
use rdkafka::{
    ClientConfig,
    admin::{
        AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
        ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
};
use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

const WAIT: Duration = Duration::from_secs(60);
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// One operator, one namespace, one topic prefix.
struct Harness {
    client: Client,
    namespace: String,
    prefix: String,
    kafka: Arc<AdminClient<DefaultClientContext>>,
    probe: String,
    stop: Option<oneshot::Sender<()>>,
    operator: Option<JoinHandle<Result<(), licenseware_operator::Error>>>,
}

impl Harness {
    async fn start(resync_interval_secs: u64) -> Self {
        let stack = Stack::from_env();
        let client = Client::try_default().await.expect("kubeconfig");
        install_crds(&client).await;
        let namespace = unique_name("topic");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(namespace.clone()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await.expect("create namespace");
        let prefix = format!("{}.", unique_name("e2e"));
        let kafka: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_brokers)
            .create()
            .expect("admin client");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
        let probe = format!("http://{}", listener.local_addr().expect("addr"));
        let config = Config {
            kafka_brokers: stack.kafka_brokers,
            mongo_url: stack.mongo_url,
            redis_url: stack.redis_url,
            probe_addr: listener.local_addr().expect("addr"),
            readiness_interval_secs: 5,
            log_format: LogFormat::Text,
            namespaces: vec![namespace.clone()],
            topic_prefix: prefix.clone(),
            resync_interval_secs,
            registry_database: None,
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
            prefix,
            kafka: Arc::new(kafka),
            probe,
            stop: Some(stop),
            operator: Some(operator),
        }
    }

    fn topics(&self) -> Api<Topic> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn kafka_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn create(&self, manifest: serde_json::Value) -> Topic {
        let mut manifest = manifest;
        manifest["apiVersion"] = json!("licenseware.io/v1alpha1");
        manifest["kind"] = json!("Topic");
        let topic: Topic = serde_json::from_value(manifest).expect("Topic manifest");
        self.topics().create(&PostParams::default(), &topic).await.expect("create Topic")
    }

    async fn patch(&self, name: &str, patch: serde_json::Value) {
        self.topics()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch Topic");
    }

    /// Waits for condition `type_` of `name` to have `status` and `reason`, for the
    /// latest generation when `current` is set.
    async fn condition(&self, name: &str, type_: &str, status: &str, reason: &str) -> Condition {
        let api = self.topics();
        eventually(WAIT, &format!("{name}: {type_}={status} {reason}"), || {
            let api = api.clone();
            async move {
                let topic = api.get(name).await.ok()?;
                let generation = topic.metadata.generation;
                let status_ = topic.status?;
                let condition = status_.conditions.into_iter().find(|c| c.type_ == type_)?;
                (condition.status == status
                    && condition.reason == reason
                    && (type_ == "ReconciliationPaused"
                        || status_.observed_generation == generation))
                    .then_some(condition)
            }
        })
        .await
    }

    async fn ready(&self, name: &str) -> Condition {
        self.condition(name, "Ready", "True", "Reconciled").await
    }

    /// Partitions of a Kafka topic, `None` when it does not exist.
    async fn partitions(&self, topic: &str) -> Option<usize> {
        let kafka = Arc::clone(&self.kafka);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata =
                kafka.inner().fetch_metadata(Some(&topic), KAFKA_TIMEOUT).expect("metadata");
            let found = metadata.topics().iter().find(|t| t.name() == topic)?;
            if found.error().is_some() {
                return None;
            }
            Some(found.partitions().len())
        })
        .await
        .expect("metadata task")
    }

    /// Configs set on the topic itself.
    async fn configs(&self, topic: &str) -> BTreeMap<String, String> {
        let results = self
            .kafka
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
            .await
            .expect("describe configs");
        let resource = results.into_iter().next().expect("one result").expect("topic config");
        resource
            .entries
            .into_iter()
            .filter(|e| e.source == ConfigSource::DynamicTopic)
            .filter_map(|e| Some((e.name, e.value?)))
            .collect()
    }

    async fn wait_configs(&self, topic: &str, expected: &[(&str, &str)]) {
        let expected: BTreeMap<String, String> =
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        eventually(WAIT, &format!("configs of {topic} to be {expected:?}"), || async {
            (self.configs(topic).await == expected).then_some(())
        })
        .await;
    }

    async fn wait_partitions(&self, topic: &str, expected: Option<usize>) {
        eventually(WAIT, &format!("{topic} to have {expected:?} partitions"), || async {
            (self.partitions(topic).await == expected).then_some(())
        })
        .await;
    }

    async fn create_in_kafka(&self, topic: &str, partitions: i32, config: &[(&str, &str)]) {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (key, value) in config {
            new = new.set(key, value);
        }
        let results =
            self.kafka.create_topics(&[new], &AdminOptions::new()).await.expect("create topic");
        for result in results {
            result.expect("topic created");
        }
        self.wait_partitions(topic, Some(usize::try_from(partitions).expect("positive"))).await;
    }

    async fn delete(&self, name: &str) {
        self.topics().delete(name, &DeleteParams::default()).await.expect("delete Topic");
        let api = self.topics();
        eventually(WAIT, &format!("Topic {name} to be gone"), || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
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
    }
}

/// Server-side applies every CRD (idempotent) and waits until the Topic CRD serves.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("licenseware-e2e").force();
    for crd in crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply CRD");
    }
    eventually(WAIT, "the Topic CRD to be established", || async {
        let crd = api.get("topics.licenseware.io").await.ok()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn creates_grows_and_sets_and_removes_configs() {
    let h = Harness::start(120).await;
    let name = "orders";
    let kafka_name = h.kafka_name(name);
    h.create(json!({
        "metadata": {"name": name},
        "spec": {"partitions": 2, "retention": "1h", "config": {"segment.ms": "600000"}}
    }))
    .await;
    h.ready(name).await;
    h.wait_partitions(&kafka_name, Some(2)).await;
    h.wait_configs(&kafka_name, &[("retention.ms", "3600000"), ("segment.ms", "600000")]).await;
    let status = h.topics().get(name).await.expect("get").status.expect("status");
    assert_eq!(status.topic_name.as_deref(), Some(kafka_name.as_str()));
    assert_eq!((status.partitions, status.replication_factor), (Some(2), Some(1)));
    assert!(
        h.topics().get(name).await.expect("get").finalizers().is_empty(),
        "Retain: no finalizer"
    );

    // Grow, drop retention and segment.ms, set cleanup.policy.
    h.topics()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"partitions": 3, "retention": null,
                         "config": {"segment.ms": null, "cleanup.policy": "compact"}}
            })),
        )
        .await
        .expect("patch");
    h.ready(name).await;
    h.wait_partitions(&kafka_name, Some(3)).await;
    h.wait_configs(&kafka_name, &[("cleanup.policy", "compact")]).await;

    let metrics = reqwest::get(format!("{}/metrics", h.probe))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("licenseware_kafka_admin_calls_total{call=\"create_topics\"} 1"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn adopts_an_existing_topic_and_refuses_to_shrink_it() {
    let h = Harness::start(120).await;
    let name = "legacy";
    let kafka_name = h.kafka_name(name);
    h.create_in_kafka(&kafka_name, 4, &[("segment.ms", "700000")]).await;
    h.create(json!({
        "metadata": {"name": name},
        "spec": {"partitions": 2, "config": {"retention.ms": "7200000"}}
    }))
    .await;
    let ready = h.condition(name, "Ready", "False", "NotSupported").await;
    assert_eq!(ready.message, "Decreasing partitions not supported (spec 2 < 4 in Kafka)");
    // The configs are still applied: spec authoritative, segment.ms removed.
    h.wait_configs(&kafka_name, &[("retention.ms", "7200000")]).await;
    assert_eq!(h.partitions(&kafka_name).await, Some(4));
    let status = h.topics().get(name).await.expect("get").status.expect("status");
    assert_eq!(status.partitions, Some(4));

    // Matching the spec to Kafka makes it Ready.
    h.patch(name, json!({"spec": {"partitions": 4}})).await;
    h.ready(name).await;
    h.stop().await;
}

#[tokio::test]
async fn periodic_resync_reverts_config_drift() {
    let h = Harness::start(2).await;
    let name = "drifty";
    let kafka_name = h.kafka_name(name);
    h.create(json!({"metadata": {"name": name}, "spec": {"config": {"retention.ms": "100000"}}}))
        .await;
    h.ready(name).await;
    h.wait_configs(&kafka_name, &[("retention.ms", "100000")]).await;

    // Someone changes the topic behind the operator's back.
    let drift = AlterConfig::new(ResourceSpecifier::Topic(&kafka_name))
        .set("retention.ms", "5")
        .set("segment.ms", "600000");
    h.kafka
        .alter_configs(&[drift], &AdminOptions::new())
        .await
        .expect("alter")
        .into_iter()
        .for_each(|result| {
            result.expect("altered");
        });
    let partitions = NewPartitions::new(&kafka_name, 2);
    for result in
        h.kafka.create_partitions(&[partitions], &AdminOptions::new()).await.expect("grow")
    {
        result.expect("grown");
    }
    h.wait_configs(&kafka_name, &[("retention.ms", "100000")]).await;
    // Partitions cannot go back: the operator reports it.
    let ready = h.condition(name, "Ready", "False", "NotSupported").await;
    assert_eq!(ready.message, "Decreasing partitions not supported (spec 1 < 2 in Kafka)");
    h.stop().await;
}

#[tokio::test]
async fn broker_refusals_are_kafka_errors() {
    let h = Harness::start(120).await;
    h.create(json!({
        "metadata": {"name": "bad-config"},
        "spec": {"config": {"unknown.config.parameter": "1"}}
    }))
    .await;
    h.create(json!({"metadata": {"name": "too-many-replicas"}, "spec": {"replicationFactor": 3}}))
        .await;
    let bad_config = h.condition("bad-config", "Ready", "False", "KafkaError").await;
    assert!(bad_config.message.contains("create_topics"), "{}", bad_config.message);
    let replicas = h.condition("too-many-replicas", "Ready", "False", "KafkaError").await;
    assert!(replicas.message.to_lowercase().contains("replication"), "{}", replicas.message);
    assert_eq!(h.partitions(&h.kafka_name("bad-config")).await, None);

    // Fixing the spec recovers.
    h.patch("bad-config", json!({"spec": {"config": {"unknown.config.parameter": null}}})).await;
    h.ready("bad-config").await;
    h.stop().await;
}

#[tokio::test]
async fn second_claim_on_a_topic_is_a_conflict_and_its_deletion_keeps_the_topic() {
    let h = Harness::start(120).await;
    h.create(json!({"metadata": {"name": "first"}, "spec": {"topicName": "shared"}})).await;
    h.ready("first").await;
    h.create(json!({
        "metadata": {"name": "second"},
        "spec": {"topicName": "shared", "deletionPolicy": "Delete"}
    }))
    .await;
    let conflict = h.condition("second", "Ready", "False", "ResourceConflict").await;
    assert_eq!(conflict.message, format!("Managed by {}/first", h.namespace));

    h.delete("second").await;
    assert_eq!(h.partitions(&h.kafka_name("shared")).await, Some(1), "the loser deletes nothing");
    h.stop().await;
}

#[tokio::test]
async fn deletion_policy_retain_keeps_and_delete_removes_the_topic() {
    let h = Harness::start(120).await;
    h.create(json!({"metadata": {"name": "kept"}, "spec": {}})).await;
    h.create(json!({"metadata": {"name": "removed"}, "spec": {"deletionPolicy": "Delete"}})).await;
    h.ready("kept").await;
    h.ready("removed").await;
    let removed = h.topics().get("removed").await.expect("get");
    assert_eq!(removed.finalizers(), ["licenseware.io/topic"]);

    h.delete("kept").await;
    h.delete("removed").await;
    h.wait_partitions(&h.kafka_name("removed"), None).await;
    assert_eq!(h.partitions(&h.kafka_name("kept")).await, Some(1));
    h.stop().await;
}

#[tokio::test]
async fn unmanaged_topic_is_left_alone() {
    let h = Harness::start(120).await;
    let name = "hands-off";
    let kafka_name = h.kafka_name(name);
    h.create_in_kafka(&kafka_name, 1, &[("segment.ms", "700000")]).await;
    h.create(json!({
        "metadata": {"name": name, "annotations": {"licenseware.io/managed": "false"}},
        "spec": {"partitions": 3, "deletionPolicy": "Delete"}
    }))
    .await;
    h.condition(name, "Unmanaged", "True", "Unmanaged").await;
    h.condition(name, "Ready", "True", "Unmanaged").await;
    let topic = h.topics().get(name).await.expect("get");
    assert!(topic.finalizers().is_empty(), "no finalizer on an unmanaged Topic");
    assert_eq!(h.partitions(&kafka_name).await, Some(1));
    assert_eq!(h.configs(&kafka_name).await.get("segment.ms").map(String::as_str), Some("700000"));

    h.delete(name).await;
    assert_eq!(h.partitions(&kafka_name).await, Some(1), "deleting leaves the topic");
    h.stop().await;
}

#[tokio::test]
async fn paused_topic_gets_no_changes_until_resumed() {
    let h = Harness::start(120).await;
    let name = "sleepy";
    let kafka_name = h.kafka_name(name);
    h.create(json!({"metadata": {"name": name}, "spec": {"partitions": 1}})).await;
    h.ready(name).await;

    h.patch(
        name,
        json!({
            "metadata": {"annotations": {"licenseware.io/paused": "true"}},
            "spec": {"partitions": 2}
        }),
    )
    .await;
    h.condition(name, "ReconciliationPaused", "True", "ReconciliationPaused").await;
    assert_eq!(h.partitions(&kafka_name).await, Some(1));

    h.patch(name, json!({"metadata": {"annotations": {"licenseware.io/paused": null}}})).await;
    h.ready(name).await;
    h.wait_partitions(&kafka_name, Some(2)).await;
    let topic = h.topics().get(name).await.expect("get");
    let conditions = topic.status.expect("status").conditions;
    assert!(conditions.iter().all(|c| c.type_ != "ReconciliationPaused"), "{conditions:?}");
    h.stop().await;
}

/// Reads one counter from the operator's `/metrics`.
async fn metric(probe: &str, series: &str) -> u64 {
    let body = reqwest::get(format!("{probe}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

#[tokio::test]
async fn topics_reconciled_together_share_admin_calls() {
    const TOPICS: usize = 40;
    let h = Harness::start(120).await;
    let names: Vec<String> = (0..TOPICS).map(|i| format!("bulk-{i}")).collect();
    futures::future::join_all(names.iter().map(|name| {
        h.create(json!({"metadata": {"name": name}, "spec": {"config": {"retention.ms": "60000"}}}))
    }))
    .await;
    for name in &names {
        h.ready(name).await;
    }
    let series = |call: &str| format!("licenseware_kafka_admin_calls_total{{call=\"{call}\"}}");
    let creates = metric(&h.probe, &series("create_topics")).await;
    let metadata = metric(&h.probe, &series("metadata")).await;
    let batches = metric(&h.probe, "licenseware_kafka_admin_batches_total").await;
    let carried = metric(&h.probe, "licenseware_kafka_admin_batched_topics_total").await;
    println!(
        "{TOPICS} topics: {creates} create_topics, {metadata} metadata calls, \
         {batches} batches carrying {carried} topic requests"
    );
    // Each topic is created once; batching puts several in one request.
    assert!(creates < TOPICS as u64 / 2, "{creates} create_topics calls for {TOPICS} topics");
    assert!(metadata < carried, "{metadata} metadata calls for {carried} requests");
    h.stop().await;
}
