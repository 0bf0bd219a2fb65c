//! `/metrics` in the Prometheus text format: requests by route and status, a latency
//! histogram per route, uploads, uploaded bytes and quota refusals. Routes are the
//! matched patterns (`/{app_id}/uploads/{uploader}/files`), never raw paths, so an
//! attacker cannot grow the series.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Series {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    /// Component data answers by (app, component, hit|miss). Only registered
    /// components are counted, so the series are as many as the registry's.
    component_cache: BTreeMap<(String, String, &'static str), u64>,
    /// Downloads started, by format (json, csv, xlsx).
    downloads: BTreeMap<&'static str, u64>,
    /// Data-table edits by action (insert, update, delete) and outcome (`ok`, or the
    /// error's stable reason): static labels only, so the series are few.
    datatable_edits: BTreeMap<(&'static str, &'static str), u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
    pub uploads: AtomicU64,
    pub uploaded_files: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    pub quota_refusals: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *series.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let histogram = series.latency.entry(route.to_owned()).or_default();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[index] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    pub fn component_cache(&self, app: &str, component: &str, result: &'static str) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *series
            .component_cache
            .entry((app.to_owned(), component.to_owned(), result))
            .or_default() += 1;
    }

    pub fn download(&self, format: &'static str) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *series.downloads.entry(format).or_default() += 1;
    }

    pub fn datatable_edit(&self, action: &'static str, outcome: &'static str) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *series.datatable_edits.entry((action, outcome)).or_default() += 1;
    }

    pub fn count(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        out.push_str("# HELP licenseware_api_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE licenseware_api_requests_total counter\n");
        for ((method, route, status), count) in &series.requests {
            let _ = writeln!(
                out,
                "licenseware_api_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP licenseware_api_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE licenseware_api_request_duration_seconds histogram\n");
        for (route, histogram) in &series.latency {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "licenseware_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "licenseware_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 licenseware_api_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 licenseware_api_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        out.push_str("# HELP licenseware_api_component_cache_total Component data answers from the cache (hit) or computed (miss).\n");
        out.push_str("# TYPE licenseware_api_component_cache_total counter\n");
        for ((app, component, result), count) in &series.component_cache {
            let _ = writeln!(
                out,
                "licenseware_api_component_cache_total{{app=\"{app}\",component=\"{component}\",result=\"{result}\"}} {count}"
            );
        }
        out.push_str("# HELP licenseware_api_downloads_total Downloads started, by format.\n");
        out.push_str("# TYPE licenseware_api_downloads_total counter\n");
        for (format, count) in &series.downloads {
            let _ = writeln!(out, "licenseware_api_downloads_total{{format=\"{format}\"}} {count}");
        }
        out.push_str("# HELP licenseware_api_datatable_edits_total Data-table edits by action and outcome (ok, or the refusal's reason).\n");
        out.push_str("# TYPE licenseware_api_datatable_edits_total counter\n");
        for ((action, outcome), count) in &series.datatable_edits {
            let _ = writeln!(
                out,
                "licenseware_api_datatable_edits_total{{action=\"{action}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        drop(series);
        for (name, help, counter) in [
            ("licenseware_api_uploads_total", "Upload requests that sent an event.", &self.uploads),
            ("licenseware_api_uploaded_files_total", "Files accepted.", &self.uploaded_files),
            (
                "licenseware_api_uploaded_bytes_total",
                "Bytes received in files.",
                &self.uploaded_bytes,
            ),
            (
                "licenseware_api_quota_refusals_total",
                "Requests refused with 402.",
                &self.quota_refusals,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
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
        assert!(text.contains("le=\"0.0025\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("licenseware_api_quota_refusals_total 1"), "{text}");
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
