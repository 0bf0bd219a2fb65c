//! The probe endpoints: `/healthz` (the process serves) and `/readyz` (its servers answer).

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use tokio::sync::watch;

use crate::dependencies::Readiness;

pub fn router(readiness: watch::Receiver<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn readyz(
    State(readiness): State<watch::Receiver<Readiness>>,
) -> (StatusCode, Json<Readiness>) {
    let readiness = readiness.borrow().clone();
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}
