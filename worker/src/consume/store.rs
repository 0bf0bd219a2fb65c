//! The MongoDB side of the saga. FerretDB v1 has no transactions, so an event's writes
//! are made undoable instead: every document carries the event's `tenant_id` and
//! `event_id`, compensation deletes by them, and what an event replaces or clears is
//! only removed once its own documents are in.

use mongodb::{
    Database, IndexModel,
    bson::{Bson, Document, doc},
    error::ErrorKind,
    options::ReturnDocument,
};

use super::{
    delivery,
    history::{self, EventIds, StepRecord},
};

/// How many `_key`s one supersede `$in` carries.
const KEYS_PER_DELETE: usize = 1000;

/// A MongoDB failure, split by what retrying can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server is unreachable or restarting: not the event's fault, so the runtime
    /// waits and retries without counting an attempt.
    #[error("MongoDB is unavailable: {0}")]
    Unavailable(#[source] mongodb::error::Error),
    /// The server refused the operation: retrying the event may not help.
    #[error("MongoDB refused the write: {0}")]
    Refused(#[source] mongodb::error::Error),
    /// A document `_id` without `_key` exists already for another event or tenant.
    #[error("document {id} of collection {collection} already exists for another event")]
    Conflict { collection: String, id: String },
    #[error("cannot convert a history record: {0}")]
    Record(#[from] mongodb::bson::ser::Error),
}

impl StoreError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "MongoUnavailable",
            Self::Refused(_) => "MongoRefused",
            Self::Conflict { .. } => "DuplicateDocument",
            Self::Record(_) => "InvalidHistoryRecord",
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Server error codes that mean "try again later": shutting down, stepping down,
/// not primary, interrupted.
const TRANSIENT_CODES: [i32; 9] = [6, 7, 89, 91, 189, 9001, 10107, 11600, 11602];

impl From<mongodb::error::Error> for StoreError {
    fn from(error: mongodb::error::Error) -> Self {
        let transient = match error.kind.as_ref() {
            ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => true,
            ErrorKind::Command(command) => TRANSIENT_CODES.contains(&command.code),
            _ => false,
        };
        if transient || error.contains_label("RetryableWriteError") {
            Self::Unavailable(error)
        } else {
            Self::Refused(error)
        }
    }
}

/// The event's documents in a collection.
fn of_event(ids: &EventIds) -> Document {
    ids.filter()
}

/// Deletes every document of the event in `collections` (compensation); returns how
/// many were deleted.
pub async fn delete_event_documents(
    db: &Database,
    collections: &[String],
    ids: &EventIds,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for collection in collections {
        let result = db.collection::<Document>(collection).delete_many(of_event(ids)).await?;
        deleted += result.deleted_count;
    }
    Ok(deleted)
}

/// The documents that the event's keyed documents supersede: same tenant, app,
/// uploader and `_key`, another event. Another app's documents in a shared collection
/// are never touched, whatever their keys.
pub fn superseded_filter(ids: &EventIds, keys: &[Bson]) -> Document {
    doc! {
        "tenant_id": &ids.tenant_id,
        "app_id": &ids.app_id,
        "uploader_id": &ids.uploader_id,
        "event_id": { "$ne": &ids.event_id },
        "_key": { "$in": keys.to_vec() },
    }
}

/// Deletes the documents superseded by the event's keys, per collection.
pub async fn delete_superseded(
    db: &Database,
    keys: &[(String, Vec<Bson>)],
    ids: &EventIds,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for (collection, keys) in keys {
        for chunk in keys.chunks(KEYS_PER_DELETE) {
            let filter = superseded_filter(ids, chunk);
            deleted +=
                db.collection::<Document>(collection).delete_many(filter).await?.deleted_count;
        }
    }
    Ok(deleted)
}

/// clear_data: the documents of other events of the same tenant, app and uploader in
/// `collections`. The SDK deleted all of the tenant's documents, whatever the app: in a
/// collection several apps share (`Data`), one app's upload erased the others' data.
pub fn cleared_filter(ids: &EventIds) -> Document {
    doc! {
        "tenant_id": &ids.tenant_id,
        "app_id": &ids.app_id,
        "uploader_id": &ids.uploader_id,
        "event_id": { "$ne": &ids.event_id },
    }
}

pub async fn clear_other_events(
    db: &Database,
    collections: &[String],
    ids: &EventIds,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for collection in collections {
        let filter = cleared_filter(ids);
        deleted += db.collection::<Document>(collection).delete_many(filter).await?.deleted_count;
    }
    Ok(deleted)
}

fn history(db: &Database) -> mongodb::Collection<Document> {
    db.collection(history::COLLECTION)
}

pub async fn history_upsert(
    db: &Database,
    ids: &EventIds,
    update: Document,
) -> Result<(), StoreError> {
    history(db).update_one(ids.filter(), update).upsert(true).await?;
    Ok(())
}

/// What the history said when a processing run started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStart {
    /// An earlier run of the event started (a crash or a redelivery): only then can
    /// documents of the event be left over.
    pub earlier_run: bool,
    /// The delivery count stored by earlier runs.
    pub delivery: Option<delivery::Stored>,
}

/// Marks the start of a processing run.
pub async fn history_start(
    db: &Database,
    ids: &EventIds,
    update: Document,
) -> Result<RunStart, StoreError> {
    let before = history(db)
        .find_one_and_update(ids.filter(), update)
        .upsert(true)
        .return_document(ReturnDocument::Before)
        .await?;
    Ok(before.map_or_else(RunStart::default, |document| RunStart {
        earlier_run: document.contains_key(history::RUN_MARKER),
        delivery: delivery::Stored::in_history(&document),
    }))
}

/// Counts one more attempt of the message `source` before it starts; returns the
/// attempt's number (1 for a message never attempted).
pub async fn begin_attempt(db: &Database, ids: &EventIds, source: &str) -> Result<u32, StoreError> {
    let counted = history(db)
        .find_one_and_update(delivery::filter_for(ids, source), delivery::increment())
        .return_document(ReturnDocument::After)
        .await?;
    if let Some(stored) = counted.as_ref().and_then(delivery::Stored::in_history) {
        return Ok(stored.attempts);
    }
    history(db).update_one(ids.filter(), delivery::first_attempt(ids, source)).upsert(true).await?;
    Ok(1)
}

/// Uncounts the attempt in progress of the message `source` (see [`delivery::refund`]).
pub async fn refund_attempt(db: &Database, ids: &EventIds, source: &str) -> Result<(), StoreError> {
    let mut filter = delivery::filter_for(ids, source);
    filter.insert(format!("{}.attempts", delivery::FIELD), doc! { "$gt": 0_i64 });
    history(db).update_one(filter, delivery::refund()).await?;
    Ok(())
}

pub async fn history_append(
    db: &Database,
    ids: &EventIds,
    record: &StepRecord,
) -> Result<(), StoreError> {
    history_upsert(db, ids, history::append_update(ids, record)?).await
}

/// Indexes that keep compensation and history upserts from scanning whole collections.
/// Best effort: a server that refuses them is only slower.
pub async fn ensure_indexes(db: &Database, collections: &[String]) -> Result<(), StoreError> {
    let by_event = || IndexModel::builder().keys(doc! { "tenant_id": 1, "event_id": 1 }).build();
    history(db).create_index(by_event()).await?;
    for collection in collections {
        db.collection::<Document>(collection).create_index(by_event()).await?;
    }
    Ok(())
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
    fn filters_never_reach_other_tenants_apps_or_uploaders() {
        let superseded = superseded_filter(&ids(), &[Bson::from("k1")]);
        assert_eq!(
            superseded,
            doc! {"tenant_id": "t", "app_id": "a", "uploader_id": "u", "event_id": {"$ne": "e"},
            "_key": {"$in": ["k1"]}}
        );
        assert_eq!(
            cleared_filter(&ids()),
            doc! {"tenant_id": "t", "app_id": "a", "uploader_id": "u", "event_id": {"$ne": "e"}}
        );
        assert_eq!(of_event(&ids()), doc! {"tenant_id": "t", "event_id": "e"});
    }

    #[test]
    fn unreachable_servers_are_told_from_refusals() {
        let io = mongodb::error::Error::from(std::io::Error::other("connection refused"));
        assert!(StoreError::from(io).is_unavailable());
        let refused = mongodb::error::Error::custom("bad document");
        let error = StoreError::from(refused);
        assert!(!error.is_unavailable());
        assert_eq!(error.reason(), "MongoRefused");
    }
}
