//! The load generator: wrk (Debian's `wrk`), driven by a Lua script per target that sets
//! the method, body and headers and prints wrk's own summary as one JSON line.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, bail};
use serde_json::Value;

use super::procs::{RssSampler, tree_cpu_secs};

/// One route under load, and the process tree that serves it.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: String,
    pub method: &'static str,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    pub server_pid: u32,
    /// Lua appended to the script, e.g. a `request()` that varies each request.
    pub extra_lua: Option<String>,
}

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// One run of wrk against one target.
#[derive(Debug, Clone)]
pub struct Sample {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Socket errors and timeouts.
    pub errors: u64,
    /// Answers with a status of 400 or more.
    pub failed: u64,
    /// Peak resident memory of the server's process tree during the run.
    pub rss_kib: u64,
    /// Server CPU time per request.
    pub cpu_us_per_request: f64,
}

const MARKER: &str = "BENCH_JSON ";

fn lua_string(text: &str) -> String {
    format!("{text:?}")
}

/// The Lua script that makes wrk send `target`'s request and report in JSON.
pub fn script(target: &Target) -> String {
    let mut lua = format!("wrk.method = {}\n", lua_string(target.method));
    if let Some(body) = &target.body {
        lua.push_str(&format!("wrk.body = {}\n", lua_string(body)));
        lua.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    for (name, value) in &target.headers {
        lua.push_str(&format!("wrk.headers[{}] = {}\n", lua_string(name), lua_string(value)));
    }
    if let Some(extra) = &target.extra_lua {
        lua.push_str(extra);
        lua.push('\n');
    }
    lua.push_str(&format!(
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{MARKER}{{"requests":%d,"duration_us":%d,"errors":%d,"failed":%d,"p50_us":%d,"p99_us":%d}}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#
    ));
    lua
}

/// Runs wrk once; the server's memory is sampled and its CPU time read meanwhile.
pub fn run(target: &Target, load: Load, scratch: &Path) -> anyhow::Result<Sample> {
    let script_path = scratch.join(format!("{}.lua", target.name.replace(['/', ' '], "_")));
    std::fs::write(&script_path, script(target)).context("write the wrk script")?;
    let cpu_before = tree_cpu_secs(target.server_pid);
    let sampler = RssSampler::start(target.server_pid);
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "10s", "-s"])
        .arg(&script_path)
        .arg(&target.url)
        .output()
        .context("run wrk (apt-get install wrk)")?;
    let rss_kib = sampler.finish();
    let cpu = tree_cpu_secs(target.server_pid) - cpu_before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed on {}: {stdout}{}", target.name, String::from_utf8_lossy(&output.stderr));
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(MARKER))
        .with_context(|| format!("no summary from wrk: {stdout}"))?;
    let summary: Value = serde_json::from_str(line).context("wrk's summary")?;
    let field = |name: &str| summary[name].as_u64().unwrap_or(0);
    let requests = field("requests");
    let seconds = field("duration_us") as f64 / 1e6;
    Ok(Sample {
        requests,
        rps: if seconds > 0.0 { requests as f64 / seconds } else { 0.0 },
        p50_ms: field("p50_us") as f64 / 1000.0,
        p99_ms: field("p99_us") as f64 / 1000.0,
        errors: field("errors"),
        failed: field("failed"),
        rss_kib,
        cpu_us_per_request: if requests > 0 { cpu * 1e6 / requests as f64 } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_what_it_sends() {
        let target = Target {
            name: "x".into(),
            url: "http://127.0.0.1:1/".into(),
            method: "POST",
            body: Some(r#"["a \"b\".xlsx"]"#.into()),
            headers: vec![("TenantId".into(), "t".into())],
            server_pid: 1,
            extra_lua: Some("function request() return wrk.format() end".into()),
        };
        let lua = script(&target);
        assert!(lua.contains(r#"wrk.body = "[\"a \\\"b\\\".xlsx\"]""#), "{lua}");
        assert!(lua.contains(r#"wrk.headers["TenantId"] = "t""#), "{lua}");
        assert!(lua.contains("percentile(99)"));
        assert!(lua.contains("function request()"), "{lua}");
    }
}
