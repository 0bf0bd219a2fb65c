//! Batched lag reads against a scripted cluster ([`crate::kafka::fake_broker`]): a
//! partition error and a dead leader leave only their partitions unknown.

use std::{sync::Arc, time::Duration};

use k8s_openapi::jiff::Timestamp;
use kafka_protocol::{
    ResponseError,
    messages::{
        ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest,
        ListOffsetsResponse, OffsetFetchRequest, OffsetFetchResponse,
        find_coordinator_response::Coordinator,
        list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
        offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
        },
    },
};
use licenseware_crds::WorkerSpec;

use super::{EARLIEST, Key, LagError, LagReader};
use crate::{
    kafka::{
        KafkaClient, WireSecurity,
        fake_broker::{Call, FakeCluster, FakePartition, Reply},
    },
    scaler::{ScalerState, decide, metrics::ScalerMetrics},
};

/// Every group committed offset 10 on every partition asked for.
fn offset_fetch(call: &Call) -> Reply {
    let request: OffsetFetchRequest = call.decode();
    call.answer(
        &OffsetFetchResponse::default().with_groups(
            request
                .groups
                .iter()
                .map(|group| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(group.group_id.clone())
                        .with_topics(
                            group
                                .topics
                                .iter()
                                .flatten()
                                .map(|topic| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(topic.name.clone())
                                        .with_partitions(
                                            topic
                                                .partition_indexes
                                                .iter()
                                                .map(|index| {
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(*index)
                                                        .with_committed_offset(10)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    )
}

/// Watermarks 0 and 10 on every partition asked for, but `refused` partitions of
/// `topic` get that error.
fn list_offsets(call: &Call, refused: Option<(&str, i32, ResponseError)>) -> Reply {
    let request: ListOffsetsRequest = call.decode();
    call.answer(
        &ListOffsetsResponse::default().with_topics(
            request
                .topics
                .iter()
                .map(|topic| {
                    ListOffsetsTopicResponse::default()
                        .with_name(topic.name.clone())
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .map(|partition| {
                                    let index = partition.partition_index;
                                    let answer = ListOffsetsPartitionResponse::default()
                                        .with_partition_index(index);
                                    match refused {
                                        Some((name, refused, error))
                                            if name == topic.name.0.as_str()
                                                && refused == index =>
                                        {
                                            answer.with_error_code(error.code())
                                        }
                                        _ if partition.timestamp == EARLIEST => {
                                            answer.with_offset(0)
                                        }
                                        _ => answer.with_offset(10),
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    )
}

fn coordinator_one(call: &Call) -> Reply {
    let request: FindCoordinatorRequest = call.decode();
    call.answer(
        &FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .map(|key| Coordinator::default().with_key(key.clone()).with_node_id(BrokerId(1)))
                .collect(),
        ),
    )
}

fn led_by(leader: i32) -> FakePartition {
    FakePartition { leader, replicas: vec![leader] }
}

fn key(topic: &str) -> Key {
    Key { group: "g".into(), topic: topic.into() }
}

#[tokio::test]
async fn a_partition_error_or_a_dead_leader_leaves_only_its_partitions_unknown() {
    let cluster = FakeCluster::start(3, |call| match (call.node, call.api) {
        (_, ApiKey::FindCoordinator) => coordinator_one(call),
        (1, ApiKey::OffsetFetch) => offset_fetch(call),
        (1, ApiKey::ListOffsets) => list_offsets(call, None),
        (2, ApiKey::ListOffsets) => {
            list_offsets(call, Some(("a", 1, ResponseError::NotLeaderOrFollower)))
        }
        // Broker 3 takes connections and drops every ListOffsets.
        (3, ApiKey::ListOffsets) => Reply::Close,
        _ => Reply::Default,
    })
    .await;
    cluster.add_topic("a", vec![led_by(1), led_by(2)]);
    cluster.add_topic("b", vec![led_by(1), led_by(1)]);
    cluster.add_topic("c", vec![led_by(3)]);
    let client = Arc::new(KafkaClient::new(
        &cluster.addresses[&1],
        "fake-test",
        Duration::from_secs(30),
        WireSecurity::plaintext(),
    ));
    let reader = LagReader::new(client, Arc::new(ScalerMetrics::default()));
    let readings = reader.read([key("a"), key("b"), key("c")]).await;

    let b = readings[&key("b")].as_ref().expect("b is read whole");
    assert_eq!((b.offsets.len(), b.unknown.len()), (2, 0));
    let a = readings[&key("a")].as_ref().expect("a is read in part");
    assert_eq!(a.offsets.iter().map(|p| p.partition).collect::<Vec<_>>(), [0]);
    assert_eq!(a.unknown.keys().copied().collect::<Vec<_>>(), [1]);
    assert!(a.unknown[&1].contains("NotLeaderOrFollower"), "{:?}", a.unknown);
    let c = readings[&key("c")].as_ref().expect_err("c's only leader is down");
    assert!(matches!(c, LagError::NoPartitionRead { partitions: 1, .. }), "{c:?}");
    assert!(c.to_string().contains(&cluster.addresses[&3]), "{c}");

    // Idle on what was read: b's worker may go to zero, a's stays as it is.
    let spec = WorkerSpec {
        min_replicas: 0,
        max_replicas: 5,
        lag_per_replica: 5,
        activation_lag: 0,
        cooldown_seconds: 0,
        ..WorkerSpec::default()
    };
    let now = Timestamp::now();
    let window = Duration::from_secs(300);
    let (whole, _) = decide(b, &spec, 3, &ScalerState::default(), window, now);
    assert_eq!(whole.desired, 0);
    let (partial, _) = decide(a, &spec, 3, &ScalerState::default(), window, now);
    assert_eq!((partial.unknown_partitions, partial.desired), (1, 3));
}
