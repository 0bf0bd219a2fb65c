//! The pure steps of an Uploader reconcile: validate the spec, then build the objects
//! the operator applies for it: two Topics, the worker's ConfigMap and its Deployment.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
            EmptyDirVolumeSource, EnvFromSource, EnvVar, HTTPGetAction,
            PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
            ResourceRequirements, SeccompProfile, SecretEnvSource, SecurityContext, Volume,
            VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
        util::intstr::IntOrString,
    },
};
use kube::{Resource, ResourceExt};
use licenseware_crds::{
    Topic, TopicSchema, TopicSpec, Uploader, WorkerConfigFile,
    event_schema::{CompiledEventSchema, sample_upload_envelope},
};
use sha2::{Digest, Sha256};

/// Pod template annotation carrying the SHA-256 of the worker's ConfigMap content: a
/// spec change changes it, so the Deployment rolls its pods.
pub const CONFIG_HASH_ANNOTATION: &str = "licenseware.io/config-hash";
/// Label naming the Uploader an object belongs to; the controller watches Topics and
/// Deployments with it.
pub const UPLOADER_LABEL: &str = "licenseware.io/uploader";
/// The ConfigMap key the worker reads.
pub const CONFIG_KEY: &str = "worker.yaml";
/// Where the worker finds its ConfigMap, the shared uploads and its scratch space.
pub const CONFIG_DIR: &str = "/etc/licenseware";
pub const UPLOAD_ROOT: &str = "/uploads";
const TMP_DIR: &str = "/tmp";
/// The non-root user of the worker image (distroless `nonroot`).
const WORKER_UID: i64 = 65532;
/// The worker's `/healthz`, `/readyz` and `/metrics` (its `--listen` default), and the
/// name of that container port.
pub const PROBE_PORT: i32 = 8081;
pub const PROBE_PORT_NAME: &str = "probes";
/// SIGTERM lets the worker finish the file in hand and commit before it exits.
const TERMINATION_GRACE_SECONDS: i64 = 120;
/// The longest metadata.name: `{name}-worker` and the label values stay within 63
/// characters.
const MAX_NAME: usize = 63 - "-worker".len();
/// Kafka's limit on topic names.
const MAX_TOPIC_NAME: usize = 249;
/// Partitions of the dead-letter topic: it is rarely read and never scaled on.
const DLQ_PARTITIONS: i32 = 1;

/// What the operator itself contributes to every worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    pub topic_prefix: String,
    /// Image of the workers whose spec names none.
    pub default_image: String,
    pub upload_claim: String,
    /// Secret the workers take their server addresses from; `None`: the addresses below.
    pub secret: Option<String>,
    pub kafka_brokers: String,
    pub mongo_url: String,
    pub redis_url: String,
    /// The Kafka security environment and files' Secret the workers get.
    pub kafka_security: super::kafka_env::WorkerKafkaSecurity,
    /// The registries worker images may come from.
    pub images: super::image::ImagePolicy,
    /// Requests and limits of the workers whose spec.worker.resources is empty.
    pub default_resources: ResourceRequirements,
    /// The size limit of the worker's `/tmp` emptyDir (None: unlimited).
    pub tmp_size_limit: Option<Quantity>,
}

/// The worker image of `uploader`: its spec's, else the operator's default.
pub fn worker_image<'a>(uploader: &'a Uploader, settings: &'a WorkerSettings) -> &'a str {
    let image = uploader.spec.worker.image.trim();
    if image.is_empty() { settings.default_image.trim() } else { image }
}

/// Checks the worker image against the allowed registries: the message of the
/// `ImageNotAllowed` condition when it is refused. The operator's own default image is
/// always allowed.
pub fn check_image(uploader: &Uploader, settings: &WorkerSettings) -> Result<(), String> {
    let image = worker_image(uploader, settings);
    if image == settings.default_image.trim() || settings.images.allows(image) {
        Ok(())
    } else {
        Err(settings.images.refusal(image))
    }
}

/// `spec.worker.resources`, or the operator's defaults when it sets nothing: a worker
/// reads untrusted files, so it never runs without limits unless asked to.
fn resources(uploader: &Uploader, settings: &WorkerSettings) -> ResourceRequirements {
    match &uploader.spec.worker.resources {
        Some(own)
            if own.requests.as_ref().is_some_and(|r| !r.is_empty())
                || own.limits.as_ref().is_some_and(|l| !l.is_empty()) =>
        {
            own.clone()
        }
        _ => settings.default_resources.clone(),
    }
}

/// The names of the objects an Uploader owns (deterministic, so apply is idempotent).
pub fn events_topic_resource(uploader: &str) -> String {
    format!("{uploader}-events")
}

pub fn dlq_topic_resource(uploader: &str) -> String {
    format!("{uploader}-dlq")
}

pub fn worker_name(uploader: &str) -> String {
    format!("{uploader}-worker")
}

/// The worker's consumer group: `{prefix}{appId}.{uploaderId}.worker`. The topic prefix
/// applies, so environments sharing a Kafka cluster never share groups.
pub fn consumer_group(uploader: &Uploader, prefix: &str) -> String {
    format!("{prefix}{}.{}.worker", uploader.spec.app_id, uploader.uploader_id())
}

/// Everything the operator applies for one Uploader.
#[derive(Debug, Clone)]
pub struct Desired {
    pub events_topic: Topic,
    pub dlq_topic: Topic,
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    /// Kafka names, with the prefix: what status reports and the scaler reads.
    pub events_kafka_name: String,
    pub dlq_kafka_name: String,
    pub consumer_group: String,
    pub config_hash: String,
    /// What the ConfigMap's `worker.yaml` holds; the registry entry carries the same
    /// value as `worker`.
    pub worker_config: WorkerConfigFile,
}

fn is_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'_' || *b == b'-')
}

/// Checks what the CRD schema cannot: the result is the condition message.
pub fn validate(uploader: &Uploader, settings: &WorkerSettings) -> Result<(), String> {
    let name = uploader.name_any();
    if name.len() > MAX_NAME {
        return Err(format!(
            "metadata.name {name} is {} characters long; at most {MAX_NAME} leave room for \
             the {} Deployment",
            name.len(),
            worker_name("")
        ));
    }
    let id = uploader.uploader_id();
    if !is_id(&id) {
        return Err(format!(
            "uploaderId {id:?} (from {}) must be lowercase letters, digits, '_' and '-', \
             starting and ending with a letter or digit; set spec.uploaderId",
            if uploader.spec.uploader_id.is_some() { "spec.uploaderId" } else { "metadata.name" }
        ));
    }
    if !is_id(&uploader.spec.app_id) {
        return Err(format!("appId {:?} is not a valid id", uploader.spec.app_id));
    }
    let worker = &uploader.spec.worker;
    if worker.min_replicas < 0
        || worker.max_replicas < 1
        || worker.min_replicas > worker.max_replicas
    {
        return Err(format!(
            "worker replicas must satisfy 0 <= minReplicas <= maxReplicas and maxReplicas >= 1, \
             not {}..{}",
            worker.min_replicas, worker.max_replicas
        ));
    }
    if worker.lag_per_replica < 1 {
        return Err(format!(
            "worker.lagPerReplica must be at least 1, not {}",
            worker.lag_per_replica
        ));
    }
    let topic = format!("{}{}", settings.topic_prefix, uploader.events_topic_name());
    if topic.len() > MAX_TOPIC_NAME {
        return Err(format!("Kafka topic name {topic} is longer than {MAX_TOPIC_NAME} characters"));
    }
    if worker.image.trim().is_empty() && settings.default_image.trim().is_empty() {
        return Err("worker.image is empty and the operator has no default worker image".into());
    }
    if uploader.uid().is_none() {
        return Err("the Uploader has no uid yet".into());
    }
    Ok(())
}

fn labels(uploader: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "licenseware-worker".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), uploader.to_owned()),
        ("app.kubernetes.io/component".to_owned(), "worker".to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), licenseware_crds::FIELD_MANAGER.to_owned()),
        (UPLOADER_LABEL.to_owned(), uploader.to_owned()),
    ])
}

fn metadata(name: String, uploader: &Uploader, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: uploader.namespace(),
        labels: Some(labels(&uploader.name_any())),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the events Topic's schema accepts the events the API sends for this
/// Uploader (checked on a sample of their exact shape); the error is the condition's
/// reason and message.
// Checked here as well as by the API at each upload: an Uploader whose every upload
// would be refused is not Ready, so `kubectl get` shows it before anyone uploads. It
// stays registered: the API then answers uploads with a refusal naming the schema
// rather than a 404 for an uploader that exists, and still checks each real event,
// whose values the sample only imitates.
pub fn check_events_schema(
    uploader: &Uploader,
    schema: Option<&TopicSchema>,
) -> Result<(), (&'static str, String)> {
    let Some(schema) = schema else { return Ok(()) };
    let envelope = sample_upload_envelope(&uploader.spec.app_id, &uploader.uploader_id());
    CompiledEventSchema::compile(schema).and_then(|compiled| compiled.check(&envelope)).map_err(
        |error| {
            let message = format!(
                "the events Topic's schema refuses the processing events the API sends: {error}"
            );
            (error.reason(), message)
        },
    )
}

/// Builds every object of a valid Uploader. `events_partitions` is the partition count
/// the events Topic already asks for, if it exists: partitions can only grow, so a
/// lower `maxReplicas` never shrinks it. `events_schema` is the events Topic's
/// `spec.schema`, set by its users (the operator's apply leaves that field alone): the
/// worker config carries it, so the API checks its events against it.
pub fn build(
    uploader: &Uploader,
    settings: &WorkerSettings,
    events_partitions: Option<i32>,
    events_schema: Option<&TopicSchema>,
) -> Result<Desired, String> {
    validate(uploader, settings)?;
    let owner = uploader.controller_owner_ref(&()).ok_or("the Uploader has no uid yet")?;
    let name = uploader.name_any();
    let worker = &uploader.spec.worker;
    let prefix = &settings.topic_prefix;

    // One partition per possible replica, so each replica can own one.
    let partitions = worker.max_replicas.max(events_partitions.unwrap_or(1)).max(1);
    let topic = |resource: String, topic_name: String, partitions: i32| {
        let mut topic = Topic::new(
            &resource,
            TopicSpec {
                topic_name: Some(topic_name),
                partitions,
                replication_factor: None,
                config: BTreeMap::new(),
                retention: None,
                schema: None,
                deletion_policy: licenseware_crds::DeletionPolicy::Retain,
            },
        );
        topic.metadata = metadata(resource, uploader, &owner);
        topic
    };
    let events_topic =
        topic(events_topic_resource(&name), uploader.events_topic_name(), partitions);
    let dlq_topic = topic(dlq_topic_resource(&name), uploader.dlq_topic_name(), DLQ_PARTITIONS);

    let events_kafka_name = format!("{prefix}{}", uploader.events_topic_name());
    let dlq_kafka_name = format!("{prefix}{}", uploader.dlq_topic_name());
    let consumer_group = consumer_group(uploader, prefix);
    let mut spec = uploader.spec.clone();
    spec.uploader_id = Some(uploader.uploader_id());
    let worker_config = WorkerConfigFile {
        app_id: spec.app_id.clone(),
        uploader_id: uploader.uploader_id(),
        uploader: format!("{}/{name}", uploader.namespace().unwrap_or_default()),
        events_topic: events_kafka_name.clone(),
        dlq_topic: dlq_kafka_name.clone(),
        events_topic_schema: events_schema.cloned(),
        consumer_group: consumer_group.clone(),
        max_attempts: worker.max_attempts,
        upload_root: UPLOAD_ROOT.to_owned(),
        spec,
    };
    let content = serde_yaml::to_string(&worker_config)
        .map_err(|e| format!("cannot render {CONFIG_KEY}: {e}"))?;
    let config_hash = sha256_hex(&[CONFIG_KEY, &content]);
    let config_map = ConfigMap {
        metadata: metadata(worker_name(&name), uploader, &owner),
        data: Some(BTreeMap::from([(CONFIG_KEY.to_owned(), content)])),
        ..ConfigMap::default()
    };

    let deployment = deployment(uploader, settings, &owner, &config_hash);
    Ok(Desired {
        events_topic,
        dlq_topic,
        config_map,
        deployment,
        events_kafka_name,
        dlq_kafka_name,
        consumer_group,
        config_hash,
        worker_config,
    })
}

/// A GET of `path` on the probe port, every `period` seconds, failing after `failures`.
fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(PROBE_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.into()), value_from: None }
}

/// The worker Deployment. It has no `replicas`: the lag scaler owns that field under its
/// own field manager.
fn deployment(
    uploader: &Uploader,
    settings: &WorkerSettings,
    owner: &OwnerReference,
    config_hash: &str,
) -> Deployment {
    let name = uploader.name_any();
    let image = worker_image(uploader, settings).to_owned();
    let selector = BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "licenseware-worker".to_owned()),
        (UPLOADER_LABEL.to_owned(), name.clone()),
    ]);
    let mut env_vars = vec![
        env("LW_WORKER_CONFIG", format!("{CONFIG_DIR}/{CONFIG_KEY}")),
        env("LW_UPLOAD_ROOT", UPLOAD_ROOT),
        env("LW_LOG_FORMAT", "json"),
        // Explicit, so that a worker Secret cannot move the probes off their port.
        env("LW_LISTEN", format!("0.0.0.0:{PROBE_PORT}")),
    ];
    let env_from = match &settings.secret {
        Some(secret) => Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: secret.clone(), optional: Some(false) }),
            ..EnvFromSource::default()
        }]),
        None => {
            env_vars.push(env("LW_KAFKA_BROKERS", &settings.kafka_brokers));
            env_vars.push(env("LW_MONGO_URL", &settings.mongo_url));
            env_vars.push(env("LW_REDIS_URL", &settings.redis_url));
            None
        }
    };
    // Set after the addresses: explicit entries win over a Secret's `envFrom`, so the
    // workers always connect as the operator does.
    env_vars.extend(settings.kafka_security.env_vars());
    let kafka_files = settings.kafka_security.volume();
    let container = Container {
        name: "worker".to_owned(),
        image: Some(image.clone()),
        args: Some(vec!["consume".to_owned()]),
        env: Some(env_vars),
        env_from,
        resources: Some(resources(uploader, settings)),
        ports: Some(vec![ContainerPort {
            name: Some(PROBE_PORT_NAME.to_owned()),
            container_port: PROBE_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        // Startup: up to a minute to connect and start serving. Liveness: `/healthz`
        // fails when an event is stuck (no progress for --progress-timeout-secs).
        // Readiness: Kafka, MongoDB and Redis answer.
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 10, 3)),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), add: None }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(
            vec![
                VolumeMount {
                    name: "config".to_owned(),
                    mount_path: CONFIG_DIR.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                // The worker only reads the uploads; its scratch space is /tmp.
                VolumeMount {
                    name: "uploads".to_owned(),
                    mount_path: UPLOAD_ROOT.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "tmp".to_owned(),
                    mount_path: TMP_DIR.to_owned(),
                    ..VolumeMount::default()
                },
            ]
            .into_iter()
            .chain(kafka_files.as_ref().map(|(_, mount)| mount.clone()))
            .collect(),
        ),
        ..Container::default()
    };
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(WORKER_UID),
            run_as_group: Some(WORKER_UID),
            fs_group: Some(WORKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(
            vec![
                Volume {
                    name: "config".to_owned(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: worker_name(&name),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "uploads".to_owned(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: settings.upload_claim.clone(),
                        read_only: Some(true),
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "tmp".to_owned(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        medium: None,
                        size_limit: settings.tmp_size_limit.clone(),
                    }),
                    ..Volume::default()
                },
            ]
            .into_iter()
            .chain(kafka_files.map(|(volume, _)| volume))
            .collect(),
        ),
        ..PodSpec::default()
    };
    let mut pod_labels = labels(&name);
    pod_labels.extend(selector.clone());
    Deployment {
        metadata: metadata(worker_name(&name), uploader, owner),
        spec: Some(DeploymentSpec {
            replicas: None,
            selector: LabelSelector { match_labels: Some(selector), match_expressions: None },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        config_hash.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerSettings {
        WorkerSettings {
            topic_prefix: "test.".into(),
            default_image: "ghcr.io/licenseware/licenseware-worker:0.1.0".into(),
            upload_claim: "licenseware-uploads".into(),
            secret: None,
            kafka_brokers: "kafka:9092".into(),
            mongo_url: "mongodb://mongo/".into(),
            redis_url: "redis://redis/".into(),
            kafka_security: Default::default(),
            images: super::super::image::ImagePolicy::new(
                &[],
                "ghcr.io/licenseware/licenseware-worker:0.1.0",
            ),
            default_resources: crate::config::WorkerConfig::default()
                .default_resources()
                .expect("valid defaults"),
            tmp_size_limit: Some(Quantity("1Gi".into())),
        }
    }

    fn rv_tools() -> Uploader {
        let mut uploader: Uploader = serde_yaml::from_str(
            r#"
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata: {name: rv-tools, namespace: apps, uid: 0b0c5f43-5a43-4a70-9d1e-5b2a7ad4a8a1}
spec:
  appId: ifmp-service
  uploaderId: rv_tools
  name: RVTools
  acceptedFileTypes: [".xls", ".xlsx"]
  validation:
    requiredSheets: [[tabvInfo, tabvCPU, tabvHost, tabvCluster], [vInfo, vCPU, vHost, vCluster]]
    requiredColumns: [[VM, Host, OS]]
  worker: {maxReplicas: 4, lagPerReplica: 5}
"#,
        )
        .unwrap();
        uploader.metadata.generation = Some(1);
        uploader
    }

    fn pod(desired: &Desired) -> &PodSpec {
        desired.deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn names_topics_and_group_follow_the_uploader() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        assert_eq!(desired.events_topic.name_any(), "rv-tools-events");
        assert_eq!(desired.dlq_topic.name_any(), "rv-tools-dlq");
        assert_eq!(
            desired.events_topic.spec.topic_name.as_deref(),
            Some("ifmp-service.rv_tools.events")
        );
        assert_eq!(desired.dlq_topic.spec.topic_name.as_deref(), Some("ifmp-service.rv_tools.dlq"));
        assert_eq!(desired.events_topic.spec.partitions, 4, "one partition per max replica");
        assert_eq!(desired.dlq_topic.spec.partitions, 1);
        assert_eq!(desired.events_kafka_name, "test.ifmp-service.rv_tools.events");
        assert_eq!(desired.dlq_kafka_name, "test.ifmp-service.rv_tools.dlq");
        assert_eq!(desired.consumer_group, "test.ifmp-service.rv_tools.worker");
        assert_eq!(desired.config_map.name_any(), "rv-tools-worker");
        assert_eq!(desired.deployment.name_any(), "rv-tools-worker");
        for namespace in [
            desired.events_topic.namespace(),
            desired.config_map.namespace(),
            desired.deployment.namespace(),
        ] {
            assert_eq!(namespace.as_deref(), Some("apps"));
        }
    }

    #[test]
    fn partitions_never_shrink_below_the_existing_topic() {
        let desired = build(&rv_tools(), &settings(), Some(12), None).unwrap();
        assert_eq!(desired.events_topic.spec.partitions, 12);
    }

    #[test]
    fn every_object_is_owned_by_the_uploader() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        let owners = [
            desired.events_topic.owner_references(),
            desired.dlq_topic.owner_references(),
            desired.config_map.owner_references(),
            desired.deployment.owner_references(),
        ];
        for owner in owners {
            assert_eq!(owner.len(), 1);
            let owner = &owner[0];
            assert_eq!(
                (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str()),
                ("licenseware.io/v1alpha1", "Uploader", "rv-tools")
            );
            assert_eq!(owner.uid, "0b0c5f43-5a43-4a70-9d1e-5b2a7ad4a8a1");
            assert_eq!(owner.controller, Some(true));
        }
    }

    #[test]
    fn config_map_has_what_the_worker_needs() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        let content = &desired.config_map.data.as_ref().unwrap()[CONFIG_KEY];
        let file: serde_json::Value = serde_yaml::from_str(content).unwrap();
        assert_eq!(file["appId"], "ifmp-service");
        assert_eq!(file["uploaderId"], "rv_tools");
        assert_eq!(file["uploader"], "apps/rv-tools");
        assert_eq!(file["eventsTopic"], "test.ifmp-service.rv_tools.events");
        assert_eq!(file["dlqTopic"], "test.ifmp-service.rv_tools.dlq");
        assert_eq!(file["consumerGroup"], "test.ifmp-service.rv_tools.worker");
        assert_eq!(file["maxAttempts"], 5);
        assert_eq!(file["spec"]["validation"]["requiredColumns"][0][0], "VM");
        // The registry entry's `worker` is this very value.
        let parsed: WorkerConfigFile = serde_yaml::from_str(content).unwrap();
        assert_eq!(parsed, desired.worker_config);
    }

    #[test]
    fn deployment_is_hardened_and_has_no_replicas() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        let spec = desired.deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, None, "the scaler owns replicas");
        let pod = pod(&desired);
        assert_eq!(pod.automount_service_account_token, Some(false));
        let pod_security = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("ghcr.io/licenseware/licenseware-worker:0.1.0")
        );
        assert_eq!(container.args.as_deref(), Some(&["consume".to_owned()][..]));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..])
        );
        assert_eq!(security.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        let mounts: BTreeMap<&str, &str> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.as_str(), m.mount_path.as_str()))
            .collect();
        assert_eq!(
            mounts,
            BTreeMap::from([("config", CONFIG_DIR), ("tmp", "/tmp"), ("uploads", "/uploads")])
        );
        let volumes = pod.volumes.as_ref().unwrap();
        let uploads = volumes.iter().find(|v| v.name == "uploads").unwrap();
        assert_eq!(
            uploads.persistent_volume_claim.as_ref().unwrap().claim_name,
            "licenseware-uploads"
        );
        assert!(volumes.iter().find(|v| v.name == "tmp").unwrap().empty_dir.is_some());
        let env: BTreeMap<&str, &str> = container
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(env["LW_KAFKA_BROKERS"], "kafka:9092");
        assert_eq!(env["LW_WORKER_CONFIG"], "/etc/licenseware/worker.yaml");
        assert_eq!(env["LW_LISTEN"], "0.0.0.0:8081");
        // The selector matches the pod labels.
        let pod_labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        for (key, value) in spec.selector.match_labels.as_ref().unwrap() {
            assert_eq!(pod_labels.get(key), Some(value));
        }
    }

    #[test]
    fn probes_use_the_named_port_the_worker_listens_on() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        let container = &pod(&desired).containers[0];
        let ports = container.ports.as_deref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_deref(), Some("probes"));
        assert_eq!(ports[0].container_port, 8081);
        let get = |probe: &Option<Probe>| {
            let action = probe.as_ref().unwrap().http_get.clone().unwrap();
            (action.path.unwrap(), action.port)
        };
        let named = IntOrString::String("probes".to_owned());
        assert_eq!(get(&container.liveness_probe), ("/healthz".to_owned(), named.clone()));
        assert_eq!(get(&container.startup_probe), ("/healthz".to_owned(), named.clone()));
        assert_eq!(get(&container.readiness_probe), ("/readyz".to_owned(), named));
    }

    #[test]
    fn a_secret_replaces_the_plain_addresses() {
        let settings = WorkerSettings { secret: Some("worker-env".into()), ..settings() };
        let desired = build(&rv_tools(), &settings, None, None).unwrap();
        let container = &pod(&desired).containers[0];
        assert!(container.env.iter().flatten().all(|e| !e.name.starts_with("LW_MONGO")));
        let from = container.env_from.as_ref().unwrap();
        assert_eq!(from[0].secret_ref.as_ref().unwrap().name, "worker-env");
    }

    #[test]
    fn kafka_security_is_passed_by_reference_to_the_files_secret() {
        use licenseware_crds::kafka_security::{
            KafkaSecurityArgs, SaslMechanism, SecurityProtocol,
        };

        use super::super::kafka_env::{WORKER_KAFKA_FILES_DIR, WorkerKafkaSecurity};
        let args = KafkaSecurityArgs {
            protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("lw".into()),
            sasl_password_file: Some("/etc/licenseware/kafka/password".into()),
            ca_file: Some("/etc/licenseware/kafka/ca.crt".into()),
            ..KafkaSecurityArgs::default()
        };
        let refused = WorkerKafkaSecurity::new(&args, None).unwrap_err();
        assert!(refused.contains("--kafka-files-secret"), "{refused}");
        let settings = WorkerSettings {
            kafka_security: WorkerKafkaSecurity::new(&args, Some("kafka-files")).unwrap(),
            ..settings()
        };
        let desired = build(&rv_tools(), &settings, None, None).unwrap();
        let pod = pod(&desired);
        let env = pod.containers[0].env.as_ref().unwrap();
        let value = |name: &str| {
            env.iter().find(|e| e.name == name).and_then(|e| e.value.clone()).unwrap_or_default()
        };
        assert_eq!(value("LW_KAFKA_SECURITY_PROTOCOL"), "SASL_SSL");
        assert_eq!(value("LW_KAFKA_SASL_MECHANISM"), "SCRAM-SHA-512");
        assert_eq!(value("LW_KAFKA_SASL_USERNAME"), "lw");
        assert_eq!(
            value("LW_KAFKA_SASL_PASSWORD_FILE"),
            format!("{WORKER_KAFKA_FILES_DIR}/password")
        );
        assert_eq!(value("LW_KAFKA_CA_FILE"), format!("{WORKER_KAFKA_FILES_DIR}/ca.crt"));
        assert!(env.iter().all(|e| !e.name.contains("PASSWORD") || e.name.ends_with("_FILE")));
        let volume =
            pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "kafka-files").unwrap();
        let secret = volume.secret.as_ref().unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("kafka-files"));
        let mounts = pod.containers[0].volume_mounts.as_ref().unwrap();
        let mount = mounts.iter().find(|m| m.name == "kafka-files").unwrap();
        assert_eq!(mount.mount_path, WORKER_KAFKA_FILES_DIR);
        assert_eq!(mount.read_only, Some(true));

        let plaintext = WorkerKafkaSecurity::new(&KafkaSecurityArgs::default(), Some("x")).unwrap();
        assert_eq!(plaintext, WorkerKafkaSecurity::default(), "PLAINTEXT adds nothing");
    }

    #[test]
    fn default_limits_a_sized_tmp_and_read_only_uploads() {
        let desired = build(&rv_tools(), &settings(), None, None).unwrap();
        let pod = pod(&desired);
        let container = &pod.containers[0];
        let resources = container.resources.as_ref().unwrap();
        for key in ["cpu", "memory", "ephemeral-storage"] {
            assert!(resources.requests.as_ref().unwrap().contains_key(key), "request {key}");
            assert!(resources.limits.as_ref().unwrap().contains_key(key), "limit {key}");
        }
        let volumes = pod.volumes.as_ref().unwrap();
        let tmp = volumes.iter().find(|v| v.name == "tmp").unwrap().empty_dir.as_ref().unwrap();
        assert_eq!(tmp.size_limit, Some(Quantity("1Gi".into())));
        let uploads = volumes.iter().find(|v| v.name == "uploads").unwrap();
        assert_eq!(uploads.persistent_volume_claim.as_ref().unwrap().read_only, Some(true));
        let mount = container.volume_mounts.iter().flatten().find(|m| m.name == "uploads").unwrap();
        assert_eq!(mount.read_only, Some(true));
        let tmp_mount = container.volume_mounts.iter().flatten().find(|m| m.name == "tmp").unwrap();
        assert_eq!(tmp_mount.read_only, None, "scratch space is writable");
        // An empty resources object is "nothing set": the defaults apply.
        let mut empty = rv_tools();
        empty.spec.worker.resources = Some(ResourceRequirements::default());
        let defaulted = build(&empty, &settings(), None, None).unwrap();
        let resources =
            &defaulted.deployment.spec.unwrap().template.spec.unwrap().containers[0].resources;
        assert_eq!(resources, &Some(settings().default_resources));
    }

    #[test]
    fn images_outside_the_allowed_registries_are_refused() {
        let mut uploader = rv_tools();
        assert!(check_image(&uploader, &settings()).is_ok(), "the default image");
        uploader.spec.worker.image = "ghcr.io/licenseware/custom:2".into();
        assert!(check_image(&uploader, &settings()).is_ok());
        uploader.spec.worker.image = "evil.example.com/miner:1".into();
        let refusal = check_image(&uploader, &settings()).unwrap_err();
        assert!(refusal.contains("evil.example.com/miner:1"), "{refusal}");
        // The operator's default image is allowed even outside the list.
        let odd =
            WorkerSettings { default_image: "registry.local:5000/worker:dev".into(), ..settings() };
        uploader.spec.worker.image = String::new();
        assert!(check_image(&uploader, &odd).is_ok());
    }

    #[test]
    fn spec_image_and_resources_win() {
        let mut uploader = rv_tools();
        uploader.spec.worker.image = "example/custom:2".into();
        uploader.spec.worker.resources = Some(
            serde_json::from_value(serde_json::json!(
                {"limits": {"memory": "512Mi"}}
            ))
            .unwrap(),
        );
        let desired = build(&uploader, &settings(), None, None).unwrap();
        let container = &pod(&desired).containers[0];
        assert_eq!(container.image.as_deref(), Some("example/custom:2"));
        assert_eq!(container.resources, uploader.spec.worker.resources);
    }

    #[test]
    fn hash_changes_with_the_spec_and_only_with_it() {
        let hash = |uploader: &Uploader| {
            let desired = build(uploader, &settings(), None, None).unwrap();
            let annotations =
                desired.deployment.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
            assert_eq!(annotations[CONFIG_HASH_ANNOTATION], desired.config_hash);
            desired.config_hash
        };
        let uploader = rv_tools();
        let first = hash(&uploader);
        assert_eq!(first.len(), 64);
        assert_eq!(first, hash(&uploader), "deterministic");
        let mut changed = uploader.clone();
        changed.spec.validation.min_rows_number = 5;
        assert_ne!(first, hash(&changed));
        let mut relabelled = uploader.clone();
        relabelled.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        assert_eq!(first, hash(&relabelled));
    }

    #[test]
    fn invalid_specs_say_what_is_wrong() {
        let mut no_id = rv_tools();
        no_id.spec.uploader_id = None;
        no_id.metadata.name = Some("RV.Tools".into());
        let error = build(&no_id, &settings(), None, None).unwrap_err();
        assert!(error.contains("metadata.name"), "{error}");
        let mut long = rv_tools();
        long.metadata.name = Some("x".repeat(57));
        assert!(build(&long, &settings(), None, None).unwrap_err().contains("57 characters"));
        let no_image = WorkerSettings { default_image: String::new(), ..settings() };
        assert!(build(&rv_tools(), &no_image, None, None).unwrap_err().contains("worker.image"));
        let mut bounds = rv_tools();
        bounds.spec.worker.min_replicas = 5;
        bounds.spec.worker.max_replicas = 2;
        assert!(build(&bounds, &settings(), None, None).unwrap_err().contains("minReplicas"));
        // Without uploaderId, metadata.name with '-' as '_'.
        let mut derived = rv_tools();
        derived.spec.uploader_id = None;
        let desired = build(&derived, &settings(), None, None).unwrap();
        assert_eq!(desired.consumer_group, "test.ifmp-service.rv_tools.worker");
    }

    #[test]
    fn the_events_schema_is_carried_and_checked_against_the_api_event() {
        let schema = |json: serde_json::Value| TopicSchema {
            id: "ProcessingEvent".into(),
            version: 1,
            json_schema: serde_json::from_value(json).unwrap(),
        };
        let accepting = schema(serde_json::json!({
            "type": "object", "required": ["tenant_id", "filepaths", "app_id"],
            "properties": {"app_id": {"const": "ifmp-service"}}
        }));
        let desired = build(&rv_tools(), &settings(), None, Some(&accepting)).unwrap();
        assert_eq!(desired.worker_config.events_topic_schema.as_ref(), Some(&accepting));
        let config = &desired.config_map.data.as_ref().unwrap()[CONFIG_KEY];
        assert!(config.contains("eventsTopicSchema"), "{config}");
        assert_eq!(check_events_schema(&rv_tools(), Some(&accepting)), Ok(()));
        assert_eq!(check_events_schema(&rv_tools(), None), Ok(()));

        let refusing = schema(serde_json::json!({"required": ["authorization"]}));
        let (reason, message) = check_events_schema(&rv_tools(), Some(&refusing)).unwrap_err();
        assert_eq!(reason, "EventSchemaRefused");
        assert!(message.contains("authorization"), "{message}");
        let mut renamed = accepting.clone();
        renamed.id = "Other".into();
        assert_eq!(
            check_events_schema(&rv_tools(), Some(&renamed)).unwrap_err().0,
            "WrongEventSchemaName"
        );
        // Without a schema nothing changes in the worker's config.
        let plain = build(&rv_tools(), &settings(), None, None).unwrap();
        assert!(!plain.config_map.data.unwrap()[CONFIG_KEY].contains("eventsTopicSchema"));
    }
}
