//! A throwaway KRaft cluster of several brokers, for tests that stop a broker: the
//! same Kafka jars as the stack's (`e2e/stack/up` fetches them), its own ports and a
//! temporary directory, so the shared stack's single broker is never touched. Every
//! node is broker and controller (static voters): stopping one of three keeps the
//! quorum. Dropping the cluster kills its processes and removes its files.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use licenseware_operator::kafka::{KafkaClient, WireSecurity};

/// A fixed cluster id: each cluster lives in its own directory and ports.
const CLUSTER_ID: &str = "TGljZW5zZXdhcmVFMkVLUg";
/// Startup of three JVMs on a small, shared machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// One node: its id, client port and process (None once stopped).
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    process: Option<Child>,
    log: PathBuf,
}

/// The running cluster. Dropping it kills every node.
#[derive(Debug)]
pub struct KafkaCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

/// The stack's Kafka class path, from the `kafka-run-class` script `e2e/stack/up`
/// writes (it names the cached jars).
fn kafka_class_path() -> String {
    let stack = std::env::var("LW_STACK_DIR")
        .expect("LW_STACK_DIR is not set: run e2e/stack/up and load e2e/.stack/env");
    let script = Path::new(&stack).join("bin/kafka-run-class");
    let text = std::fs::read_to_string(&script)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", script.display()));
    let start = text.find("-cp '").expect("the class path in kafka-run-class") + 5;
    let end = text[start..].find('\'').expect("the end of the class path") + start;
    text[start..end].to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn java(class_path: &str, log: &Path) -> Command {
    let mut command = Command::new("java");
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    command
        .args(["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-Djava.awt.headless=true")
        .args(["-cp", class_path])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    command
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl KafkaCluster {
    /// Starts `size` nodes and waits until the metadata lists them all.
    pub async fn start(size: i32) -> Self {
        let class_path = kafka_class_path();
        let dir = tempfile::Builder::new().prefix("lw-kafka-cluster-").tempdir().expect("dir");
        let ports: Vec<(i32, u16, u16)> =
            (1..=size).map(|id| (id, free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .map(|(id, _, controller)| format!("{id}@127.0.0.1:{controller}"))
            .collect::<Vec<_>>()
            .join(",");
        let replication = size.min(3);
        let mut formats = Vec::new();
        let mut nodes = Vec::new();
        for (id, port, controller) in &ports {
            let config = dir.path().join(format!("server-{id}.properties"));
            let data = dir.path().join(format!("data-{id}"));
            std::fs::write(
                &config,
                format!(
                    "process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor={replication}
min.insync.replicas=1
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor={replication}
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# A stopped broker is fenced, and its partitions get new leaders, within seconds.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
",
                    data = data.display()
                ),
            )
            .expect("server.properties");
            let log = dir.path().join(format!("format-{id}.log"));
            let format = java(&class_path, &log)
                .args(["kafka.tools.StorageTool", "format", "--cluster-id", CLUSTER_ID])
                .arg("--config")
                .arg(&config)
                .arg("--ignore-formatted")
                .spawn()
                .expect("java (the stack's Kafka needs it)");
            formats.push((format, log));
            nodes.push((*id, *port, config));
        }
        for (mut format, log) in formats {
            let status = format.wait().expect("storage format");
            assert!(status.success(), "Kafka storage format failed:\n{}", tail(&log));
        }
        let nodes = nodes
            .into_iter()
            .map(|(id, port, config)| {
                let log = dir.path().join(format!("kafka-{id}.log"));
                let process = java(&class_path, &log)
                    .arg("kafka.Kafka")
                    .arg(&config)
                    .spawn()
                    .expect("java kafka.Kafka");
                Node { id, port, process: Some(process), log }
            })
            .collect();
        let cluster = Self { nodes, dir };
        cluster.wait_for_brokers(usize::try_from(size).unwrap_or(0)).await;
        cluster
    }

    /// Every node's client address, as a bootstrap list.
    pub fn bootstrap(&self) -> String {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    /// The client address of node `id`.
    pub fn address(&self, id: i32) -> String {
        let node = self.nodes.iter().find(|n| n.id == id).expect("a node of the cluster");
        format!("127.0.0.1:{}", node.port)
    }

    /// Kills node `id` at once (SIGKILL: no controlled shutdown, no leadership handed
    /// over), as a crashed broker.
    pub fn kill(&mut self, id: i32) {
        let node = self.nodes.iter_mut().find(|n| n.id == id).expect("a node of the cluster");
        if let Some(mut process) = node.process.take() {
            process.kill().expect("kill the broker");
            process.wait().expect("reap the broker");
        }
    }

    /// Waits until a Metadata answer lists `count` brokers; on time out, panics with
    /// the end of every node's log.
    async fn wait_for_brokers(&self, count: usize) {
        let client = Arc::new(KafkaClient::new(
            &self.bootstrap(),
            "e2e-kafka-cluster",
            Duration::from_secs(5),
            WireSecurity::plaintext(),
        ));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match client.metadata(Some(&[])).await {
                Ok(metadata) if metadata.brokers.len() >= count => return,
                Ok(metadata) => format!("{} brokers of {count}", metadata.brokers.len()),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- node {} ({}):\n{}", n.id, n.log.display(), tail(&n.log)))
                    .collect();
                panic!(
                    "the {count}-broker cluster in {} did not start within {START_TIMEOUT:?} ({last}):\n{}",
                    self.dir.path().display(),
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
