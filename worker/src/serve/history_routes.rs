//! `GET /{app}/history` (filters `uploader_id`, `event_id`, paging `limit`, `skip`;
//! newest first) and `GET /{app}/history/{event_id}`: the caller's tenant's
//! ProcessingHistory of the app, whatever the query says.

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    routing::get,
};
use serde_json::Value;

use super::openapi::FailBody;
use super::{
    auth::Caller,
    error::ApiError,
    history::{self, DEFAULT_LIMIT, HistoryQuery, MAX_LIMIT, MAX_SKIP},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{app_id}/history", get(list))
        .route("/{app_id}/history/{event_id}", get(one))
}

#[utoipa::path(
    get, path = "/{app_id}/history", tag = "history",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"),
        ("uploader_id" = Option<String>, Query, description = "Only this uploader's events"),
        ("event_id" = Option<String>, Query, description = "Only this event"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Default 50"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000),
    ),
    responses(
        (status = 200, description = "The tenant's history records, newest first",
         body = Vec<Object>),
        (status = 400, description = "A malformed query", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    caller: Caller,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is from 1 to {MAX_LIMIT}")));
    }
    let skip = query.skip.unwrap_or(0);
    if skip > MAX_SKIP {
        return Err(ApiError::BadRequest(format!("skip is at most {MAX_SKIP}")));
    }
    let filter = history::filter(tenant.as_str(), &app_id, &query);
    let found = history::find(&state.database, filter, limit, skip)
        .await
        .map_err(|error| ApiError::unavailable("MongoDB", error))?;
    Ok(Json(found))
}

#[utoipa::path(
    get, path = "/{app_id}/history/{event_id}", tag = "history",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service"), ("event_id" = String, Path)),
    responses(
        (status = 200, description = "The event's history record", body = Object),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such event for this tenant", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn one(
    State(state): State<AppState>,
    Path((app_id, event_id)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let query = HistoryQuery { event_id: Some(event_id), ..HistoryQuery::default() };
    let filter = history::filter(tenant.as_str(), &app_id, &query);
    let mut found = history::find(&state.database, filter, 1, 0)
        .await
        .map_err(|error| ApiError::unavailable("MongoDB", error))?;
    found.pop().map(Json).ok_or_else(|| ApiError::NotFound("Event not found".to_owned()))
}
