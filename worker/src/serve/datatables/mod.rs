//! Data tables, under `/{app_id}/` (SDK §5: `DataTable` and its default `CrudHandler`):
//! - `GET /datatables`: the SDK's metadata of the app's tables;
//! - `GET /datatables/{component}`: a row by `id`, the distinct values of a
//!   `distinct_key` or a `foreign_key` (the SDK left the latter to every app to write),
//!   or a page of rows (`limit`, `skip`);
//! - `PUT` (a row by `id`), `POST` (a new row), `DELETE` (a row by `id`).
//!
//! Every call is the caller's tenant's only ([`store`]); a row is checked against the
//! table's columns with the SDK's messages, all of them in one 400 ([`row`]); an edit
//! invalidates the tenant's cached component data of the app at once and is recorded
//! in ProcessingHistory.

pub mod row;
pub mod store;
pub mod table;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use mongodb::bson::{Bson, Document};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use self::{
    row::Write,
    store::{Edit, Rows},
    table::Table,
};
use super::{
    auth::Caller,
    error::ApiError,
    openapi::{FailBody, RowRefused},
    reports::{
        self, CLIENT_MAX_TIME, MAX_TIME_EXPIRED, mongo_error,
        query::{Paging, PagingQuery},
        too_slow,
    },
    state::AppState,
};
use crate::consume::history::StepTimer;
use crate::processing::{PlainJsonDocument, bson_to_json};

/// A row is small; a body larger than this is refused before it is read.
const ROW_BODY_LIMIT: usize = 256 << 10;

pub fn routes() -> Router<AppState> {
    Router::new().route("/{app_id}/datatables", get(list_tables)).route(
        "/{app_id}/datatables/{component}",
        get(read)
            .put(update)
            .post(insert)
            .delete(delete)
            .layer(DefaultBodyLimit::max(ROW_BODY_LIMIT)),
    )
}

/// The query of a table's routes (the SDK's names; v2's `_id` is taken for `id`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RowQuery {
    #[serde(alias = "_id")]
    pub id: Option<String>,
    pub distinct_key: Option<String>,
    pub foreign_key: Option<String>,
    pub limit: Option<u64>,
    pub skip: Option<u64>,
}

/// A 400 with the SDK's body, a stable reason and, for a refused row, every message.
fn refused(reason: &'static str, errors: Vec<String>) -> ApiError {
    ApiError::Rejected(json!({
        "status": "fail", "message": errors.join("; "), "reason": reason, "errors": errors,
    }))
}

fn query_of(query: Result<Query<RowQuery>, QueryRejection>) -> Result<RowQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|rejection| refused("BadQuery", vec![rejection.body_text()]))
}

fn required_id(query: &RowQuery) -> Result<&str, ApiError> {
    query.id.as_deref().ok_or_else(|| {
        refused("RowIdMissing", vec!["Query parameter 'id' (the row's _id) is required".to_owned()])
    })
}

/// The body of a PUT or POST: one JSON object.
fn body_row(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(row)) => Ok(row),
        Ok(_) => Err(refused("RowMalformed", vec!["The row must be a JSON object".to_owned()])),
        Err(error) => Err(refused("RowMalformed", vec![format!("The row is not JSON: {error}")])),
    }
}

fn json_rows(rows: &[Document]) -> Result<String, ApiError> {
    let documents: Vec<PlainJsonDocument<'_>> = rows.iter().map(PlainJsonDocument).collect();
    serde_json::to_string(&documents)
        .map_err(|error| ApiError::internal("RowsNotSerializable", error))
}

/// A MongoDB call bounded on the client's side too (a server may ignore `maxTimeMS`,
/// and not every command takes it).
async fn bounded<T>(
    call: impl Future<Output = Result<T, mongodb::error::Error>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(CLIENT_MAX_TIME, call).await.map_err(|_| too_slow())?.map_err(mongo_error)
}

/// A write, bounded as [`bounded`]; a row the database refuses (a field name or value
/// it does not take) is the client's 400 with the database's reason, not a 500.
async fn write<T>(
    call: impl Future<Output = Result<T, mongodb::error::Error>>,
) -> Result<T, ApiError> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match tokio::time::timeout(CLIENT_MAX_TIME, call).await.map_err(|_| too_slow())? {
        Ok(done) => Ok(done),
        Err(error) => {
            let refusal = match error.kind.as_ref() {
                ErrorKind::Command(command) if command.code != MAX_TIME_EXPIRED => {
                    Some(command.message.clone())
                }
                ErrorKind::Write(WriteFailure::WriteError(failure)) => {
                    Some(failure.message.clone())
                }
                _ => None,
            };
            match refusal {
                Some(message) => Err(refused(
                    "RowRefusedByDatabase",
                    vec![format!("The database refused the row: {message}")],
                )),
                None => Err(mongo_error(error)),
            }
        }
    }
}

fn row_json(row: &Document) -> Value {
    bson_to_json(&Bson::Document(row.clone()))
}

#[utoipa::path(
    get, path = "/{app_id}/datatables", tag = "datatables",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service")),
    responses(
        (status = 200, description = "The SDK's metadata of every data table of the app, in order: url, path, type, order, style_attributes, title, component_id, columns", body = Vec<Object>),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
    )
)]
pub async fn list_tables(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_tenant()?;
    Ok(Json(table::tables_metadata(&state.registry, &app_id)))
}

#[utoipa::path(
    get, path = "/{app_id}/datatables/{component}", tag = "datatables",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The table's component id in dash form (the id is accepted too)"),
        ("id" = Option<String>, Query, description = "A row's _id: that row"),
        ("foreign_key" = Option<String>, Query, description = "A column's prop or declared key: its distinct values among the tenant's rows"),
        ("distinct_key" = Option<String>, Query, description = "The same, for the column's distinct_key"),
        ("limit" = Option<u64>, Query, maximum = 50_000, description = "Rows to return; 0 or none: 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip"),
    ),
    responses(
        (status = 200, description = "The row (id), the distinct values (foreign_key, distinct_key), or a page of the tenant's rows in _id order (header X-Has-More)", body = serde_json::Value),
        (status = 400, description = "A malformed query, or a key that is not the table's", body = RowRefused),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such table, or no such row for this tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable or took longer than its time limit", body = FailBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<RowQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let table = table::find_table(&state.registry, &app_id, &component)?;
    let query = query_of(query)?;
    let rows = Rows::new(&state.database, &table, tenant.as_str());
    // The SDK's precedence: id, then foreign_key, then distinct_key, then the rows.
    if let Some(id) = &query.id {
        let found = bounded(rows.find_one(id)).await?;
        let row = found.ok_or_else(|| ApiError::NotFound("Row not found".to_owned()))?;
        return Ok(Json(row_json(&row)).into_response());
    }
    if let Some(field) = query.foreign_key.as_deref().or(query.distinct_key.as_deref()) {
        check_key(&table, field)?;
        let values = bounded(rows.distinct(field)).await?;
        return Ok(Json(values.iter().map(bson_to_json).collect::<Vec<Value>>()).into_response());
    }
    // The SDK's 0 meant "no limit": here it is the default cap, as no limit at all.
    let paging = Paging::new(&PagingQuery {
        limit: query.limit.filter(|l| *l > 0),
        skip: query.skip,
        filters: None,
    })
    .map_err(|error| refused(error.reason(), vec![error.to_string()]))?;
    let (found, more) = bounded(rows.page(paging)).await?;
    let mut response = (StatusCode::OK, Body::from(json_rows(&found)?)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-has-more", HeaderValue::from_static(if more { "true" } else { "false" }));
    Ok(response)
}

/// A distinct key must be the table's: its columns' props and declared keys, never
/// the tenant.
fn check_key(table: &Table, field: &str) -> Result<(), ApiError> {
    if field == "tenant_id" || field.starts_with("tenant_id.") || !table.has_key(field) {
        return Err(refused(
            "KeyNotAllowed",
            vec![format!(
                "'{field}' is not a column or key of data table {} (keys: {})",
                table.component_id,
                table.keys()
            )],
        ));
    }
    Ok(())
}

#[utoipa::path(
    put, path = "/{app_id}/datatables/{component}", tag = "datatables",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The table's component id in dash form (the id is accepted too)"),
        ("id" = String, Query, description = "The row's _id"),
    ),
    request_body(content = Object, description = "The new values: non-editable fields (and _id, tenant_id, updated_at) are dropped, the others checked against the columns' types"),
    responses(
        (status = 200, description = "The row as it is now (updated_at set by the server)", body = Object),
        (status = 400, description = "Values not of their columns' types: every message, in `errors`", body = RowRefused),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such table, or no such row for this tenant (nothing changed)", body = FailBody),
        (status = 413, description = "A body over 256 KiB"),
        (status = 503, description = "MongoDB is unavailable or took longer than its time limit", body = FailBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<RowQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        let tenant = caller.require_tenant()?;
        let table = table::find_table(&state.registry, &app_id, &component)?;
        let query = query_of(query)?;
        let id = required_id(&query)?;
        let row = body_row(&body)?;
        let fields = row::check_row(&table.columns, &row, Write::Update)
            .map_err(|errors| refused("RowInvalid", errors))?;
        let timer = StepTimer::start();
        let rows = Rows::new(&state.database, &table, tenant.as_str());
        let updated = write(rows.update(id, fields.clone())).await?;
        let updated = updated.ok_or_else(|| ApiError::NotFound("Row not found".to_owned()))?;
        let edit = Edit {
            table: &table,
            tenant: tenant.as_str(),
            user: &caller.subject,
            action: "update",
            row_id: id.to_owned(),
            changes: fields,
        };
        edited(&state, &edit, &timer).await;
        Ok(Json(row_json(&updated)))
    }
    .await;
    counted(&state, "update", result)
}

#[utoipa::path(
    post, path = "/{app_id}/datatables/{component}", tag = "datatables",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The table's component id in dash form (the id is accepted too)"),
    ),
    request_body(content = Object, description = "The new row: the same checks as PUT, and every required editable column"),
    responses(
        (status = 200, description = "The row as stored, with its new _id", body = Object),
        (status = 400, description = "Values not of their columns' types or missing: every message, in `errors`", body = RowRefused),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such table", body = FailBody),
        (status = 413, description = "A body over 256 KiB"),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn insert(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        let tenant = caller.require_tenant()?;
        let table = table::find_table(&state.registry, &app_id, &component)?;
        let row = body_row(&body)?;
        let fields = row::check_row(&table.columns, &row, Write::Insert)
            .and_then(row::nest)
            .map_err(|errors| refused("RowInvalid", errors))?;
        let timer = StepTimer::start();
        let rows = Rows::new(&state.database, &table, tenant.as_str());
        let inserted = write(rows.insert(fields.clone())).await?;
        let row_id = match inserted.get("_id") {
            Some(Bson::ObjectId(id)) => id.to_hex(),
            _ => String::new(),
        };
        let edit = Edit {
            table: &table,
            tenant: tenant.as_str(),
            user: &caller.subject,
            action: "insert",
            row_id,
            changes: fields,
        };
        edited(&state, &edit, &timer).await;
        Ok(Json(row_json(&inserted)))
    }
    .await;
    counted(&state, "insert", result)
}

#[utoipa::path(
    delete, path = "/{app_id}/datatables/{component}", tag = "datatables",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The table's component id in dash form (the id is accepted too)"),
        ("id" = String, Query, description = "The row's _id"),
    ),
    responses(
        (status = 200, description = "Deleted: {status, message, deleted: 1}", body = Object),
        (status = 400, description = "No id", body = RowRefused),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such table, or no such row for this tenant (nothing changed)", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<RowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let result = async {
        let tenant = caller.require_tenant()?;
        let table = table::find_table(&state.registry, &app_id, &component)?;
        let query = query_of(query)?;
        let id = required_id(&query)?;
        let timer = StepTimer::start();
        let rows = Rows::new(&state.database, &table, tenant.as_str());
        if !bounded(rows.delete(id)).await? {
            return Err(ApiError::NotFound("Row not found".to_owned()));
        }
        let edit = Edit {
            table: &table,
            tenant: tenant.as_str(),
            user: &caller.subject,
            action: "delete",
            row_id: id.to_owned(),
            changes: Document::new(),
        };
        edited(&state, &edit, &timer).await;
        Ok(Json(json!({"status": "success", "message": "Row deleted", "deleted": 1})))
    }
    .await;
    counted(&state, "delete", result)
}

/// Counts an edit by its action and outcome: `ok`, `Refused` (a 400: a row that does
/// not fit its columns, a malformed body or query), or the error's stable reason
/// (`NotFound`, `Unavailable`...).
fn counted<T>(
    state: &AppState,
    action: &'static str,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(ApiError::Rejected(_) | ApiError::BadRequest(_)) => "Refused",
        Err(error) => error.reason(),
    };
    state.metrics.datatable_edit(action, outcome);
    result
}

/// After an edit is committed: the tenant's cached component data of the app is stale
/// from now on, and the edit goes to the history. A Redis that does not answer is
/// logged, not the request's failure: the edit is done, and a cache that Redis cannot
/// serve is not served either.
async fn edited(state: &AppState, edit: &Edit<'_>, timer: &StepTimer) {
    let app = edit.table.app_id.as_str();
    match state.redis().await {
        Ok(mut redis) => {
            if let Err(error) =
                reports::invalidate(&mut redis, &state.near_cache, edit.tenant, app).await
            {
                tracing::error!(%error, app, "component cache not invalidated after an edit");
            }
        }
        Err(error) => tracing::error!(%error, app, "component cache not invalidated after an edit"),
    }
    state.history.record(store::history_document(edit, timer)).await;
}
