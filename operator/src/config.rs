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
}

impl Config {
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
        ])
        .expect("valid command line");
        let Command::Run(config) = cli.command else { panic!("expected run") };
        assert_eq!(config.watched_namespaces(), ["apps", "tools"]);
        assert_eq!(config.topic_prefix, "prod.");
        assert_eq!(config.resync_interval_secs, 30);
    }
}
