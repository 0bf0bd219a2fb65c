//! `dev` (what `make dev` runs once the stack is up and the sample app applied): the
//! whole system as local processes, with no kubelet. It runs the operator and the API,
//! and one `licenseware-worker consume` per worker ConfigMap the operator writes
//! ([`supervisor::follow_workers`]: what the worker Deployments would run); restarts
//! whatever dies, with backoff. Then the [`demo`]: a dev token, the sample RVTools.xlsx
//! uploaded through the API and processed, and the lines to look at the result. SIGINT,
//! SIGTERM or SIGHUP stops everything it started (SIGTERM, then SIGKILL after a bound).
//!
//! Everything it writes is under its state directory (`e2e/.dev/` by default): `logs/`
//! (one file per process), `workers/` (the worker.yaml of each worker), `uploads/` (the
//! upload root the API and the workers share) and `jwt-secret` (the API's HS256 secret).

pub mod demo;
pub mod supervisor;

use std::{
    ffi::OsString,
    fs,
    io::Write,
    net::{SocketAddr, TcpListener},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
};
use tokio::sync::watch;

use self::{
    demo::{DemoSettings, SampleUploader},
    supervisor::{Policy, ProcessSpec, Supervised, WorkerContext},
};

/// `dev`: runs the operator, the API and the uploaders' workers on this machine against
/// the local stack (`set -a; . e2e/.stack/env; set +a` first), then uploads the sample
/// file through the API. Ctrl-C stops everything.
#[derive(Debug, Clone, Parser)]
#[command(name = "dev")]
pub struct DevArgs {
    /// The namespace of the sample app: the operator watches it, and a worker runs for
    /// each of its Uploaders.
    #[arg(long, env = "LW_DEV_NAMESPACE", default_value = "licenseware-demo")]
    pub namespace: String,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the operator's /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub operator_probe_addr: SocketAddr,
    /// Prefix of the Kafka topics (the operator's and the API's --topic-prefix).
    #[arg(long, default_value = "")]
    pub topic_prefix: String,
    /// Logs, worker configs, uploads and the JWT secret go here.
    #[arg(long, default_value = "e2e/.dev")]
    pub state_dir: PathBuf,
    /// Directory of `licenseware-operator` and `licenseware-worker` (default: this
    /// binary's own, e.g. target/debug).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The Uploader manifest the demo uploads to (its appId and uploaderId).
    #[arg(long, default_value = "manifests/examples/rv-tools.uploader.yaml")]
    pub sample_uploader: PathBuf,
    /// The file the demo uploads.
    #[arg(long, default_value = "worker/tests/fixtures/RVTools.xlsx")]
    pub sample_file: PathBuf,
    /// The workers' notification topic (created when missing, like the next one).
    #[arg(long, default_value = "AppEvents")]
    pub app_events_topic: String,
    /// The workers' processing log topic.
    #[arg(long, default_value = "LogEvents")]
    pub log_events_topic: String,
    /// Tenant of the demo's token and upload (default: a new UUID each run).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only run the processes: no token, no upload.
    #[arg(long)]
    pub no_demo: bool,
    /// Bound of each wait of the demo, in seconds.
    #[arg(long, default_value_t = 300)]
    pub demo_timeout_secs: u64,
    /// How long each process has between SIGTERM and SIGKILL, in seconds.
    #[arg(long, default_value_t = 15)]
    pub stop_timeout_secs: u64,
    // Connection strings may carry credentials: `--help` must not print their values.
    /// Kafka bootstrap servers.
    #[arg(long, env = "LW_KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: String,
    /// MongoDB connection string (its path names the database).
    #[arg(long, env = "LW_MONGO_URL", hide_env_values = true)]
    pub mongo_url: String,
    /// Redis connection string.
    #[arg(long, env = "LW_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
}

/// Where `dev` keeps its state, absolute.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
    pub logs: PathBuf,
    pub workers: PathBuf,
    pub uploads: PathBuf,
    pub jwt_secret: PathBuf,
}

impl StateDir {
    /// Creates the directories, a `.gitignore` that ignores them all, and the JWT
    /// secret if there is none yet (kept across runs: tokens stay valid).
    pub fn prepare(root: &Path) -> anyhow::Result<Self> {
        let root = std::path::absolute(root).context("the state directory")?;
        let state = Self {
            logs: root.join("logs"),
            workers: root.join("workers"),
            uploads: root.join("uploads"),
            jwt_secret: root.join("jwt-secret"),
            root,
        };
        for dir in [&state.logs, &state.workers, &state.uploads] {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let ignore = state.root.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "# Written by dev: nothing here belongs in Git.\n*\n")?;
        }
        if !state.jwt_secret.exists() {
            let secret =
                format!("{}{}\n", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&state.jwt_secret)
                .and_then(|mut file| file.write_all(secret.as_bytes()))
                .with_context(|| format!("cannot write {}", state.jwt_secret.display()))?;
        }
        Ok(state)
    }
}

/// The binaries `dev` runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub operator: PathBuf,
    pub worker: PathBuf,
}

impl Binaries {
    /// The two binaries in `dir` (default: the directory of the running executable).
    pub fn find(dir: Option<&Path>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(dir) => std::path::absolute(dir)?,
            None => std::env::current_exe()?
                .parent()
                .context("the directory of the dev binary")?
                .to_path_buf(),
        };
        let found = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                bail!(
                    "{} is missing: build it with `cargo build -p licenseware-operator \
                     -p licenseware-worker --bin licenseware-operator --bin licenseware-worker`",
                    path.display()
                )
            }
        };
        Ok(Self { operator: found("licenseware-operator")?, worker: found("licenseware-worker")? })
    }
}

/// The stack's addresses, as the processes read them.
pub fn stack_env(args: &DevArgs) -> Vec<(String, String)> {
    vec![
        ("LW_KAFKA_BROKERS".to_owned(), args.kafka_brokers.clone()),
        ("LW_MONGO_URL".to_owned(), args.mongo_url.clone()),
        ("LW_REDIS_URL".to_owned(), args.redis_url.clone()),
    ]
}

fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// The operator, as `make dev` ran it before: text logs, no leader election; here
/// watching the dev namespace only.
pub fn operator_process(args: &DevArgs, bins: &Binaries, state: &StateDir) -> ProcessSpec {
    let probe = args.operator_probe_addr.to_string();
    ProcessSpec {
        name: "operator".to_owned(),
        program: bins.operator.clone(),
        args: os_args(&[
            "run",
            "--log-format",
            "text",
            "--leader-elect",
            "false",
            "--namespaces",
            &args.namespace,
            "--topic-prefix",
            &args.topic_prefix,
            "--probe-addr",
            &probe,
        ]),
        env: stack_env(args),
        log: state.logs.join("operator.log"),
    }
}

/// The API, following the operator's registry topic.
pub fn api_process(args: &DevArgs, bins: &Binaries, state: &StateDir) -> ProcessSpec {
    let mut command = os_args(&["serve", "--listen", &args.listen.to_string()]);
    command.extend([
        "--upload-root".into(),
        state.uploads.clone().into(),
        "--jwt-secret-file".into(),
        state.jwt_secret.clone().into(),
    ]);
    command.extend(os_args(&["--log-format", "text", "--topic-prefix", &args.topic_prefix]));
    ProcessSpec {
        name: "api".to_owned(),
        program: bins.worker.clone(),
        args: command,
        env: stack_env(args),
        log: state.logs.join("api.log"),
    }
}

/// Creates the topics that are missing (one partition; the stack's broker creates
/// none by itself): the notification topics a cluster's platform would provide.
pub async fn ensure_topics(brokers: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|topic| NewTopic::new(topic, 1, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await.context("Kafka")? {
        match result {
            Ok(topic) => println!("[dev] created topic {topic}"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Fails when `address` is taken (another `make dev`, say): better now than a process
/// that dies at every restart.
fn check_free(address: SocketAddr, what: &str) -> anyhow::Result<()> {
    TcpListener::bind(address).map(drop).with_context(|| {
        format!(
            "{address} ({what}) is not free: is another `make dev` running? Pick another address."
        )
    })
}

/// Completes at the first SIGINT (Ctrl-C), SIGTERM or SIGHUP.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ];
    let mut waits = Vec::new();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(mut stream) => waits.push(Box::pin(async move {
                stream.recv().await;
                name
            })),
            Err(error) => println!("[dev] cannot handle {name}: {error}"),
        }
    }
    if waits.is_empty() {
        return std::future::pending().await;
    }
    let (name, _, _) = futures::future::select_all(waits).await;
    println!("\n[dev] {name}: stopping everything");
}

/// Runs everything until `shutdown` completes, then stops it all.
pub async fn run(
    args: DevArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let state = StateDir::prepare(&args.state_dir)?;
    let bins = Binaries::find(args.bin_dir.as_deref())?;
    check_free(args.listen, "the API")?;
    check_free(args.operator_probe_addr, "the operator's probes")?;
    let demo = if args.no_demo {
        None
    } else {
        let manifest = fs::read_to_string(&args.sample_uploader)
            .with_context(|| format!("cannot read {}", args.sample_uploader.display()))?;
        let file = std::path::absolute(&args.sample_file)?;
        if !file.is_file() {
            bail!("the sample file {} is missing", file.display());
        }
        Some(DemoSettings {
            api: format!("http://{}", args.listen),
            worker_bin: bins.worker.clone(),
            secret_file: state.jwt_secret.clone(),
            tenant: args.tenant.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            uploader: SampleUploader::from_manifest(&manifest)?,
            file,
            timeout: Duration::from_secs(args.demo_timeout_secs),
        })
    };
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client: is KUBECONFIG set (set -a; . e2e/.stack/env; set +a)?")?;
    ensure_topics(&args.kafka_brokers, &[&args.app_events_topic, &args.log_events_topic]).await?;
    let policy = Policy {
        stop_timeout: Duration::from_secs(args.stop_timeout_secs),
        pdeathsig: supervisor::pdeathsig_available(),
        ..Policy::default()
    };
    println!(
        "[dev] namespace {}, topic prefix {:?}, state and logs in {}",
        args.namespace,
        args.topic_prefix,
        state.root.display()
    );
    let operator = Supervised::start(operator_process(&args, &bins, &state), policy);
    let api = Supervised::start(api_process(&args, &bins, &state), policy);
    let (stop_workers, workers_stopped) = watch::channel(false);
    let context = WorkerContext {
        worker_bin: bins.worker.clone(),
        config_dir: state.workers.clone(),
        log_dir: state.logs.clone(),
        upload_root: state.uploads.clone(),
        env: stack_env(&args),
        app_events_topic: args.app_events_topic.clone(),
        log_events_topic: args.log_events_topic.clone(),
    };
    let namespace = args.namespace.clone();
    let workers = tokio::spawn(async move {
        supervisor::follow_workers(client, &namespace, context, policy, workers_stopped).await;
    });
    let logs = state.logs.display().to_string();
    let demo = demo.map(|settings| {
        tokio::spawn(async move {
            match demo::run(settings).await {
                Ok(outcome) => println!("{}", demo::summary(&outcome)),
                Err(error) => println!(
                    "[dev] the demo failed: {error:#}\n[dev] the processes keep running (logs in \
                     {logs}); Ctrl-C stops them."
                ),
            }
        })
    });
    shutdown.await;
    if let Some(demo) = demo {
        demo.abort();
    }
    let _ = stop_workers.send(true);
    let (workers, (), ()) = tokio::join!(workers, operator.stop(), api.stop());
    if let Err(error) = workers {
        println!("[dev] the workers' supervisor failed: {error}");
    }
    println!("[dev] everything stopped");
    Ok(())
}
