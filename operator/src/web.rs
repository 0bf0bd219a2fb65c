//! The probe endpoints: `/healthz` (the process serves) and `/readyz` (its servers
//! answer; the JSON also says whether this process leads), and `/metrics` (Prometheus
//! text).

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, http::header, routing::get};
use serde::Serialize;
use tokio::sync::watch;

use crate::{
    dependencies::Readiness, kafka::AdminMetrics, leader::Role, metrics,
    scaler::metrics::ScalerMetrics,
};

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct Probes {
    pub readiness: watch::Receiver<Readiness>,
    pub role: watch::Receiver<Role>,
    pub admin: Arc<AdminMetrics>,
    pub scaler: Arc<ScalerMetrics>,
}

impl Probes {
    fn leader(&self) -> bool {
        *self.role.borrow() == Role::Leader
    }
}

pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(probes)
}

/// `/readyz`: the dependencies' readiness (which alone sets the status code, so a
/// standby replica is ready too) and the leadership.
#[derive(Debug, Serialize)]
struct ReadyzBody {
    #[serde(flatten)]
    readiness: Readiness,
    leader: bool,
}

async fn readyz(State(probes): State<Probes>) -> (StatusCode, Json<ReadyzBody>) {
    let readiness = probes.readiness.borrow().clone();
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(ReadyzBody { readiness, leader: probes.leader() }))
}

async fn render_metrics(State(probes): State<Probes>) -> impl axum::response::IntoResponse {
    let mut body = String::new();
    probes.admin.render(&mut body);
    probes.scaler.render(&mut body);
    metrics::reconciles().render(&mut body);
    metrics::render_leader(probes.leader(), &mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
