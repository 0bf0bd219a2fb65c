//! The Uploader controller and the lag scaler against the real stack: each test runs
//! its own operator in-process, watching a fresh namespace with a unique topic prefix,
//! a unique registry database and a one-second poll interval, and reads the results
//! back from the apiserver, from Kafka and from MongoDB.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use licenseware_e2e::{Stack, eventually, unique_name};
use licenseware_operator::{
    config::{Config, LeaderConfig, LogFormat, WorkerConfig},
    crds::{Topic, Uploader, generate::crds},
};
use mongodb::bson::{Bson, Document, doc};
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    admin::AdminClient,
    client::DefaultClientContext,
    consumer::{BaseConsumer, CommitMode, Consumer},
    producer::{BaseProducer, BaseRecord, Producer},
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

const WAIT: Duration = Duration::from_secs(60);
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
const NAME: &str = "rv-tools";
const REGISTRY_KEY: &str = "uploader/ifmp-service/rv_tools";
const FINALIZER: &str = "licenseware.io/registry";

/// One operator, one namespace, one topic prefix.
struct Harness {
    client: Client,
    namespace: String,
    prefix: String,
    brokers: String,
    kafka: Arc<AdminClient<DefaultClientContext>>,
    probe: String,
    registry: mongodb::Collection<Document>,
    stop: Option<oneshot::Sender<()>>,
    operator: Option<JoinHandle<Result<(), licenseware_operator::Error>>>,
}

impl Harness {
    async fn start() -> Self {
        let stack = Stack::from_env();
        let client = Client::try_default().await.expect("kubeconfig");
        install_crds(&client).await;
        let namespace = unique_name("uploader");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(namespace.clone()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await.expect("create namespace");
        let prefix = format!("{}.", unique_name("e2e"));
        let database = unique_name("uploader").replace('-', "_");
        let mongo = mongodb::Client::with_uri_str(&stack.mongo_url).await.expect("mongodb client");
        let registry = mongo.database(&database).collection::<Document>("Registry");
        let kafka: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &stack.kafka_brokers)
            .create()
            .expect("admin client");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
        let probe = format!("http://{}", listener.local_addr().expect("addr"));
        let brokers = stack.kafka_brokers.clone();
        let config = Config {
            kafka_brokers: stack.kafka_brokers,
            mongo_url: stack.mongo_url,
            redis_url: stack.redis_url,
            probe_addr: listener.local_addr().expect("addr"),
            readiness_interval_secs: 5,
            log_format: LogFormat::Text,
            namespaces: vec![namespace.clone()],
            topic_prefix: prefix.clone(),
            resync_interval_secs: 120,
            registry_database: Some(database),
            workers: WorkerConfig {
                poll_interval_secs: 1,
                scale_down_stabilization_secs: 2,
                ..WorkerConfig::default()
            },
            leader: LeaderConfig::disabled(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let operator = tokio::spawn(licenseware_operator::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self {
            client,
            namespace,
            prefix,
            brokers,
            kafka: Arc::new(kafka),
            probe,
            registry,
            stop: Some(stop),
            operator: Some(operator),
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The RVTools uploader of DESIGN.md, with `worker` as its worker block.
    async fn create_rv_tools(&self, worker: serde_json::Value) -> Uploader {
        let uploader: Uploader = serde_json::from_value(json!({
            "apiVersion": "licenseware.io/v1alpha1",
            "kind": "Uploader",
            "metadata": {"name": NAME},
            "spec": {
                "appId": "ifmp-service",
                "uploaderId": "rv_tools",
                "name": "RVTools",
                "description": "XLSX export from RVTools after scanning your VMware infrastructure.",
                "acceptedFileTypes": [".xls", ".xlsx"],
                "icon": "ServersIcon",
                "flags": ["beta"],
                "validation": {
                    "requiredInputType": "excel",
                    "filenameContains": ["rv", "tools"],
                    "filenameEndswith": [".xls", ".xlsx"],
                    "requiredSheets": [
                        ["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"],
                        ["vInfo", "vCPU", "vHost", "vCluster"]
                    ],
                    "requiredColumns": [["VM", "Host", "OS"]],
                    "minRowsNumber": 1
                },
                "worker": worker,
            }
        }))
        .expect("Uploader manifest");
        self.api::<Uploader>().create(&PostParams::default(), &uploader).await.expect("create")
    }

    /// Waits until the Uploader is Ready for its latest generation, with TopicReady,
    /// WorkerReady and Registered True too.
    async fn ready(&self) -> Uploader {
        self.registered("Reconciled").await
    }

    /// [`Self::ready`], with `Registered` True for `reason` (`Reconciled` or
    /// `NotRegistrable`).
    async fn registered(&self, reason: &str) -> Uploader {
        let api = self.api::<Uploader>();
        eventually(WAIT, &format!("the Uploader to be Ready, Registered {reason}"), || {
            let api = api.clone();
            async move {
                let uploader = api.get(NAME).await.ok()?;
                let status = uploader.status.as_ref()?;
                let all_true =
                    ["TopicReady", "WorkerReady", "Registered", "Ready"].iter().all(|type_| {
                        status.conditions.iter().any(|c| c.type_ == *type_ && c.status == "True")
                    });
                let registered =
                    status.conditions.iter().any(|c| c.type_ == "Registered" && c.reason == reason);
                (all_true
                    && registered
                    && status.observed_generation == uploader.metadata.generation)
                    .then_some(uploader)
            }
        })
        .await
    }

    /// The registry document with this `_id`, as JSON.
    async fn document(&self, key: &str) -> Option<serde_json::Map<String, Value>> {
        let found = self.registry.find_one(doc! { "_id": key }).await.expect("find")?;
        match licenseware_operator::registry::storage::unwrap_nested_arrays(
            Bson::Document(found).into_relaxed_extjson(),
        ) {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    async fn wait_document(&self, key: &str) -> serde_json::Map<String, Value> {
        eventually(WAIT, &format!("registry document {key}"), || self.document(key)).await
    }

    async fn wait_no_document(&self, key: &str) {
        eventually(WAIT, &format!("registry document {key} to be removed"), || async {
            self.document(key).await.is_none().then_some(())
        })
        .await;
    }

    /// Partitions of a Kafka topic, `None` when it does not exist.
    async fn partitions(&self, topic: &str) -> Option<i32> {
        let kafka = Arc::clone(&self.kafka);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata =
                kafka.inner().fetch_metadata(Some(&topic), KAFKA_TIMEOUT).expect("metadata");
            let found = metadata.topics().iter().find(|t| t.name() == topic)?;
            if found.error().is_some() {
                return None;
            }
            i32::try_from(found.partitions().len()).ok()
        })
        .await
        .expect("metadata task")
    }

    /// Waits for the worker Deployment to have `replicas` and the status to say so,
    /// with `lag`.
    async fn scaled_to(&self, replicas: i32, lag: i64) -> Uploader {
        let uploaders = self.api::<Uploader>();
        let deployments = self.api::<Deployment>();
        eventually(WAIT, &format!("{replicas} replicas at lag {lag}"), || {
            let (uploaders, deployments) = (uploaders.clone(), deployments.clone());
            async move {
                let deployment = deployments.get(&format!("{NAME}-worker")).await.ok()?;
                let uploader = uploaders.get(NAME).await.ok()?;
                let status = uploader.status.as_ref()?;
                (deployment.spec?.replicas == Some(replicas)
                    && status.replicas == Some(replicas)
                    && status.desired_replicas == Some(replicas)
                    && status.lag == Some(lag))
                .then_some(uploader)
            }
        })
        .await
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.probe))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(operator) = self.operator.take() {
            let outcome = tokio::time::timeout(Duration::from_secs(30), operator)
                .await
                .expect("operator stops within 30 s")
                .expect("operator task did not panic");
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.namespace, &DeleteParams::default()).await;
        let _ = self.registry.drop().await;
    }
}

/// Server-side applies every CRD (idempotent) and waits until the Uploader and Topic
/// CRDs serve.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("licenseware-e2e").force();
    for crd in crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply CRD");
    }
    for name in ["uploaders.licenseware.io", "topics.licenseware.io"] {
        eventually(WAIT, &format!("the CRD {name} to be established"), || async {
            let crd = api.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn rv_tools_uploader_gets_its_topics_config_and_a_hardened_worker() {
    let h = Harness::start().await;
    h.create_rv_tools(json!({"maxReplicas": 3, "lagPerReplica": 2, "cooldownSeconds": 2})).await;
    let uploader = h.ready().await;
    let events = format!("{}ifmp-service.rv_tools.events", h.prefix);
    let dlq = format!("{}ifmp-service.rv_tools.dlq", h.prefix);
    let status = uploader.status.clone().expect("status");
    assert_eq!(status.topic_name.as_deref(), Some(events.as_str()));
    assert_eq!(status.dlq_topic_name.as_deref(), Some(dlq.as_str()));
    assert_eq!((status.replicas, status.lag), (Some(0), Some(0)), "idle: scaled to zero");
    assert!(uploader.finalizers().iter().any(|f| f == FINALIZER), "{:?}", uploader.finalizers());

    // The registry document, in the SDK's NewUploader metadata shape.
    let entry = h.wait_document(REGISTRY_KEY).await;
    let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "app_id",
        "name",
        "uploader_id",
        "description",
        "upload_url",
        "upload_validation_url",
        "quota_validation_url",
        "status_check_url",
        "accepted_file_types",
        "icon",
        "flags",
        "validation_parameters",
        "encryption_parameters",
        "status",
        "parrent_app",
        "_id",
        "kind",
        "namespace",
        "resource_name",
        "updated_at",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(entry["app_id"], "ifmp-service");
    assert_eq!(entry["name"], "RVTools");
    assert_eq!(entry["uploader_id"], "rv_tools");
    assert_eq!(
        entry["description"],
        "XLSX export from RVTools after scanning your VMware infrastructure."
    );
    assert_eq!(entry["upload_url"], "/uploads/rv-tools/files");
    assert_eq!(entry["upload_validation_url"], "/uploads/rv-tools/validation");
    assert_eq!(entry["quota_validation_url"], "/uploads/rv-tools/quota");
    assert_eq!(entry["status_check_url"], "/uploads/rv-tools/status");
    assert_eq!(entry["accepted_file_types"], json!([".xls", ".xlsx"]));
    assert_eq!(entry["icon"], "ServersIcon");
    assert_eq!(entry["flags"], json!(["beta"]));
    assert_eq!(entry["status"], json!([]));
    assert_eq!(entry["parrent_app"], json!({"app_id": "ifmp-service"}));
    assert_eq!(
        (entry["kind"].as_str(), entry["resource_name"].as_str()),
        (Some("uploader"), Some(NAME))
    );
    assert_eq!(entry["namespace"], h.namespace.as_str());
    let validation = &entry["validation_parameters"];
    assert_eq!(validation["required_input_type"], "excel");
    assert_eq!(validation["filename_contains"], json!(["rv", "tools"]));
    assert_eq!(validation["filename_endswith"], json!([".xls", ".xlsx"]));
    assert_eq!(
        validation["required_sheets"][0],
        json!(["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"])
    );
    assert_eq!(validation["required_columns"], json!([["VM", "Host", "OS"]]));
    assert_eq!(validation["min_rows_number"], 1);
    assert_eq!(validation["header_starts_at"], 0);
    assert_eq!(validation["buffer"], 15000);
    assert_eq!(validation["regex_escape"], true);
    assert_eq!(validation["ignored_by_uup"], false);
    assert_eq!(validation["filename_valid_message"], "File is valid");
    assert_eq!(
        entry["encryption_parameters"],
        json!({"filepaths": null, "filecontent": null, "columns": null})
    );
    let app = h.wait_document("app/ifmp-service/ifmp-service").await;
    assert_eq!(app["uploaders"], json!(["rv_tools"]));
    let updated_at = entry["updated_at"].clone();

    // The owned Topics and their Kafka topics: one partition per possible replica.
    let topics = h.api::<Topic>();
    let events_topic = topics.get(&format!("{NAME}-events")).await.expect("events Topic");
    assert_eq!(events_topic.spec.topic_name.as_deref(), Some("ifmp-service.rv_tools.events"));
    assert_eq!(events_topic.spec.partitions, 3);
    let dlq_topic = topics.get(&format!("{NAME}-dlq")).await.expect("dlq Topic");
    assert_eq!(dlq_topic.spec.topic_name.as_deref(), Some("ifmp-service.rv_tools.dlq"));
    assert_eq!(h.partitions(&events).await, Some(3));
    assert_eq!(h.partitions(&dlq).await, Some(1));
    for owned in [events_topic.owner_references(), dlq_topic.owner_references()] {
        assert_eq!(owned[0].uid, uploader.uid().expect("uid"));
    }

    // The worker's ConfigMap.
    let config_map = h.api::<ConfigMap>().get(&format!("{NAME}-worker")).await.expect("ConfigMap");
    let file: serde_json::Value =
        serde_yaml::from_str(&config_map.data.expect("data")["worker.yaml"]).expect("YAML");
    assert_eq!(file["appId"], "ifmp-service");
    assert_eq!(file["uploaderId"], "rv_tools");
    assert_eq!(file["eventsTopic"], events.as_str());
    assert_eq!(file["dlqTopic"], dlq.as_str());
    assert_eq!(file["consumerGroup"], format!("{}ifmp-service.rv_tools.worker", h.prefix));
    assert_eq!(file["spec"]["validation"]["requiredColumns"], json!([["VM", "Host", "OS"]]));

    // The worker Deployment, as the apiserver stored it.
    let deployments = h.api::<Deployment>();
    let deployment = deployments.get(&format!("{NAME}-worker")).await.expect("Deployment");
    let managers: Vec<String> =
        deployment.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
    assert!(managers.iter().any(|m| m == "licenseware-operator"), "{managers:?}");
    assert!(managers.iter().any(|m| m == "licenseware-operator/scaler"), "{managers:?}");
    let spec = deployment.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(0));
    let template = spec.template;
    let hash = template.metadata.as_ref().expect("meta").annotations.as_ref().expect("annotations")
        ["licenseware.io/config-hash"]
        .clone();
    assert_eq!(hash.len(), 64);
    let pod = template.spec.expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.security_context.as_ref().and_then(|s| s.run_as_non_root), Some(true));
    let container = &pod.containers[0];
    assert_eq!(container.args.as_deref(), Some(&["consume".to_owned()][..]));
    assert!(
        container
            .image
            .as_deref()
            .expect("image")
            .starts_with("ghcr.io/licenseware/licenseware-worker:")
    );
    let security = container.security_context.clone().expect("securityContext");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_owned()]));
    assert_eq!(security.seccomp_profile.map(|s| s.type_).as_deref(), Some("RuntimeDefault"));
    let volumes = pod.volumes.expect("volumes");
    let uploads = volumes.iter().find(|v| v.name == "uploads").expect("uploads volume");
    assert_eq!(
        uploads.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()),
        Some("licenseware-uploads")
    );
    assert!(volumes.iter().any(|v| v.name == "tmp" && v.empty_dir.is_some()));
    let mounts = container.volume_mounts.clone().expect("mounts");
    assert!(mounts.iter().any(|m| m.name == "uploads" && m.mount_path == "/uploads"));
    assert!(mounts.iter().any(|m| m.name == "tmp" && m.mount_path == "/tmp"));

    // A spec change rolls the pods: the template's hash follows the ConfigMap.
    h.api::<Uploader>()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"validation": {"minRowsNumber": 2}}})),
        )
        .await
        .expect("patch");
    h.ready().await;
    eventually(WAIT, "the config hash to change", || {
        let deployments = deployments.clone();
        let hash = hash.clone();
        async move {
            let deployment = deployments.get(&format!("{NAME}-worker")).await.ok()?;
            let now = deployment
                .spec?
                .template
                .metadata?
                .annotations?
                .remove("licenseware.io/config-hash")?;
            (now != hash).then_some(())
        }
    })
    .await;

    // The registry follows the spec: a new document, with a new updated_at.
    let changed = eventually(WAIT, "the registry entry to follow the spec", || async {
        let entry = h.document(REGISTRY_KEY).await?;
        (entry["validation_parameters"]["min_rows_number"] == 2).then_some(entry)
    })
    .await;
    assert_ne!(changed["updated_at"], updated_at);
    // Reconciles that change nothing write nothing (the poll requeues every second).
    let observed = h.ready().await.status.expect("status").observed_generation;
    h.api::<Uploader>()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"worker": {"maxAttempts": 7}}})),
        )
        .await
        .expect("patch");
    let again = h.ready().await;
    assert_ne!(again.status.expect("status").observed_generation, observed);
    assert_eq!(h.wait_document(REGISTRY_KEY).await["updated_at"], changed["updated_at"]);

    // registrable: false removes the entry (the app's goes with it) and the finalizer,
    // and the Uploader stays Ready; true brings both back.
    let uploaders = h.api::<Uploader>();
    let set_registrable = |registrable: bool| {
        let uploaders = uploaders.clone();
        async move {
            uploaders
                .patch(
                    NAME,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"registrable": registrable}})),
                )
                .await
                .expect("patch");
        }
    };
    set_registrable(false).await;
    let off = h.registered("NotRegistrable").await;
    h.wait_no_document(REGISTRY_KEY).await;
    h.wait_no_document("app/ifmp-service/ifmp-service").await;
    eventually(WAIT, "the finalizer to be removed", || async {
        let uploader = h.api::<Uploader>().get(NAME).await.ok()?;
        (!uploader.finalizers().iter().any(|f| f == FINALIZER)).then_some(())
    })
    .await;
    assert!(off.status.is_some());
    set_registrable(true).await;
    let on = h.ready().await;
    assert!(on.finalizers().iter().any(|f| f == FINALIZER), "{:?}", on.finalizers());
    h.wait_document(REGISTRY_KEY).await;

    // Deleting the Uploader: the finalizer removes the registry entry, then
    // kube-controller-manager's garbage collector removes what it owned.
    h.api::<Uploader>().delete(NAME, &DeleteParams::default()).await.expect("delete");
    h.wait_no_document(REGISTRY_KEY).await;
    h.wait_no_document("app/ifmp-service/ifmp-service").await;
    eventually(WAIT, "the Uploader to be gone", || async {
        h.api::<Uploader>().get_opt(NAME).await.ok()?.is_none().then_some(())
    })
    .await;
    let (topics, config_maps) = (h.api::<Topic>(), h.api::<ConfigMap>());
    eventually(WAIT, "the owned objects to be garbage-collected", || {
        let (topics, config_maps, deployments) =
            (topics.clone(), config_maps.clone(), deployments.clone());
        async move {
            let worker = format!("{NAME}-worker");
            let gone = topics.get_opt(&format!("{NAME}-events")).await.ok()?.is_none()
                && topics.get_opt(&format!("{NAME}-dlq")).await.ok()?.is_none()
                && config_maps.get_opt(&worker).await.ok()?.is_none()
                && deployments.get_opt(&worker).await.ok()?.is_none();
            gone.then_some(())
        }
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn lag_scales_the_worker_up_and_the_cooldown_back_to_zero() {
    const EVENTS: i64 = 11;
    let h = Harness::start().await;
    // 3 partitions, 2 events per replica, 2 s cooldown.
    h.create_rv_tools(json!({
        "minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2, "cooldownSeconds": 2
    }))
    .await;
    h.ready().await;
    h.scaled_to(0, 0).await;
    let events = format!("{}ifmp-service.rv_tools.events", h.prefix);

    // Events with no consumer: ceil(11 / 2) = 6 replicas, capped at 3 partitions.
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &h.brokers).create().expect("producer");
    for i in 0..EVENTS {
        let key = format!("event-{i}");
        let payload = json!({"schema": "ProcessingEvent:1", "data": {"event_id": key}}).to_string();
        let partition = i32::try_from(i % 3).expect("small");
        producer
            .send(BaseRecord::to(&events).key(&key).payload(&payload).partition(partition))
            .map_err(|(error, _)| error)
            .expect("queue event");
    }
    producer.flush(KAFKA_TIMEOUT).expect("flush");
    let scaled = h.scaled_to(3, EVENTS).await;
    assert!(scaled.status.expect("status").last_scale_time.is_some());
    let metrics = h.metrics().await;
    let series = format!("{{namespace=\"{}\",uploader=\"{NAME}\"}}", h.namespace);
    assert!(metrics.contains(&format!("licenseware_uploader_lag{series} {EVENTS}")), "{metrics}");
    assert!(
        metrics.contains(&format!("licenseware_uploader_desired_replicas{series} 3")),
        "{metrics}"
    );

    // The group commits everything: lag 0, then zero replicas once the cooldown passed.
    let group = format!("{}ifmp-service.rv_tools.worker", h.prefix);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &h.brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let brokers_topic = events.clone();
    tokio::task::spawn_blocking(move || {
        let mut offsets = TopicPartitionList::new();
        for partition in 0..3 {
            let (_, high) = consumer
                .fetch_watermarks(&brokers_topic, partition, KAFKA_TIMEOUT)
                .expect("watermarks");
            offsets
                .add_partition_offset(&brokers_topic, partition, Offset::Offset(high))
                .expect("offset");
        }
        consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    })
    .await
    .expect("commit task");
    h.scaled_to(0, 0).await;
    h.stop().await;
}
