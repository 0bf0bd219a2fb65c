//! Topic controller: a Topic resource becomes a Kafka topic.
//!
//! Each reconcile: validate the spec and build the desired topic (pure,
//! [`desired`]), decide ownership, apply it to Kafka through the batching
//! [`KafkaAdmin`], then write the status (pure, [`status`]) with server-side apply,
//! only when it changed.

pub mod desired;
pub mod status;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    runtime::{Controller, controller::Action, events::Recorder, reflector::Store},
};
use licenseware_crds::{DeletionPolicy, Topic};

use self::{
    desired::{Management, TopicPolicy, management},
    status::{Outcome, next_status},
};
use crate::{
    controllers::{
        backoff::{Backoff, key},
        events, finalizer,
        policy::retry_action,
        scope::{self, Scope},
        status as status_writer,
    },
    kafka::{Applied, KafkaAdmin},
};

/// The finalizer that makes deleting a Topic with `deletionPolicy: Delete` delete its
/// Kafka topic first.
pub const FINALIZER: &str = "licenseware.io/topic";

/// Reconciles in flight at once: twice the admin batch size, so that while one batch is
/// in flight the next one fills up, and a no-op resync of N Topics costs N / 200
/// batches of two calls (Metadata, DescribeConfigs), not a batch per handful of
/// reconciles that happened to finish together.
const CONCURRENCY: u16 = 2 * crate::kafka::DEFAULT_MAX_BATCH as u16;
/// A loser of a name conflict looks again this often, so it takes over soon after the
/// owner goes.
const CONFLICT_RECHECK: Duration = Duration::from_secs(10);

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
    pub policy: TopicPolicy,
    pub resync: Duration,
    /// The caches of every watched namespace, for the ownership rule.
    stores: Vec<Store<Topic>>,
    backoff: Backoff,
    recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("policy", &self.policy)
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
    policy: TopicPolicy,
    resync: Duration,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let controllers: Vec<Controller<Topic>> = Scope::all(&client, &namespaces)
        .iter()
        .map(|scope| scope.controller(CONCURRENCY, shutdown.clone()))
        .collect();
    let context = Arc::new(Context {
        recorder: events::recorder(client.clone()),
        client,
        admin,
        policy,
        resync: resync.max(Duration::from_secs(1)),
        stores: controllers.iter().map(Controller::store).collect(),
        backoff: Backoff::reconciles(),
    });
    tracing::info!(
        namespaces = ?namespaces,
        prefix = %context.policy.prefix,
        reserved = ?context.policy.reserved,
        namespace_prefix = context.policy.namespace_prefix,
        resync_secs = context.resync.as_secs(),
        "topic controller started"
    );
    scope::run_all(
        controllers,
        shutdown.clone(),
        reconcile,
        error_policy,
        &context,
        |object| tracing::trace!(topic = %object, "reconciled"),
        |gone| context.backoff.reset(gone),
        |error| tracing::warn!(%error, "topic controller"),
    )
    .await;
    tracing::info!("topic controller stopped");
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
        apply(&topic, &ctx, Read::Cached).await
    };
    if result.is_ok() {
        ctx.backoff.reset(&key(&*topic));
    }
    result
}

fn error_policy(topic: Arc<Topic>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::reconciles().failed("Topic", error.reason());
    retry_action!(
        topic = desired::reference(&topic),
        error: error,
        invalid_spec: matches!(error, Error::InvalidSpec(_)),
        backoff: ctx.backoff,
        key: key(&*topic),
    )
}

/// Where the reconciled object came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The watch cache: it may not show the status the previous reconcile wrote yet.
    Cached,
    /// A read from the apiserver just now.
    Fresh,
}

async fn apply(topic: &Topic, ctx: &Context, read: Read) -> Result<Action, Error> {
    let management = management(topic);
    let has_finalizer = finalizer::has(topic, FINALIZER);
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
    let desired = match desired::desired_topic(topic, &ctx.policy.prefix) {
        Ok(desired) => desired,
        Err(message) => {
            write_status(topic, ctx, &Outcome::InvalidSpec(message.clone())).await?;
            return Err(Error::InvalidSpec(message));
        }
    };
    if let Some(message) = ctx.policy.refusal(topic) {
        write_status(topic, ctx, &Outcome::Refused(message)).await?;
        return Ok(Action::requeue(ctx.resync));
    }
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
        Ok(Applied::Topic(applied)) => {
            if applied.created {
                tracing::info!(kafka_topic = %name, "created Kafka topic");
            }
            write_status(topic, ctx, &Outcome::Applied { name, applied }).await?;
            Ok(Action::requeue(next_resync(ctx.resync, SystemTime::now())))
        }
        // A reconcile right after the one that created the topic may get the object
        // from before that status write (the watch lags behind under load), without
        // the id: if the claim store could not vouch for it, the topic it created
        // would read as someone else's, for good. Refusing is decided on the object as
        // it is now.
        Ok(Applied::NotOwned { .. }) if read == Read::Cached => {
            let api: Api<Topic> =
                Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
            match api.get_opt(&topic.name_any()).await? {
                Some(fresh) if fresh.metadata.deletion_timestamp.is_none() => {
                    Box::pin(apply(&fresh, ctx, Read::Fresh)).await
                }
                // Gone or going: its deletion is reconciled next.
                _ => Ok(Action::await_change()),
            }
        }
        Ok(Applied::NotOwned { topic_id }) => {
            tracing::warn!(kafka_topic = %name, ?topic_id, "existing Kafka topic not adopted");
            write_status(topic, ctx, &Outcome::NotOwned { name, topic_id }).await?;
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
    desired::owner(topics.iter().map(AsRef::as_ref), &ctx.policy.prefix, kafka_name)
}

/// Deletion: with `deletionPolicy: Delete`, the owner deletes the Kafka topic it
/// created or adopted (by the id it recorded) before the finalizer goes. Unmanaged
/// resources, conflict losers, resources that never got a topic of their own and
/// reserved names never delete anything.
async fn cleanup(topic: &Topic, ctx: &Context) -> Result<Action, Error> {
    if !finalizer::has(topic, FINALIZER) {
        return Ok(Action::await_change());
    }
    let deletable = desired::deletable(topic);
    if management(topic) != Management::Unmanaged
        && topic.spec.deletion_policy == DeletionPolicy::Delete
    {
        match deletable {
            Some((name, id))
                if ctx.policy.refusal(topic).is_none()
                    && owner(ctx, &name).is_none_or(|owner| owner == desired::reference(topic)) =>
            {
                if let Err(error) = ctx.admin.delete(name.clone(), Some(id)).await {
                    write_status(topic, ctx, &Outcome::KafkaError(error.to_string())).await?;
                    return Err(error.into());
                }
                tracing::info!(kafka_topic = %name, "deleted Kafka topic");
            }
            _ => tracing::info!(
                "deletionPolicy Delete, but this resource created or adopted no Kafka topic: \
                 nothing deleted"
            ),
        }
    }
    set_finalizer(topic, ctx, false).await?;
    Ok(Action::await_change())
}

/// Adds or removes the finalizer.
async fn set_finalizer(topic: &Topic, ctx: &Context, present: bool) -> Result<(), Error> {
    finalizer::set(&ctx.client, topic, FINALIZER, present).await?;
    Ok(())
}

/// Writes the status that `outcome` leads to, when it differs from the current one,
/// and publishes an Event when Ready turns to a new failure reason.
async fn write_status(topic: &Topic, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let old = topic.status.as_ref();
    let next = next_status(old, topic.metadata.generation, outcome, now);
    status_writer::write(&ctx.client, &ctx.recorder, topic, old, &next, "Reconcile").await?;
    Ok(())
}

/// The wait until the next resync: the next multiple of `interval` on the wall clock, so
/// that every Topic resyncs at the same moment and the admin batcher turns a resync of
/// thousands of topics into a few batched calls (a delay counted from each topic's own
/// last reconcile spread them over the interval, a handful of topics per call).
pub fn next_resync(interval: Duration, now: SystemTime) -> Duration {
    let interval_ms = interval.as_millis().max(1000);
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let wait_ms = interval_ms - since_epoch % interval_ms;
    Duration::from_millis(u64::try_from(wait_ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_resyncs_at_the_same_tick() {
        let interval = Duration::from_secs(120);
        let at = |secs| UNIX_EPOCH + Duration::from_millis(secs);
        // Two topics reconciled 50 s apart wait for the same instant.
        let first = next_resync(interval, at(1_000_000_010_000));
        let second = next_resync(interval, at(1_000_000_060_000));
        assert_eq!(at(1_000_000_010_000) + first, at(1_000_000_060_000) + second);
        assert!(first <= interval && second <= interval);
        // On a tick: a whole interval, never zero (no busy loop).
        assert_eq!(next_resync(interval, at(1_000_000_080_000)), interval);
    }
}
