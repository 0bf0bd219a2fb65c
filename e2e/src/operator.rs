//! The operator under test, run in-process: `licenseware_operator::serve` on a
//! free probe port, stopped through a oneshot.

use std::{net::SocketAddr, time::Duration};

use k8s_openapi::NamespaceResourceScope;
use kube::{Api, Client, Resource};
use licenseware_operator::config::{
    Config, LeaderConfig, LogFormat, TopicSafetyConfig, WorkerConfig,
};
use licenseware_operator::crds::kafka_security::KafkaSecurityArgs;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    Stack,
    kafka::Kafka,
    kube::{delete_namespace, fresh_namespace, install_crds},
    registry::RegistryReader,
    unique_name,
};

/// The configuration the tests start from: the stack's servers, text logs, a
/// readiness check every 5 s, a resync every 120 s, the default registry database,
/// default workers and no leader election.
pub fn config(stack: Stack, probe_addr: SocketAddr, namespace: &str, topic_prefix: &str) -> Config {
    Config {
        kafka_brokers: stack.kafka_brokers,
        kafka_security: Default::default(),
        mongo_url: stack.mongo_url,
        redis_url: stack.redis_url,
        probe_addr,
        readiness_interval_secs: 5,
        log_format: LogFormat::Text,
        namespaces: vec![namespace.to_owned()],
        topic_prefix: topic_prefix.to_owned(),
        resync_interval_secs: 120,
        registry_database: None,
        topics: TopicSafetyConfig::default(),
        workers: WorkerConfig::default(),
        leader: LeaderConfig::disabled(),
    }
}

/// A running `licenseware_operator::serve`.
#[derive(Debug)]
pub struct InProcessOperator {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), licenseware_operator::Error>>>,
}

impl InProcessOperator {
    /// Spawns the operator with `config`, serving its probes on `listener`.
    pub fn spawn(config: Config, listener: TcpListener) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(licenseware_operator::serve(config, listener, async {
            let _ = stopped.await;
        }));
        Self { stop: Some(stop), task: Some(task) }
    }

    /// Tells the operator to stop; `false` when it was no longer listening.
    pub fn signal_stop(&mut self) -> bool {
        self.stop.take().is_some_and(|stop| stop.send(()).is_ok())
    }

    /// Tells the operator to stop and asserts that it stops cleanly within `timeout`.
    pub async fn stop(mut self, timeout: Duration) {
        let _ = self.signal_stop();
        if let Some(task) = self.task.take() {
            let outcome = tokio::time::timeout(timeout, task)
                .await
                .unwrap_or_else(|_| panic!("operator stops within {timeout:?}"))
                .expect("operator task did not panic");
            assert!(outcome.is_ok(), "{outcome:?}");
        }
    }
}

/// How [`OperatorUnderTest::start`] configures the operator.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of the namespace's (and the registry database's) unique name.
    pub name: &'static str,
    pub resync_interval_secs: u64,
    /// A registry database of the test's own (else the operator's default).
    pub own_registry: bool,
    pub workers: WorkerConfig,
    pub topics: TopicSafetyConfig,
    /// Other brokers and their security (e.g. the stack's SASL_SSL listener); `None`:
    /// the stack's PLAINTEXT listener.
    pub kafka: Option<(String, KafkaSecurityArgs)>,
}

impl Options {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            resync_interval_secs: 120,
            own_registry: false,
            workers: WorkerConfig::default(),
            topics: TopicSafetyConfig::default(),
            kafka: None,
        }
    }

    /// The operator connects to `brokers` with `security` (the tests' own Kafka
    /// handle stays on the PLAINTEXT listener).
    /// The workers' Deployments mount the files from a Secret `kafka-files`.
    pub fn kafka(mut self, brokers: &str, security: KafkaSecurityArgs) -> Self {
        self.kafka = Some((brokers.to_owned(), security));
        self.workers.kafka_files_secret = Some("kafka-files".to_owned());
        self
    }

    pub fn topics(mut self, topics: TopicSafetyConfig) -> Self {
        self.topics = topics;
        self
    }

    pub fn resync_interval_secs(mut self, secs: u64) -> Self {
        self.resync_interval_secs = secs;
        self
    }

    pub fn own_registry(mut self) -> Self {
        self.own_registry = true;
        self
    }

    pub fn workers(mut self, workers: WorkerConfig) -> Self {
        self.workers = workers;
        self
    }
}

/// One in-process operator watching a fresh namespace, with a unique topic prefix
/// (and, if asked, a registry database of its own).
pub struct OperatorUnderTest {
    pub client: Client,
    pub namespace: String,
    /// The topic prefix, ending with `.`.
    pub prefix: String,
    /// `http://` and the probe address.
    pub probe: String,
    pub kafka: Kafka,
    registry: Option<RegistryReader>,
    operator: InProcessOperator,
}

impl std::fmt::Debug for OperatorUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorUnderTest")
            .field("namespace", &self.namespace)
            .field("prefix", &self.prefix)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl OperatorUnderTest {
    /// Installs the CRDs, creates the namespace and starts the operator.
    pub async fn start(options: Options) -> Self {
        let stack = Stack::from_env();
        let client = Client::try_default().await.expect("kubeconfig");
        install_crds(&client).await;
        let namespace = fresh_namespace(&client, options.name).await;
        let prefix = format!("{}.", unique_name("e2e"));
        let kafka = Kafka::new(&stack.kafka_brokers);
        let database = options.own_registry.then(|| unique_name(options.name).replace('-', "_"));
        let registry = match &database {
            Some(database) => Some(RegistryReader::connect(&stack.mongo_url, database).await),
            None => None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
        let probe_addr = listener.local_addr().expect("addr");
        let plain = config(stack, probe_addr, &namespace, &prefix);
        let (kafka_brokers, kafka_security) = match options.kafka {
            Some(kafka) => kafka,
            None => (plain.kafka_brokers.clone(), plain.kafka_security.clone()),
        };
        let config = Config {
            kafka_brokers,
            kafka_security,
            resync_interval_secs: options.resync_interval_secs,
            registry_database: database,
            workers: options.workers,
            topics: options.topics,
            ..plain
        };
        let operator = InProcessOperator::spawn(config, listener);
        Self {
            client,
            namespace,
            prefix,
            probe: format!("http://{probe_addr}"),
            kafka,
            registry,
            operator,
        }
    }

    /// The Api of kind `K` in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The operator's registry; panics unless started with [`Options::own_registry`].
    pub fn registry(&self) -> &RegistryReader {
        self.registry.as_ref().expect("started with its own registry database")
    }

    /// The body of the operator's `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.probe))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// One counter of the operator's `/metrics`.
    pub async fn metric(&self, series: &str) -> u64 {
        let body = self.metrics().await;
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {body}"))
    }

    /// Stops the operator (cleanly, within 30 s), then deletes the namespace and the
    /// registry collection.
    pub async fn stop(self) {
        self.operator.stop(Duration::from_secs(30)).await;
        delete_namespace(&self.client, &self.namespace).await;
        if let Some(registry) = &self.registry {
            registry.drop_collection().await;
        }
    }
}
