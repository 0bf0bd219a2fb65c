//! Applying an Uploader's children (two Topics, the ConfigMap, the Deployment) only
//! when that can change something.
//!
//! Every Uploader is reconciled at each resync and on every change of its children;
//! applying four objects each time made 5,000 Uploaders cost ~170 server-side applies
//! a second at a 120 s resync, no-ops all, which saturated the apiserver (and the
//! reconciles of new Uploaders starved behind them). A child is applied again only
//! when what we would send differs from what we last sent (a hash), when the object
//! changed since, as its watch cache shows (a Topic's or the Deployment's generation,
//! the ConfigMap's resourceVersion: someone edited it, so the drift is reverted at
//! once), when a label, annotation or owner we set is missing from the cached
//! object, when it is missing from the cache, or when the last apply is older than
//! [`REAPPLY_AFTER_RESYNCS`] resyncs (a safety net for whatever the checks miss).

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::Stream;
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::ConfigMap},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{GetParams, PartialObjectMeta, Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use licenseware_crds::{FIELD_MANAGER, Topic};
use serde::Serialize;

use super::build::UPLOADER_LABEL;
use crate::controllers::scope::{Namespaced, Scope};

/// How many resync intervals a child may go without an apply although every check
/// says it is as applied.
pub const REAPPLY_AFTER_RESYNCS: u32 = 10;

/// Watch caches of the children, one per scope.
#[derive(Default, Clone)]
pub struct ChildStores {
    topics: Vec<Store<Topic>>,
    deployments: Vec<Store<Deployment>>,
    config_maps: Vec<Store<PartialObjectMeta<ConfigMap>>>,
}

impl std::fmt::Debug for ChildStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildStores").field("scopes", &self.topics.len()).finish()
    }
}

/// A watch of one child kind in `scope`, feeding a cache; the stream goes to
/// `Controller::owns_stream`, so the controller and the cache share one watch. A
/// deleted child (or one whose label was taken off) triggers its Uploader too: it is
/// made again at once, not at the next resync.
pub fn watch_children<K: Namespaced>(
    scope: &Scope,
    strip: fn(&mut K),
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static) {
    let (reader, writer) = reflector::store();
    let stream = watcher(scope.api::<K>(), watcher::Config::default().labels(UPLOADER_LABEL))
        .default_backoff()
        // Thousands of children stay in memory: keep what the reconcile reads.
        .modify(move |object: &mut K| {
            for entry in object.meta_mut().managed_fields.iter_mut().flatten() {
                entry.fields_v1 = None;
            }
            strip(object);
        })
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}

/// What it reads of a cached ConfigMap, watched by its metadata only (an `Api` of
/// `PartialObjectMeta` asks the apiserver for nothing else: the data is most of it):
/// owners, labels, annotations and resourceVersion.
pub fn strip_config_map(config_map: &mut PartialObjectMeta<ConfigMap>) {
    config_map.metadata.managed_fields = None;
}

/// What the Uploader reconcile reads of a cached Topic: name, generation, spec and
/// status; the managed fields are not needed.
pub fn strip_topic(topic: &mut Topic) {
    topic.metadata.managed_fields = None;
}

/// What it reads of a cached Deployment: name, generation, `spec.replicas` and the
/// managers' names (who owns replicas); the pod template is most of the object.
pub fn strip_deployment(deployment: &mut Deployment) {
    if let Some(spec) = deployment.spec.as_mut() {
        spec.template = Default::default();
    }
}

impl ChildStores {
    pub fn add(
        &mut self,
        topics: Store<Topic>,
        deployments: Store<Deployment>,
        config_maps: Store<PartialObjectMeta<ConfigMap>>,
    ) {
        self.topics.push(topics);
        self.deployments.push(deployments);
        self.config_maps.push(config_maps);
    }

    pub fn topic(&self, namespace: &str, name: &str) -> Option<Topic> {
        find(&self.topics, namespace, name)
    }

    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Deployment> {
        find(&self.deployments, namespace, name)
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<PartialObjectMeta<ConfigMap>> {
        find(&self.config_maps, namespace, name)
    }
}

fn find<K: Namespaced>(stores: &[Store<K>], namespace: &str, name: &str) -> Option<K> {
    let reference = ObjectRef::new(name).within(namespace);
    stores.iter().find_map(|store| store.get(&reference)).map(|object| (*object).clone())
}

/// What was last applied to each child: its hash, the version the apiserver gave
/// back (a generation, or for the ConfigMap a resourceVersion), and when.
#[derive(Debug, Default)]
pub struct AppliedMemo {
    entries: Mutex<HashMap<String, Applied>>,
    /// Worker Deployments whose `replicas` the scaler has set since this process
    /// started: known here before the watch cache shows the scaler's field manager.
    scaled: Mutex<HashSet<String>>,
}

#[derive(Debug, Clone)]
struct Applied {
    hash: String,
    version: Option<String>,
    at: Instant,
}

/// The version of a child whose spec has a generation (Topic, Deployment): its status
/// changes often and moves the resourceVersion, not the generation.
fn generation_of(meta: &ObjectMeta) -> Option<String> {
    meta.generation.map(|generation| generation.to_string())
}

impl AppliedMemo {
    /// Whether an apply of content `hash` can be skipped: the same content was applied,
    /// the child's version has not moved since, and the safety re-apply is not due.
    fn fresh(
        &self,
        key: &str,
        hash: &str,
        current_version: Option<&str>,
        reapply: Duration,
    ) -> bool {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).is_some_and(|applied| {
            applied.hash == hash
                && applied.version.as_deref() == current_version
                && applied.at.elapsed() < reapply
        })
    }

    fn record(&self, key: String, hash: String, version: Option<String>) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Applied { hash, version, at: Instant::now() });
    }

    /// The scaler moved `spec.replicas` of a child applied here, from generation `from`
    /// to `to`: the new generation is the operator's own change, not an edit to revert,
    /// so the next reconcile need not apply the child again (it did after each scale).
    /// Only when the memo still has `from`: an edit in between keeps its re-apply.
    pub fn follow_generation(&self, key: &str, from: Option<i64>, to: Option<i64>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(applied) = entries.get_mut(key)
            && applied.version == from.map(|g| g.to_string())
        {
            applied.version = to.map(|g| g.to_string());
        }
    }

    /// The scaler set `spec.replicas` of the Deployment `key`: the field is its own.
    pub fn take_replicas(&self, key: &str) {
        self.scaled.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned());
    }

    /// Whether the scaler has set `spec.replicas` of the Deployment `key`.
    pub fn replicas_taken(&self, key: &str) -> bool {
        self.scaled.lock().unwrap_or_else(PoisonError::into_inner).contains(key)
    }

    fn release_replicas(&self, key: &str) {
        self.scaled.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Forgets the children of a deleted Uploader (`namespace/` + names).
    pub fn forget(&self, keys: &[String]) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            entries.remove(key);
            self.release_replicas(key);
        }
    }
}

/// Whether `current` still carries every label, annotation and owner that `desired`
/// sets: edits of metadata move neither the generation nor (for a Topic or a
/// Deployment) anything else the memo can see.
fn metadata_holds(desired: &ObjectMeta, current: &ObjectMeta) -> bool {
    let contains = |want: &Option<std::collections::BTreeMap<String, String>>,
                    have: &Option<std::collections::BTreeMap<String, String>>| {
        want.iter().flatten().all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let owners_held = desired
        .owner_references
        .iter()
        .flatten()
        .all(|want| current.owner_references.iter().flatten().any(|have| have.uid == want.uid));
    contains(&desired.labels, &current.labels)
        && contains(&desired.annotations, &current.annotations)
        && owners_held
}

/// Why `existing`, an object with the name of one of the children of the Uploader with
/// uid `uid`, is not that child: it has no ownerReference to the Uploader. Applying
/// over it would take over someone else's object (force-apply moves every field to our
/// manager), so the Uploader stops with this message instead.
pub fn not_owned<K: Resource<DynamicType = ()>>(existing: &K, uid: &str) -> Option<String> {
    let owners = existing.owner_references();
    if owners.iter().any(|owner| owner.uid == uid) {
        return None;
    }
    let owned_by = if owners.is_empty() {
        "it has no owner".to_owned()
    } else {
        let names: Vec<String> =
            owners.iter().map(|owner| format!("{} {}", owner.kind, owner.name)).collect();
        format!("it is owned by {}", names.join(", "))
    };
    Some(format!(
        "{} {} already exists and is not owned by this Uploader ({owned_by}); it is left \
         unchanged. Delete or rename it, or give the Uploader another name",
        K::kind(&()),
        existing.name_any()
    ))
}

/// A child that is not in the watch cache (just created, the cache still filling, or
/// someone else's object without our label), read from the apiserver's own watch
/// cache (`resourceVersion=0`) rather than from etcd: most such reads are of children
/// that do not exist yet (a new Uploader's), and there is no newer answer to wait for
/// than what the apiserver has seen.
pub async fn get_uncached<K: Namespaced>(
    api: &Api<K>,
    name: &str,
) -> Result<Option<K>, kube::Error> {
    match api.get_with(name, &GetParams::any()).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// [`get_uncached`] of the metadata only (the ConfigMap, whose data is not read).
pub async fn get_uncached_metadata<K: Namespaced>(
    api: &Api<K>,
    name: &str,
) -> Result<Option<PartialObjectMeta<K>>, kube::Error> {
    api.get_metadata_opt_with(name, &GetParams::any()).await
}

/// The memo key of a child.
pub fn memo_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

fn hash_of(object: &impl Serialize) -> Result<String, serde_json::Error> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(object)?.hash(&mut hasher);
    Ok(format!("{:016x}", hasher.finish()))
}

/// Server-side applies `desired` unless the memo and the cached `current` say it would
/// change nothing; returns the object as it now is (the apply's answer, or the cache).
#[tracing::instrument(name = "apply_child", level = "debug", skip_all)]
pub async fn apply_child<K>(
    api: &Api<K>,
    memo: &AppliedMemo,
    desired: &K,
    current: Option<K>,
    reapply: Duration,
) -> Result<K, kube::Error>
where
    K: Namespaced + Serialize,
{
    let key = memo_key(desired);
    // A hash that cannot be computed only costs the skip.
    let hash = hash_of(desired).unwrap_or_default();
    if let Some(current) = current
        && !hash.is_empty()
        && memo.fresh(&key, &hash, generation_of(current.meta()).as_deref(), reapply)
        && metadata_holds(desired.meta(), current.meta())
    {
        return Ok(current);
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&desired.name_any(), &params, &Patch::Apply(desired)).await?;
    memo.record(key, hash, generation_of(applied.meta()));
    Ok(applied)
}

/// Creates the worker Deployment `desired` with `replicas` set, under the reconcile's
/// field manager: never at the apiserver's default of one replica (a worker Pod started
/// for nothing until the scaler's next tick). The reconcile keeps applying that count
/// ([`with_replicas_until_scaled`]) until the scaler first changes it and so takes the
/// field; a worker that never needs scaling costs no second write.
#[tracing::instrument(name = "create_worker", level = "debug", skip_all)]
pub async fn create_worker(
    api: &Api<Deployment>,
    memo: &AppliedMemo,
    desired: &Deployment,
    replicas: i32,
) -> Result<Deployment, kube::Error> {
    let created = with_replicas(desired, replicas);
    let hash = hash_of(&created).unwrap_or_default();
    let key = memo_key(desired);
    // A Deployment made again (deleted by someone) starts with the reconcile's count.
    memo.release_replicas(&key);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&desired.name_any(), &params, &Patch::Apply(&created)).await?;
    memo.record(key, hash, generation_of(applied.meta()));
    Ok(applied)
}

/// The worker Deployment the reconcile applies: `desired` (which has no `replicas`)
/// with `replicas` set while the scaler has not taken that field, so the reconcile's
/// apply neither drops it (an applier's field left out is removed, and the apiserver
/// would default it to one) nor, once the scaler owns it, takes it back.
pub fn with_replicas_until_scaled(
    desired: &Deployment,
    current: &Deployment,
    memo: &AppliedMemo,
    replicas: i32,
) -> Deployment {
    if super::scaling::scaler_owns_replicas(current, memo) {
        desired.clone()
    } else {
        with_replicas(desired, replicas)
    }
}

fn with_replicas(desired: &Deployment, replicas: i32) -> Deployment {
    let mut deployment = desired.clone();
    if let Some(spec) = deployment.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
    deployment
}

/// Like [`apply_child`] for a child without a generation (the ConfigMap), watched by
/// its metadata only: any change of it moves its resourceVersion, so an apply is
/// skipped while the cached resourceVersion is the one the last apply gave back.
#[tracing::instrument(name = "apply_by_resource_version", level = "debug", skip_all)]
pub async fn apply_by_resource_version<K>(
    api: &Api<K>,
    memo: &AppliedMemo,
    desired: &K,
    current: Option<&ObjectMeta>,
    reapply: Duration,
) -> Result<(), kube::Error>
where
    K: Namespaced + Serialize,
{
    let key = memo_key(desired);
    let hash = hash_of(desired).unwrap_or_default();
    if let Some(current) = current
        && !hash.is_empty()
        && memo.fresh(&key, &hash, current.resource_version.as_deref(), reapply)
        && metadata_holds(desired.meta(), current)
    {
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&desired.name_any(), &params, &Patch::Apply(desired)).await?;
    memo.record(key, hash, applied.meta().resource_version.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_skipped_only_while_hash_version_and_age_agree() {
        let memo = AppliedMemo::default();
        let reapply = Duration::from_secs(60);
        assert!(!memo.fresh("k", "h1", Some("1"), reapply), "never applied");
        memo.record("k".into(), "h1".into(), Some("1".into()));
        assert!(memo.fresh("k", "h1", Some("1"), reapply));
        assert!(!memo.fresh("k", "h2", Some("1"), reapply), "desired changed");
        assert!(!memo.fresh("k", "h1", Some("2"), reapply), "someone edited the spec");
        assert!(!memo.fresh("k", "h1", None, reapply), "no version to compare");
        assert!(!memo.fresh("k", "h1", Some("1"), Duration::ZERO), "re-apply due");
        memo.follow_generation("k", Some(1), Some(2));
        assert!(memo.fresh("k", "h1", Some("2"), reapply), "the scaler's own change");
        memo.follow_generation("k", Some(1), Some(3));
        assert!(!memo.fresh("k", "h1", Some("3"), reapply), "not from what the memo had");
        memo.forget(&["k".into()]);
        assert!(!memo.fresh("k", "h1", Some("2"), reapply), "forgotten");
    }

    #[test]
    fn a_label_annotation_or_owner_taken_away_is_drift_and_an_added_one_is_not() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let desired = ObjectMeta {
            labels: Some([("app".to_owned(), "a".to_owned())].into()),
            annotations: Some([("note".to_owned(), "n".to_owned())].into()),
            owner_references: Some(vec![OwnerReference {
                uid: "u1".into(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        };
        let mut current = desired.clone();
        assert!(metadata_holds(&desired, &current));
        current.labels.as_mut().unwrap().insert("added".into(), "by someone".into());
        assert!(metadata_holds(&desired, &current), "what others add is theirs");
        current.labels.as_mut().unwrap().insert("app".into(), "b".into());
        assert!(!metadata_holds(&desired, &current), "a label changed");
        current.labels = desired.labels.clone();
        current.annotations = None;
        assert!(!metadata_holds(&desired, &current), "an annotation removed");
        current.annotations = desired.annotations.clone();
        current.owner_references = Some(vec![]);
        assert!(!metadata_holds(&desired, &current), "the owner removed");
    }

    #[test]
    fn only_an_owner_reference_to_the_uploader_makes_a_child_ours() {
        use k8s_openapi::{
            api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::OwnerReference,
        };
        let mut map = ConfigMap::default();
        map.metadata.name = Some("x-worker".into());
        let message = not_owned(&map, "uid-1").expect("no owner");
        assert!(message.starts_with("ConfigMap x-worker already exists"), "{message}");
        assert!(message.contains("it has no owner"), "{message}");
        let owner = |uid: &str, kind: &str, name: &str| OwnerReference {
            uid: uid.into(),
            kind: kind.into(),
            name: name.into(),
            ..OwnerReference::default()
        };
        map.metadata.owner_references = Some(vec![owner("uid-2", "Uploader", "x")]);
        // Same name, another Uploader (deleted and created again): not ours either.
        assert!(not_owned(&map, "uid-1").expect("other").contains("owned by Uploader x"));
        map.metadata.owner_references =
            Some(vec![owner("uid-3", "Helm", "h"), owner("uid-1", "Uploader", "x")]);
        assert_eq!(not_owned(&map, "uid-1"), None);
    }

    #[test]
    fn equal_objects_hash_equal_and_different_ones_differ() {
        let spec = serde_json::from_value(serde_json::json!({"partitions": 3})).unwrap();
        let mut topic = Topic::new("a", spec);
        let first = hash_of(&topic).unwrap();
        assert_eq!(first, hash_of(&topic.clone()).unwrap());
        topic.spec.partitions = 7;
        assert_ne!(first, hash_of(&topic).unwrap());
    }
}
