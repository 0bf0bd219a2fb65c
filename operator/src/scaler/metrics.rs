//! Gauges of the lag scaler, one series per uploader, in the operator's `/metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

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
}

impl ScalerMetrics {
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

    /// Prometheus text exposition of the gauges.
    pub fn render(&self, out: &mut String) {
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
        metrics.forget_idle(Duration::ZERO);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(!out.contains("rv-tools"), "{out}");
    }
}
