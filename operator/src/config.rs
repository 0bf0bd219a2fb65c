//! Command line and environment configuration of the operator binary.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use k8s_openapi::{
    api::core::v1::ResourceRequirements, apimachinery::pkg::api::resource::Quantity,
};

use licenseware_crds::kafka_security::KafkaSecurityArgs;

use crate::controllers::topic::desired::TopicPolicy;

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
    // Connection strings may carry credentials: `--help` names their variables but
    // never prints their values.
    /// Kafka bootstrap servers, comma separated.
    #[arg(long, env = "LW_KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: String,

    /// TLS and SASL of every Kafka client (the operator's and its workers').
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,

    /// MongoDB connection string of the registry database.
    #[arg(long, env = "LW_MONGO_URL", hide_env_values = true)]
    pub mongo_url: String,

    /// Redis URL.
    #[arg(long, env = "LW_REDIS_URL", hide_env_values = true)]
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

    /// Which Kafka topics Topic resources may claim.
    #[command(flatten)]
    pub topics: TopicSafetyConfig,

    /// The uploaders' worker Deployments and their lag scaler.
    #[command(flatten)]
    pub workers: WorkerConfig,

    /// Leader election between replicas.
    #[command(flatten)]
    pub leader: LeaderConfig,
}

/// Which Kafka topics Topic resources may claim, besides the rules that always hold
/// (names starting with `__` and the registry topic are refused, an existing topic
/// is only taken over with `licenseware.io/adopt: "true"`). [`Default`] gives the same
/// values as the flags' defaults.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TopicSafetyConfig {
    /// Kafka topics no Topic may manage, comma separated, each matched with and without
    /// --topic-prefix: the notification topics the workers publish on.
    #[arg(
        long,
        env = "LW_RESERVED_TOPICS",
        value_delimiter = ',',
        default_value = "AppEvents,LogEvents"
    )]
    pub reserved_topics: Vec<String>,

    /// Bind topic names to namespaces: a Topic (an Uploader's too) in namespace `ns` may
    /// only name topics starting with `ns.` (before --topic-prefix), or with the prefix
    /// --topic-namespace-prefixes gives that namespace. Off by default: the SDK names
    /// topics by app (`{appId}.{uploaderId}.events`), not by namespace.
    #[arg(
        long = "topic-namespace-prefix",
        env = "LW_TOPIC_NAMESPACE_PREFIX",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub namespace_prefix: bool,

    /// With --topic-namespace-prefix: `namespace=prefix` pairs, comma separated, for
    /// namespaces whose topics do not start with `namespace.` (e.g.
    /// `billing=ifmp-service.`).
    #[arg(
        long = "topic-namespace-prefixes",
        env = "LW_TOPIC_NAMESPACE_PREFIXES",
        value_delimiter = ','
    )]
    pub namespace_prefixes: Vec<String>,
}

impl Default for TopicSafetyConfig {
    fn default() -> Self {
        Self {
            reserved_topics: vec!["AppEvents".to_owned(), "LogEvents".to_owned()],
            namespace_prefix: false,
            namespace_prefixes: Vec::new(),
        }
    }
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

    /// How long a Lease that is not renewed keeps others from taking it over.
    #[arg(long = "lease-duration-secs", env = "LW_LEASE_DURATION_SECS", default_value_t = 15)]
    pub lease_duration_secs: u64,

    /// The leader gives leadership up (and exits) when it could not renew the Lease for
    /// this long; must be shorter than `--lease-duration-secs`, so that it has stopped
    /// before anyone else may take over.
    #[arg(
        long = "lease-renew-deadline-secs",
        env = "LW_LEASE_RENEW_DEADLINE_SECS",
        default_value_t = 10
    )]
    pub renew_deadline_secs: u64,

    /// How often the leader renews the Lease; shorter than the renew deadline.
    #[arg(long = "lease-renew-every-secs", env = "LW_LEASE_RENEW_EVERY_SECS", default_value_t = 5)]
    pub renew_every_secs: u64,

    /// How often a candidate tries for the Lease, and a leader retries a failed renewal.
    #[arg(long = "lease-retry-every-secs", env = "LW_LEASE_RETRY_EVERY_SECS", default_value_t = 2)]
    pub retry_every_secs: u64,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            elect: true,
            lease_name: "licenseware-operator".to_owned(),
            lease_namespace: None,
            lease_duration_secs: 15,
            renew_deadline_secs: 10,
            renew_every_secs: 5,
            retry_every_secs: 2,
        }
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

    /// Secret (in the uploader's namespace) holding the Kafka files the operator reads
    /// (SASL password, CA, client certificate and key), each under the name of the
    /// operator's file (e.g. `ca.crt` for `/etc/licenseware/kafka/ca.crt`). It is
    /// mounted read-only at /etc/licenseware-kafka in every worker pod. Needed when
    /// any --kafka-*-file is set.
    #[arg(long, env = "LW_KAFKA_FILES_SECRET")]
    pub kafka_files_secret: Option<String>,

    /// Seconds between two readings of an uploader's consumer lag by the lag scaler.
    #[arg(long, env = "LW_POLL_INTERVAL", default_value_t = 10)]
    pub poll_interval_secs: u64,

    /// Seconds the lag scaler looks back before lowering replicas: it keeps the highest
    /// replica count asked for in that window (like the HPA's default of 300).
    #[arg(long, env = "LW_SCALE_DOWN_STABILIZATION", default_value_t = 300)]
    pub scale_down_stabilization_secs: u64,

    /// Registries (or registry/path prefixes) worker images may come from, comma
    /// separated, e.g. `ghcr.io/licenseware,registry.example.com`; `*` allows any.
    /// Empty: the registry and organisation of --worker-image only. An Uploader whose
    /// worker.image is elsewhere is Ready=False, reason ImageNotAllowed.
    #[arg(long, env = "LW_WORKER_IMAGE_REGISTRIES", value_delimiter = ',')]
    pub worker_image_registries: Vec<String>,

    /// Resource requests of the workers whose spec.worker.resources is empty:
    /// `name=quantity` pairs, comma separated.
    #[arg(long, env = "LW_WORKER_REQUESTS", default_value = DEFAULT_WORKER_REQUESTS)]
    pub worker_requests: String,

    /// Resource limits of the workers whose spec.worker.resources is empty.
    #[arg(long, env = "LW_WORKER_LIMITS", default_value = DEFAULT_WORKER_LIMITS)]
    pub worker_limits: String,

    /// Size limit of the worker's `/tmp` (an emptyDir, its only writable place). Empty:
    /// no limit.
    #[arg(long, env = "LW_WORKER_TMP_SIZE_LIMIT", default_value = DEFAULT_WORKER_TMP_SIZE)]
    pub worker_tmp_size_limit: String,
}

/// The workers' default requests: enough for the streaming readers on small files.
pub const DEFAULT_WORKER_REQUESTS: &str = "cpu=100m,memory=256Mi,ephemeral-storage=256Mi";
/// The workers' default limits: a hostile file costs at most this much. Memory holds
/// the worker (~100 MiB) and one file's reader at its default address-space limit
/// (1024 MiB, `LW_FILE_MEMORY_MIB`), so the reader meets its own limit, with a clear
/// message, before the pod's. The ephemeral storage limit covers the sized /tmp plus logs.
pub const DEFAULT_WORKER_LIMITS: &str = "cpu=1,memory=1536Mi,ephemeral-storage=4Gi";
/// The default size limit of the worker's /tmp: above the archive limit (2 GiB
/// unpacked), so an archive meets that limit before the pod is evicted.
pub const DEFAULT_WORKER_TMP_SIZE: &str = "3Gi";

/// `name=quantity` pairs, comma separated, as a resource list.
fn parse_resource_list(
    flag: &str,
    text: &str,
) -> Result<std::collections::BTreeMap<String, Quantity>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, quantity) = pair
                .split_once('=')
                .map(|(n, q)| (n.trim(), q.trim()))
                .filter(|(n, q)| !n.is_empty() && valid_quantity(q))
                .ok_or_else(|| {
                    format!("{flag}: {pair:?} is not name=quantity (e.g. memory=1Gi)")
                })?;
            Ok((name.to_owned(), Quantity(quantity.to_owned())))
        })
        .collect()
}

/// A Kubernetes quantity: a decimal number and an optional suffix (m, k, Ki, M, Mi,
/// G, Gi, T, Ti, P, Pi, E, Ei). The apiserver checks it too; this catches a typo at
/// start-up rather than on every Deployment.
fn valid_quantity(text: &str) -> bool {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &text[digits.len()..];
    const SUFFIXES: [&str; 14] =
        ["", "m", "k", "Ki", "M", "Mi", "G", "Gi", "T", "Ti", "P", "Pi", "E", "Ei"];
    !digits.is_empty()
        && digits.parse::<f64>().is_ok_and(|n| n.is_finite() && n >= 0.0)
        && SUFFIXES.contains(&suffix)
}

impl WorkerConfig {
    /// The default requests and limits, from --worker-requests and --worker-limits.
    pub fn default_resources(&self) -> Result<ResourceRequirements, String> {
        let requests = parse_resource_list("--worker-requests", &self.worker_requests)?;
        let limits = parse_resource_list("--worker-limits", &self.worker_limits)?;
        Ok(ResourceRequirements {
            requests: (!requests.is_empty()).then_some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            ..ResourceRequirements::default()
        })
    }

    /// The size limit of /tmp, from --worker-tmp-size-limit.
    pub fn tmp_size_limit(&self) -> Result<Option<Quantity>, String> {
        let text = self.worker_tmp_size_limit.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if !valid_quantity(text) {
            return Err(format!("--worker-tmp-size-limit: {text:?} is not a quantity"));
        }
        Ok(Some(Quantity(text.to_owned())))
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_image: DEFAULT_WORKER_IMAGE.to_owned(),
            upload_claim: "licenseware-uploads".to_owned(),
            worker_secret: None,
            kafka_files_secret: None,
            poll_interval_secs: 10,
            scale_down_stabilization_secs: 300,
            worker_image_registries: Vec::new(),
            worker_requests: DEFAULT_WORKER_REQUESTS.to_owned(),
            worker_limits: DEFAULT_WORKER_LIMITS.to_owned(),
            worker_tmp_size_limit: DEFAULT_WORKER_TMP_SIZE.to_owned(),
        }
    }
}

impl Config {
    /// The Topic controller's naming rules: the prefix, the reserved names (the
    /// registry topic always among them) and the namespace binding.
    pub fn topic_policy(&self) -> Result<TopicPolicy, String> {
        let mut reserved: Vec<String> = self
            .topics
            .reserved_topics
            .iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        reserved.push(crate::registry::TOPIC.to_owned());
        let namespace_prefixes = self
            .topics
            .namespace_prefixes
            .iter()
            .map(|pair| pair.trim())
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(ns, prefix)| (ns.trim().to_owned(), prefix.trim().to_owned()))
                    .filter(|(ns, prefix)| !ns.is_empty() && !prefix.is_empty())
                    .ok_or_else(|| {
                        format!("--topic-namespace-prefixes: {pair:?} is not namespace=prefix")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TopicPolicy {
            prefix: self.topic_prefix.clone(),
            reserved,
            namespace_prefix: self.topics.namespace_prefix,
            namespace_prefixes,
        })
    }

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
            "--lease-duration-secs=4",
            "--lease-renew-deadline-secs=3",
            "--lease-renew-every-secs=1",
            "--lease-retry-every-secs=1",
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        assert_eq!(
            config.leader,
            LeaderConfig {
                elect: false,
                lease_name: "ops".into(),
                lease_namespace: Some("tools".into()),
                lease_duration_secs: 4,
                renew_deadline_secs: 3,
                renew_every_secs: 1,
                retry_every_secs: 1,
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
                ..WorkerConfig::default()
            }
        );
    }

    #[test]
    fn help_never_shows_connection_strings() {
        use clap::CommandFactory;
        let command = Cli::command();
        let run = command.find_subcommand("run").expect("run");
        for name in ["kafka_brokers", "mongo_url", "redis_url", "sasl_username", "properties"] {
            let arg = run.get_arguments().find(|a| a.get_id() == name).expect(name);
            assert!(arg.is_hide_env_values_set(), "{name} shows its value in --help");
        }
    }

    #[test]
    fn kafka_security_flags_parse_with_any_case() {
        let cli = Cli::try_parse_from([
            "licenseware-operator",
            "run",
            "--kafka-brokers=k:9093",
            "--mongo-url=mongodb://m/",
            "--redis-url=redis://r/",
            "--kafka-security-protocol=sasl_ssl",
            "--kafka-sasl-mechanism=SCRAM-SHA-512",
            "--kafka-sasl-username=lw",
            "--kafka-sasl-password-file=/etc/licenseware/kafka/password",
            "--kafka-property=socket.keepalive.enable=true",
            "--kafka-files-secret=kafka-files",
        ])
        .unwrap();
        let Command::Run(config) = cli.command else { panic!("run") };
        let security = &config.kafka_security;
        assert_eq!(security.protocol, licenseware_crds::kafka_security::SecurityProtocol::SaslSsl);
        assert_eq!(security.properties, ["socket.keepalive.enable=true"]);
        assert_eq!(config.workers.kafka_files_secret.as_deref(), Some("kafka-files"));
    }

    #[test]
    fn safety_flags() {
        let cli = Cli::try_parse_from([
            "licenseware-operator",
            "run",
            "--kafka-brokers=k:9092",
            "--mongo-url=mongodb://m/",
            "--redis-url=redis://r/",
            "--topic-prefix=p.",
            "--reserved-topics=Notify,Logs",
            "--topic-namespace-prefix=true",
            "--topic-namespace-prefixes=billing=ifmp.,ops=ops-",
            "--worker-image-registries=ghcr.io/licenseware,registry.example.com",
            "--worker-limits=memory=2Gi",
            "--worker-tmp-size-limit=",
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        let policy = config.topic_policy().expect("valid");
        assert_eq!(policy.reserved, ["Notify", "Logs", "licenseware.registry"]);
        assert!(policy.namespace_prefix);
        assert_eq!(policy.namespace_prefixes["billing"], "ifmp.");
        assert_eq!(policy.namespace_bound("ops").as_deref(), Some("ops-"));
        assert_eq!(policy.namespace_bound("x").as_deref(), Some("x."));
        assert_eq!(
            config.workers.worker_image_registries,
            ["ghcr.io/licenseware", "registry.example.com"]
        );
        let resources = config.workers.default_resources().expect("valid");
        assert_eq!(resources.limits.expect("limits")["memory"], Quantity("2Gi".into()));
        assert_eq!(resources.requests.expect("requests").len(), 3);
        assert_eq!(config.workers.tmp_size_limit(), Ok(None));
    }

    #[test]
    fn defaults_are_safe_and_typos_are_caught() {
        let workers = WorkerConfig::default();
        let resources = workers.default_resources().expect("valid defaults");
        for key in ["cpu", "memory", "ephemeral-storage"] {
            assert!(resources.limits.as_ref().expect("limits").contains_key(key), "{key}");
        }
        assert_eq!(workers.tmp_size_limit(), Ok(Some(Quantity("3Gi".into()))));
        let typo = WorkerConfig { worker_limits: "memory=1 GB".into(), ..WorkerConfig::default() };
        assert!(typo.default_resources().unwrap_err().contains("--worker-limits"));
        let typo = WorkerConfig { worker_requests: "cpu".into(), ..WorkerConfig::default() };
        assert!(typo.default_resources().is_err());
        assert_eq!(TopicSafetyConfig::default().reserved_topics, ["AppEvents", "LogEvents"]);
        assert!(!TopicSafetyConfig::default().namespace_prefix, "off by default");
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
