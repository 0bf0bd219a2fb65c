//! `GET .../status`: `{"status": "idle"|"running"}` from the worker's Redis key (SDK
//! §2.4): idle when the key is missing or expired.

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};

use super::{UploaderPath, find_uploader};
use crate::consume::status::redis_key;
use crate::serve::{auth::Caller, error::ApiError, state::AppState};

/// The status in a stored value; anything unreadable is idle, as a missing key is.
pub fn status_of(value: Option<&str>) -> &'static str {
    let status = value
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned));
    match status.as_deref() {
        Some("running") => "running",
        _ => "idle",
    }
}

pub async fn status(
    State(state): State<AppState>,
    Path(path): Path<UploaderPath>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let uploader = find_uploader(&state, &path)?;
    let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
    let value: Option<String> = redis::cmd("GET")
        .arg(redis_key(&uploader.uploader_id, tenant.as_str()))
        .query_async(&mut redis)
        .await
        .map_err(|error| ApiError::unavailable("Redis", error))?;
    Ok(Json(json!({"status": status_of(value.as_deref())})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_unreadable_values_are_idle() {
        assert_eq!(status_of(None), "idle");
        assert_eq!(status_of(Some("not json")), "idle");
        assert_eq!(status_of(Some(r#"{"status":"running"}"#)), "running");
        assert_eq!(status_of(Some(r#"{"status":"idle"}"#)), "idle");
    }
}
