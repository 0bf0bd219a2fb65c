//! `licenseware-worker serve`: the apps' HTTP API. One process serves every app it
//! finds in the registry (followed from the compacted `licenseware.registry` topic);
//! every app route lives under `/{appId}/`, so the relative URLs of the registry
//! entries resolve against `{api}/{appId}`.
//!
//! One module per route family ([`uploads`], [`history_routes`], [`reports`],
//! [`datatables`], [`meta`], [`tenants`], [`ops`]); handlers are thin over the pure parts ([`quota`],
//! [`tickets`], [`uploads::names`], the validation engine) and the stores.

pub mod auth;
pub mod config;
pub mod datatables;
pub mod error;
pub mod history;
pub mod history_routes;
pub mod kafka_context;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod public_links;
pub mod quota;
pub mod registry;
pub mod reports;
pub mod snapshots;
pub mod state;
pub mod tenants;
pub mod tickets;
pub mod uploads;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, header},
    middleware,
};
use licenseware_crds::kafka_client::{self, Watched};
use rdkafka::{ClientConfig, producer::FutureProducer};

use self::kafka_context::LastErrorContext;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

pub use config::{ServeArgs, ServeSettings};

use self::{
    auth::Authenticator,
    history::HistoryWriter,
    registry::RegistryView,
    state::{AppState, Parts},
};
use crate::sandbox::Sandbox;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("auth keys: {0}")]
    Auth(#[from] auth::AuthSetupError),
    #[error("file readers cannot start: {0}")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error("Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("MongoDB client: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: std::net::SocketAddr, source: std::io::Error },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

impl ServeError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth(_) => "AuthKeysUnusable",
            Self::Sandbox(_) => "SandboxUnavailable",
            Self::Kafka(_) => "KafkaClientFailed",
            Self::Mongo(_) => "MongoClientFailed",
            Self::Redis(_) => "RedisUnavailable",
            Self::Bind { .. } => "ListenFailed",
            Self::Serve(_) => "ServeFailed",
        }
    }
}

/// Every route, with CORS, the SDK's security headers and the request metrics.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.settings.cors_origins);
    Router::new()
        .merge(uploads::routes())
        .merge(history_routes::routes())
        .merge(reports::routes())
        .merge(datatables::routes())
        .merge(snapshots::routes())
        .merge(public_links::routes())
        .merge(meta::routes())
        .merge(tenants::routes())
        .merge(ops::routes())
        .merge(openapi::routes())
        // One layer made of all of them: each `Router::layer` boxes every route once
        // more, and every box is cloned on every request.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("SAMEORIGIN"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000; includeSubDomains"),
                ))
                .layer(cors)
                .layer(middleware::from_fn_with_state(state.clone(), ops::record)),
        )
        .with_state(state)
}

/// The SDK's CORS: its methods and headers; origins as configured (`*` by default).
fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::PUT, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("tenantid"),
            HeaderName::from_static("traceparent"),
        ])
}

fn producer(
    kafka: &ClientConfig,
    errors: LastErrorContext,
) -> Result<FutureProducer<Watched<LastErrorContext>>, rdkafka::error::KafkaError> {
    let mut config = kafka.clone();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000")
        // An upload waits for its one event: send it at once (librdkafka waits 5 ms by
        // default for more to batch with it; under load batches form anyway while a
        // request is in flight).
        .set("linger.ms", "0")
        // Processing events are small envelopes: bound what may wait for the broker
        // (librdkafka's default allows 1 GiB) so an outage fails uploads, not memory.
        .set("queue.buffering.max.kbytes", "16384");
    kafka_client::create_with_context(&config, errors)
}

/// Serves until `shutdown` completes, then drains: requests in flight finish and the
/// pending history records are written.
pub async fn run(
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let registry = Arc::new(RegistryView::default());
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (registry, stop) = (registry.clone(), stop.clone());
        let (kafka, topic) = (settings.kafka_config(), settings.registry_topic.clone());
        std::thread::Builder::new()
            .name("registry".into())
            .spawn(move || registry::follow(&kafka, &topic, &registry, &stop))
            .map_err(ServeError::Serve)?
    };
    let database = connect_mongo(&settings.mongo_url).await?.database(&settings.mongo_database);
    let (history, history_task) = HistoryWriter::start(&database);
    let sandbox = Sandbox::new(settings.limits)?;
    let auth = Authenticator::from_settings(&settings.auth).await?;
    let redis_client = redis::Client::open(settings.redis_url.as_str())?;
    let listen = settings.listen;
    let kafka_errors = LastErrorContext::default();
    let state = AppState::new(Parts {
        producer: producer(&settings.kafka_config(), kafka_errors.clone())?,
        kafka_errors,
        settings,
        registry,
        auth,
        database,
        history,
        redis_client,
        sandbox,
    });
    tokio::spawn(ensure_indexes(state.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind { address: listen, source })?;
    let address = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(%address, "serving the API");
    // Tests and scripts started with port 0 read the address here.
    println!("listening on http://{address}");
    // `into_make_service` prepares the routes once; serving the `Router` itself made a
    // deep copy of every route for each connection (axum's `IncomingStream` impl).
    let served = axum::serve(listener, router(state).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await;
    // Every handle of the history writer is gone with the router: its task now writes
    // what is pending and ends.
    if tokio::time::timeout(Duration::from_secs(30), history_task).await.is_err() {
        tracing::error!("history records still pending after 30 s; some were not written");
    }
    stop.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || follower.join()).await;
    served.map_err(ServeError::Serve)
}

/// How long a request waits for MongoDB to be reachable before it is answered 503; the
/// driver's default (30 s) would hold clients past their own timeouts. A connection
/// string that sets its own (`serverSelectionTimeoutMS`, `connectTimeoutMS`) wins.
const MONGO_WAIT: Duration = Duration::from_secs(5);

async fn connect_mongo(url: &str) -> Result<mongodb::Client, ServeError> {
    let mut options = mongodb::options::ClientOptions::parse(url).await?;
    options.app_name.get_or_insert_with(|| "licenseware-api".to_owned());
    options.server_selection_timeout.get_or_insert(MONGO_WAIT);
    options.connect_timeout.get_or_insert(MONGO_WAIT);
    Ok(mongodb::Client::with_options(options)?)
}

/// The indexes (the quota's, the snapshots', the public links'), made as soon as
/// MongoDB answers.
async fn ensure_indexes(state: AppState) {
    let snapshots = snapshots::store::Snapshots::new(&state.database);
    let links = public_links::store::Links::new(&state.database);
    tokio::join!(
        until_made("quota", || state.quotas.ensure_indexes()),
        until_made("snapshot", || snapshots.ensure_indexes()),
        until_made("public link", || links.ensure_indexes()),
    );
}

async fn until_made<F, Fut, E>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut wait = Duration::from_millis(500);
    loop {
        match attempt().await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, what, "index not made yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}
