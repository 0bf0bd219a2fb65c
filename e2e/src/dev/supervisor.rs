//! What `dev` runs in place of a kubelet: [`Supervised`] processes (output to a log
//! file, restarted with backoff when they die, stopped with SIGTERM then SIGKILL), and
//! [`follow_workers`], which keeps one `licenseware-worker consume` per worker
//! ConfigMap the operator writes, as the worker Deployment would run it. The mapping
//! from a ConfigMap to its process is [`worker_plan`], pure.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use licenseware_crds::WorkerConfigFile;
use licenseware_operator::controllers::uploader::build::{CONFIG_KEY, UPLOADER_LABEL};
use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};
use tokio::sync::watch;

/// The labels of the ConfigMaps (and Deployments) the operator writes for workers.
pub const WORKER_SELECTOR: &str = "app.kubernetes.io/component=worker,licenseware.io/uploader";
/// How often a supervised process is checked for an exit.
const POLL: Duration = Duration::from_millis(200);
/// A process that ran this long before dying starts over from the shortest backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Lines of a dead process's log shown with the report of its death.
const TAIL_LINES: usize = 8;

/// One process to run: what the container of a pod would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// How reports name it: `operator`, `api`, `worker demo/rv-tools`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Set on top of `dev`'s own environment.
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here; truncated at the first start, appended to after.
    pub log: PathBuf,
}

impl ProcessSpec {
    /// The command line, for reports.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|part| part.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How supervised processes are restarted and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The first wait before a restart; it doubles at each death, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a process has between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// Run each process under `setpriv --pdeathsig TERM`, so that it gets SIGTERM even
    /// if `dev` itself is SIGKILLed (see [`pdeathsig_available`]). The signal follows
    /// the thread that spawned the process: a runtime worker thread, which lives as long
    /// as `dev` (nothing here moves work to `block_in_place`).
    pub pdeathsig: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(15),
            pdeathsig: false,
        }
    }
}

/// Whether `setpriv --pdeathsig` (util-linux) works here.
pub fn pdeathsig_available() -> bool {
    Command::new("setpriv")
        .args(["--pdeathsig", "TERM", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// After a process that ran `ran` died with `current` as the backoff: the wait before
/// its restart, and the backoff after that.
pub fn next_backoff(current: Duration, ran: Duration, policy: &Policy) -> (Duration, Duration) {
    let wait = if ran >= STABLE_AFTER { policy.min_backoff } else { current };
    (wait, (wait * 2).min(policy.max_backoff))
}

/// A running supervised process (restarted when it dies) until [`Supervised::stop`].
#[derive(Debug)]
pub struct Supervised {
    name: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Starts `spec` now, and again after each death.
    pub fn start(spec: ProcessSpec, policy: Policy) -> Self {
        let (stop, stopped) = watch::channel(false);
        let name = spec.name.clone();
        let task = tokio::spawn(supervise(spec, policy, stopped));
        Self { name, stop, task }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the process (SIGTERM, SIGKILL after the policy's bound) and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            println!("[dev] {}: its supervisor failed: {error}", self.name);
        }
    }
}

fn open_log(spec: &ProcessSpec, first: bool) -> std::io::Result<fs::File> {
    if let Some(dir) = spec.log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.create(true);
    if first {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options.open(&spec.log)
}

fn spawn(spec: &ProcessSpec, policy: &Policy, first: bool) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut log = open_log(spec, first)?;
    writeln!(log, "---- dev: starting {}", spec.command_line())?;
    let mut command = if policy.pdeathsig {
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "TERM", "--"]).arg(&spec.program);
        command
    } else {
        Command::new(&spec.program)
    };
    command
        .args(&spec.args)
        .envs(crate::IMAGE_ALLOCATOR_ENV)
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        // Text logs without colour codes: they go to a file.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // A group of its own: the terminal's Ctrl-C reaches `dev` only, which stops
        // the processes in order; SIGKILL reaches the process's own children too.
        .process_group(0)
        .spawn()
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("was killed by {signal}"),
            Err(_) => format!("was killed by signal {signal}"),
        },
        _ => status.to_string(),
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 16 * 1024;
    let Ok(mut file) = fs::File::open(path) else { return String::new() };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(WINDOW)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits for `child` to exit, polling; `None` when `stopped` fires first.
async fn wait_or_stop(
    child: &mut Child,
    stopped: &mut watch::Receiver<bool>,
) -> Option<std::io::Result<ExitStatus>> {
    loop {
        if *stopped.borrow() {
            return None;
        }
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) => {}
            Err(error) => return Some(Err(error)),
        }
        tokio::select! {
            _ = stopped.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// SIGTERM, then SIGKILL to the whole process group after `timeout`; reaps it.
pub async fn terminate(child: &mut Child, timeout: Duration) -> ExitStatus {
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL / 2).await,
            _ => break None,
        }
    };
    // The group too: what the process started and left behind (sandboxed readers).
    let _ = killpg(pid, Signal::SIGKILL);
    if let Some(status) = status {
        return status;
    }
    let _ = child.kill();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => tokio::time::sleep(POLL / 4).await,
            // Not ours to wait for any more: report it as killed.
            Err(_) => {
                return std::os::unix::process::ExitStatusExt::from_raw(Signal::SIGKILL as i32);
            }
        }
    }
}

async fn supervise(spec: ProcessSpec, policy: Policy, mut stopped: watch::Receiver<bool>) {
    let name = &spec.name;
    let mut backoff = policy.min_backoff;
    let mut first = true;
    loop {
        let started = Instant::now();
        let spawned = spawn(&spec, &policy, first);
        first = false;
        let death = match spawned {
            Ok(mut child) => {
                println!("[dev] {name}: started (pid {}), log {}", child.id(), spec.log.display());
                match wait_or_stop(&mut child, &mut stopped).await {
                    None => {
                        let status = terminate(&mut child, policy.stop_timeout).await;
                        println!("[dev] {name}: stopped ({})", describe(status));
                        return;
                    }
                    Some(Ok(status)) => describe(status),
                    Some(Err(error)) => format!("could not be waited for: {error}"),
                }
            }
            Err(error) => format!("could not start ({}): {error}", spec.command_line()),
        };
        let wait;
        (wait, backoff) = next_backoff(backoff, started.elapsed(), &policy);
        let tail = tail(&spec.log, TAIL_LINES);
        println!(
            "[dev] {name}: {death}; restarting in {}s. Last lines of {}:\n{}",
            wait.as_secs_f32(),
            spec.log.display(),
            indent(&tail)
        );
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}")).collect::<Vec<_>>().join("\n")
}

/// What every worker process shares: where things are, and the stack's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerContext {
    /// The `licenseware-worker` binary.
    pub worker_bin: PathBuf,
    /// Where the worker.yaml files are written (`{dir}/{namespace}/{name}/worker.yaml`).
    pub config_dir: PathBuf,
    pub log_dir: PathBuf,
    /// The API's upload root: the worker reads the files the API stored there.
    pub upload_root: PathBuf,
    /// LW_KAFKA_BROKERS, LW_MONGO_URL, LW_REDIS_URL (what the Deployment's env or its
    /// Secret gives the pod).
    pub env: Vec<(String, String)>,
    /// The notification topics (`--app-events-topic`, `--log-events-topic`).
    pub app_events_topic: String,
    pub log_events_topic: String,
}

/// The process of one worker ConfigMap, and the file it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    /// `namespace/name` of the ConfigMap.
    pub key: String,
    /// Where `config` is written before the process starts.
    pub config_file: PathBuf,
    /// The ConfigMap's worker.yaml.
    pub config: String,
    pub process: ProcessSpec,
}

/// Why a ConfigMap gets no worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAWorker {
    #[error("it has no {UPLOADER_LABEL} label: not a worker's")]
    NoUploaderLabel,
    #[error("it has no {CONFIG_KEY} key")]
    NoConfig,
    #[error("its name or namespace cannot name a directory: {0:?}")]
    BadName(String),
    #[error("its {CONFIG_KEY} is not a worker configuration: {0}")]
    BadConfig(String),
}

/// The `licenseware-worker consume` that the worker Deployment of `config_map` would
/// run: its worker.yaml as `--config` (the pod mounts it at /etc/licenseware), the
/// shared upload root, the stack's addresses, logs as text, probes on a free port.
pub fn worker_plan(
    config_map: &ConfigMap,
    context: &WorkerContext,
) -> Result<WorkerPlan, NotAWorker> {
    let labels = config_map.metadata.labels.as_ref();
    let uploader = labels.and_then(|l| l.get(UPLOADER_LABEL)).ok_or(NotAWorker::NoUploaderLabel)?;
    let config = config_map
        .data
        .as_ref()
        .and_then(|data| data.get(CONFIG_KEY))
        .ok_or(NotAWorker::NoConfig)?;
    let name = config_map.name_any();
    let namespace = config_map.namespace().unwrap_or_default();
    for part in [&name, &namespace, uploader] {
        let safe = !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !part.starts_with('.');
        if !safe {
            return Err(NotAWorker::BadName(part.clone()));
        }
    }
    let parsed: WorkerConfigFile =
        serde_yaml::from_str(config).map_err(|error| NotAWorker::BadConfig(error.to_string()))?;
    let config_file = context.config_dir.join(&namespace).join(&name).join(CONFIG_KEY);
    let mut args: Vec<OsString> = vec!["consume".into(), "--config".into()];
    args.push(config_file.clone().into());
    args.push("--upload-root".into());
    args.push(context.upload_root.clone().into());
    args.extend(["--log-format", "text"].map(OsString::from));
    // Several workers share this machine: each serves its probes on a free port, which
    // its log names ("probes and metrics listening").
    args.extend(["--listen", "127.0.0.1:0"].map(OsString::from));
    args.extend(["--app-events-topic".into(), context.app_events_topic.clone().into()]);
    args.extend(["--log-events-topic".into(), context.log_events_topic.clone().into()]);
    Ok(WorkerPlan {
        key: format!("{namespace}/{name}"),
        config_file,
        config: config.clone(),
        process: ProcessSpec {
            name: format!(
                "worker {namespace}/{uploader} ({}.{})",
                parsed.app_id, parsed.uploader_id
            ),
            program: context.worker_bin.clone(),
            args,
            env: context.env.clone(),
            log: context.log_dir.join(format!("worker.{namespace}.{uploader}.log")),
        },
    })
}

/// The worker processes, by ConfigMap key.
#[derive(Debug, Default)]
struct Workers {
    running: BTreeMap<String, (WorkerPlan, Supervised)>,
}

impl Workers {
    async fn apply(&mut self, config_map: &ConfigMap, context: &WorkerContext, policy: Policy) {
        let plan = match worker_plan(config_map, context) {
            Ok(plan) => plan,
            Err(error) => {
                let key = format!(
                    "{}/{}",
                    config_map.namespace().unwrap_or_default(),
                    config_map.name_any()
                );
                println!("[dev] ConfigMap {key}: no worker, {error}");
                self.remove(&key).await;
                return;
            }
        };
        if self.running.get(&plan.key).is_some_and(|(running, _)| running == &plan) {
            return;
        }
        let restart = self.remove(&plan.key).await;
        let write = plan
            .config_file
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&plan.config_file, &plan.config));
        if let Err(error) = write {
            println!(
                "[dev] {}: cannot write {}: {error}",
                plan.process.name,
                plan.config_file.display()
            );
            return;
        }
        if restart {
            println!("[dev] ConfigMap {} changed: restarting its worker", plan.key);
        }
        let supervised = Supervised::start(plan.process.clone(), policy);
        self.running.insert(plan.key.clone(), (plan, supervised));
    }

    /// Stops the worker of `key`; whether there was one.
    async fn remove(&mut self, key: &str) -> bool {
        match self.running.remove(key) {
            Some((_, supervised)) => {
                supervised.stop().await;
                true
            }
            None => false,
        }
    }

    async fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.running);
        futures::future::join_all(all.into_values().map(|(_, supervised)| supervised.stop())).await;
    }
}

/// Keeps one worker process per worker ConfigMap of `namespace`: started when one
/// appears, restarted when its content changes, stopped when it goes; until `stopped`
/// fires, then stops them all.
pub async fn follow_workers(
    client: Client,
    namespace: &str,
    context: WorkerContext,
    policy: Policy,
    mut stopped: watch::Receiver<bool>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().labels(WORKER_SELECTOR);
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut workers = Workers::default();
    // Keys seen during a (re-)list: what is not seen again is gone.
    let mut listing: Option<Vec<String>> = None;
    loop {
        let event = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(error)) => println!("[dev] watching the worker ConfigMaps: {error}; retrying"),
            Some(Ok(watcher::Event::Init)) => listing = Some(Vec::new()),
            Some(Ok(watcher::Event::InitApply(config_map))) => {
                if let Some(seen) = listing.as_mut() {
                    seen.push(format!("{namespace}/{}", config_map.name_any()));
                }
                workers.apply(&config_map, &context, policy).await;
            }
            Some(Ok(watcher::Event::InitDone)) => {
                let seen = listing.take().unwrap_or_default();
                let gone: Vec<String> =
                    workers.running.keys().filter(|key| !seen.contains(key)).cloned().collect();
                for key in gone {
                    println!("[dev] ConfigMap {key} is gone: stopping its worker");
                    workers.remove(&key).await;
                }
            }
            Some(Ok(watcher::Event::Apply(config_map))) => {
                workers.apply(&config_map, &context, policy).await;
            }
            Some(Ok(watcher::Event::Delete(config_map))) => {
                let key = format!("{namespace}/{}", config_map.name_any());
                if workers.running.contains_key(&key) {
                    println!("[dev] ConfigMap {key} is gone: stopping its worker");
                    workers.remove(&key).await;
                }
            }
        }
    }
    workers.stop_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> WorkerContext {
        WorkerContext {
            worker_bin: "/repo/target/debug/licenseware-worker".into(),
            config_dir: "/repo/e2e/.dev/workers".into(),
            log_dir: "/repo/e2e/.dev/logs".into(),
            upload_root: "/repo/e2e/.dev/uploads".into(),
            env: vec![("LW_KAFKA_BROKERS".into(), "127.0.0.1:9092".into())],
            app_events_topic: "AppEvents".into(),
            log_events_topic: "LogEvents".into(),
        }
    }

    const WORKER_YAML: &str = "appId: ifmp-service\nuploaderId: rv_tools\nuploader: demo/rv-tools\n\
        eventsTopic: p.ifmp-service.rv_tools.events\ndlqTopic: p.ifmp-service.rv_tools.dlq\n\
        consumerGroup: p.ifmp-service.rv_tools.worker\nmaxAttempts: 5\nuploadRoot: /uploads\n\
        spec: {appId: ifmp-service, name: RVTools, acceptedFileTypes: [.xlsx]}\n";

    fn config_map(labels: &[(&str, &str)], data: Option<&str>) -> ConfigMap {
        let mut config_map = ConfigMap::default();
        config_map.metadata.name = Some("rv-tools-worker".into());
        config_map.metadata.namespace = Some("demo".into());
        config_map.metadata.labels =
            Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        config_map.data =
            data.map(|yaml| [(CONFIG_KEY.to_owned(), yaml.to_owned())].into_iter().collect());
        config_map
    }

    const LABELS: [(&str, &str); 2] =
        [("app.kubernetes.io/component", "worker"), (UPLOADER_LABEL, "rv-tools")];

    #[test]
    fn a_worker_config_map_runs_consume_with_its_worker_yaml() {
        let plan = worker_plan(&config_map(&LABELS, Some(WORKER_YAML)), &context()).unwrap();
        assert_eq!(plan.key, "demo/rv-tools-worker");
        assert_eq!(plan.config, WORKER_YAML);
        assert_eq!(
            plan.config_file,
            PathBuf::from("/repo/e2e/.dev/workers/demo/rv-tools-worker/worker.yaml")
        );
        let process = &plan.process;
        assert_eq!(process.name, "worker demo/rv-tools (ifmp-service.rv_tools)");
        assert_eq!(process.program, PathBuf::from("/repo/target/debug/licenseware-worker"));
        assert_eq!(
            process.command_line(),
            "/repo/target/debug/licenseware-worker consume \
             --config /repo/e2e/.dev/workers/demo/rv-tools-worker/worker.yaml \
             --upload-root /repo/e2e/.dev/uploads --log-format text \
             --listen 127.0.0.1:0 --app-events-topic AppEvents --log-events-topic LogEvents"
        );
        assert_eq!(process.env, context().env);
        assert_eq!(process.log, PathBuf::from("/repo/e2e/.dev/logs/worker.demo.rv-tools.log"));
    }

    #[test]
    fn a_changed_worker_yaml_is_another_plan() {
        let before = worker_plan(&config_map(&LABELS, Some(WORKER_YAML)), &context()).unwrap();
        let changed = WORKER_YAML.replace("maxAttempts: 5", "maxAttempts: 3");
        let after = worker_plan(&config_map(&LABELS, Some(&changed)), &context()).unwrap();
        assert_ne!(before, after);
        assert_eq!(before.process, after.process, "same process, new file content");
    }

    #[test]
    fn other_config_maps_get_no_worker() {
        let context = context();
        let unlabelled =
            config_map(&[("app.kubernetes.io/component", "worker")], Some(WORKER_YAML));
        assert_eq!(worker_plan(&unlabelled, &context), Err(NotAWorker::NoUploaderLabel));
        assert_eq!(worker_plan(&config_map(&LABELS, None), &context), Err(NotAWorker::NoConfig));
        let bad = worker_plan(&config_map(&LABELS, Some("appId: [")), &context);
        assert!(matches!(bad, Err(NotAWorker::BadConfig(_))), "{bad:?}");
        let mut escaping = config_map(&LABELS, Some(WORKER_YAML));
        escaping.metadata.namespace = Some("..".into());
        assert_eq!(worker_plan(&escaping, &context), Err(NotAWorker::BadName("..".into())));
    }

    #[test]
    fn backoff_doubles_to_its_bound_and_resets_after_a_stable_run() {
        let policy = Policy::default();
        let (short, secs) = (Duration::from_secs(2), Duration::from_secs);
        assert_eq!(next_backoff(policy.min_backoff, short, &policy), (secs(1), secs(2)));
        assert_eq!(next_backoff(secs(2), short, &policy), (secs(2), secs(4)));
        assert_eq!(next_backoff(secs(20), short, &policy), (secs(20), policy.max_backoff));
        assert_eq!(next_backoff(secs(30), short, &policy), (secs(30), secs(30)));
        assert_eq!(next_backoff(secs(30), STABLE_AFTER, &policy), (secs(1), secs(2)));
    }

    #[test]
    fn tail_gives_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, (1..=20).map(|i| format!("line {i}\n")).collect::<String>()).unwrap();
        assert_eq!(tail(&log, 2), "line 19\nline 20");
        assert_eq!(tail(&dir.path().join("missing"), 2), "");
    }
}
