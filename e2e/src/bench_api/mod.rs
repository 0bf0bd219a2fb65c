//! `make bench-api` (issue 11 §7): the API against the SDK's own route, in one run, side
//! by side, on loopback, with wrk on the same cores. See `src/bin/bench_api.rs`.
//!
//! - [`throughput`]: `/validation` doing all its work against the SDK's
//!   `validate_filenames_flow` behind FastAPI + uvicorn (2 workers) on the same MongoDB;
//!   the bare check (token, rules, no I/O) against the hello world of its server and
//!   the API's `/healthz`; rounds interleaved, medians and per-round ratios.
//! - [`uploads`]: 10 MB .. 1 GB through `/files` with the API's memory, against `cp`.

pub mod bare;
pub mod component;
pub mod history_floor;
pub mod load;
pub mod procs;
pub mod report;
pub mod servers;
pub mod upload;
pub mod xlsx;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use licenseware_worker::serve::auth::{DevClaims, mint_hs256};
use serde_json::{Map, Value, json};

use self::{
    load::{Load, Target},
    report::{Rounds, UploadRow},
    servers::{SdkEnv, SdkUploader, Server},
};
use crate::{Stack, consumer::ConsumerSetup};

/// What the run compares and how hard it pushes.
#[derive(Debug, Clone)]
pub struct Options {
    pub worker_bin: PathBuf,
    pub load: Load,
    pub rounds: usize,
    pub warmup: Duration,
    pub sdk: Option<SdkEnv>,
    /// The Uploader whose rules `/validation` applies (the sample RVTools uploader).
    pub uploader_yaml: PathBuf,
    /// The body of every validation request.
    pub filenames: Vec<String>,
}

/// `fooBarBaz` -> `foo_bar_baz`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An Uploader's `spec.validation` as the SDK's UploaderValidationParameters.
pub fn sdk_validation(validation: &Value) -> Value {
    let fields: Map<String, Value> = validation
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (snake_case(k), v.clone())).collect())
        .unwrap_or_default();
    Value::Object(fields)
}

/// The `spec` of an Uploader manifest.
pub fn uploader_spec(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let manifest: Value = serde_yaml::from_str(&text)?;
    manifest.get("spec").cloned().context("the manifest's spec")
}

/// A random HS256 secret in `dir`, and a token for `tenant` signed with it.
pub fn secret_and_token(
    dir: &Path,
    tenant: &str,
    plan: Option<&str>,
) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join("jwt-secret");
    if !path.exists() {
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        std::fs::write(&path, format!("{secret}\n"))?;
    }
    let secret = licenseware_worker::serve::auth::read_secret_file(&path)?;
    let mut claims =
        DevClaims::new("bench-user", vec![tenant.to_owned()], Duration::from_secs(4 * 3600));
    claims.plan_type = plan.map(str::to_owned);
    Ok((path, mint_hs256(&secret, &claims)?))
}

fn auth_headers(tenant: &str, token: &str) -> Vec<(String, String)> {
    vec![
        ("TenantId".to_owned(), tenant.to_owned()),
        ("Authorization".to_owned(), format!("Bearer {token}")),
    ]
}

/// The outcome of the throughput part.
#[derive(Debug, Default)]
pub struct Throughput {
    pub rounds: Rounds,
    /// The API's VmHWM after its rounds.
    pub api_hwm_kib: u64,
    /// Differences between the answers of the API, the bare check and the SDK.
    pub notes: Vec<String>,
}

pub const API_VALIDATION: &str = "API /validation (all its work)";
pub const SDK_VALIDATION: &str = "SDK validate_filenames_flow (FastAPI+uvicorn x2)";
pub const API_HEALTHZ: &str = "API /healthz (its hello world)";
pub const BARE_CHECK: &str = "bare check: JWT + rules, no I/O";
pub const BARE_HELLO: &str = "hello world of the bare check's server";
pub const SDK_HELLO: &str = "FastAPI+uvicorn x2 hello world";
pub const HISTORY_FLOOR: &str = "store floor: its records via the driver /s";

/// Statuses of the `validation` entries of an answer, by file name.
fn verdicts(answer: &Value) -> Vec<(String, String)> {
    answer["validation"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["filename"].as_str().unwrap_or("").to_owned(),
                        e["status"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One request of `target`, which must answer 200; its JSON.
async fn probe(http: &reqwest::Client, target: &Target) -> anyhow::Result<Value> {
    let mut request =
        if target.method == "POST" { http.post(&target.url) } else { http.get(&target.url) };
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &target.body {
        request = request.header("Content-Type", "application/json").body(body.clone());
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status == 200, "{} answered {status}: {text}", target.name);
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Part one: every target, warmed up, then `rounds` rounds of all targets in turn.
pub async fn throughput(
    options: &Options,
    stack: &Stack,
    scratch: &Path,
) -> anyhow::Result<Throughput> {
    let spec = uploader_spec(&options.uploader_yaml)?;
    let setup = ConsumerSetup::with_spec("bench-api", 1, 1, spec.clone()).await;
    let sdk_database = format!("{}_sdk", setup.database);
    let registry = servers::create_registry(&[&setup]).await;
    let result = match registry {
        Ok(registry) => {
            throughput_on(options, stack, scratch, &setup, &spec, &registry, &sdk_database).await
        }
        Err(error) => Err(error),
    };
    let _ = setup.mongo.client().database(&sdk_database).drop().await;
    if let Ok(registry) = servers::create_registry_name(&[&setup]) {
        servers::delete_topic(stack, &registry).await;
    }
    setup.cleanup().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn throughput_on(
    options: &Options,
    stack: &Stack,
    scratch: &Path,
    setup: &ConsumerSetup,
    spec: &Value,
    registry: &str,
    sdk_database: &str,
) -> anyhow::Result<Throughput> {
    let tenant = uuid::Uuid::new_v4().to_string();
    let (secret, token) = secret_and_token(scratch, &tenant, None)?;
    let headers = auth_headers(&tenant, &token);
    let http = reqwest::Client::new();
    let app = &setup.app_id;
    let dash = setup.uploader_id.replace('_', "-");
    let validation_path = format!("/{app}/uploads/{dash}/validation");
    // Tickets are not used here: a short life keeps Redis small under load.
    let extra = ["--upload-ticket-ttl-seconds", "30"];
    let mut api = servers::start_api(
        &options.worker_bin,
        &[setup],
        &[],
        registry,
        &secret,
        &extra,
        &scratch.join("api.log"),
    )
    .await?;
    servers::wait_ready(
        &http,
        &format!("{}/{app}/uploads/{dash}/status", api.url),
        &headers,
        Duration::from_secs(60),
    )
    .await?;
    let rules = spec.get("validation").cloned().unwrap_or(json!({}));
    let bare = servers::start_bare(&secret, &rules.to_string(), &scratch.join("bare.log"))?;
    let sdk = match &options.sdk {
        Some(env) => {
            let uploader = SdkUploader {
                app_id: app,
                uploader_id: &setup.uploader_id,
                validation: sdk_validation(&rules),
                free_quota_units: spec["freeQuotaUnits"].as_i64().unwrap_or(1),
            };
            Some(
                servers::start_sdk(
                    env,
                    stack,
                    sdk_database,
                    &uploader,
                    &secret,
                    &scratch.join("sdk.log"),
                )
                .await?,
            )
        }
        None => None,
    };
    let body = serde_json::to_string(&options.filenames)?;
    let post = |name: &str, server: &Server, path: &str| Target {
        name: name.to_owned(),
        url: format!("{}{path}", server.url),
        method: "POST",
        body: Some(body.clone()),
        headers: headers.clone(),
        server_pid: server.pid(),
        extra_lua: None,
    };
    let get = |name: &str, server: &Server, path: &str| Target {
        name: name.to_owned(),
        url: format!("{}{path}", server.url),
        method: "GET",
        body: None,
        headers: Vec::new(),
        server_pid: server.pid(),
        extra_lua: None,
    };
    let mut targets = vec![post(API_VALIDATION, &api, &validation_path)];
    if let Some(sdk) = &sdk {
        targets.push(post(SDK_VALIDATION, sdk, &validation_path));
    }
    targets.push(get(API_HEALTHZ, &api, "/healthz"));
    targets.push(post(BARE_CHECK, &bare, &validation_path));
    targets.push(get(BARE_HELLO, &bare, "/hello"));
    if let Some(sdk) = &sdk {
        targets.push(get(SDK_HELLO, sdk, "/hello"));
    }

    let mut outcome = Throughput::default();
    let mut answers = Vec::new();
    for target in &targets {
        answers.push((target.name.clone(), probe(&http, target).await?));
    }
    let ours = verdicts(&answers[0].1);
    for (name, answer) in &answers {
        if answer.get("validation").is_some() && verdicts(answer) != ours {
            outcome.notes.push(format!("{name} judged the names differently: {answer}"));
        }
    }
    report_progress(&format!("{} targets; warm-up {:?} each", targets.len(), options.warmup));
    let warm = Load { duration: options.warmup, ..options.load };
    for target in &targets {
        load::run(target, warm, scratch)?;
    }
    for round in 1..=options.rounds {
        for target in &targets {
            let sample = load::run(target, options.load, scratch)?;
            report_progress(&format!(
                "round {round}/{}: {:<48} {:>8.0} req/s  p99 {:>7.2} ms  RSS {:>6.1} MiB{}",
                options.rounds,
                target.name,
                sample.rps,
                sample.p99_ms,
                report::mib(sample.rss_kib),
                if sample.errors + sample.failed > 0 {
                    format!("  ({} errors, {} failed)", sample.errors, sample.failed)
                } else {
                    String::new()
                },
            ));
            outcome.rounds.push(&target.name, sample);
            if target.name == API_VALIDATION {
                let filenames = &options.filenames;
                let floor = history_floor::run(
                    &setup.mongo,
                    app,
                    &setup.uploader_id,
                    filenames,
                    options.load.duration,
                )
                .await?;
                report_progress(&format!(
                    "round {round}/{}: {:<48} {:>8.0} records/s",
                    options.rounds, HISTORY_FLOOR, floor.rps
                ));
                outcome.rounds.push(HISTORY_FLOOR, floor);
            }
        }
    }
    outcome.api_hwm_kib = crate::procfs::peak_rss_kib(api.pid()).unwrap_or(0);
    drop(sdk);
    drop(bare);
    // A graceful stop: the history still pending is written.
    api.stop(Duration::from_secs(60));
    Ok(outcome)
}

#[allow(clippy::print_stdout)] // a benchmark: its progress is part of its output
pub fn report_progress(line: &str) {
    println!("  {line}");
}

/// Part two: per size, a fresh API serving an uploader with content checks and one with
/// the name rules only; `repeat` rounds of cp, upload (checked), upload (names only).
pub async fn uploads(
    options: &Options,
    scratch: &Path,
    sizes_mb: &[u64],
    repeat: usize,
    repeat_large: usize,
) -> anyhow::Result<(Vec<UploadRow>, Vec<String>)> {
    let checked = ConsumerSetup::with_spec("bench-up", 1, 1, upload::upload_spec(true)).await;
    let names = ConsumerSetup::with_spec("bench-up-names", 1, 1, upload::upload_spec(false)).await;
    let setups = [&checked, &names];
    let result = match servers::create_registry(&setups).await {
        Ok(registry) => {
            uploads_on(options, scratch, &setups, &registry, sizes_mb, repeat, repeat_large).await
        }
        Err(error) => Err(error),
    };
    if let Ok(registry) = servers::create_registry_name(&setups) {
        servers::delete_topic(&checked.stack, &registry).await;
    }
    checked.cleanup().await;
    names.cleanup().await;
    result
}

async fn uploads_on(
    options: &Options,
    scratch: &Path,
    setups: &[&ConsumerSetup; 2],
    registry: &str,
    sizes_mb: &[u64],
    repeat: usize,
    repeat_large: usize,
) -> anyhow::Result<(Vec<UploadRow>, Vec<String>)> {
    let [checked, names] = *setups;
    let tenant = uuid::Uuid::new_v4().to_string();
    // Unlimited: every upload consumes a unit of the quota.
    let (secret, token) = secret_and_token(scratch, &tenant, Some("unlimited"))?;
    let headers = auth_headers(&tenant, &token);
    let http = reqwest::Client::new();
    let files_dir = checked.root.parent().context("the setup's directory")?.join("sources");
    std::fs::create_dir_all(&files_dir)?;
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    for &megabytes in sizes_mb {
        let bytes = megabytes * 1_000_000;
        let free = upload::free_bytes(&files_dir)?;
        // The source, the stored upload and the copy, with room to spare.
        if free < 3 * bytes + (2 << 30) {
            notes.push(format!(
                "{megabytes} MB skipped: {} MB free on the upload disk",
                free / 1_000_000
            ));
            continue;
        }
        let file = files_dir.join(format!("devices-{megabytes}mb.csv"));
        upload::write_csv(&file, bytes)?;
        let log = scratch.join(format!("api-upload-{megabytes}mb.log"));
        let mut api =
            servers::start_api(&options.worker_bin, setups, &[], registry, &secret, &[], &log)
                .await?;
        let dash = |setup: &ConsumerSetup| setup.uploader_id.replace('_', "-");
        for &setup in setups {
            let url = format!("{}/{}/uploads/{}/status", api.url, setup.app_id, dash(setup));
            servers::wait_ready(&http, &url, &headers, Duration::from_secs(60)).await?;
        }
        let uploading = upload::Uploading {
            http: &http,
            api_url: &api.url,
            app_id: &checked.app_id,
            tenant: &tenant,
            token: &token,
            upload_root: &checked.root,
            scratch,
        };
        let mut row = UploadRow {
            megabytes,
            idle_rss_kib: procs::rss_kib(api.pid()),
            ..UploadRow::default()
        };
        let sampler = procs::RssSampler::process(api.pid());
        let runs = if megabytes >= 1000 { repeat_large } else { repeat };
        let measured: anyhow::Result<()> = async {
            for _ in 0..runs.max(1) {
                row.cp.push(upload::time_cp(&file, &checked.root.join("cp-baseline"))?);
                let zero_copy = upload::Client::ZeroCopy;
                row.checked.push(uploading.upload(&dash(checked), &file, zero_copy).await?);
                row.names_only.push(uploading.upload(&dash(names), &file, zero_copy).await?);
                let curl = upload::Client::Curl;
                row.names_curl.push(uploading.upload(&dash(names), &file, curl).await?);
            }
            Ok(())
        }
        .await;
        row.peak_rss_kib = sampler.finish();
        row.hwm_kib = crate::procfs::peak_rss_kib(api.pid()).unwrap_or(0);
        api.stop(Duration::from_secs(30));
        std::fs::remove_file(&file)?;
        measured.with_context(|| format!("API log:\n{}", api.log_tail()))?;
        report_progress(&format!(
            "{megabytes} MB: cp {:.3} s, upload {:.3} s, names only {:.3} s (curl {:.3} s), \
             API HWM {:.1} MiB",
            row.cp_s(),
            row.checked_s(),
            row.names_s(),
            row.names_curl_s(),
            report::mib(row.hwm_kib)
        ));
        rows.push(row);
    }
    Ok((rows, notes))
}
