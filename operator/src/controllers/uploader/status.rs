//! The status a reconcile leads to: a pure function of the old status, so an unchanged
//! outcome yields an identical status and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use licenseware_crds::{
    Topic, UploaderStatus, condition_type,
    conditions::{find_condition, new_condition, set_condition, status as condition_status},
    reason,
};

/// Whether an owned Topic is Ready for its latest spec; the error is the message.
pub fn topic_readiness(topic: &Topic) -> Result<(), String> {
    match topic_state(topic) {
        TopicState::Ready => Ok(()),
        TopicState::Waiting(message) | TopicState::Failed(message) => Err(message),
    }
}

/// Whether both owned Topics are Ready; the error is the message. While they are only
/// being created the message stays the same whatever step each has reached, so the
/// Uploader's status is written once on the way to Ready, not at every step of its
/// Topics; a Topic that failed is named with its reason.
pub fn topics_readiness(events: &Topic, dlq: &Topic) -> Result<(), String> {
    match (topic_state(events), topic_state(dlq)) {
        (TopicState::Ready, TopicState::Ready) => Ok(()),
        (TopicState::Failed(message), _) | (_, TopicState::Failed(message)) => Err(message),
        _ => Err(format!(
            "waiting for Topics {} and {} to become Ready",
            events.metadata.name.as_deref().unwrap_or_default(),
            dlq.metadata.name.as_deref().unwrap_or_default()
        )),
    }
}

enum TopicState {
    Ready,
    /// Not reconciled yet, or being created (`Progressing`), or not yet acting on its
    /// latest spec.
    Waiting(String),
    Failed(String),
}

fn topic_state(topic: &Topic) -> TopicState {
    let name = topic.metadata.name.as_deref().unwrap_or_default();
    let Some(status) = &topic.status else {
        return TopicState::Waiting(format!("Topic {name} is not reconciled yet"));
    };
    let Some(ready) = find_condition(&status.conditions, condition_type::READY) else {
        return TopicState::Waiting(format!("Topic {name} is not reconciled yet"));
    };
    if status.observed_generation != topic.metadata.generation {
        return TopicState::Waiting(format!("Topic {name} has not acted on its latest spec yet"));
    }
    if ready.status != condition_status::TRUE {
        let message = format!("Topic {name} is not Ready ({}): {}", ready.reason, ready.message);
        return if ready.reason == reason::PROGRESSING {
            TopicState::Waiting(message)
        } else {
            TopicState::Failed(message)
        };
    }
    TopicState::Ready
}

/// What the registry holds for the Uploader after a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The entry with this key is written (or already was, with this content).
    Registered { key: String },
    /// `registrable: false`: the entry is removed, on purpose.
    NotRegistrable,
    /// Writing or removing the entry failed: the [`RegistryError`] reason
    /// (`RegistryError`, `ResourceConflict`) and message.
    ///
    /// [`RegistryError`]: crate::registry::RegistryError
    Failed { reason: &'static str, message: String },
}

/// What one reconcile found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The spec cannot be acted on; its registry entry is removed.
    InvalidSpec(String),
    /// The operator refuses to act (`ImageNotAllowed`, or `ResourceConflict` when a
    /// child's name is taken by an object this Uploader does not own); nothing was
    /// applied and the registry entry is removed.
    Refused { reason: &'static str, message: String },
    Applied {
        topic_name: String,
        dlq_topic_name: String,
        /// Ok, or why the Topics are not Ready.
        topics: Result<(), String>,
        /// Ok, or why the events Topic's schema refuses the events the API would send
        /// (the reason, e.g. `EventSchemaRefused`, and the message).
        event_schema: Result<(), (&'static str, String)>,
        /// The Deployment that was applied.
        worker: String,
        registration: Registration,
    },
}

/// The status after `outcome`, starting from `old`.
pub fn next_status(
    old: Option<&UploaderStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Time,
) -> UploaderStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let condition = |type_: &str, ok: bool, reason: &str, message: String| {
        new_condition(type_, ok, reason, message, generation, now.clone())
    };
    match outcome {
        Outcome::InvalidSpec(message) => {
            for type_ in [condition_type::REGISTERED, condition_type::READY] {
                set_condition(
                    &mut status.conditions,
                    condition(type_, false, reason::INVALID_SPEC, message.clone()),
                );
            }
        }
        Outcome::Refused { reason, message } => {
            for type_ in [condition_type::REGISTERED, condition_type::READY] {
                set_condition(
                    &mut status.conditions,
                    condition(type_, false, reason, message.clone()),
                );
            }
        }
        // The scale figures (replicas, desiredReplicas, lag, lastScaleTime) are the
        // scaler loop's: carried over from `old` unchanged.
        Outcome::Applied {
            topic_name,
            dlq_topic_name,
            topics,
            event_schema,
            worker,
            registration,
        } => {
            status.topic_name = Some(topic_name.clone());
            status.dlq_topic_name = Some(dlq_topic_name.clone());
            let topic_condition = match (topics, event_schema) {
                (Err(message), _) => condition(
                    condition_type::TOPIC_READY,
                    false,
                    reason::TOPIC_NOT_READY,
                    message.clone(),
                ),
                (Ok(()), Err((reason, message))) => {
                    condition(condition_type::TOPIC_READY, false, reason, message.clone())
                }
                (Ok(()), Ok(())) => condition(
                    condition_type::TOPIC_READY,
                    true,
                    reason::RECONCILED,
                    format!("Topics {topic_name} and {dlq_topic_name} are Ready"),
                ),
            };
            set_condition(&mut status.conditions, topic_condition);
            set_condition(
                &mut status.conditions,
                condition(
                    condition_type::WORKER_READY,
                    true,
                    reason::RECONCILED,
                    format!("Deployment {worker} is applied"),
                ),
            );
            let registered = match registration {
                Registration::Registered { key } => condition(
                    condition_type::REGISTERED,
                    true,
                    reason::RECONCILED,
                    format!("Registry entry {key} is written"),
                ),
                Registration::NotRegistrable => condition(
                    condition_type::REGISTERED,
                    true,
                    reason::NOT_REGISTRABLE,
                    "registrable is false: no registry entry, on purpose".to_owned(),
                ),
                Registration::Failed { reason, message } => {
                    condition(condition_type::REGISTERED, false, reason, message.clone())
                }
            };
            set_condition(&mut status.conditions, registered);
            // Ready = TopicReady AND WorkerReady (always, once applied) AND Registered;
            // the first failing one gives the reason.
            let ready = match (topics, event_schema, registration) {
                (Err(message), _, _) => condition(
                    condition_type::READY,
                    false,
                    reason::TOPIC_NOT_READY,
                    message.clone(),
                ),
                (Ok(()), Err((reason, message)), _) => {
                    condition(condition_type::READY, false, reason, message.clone())
                }
                (Ok(()), Ok(()), Registration::Failed { reason, message }) => {
                    condition(condition_type::READY, false, reason, message.clone())
                }
                (Ok(()), Ok(()), Registration::Registered { key }) => condition(
                    condition_type::READY,
                    true,
                    reason::RECONCILED,
                    format!("Topics and worker are in place; registered as {key}"),
                ),
                (Ok(()), Ok(()), Registration::NotRegistrable) => condition(
                    condition_type::READY,
                    true,
                    reason::RECONCILED,
                    "Topics and worker are in place; not registered (registrable is false)"
                        .to_owned(),
                ),
            };
            set_condition(&mut status.conditions, ready);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use licenseware_crds::{TopicSpec, TopicStatus, conditions::is_true};

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn applied(topics: Result<(), String>) -> Outcome {
        registered_as(topics, Registration::Registered { key: KEY.into() })
    }

    const KEY: &str = "uploader/a/u";

    fn registered_as(topics: Result<(), String>, registration: Registration) -> Outcome {
        Outcome::Applied {
            topic_name: "p.a.u.events".into(),
            dlq_topic_name: "p.a.u.dlq".into(),
            topics,
            event_schema: Ok(()),
            worker: "u-worker".into(),
            registration,
        }
    }

    fn condition_of<'a>(status: &'a UploaderStatus, type_: &str) -> (&'a str, &'a str) {
        let c = find_condition(&status.conditions, type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    fn topic(ready: Option<(&str, i64)>, generation: i64) -> Topic {
        let mut topic = Topic::new("u-events", serde_json::from_str::<TopicSpec>("{}").unwrap());
        topic.metadata.generation = Some(generation);
        topic.status = ready.map(|(status, observed)| TopicStatus {
            observed_generation: Some(observed),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                status: status.into(),
                ..new_condition("Ready", true, "KafkaError", "broker down", None, at(1))
            }],
            ..TopicStatus::default()
        });
        topic
    }

    #[test]
    fn topic_readiness_needs_ready_true_for_the_latest_generation() {
        assert!(topic_readiness(&topic(None, 1)).unwrap_err().contains("not reconciled"));
        assert!(
            topic_readiness(&topic(Some(("False", 1)), 1)).unwrap_err().contains("broker down")
        );
        assert!(topic_readiness(&topic(Some(("True", 1)), 2)).unwrap_err().contains("latest spec"));
        assert_eq!(topic_readiness(&topic(Some(("True", 2)), 2)), Ok(()));
    }

    #[test]
    fn topics_on_their_way_to_ready_give_one_message_and_a_failure_names_itself() {
        let named = |mut topic: Topic, name: &str| {
            topic.metadata.name = Some(name.into());
            topic
        };
        let progressing = |name: &str| {
            let mut topic = named(topic(Some(("False", 1)), 1), name);
            topic.status.as_mut().unwrap().conditions[0].reason = "Progressing".into();
            topic
        };
        let waiting = "waiting for Topics u-events and u-dlq to become Ready";
        let ready = |name: &str| named(topic(Some(("True", 1)), 1), name);
        for (events, dlq) in [
            (named(topic(None, 1), "u-events"), named(topic(None, 1), "u-dlq")),
            (progressing("u-events"), named(topic(None, 1), "u-dlq")),
            (ready("u-events"), progressing("u-dlq")),
            (named(topic(Some(("True", 1)), 2), "u-events"), ready("u-dlq")),
        ] {
            assert_eq!(topics_readiness(&events, &dlq), Err(waiting.into()));
        }
        let failed = named(topic(Some(("False", 1)), 1), "u-dlq");
        let message = topics_readiness(&progressing("u-events"), &failed).unwrap_err();
        assert!(message.starts_with("Topic u-dlq is not Ready (KafkaError)"), "{message}");
        assert_eq!(topics_readiness(&ready("u-events"), &ready("u-dlq")), Ok(()));
    }

    #[test]
    fn ready_needs_topics_and_worker() {
        let waiting = next_status(None, Some(1), &applied(Err("Topic x".into())), at(1));
        assert!(!is_true(&waiting.conditions, "Ready"));
        assert!(!is_true(&waiting.conditions, "TopicReady"));
        assert!(is_true(&waiting.conditions, "WorkerReady"));
        assert_eq!(find_condition(&waiting.conditions, "Ready").unwrap().reason, "TopicNotReady");
        let ready = next_status(Some(&waiting), Some(1), &applied(Ok(())), at(2));
        assert!(is_true(&ready.conditions, "Ready"));
        assert!(is_true(&ready.conditions, "TopicReady"));
        assert_eq!(ready.topic_name.as_deref(), Some("p.a.u.events"));
        assert_eq!(ready.dlq_topic_name.as_deref(), Some("p.a.u.dlq"));
        assert_eq!(ready.observed_generation, Some(1));
    }

    #[test]
    fn unchanged_outcome_is_an_identical_status() {
        let outcome = applied(Ok(()));
        let first = next_status(None, Some(3), &outcome, at(1));
        assert_eq!(first, next_status(Some(&first), Some(3), &outcome, at(50)));
    }

    #[test]
    fn invalid_spec_turns_ready_false_and_keeps_the_rest() {
        let scaled = UploaderStatus { replicas: Some(1), ..UploaderStatus::default() };
        let ok = next_status(Some(&scaled), Some(1), &applied(Ok(())), at(1));
        assert_eq!(ok.replicas, Some(1), "the scaler's figures are carried over");
        let bad = next_status(Some(&ok), Some(2), &Outcome::InvalidSpec("bad id".into()), at(2));
        let ready = find_condition(&bad.conditions, "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "InvalidSpec"));
        assert_eq!(bad.observed_generation, Some(2));
        assert_eq!(bad.replicas, Some(1));
    }

    #[test]
    fn ready_needs_topics_worker_and_registration() {
        let failed = || Registration::Failed {
            reason: "RegistryError",
            message: "MongoDB: connection refused".into(),
        };
        // Topics first: their reason wins while they are not Ready.
        let waiting =
            next_status(None, Some(1), &registered_as(Err("Topic x".into()), failed()), at(1));
        assert_eq!(condition_of(&waiting, "Ready"), ("False", "TopicNotReady"));
        assert_eq!(condition_of(&waiting, "Registered"), ("False", "RegistryError"));
        // Topics Ready, registry down: Ready False with the registry's reason and message.
        let down = next_status(Some(&waiting), Some(1), &registered_as(Ok(()), failed()), at(2));
        assert_eq!(condition_of(&down, "TopicReady"), ("True", "Reconciled"));
        assert_eq!(condition_of(&down, "WorkerReady"), ("True", "Reconciled"));
        assert_eq!(condition_of(&down, "Ready"), ("False", "RegistryError"));
        assert!(
            find_condition(&down.conditions, "Ready")
                .unwrap()
                .message
                .contains("connection refused")
        );
        let conflict =
            Registration::Failed { reason: "ResourceConflict", message: "owned by x/y".into() };
        let taken = next_status(Some(&down), Some(1), &registered_as(Ok(()), conflict), at(3));
        assert_eq!(condition_of(&taken, "Ready"), ("False", "ResourceConflict"));
        assert_eq!(condition_of(&taken, "Registered"), ("False", "ResourceConflict"));
        // Registered: all True, and the key is in the messages.
        let ok = next_status(Some(&taken), Some(1), &applied(Ok(())), at(4));
        assert_eq!(condition_of(&ok, "Registered"), ("True", "Reconciled"));
        assert_eq!(condition_of(&ok, "Ready"), ("True", "Reconciled"));
        assert!(find_condition(&ok.conditions, "Registered").unwrap().message.contains(KEY));
        assert_eq!(find_condition(&ok.conditions, "Ready").unwrap().last_transition_time, at(4));
    }

    #[test]
    fn an_events_schema_that_refuses_the_api_event_is_not_ready_but_registered() {
        let with_schema = |topics: Result<(), String>, message: &str| Outcome::Applied {
            topic_name: "p.a.u.events".into(),
            dlq_topic_name: "p.a.u.dlq".into(),
            topics,
            event_schema: Err(("EventSchemaRefused", message.to_owned())),
            worker: "u-worker".into(),
            registration: Registration::Registered { key: KEY.into() },
        };
        let refused = with_schema(Ok(()), "data misses authorization");
        let status = next_status(None, Some(1), &refused, at(1));
        assert_eq!(condition_of(&status, "TopicReady"), ("False", "EventSchemaRefused"));
        assert_eq!(condition_of(&status, "Ready"), ("False", "EventSchemaRefused"));
        assert_eq!(condition_of(&status, "Registered"), ("True", "Reconciled"));
        assert!(
            find_condition(&status.conditions, "Ready").unwrap().message.contains("authorization")
        );
        // The Topics' own readiness still comes first.
        let waiting = with_schema(Err("Topic x".into()), "x");
        let status = next_status(None, Some(1), &waiting, at(1));
        assert_eq!(condition_of(&status, "Ready"), ("False", "TopicNotReady"));
    }

    #[test]
    fn not_registrable_is_registered_true_and_ready() {
        let outcome = registered_as(Ok(()), Registration::NotRegistrable);
        let off = next_status(None, Some(2), &outcome, at(1));
        assert_eq!(condition_of(&off, "Registered"), ("True", "NotRegistrable"));
        assert_eq!(condition_of(&off, "Ready"), ("True", "Reconciled"));
        assert_eq!(next_status(Some(&off), Some(2), &outcome, at(9)), off);
    }

    #[test]
    fn invalid_spec_is_not_registered() {
        let ok = next_status(None, Some(1), &applied(Ok(())), at(1));
        let bad = next_status(Some(&ok), Some(2), &Outcome::InvalidSpec("bad id".into()), at(2));
        assert_eq!(condition_of(&bad, "Registered"), ("False", "InvalidSpec"));
        assert_eq!(condition_of(&bad, "Ready"), ("False", "InvalidSpec"));
        let refused = Outcome::Refused { reason: "ImageNotAllowed", message: "no".into() };
        let refused = next_status(Some(&ok), Some(3), &refused, at(3));
        assert_eq!(condition_of(&refused, "Ready"), ("False", "ImageNotAllowed"));
        assert_eq!(condition_of(&refused, "Registered"), ("False", "ImageNotAllowed"));
    }
}
