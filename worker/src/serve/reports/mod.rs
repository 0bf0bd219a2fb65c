//! Reports and component data, under `/{app_id}/`:
//! - `GET /reports`, `GET /reports/{report}`: the SDK's report metadata from the
//!   registry (components in order, filters with their type defaults, connected apps,
//!   URLs);
//! - `GET|POST /report-components/{component}` and `GET|POST /reports/{report}/{component}`:
//!   the component's aggregation for the caller's tenant ([`query`]), with the SDK's
//!   filters ([`filters`]), `limit`/`skip` and a default row cap, cached in Redis
//!   ([`cache`]) with an `ETag`;
//! - `GET|POST /report-components/{component}/download` and
//!   `GET|POST /reports/{report}/download`: the same rows streamed as json, csv or
//!   xlsx attachments ([`download`]).
//!
//! `{report}` and `{component}` are the dash forms of the registry's URLs; the ids are
//! accepted too.

pub mod cache;
pub mod download;
pub mod export;
pub mod filters;
pub mod metadata;
pub mod near_cache;
pub mod query;

use std::time::Duration;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::TryStreamExt;
use mongodb::{
    bson::Document,
    error::{Error as MongoError, ErrorKind},
};
use serde_json::{Value, json};

pub use cache::invalidate;

use self::{
    cache::{Entry, KeyParts, Slot, Source},
    filters::{FilterError, FilterItem},
    metadata::Target,
    query::{Paging, PagingQuery, QueryError},
};
use super::openapi::{FailBody, FilterBody};
use super::{auth::Caller, error::ApiError, state::AppState};
use crate::processing::PlainJsonDocument;

/// The server-side limit of one aggregation (`maxTimeMS`).
pub const AGGREGATE_MAX_TIME: Duration = Duration::from_secs(30);
/// The client's own bound, in case a server ignores `maxTimeMS`.
pub(crate) const CLIENT_MAX_TIME: Duration = Duration::from_secs(35);
/// A filters body is small.
const FILTERS_BODY_LIMIT: usize = 256 << 10;

pub fn routes() -> Router<AppState> {
    let limit = || DefaultBodyLimit::max(FILTERS_BODY_LIMIT);
    Router::new()
        .route("/{app_id}/reports", get(list_reports))
        .route("/{app_id}/reports/{report}", get(report))
        .route(
            "/{app_id}/report-components/{component}",
            get(component_data).post(component_data).layer(limit()),
        )
        .route(
            "/{app_id}/reports/{report}/{component}",
            get(report_component_data).post(report_component_data).layer(limit()),
        )
        .route(
            "/{app_id}/report-components/{component}/download",
            get(download::component).post(download::component).layer(limit()),
        )
        .route(
            "/{app_id}/reports/{report}/{component}/download",
            get(download::report_component).post(download::report_component).layer(limit()),
        )
        .route(
            "/{app_id}/reports/{report}/download",
            get(download::report).post(download::report).layer(limit()),
        )
}

#[utoipa::path(
    get, path = "/{app_id}/reports", tag = "reports",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service")),
    responses(
        (status = 200, description = "The SDK's metadata of every report of the app", body = Vec<Object>),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
    )
)]
pub async fn list_reports(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    caller.require_tenant()?;
    let reports = state.registry.documents("report", Some(&app_id));
    Ok(Json(reports.into_iter().map(metadata::report_metadata).collect()))
}

#[utoipa::path(
    get, path = "/{app_id}/reports/{report}", tag = "reports",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("report" = String, Path, description = "The report id in dash form, e.g. devices-report (the id is accepted too)"),
    ),
    responses(
        (status = 200, description = "The SDK's report metadata: components in order, filters with their defaults, connected apps, URLs", body = Object),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report", body = FailBody),
    )
)]
pub async fn report(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant()?;
    let document = metadata::find_report(&state.registry, &app_id, &report)?;
    Ok(Json(metadata::report_metadata(document)))
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/report-components/{component}", tag = "reports",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("component" = String, Path, description = "The component id in dash form, e.g. devices-by-os (the id is accepted too)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 50_000, description = "Rows to return; default 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip: pages past the cap"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when the rows are the same"),
    ),
    request_body(content = Option<Vec<FilterBody>>, description = "The SDK's filters; columns from the component's filters and those of the reports that show it"),
    responses(
        (status = 200, description = "The component's rows for the caller's tenant; headers ETag, X-Cache (hit|miss), X-Has-More (true when a next page exists)", body = Vec<Object>),
        (status = 304, description = "Not modified since the If-None-Match ETag"),
        (status = 400, description = "Bad filters (the message says which and why), limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such component", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or the aggregation took longer than its time limit", body = FailBody),
    )
)]
pub async fn component_data(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<PagingQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let target = metadata::component_target(&state.registry, &app_id, &component)?;
    serve_component(&state, tenant.as_str(), &target, query, &headers, &body).await
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/reports/{report}/{component}", tag = "reports",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("component" = String, Path, description = "A component the report shows, or one of a connected app's (dash form or id)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 50_000, description = "Rows to return; default 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip: pages past the cap"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when the rows are the same"),
    ),
    request_body(content = Option<Vec<FilterBody>>, description = "The SDK's filters; columns from the report's and the component's filters"),
    responses(
        (status = 200, description = "The component's rows for the caller's tenant; headers ETag, X-Cache (hit|miss), X-Has-More", body = Vec<Object>),
        (status = 304, description = "Not modified since the If-None-Match ETag"),
        (status = 400, description = "Bad filters (the message says which and why), limit or skip", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report, or a component it does not show", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or the aggregation took longer than its time limit", body = FailBody),
    )
)]
pub async fn report_component_data(
    State(state): State<AppState>,
    Path((app_id, report, component)): Path<(String, String, String)>,
    caller: Caller,
    query: Result<Query<PagingQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let target = metadata::report_component_target(&state.registry, &app_id, &report, &component)?;
    serve_component(&state, tenant.as_str(), &target, query, &headers, &body).await
}

/// A 400 with the SDK's body and the refusal's stable reason.
pub(crate) fn refused(reason: &'static str, message: String) -> ApiError {
    ApiError::Rejected(json!({"status": "fail", "message": message, "reason": reason}))
}

impl From<FilterError> for ApiError {
    fn from(error: FilterError) -> Self {
        refused(error.reason(), error.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::BadLimit | QueryError::BadSkip => {
                refused(error.reason(), error.to_string())
            }
            // The registry's fault, not the request's.
            QueryError::PipelineRefused(_) | QueryError::CollectionRefused(_) => {
                ApiError::internal(error.reason(), error)
            }
        }
    }
}

pub(crate) async fn serve_component(
    state: &AppState,
    tenant: &str,
    target: &Target,
    query: Result<Query<PagingQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let paging = Paging::new(&query)?;
    let filters: Vec<FilterItem> = filters::from_request(query.filters.as_deref(), body)?;
    let user_match = filters::to_match(&filters, &target.allowed)?;
    let slot = Slot {
        tenant,
        app: &target.app_id,
        component: &target.component_id,
        digest: KeyParts::new(&target.version, &target.data.collection, &filters, paging).digest(),
        ttl_seconds: u64::try_from(target.data.cache_ttl_seconds).unwrap_or(0),
    };
    let redis = match state.redis().await {
        Ok(redis) => Some(redis),
        Err(error) => {
            tracing::warn!(%error, "Redis unavailable: component data served uncached");
            None
        }
    };
    // Built on a miss only: a hit needs the key, not the stages (the registry's
    // definition is checked again with each computation; a refused one is never cached).
    let compute = || async move {
        let pipeline = query::pipeline(tenant, user_match, &target.data, paging)?;
        aggregate(state, target, pipeline, paging.limit).await
    };
    let (entry, source) =
        cache::get_or_compute(redis, &state.near_cache, &slot, CLIENT_MAX_TIME, compute).await?;
    state.metrics.component_cache(&target.app_id, &target.component_id, source.as_str());
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| cache::matches_if_none_match(v, &entry.etag));
    Ok(respond(entry, source, not_modified))
}

fn respond(entry: Entry, source: Source, not_modified: bool) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&entry.etag_header()) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert("x-cache", HeaderValue::from_static(source.as_str()));
    headers.insert(
        "x-has-more",
        HeaderValue::from_static(if entry.has_more { "true" } else { "false" }),
    );
    // A tenant's rows: only the client may keep them, and must revalidate (the ETag
    // makes that cheap).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("authorization, tenantid"));
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, Body::from(entry.rows)).into_response()
}

/// Runs the pipeline on the component's collection and serializes at most `limit`
/// rows straight to JSON.
async fn aggregate(
    state: &AppState,
    target: &Target,
    pipeline: Vec<Document>,
    limit: u64,
) -> Result<Entry, ApiError> {
    let collection = state.database.collection::<Document>(&target.data.collection);
    let run = async {
        let cursor = collection.aggregate(pipeline).max_time(AGGREGATE_MAX_TIME).await?;
        cursor.try_collect::<Vec<Document>>().await
    };
    let mut rows = tokio::time::timeout(CLIENT_MAX_TIME, run)
        .await
        .map_err(|_| too_slow())?
        .map_err(mongo_error)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let documents: Vec<PlainJsonDocument<'_>> = rows.iter().map(PlainJsonDocument).collect();
    let json = serde_json::to_string(&documents)
        .map_err(|error| ApiError::internal("RowsNotSerializable", error))?;
    Ok(Entry::new(json, has_more))
}

pub(crate) fn too_slow() -> ApiError {
    ApiError::unavailable(
        "the component's data",
        format!("the aggregation took longer than {} s", AGGREGATE_MAX_TIME.as_secs()),
    )
}

/// MongoDB's `MaxTimeMSExpired`.
pub(crate) const MAX_TIME_EXPIRED: i32 = 50;

/// A MongoDB error as the API's: a time limit or an outage is a 503, a refused
/// command the definition's fault (500).
pub(crate) fn mongo_error(error: MongoError) -> ApiError {
    match error.kind.as_ref() {
        ErrorKind::Command(command) if command.code == MAX_TIME_EXPIRED => too_slow(),
        // The server refused the aggregation itself (e.g. a stage it lacks): the
        // component's definition, not an outage.
        ErrorKind::Command(_) => ApiError::internal("AggregationRefused", error),
        _ => ApiError::unavailable("MongoDB", error),
    }
}
