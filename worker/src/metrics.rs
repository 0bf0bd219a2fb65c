//! `/metrics` of the worker's servers (`serve`, `consume`): one prometheus-client
//! registry per process, encoded as OpenMetrics text, so label values (routes, app
//! and component ids) are escaped and cannot forge series.

use prometheus_client::registry::Registry;

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String fails only if a collector fails; the metrics here have none.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(%error, "cannot encode the metrics");
    }
    out
}
