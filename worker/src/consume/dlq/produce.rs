//! Which failures to produce a dead letter are worth retrying. The event's offset is
//! committed only once its letter is acknowledged, so a letter the broker will never
//! take (too large, a topic the worker may not write, a topic that does not exist)
//! would block the partition for ever: such a failure is logged and the event
//! committed without its letter.

use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};

/// Failures to tolerate for a missing topic: a topic created a moment ago (its
/// metadata not propagated yet) is not a missing one.
pub const UNKNOWN_TOPIC_TRIES: u32 = 5;

/// What to do after a failed produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A broker restart, a full queue, a timeout: retry with backoff.
    Transient,
    /// The letter is too large: retry once with the minimal letter, then give up.
    TooLarge,
    /// It will never be accepted: log and commit.
    Permanent,
}

/// Classifies the error of the `failures`-th failed produce of one letter.
pub fn classify(error: &KafkaError, failures: u32) -> Failure {
    let Some(code) = error.rdkafka_error_code() else {
        return Failure::Transient;
    };
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize => {
            Failure::TooLarge
        }
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed
        | RDKafkaErrorCode::InvalidTopic
        | RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::PolicyViolation
        | RDKafkaErrorCode::InvalidRequiredAcks => Failure::Permanent,
        RDKafkaErrorCode::UnknownTopic
        | RDKafkaErrorCode::UnknownTopicOrPartition
        | RDKafkaErrorCode::UnknownPartition
            if failures >= UNKNOWN_TOPIC_TRIES =>
        {
            Failure::Permanent
        }
        _ => Failure::Transient,
    }
}

/// A stable reason for a permanent failure, for the log.
pub fn reason(error: &KafkaError) -> String {
    error.rdkafka_error_code().map_or_else(|| "KafkaError".to_owned(), |code| format!("{code:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::MessageProduction(code)
    }

    #[test]
    fn refusals_are_permanent_and_outages_transient() {
        assert_eq!(
            classify(&production(RDKafkaErrorCode::MessageSizeTooLarge), 1),
            Failure::TooLarge
        );
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert_eq!(classify(&production(code), 1), Failure::Permanent, "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::NotLeaderForPartition,
        ] {
            assert_eq!(classify(&production(code), 100), Failure::Transient, "{code:?}");
        }
        assert_eq!(classify(&KafkaError::Canceled, 100), Failure::Transient);
        assert_eq!(
            reason(&production(RDKafkaErrorCode::TopicAuthorizationFailed)),
            "TopicAuthorizationFailed"
        );
    }

    #[test]
    fn a_missing_topic_is_permanent_only_after_some_tries() {
        let missing = production(RDKafkaErrorCode::UnknownTopic);
        assert_eq!(classify(&missing, 1), Failure::Transient);
        assert_eq!(classify(&missing, UNKNOWN_TOPIC_TRIES), Failure::Permanent);
    }
}
