//! Reads consumer groups' offsets from Kafka: the committed offset and the watermarks
//! of every partition of each group's topic.
//!
//! The scaler loop reads every Uploader's lag in one batch per tick, whatever the
//! number of Uploaders: one Metadata (partitions and leaders), one FindCoordinator for
//! all groups, one OffsetFetch per coordinator for all its groups, and two ListOffsets
//! (earliest, latest) per partition leader. The operator never joins a group.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use futures::future::join_all;
use kafka_protocol::{
    ResponseError,
    messages::{
        BrokerId, FindCoordinatorRequest, GroupId, ListOffsetsRequest, ListOffsetsResponse,
        OffsetFetchRequest, TopicName,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics},
    },
    protocol::StrBytes,
};

use super::{PartitionOffsets, metrics::ScalerMetrics};
use crate::kafka::{KafkaClient, WireError};

/// `ListOffsets` timestamps that ask for the watermarks.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// `FindCoordinatorRequest.key_type` of a consumer group.
const GROUP_KEY: i8 = 0;

/// Why the offsets could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LagError {
    #[error("cannot read the offsets of group {group} on topic {topic}: {source}")]
    Request {
        group: String,
        topic: String,
        #[source]
        source: WireError,
    },
    #[error("Kafka refused {call} for group {group} on topic {topic}: {error:?}: {error}")]
    Refused { call: &'static str, group: String, topic: String, error: ResponseError },
    #[error("topic {0} does not exist or has no partitions")]
    NoPartitions(String),
    #[error("the offset reader has stopped")]
    Stopped,
}

/// A consumer group on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub topic: String,
}

/// What one batched read found, by key.
pub type Readings = HashMap<Key, Result<Vec<PartitionOffsets>, LagError>>;

/// Reads the offsets of many groups at once, on connections of its own (lag reads never
/// wait behind a slow admin request). Cheap to clone.
#[derive(Debug, Clone)]
pub struct LagReader {
    client: Arc<KafkaClient>,
    metrics: Arc<ScalerMetrics>,
}

impl LagReader {
    pub fn new(client: Arc<KafkaClient>, metrics: Arc<ScalerMetrics>) -> Self {
        Self { client, metrics }
    }

    /// The offsets of every key's group on every partition of its topic, in one batch:
    /// the number of requests depends on the brokers, not on the number of keys.
    pub async fn read(&self, keys: impl IntoIterator<Item = Key>) -> Readings {
        // Two Uploaders on one group and topic share one read.
        let keys: Vec<Key> = keys.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        if keys.is_empty() {
            return HashMap::new();
        }
        self.metrics.count_lag_batch(keys.len());
        read_all(&self.client, &self.metrics, &keys).await
    }
}

/// Partition → (leader, low, high) of one topic, as read so far.
type Watermarks = BTreeMap<i32, (i32, Option<i64>, Option<i64>)>;

async fn read_all(
    client: &KafkaClient,
    metrics: &ScalerMetrics,
    keys: &[Key],
) -> HashMap<Key, Result<Vec<PartitionOffsets>, LagError>> {
    let mut results = HashMap::new();

    // Partitions and their leaders.
    let topics: Vec<String> =
        keys.iter().map(|k| k.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    metrics.count_lag_request("metadata");
    let metadata = match client.metadata(Some(&topics)).await {
        Ok(metadata) => metadata,
        Err(source) => {
            return keys.iter().map(|k| (k.clone(), Err(failed(k, &source)))).collect();
        }
    };
    let mut watermarks: HashMap<String, Watermarks> = HashMap::new();
    for topic in &metadata.topics {
        let Some(name) = topic.name.as_ref() else { continue };
        if topic.error_code != 0 || topic.partitions.is_empty() {
            continue;
        }
        let partitions = topic
            .partitions
            .iter()
            .map(|p| (p.partition_index, (p.leader_id.0, None, None)))
            .collect();
        watermarks.insert(name.0.as_str().to_owned(), partitions);
    }
    let keys: Vec<&Key> = keys
        .iter()
        .filter(|key| {
            let known = watermarks.contains_key(&key.topic);
            if !known {
                results.insert((*key).clone(), Err(LagError::NoPartitions(key.topic.clone())));
            }
            known
        })
        .collect();
    if keys.is_empty() {
        return results;
    }

    let (committed, list) = tokio::join!(
        committed_offsets(client, metrics, &keys, &watermarks),
        list_watermarks(client, metrics, &watermarks)
    );
    let mut committed = committed;
    let list = list.map(|answers| record_watermarks(&mut watermarks, answers));
    for key in keys {
        let result = match (committed.remove(key), &list) {
            (_, Err(source)) => Err(failed(key, source)),
            (Some(Err(error)), _) => Err(error),
            (None, _) => Err(LagError::Stopped),
            (Some(Ok(offsets)), Ok(())) => assemble(&watermarks[&key.topic], &offsets)
                .ok_or_else(|| LagError::NoPartitions(key.topic.clone())),
        };
        results.insert(key.clone(), result);
    }
    results
}

/// Committed offset by partition for each key (absent: never committed).
type Committed = HashMap<Key, Result<HashMap<i32, i64>, LagError>>;

/// FindCoordinator for every group, then one OffsetFetch per coordinator.
async fn committed_offsets(
    client: &KafkaClient,
    metrics: &ScalerMetrics,
    keys: &[&Key],
    watermarks: &HashMap<String, Watermarks>,
) -> Committed {
    let mut results: Committed = HashMap::new();
    let groups: BTreeSet<&str> = keys.iter().map(|k| k.group.as_str()).collect();
    metrics.count_lag_request("find_coordinator");
    let request = FindCoordinatorRequest::default()
        .with_key_type(GROUP_KEY)
        .with_coordinator_keys(groups.iter().map(|g| text(g)).collect());
    let coordinators = match client.send_any(&request).await {
        Ok(response) => response.coordinators,
        Err(source) => {
            for key in keys {
                results.insert((*key).clone(), Err(failed(key, &source)));
            }
            return results;
        }
    };
    let mut by_coordinator: BTreeMap<i32, Vec<&Key>> = BTreeMap::new();
    for key in keys {
        let found = coordinators.iter().find(|c| c.key.as_str() == key.group);
        match found.map(|c| (c.node_id.0, ResponseError::try_from_code(c.error_code))) {
            Some((node, None)) => by_coordinator.entry(node).or_default().push(key),
            Some((_, Some(error))) => {
                results.insert((*key).clone(), Err(refused("FindCoordinator", key, error)));
            }
            None => {
                results.insert(
                    (*key).clone(),
                    Err(refused("FindCoordinator", key, ResponseError::CoordinatorNotAvailable)),
                );
            }
        }
    }
    let fetches = by_coordinator.into_iter().map(|(node, keys)| async move {
        metrics.count_lag_request("offset_fetch");
        (keys.clone(), client.send_to(node, &offset_fetch_request(&keys, watermarks)).await)
    });
    for (keys, response) in join_all(fetches).await {
        let response = match response {
            Ok(response) => response,
            Err(source) => {
                for key in keys {
                    results.insert(key.clone(), Err(failed(key, &source)));
                }
                continue;
            }
        };
        for key in keys {
            let group = response.groups.iter().find(|g| g.group_id.0.as_str() == key.group);
            let result = match group {
                None => Err(refused("OffsetFetch", key, ResponseError::UnknownServerError)),
                Some(group) => match ResponseError::try_from_code(group.error_code) {
                    Some(error) => Err(refused("OffsetFetch", key, error)),
                    None => Ok(group
                        .topics
                        .iter()
                        .filter(|t| t.name.0.as_str() == key.topic)
                        .flat_map(|t| &t.partitions)
                        .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                        .map(|p| (p.partition_index, p.committed_offset))
                        .collect()),
                },
            };
            results.insert(key.clone(), result);
        }
    }
    results
}

fn offset_fetch_request(
    keys: &[&Key],
    watermarks: &HashMap<String, Watermarks>,
) -> OffsetFetchRequest {
    // One entry per group, with every topic read for it.
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for key in keys {
        groups.entry(&key.group).or_default().push(&key.topic);
    }
    OffsetFetchRequest::default().with_groups(
        groups
            .into_iter()
            .map(|(group, topics)| {
                OffsetFetchRequestGroup::default().with_group_id(GroupId(text(group))).with_topics(
                    Some(
                        topics
                            .into_iter()
                            .map(|topic| {
                                OffsetFetchRequestTopics::default()
                                    .with_name(TopicName(text(topic)))
                                    .with_partition_indexes(
                                        watermarks
                                            .get(topic)
                                            .map(|p| p.keys().copied().collect())
                                            .unwrap_or_default(),
                                    )
                            })
                            .collect(),
                    ),
                )
            })
            .collect(),
    )
}

/// The low and high watermarks: two ListOffsets (earliest, latest) per partition
/// leader, each answer with its timestamp.
async fn list_watermarks(
    client: &KafkaClient,
    metrics: &ScalerMetrics,
    watermarks: &HashMap<String, Watermarks>,
) -> Result<Vec<(i64, ListOffsetsResponse)>, WireError> {
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, partitions) in watermarks.iter() {
        for (partition, (leader, _, _)) in partitions {
            by_leader.entry(*leader).or_default().entry(topic).or_default().push(*partition);
        }
    }
    let requests = by_leader.iter().flat_map(|(leader, topics)| {
        [EARLIEST, LATEST].map(|timestamp| {
            let request = list_offsets_request(topics, timestamp);
            async move {
                metrics.count_lag_request("list_offsets");
                (timestamp, client.send_to(*leader, &request).await)
            }
        })
    });
    join_all(requests)
        .await
        .into_iter()
        .map(|(timestamp, answer)| Ok((timestamp, answer?)))
        .collect()
}

fn record_watermarks(
    watermarks: &mut HashMap<String, Watermarks>,
    answers: Vec<(i64, ListOffsetsResponse)>,
) {
    for (timestamp, answer) in answers {
        for topic in answer.topics {
            let Some(partitions) = watermarks.get_mut(topic.name.0.as_str()) else { continue };
            for partition in topic.partitions {
                let Some(entry) = partitions.get_mut(&partition.partition_index) else { continue };
                // A partition without a leader right now stays unread: no lag for it.
                if partition.error_code != 0 {
                    continue;
                }
                if timestamp == EARLIEST {
                    entry.1 = Some(partition.offset);
                } else {
                    entry.2 = Some(partition.offset);
                }
            }
        }
    }
}

fn list_offsets_request(topics: &BTreeMap<&str, Vec<i32>>, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        // -1: a consumer, not a follower broker.
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    ListOffsetsTopic::default().with_name(TopicName(text(topic))).with_partitions(
                        partitions
                            .iter()
                            .map(|partition| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(*partition)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(timestamp)
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
}

/// The offsets of every partition whose watermarks were read, in partition order;
/// `None` when no partition was.
fn assemble(
    watermarks: &Watermarks,
    committed: &HashMap<i32, i64>,
) -> Option<Vec<PartitionOffsets>> {
    let offsets: Vec<PartitionOffsets> = watermarks
        .iter()
        .filter_map(|(partition, (_, low, high))| {
            Some(PartitionOffsets {
                partition: *partition,
                low: (*low)?,
                high: (*high)?,
                committed: committed.get(partition).copied(),
            })
        })
        .collect();
    (!offsets.is_empty()).then_some(offsets)
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn failed(key: &Key, source: &WireError) -> LagError {
    LagError::Request { group: key.group.clone(), topic: key.topic.clone(), source: source.clone() }
}

fn refused(call: &'static str, key: &Key, error: ResponseError) -> LagError {
    LagError::Refused { call, group: key.group.clone(), topic: key.topic.clone(), error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_partitions_in_order_with_their_committed_offsets() {
        let watermarks: Watermarks =
            [(1, (0, Some(5), Some(9))), (0, (0, Some(0), Some(3)))].into_iter().collect();
        let committed: HashMap<i32, i64> = [(1, 7)].into_iter().collect();
        let offsets = assemble(&watermarks, &committed).unwrap();
        assert_eq!(
            offsets,
            [
                PartitionOffsets { partition: 0, low: 0, high: 3, committed: None },
                PartitionOffsets { partition: 1, low: 5, high: 9, committed: Some(7) },
            ]
        );
    }

    #[test]
    fn partitions_without_watermarks_are_left_out() {
        let watermarks: Watermarks =
            [(0, (0, None, Some(3))), (1, (0, Some(0), Some(2)))].into_iter().collect();
        let offsets = assemble(&watermarks, &HashMap::new()).unwrap();
        assert_eq!(offsets.len(), 1);
        assert_eq!(offsets[0].partition, 1);
        let none: Watermarks = [(0, (0, None, None))].into_iter().collect();
        assert_eq!(assemble(&none, &HashMap::new()), None);
    }

    #[test]
    fn one_offset_fetch_entry_per_group_with_all_its_topics() {
        let keys = [
            Key { group: "g1".into(), topic: "a".into() },
            Key { group: "g1".into(), topic: "b".into() },
            Key { group: "g2".into(), topic: "a".into() },
        ];
        let refs: Vec<&Key> = keys.iter().collect();
        let watermarks: HashMap<String, Watermarks> = [
            ("a".to_owned(), [(0, (0, None, None)), (1, (0, None, None))].into_iter().collect()),
            ("b".to_owned(), [(0, (0, None, None))].into_iter().collect()),
        ]
        .into_iter()
        .collect();
        let request = offset_fetch_request(&refs, &watermarks);
        assert_eq!(request.groups.len(), 2);
        let g1 = &request.groups[0];
        assert_eq!(g1.group_id.0.as_str(), "g1");
        let topics = g1.topics.as_ref().unwrap();
        assert_eq!(topics.len(), 2);
        assert_eq!(topics[0].partition_indexes, [0, 1]);
        assert_eq!(topics[1].partition_indexes, [0]);
    }
}
