//! Gauges of the lag scaler, one series per uploader, in the operator's `/metrics`.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{collector::Collector, encoding::DescriptorEncoder};

use crate::metrics::{counter, counters, gauge, gauges};

/// The Kafka requests of the offset reader, the label of its request counter.
const LAG_CALLS: [&str; 4] = ["metadata", "find_coordinator", "offset_fetch", "list_offsets"];

/// A gauge: name, help text and how to read it from the figures.
type UploaderGauge = (&'static str, &'static str, fn(&UploaderFigures) -> i64);

/// The figures of one uploader at its last poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploaderFigures {
    pub lag: i64,
    pub desired_replicas: i32,
    pub replicas: i32,
}

/// Latest figures by (namespace, uploader name), and the scaler loop's ticks.
#[derive(Debug, Default)]
pub struct ScalerMetrics {
    figures: Mutex<BTreeMap<(String, String), UploaderFigures>>,
    lag_requests: [AtomicU64; LAG_CALLS.len()],
    lag_batches: AtomicU64,
    lag_reads: AtomicU64,
    ticks: Mutex<Ticks>,
}

/// The scaler loop's ticks: how many, their total and last duration, the longest one,
/// and how many Uploaders the last one scaled.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Ticks {
    pub count: u64,
    pub seconds_total: f64,
    pub last_seconds: f64,
    pub max_seconds: f64,
    pub last_uploaders: u64,
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
            .insert((namespace.to_owned(), name.to_owned()), figures);
    }

    /// Keeps the series of the uploaders for which `keep(namespace, name)` holds: the
    /// scaler loop drops those of deleted uploaders each tick.
    pub fn retain(&self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.figures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(namespace, name), _| keep(namespace, name));
    }

    /// One tick of the scaler loop, which took `took` for `uploaders` uploaders.
    pub fn observe_tick(&self, took: Duration, uploaders: usize) {
        let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
        let seconds = took.as_secs_f64();
        ticks.count += 1;
        ticks.seconds_total += seconds;
        ticks.last_seconds = seconds;
        ticks.max_seconds = ticks.max_seconds.max(seconds);
        ticks.last_uploaders = uploaders as u64;
    }

    pub fn ticks(&self) -> Ticks {
        *self.ticks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Collector for ScalerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        counters(
            &mut encoder,
            "licenseware_scaler_kafka_requests",
            "Kafka requests of the lag reader, by kind.",
            self.lag_requests().into_iter().map(|(call, count)| ([("call", call)], count)),
        )?;
        counter(
            &mut encoder,
            "licenseware_scaler_lag_batches",
            "Batches of lag reads.",
            self.lag_batches.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "licenseware_scaler_lag_reads",
            "Distinct lag reads carried by batches.",
            self.lag_reads.load(Ordering::Relaxed),
        )?;
        let ticks = self.ticks();
        counter(
            &mut encoder,
            "licenseware_scaler_ticks",
            "Ticks of the scaler loop.",
            ticks.count,
        )?;
        counter(
            &mut encoder,
            "licenseware_scaler_tick_seconds",
            "Time spent in scaler ticks.",
            ticks.seconds_total,
        )?;
        gauge(
            &mut encoder,
            "licenseware_scaler_last_tick_seconds",
            "Duration of the last scaler tick.",
            ticks.last_seconds,
        )?;
        gauge(
            &mut encoder,
            "licenseware_scaler_max_tick_seconds",
            "Longest scaler tick so far.",
            ticks.max_seconds,
        )?;
        gauge(
            &mut encoder,
            "licenseware_scaler_tick_uploaders",
            "Uploaders the last scaler tick read.",
            ticks.last_uploaders,
        )?;
        let figures = self.figures.lock().unwrap_or_else(PoisonError::into_inner);
        let uploader_gauges: [UploaderGauge; 3] = [
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
        for (name, help, value) in uploader_gauges {
            gauges(
                &mut encoder,
                name,
                help,
                figures.iter().map(|((namespace, uploader), f)| {
                    ([("namespace", namespace.as_str()), ("uploader", uploader.as_str())], value(f))
                }),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn renders_one_series_per_uploader() {
        let metrics = Arc::new(ScalerMetrics::default());
        metrics.set(
            "apps",
            "rv-tools",
            UploaderFigures { lag: 7, desired_replicas: 2, replicas: 1 },
        );
        let out = crate::metrics::encode_one(Arc::clone(&metrics));
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
        let out = crate::metrics::encode_one(Arc::clone(&metrics));
        assert!(out.contains("licenseware_scaler_kafka_requests_total{call=\"offset_fetch\"} 1\n"));
        assert!(out.contains("licenseware_scaler_lag_reads_total 3\n"), "{out}");
        metrics.observe_tick(Duration::from_millis(250), 4);
        let out = crate::metrics::encode_one(Arc::clone(&metrics));
        assert!(out.contains("licenseware_scaler_ticks_total 1\n"), "{out}");
        assert!(out.contains("licenseware_scaler_last_tick_seconds 0.25\n"), "{out}");
        assert!(out.contains("licenseware_scaler_tick_uploaders 4\n"), "{out}");
        metrics.retain(|_, name| name != "rv-tools");
        let out = crate::metrics::encode_one(Arc::clone(&metrics));
        assert!(!out.contains("rv-tools"), "{out}");
    }
}
