//! How every Kafka client of the operator and the workers connects: TLS (a CA
//! bundle, optionally a client certificate for mutual TLS) and SASL (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512), from one set of flags with environment twins.
//!
//! [`KafkaSecurityArgs`] is flattened into each binary's configuration;
//! [`KafkaSecurityArgs::load`] checks the combination and reads the files once at
//! start-up into a [`KafkaSecurity`], whose [`KafkaSecurity::apply_to`] is the one
//! place that sets librdkafka's security properties.

mod checked;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

pub use checked::{KafkaSecurity, KafkaSecurityError, Sasl, Secret, Tls};

/// Where the files of the Kafka connection are mounted in every pod the operator
/// builds, as the Helm chart mounts them for the operator and the API.
pub const KAFKA_FILES_DIR: &str = "/etc/licenseware/kafka";

/// The Kafka connection's security flags. Secrets are never flags or environment
/// values: the SASL password is read from a file, and `--help` prints no values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct KafkaSecurityArgs {
    /// Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(
        long = "kafka-security-protocol",
        env = "LW_KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true,
        default_value_t = SecurityProtocol::Plaintext
    )]
    pub protocol: SecurityProtocol,

    /// SASL mechanism (with SASL_PLAINTEXT or SASL_SSL): PLAIN, SCRAM-SHA-256 or
    /// SCRAM-SHA-512.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "LW_KAFKA_SASL_MECHANISM",
        value_enum,
        ignore_case = true
    )]
    pub sasl_mechanism: Option<SaslMechanism>,

    /// SASL user name.
    #[arg(long = "kafka-sasl-username", env = "LW_KAFKA_SASL_USERNAME", hide_env_values = true)]
    pub sasl_username: Option<String>,

    /// File holding the SASL password (one line; a trailing newline is ignored).
    #[arg(long = "kafka-sasl-password-file", env = "LW_KAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<PathBuf>,

    /// PEM file of the CA certificates that sign the brokers' certificates (SSL,
    /// SASL_SSL). Unset: the system's trusted roots.
    #[arg(long = "kafka-ca-file", env = "LW_KAFKA_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM file of the client certificate, for mutual TLS (with --kafka-key-file).
    #[arg(long = "kafka-cert-file", env = "LW_KAFKA_CERT_FILE")]
    pub cert_file: Option<PathBuf>,

    /// PEM file of the client certificate's private key (with --kafka-cert-file).
    #[arg(long = "kafka-key-file", env = "LW_KAFKA_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// Extra librdkafka properties, `key=value`, repeated or comma separated (e.g.
    /// `socket.keepalive.enable=true`). Bootstrap, security, SASL and SSL properties
    /// are refused: they come from the flags above.
    #[arg(
        long = "kafka-property",
        env = "LW_KAFKA_PROPERTIES",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "KEY=VALUE"
    )]
    pub properties: Vec<String>,
}

/// librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum SecurityProtocol {
    #[default]
    #[value(name = "PLAINTEXT")]
    Plaintext,
    #[value(name = "SSL")]
    Ssl,
    #[value(name = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[value(name = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The name librdkafka and Kafka's configuration use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// librdkafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name on the wire (SaslHandshake) and in librdkafka's configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[cfg(test)]
mod tests;
