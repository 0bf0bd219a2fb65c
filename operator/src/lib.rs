//! The Licenseware operator as a library: the binary parses its configuration
//! and calls [`run`]; tests call [`serve`] with a listener of their own.

pub mod config;
pub mod controllers;
pub mod crdgen;
pub mod dependencies;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod registry;
pub mod scaler;
pub mod telemetry;
mod web;

use std::{future::Future, sync::Arc, time::Duration};

use futures::FutureExt;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};

pub use config::Config;
use dependencies::{Dependencies, Readiness};
/// The CRD types, for callers (the e2e suite) that reach them through the operator.
pub use licenseware_crds as crds;

/// Why the operator could not run. Each variant has a stable [`Error::reason`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the Kubernetes client (KUBECONFIG or in-cluster config): {0}")]
    KubeConfig(#[source] kube::Error),
    #[error("invalid Kafka producer configuration: {0}")]
    KafkaConfig(#[source] rdkafka::error::KafkaError),
    #[error("invalid MongoDB connection string: {0}")]
    MongoConfig(#[source] mongodb::error::Error),
    #[error("invalid Redis URL: {0}")]
    RedisConfig(#[source] redis::RedisError),
    #[error("cannot listen on the probe address: {0}")]
    ProbeBind(#[source] std::io::Error),
    #[error("the probe server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("leadership lost: another process holds the Lease, or it could not be renewed")]
    LeadershipLost,
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("invalid Kafka security settings: {0}")]
    KafkaSecurity(#[from] licenseware_crds::kafka_security::KafkaSecurityError),
    #[error("invalid Kafka TLS settings: {0}")]
    KafkaTls(#[from] kafka::TlsSetupError),
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
            Self::LeadershipLost => "LeadershipLost",
            Self::InvalidConfig(_) => "InvalidConfig",
            Self::KafkaSecurity(error) => error.reason(),
            Self::KafkaTls(_) => "KafkaTlsSetup",
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
/// How long the probe server may take to close its connections.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the controllers stopped.
enum Stop {
    Shutdown,
    LeadershipLost,
    ServerEnded(Result<(), Error>),
}

/// [`run`] on a listener the caller has bound. The probe and metrics server starts at
/// once; the controllers start once this process leads (at once without election) and
/// run until `shutdown` completes, or until leadership is lost, which is an error: the
/// process should exit and campaign again from scratch, as controller-runtime does.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // Settings that only parse here fail before anything starts.
    let topic_policy = config.topic_policy().map_err(Error::InvalidConfig)?;
    let lease_timing = leader::Timing::from_config(&config.leader).map_err(Error::InvalidConfig)?;
    let kafka_security = config.kafka_security.load()?;
    let wire_security = kafka::WireSecurity::new(&kafka_security)?;
    let uploader_options =
        uploader_options(&config, &wire_security).map_err(Error::InvalidConfig)?;
    let dependencies = Dependencies::connect(&config, wire_security.clone()).await?;
    let shutdown = shutdown.boxed().shared();
    let kube = dependencies.kube.clone();
    let admin = kafka::KafkaAdmin::start(
        Arc::new(kafka::KafkaClient::new(
            &config.kafka_brokers,
            "licenseware-operator",
            kafka::ADMIN_REQUEST_TIMEOUT,
            wire_security,
        )),
        Arc::new(kafka::MongoClaims::new(
            &dependencies.mongo.database(&config.registry_database()),
        )),
        kafka::DEFAULT_LINGER,
        kafka::DEFAULT_MAX_BATCH,
    );
    let registry = registry::Registry::new(
        &dependencies.mongo,
        &config.registry_database(),
        &kafka_security.client_config(&config.kafka_brokers),
        &config.topic_prefix,
        admin.clone(),
    )
    .map_err(Error::KafkaConfig)?;
    let scaler_metrics = Arc::new(scaler::metrics::ScalerMetrics::default());
    let leadership = if config.leader.elect {
        leader::Leadership::campaign(kube.clone(), &config.leader, lease_timing)
    } else {
        leader::Leadership::disabled()
    };

    let (readiness_tx, readiness_rx) = watch::channel(Readiness::starting());
    let interval = Duration::from_secs(config.readiness_interval_secs.max(1));
    let checker = tokio::spawn(check_forever(dependencies, readiness_tx, interval));
    let probes = web::Probes {
        readiness: readiness_rx,
        role: leadership.role(),
        metrics: Arc::new(web::registry(
            Arc::clone(admin.metrics()),
            Arc::clone(&scaler_metrics),
            leadership.role(),
        )),
    };
    let probe_addr = listener.local_addr().map_err(Error::ProbeBind)?;
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(
        axum::serve(listener, web::router(probes))
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .into_future(),
    );
    tracing::info!(%probe_addr, leader_election = config.leader.elect, "operator started");

    let stop = tokio::select! {
        () = shutdown.clone() => Stop::Shutdown,
        served = &mut server => Stop::ServerEnded(served_outcome(served)),
        // Lost while still starting (the CRD wait below, on a stalled apiserver, has no
        // end of its own): stop now, as a leader with controllers running would.
        () = leadership.lost() => Stop::LeadershipLost,
        () = async {
            leadership.acquired().await;
            wait_for_crds(&kube).await;
        } => {
            let (stop_controllers, controllers_stopped) = oneshot::channel::<()>();
            let stopping = async {
                let _ = controllers_stopped.await;
            }
            .boxed()
            .shared();
            let controllers = [
                (
                    "registry",
                    tokio::spawn(controllers::registry_kinds::run(
                        kube.clone(),
                        registry.clone(),
                        config.watched_namespaces(),
                        Duration::from_secs(config.resync_interval_secs),
                        stopping.clone(),
                    )),
                ),
                (
                    "app",
                    tokio::spawn(controllers::app::run(
                        kube.clone(),
                        config.watched_namespaces(),
                        Duration::from_secs(config.resync_interval_secs),
                        stopping.clone(),
                    )),
                ),
                (
                    "topic",
                    tokio::spawn(controllers::topic::run(
                        kube.clone(),
                        admin,
                        config.watched_namespaces(),
                        topic_policy,
                        Duration::from_secs(config.resync_interval_secs),
                        stopping.clone(),
                    )),
                ),
                (
                    "uploader",
                    tokio::spawn(controllers::uploader::run(
                        kube.clone(),
                        registry.clone(),
                        config.watched_namespaces(),
                        uploader_options,
                        Arc::clone(&scaler_metrics),
                        stopping.clone(),
                    )),
                ),
            ];
            let stop = tokio::select! {
                () = shutdown.clone() => Stop::Shutdown,
                () = leadership.lost() => Stop::LeadershipLost,
                served = &mut server => Stop::ServerEnded(served_outcome(served)),
            };
            let _ = stop_controllers.send(());
            // A lost leader stops at once: another process may already reconcile.
            let grace = match stop {
                Stop::LeadershipLost => Duration::ZERO,
                _ => CONTROLLER_STOP_TIMEOUT,
            };
            futures::future::join_all(
                controllers.into_iter().map(|(name, task)| stop_task(name, task, grace)),
            )
            .await;
            stop
        }
    };
    checker.abort();
    // After the controllers, so that the Lease is only free once they are done.
    leadership.release().await;
    let _ = stop_server.send(());
    let outcome = match stop {
        Stop::ServerEnded(outcome) => outcome,
        Stop::Shutdown | Stop::LeadershipLost => {
            let served = match tokio::time::timeout(SERVER_STOP_TIMEOUT, &mut server).await {
                Ok(served) => served_outcome(served),
                Err(_) => {
                    server.abort();
                    Ok(())
                }
            };
            match stop {
                Stop::LeadershipLost => Err(Error::LeadershipLost),
                _ => served,
            }
        }
    };
    tracing::info!("operator stopped");
    outcome
}

fn served_outcome(
    served: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), Error> {
    served.map_err(std::io::Error::other).and_then(|served| served).map_err(Error::Serve)
}

/// Waits up to `grace` for a controller task to finish its in-flight reconciles, then
/// aborts it.
async fn stop_task(name: &'static str, mut task: JoinHandle<()>, grace: Duration) {
    match tokio::time::timeout(grace, &mut task).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(controller = name, %error, "controller task failed"),
        Err(_) => {
            if !grace.is_zero() {
                tracing::warn!(controller = name, "controller did not stop in time");
            }
            task.abort();
        }
    }
}

/// Returns once the apiserver serves every CRD, saying once what is missing and how to
/// install it: the controllers' watches would only fail until then.
async fn wait_for_crds(kube: &kube::Client) {
    let mut reported = false;
    loop {
        match dependencies::missing_crds(kube).await {
            Ok(missing) if missing.is_empty() => return,
            Ok(missing) if !reported => {
                tracing::warn!(
                    missing = %missing.join(", "),
                    "waiting for the CRDs: kubectl apply --server-side -f crds/"
                );
                reported = true;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the CRDs; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The Uploader controller's settings, from the operator's flags.
fn uploader_options(
    config: &Config,
    wire_security: &kafka::WireSecurity,
) -> Result<controllers::uploader::Options, String> {
    let workers = &config.workers;
    Ok(controllers::uploader::Options {
        settings: controllers::uploader::build::WorkerSettings {
            topic_prefix: config.topic_prefix.clone(),
            default_image: workers.worker_image.clone(),
            upload_claim: workers.upload_claim.clone(),
            secret: workers.worker_secret.clone(),
            kafka_brokers: config.kafka_brokers.clone(),
            mongo_url: config.mongo_url.clone(),
            redis_url: config.redis_url.clone(),
            kafka_security: controllers::uploader::kafka_env::WorkerKafkaSecurity::new(
                &config.kafka_security,
                workers.kafka_files_secret.as_deref(),
            )?,
            images: controllers::uploader::image::ImagePolicy::new(
                &workers.worker_image_registries,
                &workers.worker_image,
            ),
            default_resources: workers.default_resources()?,
            tmp_size_limit: workers.tmp_size_limit()?,
        },
        kafka_security: wire_security.clone(),
        poll: Duration::from_secs(workers.poll_interval_secs),
        stabilization: Duration::from_secs(workers.scale_down_stabilization_secs),
        resync: Duration::from_secs(config.resync_interval_secs),
    })
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
