//! The probe endpoints: `/healthz` (the process serves) and `/readyz` (its servers
//! answer; the JSON also says whether this process leads), and `/metrics` (OpenMetrics
//! text).

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, http::header, routing::get};
use serde::Serialize;
use tokio::sync::watch;

use prometheus_client::registry::Registry;

use crate::{
    dependencies::Readiness,
    kafka::AdminMetrics,
    leader::Role,
    metrics::{self, LeaderCollector, ReconcileCollector},
    scaler::metrics::ScalerMetrics,
};

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct Probes {
    pub readiness: watch::Receiver<Readiness>,
    pub role: watch::Receiver<Role>,
    pub metrics: Arc<Registry>,
}

/// The process's one metrics registry: reconciles, Kafka admin calls, the scaler and
/// the leadership.
pub fn registry(
    admin: Arc<AdminMetrics>,
    scaler: Arc<ScalerMetrics>,
    role: watch::Receiver<Role>,
) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(admin));
    registry.register_collector(Box::new(scaler));
    registry.register_collector(Box::new(ReconcileCollector(metrics::reconciles())));
    registry.register_collector(Box::new(LeaderCollector(role)));
    registry
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
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::encode(&probes.metrics))
}
