//! `GET /{app}/history` (filters `uploader_id`, `event_id`, paging `limit`, `skip`;
//! newest first) and `GET /{app}/history/{event_id}`: the caller's tenant's
//! ProcessingHistory of the app, whatever the query says.

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    routing::get,
};
use serde_json::Value;

use super::{
    auth::Caller,
    error::ApiError,
    history::{self, DEFAULT_LIMIT, HistoryQuery, MAX_LIMIT},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{app_id}/history", get(list))
        .route("/{app_id}/history/{event_id}", get(one))
}

async fn list(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    caller: Caller,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let tenant = caller.require_tenant()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let filter = history::filter(tenant.as_str(), &app_id, &query);
    let found = history::find(&state.database, filter, limit, query.skip.unwrap_or(0))
        .await
        .map_err(|error| ApiError::unavailable("MongoDB", error))?;
    Ok(Json(found))
}

async fn one(
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
