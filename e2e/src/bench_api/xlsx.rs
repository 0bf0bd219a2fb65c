//! The xlsx download of `make bench-api` (issue 12 §6): a component of `rows` rows of
//! [`COLUMNS`] fields (1,000,000 cells at 100,000 rows) downloaded from
//! `/report-components/{component}/download?filetype=xlsx` with the API's memory sampled,
//! against the SDK's way of the same download (e2e/bench/sdk_xlsx.py: the SDK's
//! `MongoRepository.execute_query` and `create_file(..., "xlsx")`, pandas + XlsxWriter)
//! reading the same rows from the same FerretDB. Rounds alternate; every file is opened
//! again with calamine and its cells counted.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use calamine::{Reader, open_workbook_auto};
use licenseware_crds::ReportComponent;
use mongodb::bson::{Document, doc};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{
    Options, auth_headers,
    procs::{self, RssSampler},
    report::{median, mib},
    report_progress, secret_and_token,
    servers::{self, SdkEnv},
    upload,
};
use crate::{Stack, consumer::ConsumerSetup};

/// Fields of every seeded row: the columns of both files.
pub const COLUMNS: usize = 10;
/// Seeded documents per insert.
const INSERT_BATCH: usize = 10_000;

/// The component of this part: every field of the tenant's devices but the ids. Not
/// cached: a download never is.
pub fn devices_inventory(app: &str) -> anyhow::Result<ReportComponent> {
    let manifest = json!({
        "apiVersion": "licenseware.io/v1alpha1",
        "kind": "ReportComponent",
        "metadata": {"name": "devices-inventory", "namespace": "bench"},
        "spec": {
            "componentId": "devices_inventory",
            "appId": app,
            "title": "Devices",
            "type": "table",
            "attributes": {"columns": [
                {"name": "Name", "prop": "name", "type": "string"},
                {"name": "OS", "prop": "os", "type": "string"},
                {"name": "Model", "prop": "model", "type": "string"},
                {"name": "Serial", "prop": "serial", "type": "string"},
                {"name": "Site", "prop": "site", "type": "string"},
                {"name": "State", "prop": "state", "type": "string"},
                {"name": "vCPUs", "prop": "cpus", "type": "number"},
                {"name": "Memory GB", "prop": "memory_gb", "type": "number"},
                {"name": "Disk GB", "prop": "disk_gb", "type": "number"},
                {"name": "Cost", "prop": "cost", "type": "number"},
            ]},
            "data": {
                "collection": "Data",
                "cacheTtlSeconds": 0,
                "pipeline": [{"$project": {"_id": 0, "tenant_id": 0}}],
            },
        },
    });
    Ok(serde_json::from_value(manifest)?)
}

/// Row `i` of the tenant: [`COLUMNS`] fields, text and numbers, as an inventory has.
fn device(tenant: &str, i: usize) -> Document {
    let n = i64::try_from(i).unwrap_or(i64::MAX);
    doc! {
        "tenant_id": tenant,
        "name": format!("host-{i:07}.corp.example.com"),
        "os": (["Ubuntu 22.04", "Windows Server 2019", "ESXi 7.0"][i % 3]),
        "model": format!("PowerEdge R{:03}", i % 40),
        "serial": format!("SN{:010}", n * 7919 % 10_000_000_000),
        "site": (["Bucharest", "London", "Frankfurt", "Dublin"][i % 4]),
        "state": (["poweredOn", "poweredOff", "suspended"][i % 3]),
        "cpus": 1 + n % 64,
        "memory_gb": 0.5 * (1 + n % 512) as f64,
        "disk_gb": 10 * (1 + n % 200),
        "cost": (n % 10_000) as f64 / 100.0 + 0.01,
    }
}

async fn seed(setup: &ConsumerSetup, tenant: &str, rows: usize) -> anyhow::Result<()> {
    let documents = (0..rows).map(|i| device(tenant, i));
    super::component::insert_in_batches(&setup.mongo.collection("Data"), documents, INSERT_BATCH)
        .await
}

/// What the xlsx part measured.
#[derive(Debug, Default)]
pub struct XlsxOutcome {
    pub rows: usize,
    /// Seconds of each API download: request to last byte on disk.
    pub api_s: Vec<f64>,
    /// Seconds of each SDK run's work (read + write), and its parts; the process's wall
    /// time (the interpreter and the imports too).
    pub sdk_s: Vec<f64>,
    pub sdk_read_s: Vec<f64>,
    pub sdk_write_s: Vec<f64>,
    pub sdk_wall_s: Vec<f64>,
    pub api_idle_rss_kib: u64,
    /// The API's highest VmRSS sampled during the downloads, its VmHWM after them.
    pub api_peak_rss_kib: u64,
    pub api_hwm_kib: u64,
    pub sdk_peak_rss_kib: u64,
    pub api_bytes: u64,
    pub sdk_bytes: u64,
    /// Cells of each file as calamine reads them back (the header row included).
    pub api_cells: usize,
    pub sdk_cells: usize,
    pub sdk_engine: String,
    pub notes: Vec<String>,
}

impl XlsxOutcome {
    pub fn api_median_s(&self) -> f64 {
        median(&self.api_s)
    }
    pub fn sdk_median_s(&self) -> f64 {
        median(&self.sdk_s)
    }
    /// The median of the per-round ratios SDK time / API time.
    pub fn speedup(&self) -> Option<f64> {
        let ratios: Vec<f64> = self
            .sdk_s
            .iter()
            .zip(&self.api_s)
            .filter(|(_, api)| **api > 0.0)
            .map(|(sdk, api)| sdk / api)
            .collect();
        (!ratios.is_empty()).then(|| median(&ratios))
    }
}

/// The xlsx part: `rows` rows seeded for one tenant, `rounds` downloads on each side.
pub async fn xlsx(
    options: &Options,
    stack: &Stack,
    scratch: &Path,
    rows: usize,
) -> anyhow::Result<XlsxOutcome> {
    let setup = ConsumerSetup::with_spec("bench-xlsx", 1, 1, upload::upload_spec(false)).await;
    let tenant = uuid::Uuid::new_v4().to_string();
    let result = match servers::create_registry(&[&setup]).await {
        Ok(registry) => xlsx_on(options, stack, scratch, &setup, &registry, &tenant, rows).await,
        Err(error) => Err(error),
    };
    if let Ok(registry) = servers::create_registry_name(&[&setup]) {
        servers::delete_topic(stack, &registry).await;
    }
    setup.cleanup().await;
    result
}

async fn xlsx_on(
    options: &Options,
    stack: &Stack,
    scratch: &Path,
    setup: &ConsumerSetup,
    registry: &str,
    tenant: &str,
    rows: usize,
) -> anyhow::Result<XlsxOutcome> {
    let started = Instant::now();
    seed(setup, tenant, rows).await?;
    report_progress(&format!("seeded {rows} rows in {:.1} s", started.elapsed().as_secs_f64()));
    let (secret, token) = secret_and_token(scratch, tenant, None)?;
    let headers = auth_headers(tenant, &token);
    let component = devices_inventory(&setup.app_id)?;
    let mut api = servers::start_api(
        &options.worker_bin,
        &[setup],
        std::slice::from_ref(&component),
        registry,
        &secret,
        &[],
        &scratch.join("api-xlsx.log"),
    )
    .await?;
    let http = reqwest::Client::new();
    let base = format!("{}/{}/report-components/devices-inventory", api.url, setup.app_id);
    servers::wait_ready(&http, &format!("{base}?limit=1"), &headers, Duration::from_secs(60))
        .await?;
    let download_url = format!("{base}/download?filetype=xlsx");
    let mut outcome =
        XlsxOutcome { rows, api_idle_rss_kib: procs::rss_kib(api.pid()), ..XlsxOutcome::default() };
    if options.sdk.is_none() {
        outcome.notes.push("no --sdk-python/--sdk-src: the SDK's side is left out".to_owned());
    }
    let expected_cells = (rows + 1) * COLUMNS;
    let measured: anyhow::Result<()> = async {
        for round in 1..=options.rounds.max(1) {
            let file = scratch.join(format!("api-{round}.xlsx"));
            let sampler = RssSampler::process(api.pid());
            let began = Instant::now();
            let downloaded = download(&http, &download_url, &headers, &file).await;
            let seconds = began.elapsed().as_secs_f64();
            outcome.api_peak_rss_kib = outcome.api_peak_rss_kib.max(sampler.finish());
            outcome.api_bytes = downloaded?;
            outcome.api_s.push(seconds);
            outcome.api_cells = checked_cells(&file, expected_cells, "the API's")?;
            std::fs::remove_file(&file)?;
            let mut line = format!(
                "round {round}/{}: API {seconds:.2} s ({:.1} MB)",
                options.rounds,
                outcome.api_bytes as f64 / 1e6
            );
            if let Some(sdk) = &options.sdk {
                let run = run_sdk(sdk, stack, setup, tenant, &component, scratch)?;
                outcome.sdk_cells = checked_cells(&run.path, expected_cells, "the SDK's")?;
                outcome.sdk_bytes = std::fs::metadata(&run.path)?.len();
                std::fs::remove_file(&run.path)?;
                ensure!(run.rows == rows, "the SDK read {} rows, not {rows}", run.rows);
                line.push_str(&format!(
                    ", SDK {:.2} s (read {:.2} s, write {:.2} s; {:.2} s with the interpreter, \
                     {:.1} MB, {:.0} MiB peak RSS)",
                    run.read_s + run.write_s,
                    run.read_s,
                    run.write_s,
                    run.wall_s,
                    outcome.sdk_bytes as f64 / 1e6,
                    mib(run.max_rss_kib)
                ));
                outcome.sdk_s.push(run.read_s + run.write_s);
                outcome.sdk_read_s.push(run.read_s);
                outcome.sdk_write_s.push(run.write_s);
                outcome.sdk_wall_s.push(run.wall_s);
                outcome.sdk_peak_rss_kib = outcome.sdk_peak_rss_kib.max(run.max_rss_kib);
                outcome.sdk_engine = run.engine;
            }
            report_progress(&line);
        }
        Ok(())
    }
    .await;
    outcome.api_hwm_kib = crate::procfs::peak_rss_kib(api.pid()).unwrap_or(0);
    api.stop(Duration::from_secs(30));
    measured.with_context(|| format!("API log:\n{}", api.log_tail()))?;
    if !outcome.sdk_engine.is_empty() && outcome.sdk_engine != "xlsxwriter" {
        outcome.notes.push(format!("pandas wrote with {}, not XlsxWriter", outcome.sdk_engine));
    }
    Ok(outcome)
}

/// GET `url` into `file`, chunk by chunk; its bytes.
async fn download(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    file: &Path,
) -> anyhow::Result<u64> {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = request.send().await?;
    let status = response.status();
    if status != 200 {
        bail!("{url} answered {status}: {}", response.text().await.unwrap_or_default());
    }
    let mut out = tokio::fs::File::create(file).await?;
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await? {
        out.write_all(&chunk).await?;
        bytes += chunk.len() as u64;
    }
    out.flush().await?;
    Ok(bytes)
}

/// The first sheet's cells, read back with calamine: exactly `expected` of them, in
/// [`COLUMNS`] columns, or an error.
fn checked_cells(path: &Path, expected: usize, whose: &str) -> anyhow::Result<usize> {
    let mut workbook =
        open_workbook_auto(path).with_context(|| format!("open {whose} {}", path.display()))?;
    let sheet = workbook.sheet_names().first().cloned().context("a sheet")?;
    let range = workbook.worksheet_range(&sheet)?;
    let cells = range.used_cells().count();
    ensure!(
        range.width() == COLUMNS && cells == expected,
        "{whose} xlsx has {cells} cells in {} columns, not {expected} in {COLUMNS}",
        range.width()
    );
    Ok(cells)
}

/// What e2e/bench/sdk_xlsx.py printed, and its wall time.
#[derive(Debug)]
struct SdkRun {
    read_s: f64,
    write_s: f64,
    rows: usize,
    path: PathBuf,
    engine: String,
    max_rss_kib: u64,
    wall_s: f64,
}

impl SdkRun {
    fn parse(line: &str, wall_s: f64) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(Self {
            read_s: value["read_s"].as_f64()?,
            write_s: value["write_s"].as_f64()?,
            rows: usize::try_from(value["rows"].as_u64()?).ok()?,
            path: PathBuf::from(value["path"].as_str()?),
            engine: value["engine"].as_str().unwrap_or_default().to_owned(),
            max_rss_kib: value["max_rss_kib"].as_u64().unwrap_or(0),
            wall_s,
        })
    }
}

fn run_sdk(
    sdk: &SdkEnv,
    stack: &Stack,
    setup: &ConsumerSetup,
    tenant: &str,
    component: &ReportComponent,
    scratch: &Path,
) -> anyhow::Result<SdkRun> {
    let python_path = std::env::join_paths([&sdk.src, &sdk.app_dir])?;
    let out_dir = scratch.join("sdk-files");
    let began = Instant::now();
    let output = Command::new(&sdk.python)
        .arg(sdk.app_dir.join("sdk_xlsx.py"))
        .env("PYTHONPATH", python_path)
        .env("BENCH_SDK_MONGO_URL", &stack.mongo_url)
        .env("BENCH_SDK_DB", &setup.database)
        .env("BENCH_COLLECTION", &component.spec.data.collection)
        .env("BENCH_TENANT", tenant)
        .env("BENCH_COMPONENT_ID", component.component_id())
        .env("BENCH_PIPELINE", serde_json::to_string(&component.spec.data.pipeline)?)
        .env("BENCH_OUT_DIR", &out_dir)
        .output()
        .context("run sdk_xlsx.py")?;
    let wall_s = began.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("sdk_xlsx.py failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    let line = stdout.lines().last().context("sdk_xlsx.py printed nothing")?;
    SdkRun::parse(line, wall_s).with_context(|| format!("sdk_xlsx.py printed {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_the_columns_and_the_tenant() {
        let row = device("t1", 12_345);
        assert_eq!(row.len(), COLUMNS + 1);
        assert_eq!(row.get_str("tenant_id").unwrap(), "t1");
        assert_eq!(row.get_str("name").unwrap(), "host-0012345.corp.example.com");
    }

    #[test]
    fn the_component_hides_the_ids_and_is_not_cached() {
        let component = devices_inventory("app").unwrap();
        assert_eq!(component.spec.attributes["columns"].as_array().unwrap().len(), COLUMNS);
        assert_eq!(component.spec.data.cache_ttl_seconds, 0);
        licenseware_crds::pipeline::check_pipeline(&component.spec.data.pipeline, "data.pipeline")
            .unwrap();
    }

    #[test]
    fn the_sdk_scripts_line_is_read() {
        let line = r#"{"read_s": 1.5, "write_s": 2.5, "rows": 3, "path": "/tmp/x.xlsx", "engine": "xlsxwriter", "pandas": "1.5.3", "max_rss_kib": 2048}"#;
        let run = SdkRun::parse(line, 5.0).unwrap();
        assert_eq!((run.read_s, run.write_s, run.rows, run.wall_s), (1.5, 2.5, 3, 5.0));
        assert_eq!(run.engine, "xlsxwriter");
        assert!(SdkRun::parse("{}", 1.0).is_none());
    }

    #[test]
    fn the_speedup_is_the_median_of_the_rounds() {
        let outcome = XlsxOutcome {
            api_s: vec![1.0, 2.0, 1.0],
            sdk_s: vec![5.0, 4.0, 3.0],
            ..XlsxOutcome::default()
        };
        assert_eq!(outcome.speedup(), Some(3.0));
        assert_eq!(XlsxOutcome::default().speedup(), None);
    }
}
