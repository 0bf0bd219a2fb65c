//! Topic controller: a Topic resource becomes a Kafka topic.
//!
//! Each reconcile: validate the spec and build the desired topic (pure,
//! [`desired`]), decide ownership, apply it to Kafka through the batching
//! [`KafkaAdmin`], then write the status (pure, [`status`]) with server-side apply,
//! only when it changed.

pub mod desired;
pub mod status;

use std::{future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{Action, Config as ControllerConfig},
        events::{Event, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use licenseware_crds::{DeletionPolicy, FIELD_MANAGER, Topic, TopicStatus, condition_type};
use serde_json::json;

use self::{
    desired::{Management, management},
    status::{Outcome, next_status},
};
use crate::{controllers::backoff::Backoff, kafka::KafkaAdmin};

/// The finalizer that makes deleting a Topic with `deletionPolicy: Delete` delete its
/// Kafka topic first.
pub const FINALIZER: &str = "licenseware.io/topic";

/// Reconciles in flight at once. A no-op resync of many Topics costs about one admin
/// batch per this many Topics, so it matches the batch size.
const CONCURRENCY: u16 = 200;
/// A loser of a name conflict looks again this often, so it takes over soon after the
/// owner goes.
const CONFLICT_RECHECK: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Why a reconcile failed. The reason is stable: it names the metric label and the
/// condition reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Kafka(#[from] crate::kafka::AdminError),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSpec(_) => licenseware_crds::reason::INVALID_SPEC,
            Self::Kafka(_) => licenseware_crds::reason::KAFKA_ERROR,
            Self::Kube(_) => licenseware_crds::reason::KUBERNETES_ERROR,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub admin: KafkaAdmin,
    pub topic_prefix: String,
    pub resync: Duration,
    /// The caches of every watched namespace, for the ownership rule.
    stores: Vec<Store<Topic>>,
    backoff: Backoff,
    recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("topic_prefix", &self.topic_prefix)
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

/// Runs the Topic controller, one watcher per namespace (or one for all), until
/// `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    admin: KafkaAdmin,
    namespaces: Vec<String>,
    topic_prefix: String,
    resync: Duration,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let apis: Vec<Api<Topic>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces.iter().map(|ns| Api::namespaced(client.clone(), ns)).collect()
    };
    let controllers: Vec<Controller<Topic>> = apis
        .into_iter()
        .map(|api| {
            Controller::new(api, watcher::Config::default())
                .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
                .graceful_shutdown_on(shutdown.clone())
        })
        .collect();
    let reporter = Reporter { controller: FIELD_MANAGER.to_owned(), instance: None };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        admin,
        topic_prefix,
        resync: resync.max(Duration::from_secs(1)),
        stores: controllers.iter().map(Controller::store).collect(),
        backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
    });
    tracing::info!(
        namespaces = ?namespaces,
        prefix = %context.topic_prefix,
        resync_secs = context.resync.as_secs(),
        "topic controller started"
    );
    let runs = controllers.into_iter().map(|controller| {
        controller.run(reconcile, error_policy, Arc::clone(&context)).for_each(
            |result| async move {
                match result {
                    Ok((object, _)) => tracing::trace!(topic = %object, "reconciled"),
                    // Already logged by error_policy.
                    Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                    // Watch errors are retried with backoff by the controller: log, go on.
                    Err(error) => tracing::warn!(%error, "topic controller"),
                }
            },
        )
    });
    futures::future::join_all(runs).await;
    tracing::info!("topic controller stopped");
}

fn key(topic: &Topic) -> String {
    ObjectRef::from_obj(topic).to_string()
}

// The root span of a reconcile, in every log line under it. `resource_name`, not `name`:
// JSON log lines already carry the span's own name under `name`.
#[tracing::instrument(skip_all, fields(
    kind = "Topic",
    namespace = %topic.namespace().unwrap_or_default(),
    resource_name = %topic.name_any(),
))]
async fn reconcile(topic: Arc<Topic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = crate::metrics::reconciles().start("Topic");
    for store in &ctx.stores {
        // Ownership looks at every namespace's cache: wait until all are filled.
        let _ = store.wait_until_ready().await;
    }
    let result = if topic.metadata.deletion_timestamp.is_some() {
        cleanup(&topic, &ctx).await
    } else {
        apply(&topic, &ctx).await
    };
    if result.is_ok() {
        ctx.backoff.reset(&key(&topic));
    }
    result
}

fn error_policy(topic: Arc<Topic>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::reconciles().failed("Topic", error.reason());
    match error {
        Error::InvalidSpec(_) => {
            tracing::info!(topic = %desired::reference(&topic), %error, "waiting for a spec change");
            Action::await_change()
        }
        _ => {
            let wait = ctx.backoff.next(&key(&topic));
            tracing::warn!(
                topic = %desired::reference(&topic),
                reason = error.reason(),
                %error,
                retry_in_ms = wait.as_millis() as u64,
                "reconcile failed"
            );
            Action::requeue(wait)
        }
    }
}

async fn apply(topic: &Topic, ctx: &Context) -> Result<Action, Error> {
    let management = management(topic);
    let has_finalizer = topic.finalizers().iter().any(|f| f == FINALIZER);
    if desired::needs_finalizer(topic) != has_finalizer {
        set_finalizer(topic, ctx, !has_finalizer).await?;
    }
    match management {
        Management::Unmanaged => {
            write_status(topic, ctx, &Outcome::Unmanaged).await?;
            return Ok(Action::await_change());
        }
        Management::Paused => {
            write_status(topic, ctx, &Outcome::Paused).await?;
            return Ok(Action::await_change());
        }
        Management::Managed => {}
    }
    let desired = match desired::desired_topic(topic, &ctx.topic_prefix) {
        Ok(desired) => desired,
        Err(message) => {
            write_status(topic, ctx, &Outcome::InvalidSpec(message.clone())).await?;
            return Err(Error::InvalidSpec(message));
        }
    };
    if let Some(current) = topic.status.as_ref().and_then(|s| s.topic_name.as_ref())
        && *current != desired.name
    {
        let outcome = Outcome::Renamed { current: current.clone(), desired: desired.name };
        write_status(topic, ctx, &outcome).await?;
        return Ok(Action::requeue(ctx.resync));
    }
    let owner = owner(ctx, &desired.name);
    if let Some(owner) = owner
        && owner != desired::reference(topic)
    {
        write_status(topic, ctx, &Outcome::Conflict { owner }).await?;
        return Ok(Action::requeue(CONFLICT_RECHECK.min(ctx.resync)));
    }
    let name = desired.name.clone();
    match ctx.admin.apply(desired).await {
        Ok(applied) => {
            if applied.created {
                tracing::info!(kafka_topic = %name, "created Kafka topic");
            }
            write_status(topic, ctx, &Outcome::Applied { name, applied }).await?;
            Ok(Action::requeue(ctx.resync))
        }
        Err(error) => {
            write_status(topic, ctx, &Outcome::KafkaError(error.to_string())).await?;
            Err(error.into())
        }
    }
}

/// The resource that owns a Kafka name among every watched namespace.
fn owner(ctx: &Context, kafka_name: &str) -> Option<String> {
    let topics: Vec<Arc<Topic>> = ctx.stores.iter().flat_map(Store::state).collect();
    desired::owner(topics.iter().map(AsRef::as_ref), &ctx.topic_prefix, kafka_name)
}

/// Deletion: with `deletionPolicy: Delete`, the owner deletes its Kafka topic before the
/// finalizer goes. Unmanaged resources and conflict losers never delete anything.
async fn cleanup(topic: &Topic, ctx: &Context) -> Result<Action, Error> {
    if !topic.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = topic
        .status
        .as_ref()
        .and_then(|s| s.topic_name.clone())
        .unwrap_or_else(|| desired::kafka_name(topic, &ctx.topic_prefix));
    let is_owner = owner(ctx, &name).is_none_or(|owner| owner == desired::reference(topic));
    if management(topic) != Management::Unmanaged
        && topic.spec.deletion_policy == DeletionPolicy::Delete
        && is_owner
    {
        if let Err(error) = ctx.admin.delete(name.clone()).await {
            write_status(topic, ctx, &Outcome::KafkaError(error.to_string())).await?;
            return Err(error.into());
        }
        tracing::info!(kafka_topic = %name, "deleted Kafka topic");
    }
    set_finalizer(topic, ctx, false).await?;
    Ok(Action::await_change())
}

/// Adds or removes the finalizer. The patch carries the resourceVersion, so it fails
/// instead of overwriting a list another controller changed in between.
async fn set_finalizer(topic: &Topic, ctx: &Context, present: bool) -> Result<(), Error> {
    let mut finalizers: Vec<String> =
        topic.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": topic.resource_version(),
        }
    });
    match api.patch(&topic.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        // Gone already: nothing left to finalize.
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Writes the status that `outcome` leads to, when it differs from the current one,
/// and publishes an Event when Ready turns to a new failure reason.
async fn write_status(topic: &Topic, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let old = topic.status.as_ref();
    let next = next_status(old, topic.metadata.generation, outcome, now);
    if old == Some(&next) || (old.is_none() && next == TopicStatus::default()) {
        return Ok(());
    }
    let api: Api<Topic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": Topic::api_version(&()),
        "kind": Topic::kind(&()),
        "status": next,
    });
    api.patch_status(
        &topic.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    let ready_reason = |status: Option<&TopicStatus>| {
        status
            .and_then(|s| {
                licenseware_crds::conditions::find_condition(&s.conditions, condition_type::READY)
            })
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let after = ready_reason(Some(&next));
    if after != ready_reason(old)
        && let Some((ready, reason)) = after
        && ready == licenseware_crds::conditions::status::FALSE
    {
        let note =
            licenseware_crds::conditions::find_condition(&next.conditions, condition_type::READY)
                .map(|c| c.message.clone());
        let event = Event {
            type_: EventType::Warning,
            reason,
            note,
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &topic.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish Event");
        }
    }
    Ok(())
}
