//! The registry writer: one MongoDB document per registered resource (collection
//! `Registry`, `_id` = `{kind}/{appId}/{id}`), in the SDK's metadata shapes, mirrored on
//! the compacted Kafka topic `{prefix}licenseware.registry` (same key, the document as
//! JSON, a tombstone when the entry goes), so other services can follow it.
//!
//! Controllers build an entry with the pure builders of [`entries`] and hand it over:
//!
//! ```ignore
//! use licenseware_operator::registry::{EntryKind, Registry, uploader_entry};
//! // after a successful reconcile of a registrable Uploader:
//! registry.upsert(&uploader_entry(&uploader, &worker_config, &app)).await?;
//! // when it is deleted (in the finalizer) or becomes `registrable: false`:
//! registry.remove(EntryKind::Uploader, &namespace, &name).await?;
//! ```
//!
//! Both calls are idempotent and keep the app document (`app/{appId}/{appId}`) up to
//! date. Writes go to Kafka first, then to MongoDB, so a document in MongoDB has always
//! been published; a failure in between is repaired by the next call.

pub mod entries;
pub mod index;
pub mod storage;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, PoisonError},
    time::Duration,
};

use self::index::{Index, Member, app_metadata_of};

use futures::TryStreamExt;
use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use licenseware_crds::kafka_client::{self, Watched};
use mongodb::{
    Collection,
    bson::{self, Bson, Document, doc},
    options::ReplaceOptions,
};
use rdkafka::{
    ClientConfig,
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OnceCell, RwLock, RwLockReadGuard};

pub use entries::{
    EntryKind, RegistryEntry, RegistryKey, app_entry, component_entry, datatable_entry,
    datatable_order, report_entry, uploader_entry,
};

use crate::kafka::{AdminError, Applied, AppliedTopic, Claim, DesiredTopic, KafkaAdmin};

/// The MongoDB collection of the registry.
pub const COLLECTION: &str = "Registry";
/// The registry topic, before the operator's topic prefix.
pub const TOPIC: &str = "licenseware.registry";
/// The database used when neither `--registry-database` nor the MongoDB URL names one.
pub const DEFAULT_DATABASE: &str = "licenseware";
/// How long a publish may wait for the broker's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a registry write failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("cannot convert the registry document: {0}")]
    Bson(String),
    #[error("cannot publish {key} on the registry topic: {source}")]
    Publish {
        key: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot create the registry topic: {0}")]
    Topic(#[from] AdminError),
    /// Another resource already wrote an entry under this key.
    #[error("registry entry {key} belongs to {owner}")]
    Conflict { key: String, owner: String },
}

impl RegistryError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Conflict { .. } => licenseware_crds::reason::RESOURCE_CONFLICT,
            _ => licenseware_crds::reason::REGISTRY_ERROR,
        }
    }
}

/// What [`Registry::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The document was created or its content changed: written and published.
    Changed,
    /// The stored document already had this content: nothing written.
    Unchanged,
}

/// The shortest time between two rebuilds of one app document (see `refresh_app`).
const APP_REBUILD_SPACING: std::time::Duration = std::time::Duration::from_secs(1);

/// The registry writer. Cheap to clone; share one per operator.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    collection: Collection<Document>,
    producer: FutureProducer<Watched>,
    topic: String,
    admin: KafkaAdmin,
    topic_ready: OnceCell<()>,
    /// Whether documents must be stored with their inner arrays wrapped (see [`storage`]);
    /// asked of the server once.
    wrap_nested_arrays: OnceCell<bool>,
    /// App documents are derived from several entries: one refresh at a time, so a
    /// refresh never overwrites a newer one with what it read earlier.
    app_lock: Mutex<()>,
    /// Apps whose document is being rebuilt, each with whether another rebuild was asked
    /// for meanwhile: concurrent requests for one app coalesce into at most one more.
    app_refreshes: std::sync::Mutex<HashMap<String, bool>>,
    /// What the collection holds ([`index`]); `None` until read, and again after a
    /// write that failed (its outcome unknown), so the next call reads it anew.
    index: std::sync::Mutex<Option<Index>>,
    /// Writes hold it shared from their MongoDB call to their index update; a read of
    /// the whole collection holds it exclusively, so it never misses a write in between.
    index_fence: RwLock<()>,
    /// Key → hash of the content this process last wrote or found, and when: an upsert
    /// of the same content within [`VERIFY_AFTER`] reads nothing (every Uploader is
    /// reconciled each poll interval; a read per reconcile kept FerretDB busy).
    written: std::sync::Mutex<HashMap<String, (u64, std::time::Instant)>>,
}

/// How long a known entry is trusted before the next upsert reads it again (and so
/// restores an entry someone else changed or deleted). The operator is the only
/// writer: this is a safety net, and a read of each entry at every resync kept the
/// store busy (5,000 Uploaders at a 120 s resync: 42 reads a second, each costing
/// time in proportion to the collection on FerretDB).
const VERIFY_AFTER: std::time::Duration = std::time::Duration::from_secs(20 * 60);

fn content_hash(entry: &RegistryEntry) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(&entry.document("")).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("collection", &self.inner.collection.namespace())
            .field("topic", &self.inner.topic)
            .finish_non_exhaustive()
    }
}

/// Now, as the SDK writes `updated_at`: UTC ISO format with microseconds and no zone.
pub fn now_iso() -> String {
    let now = Timestamp::now().to_zoned(TimeZone::UTC).datetime();
    now.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The database named in the path of a MongoDB connection string, if any.
pub fn database_in_url(url: &str) -> Option<String> {
    // The driver's own parser: it knows the userinfo, host lists, sockets and
    // percent-encoding that a split on '/' gets wrong.
    mongodb::options::ConnectionString::parse(url).ok()?.default_database
}

impl Registry {
    /// The registry in `database` of `mongo`, publishing on `{topic_prefix}licenseware.registry`
    /// with `kafka` (bootstrap and security set)
    /// through an idempotent producer. Connects lazily: the topic is created (compacted,
    /// one partition, replication factor min(3, brokers)) before the first publish.
    pub fn new(
        mongo: &mongodb::Client,
        database: &str,
        kafka: &ClientConfig,
        topic_prefix: &str,
        admin: KafkaAdmin,
    ) -> Result<Self, KafkaError> {
        let producer: FutureProducer<Watched> = kafka_client::create(
            kafka
                .clone()
                .set("client.id", "licenseware-operator-registry")
                .set("enable.idempotence", "true")
                .set("message.timeout.ms", "30000"),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                collection: mongo.database(database).collection(COLLECTION),
                producer,
                topic: format!("{topic_prefix}{TOPIC}"),
                admin,
                topic_ready: OnceCell::new(),
                wrap_nested_arrays: OnceCell::new(),
                app_lock: Mutex::new(()),
                app_refreshes: std::sync::Mutex::default(),
                index: std::sync::Mutex::default(),
                index_fence: RwLock::new(()),
                written: std::sync::Mutex::default(),
            }),
        })
    }

    async fn wraps_nested_arrays(&self) -> Result<bool, RegistryError> {
        let database =
            self.inner.collection.client().database(self.inner.collection.namespace().db.as_str());
        Ok(*self
            .inner
            .wrap_nested_arrays
            .get_or_try_init(|| storage::refuses_nested_arrays(&database))
            .await?)
    }

    /// The full name of the registry topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Creates the registry topic when it is missing. Called before every publish; only
    /// the first successful call talks to Kafka.
    pub async fn ensure_topic(&self) -> Result<(), RegistryError> {
        self.inner
            .topic_ready
            .get_or_try_init(|| async {
                let desired = DesiredTopic {
                    name: self.inner.topic.clone(),
                    partitions: 1,
                    replication_factor: None,
                    config: [("cleanup.policy".to_owned(), "compact".to_owned())].into(),
                    // The operator's own topic: whoever created it, it is ours to keep
                    // compacted.
                    claim: Claim::Adopt,
                    claimant: "licenseware-operator/registry".to_owned(),
                };
                let applied = self.inner.admin.apply(desired).await?;
                if matches!(applied, Applied::Topic(AppliedTopic { created: true, .. })) {
                    tracing::info!(kafka_topic = %self.inner.topic, "created the registry topic");
                }
                Ok::<(), RegistryError>(())
            })
            .await
            .map(|_| ())
    }

    /// Writes `entry` when its content differs from the stored document (then with a new
    /// `updated_at`, published on the registry topic first), removes the entries the
    /// same resource wrote under other keys (an id changed), and refreshes the app
    /// document. Fails with [`RegistryError::Conflict`] when another resource owns the
    /// key.
    #[tracing::instrument(name = "registry_upsert", level = "debug", skip_all)]
    pub async fn upsert(&self, entry: &RegistryEntry) -> Result<Upserted, RegistryError> {
        let key = entry.key.to_string();
        let hash = content_hash(entry);
        if self.known(&key, hash, entry) {
            return Ok(Upserted::Unchanged);
        }
        let last_written =
            self.inner.written.lock().unwrap_or_else(PoisonError::into_inner).get(&key).copied();
        let first_in_process = last_written.is_none();
        let fence = self.loaded_index().await?;
        // The index holds every key of the collection (read once, then kept by this
        // writer, the only one): a key it lacks is new, and a key this process wrote
        // with other content holds that content. Neither needs reading: on FerretDB
        // (SQLite) a read and an upsert by `_id` cost time in proportion to the
        // collection, an insert does not (0.7 ms against 9.3 ms at 3,000 documents).
        let is_new = self.with_index(|index| !index.contains(&key)).unwrap_or(false);
        let changed_since_written = last_written.is_some_and(|(known, _)| known != hash);
        let existing = if is_new || changed_since_written {
            None
        } else {
            self.inner.collection.find_one(doc! { "_id": &key }).await?.map(to_json)
        };
        if let Some(existing) = &existing
            && let Some(owner) = foreign_owner(existing, entry)
        {
            return Err(RegistryError::Conflict { key, owner });
        }
        // The same content stamped with the stored time is the stored document.
        let stored_stamp = existing.as_ref().and_then(|old| {
            let stamp = old.get("updated_at").and_then(Value::as_str).unwrap_or_default();
            document_json(entry, stamp).ok().filter(|same| same == old).map(|_| stamp.to_owned())
        });
        let (outcome, document) = match stored_stamp {
            Some(stamp) => (Upserted::Unchanged, document_json(entry, &stamp)?),
            None => {
                let document = document_json(entry, &now_iso())?;
                self.publish(&key, Some(&document)).await?;
                let bson = to_bson(&document, self.wraps_nested_arrays().await?)?;
                let collection = &self.inner.collection;
                let written = if is_new {
                    collection.insert_one(bson).await.map(|_| ())
                } else {
                    let upsert = ReplaceOptions::builder().upsert(true).build();
                    collection
                        .replace_one(doc! { "_id": &key }, bson)
                        .with_options(upsert)
                        .await
                        .map(|_| ())
                };
                self.forget_index_unless(written.is_ok());
                if let Err(error) = &written
                    && is_duplicate_key(error)
                {
                    // Another writer made the key after the index was read (read again
                    // now). Kafka got this document first: another resource's stored
                    // one goes back there, and the upsert runs again on what is stored.
                    drop(fence);
                    if let Some(stored) = collection.find_one(doc! { "_id": &key }).await? {
                        let stored = to_json(stored);
                        if foreign_owner(&stored, entry).is_some() {
                            self.publish(&key, Some(&stored)).await?;
                        }
                    }
                    return Box::pin(self.upsert(entry)).await;
                }
                written?;
                tracing::info!(registry_key = %key, "registry entry written");
                (Upserted::Changed, document)
            }
        };
        // Not in the index when it was forgotten meanwhile: the next read finds it.
        self.with_index(|index| index.extend(Member::from_document(&document)));
        drop(fence);
        if entry.key.kind != EntryKind::App {
            // An id that changed leaves entries under the old key: they go, and their
            // apps lose a member.
            let stale = self
                .index_read(|index| {
                    index.keys_of(
                        entry.key.kind,
                        &entry.namespace,
                        &entry.resource_name,
                        Some(&key),
                    )
                })
                .await?;
            let mut apps = self.delete_keys(stale).await?;
            // A new member changes the app's lists; a changed uploader or report may
            // carry new app metadata (its App was edited). The first upsert in this
            // process refreshes too: a crash may have left the app document behind.
            let carries_app = matches!(entry.key.kind, EntryKind::Uploader | EntryKind::Report);
            if is_new || first_in_process || (carries_app && outcome == Upserted::Changed) {
                apps.insert(entry.key.app_id.clone());
            }
            for app in apps {
                self.refresh_app(&app).await?;
            }
        }
        self.inner
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (hash, std::time::Instant::now()));
        Ok(outcome)
    }

    /// Whether this process wrote or verified exactly this content of `key` recently,
    /// and the resource has no entry under another key.
    fn known(&self, key: &str, hash: u64, entry: &RegistryEntry) -> bool {
        let fresh = self
            .inner
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .is_some_and(|(known, at)| *known == hash && at.elapsed() < VERIFY_AFTER);
        fresh
            && (entry.key.kind == EntryKind::App
                || self
                    .with_index(|index| {
                        index.contains(key)
                            && index
                                .keys_of(
                                    entry.key.kind,
                                    &entry.namespace,
                                    &entry.resource_name,
                                    Some(key),
                                )
                                .is_empty()
                    })
                    .unwrap_or(false))
    }

    /// Removes every entry the resource `namespace/name` of `kind` wrote (a tombstone on
    /// the topic, then the document), and refreshes the app documents: the app's goes
    /// with its last entry. What is already gone counts as removed. Returns how many
    /// documents were removed.
    pub async fn remove(
        &self,
        kind: EntryKind,
        namespace: &str,
        resource_name: &str,
    ) -> Result<usize, RegistryError> {
        let keys =
            self.index_read(|index| index.keys_of(kind, namespace, resource_name, None)).await?;
        let removed = keys.len();
        let apps = self.delete_keys(keys).await?;
        for app in &apps {
            self.refresh_app(app).await?;
        }
        Ok(removed)
    }

    /// Tombstones and deletes the entries `keys`; returns their apps.
    #[tracing::instrument(name = "registry_delete_keys", level = "debug", skip_all)]
    async fn delete_keys(&self, keys: Vec<String>) -> Result<BTreeSet<String>, RegistryError> {
        let mut apps = BTreeSet::new();
        for key in keys {
            let fence = self.loaded_index().await?;
            self.publish(&key, None).await?;
            self.inner.written.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
            let deleted = self.inner.collection.delete_one(doc! { "_id": &key }).await;
            self.forget_index_unless(deleted.is_ok());
            deleted?;
            self.with_index(|index| index.remove(&key));
            drop(fence);
            tracing::info!(registry_key = %key, "registry entry removed");
            if let Some(parsed) = RegistryKey::parse(&key) {
                apps.insert(parsed.app_id);
            }
        }
        Ok(apps)
    }

    /// Reads the whole collection into the index unless it is there; returns the fence
    /// the caller holds until its write is in the index.
    async fn loaded_index(&self) -> Result<RwLockReadGuard<'_, ()>, RegistryError> {
        loop {
            let shared = self.inner.index_fence.read().await;
            if self.with_index(|_| ()).is_some() {
                return Ok(shared);
            }
            drop(shared);
            let _exclusive = self.inner.index_fence.write().await;
            if self.with_index(|_| ()).is_none() {
                let members = self.read_members().await?;
                *self.inner.index.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Index::new(members));
            }
        }
    }

    #[tracing::instrument(name = "registry_read_members", level = "debug", skip_all)]
    async fn read_members(&self) -> Result<Vec<Member>, RegistryError> {
        let projection: Document =
            index::FIELDS.iter().map(|f| ((*f).to_owned(), Bson::Int32(1))).collect();
        let documents: Vec<Document> =
            self.inner.collection.find(doc! {}).projection(projection).await?.try_collect().await?;
        let members: Vec<Member> =
            documents.into_iter().filter_map(|d| Member::from_document(&to_json(d))).collect();
        tracing::debug!(entries = members.len(), "registry index read");
        Ok(members)
    }

    /// Runs `f` on the index, read first when it is not.
    async fn index_read<T>(&self, f: impl Fn(&mut Index) -> T) -> Result<T, RegistryError> {
        loop {
            let _fence = self.loaded_index().await?;
            // Forgotten since (a failed write elsewhere): read again.
            if let Some(found) = self.with_index(&f) {
                return Ok(found);
            }
        }
    }

    /// Runs `f` on the index; `None` when it is not read yet.
    fn with_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> Option<T> {
        self.inner.index.lock().unwrap_or_else(PoisonError::into_inner).as_mut().map(f)
    }

    /// After a write that failed, whether it happened is unknown: the index is read
    /// again before the next use.
    fn forget_index_unless(&self, succeeded: bool) {
        if !succeeded {
            *self.inner.index.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Rebuilds the app document of `app_id` from the entries that exist now. While a
    /// rebuild of the same app runs, a request only asks it for one more round and
    /// returns: with many resources of one app reconciled at once, the app document is
    /// rebuilt about once per [`APP_REBUILD_SPACING`] instead of once per resource. A
    /// failed round clears the request, so the caller's retry starts a new rebuild that
    /// sees every entry.
    async fn refresh_app(&self, app_id: &str) -> Result<(), RegistryError> {
        {
            let mut running =
                self.inner.app_refreshes.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(again) = running.get_mut(app_id) {
                *again = true;
                return Ok(());
            }
            running.insert(app_id.to_owned(), false);
        }
        loop {
            let started = tokio::time::Instant::now();
            let round = self.rebuild_app(app_id).await;
            {
                let mut running =
                    self.inner.app_refreshes.lock().unwrap_or_else(PoisonError::into_inner);
                match (round, running.get(app_id)) {
                    (Ok(()), Some(true)) => {}
                    (round, _) => {
                        running.remove(app_id);
                        return round;
                    }
                }
            }
            // Rounds come at most this often: the requests of the wait join the next
            // one. Back to back, a thousand Uploaders of one app created at once made
            // ~460 rebuilds of a document listing up to a thousand members (read,
            // compared, published and written each time): most of the store's and a
            // good part of Kafka's CPU while the operator was catching up.
            tokio::time::sleep_until(started + APP_REBUILD_SPACING).await;
            if let Some(again) = self
                .inner
                .app_refreshes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(app_id)
            {
                *again = false;
            }
        }
    }

    #[tracing::instrument(name = "registry_rebuild_app", level = "debug", skip_all)]
    async fn rebuild_app(&self, app_id: &str) -> Result<(), RegistryError> {
        let _guard = self.inner.app_lock.lock().await;
        let (keys, metadata, stored) = self
            .index_read(|index| {
                let members = index.app_members(app_id);
                let keys: Vec<RegistryKey> = members.iter().map(|m| m.key.clone()).collect();
                let metadata = app_metadata_of(app_id, &members);
                let key = RegistryKey::new(EntryKind::App, app_id, app_id).to_string();
                (keys, metadata, index.contains(&key))
            })
            .await?;
        let app = app_entry(metadata, &keys);
        if keys.is_empty() {
            let key = app.key.to_string();
            self.inner.written.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
            if stored {
                self.delete_keys(vec![key]).await?;
            }
            return Ok(());
        }
        Box::pin(self.upsert(&app)).await.map(|_| ())
    }

    /// Publishes `document` under `key`, or a tombstone when `None`.
    #[tracing::instrument(name = "registry_publish", level = "debug", skip_all)]
    async fn publish(
        &self,
        key: &str,
        document: Option<&Map<String, Value>>,
    ) -> Result<(), RegistryError> {
        self.ensure_topic().await?;
        let payload = match document {
            Some(document) => Some(
                serde_json::to_vec(document)
                    .map_err(|error| RegistryError::Bson(error.to_string()))?,
            ),
            None => None,
        };
        let mut record = FutureRecord::<str, [u8]>::to(&self.inner.topic).key(key);
        if let Some(payload) = &payload {
            record = record.payload(payload.as_slice());
        }
        self.inner
            .producer
            .send(record, PUBLISH_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(source, _)| RegistryError::Publish { key: key.to_owned(), source })
    }
}

/// `namespace/name` of the resource that wrote `existing`, when it is not the one
/// `entry` comes from.
/// Whether a write failed because a document with its `_id` exists (E11000).
fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    matches!(&*error.kind, ErrorKind::Write(WriteFailure::WriteError(write)) if write.code == 11000)
}

fn foreign_owner(existing: &Map<String, Value>, entry: &RegistryEntry) -> Option<String> {
    let field = |name: &str| existing.get(name).and_then(Value::as_str).unwrap_or_default();
    let (namespace, name) = (field("namespace"), field("resource_name"));
    (namespace != entry.namespace || name != entry.resource_name)
        .then(|| format!("{} {namespace}/{name}", entry.key.kind))
}

fn document_json(
    entry: &RegistryEntry,
    updated_at: &str,
) -> Result<Map<String, Value>, RegistryError> {
    entry.document_json(updated_at).map_err(|error| RegistryError::Bson(error.to_string()))
}

fn to_json(document: Document) -> Map<String, Value> {
    match storage::unwrap_nested_arrays(Bson::Document(document).into_relaxed_extjson()) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn to_bson(
    document: &Map<String, Value>,
    wrap_nested_arrays: bool,
) -> Result<Document, RegistryError> {
    let result = if wrap_nested_arrays {
        bson::to_document(&storage::wrap_nested_arrays(Value::Object(document.clone())))
    } else {
        bson::to_document(document)
    };
    result.map_err(|error| RegistryError::Bson(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_comes_from_the_url_path() {
        assert_eq!(database_in_url("mongodb://127.0.0.1:27017/apps"), Some("apps".into()));
        assert_eq!(
            database_in_url("mongodb://u:p@h1,h2/apps?authSource=admin"),
            Some("apps".into())
        );
        assert_eq!(database_in_url("mongodb://127.0.0.1:27017/"), None);
        assert_eq!(database_in_url("mongodb://127.0.0.1:27017"), None);
        assert_eq!(database_in_url("mongodb://h/?tls=true"), None);
        // What the driver connects to: percent-decoded, and nothing from a URL it refuses.
        assert_eq!(database_in_url("mongodb://h/lw%2Dapps"), Some("lw-apps".into()));
        assert_eq!(database_in_url("mongodb://u:p/w@h/apps"), None);
    }

    #[test]
    fn updated_at_is_iso_without_zone() {
        let now = now_iso();
        assert_eq!(now.len(), "2026-01-02T03:04:05.123456".len(), "{now}");
        assert_eq!(&now[10..11], "T");
        assert!(!now.ends_with('Z'));
    }

    #[test]
    fn a_document_round_trips_through_bson_unchanged() {
        let entry = entries::datatable_entry(
            &serde_yaml::from_str(
                "{apiVersion: licenseware.io/v1alpha1, kind: DataTable, metadata: {name: t, namespace: n},
                  spec: {appId: a, title: T, columns: [{prop: number_x}, {prop: os, values: [a]}]}}",
            )
            .unwrap(),
            3,
        );
        let document = entry.document_json("2026-01-02T03:04:05.000000").unwrap();
        let back = to_json(to_bson(&document, true).unwrap());
        assert_eq!(back, document);
        let typed: licenseware_crds::AnyRegistryDocument =
            serde_json::from_value(Value::Object(back.clone())).unwrap();
        assert_eq!(typed, entry.document("2026-01-02T03:04:05.000000"));
        assert_eq!(foreign_owner(&back, &entry), None);
        let mut other = entry.clone();
        other.namespace = "m".into();
        assert_eq!(foreign_owner(&back, &other), Some("datatable n/t".into()));
    }
}
