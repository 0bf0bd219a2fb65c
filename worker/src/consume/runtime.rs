//! The consumer loop: one event at a time per process (a partition's events keep their
//! order; replicas share the partitions), its offset committed only once its outcome is
//! stored: documents and history, or a dead letter acknowledged by the broker.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use licenseware_crds::kafka_client::{self, Watched};
use tracing::Instrument;

use rdkafka::{
    Message,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::OwnedMessage,
};

use super::{
    config::{ConfigError, Settings},
    consumer_errors::ConsumerErrors,
    context::Context,
    delivery,
    dlq::{
        self, DeadLetter,
        produce::{self, Failure},
    },
    envelope,
    notify::Notifier,
    probes::{self, ConsumeMetrics},
    processor::FileProcessor,
    saga::{self, EventOutcome},
    scratch,
    shutdown::Shutdown,
    status_store::StatusStore,
    store,
};

/// How often librdkafka commits the offsets of the events whose outcome is stored.
const AUTO_COMMIT_INTERVAL_MS: &str = "1000";
/// The last commit of a stop waits this long for the broker.
const FINAL_COMMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Events may take long (big files, retries with backoff): the group must not evict a
/// worker that is busy with one. librdkafka counts this between two fetches.
const MAX_POLL_INTERVAL_MS: &str = "1800000";
/// A crashed worker's partitions move to the other replicas (or to its restart) after
/// this long without heartbeats; the client default (45 s) keeps them idle longer.
const SESSION_TIMEOUT_MS: &str = "10000";

/// Why the consumer could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Kafka client: {0}")]
    Kafka(#[source] KafkaError),
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe { topic: String, source: KafkaError },
    #[error("MongoDB client: {0}")]
    Mongo(#[source] mongodb::error::Error),
    #[error("Redis client: {0}")]
    Redis(#[source] redis::RedisError),
    #[error("cannot serve the probes on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

impl ConsumeError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Config(error) => error.reason(),
            Self::Kafka(_) => "KafkaConfig",
            Self::Subscribe { .. } => "SubscribeFailed",
            Self::Mongo(_) => "MongoConfig",
            Self::Redis(_) => "RedisConfig",
            Self::Listen { .. } => "ListenFailed",
        }
    }
}

/// What a run did, for the last log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub events: u64,
    pub dead_letters: u64,
    pub failed_notifications: u64,
    pub failed_status_writes: u64,
}

enum Next {
    Commit,
    Stop,
}

/// Consumes the uploader's events with `processor` until `shutdown` completes; the
/// event in hand is finished and committed first.
pub async fn run(
    settings: Settings,
    processor: Arc<dyn FileProcessor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<RunSummary, ConsumeError> {
    let shutdown = Shutdown::on(shutdown);
    let leftover_age = settings.scratch_leftover_age;
    let cleaned = tokio::task::spawn_blocking(move || {
        scratch::clean_leftovers(&std::env::temp_dir(), leftover_age)
    })
    .await;
    if let Ok(cleaned) = cleaned {
        tracing::info!(
            removed = cleaned.removed,
            kept = cleaned.kept,
            "scratch directories checked"
        );
    }
    let client_id = format!("licenseware-worker-{}", settings.worker.uploader_id);
    let db = connect_mongo(&settings).await?;
    let redis = redis::Client::open(settings.redis_url.as_str()).map_err(ConsumeError::Redis)?;
    let notifier = Notifier::new(
        &settings.kafka_config(),
        &client_id,
        &settings.app_events_topic,
        &settings.log_events_topic,
    )
    .map_err(ConsumeError::Kafka)?;
    let mut consumer_config = settings.kafka_config();
    consumer_config
        .set("group.id", &settings.worker.consumer_group)
        .set("client.id", &client_id)
        // At-least-once without blocking the loop: an offset is stored only once its
        // event's outcome is, and librdkafka commits what is stored in the background,
        // again after an outage. A synchronous commit per event hung for ever when the
        // coordinator moved during a broker restart: the loop, blocked in the commit,
        // could not serve the rebalance that commit waited for.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", AUTO_COMMIT_INTERVAL_MS)
        .set("auto.offset.reset", "earliest")
        .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "3000");
    let consumer: StreamConsumer<Watched> =
        kafka_client::create(&consumer_config).map_err(ConsumeError::Kafka)?;
    let topic = settings.worker.events_topic.clone();
    consumer
        .subscribe(&[&topic])
        .map_err(|source| ConsumeError::Subscribe { topic: topic.clone(), source })?;
    let collections = settings.event_collections(processor.collections());
    ensure_indexes(&db, &collections).await;
    let consumer = Arc::new(consumer);
    let metrics = Arc::new(ConsumeMetrics::default());
    let servers = probes::Servers {
        consumer: Arc::clone(&consumer),
        events_topic: topic.clone(),
        db: db.clone(),
        redis: redis.clone(),
    };
    let _probes = probes::start(&settings.probes, Arc::clone(&metrics), servers)
        .await
        .map_err(|source| ConsumeError::Listen { addr: settings.probes.listen, source })?;
    let ctx = Context {
        settings,
        processor,
        db,
        status: StatusStore::new(redis),
        notifier,
        shutdown,
        collections,
        metrics,
    };
    tracing::info!(topic, group = ctx.settings.worker.consumer_group, "consuming");
    let mut summary = RunSummary::default();
    let mut consumer_errors = ConsumerErrors::default();
    loop {
        let received = tokio::select! {
            biased;
            () = ctx.shutdown.requested() => break,
            received = consumer.recv() => received.map(|message| message.detach()),
        };
        ctx.metrics.progressed();
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                // librdkafka reconnects by itself; these are reports, not a dead client.
                let action = consumer_errors.on_error(Instant::now());
                if let Some(not_logged) = action.log {
                    tracing::warn!(%error, not_logged, "Kafka consumer error");
                }
                if let Some(pause) = action.pause
                    && !ctx.shutdown.sleep(pause).await
                {
                    break;
                }
                continue;
            }
        };
        summary.events += 1;
        let started = Instant::now();
        ctx.metrics.event_started();
        let next = handle(&ctx, &message, &mut summary).await;
        ctx.metrics.event_finished(started.elapsed());
        match next {
            Next::Commit => store_offset(&consumer, &message),
            Next::Stop => break,
        }
    }
    commit_stored(&consumer).await;
    tracing::info!("stopping: flushing notifications");
    let notifier = ctx.notifier.clone();
    let flushed =
        tokio::task::spawn_blocking(move || notifier.flush(Duration::from_secs(10))).await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::warn!("some notifications were not delivered before the stop");
    }
    summary.failed_notifications = ctx.notifier.failures();
    summary.failed_status_writes = ctx.status.failures();
    tracing::info!(?summary, "stopped");
    Ok(summary)
}

async fn connect_mongo(settings: &Settings) -> Result<mongodb::Database, ConsumeError> {
    let mut options = mongodb::options::ClientOptions::parse(&settings.mongo_url)
        .await
        .map_err(ConsumeError::Mongo)?;
    options.app_name.get_or_insert_with(|| "licenseware-worker".to_owned());
    // Fail fast into the runtime's own wait-and-retry, which logs what it waits for.
    options.server_selection_timeout.get_or_insert(Duration::from_secs(10));
    let client = mongodb::Client::with_options(options).map_err(ConsumeError::Mongo)?;
    Ok(client.database(&settings.mongo_database))
}

async fn ensure_indexes(db: &mongodb::Database, collections: &[String]) {
    let created =
        tokio::time::timeout(Duration::from_secs(15), store::ensure_indexes(db, collections)).await;
    if !matches!(created, Ok(Ok(()))) {
        tracing::warn!("cannot create the event indexes now; compensation may scan collections");
    }
}

async fn handle(ctx: &Context, message: &OwnedMessage, summary: &mut RunSummary) -> Next {
    let worker = &ctx.settings.worker;
    let event = match envelope::parse(message.payload(), &worker.app_id, &worker.uploader_id) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, reason = error.reason(), offset = message.offset(),
                partition = message.partition(), "malformed event: dead-lettered without retry");
            let letter = DeadLetter::about(message, error.to_string(), error.reason(), 0);
            summary.dead_letters += 1;
            ctx.metrics.event_failed();
            return dead_letter(ctx, message, &letter).await;
        }
    };
    // Every log line of the event names it (JSON logs carry the span's fields).
    let span = tracing::info_span!("event", event_id = event.event_id, tenant_id = event.tenant_id);
    let outcome = async {
        tracing::info!(files = event.filepaths.len(), "processing");
        let source = delivery::source(message.topic(), message.partition(), message.offset());
        let outcome = saga::run_event(ctx, &event, &source).await;
        tracing::info!(?outcome, "event done");
        outcome
    }
    .instrument(span)
    .await;
    match outcome {
        EventOutcome::Done { .. } => {
            ctx.metrics.event_done();
            Next::Commit
        }
        EventOutcome::Interrupted => Next::Stop,
        EventOutcome::DeadLetter { error, reason, attempts } => {
            summary.dead_letters += 1;
            ctx.metrics.event_failed();
            let letter = DeadLetter::about(message, error, &reason, attempts);
            dead_letter(ctx, message, &letter).await
        }
    }
}

/// Produces the dead letter until the broker acknowledges it or refuses it for good.
/// A letter refused as too large is sent again in its minimal form; one refused for
/// good is logged and the event committed without it: a partition blocked for ever
/// behind one event is worse than one missing dead letter.
async fn dead_letter(ctx: &Context, message: &OwnedMessage, letter: &DeadLetter) -> Next {
    let topic = &ctx.settings.worker.dlq_topic;
    let mut bounded = letter.letter(message, &dlq::DEFAULT_LIMITS);
    let mut minimal = false;
    let mut failures = 0;
    loop {
        let error = match ctx.notifier.dead_letter(topic, &bounded).await {
            Ok(()) => {
                ctx.metrics.dead_lettered();
                return Next::Commit;
            }
            Err(error) => error,
        };
        failures += 1;
        match produce::classify(&error, failures) {
            Failure::TooLarge if !minimal => {
                tracing::warn!(%error, topic, bytes = bounded.size(),
                    "dead letter too large; sending its minimal form");
                bounded = letter.minimal(message);
                minimal = true;
                continue;
            }
            Failure::TooLarge | Failure::Permanent => {
                tracing::error!(%error, topic, reason = produce::reason(&error),
                    dead_letter_reason = letter.reason, offset = message.offset(),
                    partition = message.partition(),
                    "dead letter refused for good; committing the event without it");
                return Next::Commit;
            }
            Failure::Transient => {
                tracing::warn!(%error, topic, failures, "dead letter not acknowledged; retrying");
            }
        }
        if !ctx.shutdown.sleep(ctx.settings.backoff.delay(failures)).await {
            return Next::Stop;
        }
    }
}

/// Marks the offset after `message` for the next commit. A partition taken away by a
/// rebalance refuses it: its next owner redoes the event, which is idempotent.
fn store_offset(consumer: &StreamConsumer<Watched>, message: &OwnedMessage) {
    if let Err(error) =
        consumer.store_offset(message.topic(), message.partition(), message.offset())
    {
        tracing::warn!(%error, offset = message.offset(), "partition reassigned; not committed");
    }
}

/// Commits the stored offsets before a stop, so that a drained worker leaves nothing to
/// redo. Bounded: a broker that does not answer leaves the events to a redelivery.
async fn commit_stored(consumer: &Arc<StreamConsumer<Watched>>) {
    let consumer = Arc::clone(consumer);
    let (done, finished) = tokio::sync::oneshot::channel();
    // A thread of its own, not the runtime's: one stuck on a broker that does not answer
    // must not hold the process's exit. With no offsets given, librdkafka commits the
    // stored ones (the events whose outcome is stored), not the positions.
    let spawned = std::thread::Builder::new().name("final-commit".into()).spawn(move || {
        let _ = done.send(consumer.commit_consumer_state(CommitMode::Sync));
    });
    if spawned.is_err() {
        tracing::warn!("cannot start the last commit; the last events may be redone");
        return;
    }
    match tokio::time::timeout(FINAL_COMMIT_TIMEOUT, finished).await {
        Ok(Ok(Ok(()))) => {}
        // Nothing stored since the last automatic commit.
        Ok(Ok(Err(error))) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
        Ok(Ok(Err(error))) => {
            tracing::warn!(%error, "the last commit failed; the last events may be redone");
        }
        _ => tracing::warn!("the last commit did not finish; the last events may be redone"),
    }
}
