//! The Licenseware operator as a library: the binary parses its configuration
//! and calls [`run`]; tests call [`serve`] with a listener of their own.

pub mod config;
pub mod controllers;
pub mod crdgen;
pub mod dependencies;
pub mod kafka;
pub mod registry;
pub mod scaler;
pub mod telemetry;
mod web;

use std::{future::Future, sync::Arc, time::Duration};

use futures::FutureExt;
use tokio::{net::TcpListener, sync::watch};

pub use config::Config;
use dependencies::{Dependencies, Readiness};
/// The CRD types, for callers (the e2e suite) that reach them through the operator.
pub use licenseware_crds as crds;

/// Why the operator could not run. Each variant has a stable [`Error::reason`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the Kubernetes client (KUBECONFIG or in-cluster config): {0}")]
    KubeConfig(#[source] kube::Error),
    #[error("invalid Kafka client configuration: {0}")]
    KafkaConfig(#[source] rdkafka::error::KafkaError),
    #[error("invalid MongoDB connection string: {0}")]
    MongoConfig(#[source] mongodb::error::Error),
    #[error("invalid Redis URL: {0}")]
    RedisConfig(#[source] redis::RedisError),
    #[error("cannot listen on the probe address: {0}")]
    ProbeBind(#[source] std::io::Error),
    #[error("the probe server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl Error {
    /// A stable, low-cardinality name for logs, metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::KubeConfig(_) => "KubeConfig",
            Self::KafkaConfig(_) => "KafkaConfig",
            Self::MongoConfig(_) => "MongoConfig",
            Self::RedisConfig(_) => "RedisConfig",
            Self::ProbeBind(_) => "ProbeBind",
            Self::Serve(_) => "Serve",
        }
    }
}

/// Runs until `shutdown` completes, serving the probes on `config.probe_addr`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = TcpListener::bind(config.probe_addr).await.map_err(Error::ProbeBind)?;
    serve(config, listener, shutdown).await
}

/// How long the controllers may take to finish their in-flight reconciles once
/// shutdown is asked for.
const CONTROLLER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// [`run`] on a listener the caller has bound: the probe and metrics server and the
/// Topic controller, all stopped by the same `shutdown`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let dependencies = Dependencies::connect(&config).await?;
    let shutdown = shutdown.boxed().shared();
    let admin = kafka::KafkaAdmin::start(
        Arc::clone(&dependencies.kafka),
        kafka::DEFAULT_LINGER,
        kafka::DEFAULT_MAX_BATCH,
    );
    let metrics = Arc::clone(admin.metrics());
    let registry = registry::Registry::new(
        &dependencies.mongo,
        &config.registry_database(),
        &config.kafka_brokers,
        &config.topic_prefix,
        admin.clone(),
    )
    .map_err(Error::KafkaConfig)?;
    let registered = tokio::spawn(controllers::registry_kinds::run(
        dependencies.kube.clone(),
        registry.clone(),
        config.watched_namespaces(),
        Duration::from_secs(config.resync_interval_secs),
        shutdown.clone(),
    ));
    let topics = tokio::spawn(controllers::topic::run(
        dependencies.kube.clone(),
        admin,
        config.watched_namespaces(),
        config.topic_prefix.clone(),
        Duration::from_secs(config.resync_interval_secs),
        shutdown.clone(),
    ));
    let scaler_metrics = Arc::new(scaler::metrics::ScalerMetrics::default());
    let uploaders = tokio::spawn(controllers::uploader::run(
        dependencies.kube.clone(),
        config.watched_namespaces(),
        uploader_options(&config),
        Arc::clone(&scaler_metrics),
        shutdown.clone(),
    ));
    let (readiness_tx, readiness_rx) = watch::channel(Readiness::starting());
    let interval = Duration::from_secs(config.readiness_interval_secs.max(1));
    let checker = tokio::spawn(check_forever(dependencies, readiness_tx, interval));

    tracing::info!(probe_addr = %listener.local_addr().map_err(Error::ProbeBind)?, "operator started");
    let served = axum::serve(listener, web::router(readiness_rx, metrics, scaler_metrics))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Serve);
    checker.abort();
    match tokio::time::timeout(CONTROLLER_STOP_TIMEOUT, topics).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "topic controller task failed"),
        Err(_) => tracing::warn!("topic controller did not stop in time"),
    }
    match tokio::time::timeout(CONTROLLER_STOP_TIMEOUT, registered).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "registry controllers task failed"),
        Err(_) => tracing::warn!("registry controllers did not stop in time"),
    }
    match tokio::time::timeout(CONTROLLER_STOP_TIMEOUT, uploaders).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "uploader controller task failed"),
        Err(_) => tracing::warn!("uploader controller did not stop in time"),
    }
    tracing::info!("operator stopped");
    served
}

/// The Uploader controller's settings, from the operator's flags.
fn uploader_options(config: &Config) -> controllers::uploader::Options {
    let workers = &config.workers;
    controllers::uploader::Options {
        settings: controllers::uploader::build::WorkerSettings {
            topic_prefix: config.topic_prefix.clone(),
            default_image: workers.worker_image.clone(),
            upload_claim: workers.upload_claim.clone(),
            secret: workers.worker_secret.clone(),
            kafka_brokers: config.kafka_brokers.clone(),
            mongo_url: config.mongo_url.clone(),
            redis_url: config.redis_url.clone(),
        },
        poll: Duration::from_secs(workers.poll_interval_secs),
        stabilization: Duration::from_secs(workers.scale_down_stabilization_secs),
    }
}

/// Re-checks the servers forever, logging only when a server's readiness changes
/// so that a healthy operator stays quiet.
async fn check_forever(
    dependencies: Dependencies,
    readiness: watch::Sender<Readiness>,
    interval: Duration,
) {
    loop {
        let latest = dependencies.check().await;
        let previous = readiness.borrow().clone();
        for check in &latest.checks {
            let was =
                previous.checks.iter().find(|old| old.name == check.name).map(|old| old.ready);
            if was != Some(check.ready) {
                if check.ready {
                    tracing::info!(dependency = check.name, detail = %check.detail, "dependency ready");
                } else {
                    tracing::warn!(dependency = check.name, detail = %check.detail, "dependency not ready");
                }
            }
        }
        readiness.send_replace(latest);
        tokio::time::sleep(interval).await;
    }
}
