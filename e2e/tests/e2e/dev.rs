//! `make dev`'s supervisor (the `dev` binary) against the real stack, isolated: its own
//! namespace, topic prefix, MongoDB database, ports and state directory. With the
//! sample Uploader applied, it must run the operator, the API and the Uploader's worker,
//! upload the sample RVTools.xlsx through the API and print how to read the result;
//! follow a second Uploader's worker ConfigMap in and out; restart a worker that dies;
//! and on SIGINT stop every process it started and exit 0.
//!
//! It runs `licenseware-operator` and `licenseware-worker` from target/debug (built
//! here), or from `LW_DEV_BIN_DIR` when set.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kube::{Api, Client};
use licenseware_crds::Uploader;
use licenseware_e2e::{
    Kafka, Stack,
    consumer::{mongo_url_with_database, stack_shared, worker_binary},
    install_crds,
    kube::{apply, delete_and_wait, delete_namespace, fresh_namespace},
    unique_name,
};
use mongodb::bson::{Document, doc};
use serde_json::Value;
use tokio::sync::mpsc;

/// Bound of the first start: the operator reconciles, the API reads the registry, the
/// worker joins its group, the file is processed.
const READY: Duration = Duration::from_secs(300);
/// Bound of each later step.
const STEP: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo build` of one binary of the workspace (without the variables cargo sets for
/// this test, so that the build is the one a shell gets and reuses its artifacts).
fn cargo_build(package: &str, bin: &str) -> PathBuf {
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", package, "--bin", bin]);
    for (name, _) in std::env::vars_os() {
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].iter().any(|kept| name == *kept);
        if name.to_string_lossy().starts_with("CARGO_") && !keep {
            build.env_remove(name);
        }
    }
    assert!(build.status().expect("run cargo build").success(), "cargo build {bin} failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    target.join("debug").join(bin)
}

/// The directory holding both binaries `dev` runs.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LW_DEV_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let operator = cargo_build("licenseware-operator", "licenseware-operator");
    let worker = worker_binary();
    assert_eq!(operator.parent(), worker.parent(), "both binaries in one directory");
    operator.parent().expect("a directory").to_path_buf()
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

/// The pid in a `[dev] NAME: started (pid N), log ...` line.
fn pid_of(line: &str) -> u32 {
    let rest = line.split("(pid ").nth(1).expect("a pid");
    rest.split(')').next().expect("pid)").parse().expect("a number")
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// `dev` as a child process, its stdout read line by line.
struct Dev {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    output: Vec<String>,
}

impl Dev {
    fn start(args: &[String], mongo_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dev"))
            .args(args)
            .env("LW_MONGO_URL", mongo_url)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dev");
        let (sender, lines) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self { child, lines, output: Vec::new() }
    }

    /// The next line matching `wanted`; fails on the demo's failure, on the end of the
    /// output, or after `timeout`.
    async fn line(
        &mut self,
        timeout: Duration,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => panic!("dev's output ended before {what}:\n{}", self.output.join("\n")),
                Err(_) => {
                    panic!("no {what} within {timeout:?}; dev printed:\n{}", self.output.join("\n"))
                }
            };
            self.output.push(line.clone());
            assert!(!line.contains("the demo failed"), "{}", self.output.join("\n"));
            if wanted(&line) {
                return line;
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    async fn exit_status(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for dev") {
                return status;
            }
            assert!(Instant::now() < deadline, "dev did not exit:\n{}", self.output.join("\n"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // A failed test still stops what dev started: SIGTERM, then SIGKILL (its
        // children are then stopped by their parent-death signal).
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn uploader_manifest(name: &str, uploader_id: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("manifests/examples/rv-tools.uploader.yaml"))
        .expect("the sample Uploader");
    let mut manifest: Value = serde_yaml::from_str(&text).expect("YAML");
    manifest["metadata"]["name"] = name.into();
    manifest["spec"]["uploaderId"] = uploader_id.into();
    manifest
}

/// The value after `label` at the start of a line of the printed block.
fn field(block: &str, label: &str) -> String {
    block
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{block}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn dev_runs_the_system_uploads_the_sample_and_stops_everything_on_ctrl_c() {
    let _stack = stack_shared().await;
    let stack = Stack::from_env();
    // Built first: a failed build leaves nothing behind.
    let bin_dir = bin_dir();
    let client = Client::try_default().await.expect("kubeconfig");
    install_crds(&client).await;
    let namespace = fresh_namespace(&client, "dev").await;
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), &namespace);
    apply(&uploaders, &uploader_manifest("rv-tools", "rv_tools")).await;

    let prefix = format!("{}.", unique_name("dev"));
    let database = unique_name("dev").replace('-', "_");
    let mongo_url = mongo_url_with_database(&stack.mongo_url, &database);
    let state = tempfile::tempdir().expect("state dir");
    let api_address = free_port();
    let args: Vec<String> = [
        "--namespace",
        &namespace,
        "--listen",
        &api_address,
        "--operator-probe-addr",
        &free_port(),
        "--topic-prefix",
        &prefix,
        "--app-events-topic",
        &format!("{prefix}AppEvents"),
        "--log-events-topic",
        &format!("{prefix}LogEvents"),
        "--state-dir",
        &state.path().to_string_lossy(),
        "--bin-dir",
        &bin_dir.to_string_lossy(),
        "--stop-timeout-secs",
        "20",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut dev = Dev::start(&args, &mongo_url);

    // Everything up, the sample processed, the block printed.
    let worker = format!("[dev] worker {namespace}/rv-tools ");
    let started = |line: &str| line.contains(": started (pid ");
    dev.line(READY, "the ready block", |line| line.starts_with("==== make dev: ready")).await;
    let mut block = Vec::new();
    while !block.last().is_some_and(|line: &String| line.starts_with("Ctrl-C stops")) {
        block.push(dev.line(STEP, "the end of the block", |_| true).await);
    }
    let block = block.join("\n");
    let api = format!("http://{api_address}");
    assert_eq!(field(&block, "API "), api, "{block}");
    let tenant = field(&block, "tenant ");
    let token = field(&block, "token ");
    let event = block.split("(event ").nth(1).and_then(|rest| rest.split(')').next());
    let event = event.unwrap_or_else(|| panic!("no event id in:\n{block}")).to_owned();
    for path in [
        "/ifmp-service/uploads/rv-tools/status".to_owned(),
        format!("/ifmp-service/history/{event}"),
        "/registry/uploaders".to_owned(),
        "/ifmp-service/metadata".to_owned(),
    ] {
        let curl = format!(
            "curl -sS -H 'TenantId: {tenant}' -H 'Authorization: Bearer {token}' '{api}{path}'"
        );
        assert!(block.lines().any(|line| line == curl), "{curl} in:\n{block}");
    }
    let started_lines: Vec<String> =
        dev.output.iter().filter(|line| started(line)).cloned().collect();
    for name in ["[dev] operator:", "[dev] api:", worker.as_str()] {
        assert!(started_lines.iter().any(|l| l.starts_with(name)), "{name} in {started_lines:?}");
    }

    // What the curl lines read: the event processed, the uploader registered; and the
    // documents in MongoDB.
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{api}{path}"))
            .header("TenantId", &tenant)
            .header("Authorization", format!("Bearer {token}"))
            .send()
    };
    let history: Value = get(format!("/ifmp-service/history/{event}"))
        .await
        .expect("history")
        .json()
        .await
        .expect("JSON");
    assert_eq!(history["processing_status"], "success", "{history}");
    let registry: Value =
        get("/registry/uploaders".into()).await.expect("registry").json().await.expect("JSON");
    let ids: Vec<&str> = registry
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|entry| entry["uploader_id"].as_str())
        .collect();
    assert!(ids.contains(&"rv_tools"), "{registry}");
    let mongo = mongodb::Client::with_uri_str(&mongo_url).await.expect("MongoDB");
    let documents = mongo
        .database(&database)
        .collection::<Document>("Data")
        .count_documents(doc! {"tenant_id": &tenant, "uploader_id": "rv_tools"})
        .await
        .expect("count");
    assert!(documents > 0, "the worker stored the sample's documents");

    // A new Uploader gets a worker; deleting it stops the worker.
    apply(&uploaders, &uploader_manifest("rv-tools-two", "rv_tools_two")).await;
    let two = format!("[dev] worker {namespace}/rv-tools-two ");
    let two_started = dev.line(STEP, "the new worker", |l| l.starts_with(&two) && started(l)).await;
    delete_and_wait(&uploaders, "rv-tools-two", STEP).await;
    dev.line(STEP, "the new worker's stop", |l| l.starts_with(&two) && l.contains(": stopped"))
        .await;
    assert!(gone(pid_of(&two_started)), "the stopped worker is gone");

    // A worker that dies is restarted.
    let first = started_lines.iter().find(|l| l.starts_with(&worker)).expect("the worker").clone();
    let killed = pid_of(&first);
    let status = Command::new("kill").args(["-KILL", &killed.to_string()]).status();
    assert!(status.expect("kill").success());
    dev.line(STEP, "the death report", |l| l.starts_with(&worker) && l.contains("restarting in"))
        .await;
    let again = dev.line(STEP, "the restart", |l| l.starts_with(&worker) && started(l)).await;
    assert_ne!(pid_of(&again), killed);

    // The sample's Uploader goes while the operator runs (its finalizer needs it).
    delete_and_wait(&uploaders, "rv-tools", STEP).await;

    // Ctrl-C: every process stopped, exit 0.
    dev.signal("-INT");
    dev.line(STEP, "the end", |line| line == "[dev] everything stopped").await;
    let status = dev.exit_status(STEP).await;
    assert!(status.success(), "dev exited with {status}:\n{}", dev.output.join("\n"));
    let pids: Vec<u32> = dev.output.iter().filter(|l| started(l)).map(|l| pid_of(l)).collect();
    assert!(pids.len() >= 5, "{pids:?}");
    for pid in pids {
        assert!(gone(pid), "pid {pid} outlived dev:\n{}", dev.output.join("\n"));
    }

    delete_namespace(&client, &namespace).await;
    let kafka = Kafka::new(&stack.kafka_brokers);
    let topics = kafka.topics_with_prefix(&prefix).await;
    kafka.delete_topics(&topics.keys().map(String::as_str).collect::<Vec<_>>()).await;
    let _ = mongo.database(&database).drop().await;
}
