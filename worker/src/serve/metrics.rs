//! `/metrics` of `serve`: requests by route and status, a latency histogram per route,
//! uploads, uploaded bytes and quota refusals. Routes are the matched patterns
//! (`/{app_id}/uploads/{uploader}/files`), never raw paths, so an attacker cannot grow
//! the series.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Only registered components are counted, so the series are as many as the
/// registry's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ComponentCacheLabels {
    app: String,
    component: String,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DownloadLabels {
    format: &'static str,
}

/// Static labels only (the action, and `ok` or the error's stable reason), so the
/// series are few.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DatatableEditLabels {
    action: &'static str,
    outcome: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    component_cache: Family<ComponentCacheLabels, Counter>,
    downloads: Family<DownloadLabels, Counter>,
    datatable_edits: Family<DatatableEditLabels, Counter>,
    pub uploads: Counter,
    pub uploaded_files: Counter,
    pub uploaded_bytes: Counter,
    pub quota_refusals: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register(
            "licenseware_api_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "licenseware_api_request_duration_seconds",
            "Request latency by route",
            latency.clone(),
        );
        let component_cache = Family::default();
        registry.register(
            "licenseware_api_component_cache",
            "Component data answers from the cache (hit) or computed (miss)",
            component_cache.clone(),
        );
        let downloads = Family::default();
        registry.register(
            "licenseware_api_downloads",
            "Downloads started, by format",
            downloads.clone(),
        );
        let datatable_edits = Family::default();
        registry.register(
            "licenseware_api_datatable_edits",
            "Data-table edits by action and outcome (ok, or the refusal's reason)",
            datatable_edits.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let uploads =
            counter(&mut registry, "licenseware_api_uploads", "Upload requests that sent an event");
        let uploaded_files =
            counter(&mut registry, "licenseware_api_uploaded_files", "Files accepted");
        let uploaded_bytes =
            counter(&mut registry, "licenseware_api_uploaded_bytes", "Bytes received in files");
        let quota_refusals =
            counter(&mut registry, "licenseware_api_quota_refusals", "Requests refused with 402");
        Self {
            registry,
            requests,
            latency,
            component_cache,
            downloads,
            datatable_edits,
            uploads,
            uploaded_files,
            uploaded_bytes,
            quota_refusals,
        }
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method.to_owned(), route: route.to_owned(), status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(seconds);
    }

    pub fn component_cache(&self, app: &str, component: &str, result: &'static str) {
        let labels =
            ComponentCacheLabels { app: app.to_owned(), component: component.to_owned(), result };
        self.component_cache.get_or_create(&labels).inc();
    }

    pub fn download(&self, format: &'static str) {
        self.downloads.get_or_create(&DownloadLabels { format }).inc();
    }

    pub fn datatable_edit(&self, action: &'static str, outcome: &'static str) {
        self.datatable_edits.get_or_create(&DatatableEditLabels { action, outcome }).inc();
    }

    pub fn count(counter: &Counter, by: u64) {
        counter.inc_by(by);
    }

    pub fn render(&self) -> String {
        crate::metrics::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latency_are_rendered_by_route() {
        let metrics = Metrics::default();
        metrics.observe("POST", "/{app_id}/uploads/{uploader}/validation", 200, 0.002);
        metrics.observe("POST", "/{app_id}/uploads/{uploader}/validation", 200, 0.2);
        Metrics::count(&metrics.quota_refusals, 1);
        metrics.component_cache("app", "devices", "hit");
        metrics.component_cache("app", "devices", "hit");
        let text = metrics.render();
        assert!(text.contains(
            "licenseware_api_component_cache_total{app=\"app\",component=\"devices\",result=\"hit\"} 2"
        ), "{text}");
        assert!(text.contains(
            "licenseware_api_requests_total{method=\"POST\",route=\"/{app_id}/uploads/{uploader}/validation\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("le=\"0.0025\",route="), "{text}");
        assert!(text.contains("le=\"0.25\",route=\"/{app_id}/uploads/{uploader}/validation\"} 2"));
        assert!(
            text.contains("le=\"+Inf\",route=\"/{app_id}/uploads/{uploader}/validation\"} 2"),
            "{text}"
        );
        assert!(text.contains("licenseware_api_quota_refusals_total 1"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.component_cache("a\"} 1\nforged_total{x=\"\\", "c", "hit");
        let text = metrics.render();
        assert!(
            text.contains(
                "licenseware_api_component_cache_total{app=\"a\\\"} 1\\nforged_total{x=\\\"\\\\\",component=\"c\",result=\"hit\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.lines().any(|line| line.starts_with("forged_total")), "{text}");
    }

    #[test]
    fn downloads_and_datatable_edits_are_rendered_by_label() {
        let metrics = Metrics::default();
        metrics.download("csv");
        metrics.download("csv");
        metrics.datatable_edit("update", "ok");
        metrics.datatable_edit("update", "RowInvalid");
        let text = metrics.render();
        assert!(text.contains("licenseware_api_downloads_total{format=\"csv\"} 2"), "{text}");
        assert!(
            text.contains(
                "licenseware_api_datatable_edits_total{action=\"update\",outcome=\"RowInvalid\"} 1"
            ),
            "{text}"
        );
    }
}
