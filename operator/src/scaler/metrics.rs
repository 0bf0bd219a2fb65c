//! Gauges of the lag scaler, one series per uploader, in the operator's `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// The Kafka requests of the offset reader, the label of its request counter.
const LAG_CALLS: [&str; 4] = ["metadata", "find_coordinator", "offset_fetch", "list_offsets"];

/// A gauge: name, help text and how to read it from the figures.
type Gauge = (&'static str, &'static str, fn(&UploaderFigures) -> i64);

/// The figures of one uploader at its last poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploaderFigures {
    pub lag: i64,
    pub desired_replicas: i32,
    pub replicas: i32,
}

/// Latest figures by (namespace, uploader name).
#[derive(Debug, Default)]
pub struct ScalerMetrics {
    figures: Mutex<BTreeMap<(String, String), (UploaderFigures, Instant)>>,
    lag_requests: [AtomicU64; LAG_CALLS.len()],
    lag_batches: AtomicU64,
    lag_reads: AtomicU64,
}

impl ScalerMetrics {
    /// One Kafka request of the offset reader; `call` is one of [`LAG_CALLS`].
    pub fn count_lag_request(&self, call: &str) {
        if let Some(index) = LAG_CALLS.iter().position(|c| *c == call) {
            self.lag_requests[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One batch of the offset reader, carrying `reads` distinct reads.
    pub fn count_lag_batch(&self, reads: usize) {
        self.lag_batches.fetch_add(1, Ordering::Relaxed);
        self.lag_reads.fetch_add(reads as u64, Ordering::Relaxed);
    }

    /// Requests of the offset reader so far, by call.
    pub fn lag_requests(&self) -> BTreeMap<&'static str, u64> {
        LAG_CALLS
            .iter()
            .zip(&self.lag_requests)
            .map(|(call, count)| (*call, count.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn set(&self, namespace: &str, name: &str, figures: UploaderFigures) {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((namespace.to_owned(), name.to_owned()), (figures, Instant::now()));
    }

    /// Drops the series of uploaders not polled for `idle` (deleted ones).
    pub fn forget_idle(&self, idle: Duration) {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (_, at)| at.elapsed() < idle);
    }

    /// Prometheus text exposition of the gauges and the offset reader's counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP licenseware_scaler_kafka_requests_total Kafka requests of the lag reader, by kind.\n\
             # TYPE licenseware_scaler_kafka_requests_total counter"
        );
        for (call, count) in self.lag_requests() {
            let _ =
                writeln!(out, "licenseware_scaler_kafka_requests_total{{call=\"{call}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP licenseware_scaler_lag_batches_total Batches of lag reads.\n\
             # TYPE licenseware_scaler_lag_batches_total counter\n\
             licenseware_scaler_lag_batches_total {}\n\
             # HELP licenseware_scaler_lag_reads_total Distinct lag reads carried by batches.\n\
             # TYPE licenseware_scaler_lag_reads_total counter\n\
             licenseware_scaler_lag_reads_total {}",
            self.lag_batches.load(Ordering::Relaxed),
            self.lag_reads.load(Ordering::Relaxed)
        );
        let figures = self.figures.lock().unwrap_or_else(PoisonError::into_inner);
        let gauges: [Gauge; 3] = [
            (
                "licenseware_uploader_lag",
                "Unconsumed events of the uploader's consumer group at the last poll.",
                |f| f.lag,
            ),
            (
                "licenseware_uploader_desired_replicas",
                "Worker replicas the lag scaler asks for.",
                |f| i64::from(f.desired_replicas),
            ),
            ("licenseware_uploader_replicas", "Worker replicas set on the Deployment.", |f| {
                i64::from(f.replicas)
            }),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for ((namespace, uploader), (f, _)) in figures.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{namespace=\"{namespace}\",uploader=\"{uploader}\"}} {}",
                    value(f)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_series_per_uploader() {
        let metrics = ScalerMetrics::default();
        metrics.set(
            "apps",
            "rv-tools",
            UploaderFigures { lag: 7, desired_replicas: 2, replicas: 1 },
        );
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("# TYPE licenseware_uploader_lag gauge\n"), "{out}");
        assert!(
            out.contains("licenseware_uploader_lag{namespace=\"apps\",uploader=\"rv-tools\"} 7\n")
        );
        assert!(out.contains(
            "licenseware_uploader_desired_replicas{namespace=\"apps\",uploader=\"rv-tools\"} 2\n"
        ));
        assert!(out.contains(
            "licenseware_uploader_replicas{namespace=\"apps\",uploader=\"rv-tools\"} 1\n"
        ));
        metrics.count_lag_request("offset_fetch");
        metrics.count_lag_batch(3);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains("licenseware_scaler_kafka_requests_total{call=\"offset_fetch\"} 1\n"));
        assert!(out.contains("licenseware_scaler_lag_reads_total 3\n"), "{out}");
        metrics.forget_idle(Duration::ZERO);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(!out.contains("rv-tools"), "{out}");
    }
}
