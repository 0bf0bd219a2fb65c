//! Reads a consumer group's offsets on a topic from Kafka: the committed offset and the
//! watermarks of every partition.
//!
//! rdkafka has no admin call for a group's offsets (ListConsumerGroupOffsets), so the
//! reader keeps one consumer per group, configured with that `group.id` but never
//! subscribed: it never joins the group, it only asks the group coordinator for the
//! committed offsets (OffsetFetch) and the partition leaders for the watermarks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
};

use super::PartitionOffsets;

/// How long one Kafka request of a reading may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the offsets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("cannot read the offsets of group {group} on topic {topic}: {source}")]
    Kafka {
        group: String,
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("topic {0} does not exist or has no partitions")]
    NoPartitions(String),
    #[error("the offset reading task failed")]
    Task,
}

/// One idle consumer per consumer group, reused across polls.
pub struct LagReader {
    brokers: String,
    consumers: Mutex<HashMap<String, (Arc<BaseConsumer>, Instant)>>,
}

impl std::fmt::Debug for LagReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagReader").field("brokers", &self.brokers).finish_non_exhaustive()
    }
}

impl LagReader {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self { brokers: brokers.into(), consumers: Mutex::default() }
    }

    fn consumer(&self, group: &str) -> Result<Arc<BaseConsumer>, KafkaError> {
        let mut consumers = self.consumers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((consumer, used)) = consumers.get_mut(group) {
            *used = Instant::now();
            return Ok(Arc::clone(consumer));
        }
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .set("client.id", "licenseware-operator-scaler")
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false")
            .create()?;
        let consumer = Arc::new(consumer);
        consumers.insert(group.to_owned(), (Arc::clone(&consumer), Instant::now()));
        Ok(consumer)
    }

    /// Drops the consumers of groups not read for `idle` (uploaders that are gone).
    pub fn forget_idle(&self, idle: Duration) {
        self.consumers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (_, used)| used.elapsed() < idle);
    }

    /// The offsets of `group` on every partition of `topic`.
    pub async fn read(&self, group: &str, topic: &str) -> Result<Vec<PartitionOffsets>, LagError> {
        let kafka =
            |source| LagError::Kafka { group: group.to_owned(), topic: topic.to_owned(), source };
        let consumer = self.consumer(group).map_err(kafka)?;
        let name = topic.to_owned();
        // Every call below blocks its thread until Kafka answers.
        let read = tokio::task::spawn_blocking(move || read_blocking(&consumer, &name))
            .await
            .map_err(|_| LagError::Task)?;
        match read {
            Ok(offsets) if offsets.is_empty() => Err(LagError::NoPartitions(topic.to_owned())),
            Ok(offsets) => Ok(offsets),
            Err(source) => Err(kafka(source)),
        }
    }
}

fn read_blocking(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<Vec<PartitionOffsets>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if found.error().is_some() {
        return Ok(Vec::new());
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, REQUEST_TIMEOUT)?;
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
            let committed = committed.find_partition(topic, partition).and_then(|element| {
                match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                }
            });
            Ok(PartitionOffsets { partition, low, high, committed })
        })
        .collect()
}
