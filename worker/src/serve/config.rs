//! `licenseware-worker serve`'s settings: flags with environment twins, like the other
//! commands (the chart sets the LW_* variables).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;
use licenseware_crds::kafka_security::{KafkaSecurity, KafkaSecurityArgs, KafkaSecurityError};

use super::auth::{AuthArgs, AuthSettings, read_secret_file};
use super::public_links::store::SecretBytes;
use crate::consume::{DEFAULT_DATABASE, LogFormat, database_in_url};
use crate::sandbox::{SandboxArgs, SandboxLimits};

/// The registry topic, before the operator's topic prefix.
pub const REGISTRY_TOPIC: &str = "licenseware.registry";

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the API listens on.
    #[arg(long, env = "LW_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    // Connection strings carry credentials: `--help` must not print their values.
    /// Kafka bootstrap servers, comma separated.
    #[arg(long, env = "LW_KAFKA_BROKERS", hide_env_values = true)]
    pub kafka_brokers: String,
    /// TLS and SASL of the Kafka clients.
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
    /// MongoDB connection string; its path names the database (default `licenseware`).
    #[arg(long, env = "LW_MONGO_URL", hide_env_values = true)]
    pub mongo_url: String,
    /// Redis connection string: statuses, upload tickets.
    #[arg(long, env = "LW_REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// The operator's --topic-prefix: the registry is `{prefix}licenseware.registry`.
    #[arg(long, env = "LW_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Directory uploads are stored under, as `{root}/{tenant}/{event}/{file}`; the
    /// workers must see the same directory.
    #[arg(long, env = "LW_UPLOAD_ROOT", default_value = "/uploads")]
    pub upload_root: PathBuf,
    /// How long one upload request may take, body included, in seconds: a client that
    /// trickles bytes is cut off here, whatever its pace.
    #[arg(long, env = "LW_UPLOAD_DEADLINE_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_deadline_seconds: u64,
    /// How long the event id returned by `/validation` stays usable as an upload
    /// ticket, in seconds.
    #[arg(long, env = "LW_UPLOAD_TICKET_TTL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_ticket_ttl_seconds: u64,
    /// Origins allowed by CORS, comma separated; `*` allows any (the SDK's default).
    #[arg(long, env = "LW_CORS_ORIGINS", default_value = "*", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Base of the links in the API's answers (none yet) and of the frontend.
    #[arg(long, env = "LW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// HS256 secret of public report links (a file). Without it, a random secret is
    /// made once and kept in MongoDB (`ApiSecrets`) so that every replica shares it.
    #[arg(long, env = "LW_PUBLIC_LINK_SECRET_FILE")]
    pub public_link_secret_file: Option<PathBuf>,
    /// Rows a snapshot keeps per component; a component with more is kept truncated
    /// and its snapshot says so.
    #[arg(long, env = "LW_SNAPSHOT_ROW_CAP", default_value_t = super::snapshots::store::ROW_CAP,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub snapshot_row_cap: u64,
    /// MiB of component data each API process keeps in memory in front of Redis
    /// (answered without a round trip, invalidated by Redis itself); 0 turns it off.
    #[arg(long, env = "LW_COMPONENT_CACHE_NEAR_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(0..=4096))]
    pub component_cache_near_mib: u64,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// The limits of each uploaded file's contained validation.
    #[command(flatten)]
    pub limits: SandboxArgs,
}

/// The settings, checked.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub kafka_brokers: String,
    pub kafka_security: KafkaSecurity,
    pub mongo_url: String,
    pub mongo_database: String,
    pub redis_url: String,
    pub registry_topic: String,
    /// Canonical, created when missing.
    pub upload_root: PathBuf,
    pub upload_deadline: Duration,
    pub ticket_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub auth: AuthSettings,
    pub limits: SandboxLimits,
    /// From `--public-link-secret-file`.
    pub public_link_secret: Option<SecretBytes>,
    pub snapshot_row_cap: u64,
    /// From `--component-cache-near-mib`.
    pub near_cache_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("upload root {path}: {source}")]
    UploadRoot { path: PathBuf, source: std::io::Error },
    #[error("public link secret: {0}")]
    PublicLinkSecret(#[from] super::auth::AuthSetupError),
    #[error("Kafka security: {0}")]
    KafkaSecurity(#[from] KafkaSecurityError),
}

impl SettingsError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UploadRoot { .. } => "UploadRootUnusable",
            Self::PublicLinkSecret(_) => "PublicLinkSecretUnusable",
            Self::KafkaSecurity(error) => error.reason(),
        }
    }
}

impl ServeSettings {
    /// A librdkafka configuration for the brokers, security applied.
    pub fn kafka_config(&self) -> rdkafka::ClientConfig {
        self.kafka_security.client_config(&self.kafka_brokers)
    }

    pub fn from_args(args: ServeArgs) -> Result<Self, SettingsError> {
        let root = &args.upload_root;
        let upload_root = std::fs::create_dir_all(root)
            .and_then(|()| root.canonicalize())
            .map_err(|source| SettingsError::UploadRoot { path: root.clone(), source })?;
        let public_link_secret = match &args.public_link_secret_file {
            Some(path) => Some(SecretBytes(read_secret_file(path)?)),
            None => None,
        };
        Ok(Self {
            listen: args.listen,
            mongo_database: database_in_url(&args.mongo_url)
                .unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
            kafka_security: args.kafka_security.load()?,
            kafka_brokers: args.kafka_brokers,
            mongo_url: args.mongo_url,
            redis_url: args.redis_url,
            registry_topic: format!("{}{REGISTRY_TOPIC}", args.topic_prefix),
            upload_root,
            upload_deadline: Duration::from_secs(args.upload_deadline_seconds),
            ticket_ttl: Duration::from_secs(args.upload_ticket_ttl_seconds),
            cors_origins: args.cors_origins,
            auth: args.auth.into(),
            limits: args.limits.into(),
            public_link_secret,
            snapshot_row_cap: args.snapshot_row_cap,
            near_cache_bytes: args.component_cache_near_mib << 20,
        })
    }
}
