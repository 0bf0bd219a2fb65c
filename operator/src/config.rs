//! Command line and environment configuration of the operator binary.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `licenseware-operator`: reconciles Licenseware custom resources.
#[derive(Debug, Parser)]
#[command(name = "licenseware-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `Run` is much larger than `Crdgen`, but the command is parsed once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator until SIGTERM or Ctrl-C.
    Run(Config),
    /// Print the CustomResourceDefinitions of every kind as one YAML stream, or
    /// write one file per kind (what `crds/*.yaml` holds).
    Crdgen {
        /// Directory to write `<plural>.licenseware.io.yaml` files into, instead of stdout.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Everything `run` needs. Every flag has an environment equivalent, named as
/// `e2e/stack/up` writes them, so `set -a; . e2e/.stack/env` is enough locally.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Kafka bootstrap servers, comma separated.
    #[arg(long, env = "LW_KAFKA_BROKERS")]
    pub kafka_brokers: String,

    /// MongoDB connection string of the registry database.
    #[arg(long, env = "LW_MONGO_URL")]
    pub mongo_url: String,

    /// Redis URL.
    #[arg(long, env = "LW_REDIS_URL")]
    pub redis_url: String,

    /// Address of the `/healthz` and `/readyz` endpoints. In a pod set it to
    /// `0.0.0.0:8080` so the kubelet can reach it.
    #[arg(long, env = "LW_PROBE_ADDR", default_value = "127.0.0.1:8080")]
    pub probe_addr: SocketAddr,

    /// Seconds between two checks of the dependencies behind `/readyz`.
    #[arg(long, env = "LW_READINESS_INTERVAL", default_value_t = 10)]
    pub readiness_interval_secs: u64,

    /// Log line format.
    #[arg(long, env = "LW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Namespaces to watch, comma separated. Empty: every namespace.
    #[arg(long, env = "LW_WATCH_NAMESPACES", value_delimiter = ',', default_value = "")]
    pub namespaces: Vec<String>,

    /// Prepended to the name of every Kafka topic the operator manages, e.g. `prod.`.
    #[arg(long, env = "LW_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Seconds between two reconciles of an unchanged resource; each one reverts drift
    /// made outside the operator (e.g. a topic config changed with the Kafka CLI).
    #[arg(long, env = "LW_RESYNC_INTERVAL", default_value_t = 120)]
    pub resync_interval_secs: u64,

    /// MongoDB database of the registry (collection `Registry`). Unset: the database in
    /// the path of the MongoDB URL, else `licenseware`.
    #[arg(long, env = "LW_REGISTRY_DATABASE")]
    pub registry_database: Option<String>,

    /// The uploaders' worker Deployments and their lag scaler.
    #[command(flatten)]
    pub workers: WorkerConfig,

    /// Leader election between replicas.
    #[command(flatten)]
    pub leader: LeaderConfig,
}

/// Leader election on a `coordination.k8s.io/v1` Lease: only the holder runs the
/// controllers. [`Default`] gives the same values as the flags' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LeaderConfig {
    /// Run the controllers only while holding the Lease. Without it every replica
    /// reconciles, so run one replica only.
    #[arg(
        long = "leader-elect",
        env = "LW_LEADER_ELECT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub elect: bool,

    /// Name of the Lease.
    #[arg(long = "lease-name", env = "LW_LEASE_NAME", default_value = "licenseware-operator")]
    pub lease_name: String,

    /// Namespace of the Lease. Unset: the pod's own namespace (from its service
    /// account), else `default`.
    #[arg(long = "lease-namespace", env = "LW_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self { elect: true, lease_name: "licenseware-operator".to_owned(), lease_namespace: None }
    }
}

impl LeaderConfig {
    /// No election: the controllers start at once (tests, single-replica setups).
    pub fn disabled() -> Self {
        Self { elect: false, ..Self::default() }
    }

    /// `--lease-namespace`, else the namespace of the pod's service account, else
    /// `default`.
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .filter(|namespace| !namespace.trim().is_empty())
            .or_else(|| {
                std::fs::read_to_string(IN_CLUSTER_NAMESPACE_FILE)
                    .ok()
                    .map(|namespace| namespace.trim().to_owned())
                    .filter(|namespace| !namespace.is_empty())
            })
            .unwrap_or_else(|| "default".to_owned())
    }
}

/// Where Kubernetes mounts the namespace of a pod's service account.
const IN_CLUSTER_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The default worker image: the one released with this operator.
pub const DEFAULT_WORKER_IMAGE: &str =
    concat!("ghcr.io/licenseware/licenseware-worker:", env!("CARGO_PKG_VERSION"));

/// How the operator runs and scales the uploaders' workers. [`Default`] gives the same
/// values as the flags' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WorkerConfig {
    /// Worker image of the uploaders whose `spec.worker.image` is empty.
    #[arg(long, env = "LW_WORKER_IMAGE", default_value = DEFAULT_WORKER_IMAGE)]
    pub worker_image: String,

    /// PersistentVolumeClaim shared by the API and the workers, mounted at `/uploads` in
    /// every worker pod.
    #[arg(long, env = "LW_UPLOAD_CLAIM", default_value = "licenseware-uploads")]
    pub upload_claim: String,

    /// Secret (in the uploader's namespace) whose keys LW_KAFKA_BROKERS, LW_MONGO_URL and
    /// LW_REDIS_URL the workers get as environment. Unset: the workers get the operator's
    /// own addresses as plain values.
    #[arg(long, env = "LW_WORKER_SECRET")]
    pub worker_secret: Option<String>,

    /// Seconds between two readings of an uploader's consumer lag by the lag scaler.
    #[arg(long, env = "LW_POLL_INTERVAL", default_value_t = 10)]
    pub poll_interval_secs: u64,

    /// Seconds the lag scaler looks back before lowering replicas: it keeps the highest
    /// replica count asked for in that window (like the HPA's default of 300).
    #[arg(long, env = "LW_SCALE_DOWN_STABILIZATION", default_value_t = 300)]
    pub scale_down_stabilization_secs: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_image: DEFAULT_WORKER_IMAGE.to_owned(),
            upload_claim: "licenseware-uploads".to_owned(),
            worker_secret: None,
            poll_interval_secs: 10,
            scale_down_stabilization_secs: 300,
        }
    }
}

impl Config {
    /// The database of the registry: `--registry-database`, else the one in the MongoDB
    /// URL's path, else `licenseware`.
    pub fn registry_database(&self) -> String {
        self.registry_database
            .clone()
            .filter(|name| !name.trim().is_empty())
            .or_else(|| crate::registry::database_in_url(&self.mongo_url))
            .unwrap_or_else(|| crate::registry::DEFAULT_DATABASE.to_owned())
    }

    /// The namespaces to watch, without blanks; empty means every namespace.
    pub fn watched_namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .namespaces
            .iter()
            .map(|namespace| namespace.trim().to_owned())
            .filter(|namespace| !namespace.is_empty())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reads_flags() {
        let cli = Cli::try_parse_from([
            "licenseware-operator",
            "run",
            "--kafka-brokers",
            "127.0.0.1:9092",
            "--mongo-url",
            "mongodb://127.0.0.1:27017/",
            "--redis-url",
            "redis://127.0.0.1:6379/",
            "--log-format",
            "text",
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        assert_eq!(config.kafka_brokers, "127.0.0.1:9092");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.probe_addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.readiness_interval_secs, 10);
        assert!(config.watched_namespaces().is_empty());
        assert_eq!(config.topic_prefix, "");
        assert_eq!(config.resync_interval_secs, 120);
        assert_eq!(config.registry_database, None);
        assert_eq!(config.registry_database(), "licenseware");
        assert_eq!(config.workers, WorkerConfig::default());
        assert!(config.workers.worker_image.ends_with(env!("CARGO_PKG_VERSION")));
        assert_eq!(config.leader, LeaderConfig::default());
        assert!(config.leader.elect);
    }

    #[test]
    fn leader_election_flags() {
        let cli = Cli::try_parse_from([
            "licenseware-operator",
            "run",
            "--kafka-brokers=k:9092",
            "--mongo-url=mongodb://m/",
            "--redis-url=redis://r/",
            "--leader-elect=no",
            "--lease-name=ops",
            "--lease-namespace=tools",
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        assert_eq!(
            config.leader,
            LeaderConfig {
                elect: false,
                lease_name: "ops".into(),
                lease_namespace: Some("tools".into()),
            }
        );
        assert_eq!(config.leader.lease_namespace(), "tools");
    }

    #[test]
    fn namespaces_are_a_comma_list() {
        let cli = Cli::try_parse_from([
            "licenseware-operator",
            "run",
            "--kafka-brokers=k:9092",
            "--mongo-url=mongodb://m/",
            "--redis-url=redis://r/",
            "--namespaces",
            "apps, tools,apps",
            "--topic-prefix",
            "prod.",
            "--resync-interval-secs",
            "30",
            "--worker-image=example/worker:1",
            "--upload-claim=files",
            "--worker-secret=worker-env",
            "--poll-interval-secs=2",
            "--scale-down-stabilization-secs=60",
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        assert_eq!(config.watched_namespaces(), ["apps", "tools"]);
        assert_eq!(config.topic_prefix, "prod.");
        assert_eq!(config.resync_interval_secs, 30);
        assert_eq!(
            config.workers,
            WorkerConfig {
                worker_image: "example/worker:1".into(),
                upload_claim: "files".into(),
                worker_secret: Some("worker-env".into()),
                poll_interval_secs: 2,
                scale_down_stabilization_secs: 60,
            }
        );
    }

    #[test]
    fn registry_database_defaults_to_the_url_path() {
        let parse = |args: &[&str]| {
            let mut all = vec![
                "licenseware-operator",
                "run",
                "--kafka-brokers=k:9092",
                "--redis-url=redis://r/",
            ];
            all.extend_from_slice(args);
            let Command::Run(config) = Cli::try_parse_from(all).expect("valid").command else {
                panic!("expected run")
            };
            config
        };
        assert_eq!(parse(&["--mongo-url=mongodb://m/apps?w=1"]).registry_database(), "apps");
        let config = parse(&["--mongo-url=mongodb://m/apps", "--registry-database=reg"]);
        assert_eq!(config.registry_database(), "reg");
    }
}
