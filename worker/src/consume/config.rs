//! The consumer's settings: flags (each with an environment variable, which is how the
//! operator's Deployment sets them) plus the operator-written `worker.yaml`.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};
use licenseware_crds::{
    WorkerConfigFile,
    kafka_security::{KafkaSecurity, KafkaSecurityArgs, KafkaSecurityError},
};

use super::{backoff::Backoff, probes::ProbeConfig};
use crate::manifest::{ManifestError, UploaderManifest, load_worker_config};

/// MongoDB database when the URL names none (the operator's registry rule).
pub const DEFAULT_DATABASE: &str = "licenseware";

/// Flags of `licenseware-worker consume`, and of any custom worker built on the same
/// runtime (`ConsumeConfig::parse()`).
#[derive(Debug, Clone, Parser)]
#[command(about = "Consume one uploader's processing events")]
pub struct ConsumeConfig {
    /// The worker.yaml the operator mounts from the Uploader's ConfigMap.
    #[arg(long, env = "LW_WORKER_CONFIG", default_value = "/etc/licenseware/worker.yaml")]
    pub config: PathBuf,
    // Connection strings carry credentials: `--help` must not print their values
    // (hide_env_values), as it would from a pod's environment.
    /// Kafka bootstrap servers, comma separated.
    #[arg(long, env = "LW_KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: String,
    /// TLS and SASL of the Kafka clients.
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
    /// MongoDB connection string; its path names the database (default `licenseware`).
    #[arg(long, env = "LW_MONGO_URL", hide_env_values = true)]
    pub mongo_url: String,
    /// Redis connection string, for the uploader status.
    #[arg(long, env = "LW_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// Directory the uploaded files are under; overrides worker.yaml's uploadRoot.
    #[arg(long, env = "LW_UPLOAD_ROOT")]
    pub upload_root: Option<PathBuf>,
    /// Topic of the SDK's app notifications (UploaderStatusUpdated).
    #[arg(long, env = "LW_APP_EVENTS_TOPIC", default_value = "AppEvents")]
    pub app_events_topic: String,
    /// Topic of the processing log events (DataProcessingLog).
    #[arg(long, env = "LW_LOG_EVENTS_TOPIC", default_value = "LogEvents")]
    pub log_events_topic: String,
    /// Base of the links in notifications (`{url}/uploaders?app_id=...`).
    #[arg(long, env = "LW_FRONTEND_URL", default_value = "")]
    pub frontend_url: String,
    /// Log line format.
    #[arg(long, env = "LW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Wait after the first failed attempt of an event, in milliseconds; it doubles
    /// with each attempt.
    #[arg(long, env = "LW_RETRY_BACKOFF_BASE_MS", default_value_t = 1000)]
    pub retry_backoff_base_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    #[arg(long, env = "LW_RETRY_BACKOFF_MAX_MS", default_value_t = 60_000)]
    pub retry_backoff_max_ms: u64,
    /// At start, file scratch directories (`unpack-*`, `sandbox-*` in the temp directory)
    /// unchanged for this many seconds are removed: a killed worker's leftovers.
    #[arg(long, env = "LW_SCRATCH_LEFTOVER_AGE_SECS", default_value_t = 900)]
    pub scratch_leftover_age_secs: u64,
    /// `/healthz`, `/readyz` and `/metrics`.
    #[command(flatten)]
    pub probes: ProbeConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// Why the consumer cannot start with its settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    WorkerConfig(#[from] ManifestError),
    #[error("upload root {path}: {source}")]
    UploadRoot { path: PathBuf, source: std::io::Error },
    #[error("maxAttempts is {0}; it must be at least 1")]
    MaxAttempts(i32),
    #[error("the retry backoff base ({base} ms) must be positive and at most its max ({max} ms)")]
    Backoff { base: u64, max: u64 },
    #[error("Kafka security: {0}")]
    KafkaSecurity(#[from] KafkaSecurityError),
}

impl ConfigError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WorkerConfig(error) => error.reason(),
            Self::UploadRoot { .. } => "UploadRootUnusable",
            Self::MaxAttempts(_) => "InvalidMaxAttempts",
            Self::Backoff { .. } => "InvalidBackoff",
            Self::KafkaSecurity(error) => error.reason(),
        }
    }
}

/// Everything the runtime needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub worker: WorkerConfigFile,
    pub manifest: UploaderManifest,
    /// Canonical: file paths are compared against it.
    pub upload_root: PathBuf,
    pub kafka_brokers: String,
    pub kafka_security: KafkaSecurity,
    pub mongo_url: String,
    pub mongo_database: String,
    pub redis_url: String,
    pub app_events_topic: String,
    pub log_events_topic: String,
    pub frontend_url: String,
    pub backoff: Backoff,
    pub max_attempts: u32,
    /// See [`ConsumeConfig::scratch_leftover_age_secs`].
    pub scratch_leftover_age: Duration,
    pub probes: ProbeConfig,
}

impl Settings {
    /// A librdkafka configuration for the brokers, security applied.
    pub fn kafka_config(&self) -> rdkafka::ClientConfig {
        self.kafka_security.client_config(&self.kafka_brokers)
    }

    /// Reads worker.yaml and checks the settings.
    pub fn load(config: &ConsumeConfig) -> Result<Self, ConfigError> {
        Self::with_worker_config(config, load_worker_config(&config.config)?)
    }

    pub fn with_worker_config(
        config: &ConsumeConfig,
        worker: WorkerConfigFile,
    ) -> Result<Self, ConfigError> {
        let root = config.upload_root.clone().unwrap_or_else(|| worker.upload_root.clone().into());
        let upload_root = root
            .canonicalize()
            .map_err(|source| ConfigError::UploadRoot { path: root.clone(), source })?;
        let max_attempts = u32::try_from(worker.max_attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(ConfigError::MaxAttempts(worker.max_attempts))?;
        let (base, max) = (config.retry_backoff_base_ms, config.retry_backoff_max_ms);
        if base == 0 || base > max {
            return Err(ConfigError::Backoff { base, max });
        }
        Ok(Self {
            manifest: UploaderManifest::from_config(&worker),
            worker,
            upload_root,
            kafka_brokers: config.kafka_brokers.clone(),
            kafka_security: config.kafka_security.load()?,
            mongo_url: config.mongo_url.clone(),
            mongo_database: database_in_url(&config.mongo_url)
                .unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            redis_url: config.redis_url.clone(),
            app_events_topic: config.app_events_topic.clone(),
            log_events_topic: config.log_events_topic.clone(),
            frontend_url: config.frontend_url.trim_end_matches('/').to_owned(),
            backoff: Backoff { base: Duration::from_millis(base), max: Duration::from_millis(max) },
            max_attempts,
            scratch_leftover_age: Duration::from_secs(config.scratch_leftover_age_secs),
            probes: config.probes.clone(),
        })
    }

    /// Collections an event may have written to: compensation and indexes cover them.
    pub fn event_collections(&self, extra: Vec<String>) -> Vec<String> {
        let spec = &self.manifest.spec;
        let mut collections: Vec<String> = spec
            .used_collections
            .iter()
            .chain(spec.processing.tables.iter().map(|table| &table.collection))
            .cloned()
            .chain(extra)
            .collect();
        collections.sort();
        collections.dedup();
        collections
    }
}

/// The database named in the path of a MongoDB connection string, if any (the same
/// rule as the operator's registry).
pub fn database_in_url(url: &str) -> Option<String> {
    // The driver's own parser: it knows the userinfo, host lists, sockets and
    // percent-encoding that a split on '/' gets wrong.
    mongodb::options::ConnectionString::parse(url).ok()?.default_database
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_yaml(max_attempts: i32) -> WorkerConfigFile {
        serde_yaml::from_str(&format!(
            "appId: ifmp-service\nuploaderId: rv_tools\nuploader: demo/rv-tools\n\
             eventsTopic: ifmp-service.rv_tools.events\ndlqTopic: ifmp-service.rv_tools.dlq\n\
             consumerGroup: ifmp-service.rv_tools.worker\nmaxAttempts: {max_attempts}\n\
             uploadRoot: /nonexistent\n\
             spec: {{appId: ifmp-service, name: RVTools, acceptedFileTypes: [.xlsx],\n\
                     usedCollections: [Data, Extra],\n\
                     processing: {{tables: [{{collection: Tables, columns: [{{from: A, to: a}}]}}]}}}}\n"
        ))
        .unwrap()
    }

    fn flags(extra: &[&str]) -> ConsumeConfig {
        let mut args = vec![
            "consume",
            "--kafka-brokers=k:9092",
            "--mongo-url=mongodb://m:27017/apps?w=1",
            "--redis-url=redis://r/",
        ];
        args.extend_from_slice(extra);
        ConsumeConfig::try_parse_from(args).unwrap()
    }

    #[test]
    fn flags_and_worker_yaml_make_the_settings() {
        let root = std::env::temp_dir();
        let root_flag = format!("--upload-root={}", root.display());
        let config = flags(&[&root_flag, "--frontend-url=https://app/"]);
        assert_eq!(config.config, PathBuf::from("/etc/licenseware/worker.yaml"));
        assert_eq!(config.app_events_topic, "AppEvents");
        let settings = Settings::with_worker_config(&config, worker_yaml(5)).unwrap();
        assert_eq!(settings.mongo_database, "apps");
        assert_eq!(settings.upload_root, root.canonicalize().unwrap());
        assert_eq!(settings.max_attempts, 5);
        assert_eq!(settings.frontend_url, "https://app");
        assert_eq!(settings.manifest.uploader_id, "rv_tools");
        assert_eq!(settings.backoff.base, Duration::from_secs(1));
        assert_eq!(
            settings.event_collections(vec!["Data".into(), "Mine".into()]),
            ["Data", "Extra", "Mine", "Tables"]
        );
    }

    #[test]
    fn unusable_settings_are_refused_with_a_reason() {
        let root_flag = format!("--upload-root={}", std::env::temp_dir().display());
        let reason = |config: &ConsumeConfig, attempts| {
            Settings::with_worker_config(config, worker_yaml(attempts)).unwrap_err().reason()
        };
        assert_eq!(reason(&flags(&[]), 5), "UploadRootUnusable", "worker.yaml's root is missing");
        assert_eq!(reason(&flags(&[&root_flag]), 0), "InvalidMaxAttempts");
        let backoff =
            flags(&[&root_flag, "--retry-backoff-base-ms=10", "--retry-backoff-max-ms=5"]);
        assert_eq!(reason(&backoff, 5), "InvalidBackoff");
        let missing = ConsumeConfig { config: "/nonexistent/worker.yaml".into(), ..flags(&[]) };
        assert_eq!(Settings::load(&missing).unwrap_err().reason(), "ManifestUnreadable");
    }

    /// Arguments whose values may hold credentials, by environment variable.
    const SECRET_ENVS: [&str; 5] = [
        "LW_KAFKA_BROKERS",
        "LW_MONGO_URL",
        "LW_REDIS_URL",
        "LW_KAFKA_SASL_USERNAME",
        "LW_KAFKA_PROPERTIES",
    ];

    #[test]
    fn help_never_prints_the_values_of_connection_strings() {
        use clap::CommandFactory;
        let command = ConsumeConfig::command();
        for env in SECRET_ENVS {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_env().is_some_and(|e| e == env))
                .unwrap_or_else(|| panic!("an argument reads {env}"));
            assert!(arg.is_hide_env_values_set(), "{env} is printed by --help");
        }
        // Rendered: the arguments pointed at a variable that is set (the tests cannot
        // set one: `set_var` is unsafe), its value must not show.
        let set = std::env::vars().find(|(_, value)| value.len() > 8).expect("a variable");
        let name: &'static str = Box::leak(set.0.clone().into_boxed_str());
        let mut command = ConsumeConfig::command();
        for id in ["kafka_brokers", "mongo_url", "redis_url"] {
            command = command.mut_arg(id, |arg| arg.env(name));
        }
        let help = command.render_long_help().to_string();
        assert!(help.contains(&format!("[env: {}]", set.0)), "{help}");
        assert!(!help.contains(&set.1), "{help}");
        // The control: an argument without the setting would show it.
        let mut shown = ConsumeConfig::command().mut_arg("frontend_url", |arg| arg.env(name));
        assert!(shown.render_long_help().to_string().contains(&set.1));
    }

    #[test]
    fn the_database_comes_from_the_url_path() {
        assert_eq!(database_in_url("mongodb://h:1/apps"), Some("apps".into()));
        assert_eq!(
            database_in_url("mongodb://u:p@h1,h2/apps?authSource=admin"),
            Some("apps".into())
        );
        assert_eq!(database_in_url("mongodb://h:1/"), None);
        assert_eq!(database_in_url("mongodb://h:1"), None);
        // What the driver connects to: percent-decoded, and nothing from a URL it refuses.
        assert_eq!(database_in_url("mongodb://h:1/lw%2Dapps"), Some("lw-apps".into()));
        assert_eq!(database_in_url("mongodb://u:p/w@h/apps"), None);
    }
}
