//! Uploader controller: an Uploader becomes two Topics (events and dead letters), the
//! worker's ConfigMap, a worker Deployment scaled on the lag of its consumer group, and
//! a registry entry.
//!
//! Each reconcile: validate the spec and build the objects (pure, [`build`]), apply
//! them with server-side apply under [`FIELD_MANAGER`] with ownerReferences to the
//! Uploader (kube-controller-manager's garbage collector deletes them with it), poll
//! the lag and set the replicas (the lag scaler, under its own field manager
//! [`scaler::FIELD_MANAGER`]), upsert the registry entry (the registry writes only
//! when its content changed) or remove it when `registrable: false` or the spec is
//! invalid, then write the status (pure, [`status`]) only when it changed. Every
//! Uploader is requeued each poll interval, which is the scaler's clock; changes of the
//! owned Topics and Deployments reconcile at once.
//!
//! A registrable Uploader carries the finalizer [`FINALIZER`]: its registry entry
//! (tombstone included) goes before the Uploader does. A registry that cannot be
//! written turns `Registered` and `Ready` False but does not stop the scaler.

pub mod build;
mod children;
pub mod image;
pub mod status;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::ConfigMap},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        events::{Event, EventType, Recorder},
    },
};
use licenseware_crds::{Topic, Uploader, WorkerConfigFile, registry::AppMetadata};
use serde_json::json;

use self::{
    build::{Desired, WorkerSettings},
    children::{
        AppliedMemo, ChildStores, apply_child, apply_unwatched, not_owned, strip_deployment,
        strip_topic, watch_children,
    },
    status::{Outcome, Registration, ScaleFigures, next_status, topic_readiness},
};
use crate::{
    controllers::{
        backoff::{Backoff, key},
        events, finalizer,
        policy::retry_action,
        scope::{self, Scope},
        status as status_writer,
    },
    kafka::KafkaClient,
    registry::{EntryKind, Registry, RegistryError, uploader_entry},
    scaler::{
        self, ScalerState,
        lag::{self, LagReader},
        metrics::{ScalerMetrics, UploaderFigures},
    },
};

/// The finalizer that removes the Uploader's registry entry before the Uploader goes
/// (the same one the Report, ReportComponent and DataTable controllers use).
pub use crate::controllers::registry_kinds::FINALIZER;

/// Reconciles in flight at once; each one may wait on Kafka for the lag.
const CONCURRENCY: u16 = 50;

/// Why a reconcile failed. The reason is stable: it names the log field and the
/// condition reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => licenseware_crds::reason::INVALID_SPEC,
            Self::Kube(_) => licenseware_crds::reason::KUBERNETES_ERROR,
            Self::Registry(error) => error.reason(),
        }
    }
}

/// How the controller runs the workers and scales them.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: WorkerSettings,
    /// The lag scaler's poll interval.
    pub poll: Duration,
    /// The scale-down stabilization window.
    pub stabilization: Duration,
    /// Children unchanged since their last apply are applied again after this long.
    pub resync: Duration,
}

/// How long one request of the lag reader may take.
const LAG_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every reconcile shares.
pub struct Context {
    client: Client,
    registry: Registry,
    options: Options,
    lag: LagReader,
    metrics: Arc<ScalerMetrics>,
    /// The scaler's memory per Uploader, with when it was last used.
    states: Mutex<HashMap<String, (ScalerState, Instant)>>,
    backoff: Backoff,
    recorder: Recorder,
    children: ChildStores,
    applied: AppliedMemo,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Context {
    /// How long an Uploader may go unreconciled before its scaler memory and
    /// metric series are dropped as gone (only registrable Uploaders have a finalizer
    /// to tell).
    fn idle(&self) -> Duration {
        self.options.poll * 5 + Duration::from_secs(60)
    }

    fn forget_idle(&self) {
        let idle = self.idle();
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (_, used)| used.elapsed() < idle);
        self.metrics.forget_idle(idle);
    }

    fn state(&self, key: &str) -> Option<ScalerState> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner).get(key).map(|(s, _)| s.clone())
    }

    fn remember(&self, key: String, state: ScalerState) {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (state, Instant::now()));
    }
}

/// Runs the Uploader controller, one watcher per namespace (or one for all), until
/// `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    registry: Registry,
    namespaces: Vec<String>,
    options: Options,
    metrics: Arc<ScalerMetrics>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let mut children = ChildStores::default();
    let controllers: Vec<Controller<Uploader>> = Scope::all(&client, &namespaces)
        .iter()
        .map(|scope| {
            let (topics, topic_changes) = watch_children::<Topic>(scope, strip_topic);
            let (deployments, deployment_changes) =
                watch_children::<Deployment>(scope, strip_deployment);
            children.add(topics, deployments);
            scope
                .controller(CONCURRENCY, shutdown.clone())
                .owns_stream(topic_changes)
                .owns_stream(deployment_changes)
        })
        .collect();
    let context = Arc::new(Context {
        recorder: events::recorder(client.clone()),
        // Its own connections: lag reads never wait behind a slow admin request.
        lag: LagReader::start(
            Arc::new(KafkaClient::new(
                &options.settings.kafka_brokers,
                "licenseware-operator-scaler",
                LAG_REQUEST_TIMEOUT,
            )),
            Arc::clone(&metrics),
            lag::DEFAULT_LINGER,
        ),
        client,
        registry,
        options: Options { poll: options.poll.max(Duration::from_secs(1)), ..options },
        metrics,
        states: Mutex::default(),
        backoff: Backoff::reconciles(),
        children,
        applied: AppliedMemo::default(),
    });
    tracing::info!(
        namespaces = ?namespaces,
        poll_secs = context.options.poll.as_secs(),
        stabilization_secs = context.options.stabilization.as_secs(),
        "uploader controller started"
    );
    scope::run_all(
        controllers,
        shutdown.clone(),
        reconcile,
        error_policy,
        &context,
        |object| tracing::trace!(uploader = %object, "reconciled"),
        |error| tracing::warn!(%error, "uploader controller"),
    )
    .await;
    tracing::info!("uploader controller stopped");
}

fn reference(uploader: &Uploader) -> String {
    format!("{}/{}", uploader.namespace().unwrap_or_default(), uploader.name_any())
}

#[tracing::instrument(skip_all, fields(uploader = %reference(&uploader)))]
async fn reconcile(uploader: Arc<Uploader>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = crate::metrics::reconciles().start("Uploader");
    ctx.forget_idle();
    let result = if uploader.metadata.deletion_timestamp.is_some() {
        // The garbage collector deletes the owned objects; the registry entry is ours.
        cleanup(&uploader, &ctx).await
    } else {
        Box::pin(apply(&uploader, &ctx)).await
    };
    if result.is_ok() {
        ctx.backoff.reset(&key(&*uploader));
    }
    result
}

fn error_policy(uploader: Arc<Uploader>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::reconciles().failed("Uploader", error.reason());
    retry_action!(
        uploader = reference(&uploader),
        error: error,
        invalid_spec: matches!(error, Error::InvalidSpec(_)),
        backoff: ctx.backoff,
        key: key(&*uploader),
    )
}

async fn apply(uploader: &Uploader, ctx: &Context) -> Result<Action, Error> {
    let namespace = uploader.namespace().unwrap_or_default();
    let name = uploader.name_any();
    let topics: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    if uploader.spec.registrable && !has_finalizer(uploader) {
        set_finalizer(uploader, ctx, true).await?;
    }
    // An invalid spec keeps the Uploader out of the registry; a failed removal is
    // retried with backoff.
    let invalid = |message: String| async move {
        write_status(uploader, ctx, &Outcome::InvalidSpec(message.clone())).await?;
        ctx.registry
            .remove(
                EntryKind::Uploader,
                &uploader.namespace().unwrap_or_default(),
                &uploader.name_any(),
            )
            .await?;
        Err(Error::InvalidSpec(message))
    };
    if let Err(message) = build::validate(uploader, &ctx.options.settings) {
        return invalid(message).await;
    }
    if let Err(message) = build::check_image(uploader, &ctx.options.settings) {
        return refuse(uploader, ctx, licenseware_crds::reason::IMAGE_NOT_ALLOWED, message).await;
    }
    let events_name = build::events_topic_resource(&name);
    let dlq_name = build::dlq_topic_resource(&name);
    let cached_events = ctx.children.topic(&namespace, &events_name);
    let existing = match cached_events {
        Some(topic) => Some(topic),
        // Not in the cache yet (just created, or the cache is still filling): ask.
        None => topics.get_opt(&events_name).await?,
    };
    let desired = match build::build(
        uploader,
        &ctx.options.settings,
        existing.as_ref().map(|topic| topic.spec.partitions),
    ) {
        Ok(desired) => desired,
        Err(message) => return invalid(message).await,
    };

    let (memo, resync) = (&ctx.applied, ctx.options.resync);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let cached_dlq = match ctx.children.topic(&namespace, &dlq_name) {
        Some(topic) => Some(topic),
        None => topics.get_opt(&dlq_name).await?,
    };
    let cached_deployment =
        match ctx.children.deployment(&namespace, &desired.deployment.name_any()) {
            Some(deployment) => Some(deployment),
            // The cache only holds labelled Deployments: a foreign one is found by name.
            None => deployments.get_opt(&desired.deployment.name_any()).await?,
        };
    // The ConfigMap is not watched: read only when it is about to be applied.
    let current_config_map = if memo.skips_unwatched(&desired.config_map, resync) {
        None
    } else {
        config_maps.get_opt(&desired.config_map.name_any()).await?
    };
    // Every child is checked before any is applied: a conflict changes nothing.
    let uid = uploader.uid().unwrap_or_default();
    let conflict = [existing.as_ref(), cached_dlq.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|topic| not_owned(topic, &uid))
        .or_else(|| current_config_map.as_ref().and_then(|map| not_owned(map, &uid)))
        .or_else(|| cached_deployment.as_ref().and_then(|d| not_owned(d, &uid)));
    if let Some(message) = conflict {
        return refuse(uploader, ctx, licenseware_crds::reason::RESOURCE_CONFLICT, message).await;
    }
    let events = apply_child(&topics, memo, &desired.events_topic, existing, resync).await?;
    let dlq = apply_child(&topics, memo, &desired.dlq_topic, cached_dlq, resync).await?;
    apply_unwatched(&config_maps, memo, &desired.config_map, resync).await?;
    let deployment =
        apply_child(&deployments, memo, &desired.deployment, cached_deployment, resync).await?;

    let topics_ready = topic_readiness(&events).and_then(|()| topic_readiness(&dlq));
    let scale = scale(uploader, ctx, &desired, &deployment, topics_ready.is_ok()).await?;
    let registration = register(uploader, ctx, &desired.worker_config).await?;
    let outcome = Outcome::Applied {
        topic_name: desired.events_kafka_name.clone(),
        dlq_topic_name: desired.dlq_kafka_name.clone(),
        topics: topics_ready,
        worker: deployment.name_any(),
        scale,
        registration,
    };
    write_status(uploader, ctx, &outcome).await?;
    Ok(Action::requeue(ctx.options.poll))
}

/// Stops before applying anything: the status says why (`reason`), and the registry
/// entry goes, as for an invalid spec. Checked again at the next poll, so removing the
/// cause is enough.
async fn refuse(
    uploader: &Uploader,
    ctx: &Context,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    tracing::warn!(reason, %message, "uploader refused");
    write_status(uploader, ctx, &Outcome::Refused { reason, message }).await?;
    let namespace = uploader.namespace().unwrap_or_default();
    if let Err(error) =
        ctx.registry.remove(EntryKind::Uploader, &namespace, &uploader.name_any()).await
    {
        tracing::warn!(%error, "cannot remove the registry entry of a refused uploader");
    }
    Ok(Action::requeue(ctx.options.poll.max(Duration::from_secs(10))))
}

/// Upserts the registry entry of a registrable Uploader (the registry writes only when
/// the content changed), or removes it and then the finalizer. A registry failure is
/// the returned [`Registration`], so the status says it and the scaler keeps its clock:
/// the next poll retries.
/// `worker` is the worker's config as its ConfigMap holds it: the entry carries it.
async fn register(
    uploader: &Uploader,
    ctx: &Context,
    worker: &WorkerConfigFile,
) -> Result<Registration, Error> {
    let failed = |error: RegistryError| {
        tracing::warn!(reason = error.reason(), %error, "cannot write the registry entry");
        Registration::Failed { reason: error.reason(), message: error.to_string() }
    };
    if uploader.spec.registrable {
        let app = AppMetadata::for_app(&uploader.spec.app_id);
        let entry = uploader_entry(uploader, worker, &app);
        let key = entry.key.to_string();
        return Ok(match ctx.registry.upsert(&entry).await {
            Ok(_) => Registration::Registered { key },
            Err(error) => failed(error),
        });
    }
    let namespace = uploader.namespace().unwrap_or_default();
    match ctx.registry.remove(EntryKind::Uploader, &namespace, &uploader.name_any()).await {
        Ok(_) => {
            if has_finalizer(uploader) {
                set_finalizer(uploader, ctx, false).await?;
            }
            Ok(Registration::NotRegistrable)
        }
        Err(error) => Ok(failed(error)),
    }
}

/// Deletion: the registry entry goes (tombstone, then document; what is gone already
/// counts as removed), then the finalizer. The garbage collector deletes the owned
/// objects once the Uploader is gone.
async fn cleanup(uploader: &Uploader, ctx: &Context) -> Result<Action, Error> {
    if !has_finalizer(uploader) {
        return Ok(Action::await_change());
    }
    let namespace = uploader.namespace().unwrap_or_default();
    ctx.registry.remove(EntryKind::Uploader, &namespace, &uploader.name_any()).await?;
    set_finalizer(uploader, ctx, false).await?;
    ctx.states.lock().unwrap_or_else(PoisonError::into_inner).remove(&key(uploader));
    let name = uploader.name_any();
    ctx.applied.forget(&[
        format!("Topic/{namespace}/{}", build::events_topic_resource(&name)),
        format!("Topic/{namespace}/{}", build::dlq_topic_resource(&name)),
        format!("ConfigMap/{namespace}/{}", build::worker_name(&name)),
        format!("Deployment/{namespace}/{}", build::worker_name(&name)),
    ]);
    Ok(Action::await_change())
}

fn has_finalizer(uploader: &Uploader) -> bool {
    finalizer::has(uploader, FINALIZER)
}

/// Adds or removes the finalizer.
async fn set_finalizer(uploader: &Uploader, ctx: &Context, present: bool) -> Result<(), Error> {
    Ok(finalizer::set(&ctx.client, uploader, FINALIZER, present).await?)
}

/// The lag scaler's poll: reads the lag, decides the replicas and applies them (only
/// `spec.replicas`, under the scaler's field manager) when they change.
async fn scale(
    uploader: &Uploader,
    ctx: &Context,
    desired: &Desired,
    deployment: &Deployment,
    topics_ready: bool,
) -> Result<ScaleFigures, Error> {
    let key = key(uploader);
    let worker = &uploader.spec.worker;
    // The apiserver's default when nobody sets replicas.
    let current = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let owned = deployment
        .managed_fields()
        .iter()
        .any(|entry| entry.manager.as_deref() == Some(scaler::FIELD_MANAGER));
    let now = Timestamp::now();
    // Without a reading: keep what the scaler set, or start the worker at minReplicas.
    let mut target = if owned { current } else { worker.min_replicas };
    let mut decision = None;
    if topics_ready {
        match ctx.lag.read(&desired.consumer_group, &desired.events_kafka_name).await {
            Ok(offsets) => {
                let previous = ctx.state(&key).unwrap_or_else(|| {
                    if owned { ScalerState::seeded(current, now) } else { ScalerState::default() }
                });
                let (found, state) = scaler::decide(
                    &offsets,
                    worker,
                    current,
                    &previous,
                    ctx.options.stabilization,
                    now,
                );
                ctx.remember(key, state);
                target = found.desired;
                decision = Some(found);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the lag; replicas stay as they are");
            }
        }
    }
    if target != current || !owned {
        let deployments: Api<Deployment> =
            Api::namespaced(ctx.client.clone(), &uploader.namespace().unwrap_or_default());
        let body = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": deployment.name_any()},
            "spec": {"replicas": target},
        });
        deployments
            .patch(
                &deployment.name_any(),
                &PatchParams::apply(scaler::FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
    }
    let scaled = target != current;
    if scaled {
        let lag = decision.map_or_else(|| "unknown".to_owned(), |d| d.lag.to_string());
        tracing::info!(from = current, to = target, %lag, "scaled the worker");
        let event = Event {
            type_: EventType::Normal,
            reason: "Scaled".to_owned(),
            note: Some(format!(
                "Scaled Deployment {} from {current} to {target} replicas (lag {lag})",
                deployment.name_any()
            )),
            action: "Scale".to_owned(),
            secondary: Some(deployment.object_ref(&())),
        };
        events::publish(&ctx.recorder, &event, uploader).await;
    }
    ctx.metrics.set(
        &uploader.namespace().unwrap_or_default(),
        &uploader.name_any(),
        UploaderFigures {
            lag: decision
                .map_or(uploader.status.as_ref().and_then(|s| s.lag).unwrap_or(0), |d| d.lag),
            desired_replicas: decision.map_or(target, |d| d.desired),
            replicas: target,
        },
    );
    Ok(ScaleFigures {
        replicas: target,
        desired_replicas: decision.map(|d| d.desired),
        lag: decision.map(|d| d.lag),
        scaled_at: scaled.then_some(Time(now)),
    })
}

/// Writes the status that `outcome` leads to, when it differs from the current one,
/// and publishes a Warning Event when Ready turns to a new failure reason.
async fn write_status(uploader: &Uploader, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    let old = uploader.status.as_ref();
    let next = next_status(old, uploader.metadata.generation, outcome, Time(Timestamp::now()));
    status_writer::write(&ctx.client, &ctx.recorder, uploader, old, &next, "Reconcile").await?;
    Ok(())
}
