//! The checked form of the flags: files read once, the combination validated.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use rdkafka::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{KafkaSecurityArgs, SaslMechanism, SecurityProtocol};

/// A file larger than this is no password, certificate bundle or key: refused
/// rather than read whole.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// librdkafka properties that only the security flags may set: a pass-through
/// property must not downgrade TLS, swap the credentials or point elsewhere.
const RESERVED_PREFIXES: [&str; 4] = ["sasl.", "ssl.", "ssl_", "enable.ssl."];
const RESERVED_KEYS: [&str; 4] =
    ["bootstrap.servers", "metadata.broker.list", "security.protocol", "client.dns.lookup"];

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// TLS settings: the files' paths (librdkafka reads them itself) and their checked
/// contents (the operator's own client uses those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The CA bundle; `None`: the system's roots.
    pub ca: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
    /// Client certificate chain and key, for mutual TLS.
    pub identity: Option<ClientIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl ClientIdentity {
    /// The private key, parsed again from the checked DER (it is not `Clone`).
    pub fn key(&self) -> Option<PrivateKeyDer<'static>> {
        PrivateKeyDer::try_from(self.key_der.clone()).ok()
    }
}

/// How a Kafka client connects, checked. [`Default`]: PLAINTEXT, no extras.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    pub sasl: Option<Sasl>,
    pub tls: Option<Tls>,
    /// Pass-through librdkafka properties (never security ones).
    pub properties: Vec<(String, String)>,
}

/// Why the Kafka security settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSecurityError {
    #[error("--kafka-security-protocol {protocol} needs {missing}")]
    SaslIncomplete { protocol: &'static str, missing: &'static str },
    #[error(
        "{setting} is set but --kafka-security-protocol is {protocol}: set SASL_PLAINTEXT or SASL_SSL, or remove it"
    )]
    SaslNotEnabled { setting: &'static str, protocol: &'static str },
    #[error(
        "{setting} is set but --kafka-security-protocol is {protocol}: set SSL or SASL_SSL, or remove it"
    )]
    TlsNotEnabled { setting: &'static str, protocol: &'static str },
    #[error("--kafka-cert-file and --kafka-key-file go together; only {given} is set")]
    HalfIdentity { given: &'static str },
    #[error("cannot read {what} {path}: {message}")]
    Unreadable { what: &'static str, path: PathBuf, message: String },
    #[error("{what} {path} is not usable PEM: {message}")]
    BadPem { what: &'static str, path: PathBuf, message: String },
    #[error("the SASL password file {0} is empty")]
    EmptyPassword(PathBuf),
    #[error("--kafka-property {0:?} is not key=value")]
    BadProperty(String),
    #[error(
        "--kafka-property {0:?} would override the bootstrap or security settings; use the --kafka-* flags"
    )]
    ReservedProperty(String),
}

impl KafkaSecurityError {
    /// A stable reason, for conditions and exit messages.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SaslIncomplete { .. } => "KafkaSaslIncomplete",
            Self::SaslNotEnabled { .. } => "KafkaSaslNotEnabled",
            Self::TlsNotEnabled { .. } => "KafkaTlsNotEnabled",
            Self::HalfIdentity { .. } => "KafkaClientCertIncomplete",
            Self::Unreadable { .. } => "KafkaFileUnreadable",
            Self::BadPem { .. } => "KafkaBadPem",
            Self::EmptyPassword(_) => "KafkaEmptyPassword",
            Self::BadProperty(_) => "KafkaBadProperty",
            Self::ReservedProperty(_) => "KafkaReservedProperty",
        }
    }
}

impl KafkaSecurityArgs {
    /// Checks the combination and reads the files.
    pub fn load(&self) -> Result<KafkaSecurity, KafkaSecurityError> {
        let protocol = self.protocol;
        let name = protocol.as_str();
        let sasl = if protocol.uses_sasl() {
            Some(self.sasl()?)
        } else {
            let given = [
                (self.sasl_mechanism.is_some(), "--kafka-sasl-mechanism"),
                (non_blank(&self.sasl_username).is_some(), "--kafka-sasl-username"),
                (self.sasl_password_file.is_some(), "--kafka-sasl-password-file"),
            ];
            if let Some((_, setting)) = given.iter().find(|(set, _)| *set) {
                return Err(KafkaSecurityError::SaslNotEnabled { setting, protocol: name });
            }
            None
        };
        let tls = if protocol.uses_tls() {
            Some(self.tls()?)
        } else {
            let given = [
                (self.ca_file.is_some(), "--kafka-ca-file"),
                (self.cert_file.is_some(), "--kafka-cert-file"),
                (self.key_file.is_some(), "--kafka-key-file"),
            ];
            if let Some((_, setting)) = given.iter().find(|(set, _)| *set) {
                return Err(KafkaSecurityError::TlsNotEnabled { setting, protocol: name });
            }
            None
        };
        let properties = self
            .properties
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(parse_property)
            .collect::<Result<_, _>>()?;
        Ok(KafkaSecurity { protocol, sasl, tls, properties })
    }

    fn sasl(&self) -> Result<Sasl, KafkaSecurityError> {
        let protocol = self.protocol.as_str();
        let missing = |missing| KafkaSecurityError::SaslIncomplete { protocol, missing };
        let mechanism = self.sasl_mechanism.ok_or_else(|| missing("--kafka-sasl-mechanism"))?;
        let username =
            non_blank(&self.sasl_username).ok_or_else(|| missing("--kafka-sasl-username"))?;
        let path = self
            .sasl_password_file
            .as_ref()
            .ok_or_else(|| missing("--kafka-sasl-password-file"))?;
        let text = String::from_utf8(read_bounded("SASL password file", path)?).map_err(|_| {
            KafkaSecurityError::Unreadable {
                what: "SASL password file",
                path: path.clone(),
                message: "not UTF-8".into(),
            }
        })?;
        // Secrets made with `echo` or an editor end with a newline; no password does.
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(KafkaSecurityError::EmptyPassword(path.clone()));
        }
        Ok(Sasl { mechanism, username: username.to_owned(), password: Secret(password.to_owned()) })
    }

    fn tls(&self) -> Result<Tls, KafkaSecurityError> {
        let ca = match &self.ca_file {
            Some(path) => Some((path.clone(), certificates("CA file", path)?)),
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(KafkaSecurityError::HalfIdentity { given: "--kafka-cert-file" });
            }
            (None, Some(_)) => {
                return Err(KafkaSecurityError::HalfIdentity { given: "--kafka-key-file" });
            }
            (Some(cert_file), Some(key_file)) => {
                let chain = certificates("client certificate file", cert_file)?;
                let bytes = read_bounded("client key file", key_file)?;
                let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
                    KafkaSecurityError::BadPem {
                        what: "client key file",
                        path: key_file.clone(),
                        message: error.to_string(),
                    }
                })?;
                Some(ClientIdentity {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                    chain,
                    key_der: key.secret_der().to_vec(),
                })
            }
        };
        Ok(Tls { ca, identity })
    }
}

impl KafkaSecurity {
    /// Sets the security and pass-through properties on a librdkafka client's
    /// configuration: every Kafka client of the operator and the workers goes
    /// through here.
    pub fn apply_to(&self, config: &mut ClientConfig) {
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.set("security.protocol", self.protocol.as_str());
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
        if let Some(tls) = &self.tls {
            if let Some((path, _)) = &tls.ca {
                config.set("ssl.ca.location", path.to_string_lossy());
            }
            if let Some(identity) = &tls.identity {
                config
                    .set("ssl.certificate.location", identity.cert_file.to_string_lossy())
                    .set("ssl.key.location", identity.key_file.to_string_lossy());
            }
        }
    }

    /// A librdkafka configuration for `brokers` with these settings applied.
    pub fn client_config(&self, brokers: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.apply_to(&mut config);
        config.set("bootstrap.servers", brokers);
        config
    }
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

fn parse_property(entry: &str) -> Result<(String, String), KafkaSecurityError> {
    let (key, value) = entry
        .split_once('=')
        .map(|(key, value)| (key.trim(), value.trim()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| KafkaSecurityError::BadProperty(entry.to_owned()))?;
    let lower = key.to_ascii_lowercase();
    if RESERVED_KEYS.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|prefix| lower.starts_with(prefix))
    {
        return Err(KafkaSecurityError::ReservedProperty(key.to_owned()));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn read_bounded(what: &'static str, path: &Path) -> Result<Vec<u8>, KafkaSecurityError> {
    let unreadable = |message: String| KafkaSecurityError::Unreadable {
        what,
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|error| unreadable(error.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| unreadable(error.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(unreadable(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, KafkaSecurityError> {
    let bytes = read_bounded(what, path)?;
    let bad =
        |message: String| KafkaSecurityError::BadPem { what, path: path.to_path_buf(), message };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad(error.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(chain)
}
