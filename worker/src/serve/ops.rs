//! Operations: `/healthz` (the process answers), `/readyz` (the registry has been read
//! to its end and MongoDB, Redis and Kafka answer) and `/metrics`.

use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use mongodb::bson::doc;
use rdkafka::producer::Producer;
use serde_json::{Value, json};

use super::state::AppState;

/// Each dependency check's bound: a probe must answer well within its own timeout.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", security(),
    responses((status = 200, description = "The process answers", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(),
    responses(
        (status = 200, description = "Registry read, MongoDB, Redis and Kafka answer", body = Object),
        (status = 503, description = "What is not ready", body = Object),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let registry =
        if state.registry.caught_up() { Ok(()) } else { Err("not read to its end yet".to_owned()) };
    let mongo = async {
        let ping = state.database.run_command(doc! {"ping": 1});
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".to_owned()),
        }
    };
    let redis = async {
        let ping = async {
            let mut connection = state.redis().await.map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(result) => result.map(drop),
            Err(_) => Err("timed out".to_owned()),
        }
    };
    let kafka = {
        let producer = state.producer.clone();
        let errors = state.kafka_errors.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                producer.client().fetch_metadata(None, CHECK_TIMEOUT).map(drop).map_err(|e| {
                    match errors.last_error() {
                        Some(last) => format!("{e}; last client error: {last}"),
                        None => e.to_string(),
                    }
                })
            })
            .await
            .unwrap_or_else(|error| Err(error.to_string()))
        }
    };
    let (mongo, redis, kafka) = tokio::join!(mongo, redis, kafka);
    let checks = [("registry", registry), ("mongodb", mongo), ("redis", redis), ("kafka", kafka)];
    let ready = checks.iter().all(|(_, result)| result.is_ok());
    let detail: serde_json::Map<String, Value> = checks
        .into_iter()
        .map(|(name, result)| {
            (
                name.to_owned(),
                match result {
                    Ok(()) => json!("ok"),
                    Err(error) => json!(error),
                },
            )
        })
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if ready { "ready" } else { "not ready" }, "checks": detail})))
        .into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(),
    responses((status = 200, description = "OpenMetrics text format", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}

/// Records every request by its route pattern (unmatched paths as one series).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
