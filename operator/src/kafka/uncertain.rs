//! Creates whose outcome the operator does not know. A CreateTopics that timed out
//! (on the way, or the broker's own operation timeout) may still have created the
//! topic; the retry then finds it "already exists", which alone would read as someone
//! else's topic and leave the resource refusing its own topic for ever. The same goes
//! for a create that succeeded: Kafka's metadata may not show the new topic yet, so a
//! reconcile soon after creates it again and hears "already exists" (seen right after
//! the broker started). The batcher remembers its creates for a while and takes the
//! topic such a retry finds as its own.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use kafka_protocol::ResponseError;

use super::{AdminError, WireError};

/// How long after a create of unknown outcome a topic found in its place is taken as
/// that create's: far longer than a broker takes to finish a create, far shorter than
/// anyone would take to make a topic of the same name by hand.
pub const UNCERTAIN_WINDOW: Duration = Duration::from_secs(600);

/// Whether a CreateTopics failure leaves open whether the topic was created.
pub fn create_outcome_unknown(error: &AdminError) -> bool {
    match error {
        // Sent, then no answer: the broker may have acted on it.
        AdminError::Request { source, .. } => {
            matches!(source, WireError::Timeout { .. } | WireError::Io { .. })
        }
        // The controller goes on creating after it answers this.
        AdminError::Topic { error, .. } => matches!(error, ResponseError::RequestTimedOut),
        AdminError::Stopped | AdminError::Claims(_) => false,
    }
}

/// Topic names with a create of unknown outcome, and when it was sent.
#[derive(Debug, Default)]
pub struct UncertainCreates(HashMap<String, Instant>);

impl UncertainCreates {
    /// Remembers a create of `name` sent at `at`; creates past the window are dropped,
    /// so the map holds one window's creates at most.
    pub fn record(&mut self, name: &str, at: Instant) {
        self.0.retain(|_, sent| at.saturating_duration_since(*sent) < UNCERTAIN_WINDOW);
        self.0.insert(name.to_owned(), at);
    }

    /// `name` was deleted: a topic found under it later is not from a create of ours.
    pub fn forget(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Whether an existing topic `name` is the result of our own uncertain create (then
    /// forgotten: it is settled). Entries past the window are dropped on the way.
    pub fn take(&mut self, name: &str, now: Instant) -> bool {
        self.0.retain(|_, at| now.saturating_duration_since(*at) < UNCERTAIN_WINDOW);
        self.0.remove(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::AdminCall;

    fn topic_error(error: ResponseError) -> AdminError {
        AdminError::Topic { call: AdminCall::CreateTopics, topic: "t".into(), error, message: None }
    }

    #[test]
    fn a_create_is_taken_as_ours_once_within_the_window_and_old_ones_are_dropped() {
        let start = Instant::now();
        let mut creates = UncertainCreates::default();
        creates.record("a", start);
        assert!(creates.take("a", start + Duration::from_secs(1)));
        assert!(!creates.take("a", start + Duration::from_secs(2)), "settled once");
        creates.record("old", start);
        creates.record("new", start + UNCERTAIN_WINDOW);
        assert_eq!(creates.0.len(), 1, "recording drops what is past the window");
        assert!(!creates.take("old", start + UNCERTAIN_WINDOW));
    }

    #[test]
    fn timeouts_leave_the_outcome_open_and_refusals_do_not() {
        let timeout = AdminError::Request {
            call: AdminCall::CreateTopics,
            source: WireError::Timeout {
                address: "b:9092".into(),
                api: "CreateTopics",
                timeout: Duration::from_secs(35),
            },
        };
        let unreachable = AdminError::Request {
            call: AdminCall::CreateTopics,
            source: WireError::Connect { address: "b:9092".into(), message: "refused".into() },
        };
        assert!(create_outcome_unknown(&timeout));
        assert!(create_outcome_unknown(&topic_error(ResponseError::RequestTimedOut)));
        assert!(!create_outcome_unknown(&unreachable), "never sent: nothing was created");
        assert!(!create_outcome_unknown(&topic_error(ResponseError::InvalidConfig)));
        assert!(!create_outcome_unknown(&topic_error(ResponseError::NotController)));
    }

    #[test]
    fn a_topic_found_after_our_uncertain_create_is_ours_once_and_within_the_window() {
        let start = Instant::now();
        let mut creates = UncertainCreates::default();
        creates.record("a", start);
        creates.record("b", start);
        assert!(creates.take("a", start + Duration::from_secs(5)));
        assert!(!creates.take("a", start + Duration::from_secs(6)), "settled once");
        assert!(!creates.take("b", start + UNCERTAIN_WINDOW), "too late to be ours");
        assert!(!creates.take("c", start), "never created by us");
        creates.record("d", start);
        creates.forget("d");
        assert!(!creates.take("d", start));
    }
}
