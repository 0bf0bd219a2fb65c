//! Kubernetes Events about the reconciled objects, published as the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Client, Resource,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use licenseware_crds::{
    FIELD_MANAGER, condition_type,
    conditions::{find_condition, status as condition_status},
};

/// A recorder that reports as the operator's field manager.
pub fn recorder(client: Client) -> Recorder {
    let reporter = Reporter { controller: FIELD_MANAGER.to_owned(), instance: None };
    Recorder::new(client, reporter)
}

/// Publishes `event` about `object`. A failure is logged, not returned: the reconcile
/// goes on without its Event.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    event: &Event,
    object: &K,
) {
    if let Err(error) = recorder.publish(event, &object.object_ref(&())).await {
        tracing::warn!(%error, "cannot publish Event");
    }
}

/// Reasons of a Ready=False that is work under way, not a failure: a Topic being
/// created, an Uploader waiting for its Topics (a Topic that fails publishes its own
/// Warning). Every new object passes through them; a Warning each was thousands of
/// Events (apiserver writes) for a thousand new objects, none of them worth a look.
const IN_PROGRESS: [&str; 2] =
    [licenseware_crds::reason::PROGRESSING, licenseware_crds::reason::TOPIC_NOT_READY];

/// The Warning Event `action` to publish when Ready turns False with a new reason from
/// the `old` conditions to the `new` ones: its reason and message. Work in progress
/// ([`IN_PROGRESS`]) is no Warning.
pub fn ready_turned_false(
    old: Option<&[Condition]>,
    new: &[Condition],
    action: &str,
) -> Option<Event> {
    let ready = |conditions: &[Condition]| {
        find_condition(conditions, condition_type::READY)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let (status, reason, message) = ready(new)?;
    let before = old.and_then(ready).map(|(status, reason, _)| (status, reason));
    let failed = status == condition_status::FALSE && !IN_PROGRESS.contains(&reason.as_str());
    (failed && before != Some((status.clone(), reason.clone()))).then(|| Event {
        type_: EventType::Warning,
        reason,
        note: Some(message),
        action: action.to_owned(),
        secondary: None,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
    use licenseware_crds::conditions::new_condition;

    use super::*;

    fn ready(ok: bool, reason: &str, message: &str) -> Vec<Condition> {
        let now = Time(Timestamp::from_second(1).unwrap());
        vec![new_condition(condition_type::READY, ok, reason, message, Some(1), now)]
    }

    #[test]
    fn warns_when_ready_turns_false_with_a_new_reason() {
        let down = ready(false, "KafkaError", "broker down");
        let event = ready_turned_false(None, &down, "Reconcile").expect("event");
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!((event.reason.as_str(), event.action.as_str()), ("KafkaError", "Reconcile"));
        assert_eq!(event.note.as_deref(), Some("broker down"));
        let up = ready(true, "Reconciled", "ok");
        assert!(ready_turned_false(Some(&up), &down, "Register").is_some());
        let conflict = ready(false, "ResourceConflict", "owned by x");
        assert!(ready_turned_false(Some(&down), &conflict, "Reconcile").is_some());
    }

    #[test]
    fn quiet_when_ready_holds_or_fails_the_same_way() {
        let down = ready(false, "KafkaError", "broker down");
        let still = ready(false, "KafkaError", "broker still down");
        assert!(ready_turned_false(Some(&down), &still, "Reconcile").is_none());
        assert!(ready_turned_false(Some(&down), &ready(true, "Reconciled", "ok"), "R").is_none());
        assert!(ready_turned_false(None, &[], "Reconcile").is_none());
    }

    #[test]
    fn work_in_progress_is_no_warning() {
        for reason in IN_PROGRESS {
            assert!(ready_turned_false(None, &ready(false, reason, "creating"), "R").is_none());
            let up = ready(true, "Reconciled", "ok");
            assert!(ready_turned_false(Some(&up), &ready(false, reason, "waiting"), "R").is_none());
        }
        // A failure after work in progress still warns.
        let progressing = ready(false, "Progressing", "creating");
        let failed = ready(false, "KafkaError", "refused");
        assert!(ready_turned_false(Some(&progressing), &failed, "Reconcile").is_some());
    }
}
