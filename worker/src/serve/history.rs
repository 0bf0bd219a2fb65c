//! ProcessingHistory from the API's side: the validation records it writes (SDK §6.2:
//! `filename_validation` by `/validation`, `filecontent_validation` and
//! `files_uploaded` by `/files`) and the `/history` routes that read what the worker
//! adds. `/validation` is the hot path: its records are written in batches by one task,
//! in the order they were sent, and flushed on a graceful stop.
//!
//! An event's document has one `_id` whoever writes it first: `/validation` makes it
//! and hands it on in the upload ticket, and `/files` upserts on it. So a `/files` at
//! another replica, while this one still holds the record in a batch, makes the
//! document under that id, and the record, finding it there, is set on it (an upsert
//! on the event's fields alone made a second document for the event). For the same
//! reason `/files` need not wait for the batches before it here: its upsert goes at
//! once, one round trip.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::{
    Collection, Database,
    bson::{self, Bson, Document, RawDocumentBuf, doc, oid::ObjectId},
    options::UpdateOptions,
};
use serde::Serialize;
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};

use crate::consume::{clock, history::COLLECTION, writer::duplicate_indexes};
use crate::validation::ValidationResponse;

/// Records waiting at most this long before they are written.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// And at most this many in one write. Batches of 500 are about 8% faster straight
/// into the stack's FerretDB, but measured no faster through the API, and every record
/// gathered or in flight is the API's memory.
pub const BATCH: usize = 250;
/// Batches written at once: the next one is gathered and sent while the store works
/// on the last (the store's own rate is `/validation`'s limit).
pub const IN_FLIGHT: usize = 2;
/// Pending records before senders wait (back pressure). Every record queued, gathered
/// or in flight is the API's memory (over 1 KiB with the driver's copy): under `make
/// bench-api`'s /validation load, which the store bounds, a queue of 4,000 and batches
/// of 500 held the API at 35 MiB, this queue and batch at 29, at the same rate (the
/// senders wait on the store either way).
const QUEUE: usize = 500;

/// Who a record is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub tenant_id: &'a str,
    pub app_id: &'a str,
    pub uploader_id: &'a str,
    pub event_id: &'a str,
}

/// Inserts travel encoded: a few hundred bytes each, where a `Document` is a tree of
/// allocations to build, keep and free.
enum Write {
    Insert(RawDocumentBuf),
    Upsert { filter: Document, set: Document, done: Done },
}

type Done = oneshot::Sender<mongodb::error::Result<()>>;

/// The handle the handlers write through.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    sender: mpsc::Sender<Write>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Insert(_) => "Insert",
            Self::Upsert { .. } => "Upsert",
        })
    }
}

fn entries(validation: &[ValidationResponse]) -> Bson {
    bson::to_bson(validation).unwrap_or(Bson::Array(Vec::new()))
}

/// `/validation`'s record, the SDK's fields; `_id` made here so the driver need not
/// rebuild the document to prepend one.
#[derive(Serialize)]
struct FilenameValidation<'a> {
    _id: ObjectId,
    tenant_id: &'a str,
    event_id: &'a str,
    app_id: &'a str,
    uploader_id: &'a str,
    filename_validation: &'a [ValidationResponse],
    filename_validation_updated_at: String,
}

fn encode(record: &impl Serialize) -> Option<RawDocumentBuf> {
    let bytes = bson::to_vec(record).ok()?;
    RawDocumentBuf::from_bytes(bytes).ok()
}

impl HistoryWriter {
    /// The writer and its task; the task ends once every handle is dropped and the
    /// records sent before are written.
    pub fn start(database: &Database) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let collection = database.collection::<RawDocumentBuf>(COLLECTION);
        (Self { sender }, tokio::spawn(write_all(collection, receiver)))
    }

    /// `/validation`'s record: a new document per event, as the SDK's insert_one, under
    /// `id` (the ticket's [`crate::serve::tickets::Ticket::history_id`]).
    pub async fn filename_validation(
        &self,
        subject: &Subject<'_>,
        validation: &[ValidationResponse],
        id: ObjectId,
    ) {
        let record = FilenameValidation {
            _id: id,
            tenant_id: subject.tenant_id,
            event_id: subject.event_id,
            app_id: subject.app_id,
            uploader_id: subject.uploader_id,
            filename_validation: validation,
            filename_validation_updated_at: clock::now_iso(),
        };
        let Some(document) = encode(&record) else {
            tracing::error!(event_id = subject.event_id, "history record not encodable; lost");
            return;
        };
        if self.sender.send(Write::Insert(document)).await.is_err() {
            tracing::error!(event_id = subject.event_id, "history writer stopped; record lost");
        }
    }

    /// A record of its own (e.g. a data-table edit), written with the next batch.
    pub async fn record(&self, document: Document) {
        let Ok(document) = RawDocumentBuf::from_document(&document) else {
            tracing::error!("history record not encodable; lost");
            return;
        };
        if self.sender.send(Write::Insert(document)).await.is_err() {
            tracing::error!("history writer stopped; record lost");
        }
    }

    /// `/files`' record, on the event's document; returns once it is written.
    /// With `id` (the ticket's, or a new one for an event without a ticket), the
    /// event's document is that one, made here if its `/validation` record is not
    /// written yet; without (a ticket of an earlier version), the records sent before
    /// are written first.
    pub async fn filecontent_validation(
        &self,
        subject: &Subject<'_>,
        validation: &[ValidationResponse],
        files_uploaded: &[String],
        id: Option<ObjectId>,
    ) -> mongodb::error::Result<()> {
        let (done, written) = oneshot::channel();
        let mut filter = doc! {"tenant_id": subject.tenant_id, "event_id": subject.event_id};
        if let Some(id) = id {
            filter.insert("_id", id);
        }
        let write = Write::Upsert {
            filter,
            set: doc! {
                "app_id": subject.app_id, "uploader_id": subject.uploader_id,
                "filecontent_validation": entries(validation),
                "files_uploaded": files_uploaded,
                "filecontent_validation_updated_at": clock::now_iso(),
            },
            done,
        };
        let stopped = || mongodb::error::Error::custom("the history writer stopped");
        self.sender.send(write).await.map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

async fn write_all(collection: Collection<RawDocumentBuf>, mut receiver: mpsc::Receiver<Write>) {
    let mut inserts: Vec<RawDocumentBuf> = Vec::new();
    let mut writing = JoinSet::new();
    let mut upserting = JoinSet::new();
    // When the oldest pending insert must be sent, whatever keeps coming.
    let mut send_by = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            // A finished write frees its place; nothing else to do with it.
            Some(_) = writing.join_next(), if !writing.is_empty() => continue,
            Some(_) = upserting.join_next(), if !upserting.is_empty() => continue,
            () = tokio::time::sleep_until(send_by), if !inserts.is_empty() => {
                send_batch(&collection, &mut inserts, &mut writing).await;
                continue;
            }
            next = receiver.recv() => next,
        };
        if inserts.is_empty() {
            send_by = tokio::time::Instant::now() + FLUSH_EVERY;
        }
        match next {
            None => {
                send_batch(&collection, &mut inserts, &mut writing).await;
                while writing.join_next().await.is_some() {}
                while upserting.join_next().await.is_some() {}
                return;
            }
            Some(Write::Insert(document)) => {
                inserts.push(document);
                if inserts.len() >= BATCH {
                    send_batch(&collection, &mut inserts, &mut writing).await;
                }
            }
            Some(Write::Upsert { filter, set, done }) => {
                // On the document's own id, the upsert and a record of the same event
                // still in a batch may land in either order (see the module's doc).
                // Without one (a ticket of an earlier version), every record sent
                // before is written first.
                if !filter.contains_key("_id") {
                    send_batch(&collection, &mut inserts, &mut writing).await;
                    while writing.join_next().await.is_some() {}
                }
                upserting.spawn(upsert(collection.clone_with_type(), filter, set, done));
            }
        }
    }
}

async fn upsert(collection: Collection<Document>, filter: Document, set: Document, done: Done) {
    let options = UpdateOptions::builder().upsert(true).build();
    let result =
        collection.update_one(filter, doc! {"$set": set}).with_options(options).await.map(drop);
    let _ = done.send(result);
}

/// Starts writing the pending inserts, once fewer than [`IN_FLIGHT`] batches are.
async fn send_batch(
    collection: &Collection<RawDocumentBuf>,
    inserts: &mut Vec<RawDocumentBuf>,
    writing: &mut JoinSet<()>,
) {
    if inserts.is_empty() {
        return;
    }
    while writing.len() >= IN_FLIGHT {
        writing.join_next().await;
    }
    writing.spawn(flush(collection.clone(), std::mem::take(inserts)));
}

/// Writes one batch, retrying a failed write a few times: history is what a user reads
/// to know what happened to an upload.
async fn flush(collection: Collection<RawDocumentBuf>, inserts: Vec<RawDocumentBuf>) {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=5 {
        let error = match collection.insert_many(inserts.iter()).ordered(false).await {
            Ok(_) => return,
            Err(error) => error,
        };
        match duplicate_indexes(&error) {
            // The event's document is there already: made by a `/files` that came
            // first, or by an earlier attempt whose answer was lost.
            Some(indexes) => {
                if set_on_existing(&collection, &inserts, &indexes).await {
                    return;
                }
            }
            None => tracing::warn!(%error, attempt, records = inserts.len(), "writing history"),
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    tracing::error!(records = inserts.len(), "history records dropped after 5 attempts");
}

/// Sets each of these records' fields on the document of its `_id`; whether all were.
async fn set_on_existing(
    collection: &Collection<RawDocumentBuf>,
    inserts: &[RawDocumentBuf],
    indexes: &[usize],
) -> bool {
    let documents = collection.clone_with_type::<Document>();
    let mut all = true;
    for record in indexes.iter().filter_map(|&index| inserts.get(index)) {
        // A record this writer encoded, with the `_id` it was refused on: anything else
        // is not written, and said so.
        let Some((fields, id)) = record
            .to_document()
            .ok()
            .and_then(|mut fields| fields.remove("_id").map(|id| (fields, id)))
        else {
            tracing::warn!("a history record refused on its _id could not be read back");
            all = false;
            continue;
        };
        // Never another tenant's or event's document, whatever holds that id.
        let mut filter = doc! {"_id": id};
        for key in ["tenant_id", "event_id"] {
            if let Some(value) = fields.get(key) {
                filter.insert(key, value.clone());
            }
        }
        if let Err(error) = documents.update_one(filter, doc! {"$set": fields}).await {
            tracing::warn!(%error, "setting a history record on its event's document");
            all = false;
        }
    }
    all
}

/// What `/history` may be filtered by, besides the caller's tenant and the app.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HistoryQuery {
    pub uploader_id: Option<String>,
    pub event_id: Option<String>,
    pub limit: Option<u32>,
    pub skip: Option<u64>,
}

pub const DEFAULT_LIMIT: u32 = 50;
/// Paging further than this is refused (the server's skip is a signed 64-bit number).
pub const MAX_SKIP: u64 = 1_000_000_000;
pub const MAX_LIMIT: u32 = 500;

/// The filter of a history read: the tenant and app always, whatever the query says.
pub fn filter(tenant_id: &str, app_id: &str, query: &HistoryQuery) -> Document {
    let mut filter = doc! {"tenant_id": tenant_id, "app_id": app_id};
    if let Some(uploader) = &query.uploader_id {
        filter.insert("uploader_id", uploader.as_str());
    }
    if let Some(event) = &query.event_id {
        filter.insert("event_id", event.as_str());
    }
    filter
}

/// A stored document as the SDK returned it: relaxed JSON, ObjectIds as hex strings.
pub fn to_json(document: Document) -> Value {
    let mut value = Bson::Document(document).into_relaxed_extjson();
    if let Some(id) = value.get_mut("_id")
        && let Some(hex) = id.get("$oid").and_then(Value::as_str).map(str::to_owned)
    {
        *id = Value::String(hex);
    }
    value
}

/// Newest first.
pub async fn find(
    database: &Database,
    filter: Document,
    limit: u32,
    skip: u64,
) -> mongodb::error::Result<Vec<Value>> {
    let documents: Vec<Document> = database
        .collection::<Document>(COLLECTION)
        .find(filter)
        .sort(doc! {"_id": -1})
        .skip(skip)
        .limit(i64::from(limit))
        .await?
        .try_collect()
        .await?;
    Ok(documents.into_iter().map(to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_and_app_are_always_in_the_filter() {
        let query = HistoryQuery {
            uploader_id: Some("rv_tools".into()),
            event_id: Some("e".into()),
            ..HistoryQuery::default()
        };
        let filter = filter("t1", "app", &query);
        assert_eq!(filter.get_str("tenant_id").unwrap(), "t1");
        assert_eq!(filter.get_str("app_id").unwrap(), "app");
        assert_eq!(filter.get_str("uploader_id").unwrap(), "rv_tools");
        assert_eq!(filter.get_str("event_id").unwrap(), "e");
    }

    #[test]
    fn object_ids_become_hex_strings() {
        let id = bson::oid::ObjectId::new();
        let value = to_json(doc! {"_id": id, "n": 1});
        assert_eq!(value["_id"], id.to_hex());
        assert_eq!(value["n"], 1);
    }
}
