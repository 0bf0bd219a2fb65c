//! A table's rows in MongoDB. Every filter here begins with the caller's tenant and
//! takes the row id as a value ([`row::id_match`]), so no request can reach a row of
//! another tenant: an id of tenant A sent by tenant B matches nothing, and an edit of
//! nothing is a 404 that changed nothing.

use futures::TryStreamExt;
use mongodb::{
    Collection, Database,
    bson::{self, Bson, DateTime, Document, doc, oid::ObjectId},
    error::Error as MongoError,
    options::ReturnDocument,
};

use super::{row::id_match, table::Table};
use crate::consume::{
    clock,
    history::{StepOutcome, StepSubject, StepTimer},
};
use crate::serve::reports::{AGGREGATE_MAX_TIME, query::Paging};

/// Most distinct values returned.
pub const MAX_DISTINCT: i64 = 10_000;

/// The caller's rows of `table`.
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    collection: Collection<Document>,
    tenant: &'a str,
    app: &'a str,
}

impl<'a> Rows<'a> {
    pub fn new(database: &Database, table: &'a Table, tenant: &'a str) -> Self {
        Self { collection: database.collection(&table.collection), tenant, app: &table.app_id }
    }

    /// The tenant first, then the id.
    fn by_id(&self, id: &str) -> Document {
        doc! {"tenant_id": self.tenant, "_id": id_match(id)}
    }

    pub async fn find_one(&self, id: &str) -> Result<Option<Document>, MongoError> {
        self.collection.find_one(self.by_id(id)).max_time(AGGREGATE_MAX_TIME).await
    }

    /// A page of rows in `_id` order, and whether more follow (one more row is asked
    /// for rather than a count).
    pub async fn page(&self, paging: Paging) -> Result<(Vec<Document>, bool), MongoError> {
        let limit = i64::try_from(paging.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut rows: Vec<Document> = self
            .collection
            .find(doc! {"tenant_id": self.tenant})
            .sort(doc! {"_id": 1})
            .skip(paging.skip)
            .limit(limit)
            .max_time(AGGREGATE_MAX_TIME)
            .await?
            .try_collect()
            .await?;
        let wanted = usize::try_from(paging.limit).unwrap_or(usize::MAX);
        let more = rows.len() > wanted;
        rows.truncate(wanted);
        Ok((rows, more))
    }

    /// The distinct values of `field` among the tenant's rows, sorted, at most
    /// [`MAX_DISTINCT`]. An aggregation rather than `distinct`, which takes no
    /// `maxTimeMS` on FerretDB.
    pub async fn distinct(&self, field: &str) -> Result<Vec<Bson>, MongoError> {
        let pipeline = [
            doc! {"$match": {"tenant_id": self.tenant}},
            doc! {"$group": {"_id": format!("${field}")}},
            doc! {"$sort": {"_id": 1}},
            doc! {"$limit": MAX_DISTINCT},
        ];
        let groups: Vec<Document> = self
            .collection
            .aggregate(pipeline)
            .max_time(AGGREGATE_MAX_TIME)
            .await?
            .try_collect()
            .await?;
        // A row without the field groups under null: `distinct` leaves those out.
        Ok(groups
            .into_iter()
            .filter_map(|mut g| g.remove("_id"))
            .filter(|v| *v != Bson::Null)
            .collect())
    }

    /// `$set`s `fields` and `updated_at` on the row; the row as it is now, or `None`
    /// when the tenant has no such row (nothing is inserted).
    pub async fn update(
        &self,
        id: &str,
        mut fields: Document,
    ) -> Result<Option<Document>, MongoError> {
        fields.insert("updated_at", DateTime::now());
        self.collection
            .find_one_and_update(self.by_id(id), doc! {"$set": fields})
            .return_document(ReturnDocument::After)
            .upsert(false)
            .await
    }

    /// A new row of the tenant: a new ObjectId, the tenant, the app and `updated_at`
    /// set by the server, then the checked fields.
    pub async fn insert(&self, fields: Document) -> Result<Document, MongoError> {
        let mut document = doc! {
            "_id": ObjectId::new(), "tenant_id": self.tenant, "app_id": self.app,
            "updated_at": DateTime::now(),
        };
        document.extend(fields);
        self.collection.insert_one(&document).await?;
        Ok(document)
    }

    /// Deletes the row; whether there was one.
    pub async fn delete(&self, id: &str) -> Result<bool, MongoError> {
        Ok(self.collection.delete_one(self.by_id(id)).await?.deleted_count > 0)
    }
}

/// An edit of a table, as ProcessingHistory records it.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    pub table: &'a Table,
    pub tenant: &'a str,
    /// The token's subject: who edited.
    pub user: &'a str,
    /// `update`, `insert` or `delete`.
    pub action: &'static str,
    pub row_id: String,
    /// The fields written (none for a delete).
    pub changes: Document,
}

/// The history document of an edit: one per edit, under an event id of its own, with
/// the SDK's `processing_details` step and a `datatable_edit` that says what changed,
/// so `GET /{app}/history` lists data-table edits next to uploads.
pub fn history_document(edit: &Edit<'_>, timer: &StepTimer) -> Document {
    let component = &edit.table.component_id;
    let step = timer.finish(
        StepSubject {
            step: format!("Data table {}", edit.action),
            source: format!(
                "API: {} /{}/datatables/{component}",
                method(edit.action),
                edit.table.app_id
            ),
            attempt: 1,
            ..StepSubject::default()
        },
        StepOutcome::success(format!(
            "{} row {} of data table {component}",
            past(edit.action),
            edit.row_id
        )),
    );
    doc! {
        "tenant_id": edit.tenant,
        "event_id": uuid::Uuid::new_v4().to_string(),
        "app_id": &edit.table.app_id,
        "datatable_edit": {
            "component_id": component,
            "collection": &edit.table.collection,
            "action": edit.action,
            "row_id": &edit.row_id,
            "user": edit.user,
            "changes": edit.changes.clone(),
        },
        "processing_details": [bson::to_bson(&step).unwrap_or(Bson::Null)],
        "updated_at": clock::now_iso(),
    }
}

fn method(action: &str) -> &'static str {
    match action {
        "insert" => "POST",
        "delete" => "DELETE",
        _ => "PUT",
    }
}

fn past(action: &str) -> &'static str {
    match action {
        "insert" => "Inserted",
        "delete" => "Deleted",
        _ => "Updated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_is_a_history_document_of_its_own() {
        let table = Table {
            app_id: "app".into(),
            component_id: "devices".into(),
            collection: "Data".into(),
            columns: Vec::new(),
        };
        let edit = Edit {
            table: &table,
            tenant: "t1",
            user: "alice",
            action: "update",
            row_id: "r1".into(),
            changes: doc! {"name": "x"},
        };
        let document = history_document(&edit, &StepTimer::start());
        assert_eq!(document.get_str("tenant_id").unwrap(), "t1");
        assert_eq!(document.get_str("app_id").unwrap(), "app");
        let details = document.get_document("datatable_edit").unwrap();
        assert_eq!(details.get_str("row_id").unwrap(), "r1");
        assert_eq!(details.get_document("changes").unwrap(), &doc! {"name": "x"});
        let step = document.get_array("processing_details").unwrap()[0].as_document().unwrap();
        assert_eq!(step.get_str("status").unwrap(), "success");
        assert_eq!(step.get_str("source").unwrap(), "API: PUT /app/datatables/devices");
        assert_eq!(step.get_str("success").unwrap(), "Updated row r1 of data table devices");
    }
}
