//! The operator's own Kafka client on a 3-broker KRaft cluster with a broker killed
//! mid-run (issue 13 §2): admin requests (to the controller, retried) and the batched
//! lag reads (a dead leader's partitions unknown, not every read failed) carry on,
//! or fail with a clear error and recover, within bounded time. The cluster is a
//! throwaway one ([`KafkaCluster`]), never the shared stack's broker.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use licenseware_e2e::kafka_cluster::KafkaCluster;
use licenseware_operator::{
    kafka::{
        AdminCall, Applied, Claim, DEFAULT_LINGER, DEFAULT_MAX_BATCH, DesiredTopic, KafkaAdmin,
        KafkaClient, MemoryClaims, WireSecurity,
    },
    scaler::{
        lag::{Key, LagReader, Readings},
        metrics::ScalerMetrics,
    },
};
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};

const PARTITIONS: i32 = 6;
const RECORDS_PER_PARTITION: i64 = 10;
/// A killed broker is fenced after its 6 s session timeout; its partitions then get
/// new leaders. Generous for a loaded machine.
const RECOVERY: Duration = Duration::from_secs(120);

fn topic(name: &str, replication_factor: i32) -> DesiredTopic {
    DesiredTopic {
        name: name.to_owned(),
        partitions: PARTITIONS,
        replication_factor: Some(replication_factor),
        config: BTreeMap::new(),
        claim: Claim::Adopt,
        claimant: format!("e2e/{name}"),
    }
}

fn key(topic: &str) -> Key {
    Key { group: format!("{topic}.worker"), topic: topic.to_owned() }
}

/// Total lag of each key whose every partition was read.
fn whole_lags(readings: &Readings) -> BTreeMap<String, i64> {
    readings
        .iter()
        .filter_map(|(key, reading)| {
            let reading = reading.as_ref().ok()?;
            reading
                .unknown
                .is_empty()
                .then(|| (key.topic.clone(), reading.offsets.iter().map(|p| p.lag()).sum::<i64>()))
        })
        .collect()
}

async fn produce(bootstrap: &str, topic: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    for partition in 0..PARTITIONS {
        for record in 0..RECORDS_PER_PARTITION {
            let payload = format!("record {record}");
            producer
                .send(
                    FutureRecord::<(), _>::to(topic).partition(partition).payload(&payload),
                    Duration::from_secs(60),
                )
                .await
                .unwrap_or_else(|(error, _)| panic!("produce to {topic}/{partition}: {error}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_and_lag_reads_ride_out_a_killed_broker() {
    let mut cluster = KafkaCluster::start(3).await;
    let admin_client = Arc::new(KafkaClient::new(
        &cluster.bootstrap(),
        "e2e-brokers-admin",
        Duration::from_secs(10),
        WireSecurity::plaintext(),
    ));
    let admin = KafkaAdmin::start(
        Arc::clone(&admin_client),
        Arc::new(MemoryClaims::default()),
        DEFAULT_LINGER,
        DEFAULT_MAX_BATCH,
    );
    let lag = LagReader::new(
        Arc::new(KafkaClient::new(
            &cluster.bootstrap(),
            "e2e-brokers-lag",
            Duration::from_secs(10),
            WireSecurity::plaintext(),
        )),
        Arc::new(ScalerMetrics::default()),
    );

    // Two topics on every broker (replication factor 3), each with records no group
    // has consumed: the lag is the whole backlog.
    let topics = ["brokers.a", "brokers.b"];
    let doomed = admin.apply(topic("brokers.doomed", 3)).await.expect("create a topic to delete");
    assert!(matches!(doomed, Applied::Topic(_)), "{doomed:?}");
    for name in topics {
        let applied = admin.apply(topic(name, 3)).await.expect("create with replication 3");
        let Applied::Topic(created) = applied else { panic!("{name}: {applied:?}") };
        assert_eq!((created.created, created.replication_factor), (true, 3), "{name}");
        produce(&cluster.bootstrap(), name).await;
    }
    let backlog = i64::from(PARTITIONS) * RECORDS_PER_PARTITION;
    let expected: BTreeMap<String, i64> =
        topics.iter().map(|name| ((*name).to_owned(), backlog)).collect();
    let keys = || topics.map(key);
    // The group coordinator's topic is created by the first FindCoordinator.
    let started = Instant::now();
    loop {
        let readings = lag.read(keys()).await;
        if whole_lags(&readings) == expected {
            break;
        }
        assert!(started.elapsed() < RECOVERY, "no whole lag reading before the kill: {readings:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Kill the broker the admin client takes for the controller: it also leads some
    // partitions of both topics.
    let victim = admin_client.controller().expect("a controller from the metadata");
    cluster.kill(victim);
    let killed = Instant::now();
    println!("killed broker {victim} ({})", cluster.address(victim));

    // Both at once from the moment of the kill, while the dead broker is not yet
    // fenced and may still be named controller and leader.
    let calls_before = admin.metrics().calls();
    let (lag_recovered, admin_recovered) = tokio::join!(
        lag_until_whole(&lag, &keys, &expected, killed),
        admin_until_done(&admin, killed)
    );
    let calls_after = admin.metrics().calls();
    assert!(
        calls_after[&AdminCall::DeleteTopics] - calls_before[&AdminCall::DeleteTopics] >= 2,
        "the delete to the killed controller was sent again elsewhere"
    );
    let gone = admin_client.metadata(Some(&["brokers.doomed".to_owned()])).await.expect("metadata");
    assert!(gone.topics.iter().all(|t| t.error_code != 0), "brokers.doomed is deleted");
    let sent: BTreeMap<&str, u64> = AdminCall::ALL
        .into_iter()
        .map(|call| (call.as_str(), calls_after[&call] - calls_before[&call]))
        .filter(|(_, count)| *count > 0)
        .collect();
    println!("after the kill: {lag_recovered}; {admin_recovered}; admin requests sent: {sent:?}");
}

/// Lag reads until every partition is read again with the whole backlog. Meanwhile
/// the dead broker's partitions are unknown (the others read), or a key whose group
/// coordinator it was fails with a clear error. Says how it went.
async fn lag_until_whole(
    lag: &LagReader,
    keys: &impl Fn() -> [Key; 2],
    expected: &BTreeMap<String, i64>,
    killed: Instant,
) -> String {
    let (mut partial, mut failed) = (0, 0);
    loop {
        let readings = lag.read(keys()).await;
        if whole_lags(&readings) == *expected {
            // The killed leader stays in the metadata until it is fenced (6 s): the
            // reads meanwhile had its partitions unknown and the others read.
            assert!(partial > 0, "no reading with the killed leader's partitions unknown");
            return format!(
                "lag read whole again after {:?} ({partial} partial readings, {failed} failed keys on the way)",
                killed.elapsed()
            );
        }
        for (key, reading) in &readings {
            match reading {
                Ok(reading) if !reading.unknown.is_empty() => {
                    partial += 1;
                    if partial == 1 {
                        println!("{}: unknown partitions {:?}", key.topic, reading.unknown);
                    }
                    assert!(!reading.offsets.is_empty(), "a partial reading has offsets");
                }
                Ok(_) => {}
                Err(error) => {
                    failed += 1;
                    if failed == 1 {
                        println!("{}: {error}", key.topic);
                    }
                }
            }
        }
        assert!(
            killed.elapsed() < RECOVERY,
            "the lag of every partition was not read again within {RECOVERY:?}: {readings:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Admin requests until a topic is deleted, a new one (replication 2: two brokers
/// are left) is created and an existing one is found unchanged; errors on the way
/// must say what failed. The delete goes first, to the controller the client knew
/// before the kill: the killed broker. Says how it went.
async fn admin_until_done(admin: &KafkaAdmin, killed: Instant) -> String {
    let mut errors = Vec::new();
    loop {
        match admin.delete("brokers.doomed".to_owned(), None).await {
            Ok(()) => break,
            Err(error) => errors.push(error.to_string()),
        }
        assert!(killed.elapsed() < RECOVERY, "no delete within {RECOVERY:?}: {errors:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deleted = killed.elapsed();
    loop {
        let created = admin.apply(topic("brokers.after", 2)).await;
        let unchanged = admin.apply(topic("brokers.a", 3)).await;
        match (created, unchanged) {
            (Ok(Applied::Topic(created)), Ok(Applied::Topic(unchanged))) => {
                assert_eq!(created.replication_factor, 2);
                assert_eq!(unchanged.partitions, PARTITIONS);
                return format!(
                    "topic deleted after {deleted:?}, admin requests all succeeded after {:?} \
                     (errors on the way: {errors:?})",
                    killed.elapsed()
                );
            }
            (created, unchanged) => {
                for error in [created.err(), unchanged.err()].into_iter().flatten() {
                    let error = error.to_string();
                    assert!(error.contains("Kafka"), "a clear error: {error}");
                    errors.push(error);
                }
            }
        }
        assert!(
            killed.elapsed() < RECOVERY,
            "admin requests did not succeed within {RECOVERY:?}: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
