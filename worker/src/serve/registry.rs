//! The registry as the API sees it: every document of the compacted
//! `{prefix}licenseware.registry` topic, read from the beginning by every replica with
//! no consumer-group commits, so a change to a resource is served within seconds and a
//! new replica knows everything the operator registered.

use std::{
    any::Any,
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::validation::CompiledRules;
use licenseware_crds::{
    WorkerConfigFile,
    event_schema::{CompiledEventSchema, EventSchemaError},
    kafka_client::{self, Watched},
    names::dash,
    registry::RegistryRecord,
};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    types::RDKafkaErrorCode,
};
use serde_json::{Map, Value};

/// An uploader the API can take files for: its ids, and the worker config the operator
/// published with its registry entry (events topic, full spec with limits and rules).
#[derive(Debug, Clone)]
pub struct UploaderInfo {
    pub app_id: String,
    pub uploader_id: String,
    pub worker: WorkerConfigFile,
    /// The filename and content rules, compiled once per registry change.
    pub rules: CompiledRules,
    /// The events Topic's message contract, compiled once per registry change (the
    /// operator writes a record only when its content changed, so once per schema
    /// version); `None` when the Topic has no schema. A schema that does not compile
    /// is kept as its error: every upload is then refused with it.
    pub event_schema: Option<Arc<Result<CompiledEventSchema, EventSchemaError>>>,
}

/// The registry documents by key (`{kind}/{appId}/{id}`), and the uploaders by app
/// and by both forms of their id.
#[derive(Debug, Default)]
struct Index {
    documents: BTreeMap<String, Map<String, Value>>,
    uploaders: HashMap<(String, String), Arc<UploaderInfo>>,
}

impl Index {
    fn apply(&mut self, key: &str, document: Option<Map<String, Value>>) {
        if let Some(old) = self.documents.remove(key) {
            self.forget_uploader(&old);
        }
        let Some(document) = document else { return };
        if let Some(info) = uploader_info(&document) {
            let info = Arc::new(info);
            let app = info.app_id.clone();
            self.uploaders.insert((app.clone(), dash(&info.uploader_id)), info.clone());
            self.uploaders.insert((app, info.uploader_id.clone()), info);
        }
        self.documents.insert(key.to_owned(), document);
    }

    fn forget_uploader(&mut self, document: &Map<String, Value>) {
        if let Some(info) = uploader_info(document) {
            self.uploaders.remove(&(info.app_id.clone(), dash(&info.uploader_id)));
            self.uploaders.remove(&(info.app_id, info.uploader_id));
        }
    }
}

fn uploader_info(document: &Map<String, Value>) -> Option<UploaderInfo> {
    if document.get("kind").and_then(Value::as_str) != Some("uploader") {
        return None;
    }
    let worker: WorkerConfigFile = serde_json::from_value(document.get("worker")?.clone()).ok()?;
    Some(UploaderInfo {
        app_id: worker.app_id.clone(),
        uploader_id: worker.uploader_id.clone(),
        rules: CompiledRules::new(worker.spec.validation.clone()),
        event_schema: worker
            .events_topic_schema
            .as_ref()
            .map(|schema| Arc::new(CompiledEventSchema::compile(schema))),
        worker,
    })
}

/// A record of the topic, checked against the typed registry shapes the operator
/// writes ([`RegistryRecord`]): a document that is not one of them is not served.
pub fn read_record(
    key: &str,
    payload: Option<&[u8]>,
) -> Result<Option<Map<String, Value>>, String> {
    match RegistryRecord::parse(key, payload).map_err(|error| error.to_string())? {
        RegistryRecord::Tombstone(_) => Ok(None),
        RegistryRecord::Document(_) => {
            let bytes = payload.unwrap_or_default();
            serde_json::from_slice(bytes).map(Some).map_err(|error| error.to_string())
        }
    }
}

/// What every handler reads: a snapshot of the registry, updated by [`follow`].
#[derive(Default)]
pub struct RegistryView {
    index: RwLock<Index>,
    caught_up: AtomicBool,
    /// Counts the records applied: what was derived from an older count is stale.
    changes: AtomicU64,
    /// Values derived from the documents (a component's data target), by name, with
    /// the count they were derived at: a request reads one instead of deserializing
    /// the app's documents again.
    derived: Mutex<HashMap<String, (u64, DerivedValue)>>,
}

type DerivedValue = Arc<dyn Any + Send + Sync>;

impl std::fmt::Debug for RegistryView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryView")
            .field("index", &self.index)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

/// Derived values kept at most; past it they are all dropped (and derived again).
const MAX_DERIVED: usize = 10_000;

impl RegistryView {
    /// Applies one record of the topic: a document, or `None` for a tombstone.
    pub fn apply(&self, key: &str, document: Option<Map<String, Value>>) {
        self.index.write().unwrap_or_else(PoisonError::into_inner).apply(key, document);
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// The value named `name` that `derive` makes from the documents: made once per
    /// change of the registry. Failures are not kept.
    pub fn derived<T, E>(
        &self,
        name: String,
        derive: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
    {
        let now = self.changes.load(Ordering::Acquire);
        if let Some((at, value)) =
            self.derived.lock().unwrap_or_else(PoisonError::into_inner).get(&name)
            && *at == now
            && let Ok(value) = Arc::clone(value).downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(derive()?);
        let mut derived = self.derived.lock().unwrap_or_else(PoisonError::into_inner);
        // Derived from documents that changed meanwhile: served once, not kept.
        if self.changes.load(Ordering::Acquire) == now {
            if derived.len() >= MAX_DERIVED {
                derived.clear();
            }
            derived.insert(name, (now, Arc::clone(&value) as DerivedValue));
        }
        Ok(value)
    }

    /// Whether the topic has been read up to its end once since the start.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// The uploader `{uploader}` (dash form, as in the URLs, or the id) of `app`.
    pub fn uploader(&self, app: &str, uploader: &str) -> Option<Arc<UploaderInfo>> {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        index.uploaders.get(&(app.to_owned(), uploader.to_owned())).cloned()
    }

    /// Every uploader, each once, by app then id.
    pub fn uploaders(&self) -> Vec<Arc<UploaderInfo>> {
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Arc<UploaderInfo>> = index
            .uploaders
            .iter()
            .filter(|((_, id), info)| *id == info.uploader_id)
            .map(|(_, info)| info.clone())
            .collect();
        all.sort_by(|a, b| (&a.app_id, &a.uploader_id).cmp(&(&b.app_id, &b.uploader_id)));
        all
    }

    /// The documents of one kind, optionally of one app, in key order.
    pub fn documents(&self, kind: &str, app: Option<&str>) -> Vec<Map<String, Value>> {
        let prefix = match app {
            Some(app) => format!("{kind}/{app}/"),
            None => format!("{kind}/"),
        };
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        index
            .documents
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(_, document)| document.clone())
            .collect()
    }

    /// Whether any document of `app` is registered.
    pub fn has_app(&self, app: &str) -> bool {
        !self.documents("app", Some(app)).is_empty()
    }
}

/// The kinds of registry document, as the `/registry/{kind}` routes name them.
pub fn kind_of_route(route: &str) -> Option<&'static str> {
    match route {
        "apps" => Some("app"),
        "uploaders" => Some("uploader"),
        "reports" => Some("report"),
        "components" => Some("component"),
        "datatables" => Some("datatable"),
        _ => None,
    }
}

/// How long one poll waits: also how soon a stop is noticed.
const POLL: Duration = Duration::from_millis(500);
/// Wait between attempts to find the topic (it is made by the operator).
const RETRY: Duration = Duration::from_secs(2);

/// Follows the registry topic into `view` until `stop` is set. Runs on its own thread:
/// librdkafka's poll blocks.
pub fn follow(kafka: &ClientConfig, topic: &str, view: &RegistryView, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match follow_once(kafka, topic, view, stop) {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, kafka_topic = topic, "reading the registry; retrying");
                std::thread::sleep(RETRY);
            }
        }
    }
}

fn follow_once(
    kafka: &ClientConfig,
    topic: &str,
    view: &RegistryView,
    stop: &AtomicBool,
) -> Result<(), KafkaError> {
    let mut config = kafka.clone();
    config
        // No group is joined and nothing is committed: partitions are assigned by hand.
        .set("group.id", "licenseware-api")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The registry is a few thousand small documents: librdkafka's default pre-fetch
        // queue (64 MiB) would only hold memory for nothing.
        .set("queued.max.messages.kbytes", "2048");
    let consumer: BaseConsumer<Watched> = kafka_client::create(&config)?;
    let partitions = loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let found: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !found.is_empty() {
            break found;
        }
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        tracing::info!(kafka_topic = topic, "the registry topic does not exist yet; waiting");
        std::thread::sleep(RETRY);
    };
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    // Where each partition ended when we started: read up to there, the registry is
    // what the operator had written by then.
    let mut ends: Vec<(i32, i64)> = Vec::with_capacity(partitions.len());
    for partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        if high > low {
            ends.push((*partition, high));
        }
    }
    while !stop.load(Ordering::Acquire) {
        if !view.caught_up() && read_to(&consumer, &ends) {
            view.caught_up.store(true, Ordering::Release);
            tracing::info!(kafka_topic = topic, "registry read to its end");
        }
        let Some(received) = consumer.poll(POLL) else { continue };
        match received {
            Ok(message) => {
                let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                    continue;
                };
                match read_record(key, message.payload()) {
                    Ok(document) => view.apply(key, document),
                    Err(error) => tracing::warn!(key, error, "registry record not served"),
                }
            }
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                return Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ));
            }
            Err(error) => tracing::debug!(%error, "registry consumer"),
        }
    }
    Ok(())
}

/// Whether the consumer's position has reached each partition's end as it was at the
/// start (the position moves past compacted gaps and control records too).
fn read_to(consumer: &BaseConsumer<Watched>, ends: &[(i32, i64)]) -> bool {
    let Ok(positions) = consumer.position() else { return false };
    ends.iter().all(|(partition, end)| {
        positions.elements().iter().any(|element| {
            element.partition() == *partition
                && matches!(element.offset(), Offset::Offset(position) if position >= *end)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_derived_value_is_made_once_per_change_and_failures_are_not_kept() {
        let view = RegistryView::default();
        let made = std::cell::Cell::new(0);
        let derive = || {
            made.set(made.get() + 1);
            Ok::<_, ()>(view.documents("report", Some("a")).len())
        };
        assert_eq!(*view.derived("n".into(), derive).unwrap(), 0);
        assert_eq!(*view.derived("n".into(), derive).unwrap(), 0);
        assert_eq!(made.get(), 1, "kept");
        view.apply("report/a/r", Some(json!({"kind": "report"}).as_object().unwrap().clone()));
        assert_eq!(*view.derived("n".into(), derive).unwrap(), 1, "derived again after a change");
        assert_eq!(made.get(), 2);
        assert_eq!(view.derived::<usize, _>("e".into(), || Err("no")), Err("no"));
        assert_eq!(*view.derived("e".into(), || Ok::<_, ()>(7_usize)).unwrap(), 7);
        // Another type under a known name is derived, not mistaken for the kept one.
        assert_eq!(*view.derived("n".into(), || Ok::<_, ()>("text")).unwrap(), "text");
    }

    fn uploader_document(app: &str, id: &str) -> Map<String, Value> {
        let value = json!({
            "_id": format!("uploader/{app}/{id}"), "kind": "uploader", "app_id": app,
            "uploader_id": id,
            "worker": {
                "appId": app, "uploaderId": id, "uploader": format!("ns/{id}"),
                "eventsTopic": format!("{app}.{id}.events"), "dlqTopic": "d",
                "consumerGroup": "g", "maxAttempts": 3, "uploadRoot": "/uploads",
                "spec": {"appId": app, "name": "RVTools", "acceptedFileTypes": [".xlsx"]},
            },
        });
        value.as_object().unwrap().clone()
    }

    #[test]
    fn uploaders_are_found_by_dash_form_and_id_and_forgotten_on_tombstones() {
        let view = RegistryView::default();
        view.apply("uploader/app-a/rv_tools", Some(uploader_document("app-a", "rv_tools")));
        view.apply("uploader/app-b/other", Some(uploader_document("app-b", "other")));
        let info = view.uploader("app-a", "rv-tools").unwrap();
        assert_eq!(info.worker.events_topic, "app-a.rv_tools.events");
        assert!(view.uploader("app-a", "rv_tools").is_some());
        assert!(view.uploader("app-b", "rv-tools").is_none(), "apps are apart");
        assert_eq!(view.uploaders().len(), 2);
        assert_eq!(view.documents("uploader", Some("app-a")).len(), 1);
        assert_eq!(view.documents("uploader", None).len(), 2);
        view.apply("uploader/app-a/rv_tools", None);
        assert!(view.uploader("app-a", "rv-tools").is_none());
        assert_eq!(view.uploaders().len(), 1);
    }

    #[test]
    fn a_prefix_of_an_app_id_is_not_that_app() {
        let view = RegistryView::default();
        view.apply("uploader/app-ab/x", Some(uploader_document("app-ab", "x")));
        assert!(view.documents("uploader", Some("app-a")).is_empty());
    }
}
