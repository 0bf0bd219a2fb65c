//! librdkafka (2.10 and later) forgets every broker it knows when a Metadata response
//! lists none (confluentinc/librdkafka#5301), which a Kafka broker sends while it shuts
//! down; a worker whose clients asked in that moment consumed nothing more, for good
//! (found by `worker_consume::kafka_and_mongodb_restarts_lose_and_duplicate_nothing`,
//! about one run in seven under load). Here a proxy in front of the stack's broker sends
//! such responses on demand to the worker's Kafka clients alone, over and over, and the
//! worker must come back by itself. Which way a client goes depends on librdkafka's own
//! timing: often its re-bootstrap saves it, sometimes it is stranded and only the broker
//! watch of `crds/src/kafka_client.rs` brings it back (with the watch switched off, one
//! run of eight hung until the 180 s bound; with it, stranded runs ended in 13-19 s).

use std::{net::SocketAddr, path::Path, time::Duration};

use licenseware_e2e::{
    consumer::{ConsumerSetup, WorkerProcess, custom_worker_binary, stack_shared},
    eventually,
    metadata_proxy::MetadataProxy,
};

use crate::worker_consume::{publish_many, successes};

const WAIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_told_there_is_no_broker_finds_its_broker_again() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("rebootstrap", 2, 3).await;
    let upstream: SocketAddr =
        setup.stack.kafka_brokers.parse().expect("the stack's plaintext broker, one address");
    let proxy = MetadataProxy::start(upstream).await;
    let through_proxy = proxy.addr.to_string();
    publish_many(&setup, 20, 3).await;
    let mut worker = WorkerProcess::start_with_env(
        &setup,
        "rebootstrap",
        custom_worker_binary(),
        &[],
        "info",
        &[
            ("LW_KAFKA_BROKERS", Path::new(&through_proxy)),
            // Metadata asked every second on the live connections, as a client does
            // when a partition's leader moves away from a broker shutting down.
            ("LW_KAFKA_PROPERTIES", Path::new("topic.metadata.refresh.interval.ms=1000")),
        ],
    );
    eventually(WAIT, "the first events processed", || async {
        (successes(&setup).await >= 5).then_some(())
    })
    .await;

    // What the worker's clients see of a broker shutting down: it says it knows no live
    // broker, over the connections it had and the ones it accepts while going away.
    proxy.hide_brokers();
    proxy.disconnect_all();
    eventually(WAIT, "the worker's clients told there is no broker, again and again", || async {
        (proxy.hidden_responses() >= 6).then_some(())
    })
    .await;
    // The broker is back: only a client that still knows where to ask will hear it.
    proxy.show_brokers();
    publish_many(&setup, 20, 3).await;

    setup.wait_all_committed(40, WAIT).await;
    assert_eq!(successes(&setup).await, 40, "every event processed once");
    worker.terminate();
    assert!(worker.exited(WAIT).await.success(), "exit after the recovery");
    setup.cleanup().await;
}
