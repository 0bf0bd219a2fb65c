//! Component data of `make bench-api` (issue 12 §6), side by side in interleaved rounds:
//! - a cache hit of `GET /{app}/report-components/{component}` (wrk) against a bare
//!   `redis-benchmark GET` of a value of the body's size, at the same connections and
//!   threads, on the stack's Redis;
//! - a cache miss (every request a key of its own: wrk's script gives each request a
//!   `limit` of its own, all above the component's rows, so the rows are the same and
//!   the work is a real miss: lookup, lock, aggregation, SET) against the same
//!   aggregation (the API's own pipeline builder: the tenant's `$match` first, the same
//!   `$limit`) run straight with the Rust MongoDB driver, as many in flight as wrk's
//!   connections, for as long.
//!
//! The API's `licenseware_api_component_cache_total` counters are read around each run:
//! a hit run with a miss in it, or a miss run with a hit in it, is reported.

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use futures::TryStreamExt;
use licenseware_crds::{ReportComponent, report_component::ComponentData};
use licenseware_worker::serve::reports::{
    AGGREGATE_MAX_TIME,
    cache::generation_key,
    query::{self, MAX_LIMIT, Paging},
};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};

use super::{
    Options, auth_headers,
    load::{self, Load, Sample, Target},
    procs::RssSampler,
    report::{Rounds, mib},
    report_progress, secret_and_token, servers, upload,
};
use crate::{api::forget_tenants, consumer::ConsumerSetup, consumer::mongo_url_with_database};

pub const API_HIT: &str = "API component data, cache hit";
pub const REDIS_GET: &str = "redis-benchmark GET, value of the same size";
pub const API_MISS: &str = "API component data, cache miss";
pub const DRIVER: &str = "the same aggregation, Rust mongodb driver";

/// Distinct models among the seeded devices: the component's rows.
const MODELS: usize = 40;
/// The `limit`s of the miss runs: from here to [`MAX_LIMIT`], every one above the
/// component's rows.
const MISS_LIMIT_LOW: u64 = 100;
/// Seeded documents per insert.
const INSERT_BATCH: usize = 5_000;

/// The component of this part: devices per model, for the caller's tenant.
pub fn devices_by_model(app: &str, ttl_seconds: i64) -> anyhow::Result<ReportComponent> {
    let manifest = json!({
        "apiVersion": "licenseware.io/v1alpha1",
        "kind": "ReportComponent",
        "metadata": {"name": "devices-by-model", "namespace": "bench"},
        "spec": {
            "componentId": "devices_by_model",
            "appId": app,
            "title": "Devices by model",
            "type": "table",
            "attributes": {"columns": [
                {"name": "Model", "prop": "_id", "type": "string"},
                {"name": "Devices", "prop": "devices", "type": "number"},
            ]},
            "data": {
                "collection": "Data",
                "cacheTtlSeconds": ttl_seconds,
                // One accumulator: the stack's FerretDB v1 computes only the first.
                "pipeline": [
                    {"$group": {"_id": "$model", "devices": {"$sum": 1}}},
                    {"$sort": {"_id": 1}},
                ],
            },
        },
    });
    Ok(serde_json::from_value(manifest)?)
}

/// `count` devices of `tenant` in the setup's `Data`.
async fn seed_devices(setup: &ConsumerSetup, tenant: &str, count: usize) -> anyhow::Result<()> {
    let documents = (0..count).zip(0_i64..).map(|(i, n)| {
        doc! {
            "tenant_id": tenant,
            "name": format!("host-{i:07}"),
            "model": format!("PowerEdge R{:03} rack server", i % MODELS),
            "os": (["linux", "windows", "esxi"][i % 3]),
            "cpus": 1 + n % 64,
        }
    });
    insert_in_batches(&setup.mongo.collection("Data"), documents, INSERT_BATCH).await
}

/// Inserts `documents` `batch` at a time: bounded memory whatever their number.
pub(super) async fn insert_in_batches(
    collection: &mongodb::Collection<Document>,
    documents: impl Iterator<Item = Document>,
    batch: usize,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(batch);
    for document in documents {
        pending.push(document);
        if pending.len() == batch {
            collection.insert_many(std::mem::take(&mut pending)).await?;
        }
    }
    if !pending.is_empty() {
        collection.insert_many(pending).await?;
    }
    Ok(())
}

/// What the component part measured.
#[derive(Debug, Default)]
pub struct ComponentOutcome {
    pub rounds: Rounds,
    /// The body of one answer (and the value redis-benchmark GETs).
    pub body_bytes: usize,
    pub rows: usize,
    pub documents: usize,
    pub notes: Vec<String>,
    pub api_hwm_kib: u64,
}

/// The component part; `documents` seeded for one tenant.
pub async fn component_data(
    options: &Options,
    scratch: &Path,
    documents: usize,
) -> anyhow::Result<ComponentOutcome> {
    let setup = ConsumerSetup::with_spec("bench-comp", 1, 1, upload::upload_spec(false)).await;
    let tenant = uuid::Uuid::new_v4().to_string();
    let result = match servers::create_registry(&[&setup]).await {
        Ok(registry) => component_data_on(options, scratch, &setup, &registry, &tenant, documents)
            .await
            .map(|mut outcome| {
                outcome.documents = documents;
                outcome
            }),
        Err(error) => Err(error),
    };
    forget_tenants(&setup, &[&tenant]).await;
    if let Ok(registry) = servers::create_registry_name(&[&setup]) {
        servers::delete_topic(&setup.stack, &registry).await;
    }
    setup.cleanup().await;
    result
}

async fn component_data_on(
    options: &Options,
    scratch: &Path,
    setup: &ConsumerSetup,
    registry: &str,
    tenant: &str,
    documents: usize,
) -> anyhow::Result<ComponentOutcome> {
    report_progress(&format!("seeding {documents} documents"));
    seed_devices(setup, tenant, documents).await?;
    let (secret, token) = secret_and_token(scratch, tenant, None)?;
    let headers = auth_headers(tenant, &token);
    // Long enough for a round's hit run; short enough that the misses' entries go.
    let component = devices_by_model(&setup.app_id, 120)?;
    let log = scratch.join("api-components.log");
    let mut api = servers::start_api(
        &options.worker_bin,
        &[setup],
        std::slice::from_ref(&component),
        registry,
        &secret,
        &[],
        &log,
    )
    .await?;
    let http = reqwest::Client::new();
    let url = format!("{}/{}/report-components/devices-by-model", api.url, setup.app_id);
    servers::wait_ready(&http, &url, &headers, Duration::from_secs(60)).await?;
    let first = fetch(&http, &url, &headers).await?;
    let rows: Vec<Value> = serde_json::from_str(&first.body).context("the component's rows")?;
    ensure!(
        rows.len() == MODELS.min(documents),
        "{} rows where {} models were seeded: {}",
        rows.len(),
        MODELS.min(documents),
        first.body
    );
    let mut outcome = ComponentOutcome {
        body_bytes: first.body.len(),
        rows: rows.len(),
        ..ComponentOutcome::default()
    };
    let redis_key = format!("bench-api:{}", uuid::Uuid::new_v4().simple());
    let mut redis = setup.redis.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("SET")
        .arg(&redis_key)
        .arg(&first.body)
        .arg("EX")
        .arg(3600)
        .query_async(&mut redis)
        .await?;
    let measured = async {
        let stored: usize = redis::cmd("STRLEN").arg(&redis_key).query_async(&mut redis).await?;
        ensure!(stored == first.body.len(), "Redis holds {stored} bytes, not {}", first.body.len());
        let runs = Runs {
            options,
            scratch,
            http: &http,
            api_url: &api.url,
            url: &url,
            headers: &headers,
            api_pid: api.pid(),
            redis_key: &redis_key,
            data: &component.spec.data,
            tenant,
            app: &setup.app_id,
            setup,
        };
        runs.all(&mut outcome).await
    }
    .await;
    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&redis_key).query_async(&mut redis).await;
    outcome.api_hwm_kib = crate::procfs::peak_rss_kib(api.pid()).unwrap_or(0);
    api.stop(Duration::from_secs(30));
    measured.with_context(|| format!("API log:\n{}", api.log_tail()))?;
    Ok(outcome)
}

struct Fetched {
    cache: String,
    body: String,
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> anyhow::Result<Fetched> {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    let status = response.status();
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await?;
    ensure!(status == 200, "{url} answered {status}: {body}");
    Ok(Fetched { cache, body })
}

/// The API's component cache answers so far: (hits, misses).
async fn cache_counts(http: &reqwest::Client, api_url: &str) -> anyhow::Result<(u64, u64)> {
    let text = http.get(format!("{api_url}/metrics")).send().await?.text().await?;
    Ok(parse_cache_counts(&text))
}

fn parse_cache_counts(metrics: &str) -> (u64, u64) {
    let mut counts = (0, 0);
    for line in metrics.lines().filter(|l| l.starts_with("licenseware_api_component_cache_total{"))
    {
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        if line.contains("result=\"hit\"") {
            counts.0 += value as u64;
        } else if line.contains("result=\"miss\"") {
            counts.1 += value as u64;
        }
    }
    counts
}

/// wrk's `request()` for the miss runs: each thread counts its requests, and request n
/// of thread t asks for `limit = low + (n * threads + t) % span`: no two requests of a
/// run share a key until `span` requests (the runs are shorter; the counters tell).
pub fn varying_limit_lua(threads: u32, low: u64, span: u64) -> String {
    format!(
        r#"local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
local n = 0
function request()
  n = n + 1
  local limit = {low} + (n * {threads} + id) % {span}
  return wrk.format(nil, wrk.path .. "?limit=" .. limit)
end"#
    )
}

/// Everything the runs of one round need.
struct Runs<'a> {
    options: &'a Options,
    scratch: &'a Path,
    http: &'a reqwest::Client,
    api_url: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    api_pid: u32,
    redis_key: &'a str,
    data: &'a ComponentData,
    tenant: &'a str,
    app: &'a str,
    setup: &'a ConsumerSetup,
}

impl Runs<'_> {
    fn target(&self, name: &str, extra_lua: Option<String>) -> Target {
        Target {
            name: name.to_owned(),
            url: self.url.to_owned(),
            method: "GET",
            body: None,
            headers: self.headers.to_vec(),
            server_pid: self.api_pid,
            extra_lua,
        }
    }

    async fn all(&self, outcome: &mut ComponentOutcome) -> anyhow::Result<()> {
        let load = self.options.load;
        let span = MAX_LIMIT - MISS_LIMIT_LOW;
        let hit = self.target(API_HIT, None);
        let miss =
            self.target(API_MISS, Some(varying_limit_lua(load.threads, MISS_LIMIT_LOW, span)));
        let client = mongodb::Client::with_uri_str(mongo_url_with_database(
            &self.setup.stack.mongo_url,
            &self.setup.database,
        ))
        .await?;
        let database = client.database(&self.setup.database);
        report_progress(&format!("warm-up {:?} each", self.options.warmup));
        let warm = Load { duration: self.options.warmup, ..load };
        self.hit_run(&hit, warm).await?;
        let redis_url = &self.setup.stack.redis_url;
        let (calibration, _) = redis_get(redis_url, self.redis_key, warm, 20_000)?;
        self.miss_run(&miss, warm).await?;
        driver_run(&database, self.tenant, self.data, warm).await?;
        // redis-benchmark runs a count of requests: as many as fill the same seconds.
        let redis_requests =
            ((calibration.rps * load.duration.as_secs_f64()) as u64).clamp(20_000, 50_000_000);
        for round in 1..=self.options.rounds {
            let samples = [
                (API_HIT, self.hit_run(&hit, load).await?),
                (REDIS_GET, redis_get(redis_url, self.redis_key, load, redis_requests)?),
                (API_MISS, self.miss_run(&miss, load).await?),
                (DRIVER, driver_run(&database, self.tenant, self.data, load).await?),
            ];
            for (name, (sample, note)) in samples {
                report_progress(&format!(
                    "round {round}/{}: {name:<44} {:>8.0} req/s  p99 {:>7.2} ms  RSS {:>6.1} MiB",
                    self.options.rounds,
                    sample.rps,
                    sample.p99_ms,
                    mib(sample.rss_kib),
                ));
                if let Some(note) = note {
                    outcome.notes.push(format!("round {round}: {note}"));
                }
                outcome.rounds.push(name, sample);
            }
        }
        Ok(())
    }

    /// A hit run: one request first makes sure the value is cached (the TTL may have
    /// passed since the last round), one more must say `hit`.
    async fn hit_run(
        &self,
        target: &Target,
        load: Load,
    ) -> anyhow::Result<(Sample, Option<String>)> {
        fetch(self.http, self.url, self.headers).await?;
        let sample = fetch(self.http, self.url, self.headers).await?;
        ensure!(sample.cache == "hit", "a second request answered X-Cache: {}", sample.cache);
        let (hits_before, misses_before) = cache_counts(self.http, self.api_url).await?;
        let sample = load::run(target, load, self.scratch)?;
        let (hits, misses) = cache_counts(self.http, self.api_url).await?;
        let note = (misses > misses_before).then(|| {
            format!(
                "{} of the hit run's answers were misses ({} hits)",
                misses - misses_before,
                hits - hits_before
            )
        });
        Ok((sample, note))
    }

    /// A miss run: the tenant's generation bumped first, so that no key of an earlier
    /// run is found; a sample request with a limit of its own must say `miss`.
    async fn miss_run(
        &self,
        target: &Target,
        load: Load,
    ) -> anyhow::Result<(Sample, Option<String>)> {
        let mut redis = self.setup.redis.get_multiplexed_async_connection().await?;
        let _: u64 = redis::cmd("INCR")
            .arg(generation_key(self.tenant, self.app))
            .query_async(&mut redis)
            .await?;
        let probe = format!("{}?limit={}", self.url, MISS_LIMIT_LOW - 1);
        let sample = fetch(self.http, &probe, self.headers).await?;
        ensure!(sample.cache == "miss", "a fresh key answered X-Cache: {}", sample.cache);
        let (hits_before, misses_before) = cache_counts(self.http, self.api_url).await?;
        let sample = load::run(target, load, self.scratch)?;
        let (hits, misses) = cache_counts(self.http, self.api_url).await?;
        let note = (hits > hits_before).then(|| {
            format!(
                "{} of the miss run's answers were hits ({} misses)",
                hits - hits_before,
                misses - misses_before
            )
        });
        // The run's entries: gone now rather than at their TTL (the Redis is shared).
        forget_tenants(self.setup, &[self.tenant]).await;
        Ok((sample, note))
    }
}

/// `GET key` by redis-benchmark: `requests` of them over `load.connections`
/// connections and `load.threads` threads, no pipelining; Redis's own RSS and CPU
/// when the stack names its pid.
fn redis_get(
    redis_url: &str,
    key: &str,
    load: Load,
    requests: u64,
) -> anyhow::Result<(Sample, Option<String>)> {
    let server = stack_pid("redis");
    let sampler = server.map(RssSampler::process);
    let cpu_before = server.and_then(|pid| crate::procfs::cpu_secs(pid).ok());
    let output = Command::new("redis-benchmark")
        .args(["-u", redis_url])
        .arg("-c")
        .arg(load.connections.to_string())
        .arg("--threads")
        .arg(load.threads.to_string())
        .arg("-n")
        .arg(requests.to_string())
        .args(["-P", "1", "--csv", "GET", key])
        .output()
        .context("run redis-benchmark (apt-get install redis-tools)")?;
    let rss_kib = sampler.map_or(0, RssSampler::finish);
    let cpu = match (server, cpu_before) {
        (Some(pid), Some(before)) => crate::procfs::cpu_secs(pid).ok().map(|after| after - before),
        _ => None,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("redis-benchmark failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    let mut sample =
        parse_redis_csv(&stdout).with_context(|| format!("redis-benchmark's CSV: {stdout}"))?;
    sample.requests = requests;
    sample.rss_kib = rss_kib;
    sample.cpu_us_per_request = cpu.map_or(0.0, |cpu| cpu * 1e6 / requests as f64);
    Ok((sample, None))
}

/// The pid of a stack server: the first word of `$LW_STACK_DIR/pids/{name}.pid`.
fn stack_pid(name: &str) -> Option<u32> {
    let dir = std::env::var("LW_STACK_DIR").ok()?;
    std::fs::read_to_string(Path::new(&dir).join("pids").join(format!("{name}.pid")))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// redis-benchmark's `--csv`: a header line, then one line per test.
fn parse_redis_csv(text: &str) -> Option<Sample> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> =
        lines.next()?.split(',').map(|f| f.trim_matches('"').to_owned()).collect();
    let values: Vec<String> =
        lines.next()?.split(',').map(|f| f.trim_matches('"').to_owned()).collect();
    let field = |name: &str| -> Option<f64> {
        let index = header.iter().position(|h| h == name)?;
        values.get(index)?.parse().ok()
    };
    Some(Sample {
        requests: 0,
        rps: field("rps")?,
        p50_ms: field("p50_latency_ms").unwrap_or(f64::NAN),
        p99_ms: field("p99_latency_ms").unwrap_or(f64::NAN),
        errors: 0,
        failed: 0,
        rss_kib: 0,
        cpu_us_per_request: 0.0,
    })
}

/// The miss's aggregation straight through the driver: `load.connections` tasks, each
/// running the API's pipeline (its own builder, a `limit` of its own per request, as
/// the miss run's) back to back for `load.duration`; what completed in that time counts.
async fn driver_run(
    database: &mongodb::Database,
    tenant: &str,
    data: &ComponentData,
    load: Load,
) -> anyhow::Result<(Sample, Option<String>)> {
    let span = MAX_LIMIT - MISS_LIMIT_LOW;
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + load.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..load.connections {
        let collection = database.collection::<Document>(&data.collection);
        let (counter, tenant, data) = (counter.clone(), tenant.to_owned(), data.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let paging = Paging { skip: 0, limit: MISS_LIMIT_LOW + n % span };
                let pipeline = query::pipeline(&tenant, None, &data, paging)?;
                let began = Instant::now();
                let rows = async {
                    let cursor =
                        collection.aggregate(pipeline).max_time(AGGREGATE_MAX_TIME).await?;
                    cursor.try_collect::<Vec<Document>>().await
                }
                .await;
                let ended = Instant::now();
                match rows {
                    // The API's answer has the rows: so must this one.
                    Ok(rows) if rows.is_empty() => errors += 1,
                    Ok(_) if ended <= deadline => latencies.push(ended - began),
                    Ok(_) => {}
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((latencies, errors))
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (mut task_latencies, task_errors) = joined??;
        latencies.append(&mut task_latencies);
        errors += task_errors;
    }
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let requests = latencies.len() as u64;
    let sample = Sample {
        requests,
        rps: requests as f64 / load.duration.as_secs_f64(),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        errors,
        failed: 0,
        rss_kib: 0,
        cpu_us_per_request: 0.0,
    };
    let note = (errors > 0)
        .then(|| format!("the driver's aggregation failed or found no rows {errors} times"));
    Ok((sample, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_counters_are_read_by_result() {
        let metrics = "# HELP licenseware_api_component_cache ...\n\
            licenseware_api_component_cache_total{app=\"a\",component=\"c\",result=\"hit\"} 12\n\
            licenseware_api_component_cache_total{app=\"a\",component=\"c\",result=\"miss\"} 3\n\
            licenseware_api_downloads_total{format=\"xlsx\"} 9\n";
        assert_eq!(parse_cache_counts(metrics), (12, 3));
        assert_eq!(parse_cache_counts(""), (0, 0));
    }

    #[test]
    fn redis_benchmarks_csv_is_read_by_header() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"GET bench-api:x\",\"81234.50\",\"0.700\",\"0.100\",\"0.650\",\"1.100\",\"1.900\",\"4.000\"\n";
        let sample = parse_redis_csv(csv).unwrap();
        assert_eq!(sample.rps, 81_234.5);
        assert_eq!(sample.p50_ms, 0.65);
        assert_eq!(sample.p99_ms, 1.9);
        assert!(parse_redis_csv("\"test\",\"rps\"\n").is_none());
    }

    #[test]
    fn each_miss_request_asks_a_limit_of_its_own_within_the_cap() {
        let lua = varying_limit_lua(2, MISS_LIMIT_LOW, MAX_LIMIT - MISS_LIMIT_LOW);
        assert!(lua.contains("100 + (n * 2 + id) % 49900"), "{lua}");
        assert!(lua.contains("wrk.path .. \"?limit=\""), "{lua}");
        // The highest limit it can ask for is the API's cap.
        assert_eq!(MISS_LIMIT_LOW + (MAX_LIMIT - MISS_LIMIT_LOW - 1), MAX_LIMIT - 1);
    }

    #[test]
    fn the_component_is_a_valid_report_component() {
        let component = devices_by_model("app", 60).unwrap();
        assert_eq!(component.component_id(), "devices_by_model");
        assert_eq!(component.spec.data.cache_ttl_seconds, 60);
        licenseware_crds::pipeline::check_pipeline(&component.spec.data.pipeline, "data.pipeline")
            .unwrap();
    }
}
