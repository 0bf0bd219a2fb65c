//! Kafka as the tests read it: an admin client with partitions and configs of a
//! topic, and cleanup of what a test leaves behind.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{
        AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
};

use crate::eventually;

/// How long one Kafka request may take.
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// An admin client on the stack's brokers; cheap to clone.
#[derive(Clone)]
pub struct Kafka {
    brokers: String,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka").field("brokers", &self.brokers).finish_non_exhaustive()
    }
}

impl Kafka {
    pub fn new(brokers: &str) -> Self {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
        Self { brokers: brokers.to_owned(), admin: Arc::new(admin) }
    }

    /// The bootstrap servers, for producers and consumers of a test.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    pub fn admin(&self) -> &AdminClient<DefaultClientContext> {
        &self.admin
    }

    /// The topic's id as Kafka's own tool prints it (`kafka-topics --describe`, the
    /// Java admin client): a reading independent of the operator's protocol code.
    pub async fn topic_id_from_cli(&self, topic: &str) -> String {
        let brokers = self.brokers.clone();
        let topic = topic.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("kafka-topics")
                .args(["--bootstrap-server", &brokers, "--describe", "--topic", &topic])
                .output()
                .expect("run kafka-topics (the stack's bin directory is in PATH)")
        })
        .await
        .expect("kafka-topics task");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kafka-topics failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .split_whitespace()
            .skip_while(|word| *word != "TopicId:")
            .nth(1)
            .unwrap_or_else(|| panic!("no TopicId in: {stdout}"))
            .to_owned()
    }

    /// Partitions of a Kafka topic, `None` when it does not exist.
    pub async fn partitions(&self, topic: &str) -> Option<usize> {
        let admin = Arc::clone(&self.admin);
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata =
                admin.inner().fetch_metadata(Some(&topic), KAFKA_TIMEOUT).expect("metadata");
            let found = metadata.topics().iter().find(|t| t.name() == topic)?;
            if found.error().is_some() {
                return None;
            }
            Some(found.partitions().len())
        })
        .await
        .expect("metadata task")
    }

    /// Every topic whose name starts with `prefix`, with its partition count.
    pub async fn topics_with_prefix(&self, prefix: &str) -> BTreeMap<String, usize> {
        let admin = Arc::clone(&self.admin);
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let metadata = admin.inner().fetch_metadata(None, KAFKA_TIMEOUT).expect("metadata");
            metadata
                .topics()
                .iter()
                .filter(|t| t.name().starts_with(&prefix) && t.error().is_none())
                .map(|t| (t.name().to_owned(), t.partitions().len()))
                .collect()
        })
        .await
        .expect("metadata task")
    }

    /// Configs set on the topic itself.
    pub async fn configs(&self, topic: &str) -> BTreeMap<String, String> {
        let results = self
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
            .await
            .expect("describe configs");
        let resource = results.into_iter().next().expect("one result").expect("topic config");
        resource
            .entries
            .into_iter()
            .filter(|e| e.source == ConfigSource::DynamicTopic)
            .filter_map(|e| Some((e.name, e.value?)))
            .collect()
    }

    /// Waits until the topic has `expected` partitions (`None`: until it is gone).
    pub async fn wait_partitions(&self, topic: &str, expected: Option<usize>, timeout: Duration) {
        eventually(timeout, &format!("{topic} to have {expected:?} partitions"), || async {
            (self.partitions(topic).await == expected).then_some(())
        })
        .await;
    }

    /// Waits until the configs set on the topic are exactly `expected`.
    pub async fn wait_configs(&self, topic: &str, expected: &[(&str, &str)], timeout: Duration) {
        let expected: BTreeMap<String, String> =
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        eventually(timeout, &format!("configs of {topic} to be {expected:?}"), || async {
            (self.configs(topic).await == expected).then_some(())
        })
        .await;
    }

    /// Creates a topic directly (behind the operator's back) and waits until the
    /// metadata shows it.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        config: &[(&str, &str)],
        timeout: Duration,
    ) {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (key, value) in config {
            new = new.set(key, value);
        }
        let results =
            self.admin.create_topics(&[new], &AdminOptions::new()).await.expect("create topic");
        for result in results {
            result.expect("topic created");
        }
        let expected = usize::try_from(partitions).expect("positive");
        self.wait_partitions(topic, Some(expected), timeout).await;
    }

    /// Deletes what a test leaves behind on purpose (Retain), ignoring what is gone.
    pub async fn delete_topics(&self, topics: &[&str]) {
        let _ = self.admin.delete_topics(topics, &AdminOptions::new()).await;
    }
}
