//! The pure steps of a Topic reconcile: how the operator treats the resource, the
//! validated desired Kafka topic, and which resource owns a Kafka topic name.

use licenseware_crds::{
    DeletionPolicy, Topic,
    topic::{MANAGED_ANNOTATION, PAUSED_ANNOTATION},
};

use crate::kafka::DesiredTopic;

/// Kafka's limit on topic names.
const MAX_TOPIC_NAME: usize = 249;

/// How the operator treats a Topic, from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Management {
    /// `licenseware.io/managed: "false"`: hands off.
    Unmanaged,
    /// `licenseware.io/paused: "true"`: nothing is propagated, deletion still is.
    Paused,
    Managed,
}

pub fn management(topic: &Topic) -> Management {
    let annotation =
        |key: &str| topic.metadata.annotations.as_ref().and_then(|a| a.get(key)).map(|v| v.trim());
    if annotation(MANAGED_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        Management::Unmanaged
    } else if annotation(PAUSED_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        Management::Paused
    } else {
        Management::Managed
    }
}

/// The Kafka name the resource claims: the operator's prefix and the topic name.
pub fn kafka_name(topic: &Topic, prefix: &str) -> String {
    format!("{prefix}{}", topic.topic_name())
}

/// A finalizer is only needed when deleting the resource must delete the Kafka topic.
pub fn needs_finalizer(topic: &Topic) -> bool {
    management(topic) != Management::Unmanaged
        && topic.spec.deletion_policy == DeletionPolicy::Delete
}

/// Checks the spec and builds the Kafka topic it asks for. The error says what is
/// wrong, for the InvalidSpec condition.
pub fn desired_topic(topic: &Topic, prefix: &str) -> Result<DesiredTopic, String> {
    let name = kafka_name(topic, prefix);
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid Kafka topic name"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(format!(
            "Kafka topic name {name} is {} characters long; the limit is {MAX_TOPIC_NAME}",
            name.len()
        ));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
        return Err(format!(
            "Kafka topic name {name} contains {bad:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    if topic.spec.partitions < 1 {
        return Err(format!("partitions must be at least 1, not {}", topic.spec.partitions));
    }
    if let Some(rf) = topic.spec.replication_factor
        && rf < 1
    {
        return Err(format!("replicationFactor must be at least 1, not {rf}"));
    }
    let config = topic.kafka_config().map_err(|error| format!("retention: {error}"))?;
    if let Some(key) = config.keys().find(|key| key.trim().is_empty()) {
        return Err(format!("config has an empty key {key:?}"));
    }
    Ok(DesiredTopic {
        name,
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        config,
    })
}

/// The `namespace/name` of the resource that owns `kafka_name` among `candidates`: the
/// oldest managed one (creationTimestamp, then namespace/name), as Strimzi does.
/// Unmanaged resources claim nothing.
pub fn owner<'a>(
    candidates: impl IntoIterator<Item = &'a Topic>,
    prefix: &str,
    kafka_name_: &str,
) -> Option<String> {
    candidates
        .into_iter()
        .filter(|t| management(t) != Management::Unmanaged && kafka_name(t, prefix) == kafka_name_)
        .min_by(|a, b| claim_key(a).cmp(&claim_key(b)))
        .map(reference)
}

/// `namespace/name`.
pub fn reference(topic: &Topic) -> String {
    format!(
        "{}/{}",
        topic.metadata.namespace.as_deref().unwrap_or_default(),
        topic.metadata.name.as_deref().unwrap_or_default()
    )
}

fn claim_key(
    topic: &Topic,
) -> (bool, Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>, &str, &str) {
    let created = topic.metadata.creation_timestamp.as_ref();
    (
        // Objects without a timestamp (never stored) sort last.
        created.is_none(),
        created,
        topic.metadata.namespace.as_deref().unwrap_or_default(),
        topic.metadata.name.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use licenseware_crds::TopicSpec;

    use super::*;

    fn topic(yaml: &str) -> Topic {
        serde_yaml::from_str(yaml).expect("valid Topic")
    }

    fn at(ns: &str, name: &str, created: i64) -> Topic {
        let mut t = topic(&format!(
            "apiVersion: licenseware.io/v1alpha1\nkind: Topic\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{topicName: shared}}"
        ));
        t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).expect("ts")));
        t
    }

    #[test]
    fn builds_the_prefixed_topic_with_retention() {
        let t = topic(
            "apiVersion: licenseware.io/v1alpha1\nkind: Topic\nmetadata: {name: events}\n\
             spec: {partitions: 3, retention: 7d, config: {cleanup.policy: compact}}",
        );
        let desired = desired_topic(&t, "prod.").expect("valid");
        assert_eq!(desired.name, "prod.events");
        assert_eq!(desired.partitions, 3);
        assert_eq!(desired.replication_factor, None);
        assert_eq!(desired.config["retention.ms"], "604800000");
        assert_eq!(desired.config["cleanup.policy"], "compact");
    }

    #[test]
    fn refuses_names_kafka_refuses() {
        let mut t = topic(
            "apiVersion: licenseware.io/v1alpha1\nkind: Topic\nmetadata: {name: a}\nspec: {}",
        );
        assert!(desired_topic(&t, "bad prefix ").unwrap_err().contains("' '"));
        t.spec.topic_name = Some("x".repeat(249));
        assert!(desired_topic(&t, "").is_ok());
        assert!(desired_topic(&t, "p.").unwrap_err().contains("limit is 249"));
        t.spec = TopicSpec { partitions: 0, ..t.spec.clone() };
        assert!(desired_topic(&t, "").unwrap_err().contains("partitions"));
    }

    #[test]
    fn annotations_choose_the_management() {
        let mut t = topic(
            "apiVersion: licenseware.io/v1alpha1\nkind: Topic\nmetadata: {name: a}\nspec: {deletionPolicy: Delete}",
        );
        assert_eq!(management(&t), Management::Managed);
        assert!(needs_finalizer(&t));
        t.metadata.annotations = Some([(PAUSED_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert_eq!(management(&t), Management::Paused);
        assert!(needs_finalizer(&t), "deleting a paused topic still deletes the Kafka topic");
        t.metadata.annotations = Some(
            [
                (PAUSED_ANNOTATION.to_owned(), "true".to_owned()),
                (MANAGED_ANNOTATION.to_owned(), "false".to_owned()),
            ]
            .into(),
        );
        assert_eq!(management(&t), Management::Unmanaged);
        assert!(!needs_finalizer(&t));
        t.metadata.annotations = None;
        t.spec.deletion_policy = DeletionPolicy::Retain;
        assert!(!needs_finalizer(&t));
    }

    #[test]
    fn oldest_claimant_owns_the_kafka_topic() {
        let older = at("b", "z", 10);
        let newer = at("a", "a", 20);
        assert_eq!(owner([&newer, &older], "", "shared").as_deref(), Some("b/z"));
        // Same creation time: namespace, then name.
        let twin = at("a", "y", 10);
        assert_eq!(owner([&older, &twin, &newer], "", "shared").as_deref(), Some("a/y"));
        // Other names and unmanaged resources claim nothing.
        assert_eq!(owner([&older], "", "other"), None);
        let mut unmanaged = at("a", "old", 1);
        unmanaged.metadata.annotations =
            Some([(MANAGED_ANNOTATION.to_owned(), "false".to_owned())].into());
        assert_eq!(owner([&unmanaged, &newer], "", "shared").as_deref(), Some("a/a"));
    }
}
