//! Report snapshots: a report's metadata and its components' rows for the caller's
//! tenant, frozen under a version id, at the URLs the registry advertises
//! (`snapshot_url` of reports and components), under `/{app_id}/`:
//!
//! | here | the SDK (`/reports/{r}/snapshot`, v2 routes 19–22) |
//! |---|---|
//! | `POST /snapshot-reports/{report}` | `GET /reports/{r}?snapshot=true` |
//! | `GET /snapshot-reports/{report}` → `{"version": [...]}` | `GET .../snapshot` |
//! | `GET /snapshot-reports/{report}?version=V` → metadata | `GET .../snapshot?version=` |
//! | `DELETE /snapshot-reports/{report}?version=V` | `DELETE .../snapshot` `[{version}]` |
//! | `GET\|POST /snapshot-report-components/{component}/{V}` → rows | `GET\|POST .../snapshot?version&component_id` |
//! | `PUT /snapshot-report-components/{component}/{V}` `{_id, new_data}` | `PUT .../snapshot` |
//! | `DELETE /snapshot-report-components/{component}/{V}?_id=` (a row) | `DELETE .../snapshot` `[{_id}]` |
//!
//! The component URL is the component's `snapshot_url` plus `/{version}`, as the
//! snapshot's metadata gives it (the SDK advertised that URL but served none). Rows
//! take the SDK's filters (checked against the filters the component took when the
//! snapshot was made), `limit` and `skip`, and answer in the component-data shape.
//! Everything is scoped to the caller's tenant and the route's app ([`store`]).

pub mod bulk;
pub mod create;
pub mod rows;
pub mod store;
pub mod version;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use licenseware_crds::{names::dash, registry::FilterEntry};
use mongodb::bson::{Document, doc, oid::ObjectId};
use serde::Deserialize;
use serde_json::{Value, json};

use self::{
    rows::{EditError, answer_row, nest_match, parse_edit},
    store::{Scope, SnapshotComponent, SnapshotRecord, Snapshots},
};
use super::{
    auth::Caller,
    error::ApiError,
    openapi::{FailBody, FilterBody},
    reports::{
        filters::{self, FilterItem},
        query::{Paging, PagingQuery},
        refused,
    },
    state::AppState,
};
use crate::processing::PlainJsonDocument;

/// A filters or edit body is small.
const BODY_LIMIT: usize = 256 << 10;

pub fn routes() -> Router<AppState> {
    let limit = || DefaultBodyLimit::max(BODY_LIMIT);
    Router::new()
        .route(
            "/{app_id}/snapshot-reports/{report}",
            get(versions_or_metadata)
                .post(create_snapshot)
                .delete(delete_snapshot)
                .layer(limit()),
        )
        // The SDK v1 form: the version as a query parameter.
        .route(
            "/{app_id}/snapshot-report-components/{component}",
            get(component_rows_by_query).post(component_rows_by_query).layer(limit()),
        )
        .route(
            "/{app_id}/snapshot-report-components/{component}/{version}",
            get(component_rows)
                .post(component_rows)
                .put(edit_row)
                .delete(delete_row)
                .layer(limit()),
        )
}

fn version_not_found() -> ApiError {
    ApiError::NotFound("Snapshot version not found".to_owned())
}

#[derive(Debug, Default, Deserialize)]
pub struct VersionQuery {
    pub version: Option<String>,
}

#[utoipa::path(
    post, path = "/{app_id}/snapshot-reports/{report}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
    ),
    responses(
        (status = 201, description = "The snapshot's metadata: the report's SDK metadata with version, report_snapshot_date, report_uuid, each component's snapshot_url ending in /{version}, snapshot_rows and snapshot_truncated (rows past the per-component cap are not kept), truncated_components", body = Object),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or a component's aggregation took too long", body = FailBody),
    )
)]
pub async fn create_snapshot(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?.as_str().to_owned();
    // Taken in a task of its own: a client that goes away does not stop it half-way
    // (the task completes the snapshot, or deletes what it wrote).
    let (task_state, app) = (state.clone(), app_id.clone());
    let record = tokio::spawn(async move {
        let scope = Scope { tenant: &tenant, app: &app };
        let snapshots = Snapshots::new(&task_state.database);
        create::create(&task_state, &snapshots, scope, &report).await
    })
    .await
    .map_err(|error| ApiError::internal("SnapshotTaskFailed", error))??;
    let location =
        format!("/{app_id}/snapshot-reports/{}?version={}", record.report_key, record.version);
    let mut response =
        (StatusCode::CREATED, Json(create::metadata_answer(&record)?)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    get, path = "/{app_id}/snapshot-reports/{report}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("version" = Option<String>, Query, description = "A version: its metadata; without, the list of versions"),
    ),
    responses(
        (status = 200, description = "Without version: {\"version\": [...]}, newest first. With: the snapshot's metadata", body = Object),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version of this report for the tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn versions_or_metadata(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
    Query(query): Query<VersionQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let scope = Scope { tenant: tenant.as_str(), app: &app_id };
    let snapshots = Snapshots::new(&state.database);
    let report_key = dash(&report);
    let Some(version) = query.version else {
        let versions = snapshots.versions(scope, &report_key).await?;
        return Ok(Json(json!({"version": versions})));
    };
    if !version::is_version(&version) {
        return Err(version_not_found());
    }
    let record = snapshots
        .record(scope, Some(&report_key), &version)
        .await?
        .ok_or_else(version_not_found)?;
    Ok(Json(create::metadata_answer(&record)?))
}

#[utoipa::path(
    delete, path = "/{app_id}/snapshot-reports/{report}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("version" = Option<String>, Query, description = "The version to delete, with its rows; without it, the body lists what to delete"),
    ),
    request_body(content = Vec<Object>, description = "Without `version`: the SDK's bulk form, a list of `{\"version\": …}` (a whole version of this report) and `{\"_id\": …}` (a snapshot row of one of its versions) items, at most 1,000; checked before anything is deleted"),
    responses(
        (status = 200, description = "{\"status\": \"success\", \"message\": \"Requested items were deleted\", \"deleted\": {\"versions\": n, \"rows\": n}}", body = FailBody),
        (status = 400, description = "No version and no list, or an item that is not a version or a row id", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version of this report for the tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn delete_snapshot(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<VersionQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let Some(version) = query.version else {
        if body.is_empty() {
            return Err(refused(
                "VersionMissing",
                "Parameter `version` (or a body listing the items) must be specified".to_owned(),
            ));
        }
        let wanted =
            bulk::parse(&body).map_err(|error| refused(error.reason(), error.to_string()))?;
        let scope = Scope { tenant: tenant.as_str(), app: &app_id };
        return delete_items(&Snapshots::new(&state.database), scope, &dash(&report), wanted).await;
    };
    if !version::is_version(&version) {
        return Err(version_not_found());
    }
    let scope = Scope { tenant: tenant.as_str(), app: &app_id };
    let snapshots = Snapshots::new(&state.database);
    let deleted = snapshots.delete_version(scope, Some(&dash(&report)), &version).await?;
    if deleted == 0 {
        return Err(version_not_found());
    }
    Ok(Json(json!({"status": "success", "message": "Requested items were deleted"})))
}

/// A bulk delete: the rows first (of the report's versions only), then the versions.
/// 404 when none of the items named anything of the tenant's.
async fn delete_items(
    snapshots: &Snapshots,
    scope: Scope<'_>,
    report_key: &str,
    wanted: bulk::BulkDelete,
) -> Result<Json<Value>, ApiError> {
    let versions = snapshots.versions(scope, report_key).await?;
    let rows = snapshots.delete_rows_of_versions(scope, &versions, &wanted.rows).await?;
    let mut deleted_versions = 0_u64;
    // `versions` are this report's already: no second check per version.
    for version in wanted.versions.iter().filter(|v| versions.contains(v)) {
        if snapshots.delete_version(scope, None, version).await? > 0 {
            deleted_versions += 1;
        }
    }
    if rows == 0 && deleted_versions == 0 {
        return Err(ApiError::NotFound("None of the requested items were found".to_owned()));
    }
    Ok(Json(json!({
        "status": "success",
        "message": "Requested items were deleted",
        "deleted": {"versions": deleted_versions, "rows": rows},
    })))
}

/// The version's record and its component `component` (either id form).
async fn component_of(
    snapshots: &Snapshots,
    scope: Scope<'_>,
    component: &str,
    version: &str,
) -> Result<(SnapshotRecord, SnapshotComponent), ApiError> {
    if !version::is_version(version) {
        return Err(version_not_found());
    }
    let record = snapshots.record(scope, None, version).await?.ok_or_else(version_not_found)?;
    let key = dash(component);
    let found = record.components.iter().find(|c| c.component_key == key).cloned();
    let found =
        found.ok_or_else(|| ApiError::NotFound("Snapshot component not found".to_owned()))?;
    Ok((record, found))
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/snapshot-report-components/{component}/{version}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("component" = String, Path, description = "The component id in dash form (the id is accepted too)"),
        ("version" = String, Path, description = "The snapshot's version"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 50_000, description = "Rows to return; default 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
    ),
    request_body(content = Vec<FilterBody>, description = "The SDK's filters, on the columns the component took when the snapshot was made"),
    responses(
        (status = 200, description = "The component's rows as they were, in the component-data shape, each with `_id` its snapshot row id (the handle of an edit); header X-Has-More", body = Vec<Object>),
        (status = 400, description = "Bad filters, limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version, or a component it does not hold", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn component_rows(
    State(state): State<AppState>,
    Path((app_id, component, version)): Path<(String, String, String)>,
    caller: Caller,
    query: Result<Query<PagingQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    rows_answer(&state, &app_id, &component, &version, &caller, query, &body).await
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/snapshot-report-components/{component}", tag = "snapshots",
    operation_id = "component_rows_by_query",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("component" = String, Path, description = "The component id in dash form (the id is accepted too)"),
        ("version" = String, Query, description = "The snapshot's version (the SDK v1 form of /{component}/{version})"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 50_000, description = "Rows to return; default 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
    ),
    request_body(content = Vec<FilterBody>, description = "The SDK's filters, on the columns the component took when the snapshot was made"),
    responses(
        (status = 200, description = "As /{component}/{version}", body = Vec<Object>),
        (status = 400, description = "No version, or bad filters, limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version, or a component it does not hold", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn component_rows_by_query(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    version: Result<Query<VersionQuery>, QueryRejection>,
    query: Result<Query<PagingQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(version) = version.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let version = version.version.ok_or_else(|| {
        refused("VersionMissing", "Parameter `version` must be specified".to_owned())
    })?;
    rows_answer(&state, &app_id, &component, &version, &caller, query, &body).await
}

async fn rows_answer(
    state: &AppState,
    app_id: &str,
    component: &str,
    version: &str,
    caller: &Caller,
    query: Result<Query<PagingQuery>, QueryRejection>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let paging = Paging::new(&query)?;
    let filters: Vec<FilterItem> = if body.iter().all(u8::is_ascii_whitespace) {
        filters::parse(query.filters.as_deref().unwrap_or_default().as_bytes())?
    } else {
        filters::parse(body)?
    };
    let scope = Scope { tenant: tenant.as_str(), app: app_id };
    let snapshots = Snapshots::new(&state.database);
    let (_, kept) = component_of(&snapshots, scope, component, version).await?;
    let allowed: Vec<FilterEntry> = serde_json::from_str(&kept.filters)
        .map_err(|error| ApiError::internal("SnapshotUnreadable", error))?;
    let user_match = filters::to_match(&filters, &allowed)?;
    let pipeline = rows_pipeline(scope, version, &kept.component_key, user_match, paging);
    let mut found = snapshots.aggregate(pipeline).await?;
    let limit = usize::try_from(paging.limit).unwrap_or(usize::MAX);
    let has_more = found.len() > limit;
    found.truncate(limit);
    let answers: Vec<Document> = found.into_iter().filter_map(stored_answer).collect();
    let documents: Vec<PlainJsonDocument<'_>> = answers.iter().map(PlainJsonDocument).collect();
    let json = serde_json::to_string(&documents)
        .map_err(|error| ApiError::internal("RowsNotSerializable", error))?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-has-more", HeaderValue::from_static(if has_more { "true" } else { "false" }));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok((StatusCode::OK, headers, Body::from(json)).into_response())
}

/// `[{$match: scope + version + component}, {$match: filters on the row}?, {$sort},
/// {$skip}?, {$limit}]`: the scope's match first and alone, as for live data.
fn rows_pipeline(
    scope: Scope<'_>,
    version: &str,
    component_key: &str,
    user_match: Option<Document>,
    paging: Paging,
) -> Vec<Document> {
    let mut stages = vec![doc! {"$match": scope.filter(doc! {
        "version": version, "kind": "row", "component_key": component_key,
    })}];
    if let Some(user_match) = user_match {
        stages.push(doc! {"$match": nest_match(user_match)});
    }
    stages.push(doc! {"$sort": {"row_index": 1}});
    if paging.skip > 0 {
        stages.push(doc! {"$skip": i64::try_from(paging.skip).unwrap_or(i64::MAX)});
    }
    stages.push(doc! {"$limit": i64::try_from(paging.limit.saturating_add(1)).unwrap_or(i64::MAX)});
    stages
}

/// A stored row document as answered; `None` for one without its row (never written
/// so, but a hand-edited collection is not trusted).
fn stored_answer(mut stored: Document) -> Option<Document> {
    let id = stored.get_object_id("_id").ok()?;
    let row = stored.remove(rows::ROW).and_then(|row| row.as_document().cloned())?;
    Some(answer_row(&id, row))
}

impl From<EditError> for ApiError {
    fn from(error: EditError) -> Self {
        match error {
            EditError::NoMatch => ApiError::NotFound(error.to_string()),
            _ => refused(error.reason(), error.to_string()),
        }
    }
}

#[utoipa::path(
    put, path = "/{app_id}/snapshot-report-components/{component}/{version}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("component" = String, Path, description = "The component id in dash form (the id is accepted too)"),
        ("version" = String, Path, description = "The snapshot's version"),
    ),
    request_body(content = Object, description = "{\"_id\": <a row's _id as answered>, \"new_data\": {field: value}}; the SDK's bookkeeping fields are dropped from new_data"),
    responses(
        (status = 200, description = "The row after the edit", body = Object),
        (status = 400, description = "A malformed body, or no editable field", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version, component, or row of them for the tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn edit_row(
    State(state): State<AppState>,
    Path((app_id, component, version)): Path<(String, String, String)>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let edit = parse_edit(&body)?;
    let scope = Scope { tenant: tenant.as_str(), app: &app_id };
    let snapshots = Snapshots::new(&state.database);
    let (_, kept) = component_of(&snapshots, scope, &component, &version).await?;
    let after = snapshots
        .edit_row(scope, &version, &kept.component_key, edit.id, edit.set)
        .await?
        .and_then(stored_answer)
        .ok_or(EditError::NoMatch)?;
    Ok(Json(crate::processing::document_to_json(&after)))
}

#[derive(Debug, Default, Deserialize)]
pub struct RowQuery {
    #[serde(rename = "_id")]
    pub id: Option<String>,
}

#[utoipa::path(
    delete, path = "/{app_id}/snapshot-report-components/{component}/{version}", tag = "snapshots",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("component" = String, Path, description = "The component id in dash form (the id is accepted too)"),
        ("version" = String, Path, description = "The snapshot's version"),
        ("_id" = String, Query, description = "The row's _id, as answered"),
    ),
    responses(
        (status = 200, description = "{\"status\": \"success\", \"message\": \"Requested items were deleted\"}", body = FailBody),
        (status = 400, description = "No _id given", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such version, component, or row of them for the tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn delete_row(
    State(state): State<AppState>,
    Path((app_id, component, version)): Path<(String, String, String)>,
    caller: Caller,
    query: Result<Query<RowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let id = query
        .id
        .ok_or_else(|| refused("RowIdMissing", "Parameter `_id` must be specified".to_owned()))?;
    let id = ObjectId::parse_str(&id).map_err(|_| EditError::NoMatch)?;
    let scope = Scope { tenant: tenant.as_str(), app: &app_id };
    let snapshots = Snapshots::new(&state.database);
    let (_, kept) = component_of(&snapshots, scope, &component, &version).await?;
    if snapshots.delete_row(scope, &version, &kept.component_key, id).await? == 0 {
        return Err(EditError::NoMatch.into());
    }
    Ok(Json(json!({"status": "success", "message": "Requested items were deleted"})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_match_comes_first_and_filters_reach_the_row_only() {
        let scope = Scope { tenant: "t1", app: "app" };
        let user = doc! {"$and": [{"tenant_id": {"$eq": "t2"}}, {"cpus": {"$gt": 1}}]};
        let stages =
            rows_pipeline(scope, "ABC123", "vm-list", Some(user), Paging { skip: 5, limit: 10 });
        assert_eq!(
            stages[0],
            doc! {"$match": {"tenant_id": "t1", "app_id": "app", "version": "ABC123",
            "kind": "row", "component_key": "vm-list"}}
        );
        assert_eq!(
            stages[1],
            doc! {"$match": {"$and": [{"row.tenant_id": {"$eq": "t2"}}, {"row.cpus": {"$gt": 1}}]}}
        );
        assert_eq!(stages[2], doc! {"$sort": {"row_index": 1}});
        assert_eq!(stages[3], doc! {"$skip": 5_i64});
        assert_eq!(stages[4], doc! {"$limit": 11_i64});
        let plain = rows_pipeline(scope, "ABC123", "vm-list", None, Paging { skip: 0, limit: 1 });
        assert_eq!(plain.len(), 3);
    }

    #[test]
    fn stored_rows_without_their_row_are_left_out() {
        let id = ObjectId::new();
        let answered = stored_answer(doc! {"_id": id, "tenant_id": "t1", "row": {"name": "a"}});
        assert_eq!(answered, Some(doc! {"_id": id.to_hex(), "name": "a"}));
        assert_eq!(stored_answer(doc! {"_id": id, "tenant_id": "t1"}), None);
        assert_eq!(stored_answer(doc! {"_id": "x", "row": {}}), None);
    }
}
