//! Where a controller watches: one [`Controller`] per watched namespace, or one for
//! all, each built the same way and run with the same reconciler and context.

use std::{fmt::Debug, future::Future, sync::Arc};

use futures::{FutureExt, StreamExt, TryFuture, future};
use k8s_openapi::NamespaceResourceScope;
use kube::{
    Api, Client, Resource,
    runtime::{
        Controller,
        controller::{self, Action, Config as ControllerConfig},
        reflector::ObjectRef,
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
        Controller::new(self.api::<K>(), watcher::Config::default())
            .with_config(ControllerConfig::default().concurrency(concurrency))
            .graceful_shutdown_on(shutdown)
    }
}

/// What a controller's output stream reports.
pub type RunError<E> = controller::Error<E, watcher::Error>;

/// Runs `controllers` with the same reconciler, error policy and context until all of
/// them stop. `reconciled` logs a success; a failed reconcile is left to the error
/// policy, which logs it; any other error (a watch error, which the controller retries
/// with backoff) goes to `failed`, and the controller goes on.
///
/// `shutdown` must be the future the controllers were built with. A controller holds
/// its reconciles until its cache is filled, and that hold does not end when shutdown
/// stops the watch, so a shutdown before the caches are filled would wait forever for
/// a runner that never started. Nothing is in flight then, so the controllers are
/// simply dropped.
pub async fn run_all<K, Ctx, Fut>(
    controllers: Vec<Controller<K>>,
    shutdown: impl Future<Output = ()>,
    reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut + Clone,
    error_policy: impl Fn(Arc<K>, &Fut::Error, Arc<Ctx>) -> Action + Clone,
    context: &Arc<Ctx>,
    reconciled: impl Fn(&ObjectRef<K>) + Clone,
    failed: impl Fn(&RunError<Fut::Error>) + Clone,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Fut: TryFuture<Ok = Action> + Send + 'static,
    Fut::Error: std::error::Error + Send + 'static,
{
    let stores: Vec<_> = controllers.iter().map(Controller::store).collect();
    let runs = controllers.into_iter().map(|controller| {
        let (reconciled, failed) = (reconciled.clone(), failed.clone());
        controller.run(reconcile.clone(), error_policy.clone(), Arc::clone(context)).for_each(
            move |result| {
                match result {
                    Ok((object, _)) => reconciled(&object),
                    // Already logged by error_policy.
                    Err(controller::Error::ReconcilerFailed(..)) => {}
                    // Watch errors are retried with backoff by the controller: log, go on.
                    Err(error) => failed(&error),
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
