//! The probe endpoints: `/healthz` (the process serves) and `/readyz` (its servers
//! answer), and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, http::header, routing::get};
use tokio::sync::watch;

use crate::{dependencies::Readiness, kafka::AdminMetrics, scaler::metrics::ScalerMetrics};

pub fn router(
    readiness: watch::Receiver<Readiness>,
    metrics: Arc<AdminMetrics>,
    scaler: Arc<ScalerMetrics>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                let scaler = Arc::clone(&scaler);
                async move {
                    let mut body = String::new();
                    metrics.render(&mut body);
                    scaler.render(&mut body);
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                }
            }),
        )
}

async fn readyz(
    State(readiness): State<watch::Receiver<Readiness>>,
) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness.borrow().clone();
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}
