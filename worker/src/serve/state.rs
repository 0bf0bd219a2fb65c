//! What every handler shares: settings, the registry view, the authenticator and the
//! clients of MongoDB, Redis and Kafka.

use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use licenseware_crds::kafka_client::Watched;
use mongodb::Database;
use rdkafka::producer::FutureProducer;

use super::kafka_context::LastErrorContext;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::{
    ServeError, auth::Authenticator, config::ServeSettings, history::HistoryWriter,
    metrics::Metrics, public_links::store::LinkSecret, quota::Quotas, registry::RegistryView,
    reports::near_cache::NearCache,
};
use crate::sandbox::Sandbox;

pub struct Shared {
    pub settings: ServeSettings,
    pub registry: Arc<RegistryView>,
    pub auth: Authenticator,
    pub database: Database,
    pub quotas: Quotas,
    pub history: HistoryWriter,
    /// The signing secret of public report links.
    pub link_secret: LinkSecret,
    redis_client: redis::Client,
    /// Made on first use, so that the API starts (and says it is not ready) while Redis
    /// is away; the manager reconnects by itself afterwards.
    redis: OnceCell<ConnectionManager>,
    pub producer: FutureProducer<Watched<LastErrorContext>>,
    /// The producer's last client error, for `/readyz`.
    pub kafka_errors: LastErrorContext,
    pub sandbox: Sandbox,
    pub metrics: Metrics,
    /// Open status streams: each holds a Redis subscription, so they are bounded.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// Component data kept in this process, in front of Redis.
    pub near_cache: NearCache,
}

/// The handlers' state: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The parts [`AppState`] is made of.
#[allow(missing_debug_implementations)] // the Kafka producer has none
pub struct Parts {
    pub settings: ServeSettings,
    pub registry: Arc<RegistryView>,
    pub auth: Authenticator,
    pub database: Database,
    pub history: HistoryWriter,
    pub redis_client: redis::Client,
    pub producer: FutureProducer<Watched<LastErrorContext>>,
    /// The producer's last client error, for `/readyz`.
    pub kafka_errors: LastErrorContext,
    pub sandbox: Sandbox,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        let quotas = Quotas::new(&parts.database);
        let link_secret = LinkSecret::new(parts.settings.public_link_secret.clone());
        let near_cache = NearCache::new(&parts.redis_client, parts.settings.near_cache_bytes);
        Self(Arc::new(Shared {
            settings: parts.settings,
            registry: parts.registry,
            auth: parts.auth,
            database: parts.database,
            quotas,
            history: parts.history,
            link_secret,
            redis_client: parts.redis_client,
            redis: OnceCell::new(),
            producer: parts.producer,
            kafka_errors: parts.kafka_errors,
            sandbox: parts.sandbox,
            metrics: Metrics::default(),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STATUS_STREAMS)),
            near_cache,
        }))
    }
}

/// How long a request waits for Redis: to connect, and for each answer.
const REDIS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Status streams open at once, per replica.
pub const MAX_STATUS_STREAMS: usize = 1024;

impl Shared {
    pub fn redis_client(&self) -> &redis::Client {
        &self.redis_client
    }

    /// A Redis connection (multiplexed: a clone per request is cheap). Making it takes
    /// at most [`REDIS_WAIT`]: the manager's own retries, each with its own timeouts,
    /// held requests for 45 s against a server that accepts and never answers. A
    /// request that finds it still unmade tries again.
    pub async fn redis(&self) -> Result<ConnectionManager, ServeError> {
        self.redis
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_WAIT))
                    .set_response_timeout(Some(REDIS_WAIT))
                    .set_number_of_retries(1);
                let connect = ConnectionManager::new_with_config(self.redis_client.clone(), config);
                tokio::time::timeout(REDIS_WAIT, connect).await.map_err(|_| {
                    redis::RedisError::from((redis::ErrorKind::Io, "no connection within 5 s"))
                })?
            })
            .await
            .cloned()
            .map_err(ServeError::Redis)
    }
}
