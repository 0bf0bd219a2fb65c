//! Uploader controller: an Uploader becomes two Topics (events and dead letters), the
//! worker's ConfigMap, a worker Deployment scaled on the lag of its consumer group, and
//! a registry entry.
//!
//! Each reconcile: validate the spec and build the objects (pure, [`build`]), apply
//! them with server-side apply under [`FIELD_MANAGER`] with ownerReferences to the
//! Uploader (kube-controller-manager's garbage collector deletes them with it), upsert
//! the registry entry (the registry writes only when its content changed) or remove it
//! when `registrable: false` or the spec is invalid, then write the status (pure,
//! [`status`]) only when it changed. A reconcile runs on a change of the Uploader or of
//! its Topics and Deployment, and once per resync interval; never per poll.
//!
//! The lag scaler is a loop of its own ([`scaling`]): every poll interval it reads the
//! lag of every Uploader in one batch and sets the replicas and the scale figures of
//! the status that changed, under its own field manager [`crate::scaler::FIELD_MANAGER`].
//!
//! A registrable Uploader carries the finalizer [`FINALIZER`]: its registry entry
//! (tombstone included) goes before the Uploader does. A registry that cannot be
//! written turns `Registered` and `Ready` False but does not stop the scaler.

pub mod build;
mod children;
pub mod image;
pub mod kafka_env;
pub mod scaling;
pub mod status;

use std::{future::Future, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::ConfigMap},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::PartialObjectMeta,
    runtime::{
        Controller,
        controller::Action,
        events::Recorder,
        reflector::{ObjectRef, Store},
    },
};
use licenseware_crds::{App, Topic, Uploader, WorkerConfigFile};

use self::{
    build::WorkerSettings,
    children::{
        AppliedMemo, ChildStores, REAPPLY_AFTER_RESYNCS, apply_by_resource_version, apply_child,
        create_worker, get_uncached, get_uncached_metadata, not_owned, strip_config_map,
        strip_deployment, strip_topic, watch_children, with_replicas_until_scaled,
    },
    status::{Outcome, Registration, next_status, topics_readiness},
};
use crate::{
    controllers::{
        app,
        backoff::{Backoff, key},
        events, finalizer,
        policy::retry_action,
        scope::{self, Scope},
        status as status_writer,
        superseded::Superseded,
    },
    kafka::KafkaClient,
    registry::{EntryKind, Registry, RegistryError, uploader_entry},
    scaler::{lag::LagReader, metrics::ScalerMetrics},
};

/// The finalizer that removes the Uploader's registry entry before the Uploader goes
/// (the same one the Report, ReportComponent and DataTable controllers use).
pub use crate::controllers::registry_kinds::FINALIZER;

/// Reconciles in flight at once.
const CONCURRENCY: u16 = 50;

/// Changes of one Uploader and its children that come this close together make one
/// reconcile: its two Topics, created in the same admin batch, turn Ready a moment
/// apart, and each turn was a reconcile and a status write of its own.
const CHILD_CHANGES_DEBOUNCE: Duration = Duration::from_millis(1000);

/// A reconcile handed a version of the Uploader that its own last write replaced runs
/// again after this long, when the cache has most likely caught up.
const STALE_RECHECK: Duration = Duration::from_secs(1);

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
    /// How the lag reader's Kafka connections are secured.
    pub kafka_security: crate::kafka::WireSecurity,
    /// The lag scaler's poll interval: the scaler loop's tick.
    pub poll: Duration,
    /// The scale-down stabilization window.
    pub stabilization: Duration,
    /// Every Uploader is reconciled again after this long; children unchanged since
    /// their last apply are applied again then.
    pub resync: Duration,
}

/// How long one request of the lag reader may take.
const LAG_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every reconcile shares.
pub struct Context {
    client: Client,
    registry: Registry,
    options: Options,
    backoff: Backoff,
    recorder: Recorder,
    children: ChildStores,
    /// The Apps, cached: each reconcile reads the App of its namespace.
    apps: Vec<Store<App>>,
    applied: Arc<AppliedMemo>,
    /// Versions of Uploaders that the finalizer and status writes here replaced.
    superseded: Superseded,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Runs the Uploader controller, one watcher per namespace (or one for all), and the
/// scaler loop over the same caches, until `shutdown` completes; in-flight reconciles
/// finish first.
pub async fn run(
    client: Client,
    registry: Registry,
    namespaces: Vec<String>,
    options: Options,
    metrics: Arc<ScalerMetrics>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let mut children = ChildStores::default();
    let mut app_caches = Vec::new();
    let controllers: Vec<Controller<Uploader>> = Scope::all(&client, &namespaces)
        .iter()
        .map(|scope| {
            let (topics, topic_changes) = watch_children::<Topic>(scope, strip_topic);
            let (deployments, deployment_changes) =
                watch_children::<Deployment>(scope, strip_deployment);
            let (config_maps, config_map_changes) =
                watch_children::<PartialObjectMeta<ConfigMap>>(scope, strip_config_map);
            children.add(topics, deployments, config_maps);
            let controller: Controller<Uploader> = scope
                .debounced_controller(CONCURRENCY, CHILD_CHANGES_DEBOUNCE, shutdown.clone())
                .owns_stream(topic_changes)
                .owns_stream(deployment_changes)
                .owns_stream(config_map_changes);
            // An App describes the Uploaders of its namespace and appId (parrent_app).
            let store = controller.store();
            let (apps, app_changes) = app::watch(scope);
            app_caches.push(apps);
            controller.watches_stream(app_changes, move |app| {
                let namespace = app.namespace();
                store
                    .state()
                    .into_iter()
                    .filter(|u| u.namespace() == namespace && u.spec.app_id == app.spec.app_id)
                    .map(|u| ObjectRef::from_obj(&*u))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let options = Options {
        poll: options.poll.max(Duration::from_secs(1)),
        resync: options.resync.max(Duration::from_secs(1)),
        ..options
    };
    let recorder = events::recorder(client.clone());
    let applied = Arc::new(AppliedMemo::default());
    let scaler = scaling::Scaler {
        client: client.clone(),
        recorder: recorder.clone(),
        // Its own connections: lag reads never wait behind a slow admin request.
        lag: LagReader::new(
            Arc::new(KafkaClient::new(
                &options.settings.kafka_brokers,
                "licenseware-operator-scaler",
                LAG_REQUEST_TIMEOUT,
                options.kafka_security.clone(),
            )),
            Arc::clone(&metrics),
        ),
        metrics,
        settings: options.settings.clone(),
        poll: options.poll,
        stabilization: options.stabilization,
        uploaders: controllers.iter().map(Controller::store).collect(),
        children: children.clone(),
        applied: Arc::clone(&applied),
    };
    let context = Arc::new(Context {
        recorder,
        client,
        registry,
        options,
        backoff: Backoff::reconciles(),
        children,
        apps: app_caches,
        applied,
        superseded: Superseded::default(),
    });
    tracing::info!(
        namespaces = ?namespaces,
        poll_secs = context.options.poll.as_secs(),
        stabilization_secs = context.options.stabilization.as_secs(),
        "uploader controller started"
    );
    let scaling = tokio::spawn(scaler.run(shutdown.clone()));
    scope::run_all(
        controllers,
        shutdown.clone(),
        reconcile,
        error_policy,
        &context,
        |object| tracing::trace!(uploader = %object, "reconciled"),
        |gone| context.backoff.reset(gone),
        |error| tracing::warn!(%error, "uploader controller"),
    )
    .await;
    scaling.abort();
    tracing::info!("uploader controller stopped");
}

fn reference(uploader: &Uploader) -> String {
    format!("{}/{}", uploader.namespace().unwrap_or_default(), uploader.name_any())
}

#[tracing::instrument(skip_all, fields(uploader = %reference(&uploader)))]
async fn reconcile(uploader: Arc<Uploader>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = crate::metrics::reconciles().start("Uploader");
    let uid = uploader.uid().unwrap_or_default();
    if ctx.superseded.is_stale(&uid, uploader.resource_version().as_deref()) {
        // Acting on it would set the finalizer again (a conflict) or write the status
        // the last reconcile wrote; the cache brings the new version soon.
        tracing::debug!("the cached uploader predates this operator's last write; waiting");
        return Ok(Action::requeue(STALE_RECHECK));
    }
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
        None => get_uncached(&topics, &events_name).await?,
    };
    let desired = match build::build(
        uploader,
        &ctx.options.settings,
        existing.as_ref().map(|topic| topic.spec.partitions),
        existing.as_ref().and_then(|topic| topic.spec.schema.as_ref()),
    ) {
        Ok(desired) => desired,
        Err(message) => return invalid(message).await,
    };

    let (memo, reapply) = (&ctx.applied, ctx.options.resync * REAPPLY_AFTER_RESYNCS);
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let cached_dlq = match ctx.children.topic(&namespace, &dlq_name) {
        Some(topic) => Some(topic),
        None => get_uncached(&topics, &dlq_name).await?,
    };
    let cached_deployment =
        match ctx.children.deployment(&namespace, &desired.deployment.name_any()) {
            Some(deployment) => Some(deployment),
            // The cache only holds labelled Deployments: a foreign one is found by name.
            None => get_uncached(&deployments, &desired.deployment.name_any()).await?,
        };
    let current_config_map =
        match ctx.children.config_map(&namespace, &desired.config_map.name_any()) {
            Some(config_map) => Some(config_map),
            None => get_uncached_metadata(&config_maps, &desired.config_map.name_any()).await?,
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
    let events = apply_child(&topics, memo, &desired.events_topic, existing, reapply).await?;
    let dlq = apply_child(&topics, memo, &desired.dlq_topic, cached_dlq, reapply).await?;
    let config_map_meta = current_config_map.as_ref().map(|map| &map.metadata);
    apply_by_resource_version(&config_maps, memo, &desired.config_map, config_map_meta, reapply)
        .await?;
    let min_replicas = uploader.spec.worker.min_replicas;
    let deployment = match cached_deployment {
        Some(current) => {
            let worker =
                with_replicas_until_scaled(&desired.deployment, &current, memo, min_replicas);
            apply_child(&deployments, memo, &worker, Some(current), reapply).await?
        }
        None => create_worker(&deployments, memo, &desired.deployment, min_replicas).await?,
    };

    let topics_ready = topics_readiness(&events, &dlq);
    let event_schema = build::check_events_schema(uploader, events.spec.schema.as_ref());
    let registration = register(uploader, ctx, &desired.worker_config).await?;
    let outcome = Outcome::Applied {
        topic_name: desired.events_kafka_name.clone(),
        dlq_topic_name: desired.dlq_kafka_name.clone(),
        topics: topics_ready,
        event_schema,
        worker: deployment.name_any(),
        registration,
    };
    write_status(uploader, ctx, &outcome).await?;
    Ok(Action::requeue(crate::controllers::backoff::spread_resync(ctx.options.resync)))
}

/// Stops before applying anything: the status says why (`reason`), and the registry
/// entry goes, as for an invalid spec. Checked again soon, so removing the cause (a
/// foreign object, an image registry not allowed yet) is enough.
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
/// the returned [`Registration`], so the status says it; the next resync retries.
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
        let apps = app::cached_apps_of(&ctx.apps, &uploader.namespace().unwrap_or_default()).await;
        let app = app::plan::app_metadata(&uploader.spec.app_id, &apps);
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
    ctx.superseded.forget(&uploader.uid().unwrap_or_default());
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
    let version = finalizer::set(&ctx.client, uploader, FINALIZER, present).await?;
    remember_write(uploader, ctx, version.as_deref());
    Ok(())
}

/// A write of this reconcile gave the Uploader the version `to`.
fn remember_write(uploader: &Uploader, ctx: &Context, to: Option<&str>) {
    let from = uploader.resource_version();
    ctx.superseded.record(&uploader.uid().unwrap_or_default(), from.as_deref(), to);
}

/// Writes the status that `outcome` leads to, when it differs from the current one,
/// and publishes a Warning Event when Ready turns to a new failure reason.
async fn write_status(uploader: &Uploader, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    let old = uploader.status.as_ref();
    let next = next_status(old, uploader.metadata.generation, outcome, Time(Timestamp::now()));
    // The scale figures are the scaler loop's fields, under its own field manager.
    let body = scaling::without_scale_figures(&next);
    let version = status_writer::write_as(
        &ctx.client,
        &ctx.recorder,
        uploader,
        old,
        &next,
        &body,
        "Reconcile",
    )
    .await?;
    remember_write(uploader, ctx, version.as_deref());
    Ok(())
}
