//! The worker's consumer runtime as the tests drive it: the example custom worker
//! (`worker/examples/custom_worker.rs`) as a child process on its own topics, database,
//! consumer group and upload root, and what the tests read back (documents, history,
//! status, notifications, dead letters, committed offsets). Also restarts of one
//! component of the stack (Kafka, FerretDB) under a running worker.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use rdkafka::message::{Headers, Message};
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    admin::{AdminOptions, AlterConfig, ResourceSpecifier},
    consumer::{BaseConsumer, Consumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{KAFKA_TIMEOUT, Kafka, Stack, eventually, unique_name};

/// Tests that restart a server of the stack hold this exclusively; the other consumer
/// tests hold it shared, so that no test sees an outage it did not ask for.
static STACK: RwLock<()> = RwLock::const_new(());

pub async fn stack_shared() -> RwLockReadGuard<'static, ()> {
    STACK.read().await
}

pub async fn stack_exclusive() -> RwLockWriteGuard<'static, ()> {
    STACK.write().await
}

/// The example custom worker, built once per test process
/// (`LW_CUSTOM_WORKER_BIN` names another binary).
pub fn custom_worker_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("LW_CUSTOM_WORKER_BIN") {
                return PathBuf::from(path);
            }
            cargo_build(&["--example", "custom_worker"], "debug/examples/custom_worker")
        })
        .clone()
}

/// The example worker that aborts on a `#abort` line (`worker/examples/abort_worker.rs`),
/// built once per test process.
pub fn abort_worker_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| cargo_build(&["--example", "abort_worker"], "debug/examples/abort_worker"))
        .clone()
}

/// The `licenseware-worker` binary, built once per test process.
pub fn worker_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| cargo_build(&["--bin", "licenseware-worker"], "debug/licenseware-worker"))
        .clone()
}

fn cargo_build(what: &[&str], output: &str) -> PathBuf {
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", "licenseware-worker"]).args(what);
    // Without the variables cargo sets for this test, so that the build is the one
    // `cargo build` gives from a shell and reuses its artifacts.
    for (name, _) in std::env::vars_os() {
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].iter().any(|kept| name == *kept);
        if name.to_string_lossy().starts_with("CARGO_") && !keep {
            build.env_remove(name);
        }
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build {what:?} failed: {status}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    target.join(output)
}

/// One uploader's consumer world: topics, group, database, upload root, worker.yaml.
pub struct ConsumerSetup {
    pub app_id: String,
    pub uploader_id: String,
    pub events_topic: String,
    pub dlq_topic: String,
    pub app_events: String,
    pub log_events: String,
    pub group: String,
    pub database: String,
    pub root: PathBuf,
    pub config_path: PathBuf,
    pub stack: Stack,
    pub kafka: Kafka,
    pub mongo: mongodb::Database,
    pub redis: redis::Client,
    producer: FutureProducer,
}

impl std::fmt::Debug for ConsumerSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSetup").field("events_topic", &self.events_topic).finish()
    }
}

/// The stack's MongoDB URL with `database` as its path.
pub fn mongo_url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let hosts_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut result = format!("{}/{database}", &base[..hosts_end]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

impl ConsumerSetup {
    /// Creates the topics (the broker does not auto-create them) and the files.
    pub async fn new(label: &str, partitions: i32, max_attempts: u32) -> Self {
        let spec = json!({"name": "Lines", "acceptedFileTypes": [".txt", ".csv"]});
        Self::with_spec(label, partitions, max_attempts, spec).await
    }

    /// Like [`Self::new`] with the Uploader `spec` (appId and uploaderId are the setup's).
    pub async fn with_spec(label: &str, partitions: i32, max_attempts: u32, spec: Value) -> Self {
        let stack = Stack::from_env();
        let kafka = Kafka::new(&stack.kafka_brokers);
        let name = unique_name(label).replace('-', "_");
        let app_id = "consume-app".to_owned();
        let uploader_id = name.clone();
        let prefix = format!("e2e.{name}");
        let setup_topics = [
            (format!("{prefix}.events"), partitions),
            (format!("{prefix}.dlq"), 1),
            (format!("{prefix}.AppEvents"), 1),
            (format!("{prefix}.LogEvents"), 1),
        ];
        for (topic, partitions) in &setup_topics {
            kafka.create_topic(topic, *partitions, &[], KAFKA_TIMEOUT).await;
        }
        let root = std::env::temp_dir().join(format!("lw-consume-{name}"));
        fs::create_dir_all(root.join("uploads")).expect("create the upload root");
        let root = root.canonicalize().expect("canonical root");
        let database = name.clone();
        let mongo_url = mongo_url_with_database(&stack.mongo_url, &database);
        let mongo = mongodb::Client::with_uri_str(&mongo_url).await.expect("mongodb client");
        let redis = redis::Client::open(stack.redis_url.as_str()).expect("redis client");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_brokers)
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
        let setup = Self {
            events_topic: setup_topics[0].0.clone(),
            dlq_topic: setup_topics[1].0.clone(),
            app_events: setup_topics[2].0.clone(),
            log_events: setup_topics[3].0.clone(),
            group: format!("{prefix}.worker"),
            config_path: root.join("worker.yaml"),
            root: root.join("uploads"),
            mongo: mongo.database(&database),
            database,
            app_id,
            uploader_id,
            stack,
            kafka,
            redis,
            producer,
        };
        setup.write_worker_yaml(max_attempts, spec);
        setup
    }

    fn write_worker_yaml(&self, max_attempts: u32, mut spec: Value) {
        spec["appId"] = json!(self.app_id);
        spec["uploaderId"] = json!(self.uploader_id);
        let yaml = json!({
            "appId": self.app_id,
            "uploaderId": self.uploader_id,
            "uploader": format!("e2e/{}", self.uploader_id.replace('_', "-")),
            "eventsTopic": self.events_topic,
            "dlqTopic": self.dlq_topic,
            "consumerGroup": self.group,
            "maxAttempts": max_attempts,
            "uploadRoot": self.root,
            "spec": spec,
        });
        let text = serde_yaml::to_string(&yaml).expect("worker.yaml");
        fs::write(&self.config_path, text).expect("write worker.yaml");
    }

    /// Writes an uploaded file at `{root}/{tenant}/{event}/{name}`; returns its path.
    pub fn write_file(&self, tenant: &str, event: &str, name: &str, contents: &[u8]) -> String {
        let dir = self.root.join(tenant).join(event);
        fs::create_dir_all(&dir).expect("create the event's directory");
        let path = dir.join(name);
        fs::write(&path, contents).expect("write an uploaded file");
        path.to_string_lossy().into_owned()
    }

    /// The `data` of a processing event of this uploader.
    pub fn event(&self, tenant: &str, event: &str, filepaths: &[String], clear: bool) -> Value {
        json!({
            "tenant_id": tenant, "authorization": "Bearer e2e", "uploader_id": self.uploader_id,
            "filepaths": filepaths, "clear_data": clear, "event_id": event, "app_id": self.app_id,
        })
    }

    /// Publishes an event in its envelope, keyed by event id, with the contract headers.
    pub async fn publish(&self, data: &Value) {
        let envelope = json!({"schema": "ProcessingEvent:1", "data": data}).to_string();
        let event_id = data["event_id"].as_str().unwrap_or_default();
        let tenant = data["tenant_id"].as_str().unwrap_or_default();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "tenant_id", value: Some(tenant) })
            .insert(Header { key: "event_id", value: Some(event_id) })
            .insert(Header {
                key: "traceparent",
                value: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            });
        self.publish_raw(event_id, envelope.as_bytes(), Some(headers)).await;
    }

    pub async fn publish_raw(&self, key: &str, payload: &[u8], headers: Option<OwnedHeaders>) {
        let mut record = FutureRecord::to(&self.events_topic).key(key).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.producer.send(record, KAFKA_TIMEOUT).await.map_err(|(e, _)| e).expect("publish");
    }

    /// Sets the DLQ topic's `max.message.bytes`: the broker then refuses larger letters.
    pub async fn limit_dlq_message_bytes(&self, bytes: usize) {
        let value = bytes.to_string();
        let config = AlterConfig::new(ResourceSpecifier::Topic(&self.dlq_topic))
            .set("max.message.bytes", &value);
        let results = self
            .kafka
            .admin()
            .alter_configs(&[config], &AdminOptions::new())
            .await
            .expect("alter the DLQ's configs");
        for result in results {
            result.expect("DLQ config altered");
        }
        let expected = [("max.message.bytes", value.as_str())];
        self.kafka.wait_configs(&self.dlq_topic, &expected, KAFKA_TIMEOUT).await;
    }

    /// Committed offsets of the worker's group and end offsets of the events topic,
    /// summed over partitions.
    pub async fn offsets(&self) -> (i64, i64) {
        let brokers = self.stack.kafka_brokers.clone();
        let group = self.group.clone();
        let topic = self.events_topic.clone();
        let partitions = self.kafka.partitions(&topic).await.expect("events topic");
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", &group)
                .create()
                .expect("offsets consumer");
            let mut list = TopicPartitionList::new();
            let last = i32::try_from(partitions).expect("few partitions") - 1;
            list.add_partition_range(&topic, 0, last);
            let Ok(committed) = consumer.committed_offsets(list, KAFKA_TIMEOUT) else {
                return (-1, 0);
            };
            let mut sums = (0, 0);
            for element in committed.elements() {
                if let Offset::Offset(offset) = element.offset() {
                    sums.0 += offset;
                }
                let (_, high) = consumer
                    .fetch_watermarks(&topic, element.partition(), KAFKA_TIMEOUT)
                    .unwrap_or((0, 0));
                sums.1 += high;
            }
            sums
        })
        .await
        .expect("offsets task")
    }

    /// Waits until the group has committed every event published so far.
    pub async fn wait_all_committed(&self, published: i64, timeout: Duration) {
        eventually(timeout, "every offset to be committed", || async {
            let (committed, end) = self.offsets().await;
            (end == published && committed == end).then_some(())
        })
        .await;
    }

    /// At least `count` messages of `topic`, from its beginning.
    pub async fn messages(
        &self,
        topic: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<OwnedMessage> {
        let brokers = self.stack.kafka_brokers.clone();
        let topic = topic.to_owned();
        let partitions = self.kafka.partitions(&topic).await.expect("topic exists");
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", unique_name("reader"))
                .set("enable.auto.commit", "false")
                .create()
                .expect("reader");
            let mut list = TopicPartitionList::new();
            for partition in 0..i32::try_from(partitions).expect("few partitions") {
                list.add_partition_offset(&topic, partition, Offset::Beginning).expect("offset");
            }
            consumer.assign(&list).expect("assign");
            let deadline = Instant::now() + timeout;
            let mut messages = Vec::new();
            while messages.len() < count && Instant::now() < deadline {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                    messages.push(message.detach());
                }
            }
            assert!(messages.len() >= count, "{} of {count} messages on {topic}", messages.len());
            messages
        })
        .await
        .expect("reader task")
    }

    pub async fn count(&self, collection: &str, filter: Document) -> u64 {
        self.mongo.collection::<Document>(collection).count_documents(filter).await.expect("count")
    }

    pub async fn find(&self, collection: &str, filter: Document) -> Vec<Document> {
        let cursor =
            self.mongo.collection::<Document>(collection).find(filter).await.expect("find");
        cursor.try_collect().await.expect("read the cursor")
    }

    /// The history document of an event.
    pub async fn history(&self, tenant: &str, event: &str) -> Option<Document> {
        self.mongo
            .collection::<Document>("ProcessingHistory")
            .find_one(doc! {"tenant_id": tenant, "event_id": event})
            .await
            .expect("find history")
    }

    /// The uploader's status value in Redis for `tenant`, parsed.
    pub async fn status(&self, tenant: &str) -> Option<Value> {
        let mut connection = self.redis.get_multiplexed_async_connection().await.ok()?;
        let key = format!("uploader_status:{}:{tenant}", self.uploader_id);
        let value: Option<String> =
            redis::cmd("GET").arg(&key).query_async(&mut connection).await.ok()?;
        serde_json::from_str(&value?).ok()
    }

    /// Drops what the test made (a failed test keeps it for a look).
    pub async fn cleanup(&self) {
        let _ = self.mongo.drop().await;
        let topics = [&self.events_topic, &self.dlq_topic, &self.app_events, &self.log_events];
        let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
        self.kafka.delete_topics(&topics).await;
        if let Some(parent) = self.root.parent() {
            let _ = fs::remove_dir_all(parent);
        }
    }
}

/// The custom worker as a child process; SIGKILLed when dropped.
pub struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl std::fmt::Debug for WorkerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerProcess").field("pid", &self.child.id()).finish()
    }
}

impl WorkerProcess {
    /// The example custom worker.
    pub fn start(setup: &ConsumerSetup, label: &str) -> Self {
        Self::start_command(setup, label, custom_worker_binary(), &[], "info")
    }

    /// `licenseware-worker consume`: the default worker with the Uploader's pipeline.
    pub fn start_default(setup: &ConsumerSetup, label: &str) -> Self {
        Self::start_command(setup, label, worker_binary(), &["consume"], "info")
    }

    /// `binary` with `args` (e.g. a release build of `licenseware-worker` and
    /// `["consume"]`), configured like the other starts, logging at `rust_log`.
    pub fn start_command(
        setup: &ConsumerSetup,
        label: &str,
        binary: PathBuf,
        args: &[&str],
        rust_log: &str,
    ) -> Self {
        Self::start_with_env(setup, label, binary, args, rust_log, &[])
    }

    /// Like [`Self::start_command`] with more environment variables (e.g. a `TMPDIR`
    /// of the test's own).
    pub fn start_with_env(
        setup: &ConsumerSetup,
        label: &str,
        binary: PathBuf,
        args: &[&str],
        rust_log: &str,
        env: &[(&str, &Path)],
    ) -> Self {
        let log = setup.root.with_file_name(format!("worker-{label}.log"));
        let file = fs::File::create(&log).expect("create the worker log");
        // To debug a run: e.g. LW_E2E_WORKER_RUST_LOG=info,librdkafka=debug with
        // LW_KAFKA_PROPERTIES=debug=cgrp shows the worker's consumer group.
        let rust_log =
            std::env::var("LW_E2E_WORKER_RUST_LOG").unwrap_or_else(|_| rust_log.to_owned());
        let child = Command::new(binary)
            // Several workers run at once here: probes on a free port each (the log
            // names it); `env` may say otherwise.
            .env("LW_LISTEN", "127.0.0.1:0")
            .args(args)
            .arg("--config")
            .arg(&setup.config_path)
            .args(["--app-events-topic", &setup.app_events])
            .args(["--log-events-topic", &setup.log_events])
            .args(["--retry-backoff-base-ms", "50", "--retry-backoff-max-ms", "1000"])
            .args(["--log-format", "json"])
            .env("LW_KAFKA_BROKERS", &setup.stack.kafka_brokers)
            .env("LW_MONGO_URL", mongo_url_with_database(&setup.stack.mongo_url, &setup.database))
            .env("LW_REDIS_URL", &setup.stack.redis_url)
            .env_remove("LW_UPLOAD_ROOT")
            .env_remove("LW_WORKER_CONFIG")
            .env("RUST_LOG", rust_log)
            .envs(env.iter().map(|(name, value)| (*name, *value)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("start the custom worker");
        Self { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// `http://` and the address of the worker's probes, from its JSON log.
    pub async fn probe_url(&self, timeout: Duration) -> String {
        crate::eventually(timeout, "the worker's \"probes and metrics listening\" line", || {
            let log = self.log();
            async move {
                log.lines()
                    .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                    .find(|line| line["message"] == "probes and metrics listening")
                    .and_then(|line| Some(format!("http://{}", line["addr"].as_str()?)))
            }
        })
        .await
    }

    /// The status and body of `path` on the worker's probe server.
    pub async fn probe(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.probe_url(Duration::from_secs(60)).await);
        let response = reqwest::get(&url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("probe body"))
    }

    /// One sample of `series` (full name, labels included) in the worker's `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.probe("/metrics").await;
        body.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&self) {
        terminate_child(&self.child);
    }

    /// The exit status if the process exited (by itself or killed by a signal).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for the worker")
    }

    /// Waits for the process to exit by itself.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let status = wait_exit(&mut self.child, timeout).await;
        status.unwrap_or_else(|| panic!("the worker did not exit; log:\n{}", self.log()))
    }
}

impl Drop for WorkerProcess {
    #[allow(clippy::print_stderr)] // the test's output is where a failure is read
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of the custom worker ---\n{}", self.log());
        }
        self.kill();
    }
}

fn signal(target: &str, signal: &str) {
    let status = Command::new("kill").args([signal, "--", target]).status().expect("run kill");
    assert!(status.success(), "kill {signal} {target} failed");
}

/// SIGTERM to one child process.
pub fn terminate_child(child: &Child) {
    signal(&child.id().to_string(), "-TERM");
}

/// Waits up to `timeout` for `child` to exit by itself; `None` if it did not.
pub async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child process") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn process_gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Stops one component of the stack (`kafka`, `ferretdb`, `redis`...) with SIGTERM to
/// its process group, waits `down_for`, and has `e2e/stack/up` start it again (`up`
/// restarts what is down and leaves the rest alone).
pub async fn restart_component(name: &str, down_for: Duration) {
    let state = PathBuf::from(std::env::var("LW_STACK_DIR").expect("LW_STACK_DIR is set"));
    let record = fs::read_to_string(state.join("pids").join(format!("{name}.pid")))
        .unwrap_or_else(|error| panic!("{name} was not started by e2e/stack/up: {error}"));
    let pid = record.split_whitespace().next().expect("a pid").to_owned();
    // The negative pid: the process group `up` started it in (setsid), children too.
    signal(&format!("-{pid}"), "-TERM");
    eventually(Duration::from_secs(60), &format!("{name} to stop"), || async {
        process_gone(&pid).then_some(())
    })
    .await;
    tokio::time::sleep(down_for).await;
    let up = stack_script(&state, "up");
    let output = tokio::task::spawn_blocking(move || Command::new(up).output())
        .await
        .expect("up task")
        .expect("run e2e/stack/up");
    assert!(
        output.status.success(),
        "e2e/stack/up did not restart {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stack_script(state: &Path, script: &str) -> PathBuf {
    state.parent().expect("e2e/.stack has a parent").join("stack").join(script)
}

/// A Kafka message's header as text (lossy), the first of that name.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_goes_in_the_url_path() {
        let url = mongo_url_with_database;
        assert_eq!(url("mongodb://127.0.0.1:1/", "db"), "mongodb://127.0.0.1:1/db");
        assert_eq!(url("mongodb://127.0.0.1:1", "db"), "mongodb://127.0.0.1:1/db");
        assert_eq!(url("mongodb://h:1/old?w=1", "db"), "mongodb://h:1/db?w=1");
    }
}
