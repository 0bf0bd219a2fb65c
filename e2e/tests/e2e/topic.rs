//! The Topic controller against the real stack: each test runs its own operator
//! in-process, watching a fresh namespace with a unique topic prefix, and reads the
//! results back from Kafka and from the apiserver.

use std::{collections::BTreeMap, ops::Deref, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, ResourceExt};
use licenseware_e2e::{
    OperatorUnderTest, Options,
    kube::{Expected, create_custom, delete_and_wait, merge_patch, wait_condition},
};
use licenseware_operator::crds::Topic;
use rdkafka::admin::{AdminOptions, AlterConfig, NewPartitions, ResourceSpecifier};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// One operator, one namespace, one topic prefix.
struct Harness(OperatorUnderTest);

impl Deref for Harness {
    type Target = OperatorUnderTest;

    fn deref(&self) -> &OperatorUnderTest {
        &self.0
    }
}

impl Harness {
    async fn start(resync_interval_secs: u64) -> Self {
        Self(
            OperatorUnderTest::start(
                Options::new("topic").resync_interval_secs(resync_interval_secs),
            )
            .await,
        )
    }

    fn topics(&self) -> Api<Topic> {
        self.api()
    }

    fn kafka_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn create(&self, manifest: serde_json::Value) -> Topic {
        create_custom(&self.topics(), "Topic", manifest).await
    }

    async fn patch(&self, name: &str, patch: serde_json::Value) {
        merge_patch(&self.topics(), name, patch).await;
    }

    /// Waits for condition `type_` of `name` to have `status` and `reason`, for the
    /// latest generation unless it is `ReconciliationPaused`.
    async fn condition(&self, name: &str, type_: &str, status: &str, reason: &str) -> Condition {
        let expected = Expected {
            current: type_ != "ReconciliationPaused",
            ..Expected::new(type_, status, reason)
        };
        wait_condition(&self.topics(), name, expected, WAIT).await
    }

    async fn ready(&self, name: &str) -> Condition {
        self.condition(name, "Ready", "True", "Reconciled").await
    }

    /// Partitions of a Kafka topic, `None` when it does not exist.
    async fn partitions(&self, topic: &str) -> Option<usize> {
        self.kafka.partitions(topic).await
    }

    /// Configs set on the topic itself.
    async fn configs(&self, topic: &str) -> BTreeMap<String, String> {
        self.kafka.configs(topic).await
    }

    async fn wait_configs(&self, topic: &str, expected: &[(&str, &str)]) {
        self.kafka.wait_configs(topic, expected, WAIT).await;
    }

    async fn wait_partitions(&self, topic: &str, expected: Option<usize>) {
        self.kafka.wait_partitions(topic, expected, WAIT).await;
    }

    async fn create_in_kafka(&self, topic: &str, partitions: i32, config: &[(&str, &str)]) {
        self.kafka.create_topic(topic, partitions, config, WAIT).await;
    }

    async fn delete(&self, name: &str) {
        delete_and_wait(&self.topics(), name, WAIT).await;
    }

    async fn stop(self) {
        self.0.stop().await;
    }
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
    assert_eq!(
        status.topic_id.as_deref(),
        Some(h.kafka.topic_id_from_cli(&kafka_name).await.as_str()),
        "status.topicId is the id Kafka's own tool shows"
    );
    assert!(
        h.topics().get(name).await.expect("get").finalizers().is_empty(),
        "Retain: no finalizer"
    );

    // Grow, drop retention and segment.ms, set cleanup.policy.
    merge_patch(
        &h.topics(),
        name,
        json!({
            "spec": {"partitions": 3, "retention": null,
                     "config": {"segment.ms": null, "cleanup.policy": "compact"}}
        }),
    )
    .await;
    h.ready(name).await;
    h.wait_partitions(&kafka_name, Some(3)).await;
    h.wait_configs(&kafka_name, &[("cleanup.policy", "compact")]).await;

    let metrics = h.metrics().await;
    assert!(
        metrics.contains("licenseware_kafka_admin_calls_total{call=\"create_topics\"} 1"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test]
async fn adopts_an_existing_topic_when_told_to_and_refuses_to_shrink_it() {
    let h = Harness::start(120).await;
    let name = "legacy";
    let kafka_name = h.kafka_name(name);
    h.create_in_kafka(&kafka_name, 4, &[("segment.ms", "700000")]).await;
    h.create(json!({
        "metadata": {"name": name, "annotations": {"licenseware.io/adopt": "true"}},
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
        .admin()
        .alter_configs(&[drift], &AdminOptions::new())
        .await
        .expect("alter")
        .into_iter()
        .for_each(|result| {
            result.expect("altered");
        });
    let partitions = NewPartitions::new(&kafka_name, 2);
    for result in
        h.kafka.admin().create_partitions(&[partitions], &AdminOptions::new()).await.expect("grow")
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
    // The broker's own words, not only its error code.
    let bad_config = h.condition("bad-config", "Ready", "False", "KafkaError").await;
    assert!(bad_config.message.contains("create_topics"), "{}", bad_config.message);
    assert!(
        bad_config.message.contains("unknown.config.parameter"),
        "the broker's message names the config: {}",
        bad_config.message
    );
    let replicas = h.condition("too-many-replicas", "Ready", "False", "KafkaError").await;
    assert!(replicas.message.contains("InvalidReplicationFactor"), "{}", replicas.message);
    assert!(
        replicas.message.contains("only 1 broker"),
        "the broker's message gives the broker count: {}",
        replicas.message
    );
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
    let creates = h.metric(&series("create_topics")).await;
    let metadata = h.metric(&series("metadata")).await;
    let batches = h.metric("licenseware_kafka_admin_batches_total").await;
    let carried = h.metric("licenseware_kafka_admin_batched_topics_total").await;
    println!(
        "{TOPICS} topics: {creates} create_topics, {metadata} metadata calls, \
         {batches} batches carrying {carried} topic requests"
    );
    // Each topic is created once; batching puts several in one request.
    assert!(creates < TOPICS as u64 / 2, "{creates} create_topics calls for {TOPICS} topics");
    assert!(metadata < carried, "{metadata} metadata calls for {carried} requests");
    h.stop().await;
}

/// The claim store against the stack's MongoDB: a first claim is one insert, a name
/// claimed again replaces its claim (the duplicate-key path), a forgotten claim is gone,
/// and each claim reads back by name.
#[tokio::test]
async fn the_claim_store_records_replaces_and_forgets_claims_in_mongodb() {
    use licenseware_operator::kafka::{ClaimStore, MongoClaims, TopicClaim};

    let stack = licenseware_e2e::Stack::from_env();
    let mongo = mongodb::Client::with_uri_str(&stack.mongo_url).await.expect("mongodb client");
    let database = mongo.database(&licenseware_e2e::unique_name("claims").replace('-', "_"));
    let claims = MongoClaims::new(&database);
    let claim = |name: &str, claimant: &str| TopicClaim {
        kafka_name: name.to_owned(),
        claimant: claimant.to_owned(),
    };
    let record = [claim("a", "ns/a/u1"), claim("b", "ns/b/u1"), claim("c", "ns/c/u1")];
    claims.record(&record).await.expect("first claims");
    // "a" again, by a Topic made again (another uid), beside a name never claimed.
    claims.record(&[claim("a", "ns/a/u2"), claim("d", "ns/d/u1")]).await.expect("claimed again");
    claims.forget(&["c".to_owned()]).await.expect("forgotten");

    let names = ["a", "b", "c", "d", "never"].map(String::from);
    let read = claims.claimants(&names).await.expect("read");
    let expected = [("a", "ns/a/u2"), ("b", "ns/b/u1"), ("d", "ns/d/u1")]
        .map(|(name, claimant)| (name.to_owned(), claimant.to_owned()));
    assert_eq!(read, expected.into_iter().collect(), "the later claim of a replaced the first");
    database.drop().await.expect("drop the test's database");
}
