//! The status a reconcile outcome leads to: a pure function of the old status, so an
//! unchanged outcome yields an identical status and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use licenseware_crds::{
    TopicStatus, condition_type,
    conditions::{new_condition, set_condition, status as condition_status},
    reason,
};

use crate::kafka::AppliedTopic;

/// Condition type `Unmanaged`: True when `licenseware.io/managed` is "false".
pub const UNMANAGED: &str = "Unmanaged";
/// Condition type `ReconciliationPaused`: True when `licenseware.io/paused` is "true".
pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";

/// What one reconcile found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unmanaged,
    Paused,
    InvalidSpec(String),
    /// The resource already manages `current`, and its spec now names another topic.
    Renamed {
        current: String,
        desired: String,
    },
    /// An older resource (`namespace/name`) manages the same Kafka topic.
    Conflict {
        owner: String,
    },
    /// The name is internal, reserved or outside the namespace's topics.
    Refused(String),
    /// The Kafka topic exists and this resource neither created nor adopted it.
    NotOwned {
        name: String,
        topic_id: Option<String>,
    },
    Applied {
        name: String,
        applied: AppliedTopic,
    },
    KafkaError(String),
}

impl Outcome {
    /// The reason of the Ready condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unmanaged => reason::UNMANAGED,
            Self::Paused => reason::RECONCILIATION_PAUSED,
            Self::InvalidSpec(_) => reason::INVALID_SPEC,
            Self::Renamed { .. } => reason::NOT_SUPPORTED,
            Self::Conflict { .. } | Self::NotOwned { .. } => reason::RESOURCE_CONFLICT,
            Self::Refused(_) => reason::NOT_SUPPORTED,
            Self::Applied { applied, .. } if !applied.refusals.is_empty() => reason::NOT_SUPPORTED,
            Self::Applied { .. } => reason::RECONCILED,
            Self::KafkaError(_) => reason::KAFKA_ERROR,
        }
    }
}

/// The status after `outcome`, starting from `old`. `lastTransitionTime` of a condition
/// only moves when its status does.
pub fn next_status(
    old: Option<&TopicStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Time,
) -> TopicStatus {
    let mut status = old.cloned().unwrap_or_default();
    let ready = |ok: bool, message: String| {
        new_condition(condition_type::READY, ok, outcome.reason(), message, generation, now.clone())
    };
    // Conditions of the states the resource is not in go away.
    status.conditions.retain(|c| match outcome {
        Outcome::Unmanaged => c.type_ != RECONCILIATION_PAUSED,
        Outcome::Paused => c.type_ != UNMANAGED,
        _ => c.type_ != UNMANAGED && c.type_ != RECONCILIATION_PAUSED,
    });
    match outcome {
        Outcome::Unmanaged => {
            // topicId stays: it proves which topic this resource manages once managed
            // again.
            status.observed_generation = generation;
            set_condition(
                &mut status.conditions,
                new_condition(
                    UNMANAGED,
                    true,
                    reason::UNMANAGED,
                    "licenseware.io/managed is \"false\": the operator leaves the Kafka topic alone",
                    generation,
                    now.clone(),
                ),
            );
            set_condition(
                &mut status.conditions,
                ready(true, "Not managed: the Kafka topic is neither checked nor changed".into()),
            );
        }
        Outcome::Paused => {
            // The spec is not acted on, so observedGeneration stays and Ready keeps
            // what the last reconcile found.
            set_condition(
                &mut status.conditions,
                new_condition(
                    RECONCILIATION_PAUSED,
                    true,
                    reason::RECONCILIATION_PAUSED,
                    "licenseware.io/paused is \"true\": spec changes are not propagated to Kafka",
                    generation,
                    now.clone(),
                ),
            );
            if !status.conditions.iter().any(|c| c.type_ == condition_type::READY) {
                status.conditions.push(Condition {
                    status: condition_status::UNKNOWN.to_owned(),
                    ..ready(false, "Paused before the first reconcile".into())
                });
            }
        }
        Outcome::InvalidSpec(message) | Outcome::KafkaError(message) => {
            status.observed_generation = generation;
            set_condition(&mut status.conditions, ready(false, message.clone()));
        }
        Outcome::Renamed { current, desired } => {
            status.observed_generation = generation;
            set_condition(
                &mut status.conditions,
                ready(
                    false,
                    format!(
                        "Changing the topic name is not supported: this resource manages \
                         {current}, its spec now names {desired}"
                    ),
                ),
            );
        }
        Outcome::Conflict { owner } => {
            status.observed_generation = generation;
            set_condition(&mut status.conditions, ready(false, format!("Managed by {owner}")));
        }
        Outcome::Refused(message) => {
            status.observed_generation = generation;
            status.topic_name = None;
            status.topic_id = None;
            set_condition(&mut status.conditions, ready(false, message.clone()));
        }
        Outcome::NotOwned { name, topic_id } => {
            status.observed_generation = generation;
            // Not ours: nothing recorded may later pass for a claim on it.
            status.topic_name = None;
            status.topic_id = None;
            let id = topic_id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
            set_condition(
                &mut status.conditions,
                ready(
                    false,
                    format!(
                        "Kafka topic {name}{id} already exists and was not created by this \
                         resource: it is left untouched. To manage it, annotate the Topic \
                         licenseware.io/adopt=\"true\""
                    ),
                ),
            );
        }
        Outcome::Applied { name, applied } => {
            status.observed_generation = generation;
            status.topic_name = Some(name.clone());
            status.partitions = Some(applied.partitions);
            status.replication_factor = Some(applied.replication_factor);
            // A broker without topic ids keeps the last one seen.
            if let Some(id) = &applied.topic_id {
                status.topic_id = Some(id.clone());
            }
            let message = if applied.refusals.is_empty() {
                format!("Kafka topic {name} is in line with the spec")
            } else {
                applied.refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            };
            set_condition(&mut status.conditions, ready(applied.refusals.is_empty(), message));
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use licenseware_crds::conditions::find_condition;

    use super::*;
    use crate::kafka::Refusal;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).expect("ts"))
    }

    fn applied(refusals: Vec<Refusal>) -> Outcome {
        Outcome::Applied {
            name: "p.t".into(),
            applied: AppliedTopic {
                created: true,
                partitions: 4,
                replication_factor: 1,
                refusals,
                topic_id: Some("AAAAAAAAAAAAAAAAAAAAAA".into()),
            },
        }
    }

    fn ready(status: &TopicStatus) -> &Condition {
        find_condition(&status.conditions, condition_type::READY).expect("Ready")
    }

    #[test]
    fn applied_topic_is_ready_and_a_second_pass_changes_nothing() {
        let first = next_status(None, Some(1), &applied(vec![]), at(1));
        assert_eq!(first.topic_name.as_deref(), Some("p.t"));
        assert_eq!((first.partitions, first.replication_factor), (Some(4), Some(1)));
        assert_eq!(first.observed_generation, Some(1));
        assert_eq!(ready(&first).status, "True");
        assert_eq!(ready(&first).reason, "Reconciled");
        let second = next_status(Some(&first), Some(1), &applied(vec![]), at(2));
        assert_eq!(first, second);
    }

    #[test]
    fn refusal_is_not_supported_with_the_numbers() {
        let status = next_status(
            None,
            Some(2),
            &applied(vec![Refusal::PartitionDecrease { spec: 2, actual: 4 }]),
            at(1),
        );
        assert_eq!(ready(&status).status, "False");
        assert_eq!(ready(&status).reason, "NotSupported");
        assert_eq!(
            ready(&status).message,
            "Decreasing partitions not supported (spec 2 < 4 in Kafka)"
        );
    }

    #[test]
    fn conflict_names_the_owner_and_keeps_the_rest() {
        let ok = next_status(None, Some(1), &applied(vec![]), at(1));
        let conflict =
            next_status(Some(&ok), Some(1), &Outcome::Conflict { owner: "ns/old".into() }, at(2));
        assert_eq!(ready(&conflict).reason, "ResourceConflict");
        assert_eq!(ready(&conflict).message, "Managed by ns/old");
        assert_eq!(ready(&conflict).last_transition_time, at(2));
    }

    #[test]
    fn a_topic_not_owned_clears_every_claim_and_says_how_to_adopt() {
        // A claim recorded in the status by an operator before the claim store.
        let claiming = TopicStatus { topic_name: Some("p.t".into()), ..TopicStatus::default() };
        let outcome = Outcome::NotOwned { name: "p.t".into(), topic_id: Some("X".into()) };
        let status = next_status(Some(&claiming), Some(1), &outcome, at(2));
        assert_eq!((status.topic_name.as_deref(), status.topic_id.as_deref()), (None, None));
        assert_eq!(ready(&status).reason, "ResourceConflict");
        assert!(ready(&status).message.contains("p.t (id X) already exists"));
        assert!(ready(&status).message.contains("licenseware.io/adopt"));
        let refused = next_status(None, Some(1), &Outcome::Refused("reserved".into()), at(1));
        assert_eq!(ready(&refused).reason, "NotSupported");
    }

    #[test]
    fn unmanaged_and_paused_conditions_come_and_go() {
        let ok = next_status(None, Some(1), &applied(vec![]), at(1));
        let paused = next_status(Some(&ok), Some(2), &Outcome::Paused, at(2));
        assert!(find_condition(&paused.conditions, RECONCILIATION_PAUSED).is_some());
        assert_eq!(paused.observed_generation, Some(1), "a paused spec is not observed");
        assert_eq!(ready(&paused).reason, "Reconciled");
        let unmanaged = next_status(Some(&paused), Some(3), &Outcome::Unmanaged, at(3));
        assert!(find_condition(&unmanaged.conditions, RECONCILIATION_PAUSED).is_none());
        assert_eq!(find_condition(&unmanaged.conditions, UNMANAGED).expect("c").status, "True");
        assert_eq!(ready(&unmanaged).reason, "Unmanaged");
        let managed = next_status(Some(&unmanaged), Some(4), &applied(vec![]), at(4));
        assert!(find_condition(&managed.conditions, UNMANAGED).is_none());
        let fresh_pause = next_status(None, Some(1), &Outcome::Paused, at(1));
        assert_eq!(ready(&fresh_pause).status, "Unknown");
    }
}
