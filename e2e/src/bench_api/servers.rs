//! The servers of `make bench-api`, each a child process: the API (`licenseware-worker
//! serve`, the release build) on uploaders published the way the operator publishes
//! them, the bare-check server (this binary's `bare-server`), and the SDK's route behind
//! FastAPI + uvicorn with 2 workers (e2e/bench/sdk_api.py).

use std::{
    fs,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use licenseware_crds::{AppMetadata, ReportComponent, Uploader, WorkerConfigFile};
use licenseware_operator::registry::{app_entry, component_entry, now_iso, uploader_entry};
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::Value;

use crate::{
    KAFKA_TIMEOUT, Kafka, Stack, consumer::ConsumerSetup, consumer::mongo_url_with_database,
};

/// A child process, stopped with SIGTERM (then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and up to `grace` for the process to end (the API writes its pending
    /// history then); SIGKILL after that.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Starts `command` with stderr to `log` and waits for its `listening on URL` line.
fn start_printing_address(mut command: Command, log: &Path) -> anyhow::Result<Server> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(log).context("create a server log")?)
        .spawn()
        .with_context(|| format!("start {command:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).context("read the server's address")?;
    let Some(url) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("{command:?} did not start; log {}:\n{}", log.display(), fs::read_to_string(log)?);
    };
    Ok(Server { child, url, log: log.to_owned() })
}

/// The registry topic of an API for `setups`: `{prefix}licenseware.registry` on the
/// first setup's prefix.
pub fn create_registry_name(setups: &[&ConsumerSetup]) -> anyhow::Result<String> {
    let first = setups.first().context("at least one uploader")?;
    let prefix = first.events_topic.trim_end_matches("events");
    Ok(format!("{prefix}licenseware.registry"))
}

/// The registry topic of [`create_registry_name`], created (compacted).
pub async fn create_registry(setups: &[&ConsumerSetup]) -> anyhow::Result<String> {
    let topic = create_registry_name(setups)?;
    let kafka = &setups.first().context("at least one uploader")?.kafka;
    kafka.create_topic(&topic, 1, &[("cleanup.policy", "compact")], KAFKA_TIMEOUT).await;
    Ok(topic)
}

/// Drops `binary`'s pages from the page cache, so that every run maps its code from the
/// same state. The API's RSS counts the code as the kernel maps it, and a file just
/// written (a fresh build or copy) sits in larger page-cache folios than one read back
/// from disk: the same binary measured 3.5 MiB more RSS, idle and under load, as a copy
/// than after this.
fn evict_from_page_cache(binary: &Path) -> anyhow::Result<()> {
    let file = fs::File::open(binary).with_context(|| format!("open {}", binary.display()))?;
    // Dirty pages stay cached: write them out first.
    file.sync_all().with_context(|| format!("sync {}", binary.display()))?;
    nix::fcntl::posix_fadvise(&file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .with_context(|| format!("evict {} from the page cache", binary.display()))
}

/// The API for `setups` (the first setup's database and upload root), with every
/// setup's uploader and `components` published on `registry_topic` (made by
/// [`create_registry`]).
pub async fn start_api(
    worker_bin: &Path,
    setups: &[&ConsumerSetup],
    components: &[ReportComponent],
    registry_topic: &str,
    secret_file: &Path,
    extra: &[&str],
    log: &Path,
) -> anyhow::Result<Server> {
    let first = setups.first().context("at least one uploader")?;
    let prefix = registry_topic.trim_end_matches("licenseware.registry");
    evict_from_page_cache(worker_bin)?;
    let mut command = Command::new(worker_bin);
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--jwt-secret-file")
        .arg(secret_file)
        .args(["--topic-prefix", prefix])
        .arg("--upload-root")
        .arg(&first.root)
        .args(extra)
        .env("LW_KAFKA_BROKERS", &first.stack.kafka_brokers)
        .env("LW_MONGO_URL", mongo_url_with_database(&first.stack.mongo_url, &first.database))
        .env("LW_REDIS_URL", &first.stack.redis_url)
        .env("RUST_LOG", "info");
    command.envs(crate::IMAGE_ALLOCATOR_ENV);
    let server = start_printing_address(command, log)?;
    publish(&first.stack.kafka_brokers, registry_topic, setups, components).await?;
    Ok(server)
}

/// Each setup's Uploader, the report components and their app, built by the operator's
/// own registry builders (the uploaders from the setups' worker.yaml), as the operator
/// publishes them.
async fn publish(
    brokers: &str,
    topic: &str,
    setups: &[&ConsumerSetup],
    components: &[ReportComponent],
) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .create()?;
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    let mut app = None;
    for setup in setups {
        let worker: WorkerConfigFile =
            serde_yaml::from_str(&fs::read_to_string(&setup.config_path)?)?;
        let mut uploader = Uploader::new(&setup.uploader_id.replace('_', "-"), worker.spec.clone());
        uploader.metadata.namespace = Some("bench".to_owned());
        let metadata = AppMetadata::for_app(&setup.app_id);
        let entry = uploader_entry(&uploader, &worker, &metadata);
        keys.push(entry.key.clone());
        entries.push(entry);
        app = Some(metadata);
    }
    for component in components {
        let entry = component_entry(component, &[], components);
        keys.push(entry.key.clone());
        entries.push(entry);
    }
    entries.push(app_entry(app.context("an app")?, &keys));
    for entry in entries {
        let payload = Value::Object(entry.document_json(&now_iso())?).to_string();
        let key = entry.key.to_string();
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&payload), Duration::from_secs(30))
            .await
            .map_err(|(error, _)| error)?;
    }
    Ok(())
}

/// Waits until `url` answers 200 to a GET with these headers.
pub async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut request = http.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Ok(response) = request.send().await
            && response.status() == 200
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} not ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// This binary's `bare-server`, verifying with `secret_file`, checking with `rules`.
pub fn start_bare(secret_file: &Path, rules_json: &str, log: &Path) -> anyhow::Result<Server> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("bare-server").arg("--secret-file").arg(secret_file).args(["--rules", rules_json]);
    command.envs(crate::IMAGE_ALLOCATOR_ENV);
    start_printing_address(command, log)
}

/// Where the SDK baseline lives (printed by e2e/bench/sdk-env).
#[derive(Debug, Clone)]
pub struct SdkEnv {
    pub python: PathBuf,
    pub src: PathBuf,
    /// The directory of sdk_api.py.
    pub app_dir: PathBuf,
}

/// What the SDK's app serves.
#[derive(Debug, Clone)]
pub struct SdkUploader<'a> {
    pub app_id: &'a str,
    pub uploader_id: &'a str,
    /// UploaderValidationParameters, snake_case.
    pub validation: Value,
    pub free_quota_units: i64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// uvicorn with 2 workers (uvloop, httptools, no access log) serving sdk_api.py on the
/// stack's MongoDB, database `database`; returns once `/hello` answers.
pub async fn start_sdk(
    env: &SdkEnv,
    stack: &Stack,
    database: &str,
    uploader: &SdkUploader<'_>,
    secret_file: &Path,
    log: &Path,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let python_path = std::env::join_paths([&env.src, &env.app_dir])?;
    let log_file = fs::File::create(log)?;
    let child = Command::new(&env.python)
        .args(["-m", "uvicorn", "sdk_api:app", "--workers", "2", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--loop", "uvloop", "--http", "httptools", "--no-access-log"])
        .current_dir(&env.app_dir)
        .env("PYTHONPATH", python_path)
        .env("BENCH_SDK_MONGO_URL", &stack.mongo_url)
        .env("BENCH_SDK_DB", database)
        .env("BENCH_JWT_SECRET_FILE", secret_file)
        .env("BENCH_APP_ID", uploader.app_id)
        .env("BENCH_UPLOADER_ID", uploader.uploader_id)
        .env("BENCH_SDK_VALIDATION", uploader.validation.to_string())
        .env("BENCH_FREE_QUOTA_UNITS", uploader.free_quota_units.to_string())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("start uvicorn")?;
    let server = Server { child, url: format!("http://127.0.0.1:{port}"), log: log.to_owned() };
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("{}/hello", server.url), &[], Duration::from_secs(60))
        .await
        .with_context(|| format!("the SDK's app; log:\n{}", server.log_tail()))?;
    // Both workers import the SDK; give the second one time to finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(server)
}

/// Topics a bench made beside its setups.
pub async fn delete_topic(stack: &Stack, topic: &str) {
    Kafka::new(&stack.kafka_brokers).delete_topics(&[topic]).await;
}
