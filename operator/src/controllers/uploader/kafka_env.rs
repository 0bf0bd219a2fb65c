//! The Kafka security settings of the workers: the operator's own, passed by
//! reference. Names and paths are plain environment values; the password, CA,
//! certificate and key stay in a Secret mounted into the pod.

use std::path::Path;

use k8s_openapi::api::core::v1::{EnvVar, SecretVolumeSource, Volume, VolumeMount};
use licenseware_crds::kafka_security::{KafkaSecurityArgs, SecurityProtocol};

/// Where the workers find the Kafka files. Not under `/etc/licenseware`, the
/// read-only mount of the worker's ConfigMap: a mount point inside another
/// read-only volume cannot be created.
pub const WORKER_KAFKA_FILES_DIR: &str = "/etc/licenseware-kafka";
const VOLUME: &str = "kafka-files";

/// What each worker Deployment gets for Kafka security. [`Default`]: nothing, the
/// workers speak PLAINTEXT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerKafkaSecurity {
    /// Environment values: the protocol, mechanism, user name, extra properties and
    /// the files' paths in the mount.
    env: Vec<(&'static str, String)>,
    /// The Secret (in the uploader's namespace) holding the files, keyed by the file
    /// names the operator itself reads.
    files_secret: Option<String>,
}

impl WorkerKafkaSecurity {
    /// The workers' settings from the operator's: the same values, with each file's
    /// path in the workers' mount of `files_secret`, under its key, the name of the
    /// operator's file (the Helm chart mounts the same Secret with the same keys).
    pub fn new(args: &KafkaSecurityArgs, files_secret: Option<&str>) -> Result<Self, String> {
        let mut env = Vec::new();
        if args.protocol != SecurityProtocol::Plaintext {
            env.push(("LW_KAFKA_SECURITY_PROTOCOL", args.protocol.as_str().to_owned()));
        }
        if let Some(mechanism) = args.sasl_mechanism {
            env.push(("LW_KAFKA_SASL_MECHANISM", mechanism.as_str().to_owned()));
        }
        if let Some(username) = args.sasl_username.as_deref().filter(|u| !u.trim().is_empty()) {
            env.push(("LW_KAFKA_SASL_USERNAME", username.to_owned()));
        }
        let properties: Vec<&str> =
            args.properties.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
        if !properties.is_empty() {
            env.push(("LW_KAFKA_PROPERTIES", properties.join(",")));
        }
        let files = [
            ("LW_KAFKA_SASL_PASSWORD_FILE", &args.sasl_password_file),
            ("LW_KAFKA_CA_FILE", &args.ca_file),
            ("LW_KAFKA_CERT_FILE", &args.cert_file),
            ("LW_KAFKA_KEY_FILE", &args.key_file),
        ];
        let files_secret = files_secret.map(str::trim).filter(|s| !s.is_empty());
        for (name, path) in files {
            let Some(path) = path else { continue };
            let Some(secret) = files_secret else {
                return Err(format!(
                    "--kafka-files-secret is needed: the workers must read {name} from a Secret"
                ));
            };
            let key = file_key(path)
                .ok_or_else(|| format!("{name}: {} has no file name", path.display()))?;
            tracing::debug!(variable = name, secret, key, "worker Kafka file");
            env.push((name, format!("{WORKER_KAFKA_FILES_DIR}/{key}")));
        }
        let uses_files = env.iter().any(|(name, _)| name.ends_with("_FILE"));
        Ok(Self { env, files_secret: files_secret.filter(|_| uses_files).map(str::to_owned) })
    }

    pub fn env_vars(&self) -> impl Iterator<Item = EnvVar> + '_ {
        self.env.iter().map(|(name, value)| EnvVar {
            name: (*name).to_owned(),
            value: Some(value.clone()),
            value_from: None,
        })
    }

    /// The files' Secret volume and its read-only mount, when files are used.
    pub fn volume(&self) -> Option<(Volume, VolumeMount)> {
        let secret = self.files_secret.as_ref()?;
        let volume = Volume {
            name: VOLUME.to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                optional: Some(false),
                // Owner and group (the pod's fsGroup) only: it holds a key and a password.
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        };
        let mount = VolumeMount {
            name: VOLUME.to_owned(),
            mount_path: WORKER_KAFKA_FILES_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        };
        Some((volume, mount))
    }
}

/// The Secret key of a file: its name, which must be a valid Secret key.
fn file_key(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then(|| name.to_owned())
}
