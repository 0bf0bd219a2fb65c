//! The operator binary as a process: killed half-way it converges once restarted, and
//! with two replicas only the Lease holder reconciles until it goes.
//!
//! Each test builds `licenseware-operator` (`cargo build -p licenseware-operator`, a
//! no-op when it is fresh; `LW_OPERATOR_BIN` names another binary), then runs it as child
//! processes watching a fresh namespace, with a unique topic prefix, registry database
//! and Lease, and a free probe port each.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams},
};
use licenseware_e2e::{
    Kafka, RegistryReader, Stack, eventually,
    kube::{
        create_custom, delete_namespace, fresh_namespace, install_crds, names_true_and_current,
    },
    operator_process::{OperatorProcess as Operator, Setup},
    unique_name,
};
use licenseware_operator::crds::{Topic, Uploader};
use mongodb::bson::Document;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const TOPICS: usize = 30;
const UPLOADERS: usize = 3;
const APP: &str = "restart-app";

/// The test's namespace, prefix and clients; the namespace and registry database are
/// removed when dropped.
pub(crate) struct Harness {
    client: Client,
    pub(crate) setup: Setup,
    kafka: Kafka,
    registry: RegistryReader,
}

impl Harness {
    pub(crate) async fn start(name: &str) -> Self {
        let stack = Stack::from_env();
        let client = Client::try_default().await.expect("kubeconfig");
        install_crds(&client).await;
        let namespace = fresh_namespace(&client, name).await;
        let database = unique_name("restart").replace('-', "_");
        let registry = RegistryReader::connect(&stack.mongo_url, &database).await;
        let kafka = Kafka::new(&stack.kafka_brokers);
        let setup = Setup {
            prefix: format!("{}.", unique_name("e2e")),
            lease: unique_name("lease"),
            namespace,
            database,
        };
        Self { client, setup, kafka, registry }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.setup.namespace)
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        let manifest = json!({
            "metadata": {"name": name},
            "spec": {"partitions": partitions, "deletionPolicy": "Delete"},
        });
        create_custom::<Topic>(&self.api(), "Topic", manifest).await;
    }

    async fn create_uploader(&self, index: usize) {
        let manifest = json!({
            "metadata": {"name": format!("uploader-{index}")},
            "spec": {
                "appId": APP,
                "uploaderId": format!("files_{index}"),
                "name": format!("Files {index}"),
                "acceptedFileTypes": [".csv"],
            }
        });
        create_custom::<Uploader>(&self.api(), "Uploader", manifest).await;
    }

    /// Names of the Topics and Uploaders that are Ready for their latest generation.
    async fn ready(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let topics = names_true_and_current(&self.api::<Topic>(), "Ready").await;
        let uploaders = names_true_and_current(&self.api::<Uploader>(), "Ready").await;
        (topics, uploaders)
    }

    /// Kafka topics under the test's prefix, with their partition counts.
    async fn kafka_topics(&self) -> BTreeMap<String, usize> {
        self.kafka.topics_with_prefix(&self.setup.prefix).await
    }

    async fn registry_documents(&self) -> Vec<Document> {
        self.registry.documents().await
    }

    pub(crate) async fn lease(&self) -> Option<Lease> {
        self.api::<Lease>().get_opt(&self.setup.lease).await.expect("get Lease")
    }

    pub(crate) async fn holder(&self) -> Option<String> {
        self.lease().await?.spec?.holder_identity.filter(|holder| !holder.is_empty())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let namespace = self.setup.namespace.clone();
        let database = self.setup.database.clone();
        // Drop cannot await, and the test's clients live on the test's runtime, which
        // this thread blocks: clean up with new clients on a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(client) = Client::try_default().await {
                    delete_namespace(&client, &namespace).await;
                }
                if let Ok(mongo) = mongodb::Client::with_uri_str(Stack::from_env().mongo_url).await
                {
                    let _ = mongo.database(&database).drop().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn partitions_of(index: usize) -> i32 {
    1 + (index % 3) as i32
}

#[tokio::test]
async fn killed_operator_converges_when_restarted() {
    let h = Harness::start("restart").await;
    let total = TOPICS + UPLOADERS;
    let mut first = Operator::start(&h.setup, "first");
    eventually(WAIT, "the first operator to lead", || async { h.holder().await }).await;
    // The objects come one at a time while it works, and it is killed at the first
    // Ready one: some are done, some half-way, some created after the kill. (All made
    // before it started, the operator's batching made them Ready together, and a kill
    // "half-way" found nothing left to do.)
    let mut killed = false;
    for index in 0..total {
        if index < TOPICS {
            h.create_topic(&format!("topic-{index:02}"), partitions_of(index)).await;
        } else {
            h.create_uploader(index - TOPICS).await;
        }
        if !killed && !h.ready().await.0.is_empty() {
            first.kill();
            killed = true;
        }
    }
    if !killed {
        eventually(WAIT, "a first Topic to be Ready", || async {
            let (topics, _) = h.ready().await;
            (!topics.is_empty()).then_some(())
        })
        .await;
        first.kill();
    }
    let (topics, uploaders) = h.ready().await;
    let ready_at_kill = topics.len() + uploaders.len();
    assert!(ready_at_kill < total + 2 * UPLOADERS, "everything was Ready before the kill");
    println!("SIGKILL with {} Topics and {} Uploaders Ready", topics.len(), uploaders.len());
    assert!(h.holder().await.is_some(), "the killed leader still holds the Lease");

    // The new process waits for the dead one's Lease to expire, then takes over.
    let second = Operator::start(&h.setup, "second");
    let (topics, uploaders) = eventually(WAIT, "every Topic and Uploader to be Ready", || async {
        let (topics, uploaders) = h.ready().await;
        (topics.len() == TOPICS + 2 * UPLOADERS && uploaders.len() == UPLOADERS)
            .then_some((topics, uploaders))
    })
    .await;
    assert_eq!(uploaders.len(), UPLOADERS);

    // Kafka: one topic per Topic resource with its partitions, plus the registry's.
    let resources = h.api::<Topic>().list(&ListParams::default()).await.expect("list").items;
    assert_eq!(resources.len(), topics.len());
    let mut expected: BTreeMap<String, usize> = resources
        .iter()
        .map(|t| {
            let name = t.status.as_ref().and_then(|s| s.topic_name.clone()).expect("topicName");
            (name, usize::try_from(t.spec.partitions).expect("partitions"))
        })
        .collect();
    assert_eq!(expected.len(), resources.len(), "two Topics share a Kafka topic");
    for index in 0..TOPICS {
        let name = format!("{}topic-{index:02}", h.setup.prefix);
        assert_eq!(expected.get(&name), Some(&(partitions_of(index) as usize)), "{name}");
    }
    let registry_topic = format!("{}licenseware.registry", h.setup.prefix);
    let in_kafka = h.kafka_topics().await;
    let registry_partitions = in_kafka.get(&registry_topic).copied();
    assert!(registry_partitions.is_some(), "no registry topic in {in_kafka:?}");
    expected.extend([(registry_topic, registry_partitions.unwrap_or_default())]);
    assert_eq!(in_kafka, expected);

    // The registry: one document per resource, none twice.
    let documents = h.registry_documents().await;
    let mut seen = BTreeSet::new();
    for document in &documents {
        let identity = (
            document.get_str("kind").unwrap_or_default().to_owned(),
            document.get_str("namespace").unwrap_or_default().to_owned(),
            document.get_str("resource_name").unwrap_or_default().to_owned(),
        );
        assert!(seen.insert(identity.clone()), "{identity:?} twice in {documents:?}");
    }
    let mut ids: Vec<&str> = documents.iter().filter_map(|d| d.get_str("_id").ok()).collect();
    ids.sort_unstable();
    let mut wanted: Vec<String> =
        (0..UPLOADERS).map(|index| format!("uploader/{APP}/files_{index}")).collect();
    wanted.push(format!("app/{APP}/{APP}"));
    wanted.sort();
    assert_eq!(ids, wanted);

    // The new process did the rest, as the leader.
    assert_eq!(second.sample("licenseware_leader").await, Some(1.0));
    let reconciled = second.sample("licenseware_reconciliations_total{kind=\"Topic\"}").await;
    assert!(reconciled.is_some_and(|count| count >= 1.0), "{reconciled:?}");
    h.api::<Topic>()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete Topics");
    h.api::<Uploader>()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete Uploaders");
    // Finalizers run: the Kafka topics of deletionPolicy Delete and the registry entries go.
    eventually(WAIT, "the Uploaders' registry entries to be removed", || async {
        let left = h.registry_documents().await;
        left.iter().all(|d| d.get_str("kind") != Ok("uploader")).then_some(())
    })
    .await;
    eventually(WAIT, "the Topics to be gone", || async {
        let left = h.api::<Topic>().list(&ListParams::default()).await.ok()?;
        left.items.iter().all(|t| !t.name_any().starts_with("topic-")).then_some(())
    })
    .await;
    stop_cleanly(&h, second).await;
}

/// SIGTERM: the process exits 0 and gives the Lease up.
async fn stop_cleanly(h: &Harness, mut operator: Operator) {
    operator.terminate();
    let status = operator.exited(Duration::from_secs(45)).await;
    assert!(status.success(), "exit status {status}; log:\n{}", operator.log());
    assert_eq!(h.holder().await, None, "the Lease is released on shutdown");
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let h = Harness::start("leader").await;
    let first = Operator::start(&h.setup, "first");
    first.wait_leader(true, WAIT).await;
    let first_holder = h.holder().await.expect("a holder");
    let mut second = Operator::start(&h.setup, "second");
    // The standby serves its probes and metrics, and says it does not lead.
    second.wait_leader(false, WAIT).await;
    let readyz = second.readyz().await.expect("/readyz");
    assert!(readyz["checks"].is_array(), "{readyz}");
    assert_eq!(second.sample("licenseware_leader").await, Some(0.0));

    h.create_topic("led-by-first", 1).await;
    eventually(WAIT, "led-by-first to be Ready", || async {
        h.ready().await.0.contains("led-by-first").then_some(())
    })
    .await;
    let topic_series = "licenseware_reconciliations_total{kind=\"Topic\"}";
    assert!(first.sample(topic_series).await.is_some_and(|count| count >= 1.0));
    assert_eq!(second.sample(topic_series).await, None, "the standby reconciled");
    assert_eq!(h.holder().await.as_deref(), Some(first_holder.as_str()));

    // The leader stops: it releases the Lease, and the standby takes over at once.
    let stopped = Instant::now();
    let first_log = stop_leader(&h, first).await;
    second.wait_leader(true, Duration::from_secs(20)).await;
    println!("the standby took over {:?} after SIGTERM", stopped.elapsed());
    let second_holder = h.holder().await.expect("a holder");
    assert_ne!(second_holder, first_holder);
    assert_eq!(second.sample("licenseware_leader").await, Some(1.0));
    h.create_topic("led-by-second", 2).await;
    eventually(WAIT, "led-by-second to be Ready", || async {
        h.ready().await.0.contains("led-by-second").then_some(())
    })
    .await;
    assert!(second.sample(topic_series).await.is_some_and(|count| count >= 1.0));

    // The reconcile span carries kind, namespace and name into the JSON log lines.
    let created = first_log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "created Kafka topic")
        .expect("a \"created Kafka topic\" line in the first leader's log");
    let span = created["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|span| span["name"] == "reconcile"))
        .unwrap_or_else(|| panic!("no reconcile span in {created}"));
    assert_eq!(span["kind"], "Topic", "{created}");
    assert_eq!(span["namespace"], json!(h.setup.namespace), "{created}");
    assert_eq!(span["resource_name"], "led-by-first", "{created}");

    h.api::<Topic>()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete Topics");
    eventually(WAIT, "the Topics to be gone", || async {
        h.api::<Topic>().list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;

    // Someone else takes the Lease: the leader notices at its next renewal, stops
    // and exits non-zero, so that its pod restarts and campaigns again.
    let lease = h.lease().await.expect("Lease");
    let mut spec = lease.spec.clone().unwrap_or_default();
    spec.holder_identity = Some("intruder".to_owned());
    let stolen = Lease { spec: Some(spec), ..lease };
    h.api::<Lease>()
        .replace(&h.setup.lease, &PostParams::default(), &stolen)
        .await
        .expect("take the Lease over");
    let status = second.exited(Duration::from_secs(20)).await;
    assert!(!status.success(), "a lost leader exits non-zero; log:\n{}", second.log());
    assert!(second.log().contains("leadership lost"), "{}", second.log());
}

/// SIGTERM to the leader: it exits 0 and the Lease is no longer its own. Returns its log.
async fn stop_leader(h: &Harness, mut operator: Operator) -> String {
    let holder = h.holder().await;
    operator.terminate();
    let status = operator.exited(Duration::from_secs(45)).await;
    assert!(status.success(), "exit status {status}; log:\n{}", operator.log());
    assert_ne!(h.holder().await, holder, "the Lease is released on shutdown");
    operator.log()
}
