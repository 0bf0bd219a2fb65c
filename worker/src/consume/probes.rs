//! `/healthz`, `/readyz` and `/metrics` of the consumer, on `--listen`.
//!
//! - `/metrics`: events done and failed, retries, dead letters, documents written,
//!   processing seconds (histogram), in one prometheus-client registry.
//! - `/readyz`: 200 once Kafka (metadata of the events topic), MongoDB (ping) and Redis
//!   (PING) answered the last check (every [`CHECK_EVERY`]), else 503; the JSON names
//!   each check.
//! - `/healthz`: 503 when the consumer is stuck: it holds an event (so there is lag)
//!   and has made no progress for `--progress-timeout-secs`. Progress is a poll
//!   returning, an attempt starting, a file's documents written, a retry, an event
//!   finishing. Waiting for events with none to consume is healthy. The kubelet
//!   restarts a stuck worker; the event is redelivered and its attempts counted.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, http::StatusCode, http::header, routing::get};
use clap::Args;
use licenseware_crds::kafka_client::Watched;
use prometheus_client::{
    metrics::{counter::Counter, histogram::Histogram},
    registry::Registry,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde::Serialize;
use tokio::{net::TcpListener, sync::watch};

/// How often `/readyz`'s checks run, and how long each may take.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Upper bounds (seconds) of the processing histogram's buckets: events take from
/// milliseconds (a small CSV) to minutes (big archives, retries with backoff).
const BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The probe server's flags, flattened into `consume`'s.
#[derive(Debug, Clone, Args)]
pub struct ProbeConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics` (`127.0.0.1:0`: any free port,
    /// printed in the log).
    #[arg(long = "listen", env = "LW_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,
    /// `/healthz` fails when an event is in hand and nothing progressed for this long.
    #[arg(long = "progress-timeout-secs", env = "LW_PROGRESS_TIMEOUT_SECS", default_value_t = 300)]
    pub progress_timeout_secs: u64,
}

/// The consumer's metrics and progress, shared by the loop and the probe server.
#[derive(Debug)]
pub struct ConsumeMetrics {
    registry: Registry,
    events_done: Counter,
    events_failed: Counter,
    retries: Counter,
    dead_letters: Counter,
    documents_written: Counter,
    processing_seconds: Histogram,
    in_hand: AtomicBool,
    last_progress: Mutex<Instant>,
}

impl Default for ConsumeMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let events_done =
            counter("licenseware_worker_events_done", "Events whose outcome is stored");
        let events_failed = counter(
            "licenseware_worker_events_failed",
            "Events that failed for good (dead-lettered)",
        );
        let retries = counter("licenseware_worker_retries", "Attempts retried after a failure");
        let dead_letters = counter("licenseware_worker_dead_letters", "Dead letters sent");
        let documents_written =
            counter("licenseware_worker_documents_written", "Documents written to MongoDB");
        let processing_seconds = Histogram::new(BUCKETS);
        registry.register(
            "licenseware_worker_processing_seconds",
            "Time from receiving an event to its outcome",
            processing_seconds.clone(),
        );
        Self {
            registry,
            events_done,
            events_failed,
            retries,
            dead_letters,
            documents_written,
            processing_seconds,
            in_hand: AtomicBool::new(false),
            last_progress: Mutex::new(Instant::now()),
        }
    }
}

impl ConsumeMetrics {
    /// Something moved: a poll returned, an attempt started, documents were written.
    pub fn progressed(&self) {
        *self.last_progress.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// An event was received and is now in hand.
    pub fn event_started(&self) {
        self.in_hand.store(true, Ordering::Relaxed);
        self.progressed();
    }

    /// The event in hand reached its outcome (or the loop stopped) after `took`.
    pub fn event_finished(&self, took: Duration) {
        self.processing_seconds.observe(took.as_secs_f64());
        self.in_hand.store(false, Ordering::Relaxed);
        self.progressed();
    }

    pub fn event_done(&self) {
        self.events_done.inc();
    }

    pub fn event_failed(&self) {
        self.events_failed.inc();
    }

    pub fn retried(&self) {
        self.retries.inc();
        self.progressed();
    }

    pub fn dead_lettered(&self) {
        self.dead_letters.inc();
    }

    pub fn documents_written(&self, count: u64) {
        self.documents_written.inc_by(count);
        self.progressed();
    }

    /// Whether `/healthz` passes at `now`.
    fn live(&self, now: Instant, timeout: Duration) -> bool {
        let last = *self.last_progress.lock().unwrap_or_else(PoisonError::into_inner);
        is_live(self.in_hand.load(Ordering::Relaxed), last, now, timeout)
    }

    pub fn render(&self) -> String {
        crate::metrics::encode(&self.registry)
    }
}

/// The liveness rule: stuck only with an event in hand and no progress for `timeout`.
pub fn is_live(in_hand: bool, last_progress: Instant, now: Instant, timeout: Duration) -> bool {
    !in_hand || now.saturating_duration_since(last_progress) < timeout
}

/// The outcome of one server's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ready: bool,
    /// The error when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the readiness checks reach.
pub struct Servers {
    pub consumer: Arc<StreamConsumer<Watched>>,
    pub events_topic: String,
    pub db: mongodb::Database,
    pub redis: redis::Client,
}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The clients hold credentials; their Debug output is not ours to print.
        f.debug_struct("Servers").field("events_topic", &self.events_topic).finish_non_exhaustive()
    }
}

impl Servers {
    async fn check(&self) -> Vec<Check> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.events_topic.clone();
        let kafka = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), CHECK_EVERY)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let mongo = async {
            let ping = self.db.run_command(mongodb::bson::doc! { "ping": 1 });
            match tokio::time::timeout(CHECK_EVERY, ping).await {
                Ok(reply) => reply.map(|_| ()).map_err(|error| error.to_string()),
                Err(_) => Err("timed out".to_owned()),
            }
        };
        let redis = async {
            let ping = async {
                let mut connection = self.redis.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut connection).await
            };
            match tokio::time::timeout(CHECK_EVERY, ping).await {
                Ok(reply) => reply.map(|_| ()).map_err(|error| error.to_string()),
                Err(_) => Err("timed out".to_owned()),
            }
        };
        let (kafka, mongo, redis) = tokio::join!(kafka, mongo, redis);
        let kafka = kafka.unwrap_or_else(|error| Err(error.to_string()));
        [("kafka", kafka), ("mongodb", mongo), ("redis", redis)]
            .into_iter()
            .map(|(name, outcome)| Check { name, ready: outcome.is_ok(), error: outcome.err() })
            .collect()
    }
}

#[derive(Clone)]
struct ProbeState {
    metrics: Arc<ConsumeMetrics>,
    checks: watch::Receiver<Vec<Check>>,
    progress_timeout: Duration,
}

/// A probe server started by [`start`]; it stops when dropped.
#[derive(Debug)]
pub struct ProbeServer {
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds `config.listen` (a failure is the caller's error: a worker without probes
/// would be restarted by its liveness probe anyway) and serves until dropped.
pub async fn start(
    config: &ProbeConfig,
    metrics: Arc<ConsumeMetrics>,
    servers: Servers,
) -> std::io::Result<ProbeServer> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (checks_tx, checks) = watch::channel(Vec::new());
    let checker = tokio::spawn(async move {
        loop {
            checks_tx.send_replace(servers.check().await);
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
    let state = ProbeState {
        metrics,
        checks,
        progress_timeout: Duration::from_secs(config.progress_timeout_secs),
    };
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router.into_make_service()).await {
            tracing::error!(%error, "the probe server stopped");
        }
    });
    tracing::info!(%addr, "probes and metrics listening");
    Ok(ProbeServer { addr, tasks: vec![checker, server] })
}

async fn healthz(State(state): State<ProbeState>) -> (StatusCode, &'static str) {
    if state.metrics.live(Instant::now(), state.progress_timeout) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stuck: an event in hand and no progress")
    }
}

#[derive(Serialize)]
struct ReadyzBody {
    ready: bool,
    checks: Vec<Check>,
}

async fn readyz(State(state): State<ProbeState>) -> (StatusCode, Json<ReadyzBody>) {
    let checks = state.checks.borrow().clone();
    // Before the first round nothing is known, so nothing is ready.
    let ready = !checks.is_empty() && checks.iter().all(|check| check.ready);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(ReadyzBody { ready, checks }))
}

async fn metrics_text(State(state): State<ProbeState>) -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_only_with_an_event_in_hand_and_no_progress() {
        let last = Instant::now();
        let timeout = Duration::from_secs(300);
        let later = |secs| last + Duration::from_secs(secs);
        assert!(is_live(false, last, later(3600), timeout), "idle, waiting for events");
        assert!(is_live(true, last, later(299), timeout));
        assert!(!is_live(true, last, later(300), timeout));
        assert!(!is_live(true, last, later(3600), timeout));
    }

    #[test]
    fn metrics_count_and_progress_marks() {
        let metrics = ConsumeMetrics::default();
        metrics.event_started();
        metrics.documents_written(7);
        metrics.retried();
        metrics.event_done();
        metrics.event_finished(Duration::from_millis(30));
        metrics.dead_lettered();
        let text = metrics.render();
        for line in [
            "licenseware_worker_events_done_total 1\n",
            "licenseware_worker_events_failed_total 0\n",
            "licenseware_worker_retries_total 1\n",
            "licenseware_worker_dead_letters_total 1\n",
            "licenseware_worker_documents_written_total 7\n",
            "licenseware_worker_processing_seconds_count 1\n",
            "licenseware_worker_processing_seconds_bucket{le=\"0.05\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let now = Instant::now() + Duration::from_secs(10);
        assert!(metrics.live(now, Duration::from_secs(1)), "nothing in hand");
        metrics.event_started();
        assert!(!metrics.live(now, Duration::from_secs(1)));
        assert!(metrics.live(now, Duration::from_secs(60)));
    }
}
