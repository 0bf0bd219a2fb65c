//! Kafka writes of the runtime: notifications on AppEvents and LogEvents, best effort
//! (a failure is logged and counted, never blocks an event), and dead letters, which
//! are waited for: the event's offset is committed only once its dead letter is acked.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use licenseware_crds::kafka_client::{self, Watched};
use rdkafka::{
    ClientConfig,
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, Producer},
    util::Timeout,
};
use serde_json::Value;

use super::dlq::Letter;

/// How long a message may wait in the producer before it counts as failed: long enough
/// to ride out a broker restart.
const MESSAGE_TIMEOUT_MS: &str = "120000";

#[derive(Clone)]
pub struct Notifier {
    producer: FutureProducer<Watched>,
    app_events: String,
    log_events: String,
    failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("app_events", &self.app_events)
            .field("log_events", &self.log_events)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        kafka: &ClientConfig,
        client_id: &str,
        app_events: &str,
        log_events: &str,
    ) -> Result<Self, KafkaError> {
        let producer = kafka_client::create(
            kafka
                .clone()
                .set("client.id", client_id)
                // Dead letters must not be duplicated or reordered by the producer's retries.
                .set("enable.idempotence", "true")
                .set("message.timeout.ms", MESSAGE_TIMEOUT_MS),
        )?;
        Ok(Self {
            producer,
            app_events: app_events.to_owned(),
            log_events: log_events.to_owned(),
            failures: Arc::default(),
        })
    }

    /// Notifications that could not be delivered since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// An `UploaderStatusUpdated` (or other SDK notification) on AppEvents. Keyed by
    /// tenant so that one tenant's `running` and `idle` keep their order.
    pub fn app_event(&self, tenant_id: &str, event: &Value) {
        self.publish(&self.app_events, tenant_id, event);
    }

    /// A `DataProcessingLog` on LogEvents, keyed by event id.
    pub fn log_event(&self, event_id: &str, event: &Value) {
        self.publish(&self.log_events, event_id, event);
    }

    fn publish(&self, topic: &str, key: &str, event: &Value) {
        let payload = event.to_string();
        let record = FutureRecord::to(topic).key(key).payload(&payload);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                let failures = Arc::clone(&self.failures);
                let topic = topic.to_owned();
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => {}
                        Ok(Err((error, _))) => note_failure(&failures, &topic, &error.to_string()),
                        Err(_) => note_failure(&failures, &topic, "the producer was dropped"),
                    }
                });
            }
            Err((error, _)) => note_failure(&self.failures, topic, &error.to_string()),
        }
    }

    /// Produces `letter` to `dlq_topic` and waits for the broker's acknowledgement.
    pub async fn dead_letter(&self, dlq_topic: &str, letter: &Letter) -> Result<(), KafkaError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(dlq_topic).headers(letter.owned_headers());
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        if let Some(payload) = &letter.payload {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }

    /// Waits (blocking) for queued notifications, at most `timeout`: on shutdown.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(timeout))
    }
}

fn note_failure(failures: &AtomicU64, topic: &str, error: &str) {
    let count = failures.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(topic, error, failed_notifications = count, "notification not delivered");
}
