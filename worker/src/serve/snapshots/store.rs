//! The `ReportSnapshots` collection (the SDK's name). Two kinds of documents, told
//! apart by `kind`:
//! - `report`: one per version, the claim on the version id and the snapshot's
//!   metadata: the report's metadata as it was (kept as JSON text, so nothing in it
//!   is read as a MongoDB operator or field path), when, and per component its row
//!   count, whether it was truncated at [`ROW_CAP`] and the filters it took;
//! - `row`: one per component row, the row's own fields nested under `row`.
//!
//! Every query starts with `{tenant_id, app_id}` ([`Scope`]), so no parameter can
//! reach another tenant's or app's snapshots. The unique index on
//! `{tenant_id, app_id, version, component_id, row_index}` makes a version id unique
//! per tenant and app (the `report` document has a null component and row index),
//! which makes the component routes unambiguous and lets a colliding random id be
//! retried; it also serves every query here (they all begin with its prefix).

use futures::TryStreamExt;
use mongodb::{
    Collection, Database, IndexModel,
    bson::{self, DateTime, Document, doc, oid::ObjectId},
    error::{Error as MongoError, ErrorKind, WriteFailure},
    options::{FindOneAndUpdateOptions, IndexOptions, ReturnDocument},
};
use serde::{Deserialize, Serialize};

use super::super::{error::ApiError, reports};

pub const COLLECTION: &str = "ReportSnapshots";
/// Rows kept per component and snapshot by default (`--snapshot-row-cap`); a
/// component with more is kept truncated and says so in the snapshot's metadata
/// (`snapshot_truncated`), never silently.
pub const ROW_CAP: u64 = 50_000;
/// A snapshot being written: listed and read only once `complete`.
pub const CREATING: &str = "creating";
pub const COMPLETE: &str = "complete";
const DUPLICATE_KEY: i32 = 11_000;

/// The tenant and app every query is scoped to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub app: &'a str,
}

impl Scope<'_> {
    /// The first keys of every filter: the tenant's and the app's.
    pub fn filter(&self, more: Document) -> Document {
        let mut filter = doc! {"tenant_id": self.tenant, "app_id": self.app};
        filter.extend(more);
        filter
    }
}

/// A component of a snapshot, as its `report` document records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotComponent {
    pub component_id: String,
    /// The dash form, which the routes take.
    pub component_key: String,
    /// The app whose data it read (a connected app's component reads that app's).
    pub component_app_id: String,
    pub component_uuid: String,
    pub rows: i64,
    pub truncated: bool,
    /// The filters its rows take (the report's and its own), as JSON.
    pub filters: String,
}

/// A snapshot's `report` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub kind: String,
    pub tenant_id: String,
    pub app_id: String,
    pub report_id: String,
    pub report_key: String,
    pub version: String,
    /// Always null: the unique index's slots for the rows.
    pub component_id: Option<String>,
    pub row_index: Option<i64>,
    pub report_uuid: String,
    pub report_snapshot_date: DateTime,
    pub state: String,
    /// The most rows kept per component.
    #[serde(default)]
    pub row_cap: i64,
    /// The report's SDK metadata when the snapshot was taken, as JSON.
    pub metadata: String,
    pub components: Vec<SnapshotComponent>,
}

/// Why a version could not be claimed.
#[derive(Debug)]
pub enum ClaimError {
    Taken,
    Mongo(MongoError),
}

/// One row of a version's component, of the scope's tenant and app.
fn row_filter(scope: Scope<'_>, version: &str, component_key: &str, id: ObjectId) -> Document {
    scope
        .filter(doc! {"version": version, "kind": "row", "component_key": component_key, "_id": id})
}

#[derive(Debug, Clone)]
pub struct Snapshots {
    collection: Collection<Document>,
}

fn is_duplicate(error: &MongoError) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => {
            e.write_errors.iter().flatten().any(|e| e.code == DUPLICATE_KEY)
        }
        _ => false,
    }
}

fn unreadable(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal("SnapshotUnreadable", error)
}

impl Snapshots {
    pub fn new(database: &Database) -> Self {
        Self { collection: database.collection(COLLECTION) }
    }

    pub async fn ensure_indexes(&self) -> Result<(), MongoError> {
        let keys =
            doc! {"tenant_id": 1, "app_id": 1, "version": 1, "component_id": 1, "row_index": 1};
        let index = IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder().unique(true).name("snapshot_version".to_owned()).build(),
            )
            .build();
        self.collection.create_index(index).await.map(|_| ())
    }

    /// Inserts the `report` document in state `creating`: the claim on its version.
    pub async fn claim(&self, record: &SnapshotRecord) -> Result<(), ClaimError> {
        let document = bson::to_document(record)
            .map_err(|e| ClaimError::Mongo(MongoError::custom(e.to_string())))?;
        match self.collection.insert_one(document).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(ClaimError::Taken),
            Err(error) => Err(ClaimError::Mongo(error)),
        }
    }

    pub async fn insert_rows(&self, rows: Vec<Document>) -> Result<(), ApiError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.collection.insert_many(rows).await.map(|_| ()).map_err(reports::mongo_error)
    }

    /// Marks the snapshot complete, with its components' counts.
    pub async fn complete(
        &self,
        scope: Scope<'_>,
        version: &str,
        components: &[SnapshotComponent],
    ) -> Result<(), ApiError> {
        let components = bson::to_bson(components).map_err(unreadable)?;
        self.collection
            .update_one(
                scope.filter(doc! {"version": version, "kind": "report"}),
                doc! {"$set": {"state": COMPLETE, "components": components}},
            )
            .await
            .map(|_| ())
            .map_err(reports::mongo_error)
    }

    /// Deletes every document of a version (a failed creation, or a delete).
    pub async fn delete_version(
        &self,
        scope: Scope<'_>,
        report_key: Option<&str>,
        version: &str,
    ) -> Result<u64, ApiError> {
        if let Some(report_key) = report_key {
            // Only a version of this report: the report document names it, and the
            // rows are deleted only when it does.
            let found =
                self.collection
                    .count_documents(scope.filter(
                        doc! {"version": version, "kind": "report", "report_key": report_key},
                    ))
                    .await
                    .map_err(reports::mongo_error)?;
            if found == 0 {
                return Ok(0);
            }
        }
        let filter = scope.filter(doc! {"version": version});
        let deleted = self.collection.delete_many(filter).await.map_err(reports::mongo_error)?;
        Ok(deleted.deleted_count)
    }

    /// The complete versions of a report, newest first.
    pub async fn versions(
        &self,
        scope: Scope<'_>,
        report_key: &str,
    ) -> Result<Vec<String>, ApiError> {
        let filter =
            scope.filter(doc! {"kind": "report", "report_key": report_key, "state": COMPLETE});
        let cursor = self
            .collection
            .find(filter)
            .projection(doc! {"version": 1, "report_snapshot_date": 1})
            .sort(doc! {"report_snapshot_date": -1})
            .await
            .map_err(reports::mongo_error)?;
        let documents: Vec<Document> = cursor.try_collect().await.map_err(reports::mongo_error)?;
        Ok(documents.iter().filter_map(|d| d.get_str("version").ok().map(str::to_owned)).collect())
    }

    /// A complete snapshot's `report` document: of `report_key` when given.
    pub async fn record(
        &self,
        scope: Scope<'_>,
        report_key: Option<&str>,
        version: &str,
    ) -> Result<Option<SnapshotRecord>, ApiError> {
        let mut filter = doc! {"version": version, "kind": "report", "state": COMPLETE};
        if let Some(report_key) = report_key {
            filter.insert("report_key", report_key);
        }
        let found =
            self.collection.find_one(scope.filter(filter)).await.map_err(reports::mongo_error)?;
        found.map(|d| bson::from_document(d).map_err(unreadable)).transpose()
    }

    /// The rows of `pipeline`, which the caller built from [`Scope::filter`].
    pub async fn aggregate(&self, pipeline: Vec<Document>) -> Result<Vec<Document>, ApiError> {
        let run = async {
            let cursor =
                self.collection.aggregate(pipeline).max_time(reports::AGGREGATE_MAX_TIME).await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        tokio::time::timeout(reports::CLIENT_MAX_TIME, run)
            .await
            .map_err(|_| reports::too_slow())?
            .map_err(reports::mongo_error)
    }

    /// Sets fields of one row of a version's component; the row after, if it matched.
    pub async fn edit_row(
        &self,
        scope: Scope<'_>,
        version: &str,
        component_key: &str,
        id: ObjectId,
        set: Document,
    ) -> Result<Option<Document>, ApiError> {
        let filter = row_filter(scope, version, component_key, id);
        let options =
            FindOneAndUpdateOptions::builder().return_document(ReturnDocument::After).build();
        self.collection
            .find_one_and_update(filter, doc! {"$set": set})
            .with_options(options)
            .await
            .map_err(reports::mongo_error)
    }

    /// Deletes one row of a version's component; how many (0 or 1).
    /// Deletes the rows `ids` of the tenant's versions `versions` (already checked to be
    /// the report's): rows only, never a version's report or component documents.
    pub async fn delete_rows_of_versions(
        &self,
        scope: Scope<'_>,
        versions: &[String],
        ids: &[ObjectId],
    ) -> Result<u64, ApiError> {
        if versions.is_empty() || ids.is_empty() {
            return Ok(0);
        }
        let filter =
            scope.filter(doc! {"kind": "row", "version": {"$in": versions}, "_id": {"$in": ids}});
        let deleted = self.collection.delete_many(filter).await.map_err(reports::mongo_error)?;
        Ok(deleted.deleted_count)
    }

    pub async fn delete_row(
        &self,
        scope: Scope<'_>,
        version: &str,
        component_key: &str,
        id: ObjectId,
    ) -> Result<u64, ApiError> {
        let filter = row_filter(scope, version, component_key, id);
        let deleted = self.collection.delete_one(filter).await.map_err(reports::mongo_error)?;
        Ok(deleted.deleted_count)
    }
}
