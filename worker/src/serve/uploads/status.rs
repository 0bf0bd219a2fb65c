//! `GET .../status`: `{"status": "idle"|"running"}` from the worker's Redis key (SDK
//! §2.4; idle when the key is missing or expired), or, with `Accept:
//! text/event-stream`, a stream: the current status at once, then every change the
//! worker makes (`status` events) and every step of its events (`step` events: file,
//! outcome, error), as the worker publishes them on the channel of the key's name.

use std::convert::Infallible;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
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

/// The first event of a stream: the stored value, or idle.
fn current_event(value: Option<&str>) -> Value {
    value
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"status": status_of(None)}))
}

/// `step` for a worker's step record, `status` for everything else.
fn event_kind(payload: &str) -> &'static str {
    let kind = serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
    if kind.as_deref() == Some("step") { "step" } else { "status" }
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

pub async fn status(
    State(state): State<AppState>,
    Path(path): Path<UploaderPath>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let uploader = find_uploader(&state, &path)?;
    let key = redis_key(&uploader.uploader_id, tenant.as_str());
    if wants_stream(&headers) {
        return stream(&state, key).await;
    }
    let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .map_err(|error| ApiError::unavailable("Redis", error))?;
    Ok(Json(json!({"status": status_of(value.as_deref())})).into_response())
}

async fn stream(state: &AppState, key: String) -> Result<Response, ApiError> {
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::unavailable("status streams", "too many are open"))?;
    let unavailable = |error: redis::RedisError| ApiError::unavailable("Redis", error);
    // Subscribed before the current value is read, so no change falls in between.
    let mut pubsub = state.redis_client().get_async_pubsub().await.map_err(unavailable)?;
    pubsub.subscribe(&key).await.map_err(unavailable)?;
    let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
    let value: Option<String> =
        redis::cmd("GET").arg(&key).query_async(&mut redis).await.map_err(unavailable)?;
    let first = Event::default().event("status").data(current_event(value.as_deref()).to_string());
    let changes = pubsub.into_on_message().map(move |message| {
        // The permit lives as long as the stream.
        let _held = &permit;
        let payload: String = message.get_payload().unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event(event_kind(&payload)).data(payload))
    });
    let events = futures::stream::once(async move { Ok(first) }).chain(changes);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
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

    #[test]
    fn streams_start_with_the_stored_value_and_tell_steps_apart() {
        assert_eq!(current_event(None), json!({"status": "idle"}));
        let stored = r#"{"status":"running","event_id":"e"}"#;
        assert_eq!(current_event(Some(stored))["event_id"], "e");
        assert_eq!(event_kind(r#"{"type":"step","step":"validate"}"#), "step");
        assert_eq!(event_kind(stored), "status");
        assert_eq!(event_kind("garbage"), "status");
    }

    #[test]
    fn the_accept_header_asks_for_a_stream() {
        let mut headers = HeaderMap::new();
        assert!(!wants_stream(&headers));
        headers.insert(header::ACCEPT, "text/event-stream".parse().unwrap());
        assert!(wants_stream(&headers));
    }
}
