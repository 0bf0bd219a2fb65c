//! App controller: an App only describes an app; the Uploaders and Reports of its
//! namespace and appId carry its metadata in their registry entries (`parrent_app`,
//! `apps`), and the app's entry takes it from them (see
//! [`crate::registry::Registry::upsert`]). Here: the App's status, Ready unless an
//! older App of the namespace already describes the same appId (`ResourceConflict`).
//! A change to an App reconciles the other Apps of its appId, so that the next one
//! becomes Ready when the describing one goes.

pub mod plan;

use std::{fmt::Debug, future::Future, sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::Recorder,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use licenseware_crds::App;

use crate::controllers::{
    backoff::{Backoff, key},
    events,
    policy::retry_action,
    registry_kinds::plan::next_status,
    scope::{self, Scope},
    status as status_writer,
};

const CONCURRENCY: u16 = 10;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube(_) => licenseware_crds::reason::KUBERNETES_ERROR,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    resync: Duration,
    backoff: Backoff,
    recorder: Recorder,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("resync", &self.resync).finish_non_exhaustive()
    }
}

/// The Apps of `namespace` (the deleting ones are skipped by [`plan::describing`]).
#[tracing::instrument(name = "apps_of", level = "debug", skip_all)]
pub async fn apps_of(client: &Client, namespace: &str) -> Result<Vec<App>, kube::Error> {
    let api: Api<App> = Api::namespaced(client.clone(), namespace);
    Ok(api.list(&ListParams::default()).await?.items)
}

/// A cache of the Apps of `scope`, and its changes (deletions too) for
/// `Controller::watches_stream`: the cache is filled before a change is passed on, so
/// a reconcile it starts reads the new App.
pub fn watch(
    scope: &Scope,
) -> (Store<App>, impl futures::Stream<Item = Result<App, watcher::Error>> + Send + 'static) {
    let (reader, writer) = reflector::store();
    let changes = watcher(scope.api::<App>(), watcher::Config::default())
        .default_backoff()
        .modify(|app: &mut App| crate::controllers::scope::prune_for_cache(&mut app.metadata))
        .reflect(writer)
        .touched_objects();
    (reader, changes)
}

/// The Apps of `namespace` in `caches`, once they are filled: what [`apps_of`] lists,
/// without a request per reconcile.
pub async fn cached_apps_of(caches: &[Store<App>], namespace: &str) -> Vec<App> {
    for cache in caches {
        // Only fails when the cache's writer is gone, at shutdown: nothing to wait for.
        let _ = cache.wait_until_ready().await;
    }
    caches
        .iter()
        .flat_map(Store::state)
        .filter(|app| app.namespace().as_deref() == Some(namespace))
        .map(|app| (*app).clone())
        .collect()
}

/// Runs the App controller until `shutdown` completes.
pub async fn run(
    client: Client,
    namespaces: Vec<String>,
    resync: Duration,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let context = Arc::new(Context {
        recorder: events::recorder(client.clone()),
        client: client.clone(),
        resync: resync.max(Duration::from_secs(1)),
        backoff: Backoff::reconciles(),
    });
    let controllers: Vec<Controller<App>> = Scope::all(&client, &namespaces)
        .iter()
        .map(|scope| {
            let controller = scope.controller::<App>(CONCURRENCY, shutdown.clone());
            let store = controller.store();
            controller.watches(scope.api::<App>(), watcher::Config::default(), move |changed| {
                let namespace = changed.namespace();
                store
                    .state()
                    .into_iter()
                    .filter(|o| {
                        o.namespace() == namespace
                            && o.spec.app_id == changed.spec.app_id
                            && o.name_any() != changed.name_any()
                    })
                    .map(|o| ObjectRef::from_obj(&*o))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    tracing::info!(namespaces = ?namespaces, "app controller started");
    scope::run_all(
        controllers,
        shutdown,
        reconcile,
        error_policy,
        &context,
        |object| tracing::trace!(app = %object, "reconciled"),
        |gone| context.backoff.reset(gone),
        |error| tracing::warn!(%error, "app controller"),
    )
    .await;
    tracing::info!("app controller stopped");
}

#[tracing::instrument(skip_all, fields(
    namespace = %app.namespace().unwrap_or_default(),
    resource_name = %app.name_any(),
))]
async fn reconcile(app: Arc<App>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = crate::metrics::reconciles().start("App");
    if app.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let apps = apps_of(&ctx.client, &app.namespace().unwrap_or_default()).await?;
    let outcome = plan::outcome(&app, &apps);
    let old = app.status.as_ref();
    let next = next_status(old, app.metadata.generation, &outcome, Time(Timestamp::now()));
    status_writer::write(&ctx.client, &ctx.recorder, &*app, old, &next, "Describe").await?;
    ctx.backoff.reset(&key(&*app));
    Ok(Action::requeue(crate::controllers::backoff::spread_resync(ctx.resync)))
}

fn error_policy(app: Arc<App>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::reconciles().failed("App", error.reason());
    retry_action!(
        app = key(&*app),
        error: error,
        invalid_spec: false,
        backoff: ctx.backoff,
        key: key(&*app),
    )
}
