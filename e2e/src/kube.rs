//! The apiserver as the tests use it: CRDs, fresh namespaces, typed custom
//! resources, and waits on their status conditions.

use std::{collections::BTreeSet, time::Duration};

use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::Condition,
    serde::{Serialize, de::DeserializeOwned},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use licenseware_operator::crds::{App, DataTable, Report, ReportComponent, Topic, Uploader};
use serde_json::json;

use crate::{eventually, unique_name};

/// The field manager of every server-side apply of the tests.
pub const FIELD_MANAGER: &str = "licenseware-e2e";

/// How long [`install_crds`] waits for each CRD to be established.
const CRD_WAIT: Duration = Duration::from_secs(90);

/// Installs (server-side applies) the CRDs of every kind and waits until the apiserver
/// serves them.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in licenseware_operator::crds::generate::crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply a CRD");
        eventually(CRD_WAIT, &format!("CRD {name} to be established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

/// Creates the namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// Creates a namespace of a unique name starting with `prefix`, and returns the name.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    create_namespace(client, &name).await;
    name
}

/// Deletes the namespace `name`, ignoring failures (cleanup). The finalizers of our
/// kinds in it are removed first: only an operator removes them, the tests stop theirs
/// before this, and a namespace left Terminating keeps the controller-manager's
/// namespace controller (and so the apiserver and etcd) busy for the rest of the run.
pub async fn delete_namespace(client: &Client, name: &str) {
    release_finalizers::<App>(client, name).await;
    release_finalizers::<Uploader>(client, name).await;
    release_finalizers::<Topic>(client, name).await;
    release_finalizers::<Report>(client, name).await;
    release_finalizers::<ReportComponent>(client, name).await;
    release_finalizers::<DataTable>(client, name).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

/// Removes every finalizer of the `K`s in `namespace`, a few requests at a time.
async fn release_finalizers<K>(client: &Client, namespace: &str)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    use futures::StreamExt;
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let Ok(objects) = api.list_metadata(&ListParams::default()).await else { return };
    let holding = objects.items.into_iter().filter(|o| !o.finalizers().is_empty());
    let release = json!({"metadata": {"finalizers": null}});
    futures::stream::iter(holding)
        .for_each_concurrent(8, |object| {
            let (api, release) = (&api, &release);
            async move {
                let name = object.name_any();
                let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(release)).await;
            }
        })
        .await;
}

/// Creates a `licenseware.io/v1alpha1` object of `kind` from `manifest` (its
/// `apiVersion` and `kind` are set here).
pub async fn create_custom<K>(api: &Api<K>, kind: &str, mut manifest: serde_json::Value) -> K
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    manifest["apiVersion"] = json!("licenseware.io/v1alpha1");
    manifest["kind"] = json!(kind);
    let object: K = serde_json::from_value(manifest).expect("manifest");
    api.create(&PostParams::default(), &object).await.expect("create")
}

/// Server-side applies `doc` as the tests' field manager.
pub async fn apply<K>(api: &Api<K>, doc: &serde_json::Value) -> K
where
    K: Resource + Clone + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let object: K = serde_json::from_value(doc.clone()).expect("a valid object");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(&object)).await.expect("apply")
}

/// Waits until `name` is gone from `api`.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    eventually(timeout, &format!("{name} to be gone"), || async {
        api.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

/// Deletes `name` and waits until it is gone.
pub async fn delete_and_wait<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    api.delete(name, &DeleteParams::default()).await.expect("delete");
    wait_gone(api, name, timeout).await;
}

/// Kinds whose status carries conditions and an observed generation.
pub trait Conditioned {
    /// The status conditions and observed generation; `None` without a status.
    fn conditions(&self) -> Option<(&[Condition], Option<i64>)>;
}

macro_rules! conditioned {
    ($($kind:ty),*) => {$(
        impl Conditioned for $kind {
            fn conditions(&self) -> Option<(&[Condition], Option<i64>)> {
                self.status.as_ref().map(|s| (s.conditions.as_slice(), s.observed_generation))
            }
        }
    )*};
}

conditioned!(Topic, Uploader, Report, ReportComponent, DataTable, App);

/// Whether `object` has `type_`=True in a status of its latest generation.
pub fn is_true_and_current<K: Conditioned + Resource>(object: &K, type_: &str) -> bool {
    object.conditions().is_some_and(|(conditions, observed)| {
        conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
            && observed == object.meta().generation
    })
}

/// What [`wait_condition`] waits for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    /// Whether the status must be of the object's latest generation.
    pub current: bool,
}

impl<'a> Expected<'a> {
    /// `type_`=`status` for `reason`, in a status of the latest generation.
    pub fn new(type_: &'a str, status: &'a str, reason: &'a str) -> Self {
        Self { type_, status, reason, current: true }
    }
}

/// Waits for condition `expected.type_` of `name` to have `expected.status` and
/// `expected.reason` (for the latest generation when `expected.current`), and returns it.
pub async fn wait_condition<K>(
    api: &Api<K>,
    name: &str,
    expected: Expected<'_>,
    timeout: Duration,
) -> Condition
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
        + Conditioned,
{
    let Expected { type_, status, reason, current } = expected;
    eventually(timeout, &format!("{name}: {type_}={status} {reason}"), || async move {
        let object = api.get(name).await.ok()?;
        let generation = object.meta().generation;
        let (conditions, observed) = object.conditions()?;
        let condition = conditions.iter().find(|c| c.type_ == type_)?;
        (condition.status == status
            && condition.reason == reason
            && (!current || observed == generation))
            .then(|| condition.clone())
    })
    .await
}

/// Merge-patches `name` with `patch`.
pub async fn merge_patch<K>(api: &Api<K>, name: &str, patch: serde_json::Value) -> K
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch")
}

/// Names of the objects of `api` with `type_`=True in a status of their latest
/// generation.
pub async fn names_true_and_current<K>(api: &Api<K>, type_: &str) -> BTreeSet<String>
where
    K: Resource + Conditioned + Clone + std::fmt::Debug + DeserializeOwned,
{
    let list = api.list(&ListParams::default()).await.expect("list");
    list.items
        .into_iter()
        .filter(|object| is_true_and_current(object, type_))
        .map(|object| object.name_any())
        .collect()
}
