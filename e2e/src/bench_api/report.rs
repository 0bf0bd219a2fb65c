//! Medians, ratios and the tables `make bench-api` prints.

use std::{collections::BTreeMap, time::Duration};

use super::load::Sample;

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The samples of each target, rounds in order.
#[derive(Debug, Default)]
pub struct Rounds {
    pub order: Vec<String>,
    pub samples: BTreeMap<String, Vec<Sample>>,
}

impl Rounds {
    pub fn push(&mut self, target: &str, sample: Sample) {
        if !self.order.iter().any(|t| t == target) {
            self.order.push(target.to_owned());
        }
        self.samples.entry(target.to_owned()).or_default().push(sample);
    }

    fn values(&self, target: &str, f: impl Fn(&Sample) -> f64) -> Vec<f64> {
        self.samples.get(target).map(|s| s.iter().map(f).collect()).unwrap_or_default()
    }

    pub fn median_rps(&self, target: &str) -> Option<f64> {
        let values = self.values(target, |s| s.rps);
        (!values.is_empty()).then(|| median(&values))
    }

    pub fn peak_rss_kib(&self, target: &str) -> Option<u64> {
        self.samples.get(target).and_then(|s| s.iter().map(|s| s.rss_kib).max())
    }

    /// `a`'s rate over `b`'s: the median of the per-round ratios (both ran in the same
    /// round, next to each other).
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        let (a, b) = (self.values(a, |s| s.rps), self.values(b, |s| s.rps));
        let ratios: Vec<f64> =
            a.iter().zip(&b).filter(|(_, b)| **b > 0.0).map(|(a, b)| a / b).collect();
        (!ratios.is_empty()).then(|| median(&ratios))
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<44} {:>22} {:>8} {:>8} {:>9} {:>10} {:>8}\n",
            "target",
            "req/s median (min-max)",
            "p50 ms",
            "p99 ms",
            "RSS MiB",
            "CPU us/req",
            "errors"
        );
        for target in &self.order {
            let rps = self.values(target, |s| s.rps);
            let (low, high) = min_max(&rps);
            let errors: u64 = self
                .samples
                .get(target)
                .map(|s| s.iter().map(|s| s.errors + s.failed).sum())
                .unwrap_or(0);
            out.push_str(&format!(
                "{:<44} {:>22} {:>8.2} {:>8.2} {:>9.1} {:>10.0} {:>8}\n",
                target,
                format!("{:.0} ({:.0}-{:.0})", median(&rps), low, high),
                median(&self.values(target, |s| s.p50_ms)),
                median(&self.values(target, |s| s.p99_ms)),
                mib(self.peak_rss_kib(target).unwrap_or(0)),
                median(&self.values(target, |s| s.cpu_us_per_request)),
                errors,
            ));
        }
        out
    }
}

/// The timings of one file size.
#[derive(Debug, Clone, Default)]
pub struct UploadRow {
    pub megabytes: u64,
    pub cp: Vec<Duration>,
    pub checked: Vec<Duration>,
    pub names_only: Vec<Duration>,
    /// Names only, sent by curl.
    pub names_curl: Vec<Duration>,
    /// The API process before the first upload of this size.
    pub idle_rss_kib: u64,
    /// Its highest VmRSS sampled during the uploads, and its VmHWM after them.
    pub peak_rss_kib: u64,
    pub hwm_kib: u64,
}

fn secs(values: &[Duration]) -> Vec<f64> {
    values.iter().map(Duration::as_secs_f64).collect()
}

impl UploadRow {
    pub fn cp_s(&self) -> f64 {
        median(&secs(&self.cp))
    }
    pub fn checked_s(&self) -> f64 {
        median(&secs(&self.checked))
    }
    pub fn names_s(&self) -> f64 {
        median(&secs(&self.names_only))
    }
    pub fn names_curl_s(&self) -> f64 {
        median(&secs(&self.names_curl))
    }
}

pub fn upload_table(rows: &[UploadRow]) -> String {
    let mut out = format!(
        "{:>7} {:>5} {:>9} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10} {:>12} {:>9} {:>9} {:>9}\n",
        "size",
        "runs",
        "cp s",
        "upload s",
        "names s",
        "upload/cp",
        "names/cp",
        "curl s",
        "curl/cp",
        "content part",
        "idle MiB",
        "peak MiB",
        "HWM MiB"
    );
    for row in rows {
        let (cp, checked, names) = (row.cp_s(), row.checked_s(), row.names_s());
        let curl = row.names_curl_s();
        out.push_str(&format!(
            "{:>7} {:>5} {:>9.3} {:>12.3} {:>12.3} {:>9.2}x {:>9.2}x {:>10.3} {:>9.2}x {:>11.1}% {:>9.1} {:>9.1} {:>9.1}\n",
            format!("{} MB", row.megabytes),
            row.checked.len(),
            cp,
            checked,
            names,
            checked / cp,
            names / cp,
            curl,
            curl / cp,
            (checked - names) / checked * 100.0,
            mib(row.idle_rss_kib),
            mib(row.peak_rss_kib),
            mib(row.hwm_kib),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rps: f64) -> Sample {
        Sample {
            requests: 1,
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            failed: 0,
            rss_kib: 1024,
            cpu_us_per_request: 1.0,
        }
    }

    #[test]
    fn medians_and_per_round_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut rounds = Rounds::default();
        for (a, b) in [(100.0, 10.0), (90.0, 10.0), (300.0, 20.0)] {
            rounds.push("a", sample(a));
            rounds.push("b", sample(b));
        }
        assert_eq!(rounds.ratio("a", "b"), Some(10.0));
        assert_eq!(rounds.median_rps("a"), Some(100.0));
        assert!(rounds.table().contains("100 (90-300)"));
    }
}
