//! `Topic`: a Kafka topic managed by the operator, shaped after Strimzi's KafkaTopic.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::duration::{DURATION_PATTERN, DurationError, parse_duration_ms};
use crate::schema::free_form_object;

/// Annotation `licenseware.io/managed: "false"`: the operator leaves the Kafka topic
/// alone, and deleting the resource leaves the topic in place.
pub const MANAGED_ANNOTATION: &str = "licenseware.io/managed";
/// Annotation `licenseware.io/paused: "true"`: spec changes are not propagated.
pub const PAUSED_ANNOTATION: &str = "licenseware.io/paused";
/// Annotation `licenseware.io/adopt: "true"`: the operator may take over a Kafka topic
/// of this name that it did not create (its partitions grow and its configs become the
/// spec's). Without it, an existing topic the resource did not create is left alone
/// and the resource is `ResourceConflict`.
pub const ADOPT_ANNOTATION: &str = "licenseware.io/adopt";
/// The Kafka topic config that `spec.retention` sets.
pub const RETENTION_MS: &str = "retention.ms";

/// Legal Kafka topic names: letters, digits, `.`, `_` and `-`, at most 249 characters.
const TOPIC_NAME_PATTERN: &str = r"^[a-zA-Z0-9._-]+$";

/// Desired state of a Kafka topic: the operator creates it and keeps its partitions and
/// configs in line with this spec. An existing topic that this resource did not create
/// is only adopted with the annotation licenseware.io/adopt: "true"; names starting with
/// "__", the registry topic and the notification topics are refused.
// The root-level rule compares the effective name (spec.topicName, else metadata.name)
// of the old and new object, so it also refuses setting topicName later to anything
// other than metadata.name, and removing it when it differed. Root-level rules may read
// metadata.name.
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "Topic",
    namespaced,
    status = "TopicStatus",
    derive = "PartialEq",
    shortname = "lwt",
    shortname = "lwtopic",
    category = "licenseware",
    doc = "A Kafka topic managed by the Licenseware operator.",
    validation = Rule::new(
        "(has(self.spec.topicName) ? self.spec.topicName : self.metadata.name) == \
         (has(oldSelf.spec.topicName) ? oldSelf.spec.topicName : oldSelf.metadata.name)"
    )
    .message("spec.topicName is immutable: the Kafka topic name (spec.topicName, else metadata.name) cannot change; create a new Topic instead")
    .field_path(".spec.topicName"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".status.topicName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(
        name = "Replication",
        type_ = "integer",
        json_path = ".status.replicationFactor"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.retention) || !has(self.config) || !('retention.ms' in self.config)")
    .message("set either retention or config[\"retention.ms\"], not both"))]
pub struct TopicSpec {
    /// Name of the topic in Kafka, before the operator's topic prefix. Use it when the
    /// name is not a valid Kubernetes name (upper case, '_'). Default: metadata.name.
    /// Cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TOPIC_NAME_PATTERN), length(min = 1, max = 249))]
    pub topic_name: Option<String>,
    /// Number of partitions. It can only grow; Kafka cannot remove partitions.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self >= oldSelf")
        .message("partitions cannot be decreased: Kafka cannot remove partitions"))]
    pub partitions: i32,
    /// Copies of each partition. Default: 3, or the number of brokers when there are
    /// fewer. Cannot be changed once the topic exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32767))]
    pub replication_factor: Option<i32>,
    /// Kafka topic configs, e.g. {"cleanup.policy": "compact", "min.insync.replicas":
    /// "2"}. Values are strings. Configs not listed are reset to the broker default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// How long records are kept: a whole number and a unit (ms, s, m, h, d or w), e.g.
    /// 7d or 12h. Sets retention.ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub retention: Option<String>,
    /// Contract of the messages: the producers of this project validate every message
    /// against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<TopicSchema>,
    /// What happens to the Kafka topic when this resource is deleted: Retain (keep it) or
    /// Delete. Delete only deletes the topic this resource created or adopted (the one
    /// whose id is in status.topicId), never another topic of the same name.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_partitions() -> i32 {
    1
}

/// The message contract of a topic, as in kafkaesk: messages are envelopes
/// `{"schema": "<id>:<version>", "data": {...}}`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSchema {
    /// Schema name, e.g. `ProcessingEvent`.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Schema version, e.g. 1.
    #[schemars(range(min = 1))]
    pub version: i32,
    /// JSON Schema that the envelope's `data` must match.
    #[schemars(schema_with = "free_form_object")]
    pub json_schema: Map<String, Value>,
}

impl TopicSchema {
    /// The envelope's `schema` value: `{id}:{version}`, e.g. `ProcessingEvent:1`.
    pub fn envelope_name(&self) -> String {
        format!("{}:{}", self.id, self.version)
    }
}

/// What happens to the Kafka topic when the resource is deleted: Retain or Delete.
// No variant docs: they would turn the schema into `oneOf` branches.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// Observed state of a Topic.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Name of the topic in Kafka, with the operator's prefix. It does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Kafka's id of the topic this resource created or adopted; it changes only if the
    /// topic is deleted and created again. It is the operator's proof of ownership: an
    /// existing topic with another id is not touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Current state: Ready, with reasons such as NotSupported, KafkaError or
    /// ResourceConflict when it is False.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

impl Topic {
    /// `spec.topicName`, or metadata.name (before the operator's topic prefix).
    pub fn topic_name(&self) -> String {
        match &self.spec.topic_name {
            Some(name) => name.clone(),
            None => self.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// `spec.retention` in milliseconds, if set.
    pub fn retention_ms(&self) -> Result<Option<i64>, DurationError> {
        self.spec.retention.as_deref().map(parse_duration_ms).transpose()
    }

    /// The topic configs to apply in Kafka: `spec.config` plus `retention.ms` from
    /// `spec.retention`.
    pub fn kafka_config(&self) -> Result<BTreeMap<String, String>, DurationError> {
        let mut config = self.spec.config.clone();
        if let Some(ms) = self.retention_ms()? {
            config.insert(RETENTION_MS.to_owned(), ms.to_string());
        }
        Ok(config)
    }

    /// Replication factor to create the topic with: the spec's, else min(3, brokers).
    pub fn replication_factor(&self, brokers: i32) -> i32 {
        self.spec.replication_factor.unwrap_or_else(|| brokers.clamp(1, 3))
    }
}
