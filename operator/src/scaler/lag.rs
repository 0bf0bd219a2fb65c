//! Reads consumer groups' offsets from Kafka: the committed offset and the watermarks
//! of every partition of each group's topic.
//!
//! The scaler loop reads every Uploader's lag in one batch per tick, whatever the
//! number of Uploaders: one Metadata (partitions and leaders), one FindCoordinator for
//! all groups, one OffsetFetch per coordinator for all its groups, and two ListOffsets
//! (earliest, latest) per partition leader. The operator never joins a group.
//!
//! A partition whose offsets cannot be read (no leader, its leader down or refusing
//! it, an OffsetFetch error for it) is reported as unknown in the key's [`Reading`],
//! with why: one failing leader leaves the partitions it leads unknown, not every
//! key's read failed. A key none of whose partitions could be read is an error.

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

use super::{PartitionOffsets, Reading, metrics::ScalerMetrics};
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
    #[error(
        "cannot read the offsets of any of the {partitions} partitions of topic {topic} for group {group}: {first}"
    )]
    NoPartitionRead { group: String, topic: String, partitions: usize, first: String },
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
pub type Readings = HashMap<Key, Result<Reading, LagError>>;

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

/// What is known of one partition so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PartitionRead {
    leader: i32,
    low: Option<i64>,
    high: Option<i64>,
    /// Why its watermarks cannot be known; `None` while they may be.
    failure: Option<String>,
}

impl PartitionRead {
    fn led_by(leader: i32) -> Self {
        Self { leader, ..Self::default() }
    }

    fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
    }
}

/// Partition → what is known of it, for one topic.
type Watermarks = BTreeMap<i32, PartitionRead>;

async fn read_all(client: &KafkaClient, metrics: &ScalerMetrics, keys: &[Key]) -> Readings {
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
            .map(|p| {
                let mut read = PartitionRead::led_by(p.leader_id.0);
                if let Some(error) = ResponseError::try_from_code(p.error_code) {
                    read.fail(format!("Kafka reports {error:?} for it: {error}"));
                } else if p.leader_id.0 < 0 {
                    read.fail("it has no leader".to_owned());
                }
                (p.partition_index, read)
            })
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

    let (mut committed, answers) = tokio::join!(
        committed_offsets(client, metrics, &keys, &watermarks),
        list_watermarks(client, metrics, &watermarks)
    );
    record_watermarks(&mut watermarks, answers);
    for key in keys {
        let result = match committed.remove(key) {
            Some(Err(error)) => Err(error),
            None => Err(LagError::Stopped),
            Some(Ok(offsets)) => reading_of(key, &watermarks[&key.topic], &offsets),
        };
        results.insert(key.clone(), result);
    }
    results
}

/// The key's reading, or an error when not one of its partitions could be read.
fn reading_of(
    key: &Key,
    watermarks: &Watermarks,
    committed: &Committed,
) -> Result<Reading, LagError> {
    let reading = assemble(watermarks, committed);
    if !reading.offsets.is_empty() {
        return Ok(reading);
    }
    match reading.unknown.iter().next() {
        None => Err(LagError::NoPartitions(key.topic.clone())),
        Some((partition, why)) => Err(LagError::NoPartitionRead {
            group: key.group.clone(),
            topic: key.topic.clone(),
            partitions: reading.unknown.len(),
            first: format!("partition {partition}: {why}"),
        }),
    }
}

/// The committed offsets of one key's group on its topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Committed {
    /// Partition → committed offset; absent: never committed.
    offsets: HashMap<i32, i64>,
    /// Partition → why its committed offset is unknown.
    unknown: BTreeMap<i32, String>,
}

/// Committed offsets for each key.
type CommittedByKey = HashMap<Key, Result<Committed, LagError>>;

/// FindCoordinator for every group, then one OffsetFetch per coordinator.
async fn committed_offsets(
    client: &KafkaClient,
    metrics: &ScalerMetrics,
    keys: &[&Key],
    watermarks: &HashMap<String, Watermarks>,
) -> CommittedByKey {
    let mut results: CommittedByKey = HashMap::new();
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
                    None => {
                        let mut committed = Committed::default();
                        let partitions = group
                            .topics
                            .iter()
                            .filter(|t| t.name.0.as_str() == key.topic)
                            .flat_map(|t| &t.partitions);
                        for partition in partitions {
                            let index = partition.partition_index;
                            if let Some(error) = ResponseError::try_from_code(partition.error_code)
                            {
                                committed.unknown.insert(
                                    index,
                                    format!("OffsetFetch refused it: {error:?}: {error}"),
                                );
                            } else if partition.committed_offset >= 0 {
                                committed.offsets.insert(index, partition.committed_offset);
                            }
                        }
                        Ok(committed)
                    }
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

/// The answers of one leader's ListOffsets, by timestamp.
type LeaderAnswers = Vec<(i32, i64, Result<ListOffsetsResponse, WireError>)>;

/// The low and high watermarks: two ListOffsets (earliest, latest) per partition
/// leader, each answer with its leader and timestamp. Partitions already known to be
/// unreadable (no leader) are not asked for.
async fn list_watermarks(
    client: &KafkaClient,
    metrics: &ScalerMetrics,
    watermarks: &HashMap<String, Watermarks>,
) -> LeaderAnswers {
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, partitions) in watermarks.iter() {
        for (partition, read) in partitions {
            if read.failure.is_none() {
                by_leader
                    .entry(read.leader)
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .push(*partition);
            }
        }
    }
    let requests = by_leader.iter().flat_map(|(leader, topics)| {
        [EARLIEST, LATEST].map(|timestamp| {
            let request = list_offsets_request(topics, timestamp);
            async move {
                metrics.count_lag_request("list_offsets");
                (*leader, timestamp, client.send_to(*leader, &request).await)
            }
        })
    });
    join_all(requests).await
}

/// Records the watermarks of the answers; a failed request leaves every partition its
/// leader leads unknown, a partition error that partition alone.
fn record_watermarks(watermarks: &mut HashMap<String, Watermarks>, answers: LeaderAnswers) {
    for (leader, timestamp, answer) in answers {
        let answer = match answer {
            Ok(answer) => answer,
            Err(source) => {
                for read in watermarks.values_mut().flat_map(BTreeMap::values_mut) {
                    if read.leader == leader {
                        read.fail(format!("its leader (broker {leader}) did not answer: {source}"));
                    }
                }
                continue;
            }
        };
        for topic in answer.topics {
            let Some(partitions) = watermarks.get_mut(topic.name.0.as_str()) else { continue };
            for partition in topic.partitions {
                let Some(read) = partitions.get_mut(&partition.partition_index) else { continue };
                if let Some(error) = ResponseError::try_from_code(partition.error_code) {
                    read.fail(format!(
                        "ListOffsets on broker {leader} refused it: {error:?}: {error}"
                    ));
                } else if timestamp == EARLIEST {
                    read.low = Some(partition.offset);
                } else {
                    read.high = Some(partition.offset);
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

/// The offsets of every partition read, in partition order, and why the others are
/// unknown.
fn assemble(watermarks: &Watermarks, committed: &Committed) -> Reading {
    let mut reading = Reading::default();
    for (partition, read) in watermarks {
        let why = read.failure.as_ref().or_else(|| committed.unknown.get(partition));
        match (why, read.low, read.high) {
            (Some(why), _, _) => {
                reading.unknown.insert(*partition, why.clone());
            }
            (None, Some(low), Some(high)) => reading.offsets.push(PartitionOffsets {
                partition: *partition,
                low,
                high,
                committed: committed.offsets.get(partition).copied(),
            }),
            (None, _, _) => {
                reading.unknown.insert(*partition, "not in the ListOffsets answers".to_owned());
            }
        }
    }
    reading
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
mod cluster_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn read(low: Option<i64>, high: Option<i64>) -> PartitionRead {
        PartitionRead { leader: 0, low, high, failure: None }
    }

    #[test]
    fn assembles_partitions_in_order_with_their_committed_offsets() {
        let watermarks: Watermarks =
            [(1, read(Some(5), Some(9))), (0, read(Some(0), Some(3)))].into_iter().collect();
        let committed =
            Committed { offsets: [(1, 7)].into_iter().collect(), ..Committed::default() };
        let reading = assemble(&watermarks, &committed);
        assert_eq!(
            reading.offsets,
            [
                PartitionOffsets { partition: 0, low: 0, high: 3, committed: None },
                PartitionOffsets { partition: 1, low: 5, high: 9, committed: Some(7) },
            ]
        );
        assert!(reading.unknown.is_empty());
    }

    #[test]
    fn partitions_without_watermarks_or_committed_offsets_are_unknown_with_why() {
        let mut failed = read(None, None);
        failed.fail("its leader (broker 2) did not answer".into());
        let watermarks: Watermarks = [
            (0, read(None, Some(3))),
            (1, read(Some(0), Some(2))),
            (2, failed),
            (3, read(Some(0), Some(4))),
        ]
        .into_iter()
        .collect();
        let committed = Committed {
            unknown: [(3, "OffsetFetch refused it".to_owned())].into_iter().collect(),
            ..Committed::default()
        };
        let reading = assemble(&watermarks, &committed);
        assert_eq!(reading.offsets.len(), 1);
        assert_eq!(reading.offsets[0].partition, 1);
        assert_eq!(reading.unknown.keys().copied().collect::<Vec<_>>(), [0, 2, 3]);
        assert!(reading.unknown[&2].contains("broker 2"), "{:?}", reading.unknown);
        let key = Key { group: "g".into(), topic: "t".into() };
        let none: Watermarks = [(0, read(None, None))].into_iter().collect();
        let error = reading_of(&key, &none, &Committed::default()).unwrap_err();
        assert!(
            matches!(error, LagError::NoPartitionRead { partitions: 1, .. }),
            "nothing read is an error: {error}"
        );
    }

    #[test]
    fn a_failed_leader_leaves_only_its_partitions_unknown() {
        let mut watermarks: HashMap<String, Watermarks> = [(
            "t".to_owned(),
            [(0, PartitionRead::led_by(1)), (1, PartitionRead::led_by(2))].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        let answer = |offset| {
            use kafka_protocol::messages::list_offsets_response::{
                ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
            };
            ListOffsetsResponse::default().with_topics(vec![
                ListOffsetsTopicResponse::default()
                    .with_name(TopicName(text("t")))
                    .with_partitions(vec![
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ])
        };
        let down = WireError::Connect { address: "b2:9092".into(), message: "refused".into() };
        record_watermarks(
            &mut watermarks,
            vec![
                (1, EARLIEST, Ok(answer(0))),
                (1, LATEST, Ok(answer(5))),
                (2, EARLIEST, Err(down.clone())),
                (2, LATEST, Err(down)),
            ],
        );
        let reading = assemble(&watermarks["t"], &Committed::default());
        assert_eq!(
            reading.offsets,
            [PartitionOffsets { partition: 0, low: 0, high: 5, committed: None }]
        );
        assert!(reading.unknown[&1].contains("b2:9092"), "{:?}", reading.unknown);
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
            ("a".to_owned(), [(0, read(None, None)), (1, read(None, None))].into_iter().collect()),
            ("b".to_owned(), [(0, read(None, None))].into_iter().collect()),
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
