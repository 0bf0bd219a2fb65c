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

use futures::StreamExt;
use k8s_openapi::{
    NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams},
    runtime::{
        Controller,
        controller::{Action, Config as ControllerConfig},
        events::{Event, EventType, Recorder, Reporter},
        reflector::ObjectRef,
        watcher,
    },
};
use licenseware_crds::{
    DataTable, FIELD_MANAGER, RegistrationStatus, ReportComponent, condition_type,
    conditions::{find_condition, status as condition_status},
    report::Report,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use self::plan::{Desired, Outcome, next_status};
use crate::{
    controllers::backoff::Backoff,
    registry::{EntryKind, Registry, RegistryError},
};

/// The finalizer that removes a resource's registry entry before the resource goes.
pub const FINALIZER: &str = "licenseware.io/registry";

const CONCURRENCY: u16 = 50;
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

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
pub trait RegisteredKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    const ENTRY_KIND: EntryKind;

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
async fn siblings<K: RegisteredKind>(
    client: &Client,
    namespace: &str,
) -> Result<Vec<K>, kube::Error> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.into_iter().filter(|o| o.meta().deletion_timestamp.is_none()).collect())
}

impl RegisteredKind for ReportComponent {
    const ENTRY_KIND: EntryKind = EntryKind::Component;

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, _client: &Client) -> Result<Desired, kube::Error> {
        Ok(plan::desired_component(self))
    }
}

impl RegisteredKind for Report {
    const ENTRY_KIND: EntryKind = EntryKind::Report;

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, client: &Client) -> Result<Desired, kube::Error> {
        if !self.spec.registrable {
            return Ok(Desired::NotRegistrable);
        }
        let components: Vec<ReportComponent> =
            siblings(client, &self.namespace().unwrap_or_default()).await?;
        Ok(plan::desired_report(self, &components))
    }

    /// A change to a ReportComponent re-checks the Reports of its namespace and app.
    fn extra_watches(controller: Controller<Self>, scope: &Scope) -> Controller<Self> {
        let store = controller.store();
        controller.watches(
            scope.api::<ReportComponent>(),
            watcher::Config::default(),
            move |c: ReportComponent| {
                let namespace = c.namespace();
                store
                    .state()
                    .into_iter()
                    .filter(|r| r.namespace() == namespace && r.spec.app_id == c.spec.app_id)
                    .map(|r| ObjectRef::from_obj(&*r))
                    .collect::<Vec<_>>()
            },
        )
    }
}

impl RegisteredKind for DataTable {
    const ENTRY_KIND: EntryKind = EntryKind::DataTable;

    fn registration_status(&self) -> Option<&RegistrationStatus> {
        self.status.as_ref()
    }

    async fn desired(&self, client: &Client) -> Result<Desired, kube::Error> {
        if !self.spec.registrable {
            return Ok(Desired::NotRegistrable);
        }
        let tables: Vec<DataTable> =
            siblings(client, &self.namespace().unwrap_or_default()).await?;
        Ok(plan::desired_datatable(self, &tables))
    }

    /// A table that comes or goes moves the `order` of the other tables of its app.
    fn extra_watches(controller: Controller<Self>, scope: &Scope) -> Controller<Self> {
        let store = controller.store();
        controller.watches(
            scope.api::<DataTable>(),
            watcher::Config::default(),
            move |t: DataTable| {
                let namespace = t.namespace();
                store
                    .state()
                    .into_iter()
                    .filter(|o| {
                        o.namespace() == namespace
                            && o.spec.app_id == t.spec.app_id
                            && o.name_any() != t.name_any()
                    })
                    .map(|o| ObjectRef::from_obj(&*o))
                    .collect::<Vec<_>>()
            },
        )
    }
}

/// Where one controller watches: one namespace, or all.
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
    let reporter = Reporter { controller: FIELD_MANAGER.to_owned(), instance: None };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        registry,
        resync: resync.max(Duration::from_secs(1)),
        backoff: Backoff::new(BACKOFF_BASE, BACKOFF_MAX),
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
    let scopes: Vec<Scope> = if namespaces.is_empty() {
        vec![Scope { client: client.clone(), namespace: None }]
    } else {
        namespaces
            .iter()
            .map(|ns| Scope { client: client.clone(), namespace: Some(ns.clone()) })
            .collect()
    };
    let runs = scopes.into_iter().map(|scope| {
        let controller = Controller::new(scope.api::<K>(), watcher::Config::default())
            .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
            .graceful_shutdown_on(shutdown.clone());
        K::extra_watches(controller, &scope)
            .run(reconcile::<K>, error_policy::<K>, Arc::clone(context))
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => tracing::trace!(object = %object, "reconciled"),
                    Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                    Err(error) => {
                        tracing::warn!(kind = %K::ENTRY_KIND, %error, "registry controller")
                    }
                }
            })
    });
    futures::future::join_all(runs).await;
}

fn key<K: RegisteredKind>(object: &K) -> String {
    ObjectRef::from_obj(object).to_string()
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
    let wait = ctx.backoff.next(&key(&*object));
    tracing::warn!(
        object = %key(&*object),
        reason = error.reason(),
        %error,
        retry_in_ms = wait.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(wait)
}

async fn apply<K: RegisteredKind>(object: &K, ctx: &Context) -> Result<Action, Error> {
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
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
            write_status(object, ctx, &outcome).await?;
            Ok(Action::requeue(ctx.resync))
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
    if !object.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().unwrap_or_default();
    ctx.registry.remove(K::ENTRY_KIND, &namespace, &object.name_any()).await?;
    set_finalizer(object, ctx, false).await?;
    Ok(Action::await_change())
}

/// Adds or removes the finalizer. The patch carries the resourceVersion, so it fails
/// instead of overwriting a list another controller changed in between.
async fn set_finalizer<K: RegisteredKind>(
    object: &K,
    ctx: &Context,
    present: bool,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> =
        object.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    match api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
        Err(error) => Err(error.into()),
    }
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
    if old == Some(&next) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": next,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    let ready = |status: Option<&RegistrationStatus>| {
        status
            .and_then(|s| find_condition(&s.conditions, condition_type::READY))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let after = ready(Some(&next));
    let before = ready(old).map(|(s, r, _)| (s, r));
    if let Some((status, reason, message)) = after
        && status == condition_status::FALSE
        && before != Some((status.clone(), reason.clone()))
    {
        let event = Event {
            type_: EventType::Warning,
            reason,
            note: Some(message),
            action: "Register".to_owned(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish Event");
        }
    }
    Ok(())
}
