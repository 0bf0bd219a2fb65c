//! What the benchmarks read of a process from /proc (Linux): peak memory and CPU time.

use anyhow::Context;

/// Peak resident set size of a process (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// Current resident set size of a process (VmRSS), in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .with_context(|| format!("{field} in /proc/<pid>/status"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

/// User + system CPU time of a process, in seconds.
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    // Linux reports these in USER_HZ, 100 on every architecture it supports.
    const TICKS_PER_SEC: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(") ").context("/proc/<pid>/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime) = (fields.get(11), fields.get(12));
    let ticks: u64 =
        utime.context("utime")?.parse::<u64>()? + stime.context("stime")?.parse::<u64>()?;
    Ok(ticks as f64 / TICKS_PER_SEC)
}
