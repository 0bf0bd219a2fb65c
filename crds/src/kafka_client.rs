//! Creating the librdkafka clients of both binaries so that they outlive a broker's
//! shutdown.
//!
//! librdkafka (2.10 and later, still in 2.12.1) forgets every broker it knows when a
//! Metadata response lists none, and one that knows no broker never asks again:
//! confluentinc/librdkafka#5301, fixed by an unmerged pull request (#5303). A Kafka
//! broker sends exactly such a response while it shuts down (it has fenced itself, so
//! it lists no live broker and every partition without a leader); a client that asks
//! for metadata in that moment, as every client does when a connection drops, was left
//! with no broker for good: a worker restarted across a broker restart consumed nothing
//! more and its producer's records timed out (found by the e2e restart test under load).
//!
//! The clients made here watch their own statistics and, when the client has known no
//! broker for two samples in a row, add the bootstrap servers again: what librdkafka's
//! own re-bootstrap does when it notices that every broker is down, which it cannot
//! notice once there is none.

use std::{
    ffi::CString,
    sync::{
        Arc,
        atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering},
    },
};

use rdkafka::{
    ClientConfig, ClientContext,
    client::{DefaultClientContext, OAuthToken},
    config::{FromClientConfigAndContext, RDKafkaLogLevel},
    consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer},
    error::{KafkaError, KafkaResult},
    producer::{FutureProducer, Producer},
    types::RDKafka,
    util::AsyncRuntime,
};
use serde::Deserialize;

/// How often a client reports its statistics, so how soon a client left with no
/// broker is given its bootstrap servers again (two samples).
pub const STATISTICS_INTERVAL_MS: &str = "5000";
/// Samples in a row with no broker before acting: librdkafka re-bootstraps by itself
/// when the last broker it knows goes down, and that must be given its chance.
const STRANDED_SAMPLES: u32 = 2;

/// Creates a client of `config` with the context `inner` (its log, error and OAuth
/// callbacks are used; a consumer's rebalance callbacks are rdkafka's defaults) that
/// recovers from having no broker left.
pub fn create_with_context<T, C>(config: &ClientConfig, inner: C) -> KafkaResult<T>
where
    C: ClientContext + 'static,
    T: FromClientConfigAndContext<Watched<C>> + sealed::Handle,
{
    let bootstrap = config.get("bootstrap.servers").unwrap_or_default();
    let bootstrap = CString::new(bootstrap).map_err(|_| {
        KafkaError::ClientCreation("bootstrap.servers contains a NUL byte".to_owned())
    })?;
    let watch = Arc::new(BrokerWatch::new(bootstrap));
    let context = Watched { inner, watch: Arc::clone(&watch) };
    let mut config = config.clone();
    config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    let client = T::from_config_and_context(&config, context)?;
    watch.client.store(client.native_handle(), Ordering::Release);
    Ok(client)
}

/// [`create_with_context`] with rdkafka's default callbacks.
pub fn create<T>(config: &ClientConfig) -> KafkaResult<T>
where
    T: FromClientConfigAndContext<Watched> + sealed::Handle,
{
    create_with_context(config, DefaultClientContext)
}

/// The context of the clients made by [`create_with_context`]: `C`'s callbacks, and the
/// statistics feed the broker watch. Only [`create_with_context`] makes one, so that its
/// watch acts on the client it belongs to and no other.
#[derive(Debug)]
pub struct Watched<C = DefaultClientContext> {
    inner: C,
    watch: Arc<BrokerWatch>,
}

impl<C: ClientContext> ClientContext for Watched<C> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = C::ENABLE_REFRESH_OAUTH_TOKEN;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.inner.log(level, fac, log_message);
    }

    // Not passed on: rdkafka's default logs every sample at info.
    fn stats_raw(&self, statistics: &[u8]) {
        self.watch.observe(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.inner.generate_oauth_token(oauthbearer_config)
    }
}

impl<C: ClientContext> ConsumerContext for Watched<C> {}

#[derive(Debug)]
struct BrokerWatch {
    /// The client's handle, set once right after it was created.
    client: AtomicPtr<RDKafka>,
    bootstrap: CString,
    stranded_samples: AtomicU32,
    rebootstraps: AtomicU64,
}

impl BrokerWatch {
    fn new(bootstrap: CString) -> Self {
        Self {
            client: AtomicPtr::new(std::ptr::null_mut()),
            bootstrap,
            stranded_samples: AtomicU32::new(0),
            rebootstraps: AtomicU64::new(0),
        }
    }

    fn observe(&self, statistics: &[u8]) {
        match known_brokers(statistics) {
            Some(0) => {
                let samples = self.stranded_samples.fetch_add(1, Ordering::Relaxed) + 1;
                if samples >= STRANDED_SAMPLES {
                    self.stranded_samples.store(0, Ordering::Relaxed);
                    self.rebootstrap();
                }
            }
            Some(_) => self.stranded_samples.store(0, Ordering::Relaxed),
            None => tracing::debug!("unreadable librdkafka statistics"),
        }
    }

    #[allow(unsafe_code)]
    fn rebootstrap(&self) {
        let client = self.client.load(Ordering::Acquire);
        if client.is_null() || self.bootstrap.is_empty() {
            return;
        }
        // SAFETY: `client` is the handle of the client whose librdkafka is calling back
        // (the statistics callback runs in a poll of that client, never after its
        // `rd_kafka_destroy`), stored once after its creation by `create_with_context`,
        // the only maker of this watch's context. `rd_kafka_brokers_add` may be called
        // from any thread and copies the NUL-terminated list it is given.
        let added =
            unsafe { rdkafka::bindings::rd_kafka_brokers_add(client, self.bootstrap.as_ptr()) };
        let total = self.rebootstraps.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            added,
            rebootstraps = total,
            "the Kafka client knew no broker any more (librdkafka#5301): its bootstrap servers were added again"
        );
    }
}

/// How many brokers the client knows from the bootstrap list or from metadata (its
/// internal and logical "brokers", such as the group coordinator's, do not count);
/// `None` when the statistics cannot be read.
pub fn known_brokers(statistics: &[u8]) -> Option<usize> {
    #[derive(Deserialize)]
    struct Statistics {
        brokers: std::collections::HashMap<String, Broker>,
    }
    #[derive(Deserialize)]
    struct Broker {
        source: String,
    }
    let statistics: Statistics = serde_json::from_slice(statistics).ok()?;
    Some(
        statistics
            .brokers
            .values()
            .filter(|broker| matches!(broker.source.as_str(), "learned" | "configured"))
            .count(),
    )
}

mod sealed {
    use super::*;

    /// The clients whose librdkafka handle the watch may use.
    pub trait Handle {
        fn native_handle(&self) -> *mut RDKafka;
    }

    impl<C: ClientContext + 'static, R: AsyncRuntime> Handle for StreamConsumer<Watched<C>, R> {
        fn native_handle(&self) -> *mut RDKafka {
            self.client().native_ptr()
        }
    }

    impl<C: ClientContext + 'static> Handle for BaseConsumer<Watched<C>> {
        fn native_handle(&self) -> *mut RDKafka {
            self.client().native_ptr()
        }
    }

    impl<C: ClientContext + 'static, R: AsyncRuntime> Handle for FutureProducer<Watched<C>, R> {
        fn native_handle(&self) -> *mut RDKafka {
            self.client().native_ptr()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statistics(brokers: &[(&str, &str)]) -> Vec<u8> {
        let brokers: serde_json::Map<String, serde_json::Value> = brokers
            .iter()
            .map(|(name, source)| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"name": name, "source": source, "state": "UP"}),
                )
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"name": "rdkafka#consumer-1", "brokers": brokers, "topics": {}}),
        )
        .unwrap()
    }

    #[test]
    fn counts_only_brokers_from_bootstrap_or_metadata() {
        let stranded = statistics(&[("GroupCoordinator", "logical")]);
        assert_eq!(known_brokers(&stranded), Some(0));
        let running = statistics(&[
            ("127.0.0.1:9092/1", "learned"),
            ("127.0.0.1:9092/bootstrap", "configured"),
            ("GroupCoordinator", "logical"),
        ]);
        assert_eq!(known_brokers(&running), Some(2));
        assert_eq!(known_brokers(b"{\"brokers\": 3}"), None);
        assert_eq!(known_brokers(b"not json"), None);
    }

    #[test]
    fn acts_after_two_samples_without_a_broker_in_a_row() {
        // No handle stored: the watch counts but cannot call into a client.
        let watch = BrokerWatch::new(CString::new("127.0.0.1:9092").unwrap());
        let stranded = statistics(&[("GroupCoordinator", "logical")]);
        let running = statistics(&[("127.0.0.1:9092/1", "learned")]);
        watch.observe(&stranded);
        watch.observe(&running);
        watch.observe(&stranded);
        assert_eq!(watch.stranded_samples.load(Ordering::Relaxed), 1, "a broker came back between");
        watch.observe(&stranded);
        assert_eq!(watch.stranded_samples.load(Ordering::Relaxed), 0, "acted and started over");
    }
}
