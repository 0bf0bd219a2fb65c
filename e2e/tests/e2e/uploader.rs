//! The Uploader controller and the lag scaler against the real stack: each test runs
//! its own operator in-process, watching a fresh namespace with a unique topic prefix,
//! a unique registry database and a one-second poll interval, and reads the results
//! back from the apiserver, from Kafka and from MongoDB.

use std::time::Duration;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use licenseware_e2e::{
    KAFKA_TIMEOUT, OperatorUnderTest, Options, eventually,
    kube::{Expected, create_custom, merge_patch, wait_condition},
};
use licenseware_operator::{
    config::WorkerConfig,
    crds::{Topic, Uploader},
};
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
    producer::{BaseProducer, BaseRecord, Producer},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const NAME: &str = "rv-tools";
const REGISTRY_KEY: &str = "uploader/ifmp-service/rv_tools";
const FINALIZER: &str = "licenseware.io/registry";

/// One operator, one namespace, one topic prefix, one registry database.
async fn start() -> OperatorUnderTest {
    let workers = WorkerConfig {
        poll_interval_secs: 1,
        scale_down_stabilization_secs: 2,
        ..WorkerConfig::default()
    };
    OperatorUnderTest::start(Options::new("uploader").own_registry().workers(workers)).await
}

/// The RVTools uploader of DESIGN.md, with `worker` as its worker block.
async fn create_rv_tools(h: &OperatorUnderTest, worker: serde_json::Value) -> Uploader {
    let manifest = json!({
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
    });
    create_custom(&h.api::<Uploader>(), "Uploader", manifest).await
}

/// Waits until the Uploader is Ready for its latest generation, with TopicReady,
/// WorkerReady and Registered True too.
async fn ready(h: &OperatorUnderTest) -> Uploader {
    registered(h, "Reconciled").await
}

/// [`ready`], with `Registered` True for `reason` (`Reconciled` or
/// `NotRegistrable`).
async fn registered(h: &OperatorUnderTest, reason: &str) -> Uploader {
    let api = h.api::<Uploader>();
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
            (all_true && registered && status.observed_generation == uploader.metadata.generation)
                .then_some(uploader)
        }
    })
    .await
}

/// Waits for the worker Deployment to have `replicas` and the status to say so,
/// with `lag`.
async fn scaled_to(h: &OperatorUnderTest, replicas: i32, lag: i64) -> Uploader {
    let uploaders = h.api::<Uploader>();
    let deployments = h.api::<Deployment>();
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

#[tokio::test]
async fn rv_tools_uploader_gets_its_topics_config_and_a_hardened_worker() {
    let h = start().await;
    create_rv_tools(&h, json!({"maxReplicas": 3, "lagPerReplica": 2, "cooldownSeconds": 2})).await;
    let uploader = ready(&h).await;
    let events = format!("{}ifmp-service.rv_tools.events", h.prefix);
    let dlq = format!("{}ifmp-service.rv_tools.dlq", h.prefix);
    let status = uploader.status.clone().expect("status");
    assert_eq!(status.topic_name.as_deref(), Some(events.as_str()));
    assert_eq!(status.dlq_topic_name.as_deref(), Some(dlq.as_str()));
    // The scaler loop's first reading: idle, scaled to zero.
    scaled_to(&h, 0, 0).await;
    assert!(uploader.finalizers().iter().any(|f| f == FINALIZER), "{:?}", uploader.finalizers());

    // The registry document, in the SDK's NewUploader metadata shape.
    let entry = h.registry().wait_document(REGISTRY_KEY, WAIT).await;
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
        "worker",
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
    // parrent_app: the whole app metadata, stamped with the entry's time.
    assert_eq!(entry["parrent_app"]["app_id"], "ifmp-service");
    assert_eq!(entry["parrent_app"]["name"], "Ifmp Service");
    assert_eq!(entry["parrent_app"]["status"], "available");
    assert_eq!(entry["parrent_app"]["datatables_url"], "/datatables");
    assert_eq!(entry["parrent_app"]["updated_at"], entry["updated_at"]);
    assert_eq!(entry["parrent_app"].as_object().expect("parrent_app").len(), 13);
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
    // No encryption on the Uploader: null, as the SDK's default None.
    assert_eq!(entry["encryption_parameters"], serde_json::Value::Null);
    let typed = h.registry().typed_document(REGISTRY_KEY).await.expect("typed document");
    let typed_uploader = typed.entry.as_uploader().expect("an uploader entry").clone();
    assert_eq!(typed_uploader.worker.events_topic, events);
    let app = h.registry().wait_document("app/ifmp-service/ifmp-service", WAIT).await;
    assert_eq!(app["uploaders"], json!(["rv_tools"]));
    let updated_at = entry["updated_at"].clone();

    // The owned Topics and their Kafka topics: one partition per possible replica.
    let topics = h.api::<Topic>();
    let events_topic = topics.get(&format!("{NAME}-events")).await.expect("events Topic");
    assert_eq!(events_topic.spec.topic_name.as_deref(), Some("ifmp-service.rv_tools.events"));
    assert_eq!(events_topic.spec.partitions, 3);
    let dlq_topic = topics.get(&format!("{NAME}-dlq")).await.expect("dlq Topic");
    assert_eq!(dlq_topic.spec.topic_name.as_deref(), Some("ifmp-service.rv_tools.dlq"));
    assert_eq!(h.kafka.partitions(&events).await, Some(3));
    assert_eq!(h.kafka.partitions(&dlq).await, Some(1));
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
    // The registry entry's `worker` is exactly the ConfigMap's worker.yaml.
    assert_eq!(entry["worker"], file);
    assert_eq!(serde_json::to_value(&typed_uploader.worker).expect("JSON"), file);

    // The worker Deployment, as the apiserver stored it.
    let deployments = h.api::<Deployment>();
    let deployment = deployments.get(&format!("{NAME}-worker")).await.expect("Deployment");
    let managers: Vec<String> =
        deployment.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
    // Created at minReplicas by the reconcile alone: never at the apiserver's default of
    // one then scaled down, and no second write while the scaler has nothing to change.
    assert_eq!(managers, ["licenseware-operator"], "{managers:?}");
    let spec = deployment.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(0));
    assert_eq!(deployment.metadata.generation, Some(1), "the worker's replicas never changed");
    let (hash, pod, container) = licenseware_e2e::worker::assert_hardened_worker(&spec);
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
    merge_patch(&h.api::<Uploader>(), NAME, json!({"spec": {"validation": {"minRowsNumber": 2}}}))
        .await;
    ready(&h).await;
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

    // Children are applied only when they would change, but an edit of the worker's
    // spec by someone else (a new generation) is reverted at once, not at the resync.
    let worker_name = format!("{NAME}-worker");
    let image = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers[0].image.clone())
    };
    let original = image(&deployments.get(&worker_name).await.expect("worker"));
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "worker", "image": "example.com/someone-elses:image"}
    ]}}}});
    merge_patch(&deployments, &worker_name, patch).await;
    eventually(WAIT, "the edited worker image to be reverted", || {
        let deployments = deployments.clone();
        let (original, worker_name) = (original.clone(), worker_name.clone());
        async move {
            let now = deployments.get(&worker_name).await.ok()?;
            (image(&now) == original).then_some(())
        }
    })
    .await;

    // So is an edit of the ConfigMap's data (its resourceVersion moves) and a label
    // taken off the Deployment (its generation does not): at once, not at the resync
    // (120 s here) nor at the safety re-apply, ten resyncs later.
    let config_maps = h.api::<ConfigMap>();
    let worker_yaml =
        |map: &ConfigMap| map.data.as_ref().and_then(|d| d.get("worker.yaml")).cloned();
    let rendered = worker_yaml(&config_maps.get(&worker_name).await.expect("ConfigMap"));
    merge_patch(&config_maps, &worker_name, json!({"data": {"worker.yaml": "tampered: true"}}))
        .await;
    merge_patch(
        &deployments,
        &worker_name,
        json!({"metadata": {"labels": {"app.kubernetes.io/name": null}}}),
    )
    .await;
    eventually(WAIT, "the edited ConfigMap and the Deployment's label to be restored", || {
        let (config_maps, deployments) = (config_maps.clone(), deployments.clone());
        let (rendered, worker_name) = (rendered.clone(), worker_name.clone());
        async move {
            let map = config_maps.get(&worker_name).await.ok()?;
            let deployment = deployments.get(&worker_name).await.ok()?;
            let labelled = deployment.labels().contains_key("app.kubernetes.io/name");
            (worker_yaml(&map) == rendered && labelled).then_some(())
        }
    })
    .await;
    // A child deleted behind the operator's back is made again at once.
    config_maps.delete(&worker_name, &Default::default()).await.expect("delete the ConfigMap");
    eventually(WAIT, "the deleted ConfigMap to be made again", || {
        let (config_maps, rendered, worker_name) =
            (config_maps.clone(), rendered.clone(), worker_name.clone());
        async move {
            let map = config_maps.get_opt(&worker_name).await.ok()??;
            (map.metadata.deletion_timestamp.is_none() && worker_yaml(&map) == rendered)
                .then_some(())
        }
    })
    .await;

    // The registry follows the spec: a new document, with a new updated_at.
    let changed = eventually(WAIT, "the registry entry to follow the spec", || async {
        let entry = h.registry().document(REGISTRY_KEY).await?;
        (entry["validation_parameters"]["min_rows_number"] == 2).then_some(entry)
    })
    .await;
    assert_ne!(changed["updated_at"], updated_at);
    // The entry carries the worker's config, so a worker change reaches it too.
    let observed = ready(&h).await.status.expect("status").observed_generation;
    merge_patch(&h.api::<Uploader>(), NAME, json!({"spec": {"worker": {"maxAttempts": 7}}})).await;
    let again = ready(&h).await;
    assert_ne!(again.status.expect("status").observed_generation, observed);
    let with_worker = eventually(WAIT, "the registry entry to carry the worker change", || async {
        let entry = h.registry().document(REGISTRY_KEY).await?;
        (entry["worker"]["maxAttempts"] == 7).then_some(entry)
    })
    .await;
    assert_ne!(with_worker["updated_at"], changed["updated_at"]);
    // Reconciles that change nothing write nothing (the scaler ticks every second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        h.registry().wait_document(REGISTRY_KEY, WAIT).await["updated_at"],
        with_worker["updated_at"]
    );

    // registrable: false removes the entry (the app's goes with it) and the finalizer,
    // and the Uploader stays Ready; true brings both back.
    let uploaders = h.api::<Uploader>();
    let set_registrable = |registrable: bool| {
        let uploaders = uploaders.clone();
        async move {
            merge_patch(&uploaders, NAME, json!({"spec": {"registrable": registrable}})).await;
        }
    };
    set_registrable(false).await;
    let off = registered(&h, "NotRegistrable").await;
    h.registry().wait_no_document(REGISTRY_KEY, WAIT).await;
    h.registry().wait_no_document("app/ifmp-service/ifmp-service", WAIT).await;
    eventually(WAIT, "the finalizer to be removed", || async {
        let uploader = h.api::<Uploader>().get(NAME).await.ok()?;
        (!uploader.finalizers().iter().any(|f| f == FINALIZER)).then_some(())
    })
    .await;
    assert!(off.status.is_some());
    set_registrable(true).await;
    let on = ready(&h).await;
    assert!(on.finalizers().iter().any(|f| f == FINALIZER), "{:?}", on.finalizers());
    h.registry().wait_document(REGISTRY_KEY, WAIT).await;

    // Deleting the Uploader: the finalizer removes the registry entry, then
    // kube-controller-manager's garbage collector removes what it owned.
    h.api::<Uploader>().delete(NAME, &DeleteParams::default()).await.expect("delete");
    h.registry().wait_no_document(REGISTRY_KEY, WAIT).await;
    h.registry().wait_no_document("app/ifmp-service/ifmp-service", WAIT).await;
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
    let h = start().await;
    // 3 partitions, 2 events per replica, 2 s cooldown.
    create_rv_tools(
        &h,
        json!({
            "minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2, "cooldownSeconds": 2
        }),
    )
    .await;
    ready(&h).await;
    scaled_to(&h, 0, 0).await;
    let events = format!("{}ifmp-service.rv_tools.events", h.prefix);

    // Events with no consumer: ceil(11 / 2) = 6 replicas, capped at 3 partitions.
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", h.kafka.brokers()).create().expect("producer");
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
    let scaled = scaled_to(&h, 3, EVENTS).await;
    assert!(scaled.status.expect("status").last_scale_time.is_some());
    // The first scale took `replicas` from the reconcile: an edit that rolls the worker's
    // template is applied without it, so the scaled count stays.
    let deployments = h.api::<Deployment>();
    let worker = deployments.get(&format!("{NAME}-worker")).await.expect("Deployment");
    let managers: Vec<String> =
        worker.managed_fields().iter().filter_map(|m| m.manager.clone()).collect();
    assert!(managers.iter().any(|m| m == "licenseware-operator/scaler"), "{managers:?}");
    let limits = json!({"spec": {"worker": {"resources": {"limits": {"memory": "300Mi"}}}}});
    h.api::<Uploader>()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&limits))
        .await
        .expect("edit the worker's resources");
    let rolled = eventually(WAIT, "the worker's template rolled", || {
        let deployments = deployments.clone();
        async move {
            let worker = deployments.get(&format!("{NAME}-worker")).await.ok()?;
            let spec = worker.spec.clone()?;
            let container = spec.template.spec?.containers.into_iter().next()?;
            let memory = container.resources?.limits?.get("memory")?.0.clone();
            (memory == "300Mi").then_some(spec.replicas)
        }
    })
    .await;
    assert_eq!(rolled, Some(3), "the reconcile's apply left the scaler's replicas alone");
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
        .set("bootstrap.servers", h.kafka.brokers())
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
    scaled_to(&h, 0, 0).await;
    h.stop().await;
}

/// The figure of `series` in a `/metrics` body.
fn figure(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

/// Scaler figures of one `/metrics` body: ticks, lag batches, lag reads, Metadata calls.
async fn scaler_figures(h: &OperatorUnderTest) -> [u64; 4] {
    let body = h.metrics().await;
    [
        figure(&body, "licenseware_scaler_ticks_total"),
        figure(&body, "licenseware_scaler_lag_batches_total"),
        figure(&body, "licenseware_scaler_lag_reads_total"),
        figure(&body, "licenseware_scaler_kafka_requests_total{call=\"metadata\"}"),
    ]
}

/// The scaler is a loop of its own: each tick reads the lag of every Uploader in one
/// batch (one Metadata request, whatever their number) and scales them all.
#[tokio::test]
async fn the_scaler_reads_every_uploaders_lag_in_one_batch_per_tick() {
    const NAMES: [&str; 3] = ["batch-a", "batch-b", "batch-c"];
    let h = start().await;
    for name in NAMES {
        let manifest = json!({
            "metadata": {"name": name},
            "spec": {
                "appId": "batch", "name": name, "acceptedFileTypes": [".csv"],
                "worker": {"minReplicas": 0, "maxReplicas": 1}
            }
        });
        create_custom(&h.api::<Uploader>(), "Uploader", manifest).await;
    }
    // Every Uploader's lag read and its worker scaled to zero by the loop.
    let uploaders = h.api::<Uploader>();
    eventually(WAIT, "every Uploader scaled to zero at lag 0", || {
        let uploaders = uploaders.clone();
        async move {
            for name in NAMES {
                let status = uploaders.get(name).await.ok()?.status?;
                (status.replicas == Some(0) && status.lag == Some(0)).then_some(())?;
            }
            Some(())
        }
    })
    .await;
    let [ticks, batches, reads, metadata] = scaler_figures(&h).await;
    let after = eventually(WAIT, "three more scaler ticks", || async {
        let figures = scaler_figures(&h).await;
        (figures[0] >= ticks + 3).then_some(figures)
    })
    .await;
    let ticked = after[0] - ticks;
    let batched = after[1] - batches;
    // A tick counts its batch when it reads and itself when it ends: at most one apart.
    assert!(batched + 1 >= ticked && batched <= ticked + 1, "{ticked} ticks, {batched} batches");
    assert_eq!(after[2] - reads, 3 * batched, "every batch carries the three Uploaders");
    assert_eq!(after[3] - metadata, batched, "one Metadata request per batch");
    h.stop().await;
}

#[tokio::test]
async fn an_events_topic_schema_that_refuses_the_api_event_makes_the_uploader_not_ready() {
    let h = start().await;
    create_rv_tools(&h, json!({})).await;
    ready(&h).await;
    let topics = h.api::<Topic>();
    let schema = |json_schema: serde_json::Value| json!({"spec": {"schema": {"id": "ProcessingEvent", "version": 1, "jsonSchema": json_schema}}});
    // A schema the API's events do not satisfy: Ready=False, the violation named; the
    // entry stays and carries the schema, so the API refuses uploads saying why.
    merge_patch(&topics, "rv-tools-events", schema(json!({"required": ["authorization"]}))).await;
    let refused = wait_condition(
        &h.api::<Uploader>(),
        NAME,
        Expected::new("Ready", "False", "EventSchemaRefused"),
        WAIT,
    )
    .await;
    assert!(refused.message.contains("authorization"), "{}", refused.message);
    let entry = h.registry().wait_document(REGISTRY_KEY, WAIT).await;
    assert_eq!(
        entry["worker"]["eventsTopicSchema"]["jsonSchema"]["required"],
        json!(["authorization"])
    );
    // One they satisfy: Ready again.
    let accepting = json!({"type": "object", "required": ["tenant_id", "event_id", "filepaths"]});
    merge_patch(&topics, "rv-tools-events", schema(accepting)).await;
    ready(&h).await;
    h.stop().await;
}
