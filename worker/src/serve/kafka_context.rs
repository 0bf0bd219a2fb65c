//! The API producer's librdkafka context: it keeps the client's last error, so that
//! `/readyz` can say why Kafka is unreachable. librdkafka's calls themselves only
//! report "broker transport failure", also for a refused password or certificate.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::{ClientContext, error::KafkaError, types::RDKafkaErrorCode};

/// The longest error kept: librdkafka's reasons are one line.
const MAX_ERROR_CHARS: usize = 500;

/// Clones share the error: the producer owns one, `/readyz` reads another.
#[derive(Debug, Clone, Default)]
pub struct LastErrorContext {
    last: Arc<Mutex<Option<String>>>,
}

impl LastErrorContext {
    /// The client's last error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl ClientContext for LastErrorContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!(%error, reason, "Kafka client error");
        let text: String = format!("{error}: {reason}").chars().take(MAX_ERROR_CHARS).collect();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // "All brokers down" follows every refused connection: the refusal says why.
        let consequence = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
        if !(consequence && last.is_some()) {
            *last = Some(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_error_bounded() {
        let context = LastErrorContext::default();
        assert_eq!(context.last_error(), None);
        context.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "first");
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            &"SASL authentication error ".repeat(100),
        );
        context.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        let last = context.last_error().unwrap();
        assert!(last.contains("SASL authentication error"), "the cause stays: {last}");
        assert_eq!(last.chars().count(), MAX_ERROR_CHARS);
    }
}
