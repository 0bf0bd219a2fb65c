//! Reconcile metrics of every controller, in the Prometheus text format that the rest of
//! `/metrics` uses: runs and failures by kind, a duration histogram, and the leader
//! gauge.
//!
//! The counters are process-wide ([`reconciles`]), like the Prometheus default
//! registry: a controller records with one line in `reconcile` and one in
//! `error_policy`, without threading a handle through its context.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Mutex, PoisonError},
    time::Instant,
};

/// Upper bounds (seconds) of the duration histogram's buckets.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Counts per bucket (not cumulative), then the sum and count of all observations.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Series {
    reconciliations: BTreeMap<String, u64>,
    failures: BTreeMap<(String, &'static str), u64>,
    durations: BTreeMap<String, Histogram>,
}

/// Reconciliations, failures and durations by kind.
#[derive(Debug)]
pub struct ReconcileMetrics {
    series: Mutex<Series>,
}

static RECONCILES: ReconcileMetrics = ReconcileMetrics::new();

/// The process-wide reconcile metrics.
pub fn reconciles() -> &'static ReconcileMetrics {
    &RECONCILES
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ReconcileMetrics {
    pub const fn new() -> Self {
        Self {
            series: Mutex::new(Series {
                reconciliations: BTreeMap::new(),
                failures: BTreeMap::new(),
                durations: BTreeMap::new(),
            }),
        }
    }

    fn series(&self) -> std::sync::MutexGuard<'_, Series> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one reconcile of `kind` and measures it until the timer drops, so a
    /// reconcile that returns early or fails is measured too.
    #[must_use = "the reconcile is measured until the timer drops"]
    pub fn start(&'static self, kind: &str) -> ReconcileTimer {
        *self.series().reconciliations.entry(kind.to_owned()).or_default() += 1;
        ReconcileTimer { metrics: self, kind: kind.to_owned(), started: Instant::now() }
    }

    /// Counts one failed reconcile of `kind`; `reason` is the error's stable reason.
    pub fn failed(&self, kind: &str, reason: &'static str) {
        *self.series().failures.entry((kind.to_owned(), reason)).or_default() += 1;
    }

    fn observe(&self, kind: &str, seconds: f64) {
        let mut series = self.series();
        match series.durations.get_mut(kind) {
            Some(histogram) => histogram.observe(seconds),
            None => {
                let mut histogram = Histogram::default();
                histogram.observe(seconds);
                series.durations.insert(kind.to_owned(), histogram);
            }
        }
    }

    /// Reconciles of `kind` counted so far.
    pub fn reconciliations(&self, kind: &str) -> u64 {
        self.series().reconciliations.get(kind).copied().unwrap_or(0)
    }

    /// Prometheus text exposition of the series.
    pub fn render(&self, out: &mut String) {
        let series = self.series();
        out.push_str(
            "# HELP licenseware_reconciliations_total Reconciles started, by kind.\n\
             # TYPE licenseware_reconciliations_total counter\n",
        );
        for (kind, count) in &series.reconciliations {
            let _ = writeln!(out, "licenseware_reconciliations_total{{kind=\"{kind}\"}} {count}");
        }
        out.push_str(
            "# HELP licenseware_reconcile_failures_total Reconciles that failed, by kind and \
             reason.\n\
             # TYPE licenseware_reconcile_failures_total counter\n",
        );
        for ((kind, reason), count) in &series.failures {
            let _ = writeln!(
                out,
                "licenseware_reconcile_failures_total{{kind=\"{kind}\",reason=\"{reason}\"}} {count}"
            );
        }
        let name = "licenseware_reconcile_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time spent in one reconcile, by kind.\n# TYPE {name} histogram"
        );
        for (kind, histogram) in &series.durations {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ =
                    writeln!(out, "{name}_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {count}\n\
                 {name}_sum{{kind=\"{kind}\"}} {sum}\n\
                 {name}_count{{kind=\"{kind}\"}} {count}",
                count = histogram.count,
                sum = histogram.sum,
            );
        }
    }
}

/// Measures one reconcile; records its duration when dropped.
#[derive(Debug)]
pub struct ReconcileTimer {
    metrics: &'static ReconcileMetrics,
    kind: String,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics.observe(&self.kind, self.started.elapsed().as_secs_f64());
    }
}

/// The `licenseware_leader` gauge: 1 while this process holds the Lease (or runs
/// without election), 0 otherwise.
pub fn render_leader(leader: bool, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP licenseware_leader Whether this process is the leader and runs the controllers.\n\
         # TYPE licenseware_leader gauge\n\
         licenseware_leader {}",
        u8::from(leader)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_when_rendered() {
        let metrics: &'static ReconcileMetrics = Box::leak(Box::new(ReconcileMetrics::new()));
        metrics.observe("Topic", 0.003);
        metrics.observe("Topic", 0.07);
        metrics.observe("Topic", 100.0);
        drop(metrics.start("Topic"));
        metrics.failed("Topic", "KafkaError");
        metrics.failed("Topic", "KafkaError");
        let mut out = String::new();
        metrics.render(&mut out);
        let name = "licenseware_reconcile_duration_seconds";
        assert!(out.contains("licenseware_reconciliations_total{kind=\"Topic\"} 1\n"), "{out}");
        assert!(out.contains(
            "licenseware_reconcile_failures_total{kind=\"Topic\",reason=\"KafkaError\"} 2\n"
        ));
        assert!(out.contains(&format!("# TYPE {name} histogram\n")));
        // The timer's own observation is well under 5 ms.
        assert!(
            out.contains(&format!("{name}_bucket{{kind=\"Topic\",le=\"0.005\"}} 2\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{name}_bucket{{kind=\"Topic\",le=\"0.1\"}} 3\n")));
        assert!(out.contains(&format!("{name}_bucket{{kind=\"Topic\",le=\"30\"}} 3\n")));
        assert!(out.contains(&format!("{name}_bucket{{kind=\"Topic\",le=\"+Inf\"}} 4\n")));
        assert!(out.contains(&format!("{name}_count{{kind=\"Topic\"}} 4\n")));
        assert_eq!(metrics.reconciliations("Topic"), 1);
    }

    #[test]
    fn leader_gauge() {
        let mut out = String::new();
        render_leader(false, &mut out);
        assert!(out.ends_with("# TYPE licenseware_leader gauge\nlicenseware_leader 0\n"), "{out}");
    }
}
