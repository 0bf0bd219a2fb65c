//! The operator's `/metrics`: one prometheus-client [`Registry`] per process, encoded
//! as OpenMetrics text (label values escaped, so a resource name cannot forge series).
//! The figures live where they are counted (reconciles here, Kafka admin calls, the
//! scaler) and are read at scrape time by a [`Collector`] each.
//!
//! The reconcile counters are process-wide ([`reconciles`]), like the Prometheus default
//! registry: a controller records with one line in `reconcile` and one in
//! `error_policy`, without threading a handle through its context.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Mutex, PoisonError},
    time::Instant,
};

use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
    },
    metrics::MetricType,
    registry::Registry,
};
use tokio::sync::watch;

use crate::leader::Role;

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String fails only if a collector fails, and ours do not.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(%error, "cannot encode the metrics");
    }
    out
}

/// One counter family: `name` without its `_total`, which the encoder appends.
pub(crate) fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        metric.encode_family(&labels)?.encode_counter::<NoLabelSet, V, u64>(&value, None)?;
    }
    Ok(())
}

/// One counter without labels.
pub(crate) fn counter<V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: V,
) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, V, u64>(&value, None)
}

/// One gauge family.
pub(crate) fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        metric.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// One gauge without labels.
pub(crate) fn gauge<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: V,
) -> fmt::Result {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

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

    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let series = self.series();
        counters(
            &mut encoder,
            "licenseware_reconciliations",
            "Reconciles started, by kind.",
            series.reconciliations.iter().map(|(kind, count)| ([("kind", kind.as_str())], *count)),
        )?;
        counters(
            &mut encoder,
            "licenseware_reconcile_failures",
            "Reconciles that failed, by kind and reason.",
            series.failures.iter().map(|((kind, reason), count)| {
                ([("kind", kind.as_str()), ("reason", reason)], *count)
            }),
        )?;
        let mut metric = encoder.encode_descriptor(
            "licenseware_reconcile_duration_seconds",
            "Time spent in one reconcile, by kind.",
            None,
            MetricType::Histogram,
        )?;
        for (kind, histogram) in &series.durations {
            let within: u64 = histogram.buckets.iter().sum();
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .copied()
                .zip(histogram.buckets)
                .chain([(f64::INFINITY, histogram.count - within)])
                .collect();
            metric.encode_family(&[("kind", kind.as_str())])?.encode_histogram::<NoLabelSet>(
                histogram.sum,
                histogram.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// The [`Collector`] of a [`ReconcileMetrics`], [`reconciles`] in the operator.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileCollector(pub &'static ReconcileMetrics);

impl Collector for ReconcileCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.0.encode(encoder)
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
#[derive(Debug)]
pub struct LeaderCollector(pub watch::Receiver<Role>);

impl Collector for LeaderCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let leading = *self.0.borrow() == Role::Leader;
        gauge(
            &mut encoder,
            "licenseware_leader",
            "Whether this process is the leader and runs the controllers.",
            i64::from(leading),
        )
    }
}

/// `collector` alone in a registry, as text: for the tests of each collector.
#[cfg(test)]
pub(crate) fn encode_one(collector: impl Collector) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    encode(&registry)
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
        let out = encode_one(ReconcileCollector(metrics));
        let name = "licenseware_reconcile_duration_seconds";
        assert!(out.contains("licenseware_reconciliations_total{kind=\"Topic\"} 1\n"), "{out}");
        assert!(out.contains(
            "licenseware_reconcile_failures_total{kind=\"Topic\",reason=\"KafkaError\"} 2\n"
        ));
        assert!(out.contains(&format!("# TYPE {name} histogram\n")));
        // The timer's own observation is well under 5 ms.
        assert!(
            out.contains(&format!("{name}_bucket{{le=\"0.005\",kind=\"Topic\"}} 2\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{name}_bucket{{le=\"0.1\",kind=\"Topic\"}} 3\n")));
        assert!(out.contains(&format!("{name}_bucket{{le=\"30.0\",kind=\"Topic\"}} 3\n")));
        assert!(out.contains(&format!("{name}_bucket{{le=\"+Inf\",kind=\"Topic\"}} 4\n")));
        assert!(out.contains(&format!("{name}_count{{kind=\"Topic\"}} 4\n")));
        assert_eq!(metrics.reconciliations("Topic"), 1);
    }

    #[test]
    fn leader_gauge() {
        let (role, receiver) = watch::channel(Role::Leader);
        let out = encode_one(LeaderCollector(receiver));
        assert!(out.contains("# TYPE licenseware_leader gauge\nlicenseware_leader 1\n"), "{out}");
        role.send_replace(Role::Lost);
        let out = encode_one(LeaderCollector(role.subscribe()));
        assert!(out.contains("licenseware_leader 0\n"), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics: &'static ReconcileMetrics = Box::leak(Box::new(ReconcileMetrics::new()));
        drop(metrics.start("Evil\"} 1\nforged_total{x=\"\\"));
        let out = encode_one(ReconcileCollector(metrics));
        assert!(
            out.contains(
                "licenseware_reconciliations_total{kind=\"Evil\\\"} 1\\nforged_total{x=\\\"\\\\\"} 1\n"
            ),
            "{out}"
        );
        assert!(!out.lines().any(|line| line.starts_with("forged_total")), "{out}");
    }
}
