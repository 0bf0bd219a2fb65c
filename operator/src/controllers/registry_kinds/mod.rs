//! Report, ReportComponent and DataTable controllers: each resource becomes a registry
//! entry.
//!
//! Each reconcile: validate and build the entry (pure, [`plan`]), upsert it in the
//! [`Registry`] (or remove it when the resource is invalid or `registrable: false`),
//! then write the status with server-side apply, only when it changed. The finalizer
//! `licenseware.io/registry` removes the entry (tombstone included) before the
//! resource goes. A Report is reconciled again when a ReportComponent of its namespace
//! and app changes; a DataTable when another table of its app comes or goes (its
//! `order` is its position among them).

pub mod plan;

use std::{fmt::Debug, future::Future, sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{Controller, controller::Action, events::Recorder, reflector::ObjectRef, watcher},
};
use licenseware_crds::{
    App, DataTable, RegistrationStatus, ReportComponent, Uploader, report::Report,
};
use serde::Serialize;

use self::plan::{Desired, Outcome, next_status};
use crate::{
    controllers::{
        backoff::{Backoff, key},
        events, finalizer,
        policy::retry_action,
        scope::{self, Namespaced, Scope},
        status as status_writer,
    },
    registry::{EntryKind, Registry, RegistryError},
};

/// The finalizer that removes a resource's registry entry before the resource goes.
pub const FINALIZER: &str = "licenseware.io/registry";

const CONCURRENCY: u16 = 50;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Registry(error) => error.reason(),
            Self::Kube(_) => licenseware_crds::reason::KUBERNETES_ERROR,
        }
    }
}

/// A kind whose resources become registry entries.
pub trait RegisteredKind: Namespaced + Serialize {
    const ENTRY_KIND: EntryKind;

    /// `spec.registrable`: only a registrable resource has an entry to clean up.
    fn registrable(&self) -> bool;

    fn registration_status(&self) -> Option<&RegistrationStatus>;

    /// Validates the resource and builds its entry; may read other resources.
    fn desired(&self, client: &Client)
    -> impl Future<Output = Result<Desired, kube::Error>> + Send;

    /// Other watches that should reconcile resources of this kind.
    fn extra_watches(controller: Controller<Self>, _scope: &Scope) -> Controller<Self> {
        controller
    }
}

/// The resources of `K` in `namespace` that are not being deleted.
async fn siblings<K: Namespaced>(client: &Client, namespace: &str) -> Result<Vec<K>, kube::Error> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.into_iter().filter(|o| o.meta().deletion_timestamp.is_none()).collect())
}

impl RegisteredKind for ReportComponent {
    const ENTRY_KIND: EntryKind = EntryKind::Component;

    fn registrable(&self) -> bool {
        self.spec.registrable
    }

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, client: &Client) -> Result<Desired, kube::Error> {
        // The Uploaders declare the app's collections, which data.collection must be;
        // the Reports that attach the component give it its order.
        let namespace = self.namespace().unwrap_or_default();
        let uploaders: Vec<Uploader> = siblings(client, &namespace).await?;
        if !self.spec.registrable {
            return Ok(plan::desired_component(self, &uploaders, &[], &[]));
        }
        let reports: Vec<Report> = siblings(client, &namespace).await?;
        let components: Vec<ReportComponent> = siblings(client, &namespace).await?;
        Ok(plan::desired_component(self, &uploaders, &reports, &components))
    }

    /// An Uploader that comes, goes or changes its collections re-checks the
    /// components of its app (and through them, their Reports); a Report of the app
    /// may attach the component (its order) or stop doing so.
    fn extra_watches(controller: Controller<Self>, scope: &Scope) -> Controller<Self> {
        let controller = watch_related(controller, scope, |c: &Self, u: &Uploader| {
            c.spec.app_id == u.spec.app_id
        });
        let controller =
            watch_related(controller, scope, |c: &Self, r: &Report| c.spec.app_id == r.spec.app_id);
        // A report without a components list attaches every component of its app, and
        // their positions move when one comes or goes.
        watch_related(controller, scope, |c: &Self, other: &Self| {
            c.spec.app_id == other.spec.app_id && c.name_any() != other.name_any()
        })
    }
}

impl RegisteredKind for Report {
    const ENTRY_KIND: EntryKind = EntryKind::Report;

    fn registrable(&self) -> bool {
        self.spec.registrable
    }

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, client: &Client) -> Result<Desired, kube::Error> {
        if !self.spec.registrable {
            return Ok(Desired::NotRegistrable);
        }
        let namespace = self.namespace().unwrap_or_default();
        let components: Vec<ReportComponent> = siblings(client, &namespace).await?;
        let uploaders: Vec<Uploader> = siblings(client, &namespace).await?;
        let apps = crate::controllers::app::apps_of(client, &namespace).await?;
        let app = crate::controllers::app::plan::app_metadata(&self.spec.app_id, &apps);
        Ok(plan::desired_report(self, &components, &uploaders, &app))
    }

    /// A change to a ReportComponent re-checks the Reports of its namespace and app; an
    /// App of the namespace and app describes them (`parrent_app`, `apps`).
    fn extra_watches(controller: Controller<Self>, scope: &Scope) -> Controller<Self> {
        let controller = watch_related(controller, scope, |r: &Self, c: &ReportComponent| {
            r.spec.app_id == c.spec.app_id
        });
        watch_related(controller, scope, |r: &Self, a: &App| r.spec.app_id == a.spec.app_id)
    }
}

impl RegisteredKind for DataTable {
    const ENTRY_KIND: EntryKind = EntryKind::DataTable;

    fn registrable(&self) -> bool {
        self.spec.registrable
    }

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, client: &Client) -> Result<Desired, kube::Error> {
        if !self.spec.registrable {
            return Ok(Desired::NotRegistrable);
        }
        let namespace = self.namespace().unwrap_or_default();
        let tables: Vec<DataTable> = siblings(client, &namespace).await?;
        let uploaders: Vec<Uploader> = siblings(client, &namespace).await?;
        Ok(plan::desired_datatable(self, &tables, &uploaders))
    }

    /// A table that comes or goes moves the `order` of the other tables of its app; an
    /// Uploader of the app may declare the table's collection.
    fn extra_watches(controller: Controller<Self>, scope: &Scope) -> Controller<Self> {
        let controller = watch_related(controller, scope, |o: &Self, t: &Self| {
            o.spec.app_id == t.spec.app_id && o.name_any() != t.name_any()
        });
        watch_related(controller, scope, |t: &Self, u: &Uploader| t.spec.app_id == u.spec.app_id)
    }
}

/// Adds a watch of `R` in `scope` to `controller`: a change to an `R` reconciles the
/// resources of `K` in its namespace that are `related` to it.
fn watch_related<K: RegisteredKind, R: Namespaced>(
    controller: Controller<K>,
    scope: &Scope,
    related: impl Fn(&K, &R) -> bool + Send + Sync + 'static,
) -> Controller<K> {
    let store = controller.store();
    controller.watches(scope.api::<R>(), watcher::Config::default(), move |changed: R| {
        let namespace = changed.namespace();
        store
            .state()
            .into_iter()
            .filter(|o| o.namespace() == namespace && related(o, &changed))
            .map(|o| ObjectRef::from_obj(&*o))
            .collect::<Vec<_>>()
    })
}

/// What every reconcile shares.
pub struct Context {
    client: Client,
    registry: Registry,
    resync: Duration,
    backoff: Backoff,
    recorder: Recorder,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("resync", &self.resync).finish_non_exhaustive()
    }
}

/// Runs the Report, ReportComponent and DataTable controllers until `shutdown`
/// completes; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    registry: Registry,
    namespaces: Vec<String>,
    resync: Duration,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let context = Arc::new(Context {
        recorder: events::recorder(client.clone()),
        client: client.clone(),
        registry,
        resync: resync.max(Duration::from_secs(1)),
        backoff: Backoff::reconciles(),
    });
    tracing::info!(namespaces = ?namespaces, "registry controllers started");
    tokio::join!(
        run_kind::<Report>(&client, &namespaces, &context, shutdown.clone()),
        run_kind::<ReportComponent>(&client, &namespaces, &context, shutdown.clone()),
        run_kind::<DataTable>(&client, &namespaces, &context, shutdown),
    );
    tracing::info!("registry controllers stopped");
}

async fn run_kind<K: RegisteredKind>(
    client: &Client,
    namespaces: &[String],
    context: &Arc<Context>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let controllers: Vec<Controller<K>> = Scope::all(client, namespaces)
        .iter()
        .map(|scope| K::extra_watches(scope.controller(CONCURRENCY, shutdown.clone()), scope))
        .collect();
    scope::run_all(
        controllers,
        shutdown.clone(),
        reconcile::<K>,
        error_policy::<K>,
        context,
        |object| tracing::trace!(object = %object, "reconciled"),
        |gone| context.backoff.reset(gone),
        |error| tracing::warn!(kind = %K::ENTRY_KIND, %error, "registry controller"),
    )
    .await;
}

// The root span of a reconcile, in every log line under it. `resource_name`, not `name`:
// JSON log lines already carry the span's own name under `name`.
#[tracing::instrument(skip_all, fields(
    kind = %K::kind(&()),
    namespace = %object.namespace().unwrap_or_default(),
    resource_name = %object.name_any(),
))]
async fn reconcile<K: RegisteredKind>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = crate::metrics::reconciles().start(&K::kind(&()));
    let result = if object.meta().deletion_timestamp.is_some() {
        cleanup(&*object, &ctx).await
    } else {
        apply(&*object, &ctx).await
    };
    if result.is_ok() {
        ctx.backoff.reset(&key(&*object));
    }
    result
}

fn error_policy<K: RegisteredKind>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    crate::metrics::reconciles().failed(&K::kind(&()), error.reason());
    retry_action!(
        object = key(&*object),
        error: error,
        invalid_spec: false,
        backoff: ctx.backoff,
        key: key(&*object),
    )
}

/// Whether the finalizer should be on a resource: only while it may have a registry
/// entry to remove, that is while it is registrable or its entry is not removed yet
/// (`entry_removed`: a not registrable resource's entry is gone). Finalizers only where
/// something outside Kubernetes must be cleaned up.
pub fn wants_finalizer(registrable: bool, entry_removed: bool) -> bool {
    registrable || !entry_removed
}

async fn apply<K: RegisteredKind>(object: &K, ctx: &Context) -> Result<Action, Error> {
    if object.registrable() && !finalizer::has(object, FINALIZER) {
        set_finalizer(object, ctx, true).await?;
    }
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let desired = object.desired(&ctx.client).await?;
    let written = match desired {
        Desired::Register(entry) => {
            let key = entry.key.to_string();
            ctx.registry.upsert(&entry).await.map(|_| Outcome::Registered { key })
        }
        Desired::NotRegistrable => ctx
            .registry
            .remove(K::ENTRY_KIND, &namespace, &name)
            .await
            .map(|_| Outcome::NotRegistrable),
        Desired::Invalid { reason, message } => ctx
            .registry
            .remove(K::ENTRY_KIND, &namespace, &name)
            .await
            .map(|_| Outcome::Invalid { reason, message }),
    };
    match written {
        Ok(outcome) => {
            // The entry is written or removed: a not registrable resource has nothing
            // left outside Kubernetes (one from an older operator may still carry it).
            if !wants_finalizer(object.registrable(), true) && finalizer::has(object, FINALIZER) {
                set_finalizer(object, ctx, false).await?;
            }
            write_status(object, ctx, &outcome).await?;
            Ok(Action::requeue(crate::controllers::backoff::spread_resync(ctx.resync)))
        }
        Err(error) => {
            let outcome = Outcome::Failed { reason: error.reason(), message: error.to_string() };
            write_status(object, ctx, &outcome).await?;
            Err(error.into())
        }
    }
}

/// Deletion: the entry goes (tombstone, then document; what is gone already counts as
/// removed), then the finalizer.
async fn cleanup<K: RegisteredKind>(object: &K, ctx: &Context) -> Result<Action, Error> {
    if !finalizer::has(object, FINALIZER) {
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().unwrap_or_default();
    ctx.registry.remove(K::ENTRY_KIND, &namespace, &object.name_any()).await?;
    set_finalizer(object, ctx, false).await?;
    Ok(Action::await_change())
}

/// Adds or removes the finalizer.
async fn set_finalizer<K: RegisteredKind>(
    object: &K,
    ctx: &Context,
    present: bool,
) -> Result<(), Error> {
    finalizer::set(&ctx.client, object, FINALIZER, present).await?;
    Ok(())
}

/// Writes the status `outcome` leads to when it differs from the current one, and
/// publishes a Warning Event when Ready turns False with a new reason.
async fn write_status<K: RegisteredKind>(
    object: &K,
    ctx: &Context,
    outcome: &Outcome,
) -> Result<(), Error> {
    let old = object.registration_status();
    let next = next_status(old, object.meta().generation, outcome, Time(Timestamp::now()));
    status_writer::write(&ctx.client, &ctx.recorder, object, old, &next, "Register").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wants_finalizer;

    #[test]
    fn only_a_registrable_resource_or_an_entry_left_keeps_the_finalizer() {
        assert!(wants_finalizer(true, false));
        assert!(wants_finalizer(true, true));
        assert!(wants_finalizer(false, false), "its entry is still to be removed");
        assert!(!wants_finalizer(false, true), "nothing outside Kubernetes");
    }
}
