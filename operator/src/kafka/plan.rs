//! The pure half of the Kafka admin layer: given what a topic should be and what Kafka
//! has, which admin requests bring them together, and which differences cannot be fixed.

use std::{collections::BTreeMap, fmt};

/// What the operator wants one Kafka topic to be. Built from a Topic resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    /// Full Kafka name, with the operator's prefix.
    pub name: String,
    pub partitions: i32,
    /// `None`: min(3, brokers) on creation, and no check afterwards.
    pub replication_factor: Option<i32>,
    /// The complete set of dynamic topic configs: Kafka's others are removed.
    pub config: BTreeMap<String, String>,
    /// Which existing Kafka topic of that name the caller may take over.
    pub claim: Claim,
    /// Who asks, as the claim store records it (`namespace/name/uid` of the Topic).
    pub claimant: String,
}

/// What entitles a resource to an existing Kafka topic. The operator never takes over a
/// topic it did not create unless told to: Kafka has no owner field, so the resource
/// keeps the proof itself, the topic id it got when it created (or adopted) the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Explicit opt-in (`licenseware.io/adopt: "true"`, or the operator's own registry
    /// topic): create it, or adopt whatever exists.
    Adopt,
    /// The resource manages the topic with this id: an existing topic must have it (a
    /// topic deleted and created again by someone else has another id). A missing
    /// topic is created again.
    Owned(String),
    /// The resource recorded its intent to create the topic before creating it, and
    /// has no id yet: it crashed between the two, or the broker gives no ids. An
    /// existing topic is taken as its own; a create that finds the topic already there
    /// proves the opposite.
    Claimed,
    /// No claim in the resource yet: an existing topic is not touched unless the claim
    /// store holds this resource's intent for it; a missing one is created once the
    /// intent is recorded there (see [`Verdict::Unclaimed`]).
    Unclaimed,
}

/// Whether a batch may act on a topic, from the claim and what Kafka has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Create or update it.
    Proceed,
    /// The topic does not exist and the resource has not recorded its intent yet: the
    /// batcher records it in its claim store, then creates the topic.
    Unclaimed,
    /// The topic exists and is not the resource's; nothing is changed.
    NotOwned { topic_id: Option<String> },
}

/// The ownership rule, pure: `observed_id` is `None` when the topic does not exist,
/// `Some(None)` when it exists without an id (brokers before Kafka 2.8).
pub fn verdict(claim: &Claim, observed_id: Option<Option<&str>>) -> Verdict {
    match (claim, observed_id) {
        (Claim::Unclaimed, None) => Verdict::Unclaimed,
        (Claim::Unclaimed, Some(id)) => Verdict::NotOwned { topic_id: id.map(str::to_owned) },
        (Claim::Owned(own), Some(id)) if id != Some(own.as_str()) => {
            Verdict::NotOwned { topic_id: id.map(str::to_owned) }
        }
        _ => Verdict::Proceed,
    }
}

/// What Kafka has for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedTopic {
    pub partitions: i32,
    pub replication_factor: i32,
    /// Configs set on the topic itself (source `DYNAMIC_TOPIC_CONFIG`); broker and
    /// default values are not listed.
    pub config: BTreeMap<String, String>,
}

/// A difference the operator will not fix, reported with reason `NotSupported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    PartitionDecrease { spec: i32, actual: i32 },
    ReplicationFactorChange { spec: i32, actual: i32 },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PartitionDecrease { spec, actual } => {
                write!(f, "Decreasing partitions not supported (spec {spec} < {actual} in Kafka)")
            }
            Self::ReplicationFactorChange { spec, actual } => write!(
                f,
                "Replication factor change not supported (spec {spec}, {actual} in Kafka)"
            ),
        }
    }
}

/// One change of a topic's dynamic config (IncrementalAlterConfigs SET or DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set {
        key: String,
        value: String,
    },
    /// Back to the broker's default.
    Delete {
        key: String,
    },
}

/// The admin requests one topic needs, and the state it will be in afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Create the topic with this replication factor (and the desired partitions and
    /// configs).
    pub create: Option<i32>,
    /// Raise the partition count to this total.
    pub add_partitions: Option<i32>,
    /// Brings the topic's dynamic configs to the desired ones: every key that differs
    /// is set, every key Kafka has and the spec lacks is deleted.
    pub config_changes: Vec<ConfigChange>,
    pub refusals: Vec<Refusal>,
    /// Partitions once the requests succeed.
    pub partitions: i32,
    /// Replication factor once the requests succeed.
    pub replication_factor: i32,
}

impl Plan {
    /// Whether nothing needs to be sent to Kafka.
    pub fn is_noop(&self) -> bool {
        self.create.is_none() && self.add_partitions.is_none() && self.config_changes.is_empty()
    }
}

/// Compares desired and observed state. `brokers` sets the default replication factor
/// of a topic that does not exist yet.
///
/// Like Strimzi, a refused part does not stop the others: a topic with too many
/// partitions still gets its configs.
pub fn plan(desired: &DesiredTopic, observed: Option<&ObservedTopic>, brokers: i32) -> Plan {
    let Some(observed) = observed else {
        let replication_factor = desired.replication_factor.unwrap_or_else(|| brokers.clamp(1, 3));
        return Plan {
            create: Some(replication_factor),
            add_partitions: None,
            config_changes: Vec::new(),
            refusals: Vec::new(),
            partitions: desired.partitions,
            replication_factor,
        };
    };
    let mut refusals = Vec::new();
    let mut add_partitions = None;
    let mut partitions = observed.partitions;
    if desired.partitions > observed.partitions {
        add_partitions = Some(desired.partitions);
        partitions = desired.partitions;
    } else if desired.partitions < observed.partitions {
        refusals.push(Refusal::PartitionDecrease {
            spec: desired.partitions,
            actual: observed.partitions,
        });
    }
    if let Some(spec) = desired.replication_factor
        && spec != observed.replication_factor
    {
        refusals
            .push(Refusal::ReplicationFactorChange { spec, actual: observed.replication_factor });
    }
    Plan {
        create: None,
        add_partitions,
        config_changes: config_changes(&desired.config, &observed.config),
        refusals,
        partitions,
        replication_factor: observed.replication_factor,
    }
}

/// The changes that turn `observed` into `desired`, in key order.
fn config_changes(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Vec<ConfigChange> {
    let sets = desired
        .iter()
        .filter(|(key, value)| observed.get(*key) != Some(value))
        .map(|(key, value)| ConfigChange::Set { key: key.clone(), value: value.clone() });
    let deletes = observed
        .keys()
        .filter(|key| !desired.contains_key(*key))
        .map(|key| ConfigChange::Delete { key: key.clone() });
    let mut changes: Vec<ConfigChange> = sets.chain(deletes).collect();
    changes.sort_by(|a, b| change_key(a).cmp(change_key(b)));
    changes
}

fn change_key(change: &ConfigChange) -> &str {
    match change {
        ConfigChange::Set { key, .. } | ConfigChange::Delete { key } => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(partitions: i32, config: &[(&str, &str)]) -> DesiredTopic {
        DesiredTopic {
            name: "t".into(),
            partitions,
            replication_factor: None,
            config: config.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            claim: Claim::Adopt,
            claimant: "ns/t/uid".into(),
        }
    }

    #[test]
    fn only_a_claimed_or_owned_topic_is_touched() {
        let owned = Claim::Owned("id-a".into());
        assert_eq!(verdict(&Claim::Unclaimed, None), Verdict::Unclaimed);
        assert_eq!(
            verdict(&Claim::Unclaimed, Some(Some("x"))),
            Verdict::NotOwned { topic_id: Some("x".into()) }
        );
        assert_eq!(verdict(&Claim::Unclaimed, Some(None)), Verdict::NotOwned { topic_id: None });
        assert_eq!(verdict(&owned, Some(Some("id-a"))), Verdict::Proceed);
        // Deleted and created again by someone else: another id.
        assert_eq!(
            verdict(&owned, Some(Some("id-b"))),
            Verdict::NotOwned { topic_id: Some("id-b".into()) }
        );
        assert_eq!(verdict(&owned, Some(None)), Verdict::NotOwned { topic_id: None });
        assert_eq!(verdict(&owned, None), Verdict::Proceed, "a missing owned topic is re-created");
        assert_eq!(verdict(&Claim::Claimed, Some(Some("x"))), Verdict::Proceed);
        assert_eq!(verdict(&Claim::Claimed, None), Verdict::Proceed);
        assert_eq!(verdict(&Claim::Adopt, Some(Some("x"))), Verdict::Proceed);
        assert_eq!(verdict(&Claim::Adopt, None), Verdict::Proceed);
    }

    fn observed(partitions: i32, rf: i32, config: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            partitions,
            replication_factor: rf,
            config: config.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        }
    }

    #[test]
    fn missing_topic_is_created_with_min_3_brokers_replicas() {
        let one = plan(&desired(3, &[]), None, 1);
        assert_eq!(one.create, Some(1));
        assert_eq!((one.partitions, one.replication_factor), (3, 1));
        assert_eq!(plan(&desired(3, &[]), None, 5).create, Some(3));
        let explicit = DesiredTopic { replication_factor: Some(2), ..desired(1, &[]) };
        assert_eq!(plan(&explicit, None, 5).create, Some(2));
    }

    #[test]
    fn identical_topic_needs_nothing() {
        let p = plan(
            &desired(2, &[("retention.ms", "1000")]),
            Some(&observed(2, 1, &[("retention.ms", "1000")])),
            1,
        );
        assert!(p.is_noop());
        assert!(p.refusals.is_empty());
    }

    #[test]
    fn partitions_only_grow() {
        let grow = plan(&desired(4, &[]), Some(&observed(2, 1, &[])), 1);
        assert_eq!(grow.add_partitions, Some(4));
        assert_eq!(grow.partitions, 4);
        let shrink = plan(&desired(2, &[]), Some(&observed(4, 1, &[])), 1);
        assert_eq!(shrink.add_partitions, None);
        assert_eq!(shrink.partitions, 4);
        assert_eq!(shrink.refusals, [Refusal::PartitionDecrease { spec: 2, actual: 4 }]);
        assert_eq!(
            shrink.refusals[0].to_string(),
            "Decreasing partitions not supported (spec 2 < 4 in Kafka)"
        );
    }

    #[test]
    fn refused_decrease_still_applies_configs() {
        let p = plan(&desired(1, &[("cleanup.policy", "compact")]), Some(&observed(3, 1, &[])), 1);
        assert_eq!(
            p.config_changes,
            [ConfigChange::Set { key: "cleanup.policy".into(), value: "compact".into() }]
        );
        assert_eq!(p.refusals.len(), 1);
    }

    #[test]
    fn config_diff_covers_set_changed_and_removed_keys() {
        let o = observed(1, 1, &[("retention.ms", "1000"), ("segment.ms", "5000")]);
        let set =
            |key: &str, value: &str| ConfigChange::Set { key: key.into(), value: value.into() };
        let delete = |key: &str| ConfigChange::Delete { key: key.into() };
        // A key removed from the spec is removed from Kafka; an equal one is left alone.
        assert_eq!(
            plan(&desired(1, &[("retention.ms", "1000")]), Some(&o), 1).config_changes,
            [delete("segment.ms")]
        );
        // A changed value, a removed key and a new key, in key order.
        assert_eq!(
            plan(&desired(1, &[("retention.ms", "2000"), ("a", "b")]), Some(&o), 1).config_changes,
            [set("a", "b"), set("retention.ms", "2000"), delete("segment.ms")]
        );
        assert!(plan(&desired(1, &[]), Some(&observed(1, 1, &[])), 1).is_noop());
    }

    #[test]
    fn replication_factor_is_checked_only_when_set() {
        assert!(plan(&desired(1, &[]), Some(&observed(1, 3, &[])), 1).refusals.is_empty());
        let spec = DesiredTopic { replication_factor: Some(1), ..desired(1, &[]) };
        let p = plan(&spec, Some(&observed(1, 3, &[])), 3);
        assert_eq!(p.refusals, [Refusal::ReplicationFactorChange { spec: 1, actual: 3 }]);
        assert_eq!(p.replication_factor, 3);
    }
}
