//! Taking a snapshot: the report's metadata and every component's rows for the
//! tenant, now, under a fresh version id.
//!
//! The `report` document is written first, in state `creating`: it claims the version
//! (a collision with an existing id is retried with a new one). The rows follow, each
//! component's computed by the same pipeline as its live data ([`query::pipeline`]:
//! the tenant's `$match` first), streamed into batched inserts and capped at
//! `--snapshot-row-cap` ([`super::store::ROW_CAP`] by default). Only then is the snapshot marked `complete`: readers never see half a
//! snapshot, and a failure deletes what was written.

use futures::TryStreamExt;
use licenseware_crds::{names::dash, registry::ReportEntry};
use mongodb::bson::{DateTime, Document, doc, oid::ObjectId};
use serde_json::Value;

use super::{
    rows::ROW,
    store::{COMPLETE, CREATING, ClaimError, Scope, SnapshotComponent, SnapshotRecord, Snapshots},
    version,
};
use crate::serve::{
    error::ApiError,
    reports::{
        self,
        metadata::{self, Target},
        query::{self, Paging},
    },
    state::AppState,
};

/// Versions tried before giving up (a second collision in 2.2e9 ids means the
/// generator is broken, not unlucky).
const VERSION_ATTEMPTS: usize = 5;
/// Rows per insert.
const INSERT_BATCH: usize = 1_000;
/// How long one component's rows may take to copy, over the aggregation's own limit.
const COMPONENT_TIME: std::time::Duration = std::time::Duration::from_secs(300);

/// Takes a snapshot of `report` for `scope`'s tenant; returns its record.
pub async fn create(
    state: &AppState,
    snapshots: &Snapshots,
    scope: Scope<'_>,
    report: &str,
) -> Result<SnapshotRecord, ApiError> {
    let document = metadata::find_report(&state.registry, scope.app, report)?;
    let entry: ReportEntry = serde_json::from_value(Value::Object(document.clone()))
        .map_err(|error| ApiError::internal("RegistryDocumentUnreadable", error))?;
    let metadata = metadata::report_metadata(document);
    // Resolved before anything is written: a component that cannot be read fails the
    // request, not half a snapshot.
    let mut targets = Vec::new();
    for component in entry.report_components.iter().flatten() {
        targets.push(metadata::report_component_target(
            &state.registry,
            scope.app,
            &entry.report_id,
            &component.component_id,
        )?);
    }
    let mut record = SnapshotRecord {
        id: ObjectId::new(),
        kind: "report".to_owned(),
        tenant_id: scope.tenant.to_owned(),
        app_id: scope.app.to_owned(),
        report_id: entry.report_id.clone(),
        report_key: dash(&entry.report_id),
        version: String::new(),
        component_id: None,
        row_index: None,
        report_uuid: uuid::Uuid::new_v4().to_string(),
        report_snapshot_date: DateTime::now(),
        state: CREATING.to_owned(),
        row_cap: i64::try_from(state.settings.snapshot_row_cap).unwrap_or(i64::MAX),
        metadata: metadata.to_string(),
        components: Vec::new(),
    };
    claim(snapshots, &mut record).await?;
    match copy_components(state, snapshots, scope, &record, &targets).await {
        Ok(components) => {
            snapshots.complete(scope, &record.version, &components).await?;
            record.components = components;
            record.state = COMPLETE.to_owned();
            Ok(record)
        }
        Err(error) => {
            if let Err(cleanup) = snapshots.delete_version(scope, None, &record.version).await {
                tracing::error!(version = record.version, error = %cleanup,
                    reason = "SnapshotCleanupFailed", "a failed snapshot was left in creating state");
            }
            Err(error)
        }
    }
}

async fn claim(snapshots: &Snapshots, record: &mut SnapshotRecord) -> Result<(), ApiError> {
    for _ in 0..VERSION_ATTEMPTS {
        record.version = version::random();
        match snapshots.claim(record).await {
            Ok(()) => return Ok(()),
            Err(ClaimError::Taken) => {
                tracing::warn!(version = record.version, "snapshot version taken; retrying");
            }
            Err(ClaimError::Mongo(error)) => return Err(reports::mongo_error(error)),
        }
    }
    Err(ApiError::internal("SnapshotVersionsExhausted", "every version id tried was taken"))
}

async fn copy_components(
    state: &AppState,
    snapshots: &Snapshots,
    scope: Scope<'_>,
    record: &SnapshotRecord,
    targets: &[std::sync::Arc<Target>],
) -> Result<Vec<SnapshotComponent>, ApiError> {
    let mut components = Vec::with_capacity(targets.len());
    for target in targets {
        let copy = copy_component(state, snapshots, scope, record, target);
        let component =
            tokio::time::timeout(COMPONENT_TIME, copy).await.map_err(|_| reports::too_slow())??;
        components.push(component);
    }
    Ok(components)
}

async fn copy_component(
    state: &AppState,
    snapshots: &Snapshots,
    scope: Scope<'_>,
    record: &SnapshotRecord,
    target: &Target,
) -> Result<SnapshotComponent, ApiError> {
    // No filters, the first `cap` rows, and one more to know whether it was cut.
    let cap = state.settings.snapshot_row_cap;
    let pipeline =
        query::pipeline(scope.tenant, None, &target.data, Paging { skip: 0, limit: cap })?;
    let collection = state.database.collection::<Document>(&target.data.collection);
    let mut cursor = collection
        .aggregate(pipeline)
        .max_time(reports::AGGREGATE_MAX_TIME)
        .await
        .map_err(reports::mongo_error)?;
    let component_uuid = uuid::Uuid::new_v4().to_string();
    let component_key = dash(&target.component_id);
    let mut batch = Vec::with_capacity(INSERT_BATCH);
    let (mut rows, mut truncated) = (0_i64, false);
    while let Some(row) = cursor.try_next().await.map_err(reports::mongo_error)? {
        if u64::try_from(rows).unwrap_or(u64::MAX) >= cap {
            truncated = true;
            break;
        }
        batch.push(doc! {
            "kind": "row",
            "tenant_id": scope.tenant,
            "app_id": scope.app,
            "version": &record.version,
            "component_id": &target.component_id,
            "row_index": rows,
            "component_key": &component_key,
            "report_id": &record.report_id,
            "for_report_uuid": &record.report_uuid,
            "component_uuid": &component_uuid,
            "report_snapshot_date": record.report_snapshot_date,
            ROW: row,
        });
        rows += 1;
        if batch.len() == INSERT_BATCH {
            snapshots.insert_rows(std::mem::take(&mut batch)).await?;
        }
    }
    snapshots.insert_rows(batch).await?;
    if truncated {
        tracing::warn!(
            component = target.component_id,
            version = record.version,
            cap,
            reason = "SnapshotTruncated",
            "a snapshot's component was truncated"
        );
    }
    let filters = serde_json::to_string(&target.allowed)
        .map_err(|error| ApiError::internal("FiltersNotSerializable", error))?;
    Ok(SnapshotComponent {
        component_id: target.component_id.clone(),
        component_key,
        component_app_id: target.app_id.clone(),
        component_uuid,
        rows,
        truncated,
        filters,
    })
}

/// The snapshot's metadata as the SDK answered it: the report's metadata with the
/// snapshot's fields, each component's `snapshot_url` ending in `/{version}`, and
/// (beyond the SDK) each component's row count and whether it was truncated.
pub fn metadata_answer(record: &SnapshotRecord) -> Result<Value, ApiError> {
    let mut metadata: serde_json::Map<String, Value> = serde_json::from_str(&record.metadata)
        .map_err(|error| ApiError::internal("SnapshotUnreadable", error))?;
    if let Some(Value::Array(components)) = metadata.get_mut("report_components") {
        for component in components.iter_mut().filter_map(Value::as_object_mut) {
            let id = component.get("component_id").and_then(Value::as_str).unwrap_or_default();
            let kept = record.components.iter().find(|c| c.component_id == id);
            if let Some(Value::String(url)) = component.get_mut("snapshot_url") {
                url.push('/');
                url.push_str(&record.version);
            }
            if let Some(kept) = kept {
                component.insert("snapshot_rows".to_owned(), Value::from(kept.rows));
                component.insert("snapshot_truncated".to_owned(), Value::from(kept.truncated));
            }
        }
    }
    let truncated: Vec<&str> =
        record.components.iter().filter(|c| c.truncated).map(|c| c.component_id.as_str()).collect();
    let date = record.report_snapshot_date.try_to_rfc3339_string().unwrap_or_default();
    metadata.insert("tenant_id".to_owned(), Value::from(record.tenant_id.as_str()));
    metadata.insert("version".to_owned(), Value::from(record.version.as_str()));
    metadata.insert("report_snapshot_date".to_owned(), Value::from(date));
    metadata.insert("report_uuid".to_owned(), Value::from(record.report_uuid.as_str()));
    metadata.insert("snapshot_row_cap".to_owned(), Value::from(record.row_cap));
    metadata.insert("truncated_components".to_owned(), Value::from(truncated));
    Ok(Value::Object(metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(components: Vec<SnapshotComponent>) -> SnapshotRecord {
        SnapshotRecord {
            id: ObjectId::new(),
            kind: "report".to_owned(),
            tenant_id: "t1".to_owned(),
            app_id: "app".to_owned(),
            report_id: "devices".to_owned(),
            report_key: "devices".to_owned(),
            version: "ABC123".to_owned(),
            component_id: None,
            row_index: None,
            report_uuid: "u".to_owned(),
            report_snapshot_date: DateTime::from_millis(1_704_067_200_000),
            state: COMPLETE.to_owned(),
            row_cap: 2,
            metadata: json!({"report_id": "devices", "report_components": [
                {"component_id": "by_os", "snapshot_url": "/snapshot-report-components/by-os"},
                null,
            ]})
            .to_string(),
            components,
        }
    }

    #[test]
    fn metadata_gives_versioned_urls_and_says_what_was_truncated() {
        let kept = SnapshotComponent {
            component_id: "by_os".to_owned(),
            component_key: "by-os".to_owned(),
            component_app_id: "app".to_owned(),
            component_uuid: "c".to_owned(),
            rows: 2,
            truncated: true,
            filters: "[]".to_owned(),
        };
        let answer = metadata_answer(&record(vec![kept])).unwrap();
        let component = &answer["report_components"][0];
        assert_eq!(component["snapshot_url"], "/snapshot-report-components/by-os/ABC123");
        assert_eq!(
            (component["snapshot_rows"].as_i64(), component["snapshot_truncated"].as_bool()),
            (Some(2), Some(true))
        );
        assert_eq!(answer["report_components"][1], Value::Null);
        assert_eq!(answer["truncated_components"], json!(["by_os"]));
        assert_eq!(answer["version"], "ABC123");
        assert_eq!(answer["tenant_id"], "t1");
        assert_eq!(answer["report_snapshot_date"], "2024-01-01T00:00:00Z");
        assert_eq!(answer["snapshot_row_cap"], 2);
    }
}
