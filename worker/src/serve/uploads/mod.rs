//! The upload routes under `/{app_id}/uploads/{uploader}/`: validation, files, quota
//! and status. `{uploader}` is the dash form of the uploader id, as in the registry's
//! URLs (the id itself is accepted too).

pub(crate) mod files;
pub mod form;
pub mod names;
mod receive;
mod sink;
pub(crate) mod status;
pub(crate) mod validation;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, State},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::Value;

pub use files::{UploadQuery, clear_data};
pub use validation::{MAX_FILENAMES, parse_filenames};

use super::openapi::{FailBody, QuotaResponse};
use super::{
    auth::Caller, error::ApiError, quota, quota::QuotaKey, registry::UploaderInfo, state::AppState,
};

/// A filenames body is small; a larger one is refused before it is read whole.
const VALIDATION_BODY_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
pub struct UploaderPath {
    pub app_id: String,
    pub uploader: String,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{app_id}/uploads/{uploader}/validation",
            post(validation::validate).layer(DefaultBodyLimit::max(VALIDATION_BODY_LIMIT)),
        )
        // The Uploader's own limits apply while the files stream in.
        .route("/{app_id}/uploads/{uploader}/files", post(files::upload).layer(DefaultBodyLimit::disable()))
        .route("/{app_id}/uploads/{uploader}/quota", get(quota_route))
        .route("/{app_id}/uploads/{uploader}/status", get(status::status))
}

pub fn find_uploader(state: &AppState, path: &UploaderPath) -> Result<Arc<UploaderInfo>, ApiError> {
    state
        .registry
        .uploader(&path.app_id, &path.uploader)
        .ok_or_else(|| ApiError::NotFound("Uploader not found".to_owned()))
}

/// The SDK's key: per user (the token's subject), app and uploader.
pub fn quota_key<'a>(caller: &'a Caller, uploader: &'a UploaderInfo) -> QuotaKey<'a> {
    QuotaKey {
        user_id: &caller.subject,
        app_id: &uploader.app_id,
        uploader_id: &uploader.uploader_id,
    }
}

/// `GET .../quota`: the SDK's UploaderQuotaResponse, 402 when nothing is left.
#[utoipa::path(
    get, path = "/{app_id}/uploads/{uploader}/quota", tag = "uploads",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service"), ("uploader" = String, Path, description = "The uploader id in dash form, e.g. rv-tools")),
    responses(
        (status = 200, description = "Within the quota", body = QuotaResponse),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 402, description = "Monthly quota exceeded", body = QuotaResponse),
        (status = 404, description = "No such uploader", body = FailBody),
        (status = 503, description = "The quota store is unavailable", body = FailBody),
    )
)]
pub async fn quota_route(
    State(state): State<AppState>,
    Path(path): Path<UploaderPath>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_tenant()?;
    let uploader = find_uploader(&state, &path)?;
    let limit =
        quota::limit(caller.unlimited() || caller.machine, uploader.worker.spec.free_quota_units);
    let outcome = state
        .quotas
        .check(&quota_key(&caller, &uploader), limit, 0)
        .await
        .map_err(|error| ApiError::unavailable("the quota store", error))?;
    if outcome.within {
        Ok(Json(outcome.response()))
    } else {
        Err(ApiError::QuotaExceeded(outcome.response()))
    }
}
