//! Where a controller watches: one [`Controller`] per watched namespace, or one for
//! all, each built the same way and run with the same reconciler and context.

use std::{fmt::Debug, future::Future, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt, TryFuture, future};
use k8s_openapi::{NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action, Config as ControllerConfig},
        reflector::{self, ObjectRef},
        utils::PredicateConfig,
        watcher,
    },
};
use serde::de::DeserializeOwned;

/// A namespaced kind that the controllers watch, patch and apply.
pub trait Namespaced:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Namespaced for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// One namespace, or all.
#[derive(Clone)]
pub struct Scope {
    client: Client,
    namespace: Option<String>,
}

impl Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl Scope {
    /// A scope per namespace of `namespaces`, or one for all when it is empty.
    pub fn all(client: &Client, namespaces: &[String]) -> Vec<Self> {
        if namespaces.is_empty() {
            vec![Self { client: client.clone(), namespace: None }]
        } else {
            namespaces
                .iter()
                .map(|ns| Self { client: client.clone(), namespace: Some(ns.clone()) })
                .collect()
        }
    }

    /// An Api of `K` in this scope.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        }
    }

    /// A controller of `K` in this scope that runs `concurrency` reconciles at once and
    /// lets those in flight finish once `shutdown` completes.
    pub fn controller<K>(
        &self,
        concurrency: u16,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> Controller<K>
    where
        K: Namespaced,
    {
        self.debounced_controller(concurrency, Duration::ZERO, shutdown)
    }

    /// [`Scope::controller`], with the requests for one object that come within
    /// `debounce` of each other run as one reconcile, after the last of them.
    pub fn debounced_controller<K>(
        &self,
        concurrency: u16,
        debounce: Duration,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> Controller<K>
    where
        K: Namespaced,
    {
        let (reader, writer) = reflector::store();
        let changes = watcher(self.api::<K>(), watcher::Config::default())
            .default_backoff()
            .modify(|object: &mut K| prune_for_cache(object.meta_mut()))
            .reflect(writer)
            .applied_objects()
            .predicate_filter(wanted_change::<K>, PredicateConfig::default());
        Controller::for_stream(changes, reader)
            .with_config(ControllerConfig::default().concurrency(concurrency).debounce(debounce))
            .graceful_shutdown_on(shutdown)
    }
}

/// What of a resource, when it changes, calls for a reconcile: the spec (generation),
/// the annotations (managed, paused), the finalizers and the start of its deletion.
/// A change of status alone, most often the operator's own write, does not: without
/// this filter every status write came back as one more reconcile of the object.
/// Owned objects and the requeue timer still trigger reconciles as before.
fn wanted_change<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    object.meta().generation.hash(&mut hasher);
    object.annotations().hash(&mut hasher);
    object.finalizers().hash(&mut hasher);
    object.meta().deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// `kubectl apply` (client-side, as Argo CD does by default) keeps a whole copy of
/// the object in this annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from a watched object what no reconcile reads and what can be most of its
/// size: who manages which field (the operator applies, forcing), and the copy of the
/// object that a client-side `kubectl apply` keeps in an annotation. Thousands of
/// objects stay in the caches.
pub fn prune_for_cache(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// What a controller's output stream reports.
pub type RunError<E> = controller::Error<E, watcher::Error>;

/// What one item of a controller's output stream is.
#[derive(Debug, PartialEq, Eq)]
pub enum Reported {
    /// A reconcile succeeded.
    Reconciled,
    /// A reconcile failed: the error policy has logged it already.
    ReconcileFailed,
    /// The object was deleted before its queued reconcile ran (its key as
    /// [`ObjectRef`]'s display): normal when many objects go at once, not a warning.
    Gone(String),
    /// A watch error, which the controller retries with backoff.
    WatchFailed,
}

/// Sorts one item of a controller's output stream.
pub fn report<K: Resource, E>(result: &Result<(ObjectRef<K>, Action), RunError<E>>) -> Reported
where
    E: std::error::Error,
{
    match result {
        Ok(_) => Reported::Reconciled,
        Err(controller::Error::ReconcilerFailed(..)) => Reported::ReconcileFailed,
        Err(controller::Error::ObjectNotFound(object)) => Reported::Gone(object.to_string()),
        Err(_) => Reported::WatchFailed,
    }
}

/// Runs `controllers` with the same reconciler, error policy and context until all of
/// them stop. `reconciled` logs a success; a failed reconcile is left to the error
/// policy, which logs it; an object deleted before its reconcile ran is logged at debug
/// and given to `gone` (its key: the controller forgets its backoff); any other error
/// (a watch error, which the controller retries with backoff) goes to `failed`, and the
/// controller goes on.
///
/// `shutdown` must be the future the controllers were built with. A controller holds
/// its reconciles until its cache is filled, and that hold does not end when shutdown
/// stops the watch, so a shutdown before the caches are filled would wait forever for
/// a runner that never started. Nothing is in flight then, so the controllers are
/// simply dropped.
#[allow(clippy::too_many_arguments)] // one callback per kind of stream item
pub async fn run_all<K, Ctx, Fut>(
    controllers: Vec<Controller<K>>,
    shutdown: impl Future<Output = ()>,
    reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut + Clone,
    error_policy: impl Fn(Arc<K>, &Fut::Error, Arc<Ctx>) -> Action + Clone,
    context: &Arc<Ctx>,
    reconciled: impl Fn(&ObjectRef<K>) + Clone,
    gone: impl Fn(&str) + Clone,
    failed: impl Fn(&RunError<Fut::Error>) + Clone,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Fut: TryFuture<Ok = Action> + Send + 'static,
    Fut::Error: std::error::Error + Send + 'static,
{
    let stores: Vec<_> = controllers.iter().map(Controller::store).collect();
    let runs = controllers.into_iter().map(|controller| {
        let (reconciled, gone, failed) = (reconciled.clone(), gone.clone(), failed.clone());
        controller.run(reconcile.clone(), error_policy.clone(), Arc::clone(context)).for_each(
            move |result| {
                match (report(&result), result) {
                    (_, Ok((object, _))) => reconciled(&object),
                    // Already logged by error_policy.
                    (Reported::ReconcileFailed, _) => {}
                    (Reported::Gone(key), _) => {
                        tracing::debug!(object = %key, "deleted before its reconcile ran");
                        gone(&key);
                    }
                    // Watch errors are retried with backoff by the controller: log, go on.
                    (_, Err(error)) => failed(&error),
                }
                future::ready(())
            },
        )
    });
    let mut runs = std::pin::pin!(future::join_all(runs));
    let caches_filled = future::join_all(stores.iter().map(|store| store.wait_until_ready()));
    tokio::select! {
        _ = &mut runs => return,
        _ = caches_filled => {}
        () = shutdown => {
            let filled = stores.iter().all(|store| store.wait_until_ready().now_or_never().is_some());
            if !filled {
                return;
            }
        }
    }
    runs.await;
}

#[cfg(test)]
mod tests {
    use licenseware_crds::Topic;
    use serde_json::json;

    use super::{LAST_APPLIED, ObjectMeta, prune_for_cache, wanted_change};

    #[test]
    fn a_cached_object_keeps_its_annotations_but_not_the_last_applied_copy() {
        let mut meta = ObjectMeta {
            annotations: Some(
                [
                    (LAST_APPLIED.to_owned(), r#"{"apiVersion":"..."}"#.to_owned()),
                    ("licenseware.io/paused".to_owned(), "true".to_owned()),
                ]
                .into(),
            ),
            managed_fields: Some(vec![Default::default()]),
            ..ObjectMeta::default()
        };
        prune_for_cache(&mut meta);
        assert_eq!(meta.managed_fields, None);
        assert_eq!(
            meta.annotations,
            Some([("licenseware.io/paused".to_owned(), "true".to_owned())].into())
        );
    }

    fn topic(patch: serde_json::Value) -> Topic {
        let mut value = json!({
            "apiVersion": "licenseware.io/v1alpha1", "kind": "Topic",
            "metadata": {"name": "t", "namespace": "n", "generation": 1},
            "spec": {}
        });
        json_patch_merge(&mut value, patch);
        serde_json::from_value(value).unwrap()
    }

    fn json_patch_merge(target: &mut serde_json::Value, patch: serde_json::Value) {
        match (target, patch) {
            (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
                for (key, value) in patch {
                    json_patch_merge(target.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
            (target, patch) => *target = patch,
        }
    }

    #[test]
    fn an_object_deleted_before_its_reconcile_is_gone_not_a_failure() {
        use kube::runtime::{controller::Action, reflector::ObjectRef};

        use super::{Reported, RunError, report};
        use crate::controllers::backoff::key;

        let object = topic(json!({}));
        let gone: Result<(ObjectRef<Topic>, Action), RunError<std::io::Error>> =
            Err(kube::runtime::controller::Error::ObjectNotFound(Box::new(
                ObjectRef::from_obj(&object).erase(),
            )));
        // The key is the one the controllers' backoff uses, so it can be forgotten.
        assert_eq!(report(&gone), Reported::Gone(key(&object)));
        let ok: Result<(ObjectRef<Topic>, Action), RunError<std::io::Error>> =
            Ok((ObjectRef::from_obj(&object), Action::await_change()));
        assert_eq!(report(&ok), Reported::Reconciled);
    }

    #[test]
    fn status_alone_does_not_trigger_but_spec_annotations_and_deletion_do() {
        let base = wanted_change(&topic(json!({})));
        assert_eq!(wanted_change(&topic(json!({"status": {"partitions": 3}}))), base);
        assert_eq!(
            wanted_change(&topic(json!({"metadata": {"resourceVersion": "9"}}))),
            base,
            "a new resourceVersion from a status write"
        );
        for changed in [
            json!({"metadata": {"generation": 2}}),
            json!({"metadata": {"annotations": {"licenseware.io/paused": "true"}}}),
            json!({"metadata": {"finalizers": ["licenseware.io/topic"]}}),
            json!({"metadata": {"deletionTimestamp": "2026-11-22T00:00:00Z"}}),
        ] {
            assert_ne!(wanted_change(&topic(changed.clone())), base, "{changed}");
        }
    }
}
