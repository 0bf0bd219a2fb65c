//! Status conditions: the type and reason vocabulary of every kind, and a pure helper
//! that sets one condition without churning `lastTransitionTime`.
//!
//! Conditions use the standard `metav1.Condition` shape, so `kubectl wait
//! --for=condition=Ready` and GitOps health checks work unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Condition types.
pub mod condition_type {
    /// Every kind: the resource is fully reconciled and usable.
    pub const READY: &str = "Ready";
    /// Uploader: its events and dead-letter Topics are Ready.
    pub const TOPIC_READY: &str = "TopicReady";
    /// Uploader: its worker Deployment exists and matches the spec.
    pub const WORKER_READY: &str = "WorkerReady";
    /// Uploader, Report, ReportComponent, DataTable: the registry entry is written.
    pub const REGISTERED: &str = "Registered";
    /// Every kind, kept by [`super::set_condition`] from Ready: present (`True`) only
    /// while Ready is `False` for a reason no retry can fix (see
    /// [`super::is_terminal`]), so kstatus (Flux, `kstatus`-based tools) reports the
    /// resource Failed at once instead of InProgress until a timeout.
    pub const STALLED: &str = "Stalled";
}

/// Condition reasons (CamelCase, as the apiserver requires). Topic reasons follow
/// Strimzi's KafkaTopic so that runbooks written for it still apply.
pub mod reason {
    /// The condition holds: everything was applied.
    pub const RECONCILED: &str = "Reconciled";
    /// Work is under way, e.g. waiting for a child resource to become Ready.
    pub const PROGRESSING: &str = "Progressing";
    /// The spec cannot be acted on; the message says which field and why.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The change asked for is impossible (decreasing partitions, renaming a topic,
    /// changing a replication factor).
    pub const NOT_SUPPORTED: &str = "NotSupported";
    /// Kafka refused a request; the message carries the broker's error.
    pub const KAFKA_ERROR: &str = "KafkaError";
    /// Another resource already manages the same Kafka topic or registry entry.
    pub const RESOURCE_CONFLICT: &str = "ResourceConflict";
    /// Writing the registry entry failed.
    pub const REGISTRY_ERROR: &str = "RegistryError";
    /// `registrable: false`: no registry entry is written, on purpose.
    pub const NOT_REGISTRABLE: &str = "NotRegistrable";
    /// An owned Topic is not Ready yet.
    pub const TOPIC_NOT_READY: &str = "TopicNotReady";
    /// The worker Deployment is missing or not yet updated.
    pub const WORKER_NOT_READY: &str = "WorkerNotReady";
    /// A Kubernetes API call failed.
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    /// Annotation `licenseware.io/managed: "false"`: the operator keeps its hands off.
    pub const UNMANAGED: &str = "Unmanaged";
    /// Annotation `licenseware.io/paused: "true"`: changes are not propagated.
    pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";
    /// Anything unexpected; the message has the details.
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// ReportComponent: the pipeline uses a stage or operator outside the allowlist, or
    /// is too large or too deep; the message names it and its path.
    pub const PIPELINE_NOT_ALLOWED: &str = "PipelineNotAllowed";
    /// ReportComponent: data.collection is not one of the app's declared collections.
    pub const COLLECTION_NOT_ALLOWED: &str = "CollectionNotAllowed";
    /// Uploader: worker.image is outside the operator's allowed registries.
    pub const IMAGE_NOT_ALLOWED: &str = "ImageNotAllowed";
}

/// Condition status values.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// Not known yet.
    pub const UNKNOWN: &str = "Unknown";
}

/// Status of the kinds that only become registry entries: Report, ReportComponent and
/// DataTable.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatus {
    /// The `metadata.generation` this status describes. When it is lower than the
    /// resource's generation, the operator has not yet acted on the latest spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state: `Ready` and `Registered`. Each has a status (True, False,
    /// Unknown), a CamelCase reason and a human-readable message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Builds a condition; `ready` chooses the `True` or `False` status.
///
/// `now` is a parameter so that callers (and tests) control the clock.
pub fn new_condition(
    type_: &str,
    ready: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ready { status::TRUE } else { status::FALSE }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: now,
    }
}

/// Whether Ready=False with `reason` waits for a person (a spec to fix, a conflict to
/// settle, an annotation to add) rather than for time or another resource.
pub fn is_terminal(reason: &str) -> bool {
    [
        reason::INVALID_SPEC,
        reason::NOT_SUPPORTED,
        reason::RESOURCE_CONFLICT,
        reason::PIPELINE_NOT_ALLOWED,
        reason::COLLECTION_NOT_ALLOWED,
        reason::IMAGE_NOT_ALLOWED,
    ]
    .contains(&reason)
}

/// Inserts or updates the condition of `new.type_` in `conditions`.
///
/// `lastTransitionTime` only moves when the status changes, so reconciling an unchanged
/// resource writes an identical status and does not trigger another reconcile. Reason,
/// message and observedGeneration follow `new`. Returns whether anything changed; the
/// order of the other conditions is kept. Setting Ready also sets or clears Stalled.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    if new.type_ != condition_type::READY {
        return set_one(conditions, new);
    }
    let stalled = (new.status == status::FALSE && is_terminal(&new.reason)).then(|| Condition {
        type_: condition_type::STALLED.to_owned(),
        status: status::TRUE.to_owned(),
        ..new.clone()
    });
    let changed = set_one(conditions, new);
    match stalled {
        Some(stalled) => set_one(conditions, stalled) || changed,
        None => {
            let before = conditions.len();
            conditions.retain(|c| c.type_ != condition_type::STALLED);
            conditions.len() != before || changed
        }
    }
}

fn set_one(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let last_transition_time = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            let updated = Condition { last_transition_time, ..new };
            if *existing == updated {
                false
            } else {
                *existing = updated;
                true
            }
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == status::TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_terminal_ready_false_adds_stalled_and_recovery_removes_it() {
        let mut conditions = vec![];
        let invalid = new_condition(
            condition_type::READY,
            false,
            reason::INVALID_SPEC,
            "spec.partitions: must be at least 1",
            Some(2),
            at(10),
        );
        assert!(set_condition(&mut conditions, invalid));
        let stalled = find_condition(&conditions, condition_type::STALLED).expect("Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str(), stalled.observed_generation),
            (status::TRUE, reason::INVALID_SPEC, Some(2))
        );
        assert_eq!(stalled.message, "spec.partitions: must be at least 1");
        // Waiting on something else is not stalled.
        let waiting = new_condition(
            condition_type::READY,
            false,
            reason::TOPIC_NOT_READY,
            "",
            Some(3),
            at(20),
        );
        assert!(set_condition(&mut conditions, waiting.clone()));
        assert_eq!(conditions.len(), 1, "{conditions:?}");
        assert!(!set_condition(&mut conditions, waiting), "nothing to clear twice");
        let ready =
            new_condition(condition_type::READY, true, reason::RECONCILED, "", Some(3), at(30));
        assert!(set_condition(&mut conditions, ready));
        assert!(find_condition(&conditions, condition_type::STALLED).is_none());
    }

    #[test]
    fn adds_a_missing_condition() {
        let mut conditions = vec![];
        let c =
            new_condition(condition_type::READY, true, reason::RECONCILED, "ok", Some(1), at(10));
        assert!(set_condition(&mut conditions, c.clone()));
        assert_eq!(conditions, vec![c]);
    }

    #[test]
    fn same_status_keeps_transition_time_and_updates_the_rest() {
        let mut conditions = vec![new_condition(
            condition_type::READY,
            false,
            reason::PROGRESSING,
            "waiting for topic",
            Some(1),
            at(10),
        )];
        let changed = set_condition(
            &mut conditions,
            new_condition(
                condition_type::READY,
                false,
                reason::TOPIC_NOT_READY,
                "topic x not ready",
                Some(2),
                at(20),
            ),
        );
        assert!(changed);
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].reason, reason::TOPIC_NOT_READY);
        assert_eq!(conditions[0].message, "topic x not ready");
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn identical_condition_at_a_later_time_is_no_change() {
        let first =
            new_condition(condition_type::READY, true, reason::RECONCILED, "", Some(3), at(10));
        let mut conditions = vec![first.clone()];
        let again =
            new_condition(condition_type::READY, true, reason::RECONCILED, "", Some(3), at(99));
        assert!(!set_condition(&mut conditions, again));
        assert_eq!(conditions, vec![first]);
    }

    #[test]
    fn status_change_moves_transition_time() {
        let mut conditions = vec![
            new_condition(condition_type::TOPIC_READY, true, reason::RECONCILED, "", None, at(5)),
            new_condition(condition_type::READY, false, reason::PROGRESSING, "", None, at(10)),
        ];
        assert!(set_condition(
            &mut conditions,
            new_condition(condition_type::READY, true, reason::RECONCILED, "", None, at(20)),
        ));
        assert_eq!(conditions[1].last_transition_time, at(20));
        assert_eq!(conditions[1].status, status::TRUE);
        // The other condition and the order are untouched.
        assert_eq!(conditions[0].type_, condition_type::TOPIC_READY);
        assert_eq!(conditions[0].last_transition_time, at(5));
        assert!(is_true(&conditions, condition_type::READY));
        assert!(!is_true(&conditions, condition_type::REGISTERED));
        assert!(find_condition(&conditions, condition_type::REGISTERED).is_none());
    }
}
