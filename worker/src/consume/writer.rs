//! From the processor's blocking thread to MongoDB: a bounded channel (backpressure: a
//! fast reader waits for the database) and an async writer that inserts batches.

use std::collections::{BTreeMap, HashSet};

use mongodb::{
    Database,
    bson::{Bson, DateTime, Document, doc},
    error::{ErrorKind, InsertManyError},
};
use tokio::sync::mpsc;

use super::{
    history::EventIds,
    processor::{DocumentSink, SinkClosed},
    store::StoreError,
};

/// Documents queued between the processor and the writer.
pub const CHANNEL_CAPACITY: usize = 2048;
/// Documents per insert_many.
pub const BATCH_SIZE: usize = 500;
/// MongoDB's duplicate key error.
const DUPLICATE_KEY: i32 = 11000;

/// Fields the runtime owns on every document, in the order they are written.
pub const STAMPED_FIELDS: [&str; 7] =
    ["_id", "tenant_id", "app_id", "uploader_id", "event_id", "source_file", "updated_at"];

#[derive(Debug)]
pub struct Emitted {
    pub collection: String,
    pub document: Document,
}

/// Puts the runtime's fields first: the event's ids always (a processor cannot write
/// for another tenant or event: compensation and tenant isolation rely on them), and
/// `_id`, `source_file` and `updated_at` when the processor left them out.
///
/// `updated_at` is a BSON date, as the default processor writes it: a custom
/// processor's RFC 3339 text becomes a date too, so queries and sorts on it see one
/// type whichever processor wrote the document.
pub fn stamp(
    mut document: Document,
    ids: &EventIds,
    source_file: &str,
    fallback_id: impl FnOnce() -> String,
    updated_at: DateTime,
) -> Document {
    let id = document.remove("_id").unwrap_or_else(|| Bson::String(fallback_id()));
    let source = document.remove("source_file").unwrap_or_else(|| source_file.into());
    let updated = match document.remove("updated_at") {
        None => Bson::DateTime(updated_at),
        Some(Bson::String(text)) => {
            DateTime::parse_rfc3339_str(&text).map_or(Bson::String(text), Bson::DateTime)
        }
        Some(other) => other,
    };
    let mut stamped = doc! {
        "_id": id,
        "tenant_id": &ids.tenant_id,
        "app_id": &ids.app_id,
        "uploader_id": &ids.uploader_id,
        "event_id": &ids.event_id,
        "source_file": source,
        "updated_at": updated,
    };
    for (field, value) in document {
        if !STAMPED_FIELDS.contains(&field.as_str()) {
            stamped.insert(field, value);
        }
    }
    stamped
}

/// The processor's end of the channel, for one file.
#[derive(Debug)]
pub struct ChannelSink {
    pub tx: mpsc::Sender<Emitted>,
    pub ids: EventIds,
    pub source_file: String,
    pub file_index: usize,
    pub updated_at: DateTime,
    pub emitted: u64,
}

impl DocumentSink for ChannelSink {
    fn emit(&mut self, collection: &str, document: Document) -> Result<(), SinkClosed> {
        let (event_id, file_index, n) = (&self.ids.event_id, self.file_index, self.emitted);
        // Deterministic: a redelivered event produces the same ids for the same rows.
        let fallback = || format!("{event_id}:{file_index}:{n}");
        let document = stamp(document, &self.ids, &self.source_file, fallback, self.updated_at);
        self.emitted += 1;
        self.tx
            .blocking_send(Emitted { collection: collection.to_owned(), document })
            .map_err(|_| SinkClosed)
    }
}

/// What the writer stored for one file.
#[derive(Debug, Default)]
pub struct Written {
    /// Documents per collection.
    pub documents: BTreeMap<String, u64>,
    /// `_key`s per collection, each once: what the event supersedes on success.
    pub keys: BTreeMap<String, Vec<Bson>>,
    seen: HashSet<(String, String)>,
}

impl Written {
    pub fn total(&self) -> u64 {
        self.documents.values().sum()
    }

    fn note(&mut self, collection: &str, document: &Document) {
        *self.documents.entry(collection.to_owned()).or_default() += 1;
        if let Some(key) = document.get("_key") {
            // Bson is not Hash; its extended JSON text identifies the value.
            if self.seen.insert((collection.to_owned(), key.to_string())) {
                self.keys.entry(collection.to_owned()).or_default().push(key.clone());
            }
        }
    }
}

/// Inserts what arrives on `rx` until the processor is done (the channel closes).
/// Dropping `rx` on error makes the processor's next `emit` fail.
pub async fn write_all(
    db: Database,
    mut rx: mpsc::Receiver<Emitted>,
    ids: EventIds,
) -> Result<Written, StoreError> {
    let mut written = Written::default();
    let mut batches: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    while let Some(Emitted { collection, document }) = rx.recv().await {
        written.note(&collection, &document);
        let batch = batches.entry(collection.clone()).or_default();
        batch.push(document);
        if batch.len() >= BATCH_SIZE {
            let full = std::mem::take(batch);
            insert_batch(&db, &collection, full, &ids).await?;
        }
    }
    for (collection, batch) in batches {
        if !batch.is_empty() {
            insert_batch(&db, &collection, batch, &ids).await?;
        }
    }
    Ok(written)
}

/// The documents an unordered insert_many left out because their `_id` exists, if that
/// is all that failed.
pub(crate) fn duplicate_indexes(error: &mongodb::error::Error) -> Option<Vec<usize>> {
    match error.kind.as_ref() {
        ErrorKind::InsertMany(InsertManyError {
            write_errors: Some(errors),
            write_concern_error: None,
            ..
        }) if errors.iter().all(|e| e.code == DUPLICATE_KEY) => {
            Some(errors.iter().map(|e| e.index).collect())
        }
        _ => None,
    }
}

/// One unordered insert_many; documents whose `_id` exists already are replaced
/// (a later row with the same key wins), see [`replace_duplicate`].
async fn insert_batch(
    db: &Database,
    collection: &str,
    batch: Vec<Document>,
    ids: &EventIds,
) -> Result<(), StoreError> {
    let target = db.collection::<Document>(collection);
    let error = match target.insert_many(&batch).ordered(false).await {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    let Some(duplicates) = duplicate_indexes(&error) else { return Err(error.into()) };
    for index in duplicates {
        if let Some(document) = batch.get(index) {
            replace_duplicate(&target, document, ids).await?;
        }
    }
    Ok(())
}

/// A duplicate `_id`. With a `_key`, the document replaces the document of that id of
/// the same tenant, app and uploader (whatever its event: keyed documents supersede).
/// Without one, only a document of this same event may be replaced (a processor that
/// emitted an id twice); an id taken by another event, uploader, app or tenant is a
/// conflict, never overwritten.
async fn replace_duplicate(
    target: &mongodb::Collection<Document>,
    document: &Document,
    ids: &EventIds,
) -> Result<(), StoreError> {
    let id = document.get("_id").cloned().unwrap_or(Bson::Null);
    let keyed = document.contains_key("_key");
    let filter = if keyed {
        doc! {
            "_id": id.clone(),
            "tenant_id": &ids.tenant_id,
            "app_id": &ids.app_id,
            "uploader_id": &ids.uploader_id,
        }
    } else {
        ids.filter().into_iter().chain([("_id".to_owned(), id.clone())]).collect()
    };
    let result = target.replace_one(filter, document).upsert(keyed).await;
    let conflict =
        || StoreError::Conflict { collection: target.name().to_owned(), id: id.to_string() };
    match result {
        Ok(outcome) if outcome.matched_count > 0 || outcome.upserted_id.is_some() => Ok(()),
        Ok(_) => Err(conflict()),
        // The upsert of a keyed document whose id belongs to another tenant.
        Err(error) if is_duplicate(&error) => Err(conflict()),
        Err(error) => Err(error.into()),
    }
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> EventIds {
        EventIds {
            tenant_id: "t".into(),
            event_id: "e".into(),
            app_id: "a".into(),
            uploader_id: "u".into(),
        }
    }

    #[test]
    fn stamped_fields_come_first_and_the_ids_cannot_be_forged() {
        let document = doc! { "name": "vm1", "tenant_id": "someone-else", "event_id": "x" };
        let stamped = stamp(document, &ids(), "a.csv", || "e:0:0".into(), DateTime::now());
        let fields: Vec<&str> = stamped.keys().map(String::as_str).collect();
        assert_eq!(fields, [&STAMPED_FIELDS[..], &["name"]].concat());
        assert_eq!(stamped.get_str("tenant_id").unwrap(), "t");
        assert_eq!(stamped.get_str("event_id").unwrap(), "e");
        assert_eq!(stamped.get_str("_id").unwrap(), "e:0:0");
        assert_eq!(stamped.get_str("source_file").unwrap(), "a.csv");
    }

    #[test]
    fn the_processors_id_source_and_time_are_kept() {
        let then = DateTime::from_millis(1_598_090_416_000);
        let document = doc! { "_id": "row-1", "source_file": "x.xlsx", "updated_at": then };
        let stamped = stamp(document, &ids(), "a.csv", || unreachable!(), DateTime::now());
        assert_eq!(stamped.get_str("_id").unwrap(), "row-1");
        assert_eq!(stamped.get_str("source_file").unwrap(), "x.xlsx");
        assert_eq!(stamped.get_datetime("updated_at").unwrap(), &then);
    }

    /// The default processor writes `updated_at` as a date: a custom one's documents get
    /// the same type, stamped or given as RFC 3339 text.
    #[test]
    fn updated_at_is_a_date_whichever_processor_wrote_it() {
        let now = DateTime::from_millis(1_700_000_000_000);
        let stamped = stamp(doc! {"n": 1}, &ids(), "a.csv", || "e:0:0".into(), now);
        assert_eq!(stamped.get_datetime("updated_at").unwrap(), &now);
        let text = doc! {"updated_at": "2020-08-22T10:00:16Z"};
        let stamped = stamp(text, &ids(), "a.csv", || "e:0:0".into(), now);
        let then = DateTime::from_millis(1_598_090_416_000);
        assert_eq!(stamped.get_datetime("updated_at").unwrap(), &then);
    }

    #[test]
    fn the_sink_numbers_documents_and_fails_once_the_writer_is_gone() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut sink = ChannelSink {
            tx,
            ids: ids(),
            source_file: "a.csv".into(),
            file_index: 2,
            updated_at: DateTime::now(),
            emitted: 0,
        };
        sink.emit("Data", doc! {"n": 1}).unwrap();
        sink.emit("Data", doc! {"n": 2}).unwrap();
        let first = rx.blocking_recv().unwrap();
        let second = rx.blocking_recv().unwrap();
        assert_eq!(first.document.get_str("_id").unwrap(), "e:2:0");
        assert_eq!(second.document.get_str("_id").unwrap(), "e:2:1");
        drop(rx);
        assert_eq!(sink.emit("Data", doc! {}), Err(SinkClosed));
    }

    #[test]
    fn keys_are_collected_once_per_collection() {
        let mut written = Written::default();
        for key in ["k1", "k2", "k1"] {
            written.note("Data", &doc! {"_key": key});
        }
        written.note("Other", &doc! {"_key": "k1"});
        written.note("Data", &doc! {"no": "key"});
        assert_eq!(written.total(), 5);
        assert_eq!(written.keys["Data"], [Bson::from("k1"), Bson::from("k2")]);
        assert_eq!(written.keys["Other"], [Bson::from("k1")]);
    }
}
