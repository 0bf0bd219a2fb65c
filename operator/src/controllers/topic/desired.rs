//! The pure steps of a Topic reconcile: how the operator treats the resource, the
//! validated desired Kafka topic, and which resource owns a Kafka topic name.

use std::collections::BTreeMap;

use licenseware_crds::{
    DeletionPolicy, Topic,
    topic::{ADOPT_ANNOTATION, MANAGED_ANNOTATION, PAUSED_ANNOTATION},
};

use crate::kafka::{Claim, DesiredTopic};

/// Which Kafka names Topics may claim: the operator's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPolicy {
    /// The operator's `--topic-prefix`.
    pub prefix: String,
    /// Names no Topic may claim, with or without the prefix: the registry topic and the
    /// notification topics.
    pub reserved: Vec<String>,
    /// `--topic-namespace-prefix`: a Topic in namespace `ns` may only name topics that
    /// start with `ns.` (before the operator's prefix), or with the namespace's entry in
    /// `namespace_prefixes`.
    pub namespace_prefix: bool,
    pub namespace_prefixes: BTreeMap<String, String>,
}

impl TopicPolicy {
    /// The prefix that Topics of `namespace` must use, when names are bound to
    /// namespaces.
    pub fn namespace_bound(&self, namespace: &str) -> Option<String> {
        if !self.namespace_prefix {
            return None;
        }
        Some(
            self.namespace_prefixes
                .get(namespace)
                .cloned()
                .unwrap_or_else(|| format!("{namespace}.")),
        )
    }

    /// Why `topic` may not claim its Kafka name, if it may not: the condition message.
    pub fn refusal(&self, topic: &Topic) -> Option<String> {
        let name = topic.topic_name();
        let kafka_name = kafka_name(topic, &self.prefix);
        if name.starts_with("__") || kafka_name.starts_with("__") {
            return Some(format!(
                "Kafka topic {kafka_name} is an internal topic (names starting with \"__\" \
                 belong to Kafka and its tools); the operator does not manage it"
            ));
        }
        if let Some(reserved) = self.reserved.iter().find(|r| **r == name || **r == kafka_name) {
            return Some(format!(
                "Kafka topic {kafka_name} is reserved ({reserved}: the registry or a \
                 notification topic); a Topic resource cannot manage it"
            ));
        }
        let namespace = topic.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(bound) = self.namespace_bound(namespace)
            && !name.starts_with(&bound)
        {
            return Some(format!(
                "topic name {name} is outside this namespace's topics: Topics in namespace \
                 {namespace} may only name topics starting with {bound:?}"
            ));
        }
        None
    }
}

/// Whether the annotation `licenseware.io/adopt` is "true".
pub fn adopts(topic: &Topic) -> bool {
    topic
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ADOPT_ANNOTATION))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What entitles `topic` to the Kafka topic `kafka_name`: the opt-in annotation, the
/// topic id it recorded when it created or adopted the topic, or the intent to create
/// it that it recorded just before (a status topicName without an id).
pub fn claim(topic: &Topic, kafka_name: &str) -> Claim {
    if adopts(topic) {
        return Claim::Adopt;
    }
    let status = topic.status.as_ref();
    if status.and_then(|s| s.topic_name.as_deref()) != Some(kafka_name) {
        return Claim::Unclaimed;
    }
    match status.and_then(|s| s.topic_id.clone()) {
        Some(id) => Claim::Owned(id),
        None => Claim::Claimed,
    }
}

/// Who the claim store records as claiming a Kafka topic for `topic`: its namespace,
/// name and uid (a Topic deleted and made again under the same name is another).
pub fn claimant(topic: &Topic) -> String {
    format!("{}/{}", reference(topic), topic.metadata.uid.as_deref().unwrap_or_default())
}

/// The Kafka topic that deleting `topic` with `deletionPolicy: Delete` may delete: its
/// name and the id it recorded. Without a recorded id nothing is deleted: the resource
/// cannot prove the topic of that name is the one it created.
pub fn deletable(topic: &Topic) -> Option<(String, String)> {
    let status = topic.status.as_ref()?;
    Some((status.topic_name.clone()?, status.topic_id.clone()?))
}

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
/// wrong, for the InvalidSpec condition. The claim is [`claim`]'s.
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
        claim: claim(topic, &name),
        claimant: claimant(topic),
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

    fn policy() -> TopicPolicy {
        TopicPolicy {
            prefix: "p.".into(),
            reserved: vec!["licenseware.registry".into(), "AppEvents".into(), "LogEvents".into()],
            ..TopicPolicy::default()
        }
    }

    fn named(namespace: &str, topic_name: &str) -> Topic {
        topic(&format!(
            "apiVersion: licenseware.io/v1alpha1\nkind: Topic\n\
             metadata: {{name: t, namespace: {namespace}}}\nspec: {{topicName: {topic_name}}}"
        ))
    }

    #[test]
    fn internal_and_reserved_names_are_refused() {
        let p = policy();
        assert_eq!(p.refusal(&named("ns", "orders")), None);
        for name in [
            "__consumer_offsets",
            "__strimzi_store_topic",
            "licenseware.registry",
            "AppEvents",
            "LogEvents",
        ] {
            assert!(p.refusal(&named("ns", name)).is_some(), "{name}");
        }
        // A configured name is reserved with the prefix too (the worker's topics are
        // full names, and may or may not carry it).
        let full = TopicPolicy { reserved: vec!["p.AppEvents".into()], ..policy() };
        assert!(full.refusal(&named("ns", "AppEvents")).is_some());
        assert!(p.refusal(&named("ns", "__x")).unwrap().contains("internal"));
        assert!(p.refusal(&named("ns", "AppEvents")).unwrap().contains("reserved"));
    }

    #[test]
    fn names_can_be_bound_to_the_namespace() {
        let mut p = policy();
        assert_eq!(p.refusal(&named("team-a", "team-b.orders")), None, "off by default");
        p.namespace_prefix = true;
        assert_eq!(p.refusal(&named("team-a", "team-a.orders")), None);
        let refused = p.refusal(&named("team-a", "team-b.orders")).expect("refused");
        assert!(refused.contains("\"team-a.\""), "{refused}");
        p.namespace_prefixes.insert("team-a".into(), "billing-".into());
        assert_eq!(p.refusal(&named("team-a", "billing-orders")), None);
        assert!(p.refusal(&named("team-a", "team-a.orders")).is_some());
    }

    #[test]
    fn the_claim_comes_from_the_annotation_or_the_recorded_topic() {
        let mut t = named("ns", "orders");
        assert_eq!(claim(&t, "p.orders"), Claim::Unclaimed);
        t.status = Some(licenseware_crds::TopicStatus {
            topic_name: Some("p.orders".into()),
            ..Default::default()
        });
        assert_eq!(claim(&t, "p.orders"), Claim::Claimed);
        assert_eq!(deletable(&t), None, "no id: nothing to delete");
        t.status.as_mut().expect("status").topic_id = Some("AAAA".into());
        assert_eq!(claim(&t, "p.orders"), Claim::Owned("AAAA".into()));
        assert_eq!(deletable(&t), Some(("p.orders".into(), "AAAA".into())));
        assert_eq!(claim(&t, "p.other"), Claim::Unclaimed, "status of another name");
        t.metadata.annotations = Some([(ADOPT_ANNOTATION.to_owned(), "true".to_owned())].into());
        assert_eq!(claim(&t, "p.other"), Claim::Adopt);
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
