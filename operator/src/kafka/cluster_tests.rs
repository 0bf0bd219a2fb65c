//! The client and the admin batcher against a scripted cluster
//! ([`super::fake_broker`]): stalled and dead brokers, a moved controller, refusals.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI32, Ordering},
    },
    time::Duration,
};

use kafka_protocol::{
    ResponseError,
    messages::{
        ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest,
        DescribeConfigsResponse, MetadataRequest, create_topics_response::CreatableTopicResult,
        describe_configs_response::DescribeConfigsResult,
    },
    protocol::StrBytes,
};

use super::{
    AdminCall, AdminError, Applied, Claim, DesiredTopic, KafkaAdmin, KafkaClient,
    MAX_LINGER_FACTOR, MemoryClaims, TopicClaim, WireError, WireSecurity,
    claims::ClaimStore,
    fake_broker::{FakeCluster, FakePartition, Reply},
    requests::ATTEMPTS,
};

fn client(bootstrap: &str, timeout: Duration) -> Arc<KafkaClient> {
    Arc::new(KafkaClient::new(bootstrap, "fake-test", timeout, WireSecurity::plaintext()))
}

/// The admin batcher over `bootstrap` with a 30 s request timeout and `linger`.
fn admin(bootstrap: &str, linger: Duration) -> KafkaAdmin {
    admin_with(bootstrap, linger, Arc::default())
}

/// [`admin`], recording its claims in `claims`.
fn admin_with(bootstrap: &str, linger: Duration, claims: Arc<MemoryClaims>) -> KafkaAdmin {
    KafkaAdmin::start(client(bootstrap, Duration::from_secs(30)), claims, linger, 10)
}

fn no_topics() -> MetadataRequest {
    MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(Vec::new()))
}

fn desired(name: &str) -> DesiredTopic {
    DesiredTopic {
        name: name.to_owned(),
        partitions: 3,
        replication_factor: None,
        config: BTreeMap::new(),
        claim: Claim::Adopt,
        claimant: format!("ns/{name}/uid-1"),
    }
}

/// [`desired`] without a claim in the resource: what a new Topic asks.
fn unclaimed(name: &str) -> DesiredTopic {
    DesiredTopic { claim: Claim::Unclaimed, ..desired(name) }
}

/// The DescribeConfigs answer: every resource asked for, without a dynamic config.
fn no_configs(call: &super::fake_broker::Call) -> Reply {
    let request: DescribeConfigsRequest = call.decode();
    call.answer(
        &DescribeConfigsResponse::default().with_results(
            request
                .resources
                .iter()
                .map(|resource| {
                    DescribeConfigsResult::default()
                        .with_resource_type(resource.resource_type)
                        .with_resource_name(resource.resource_name.clone())
                })
                .collect(),
        ),
    )
}

/// The CreateTopics answer: every topic of the request gets what `outcome` says for its
/// name (error code and message; 0 for created).
/// The topics a CreateTopics request names, in its order.
fn topics_to_create(call: &super::fake_broker::Call) -> Vec<String> {
    let request: CreateTopicsRequest = call.decode();
    request.topics.iter().map(|t| t.name.0.as_str().to_owned()).collect()
}

fn create_answer(
    call: &super::fake_broker::Call,
    outcome: impl Fn(&str) -> (i16, Option<&'static str>),
) -> Reply {
    let request: CreateTopicsRequest = call.decode();
    call.answer(
        &CreateTopicsResponse::default().with_topics(
            request
                .topics
                .iter()
                .map(|topic| {
                    let (code, message) = outcome(topic.name.0.as_str());
                    CreatableTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_error_code(code)
                        .with_error_message(message.map(StrBytes::from_static_str))
                        .with_topic_id(if code == 0 {
                            uuid::Uuid::from_u128(7)
                        } else {
                            uuid::Uuid::nil()
                        })
                })
                .collect(),
        ),
    )
}

#[tokio::test]
async fn a_stalled_broker_does_not_hold_up_requests_to_the_others() {
    let cluster = FakeCluster::start(3, |call| match (call.node, call.api) {
        // Broker 1 accepts the connection and never answers the handshake.
        (1, ApiKey::ApiVersions) => Reply::Stall,
        _ => Reply::Default,
    })
    .await;
    let client = client(&cluster.addresses[&2], Duration::from_secs(60));
    client.metadata(Some(&[])).await.expect("metadata from broker 2");
    let stalled = tokio::spawn({
        let client = Arc::clone(&client);
        async move { client.send_to(1, &no_topics()).await }
    });
    cluster.wait_for(|calls| calls.contains(&(1, ApiKey::ApiVersions))).await;
    // Broker 1's connect is under way, and bounded only by the 60 s timeout.
    let answer = tokio::time::timeout(Duration::from_secs(20), client.send_to(3, &no_topics()))
        .await
        .expect("broker 3 answers while broker 1 stalls");
    answer.expect("metadata from broker 3");
    assert!(!stalled.is_finished(), "broker 1 still stalls");
    stalled.abort();
}

#[tokio::test]
async fn requests_waiting_on_a_stalled_connect_fail_with_it() {
    let cluster = FakeCluster::start(2, |call| match (call.node, call.api) {
        (1, ApiKey::ApiVersions) => Reply::Stall,
        _ => Reply::Default,
    })
    .await;
    let client = client(&cluster.addresses[&2], Duration::from_secs(2));
    client.metadata(Some(&[])).await.expect("metadata from broker 2");
    // The lag reader sends two ListOffsets to each leader at once.
    let request = no_topics();
    let (first, second) = tokio::join!(client.send_to(1, &request), client.send_to(1, &request));
    let (first, second) = (first.expect_err("stalled"), second.expect_err("stalled"));
    assert!(matches!(first, WireError::Timeout { api: "ApiVersions", .. }), "{first}");
    assert_eq!(first.to_string(), second.to_string());
    assert_eq!(
        cluster.calls().iter().filter(|call| **call == (1, ApiKey::ApiVersions)).count(),
        1,
        "one connect attempt, not one per waiting request"
    );
    // A request after the failure tries again.
    client.send_to(1, &no_topics()).await.expect_err("still stalled");
    assert_eq!(cluster.calls().iter().filter(|call| **call == (1, ApiKey::ApiVersions)).count(), 2);
}

#[tokio::test]
async fn requests_queued_behind_an_unanswered_one_share_its_timeout() {
    let cluster = FakeCluster::start(2, |call| match (call.node, call.api) {
        (1, ApiKey::Metadata) => Reply::Stall,
        _ => Reply::Default,
    })
    .await;
    let timeout = Duration::from_secs(3);
    let client = client(&cluster.addresses[&2], timeout);
    client.metadata(Some(&[])).await.expect("metadata from broker 2");
    let request = no_topics();
    let started = std::time::Instant::now();
    let (first, second) = tokio::join!(client.send_to(1, &request), client.send_to(1, &request));
    let took = started.elapsed();
    assert!(matches!(first, Err(WireError::Timeout { api: "Metadata", .. })), "{first:?}");
    assert!(matches!(second, Err(WireError::Timeout { api: "Metadata", .. })), "{second:?}");
    // One timeout for both, not one after the other (6 s).
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn send_any_moves_on_from_a_dead_broker_and_tries_it_last_after() {
    let dead = Arc::new(AtomicBool::new(false));
    let cluster = FakeCluster::start(2, {
        let dead = Arc::clone(&dead);
        move |call| match (call.node, call.api) {
            // Broker 1 still takes connections, then drops every request.
            (1, ApiKey::Metadata) if dead.load(Ordering::SeqCst) => Reply::Close,
            _ => Reply::Default,
        }
    })
    .await;
    let client = client(&cluster.bootstrap(), Duration::from_secs(30));
    client.metadata(Some(&[])).await.expect("metadata from broker 1");
    assert_eq!(cluster.nodes_for(ApiKey::Metadata), [1]);
    dead.store(true, Ordering::SeqCst);
    client.metadata(Some(&[])).await.expect("metadata from broker 2 once broker 1 failed");
    // The cached connection to broker 1 failed: broker 2 next, not broker 1 again.
    assert_eq!(cluster.nodes_for(ApiKey::Metadata), [1, 1, 2]);
    client.metadata(Some(&[])).await.expect("metadata again");
    assert_eq!(cluster.nodes_for(ApiKey::Metadata), [1, 1, 2, 2], "the failed broker last");
}

#[tokio::test]
async fn creates_go_to_the_controller_and_follow_it_after_not_controller() {
    let controller = Arc::new(AtomicI32::new(1));
    let cluster = FakeCluster::start_with(3, Arc::clone(&controller), {
        let controller = Arc::clone(&controller);
        move |call| match (call.node, call.api) {
            (1, ApiKey::CreateTopics) => {
                // The controller moved to broker 2 just before the request came.
                controller.store(2, Ordering::SeqCst);
                create_answer(call, |_| {
                    (
                        ResponseError::NotController.code(),
                        Some("fake broker 1 is not the controller"),
                    )
                })
            }
            (2, ApiKey::CreateTopics) => create_answer(call, |_| (0, None)),
            (_, ApiKey::CreateTopics) => Reply::Close,
            _ => Reply::Default,
        }
    })
    .await;
    let admin = admin(&cluster.addresses[&3], Duration::from_millis(10));
    let applied = admin.apply(desired("moved")).await.expect("created on the new controller");
    let Applied::Topic(topic) = applied else { panic!("not created: {applied:?}") };
    assert!(topic.created);
    assert!(topic.topic_id.is_some());
    assert_eq!(cluster.nodes_for(ApiKey::CreateTopics), [1, 2]);
    let apis: Vec<ApiKey> = cluster
        .calls()
        .into_iter()
        .map(|(_, api)| api)
        .filter(|api| matches!(api, ApiKey::Metadata | ApiKey::CreateTopics))
        .collect();
    assert_eq!(
        apis,
        [ApiKey::Metadata, ApiKey::CreateTopics, ApiKey::Metadata, ApiKey::CreateTopics],
        "the metadata is read again before the retry"
    );
    let calls = admin.metrics().calls();
    assert_eq!((calls[&AdminCall::Metadata], calls[&AdminCall::CreateTopics]), (2, 2));
}

#[tokio::test]
async fn the_last_refusal_keeps_the_brokers_message_and_only_retriable_ones_are_resent() {
    let sent: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let cluster = FakeCluster::start(1, {
        let sent = Arc::clone(&sent);
        move |call| match call.api {
            ApiKey::CreateTopics => {
                sent.lock().unwrap().push(topics_to_create(call));
                create_answer(call, |name| match name {
                    "moving" => (
                        ResponseError::NotController.code(),
                        Some("fake: this broker is not the controller"),
                    ),
                    _ => (
                        ResponseError::InvalidReplicationFactor.code(),
                        Some("fake: replication factor 3 is larger than the 1 broker"),
                    ),
                })
            }
            _ => Reply::Default,
        }
    })
    .await;
    let admin = admin(&cluster.bootstrap(), Duration::from_millis(200));
    let (moving, refused) =
        tokio::join!(admin.apply(desired("moving")), admin.apply(desired("refused")));
    let moving = moving.expect_err("never accepted");
    assert!(
        matches!(&moving, AdminError::Topic { error: ResponseError::NotController, .. }),
        "{moving:?}"
    );
    assert!(moving.to_string().contains("fake: this broker is not the controller"), "{moving}");
    let refused = refused.expect_err("refused");
    assert!(
        refused.to_string().contains("fake: replication factor 3 is larger than the 1 broker"),
        "{refused}"
    );
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), ATTEMPTS as usize, "{sent:?}");
    assert_eq!(sent[0].len(), 2, "one batch for both: {sent:?}");
    assert!(sent[1..].iter().all(|topics| topics == &["moving"]), "{sent:?}");
    assert_eq!(admin.metrics().calls()[&AdminCall::CreateTopics], u64::from(ATTEMPTS));
}

#[tokio::test]
async fn requests_that_keep_coming_share_a_batch_past_the_linger() {
    let sent: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let cluster = FakeCluster::start(1, {
        let sent = Arc::clone(&sent);
        move |call| match call.api {
            ApiKey::CreateTopics => {
                sent.lock().unwrap().push(topics_to_create(call));
                create_answer(call, |_| (0, None))
            }
            _ => Reply::Default,
        }
    })
    .await;
    // Requests 250 ms apart with a linger of 1 s: six of them span more than one
    // linger from the first, and still go in one batch.
    let linger = Duration::from_secs(1);
    let admin = admin(&cluster.bootstrap(), linger);
    let started = tokio::time::Instant::now();
    let mut longest_gap = Duration::ZERO;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..6 {
        let admin = admin.clone();
        requests.spawn(async move { admin.apply(desired(&format!("stream-{n}"))).await });
        let before = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(250)).await;
        longest_gap = longest_gap.max(before.elapsed());
    }
    while let Some(applied) = requests.join_next().await {
        applied.unwrap().expect("created");
    }
    let sent = sent.lock().unwrap().clone();
    // A machine so loaded that a pause reached the linger, or the stream the cap, may
    // split the batch: then only nothing may be lost.
    if longest_gap < linger / 2 && started.elapsed() < linger * MAX_LINGER_FACTOR / 2 {
        assert_eq!(sent.len(), 1, "one batch for the stream: {sent:?}");
        assert_eq!(sent[0].len(), 6, "{sent:?}");
    }
    assert_eq!(sent.iter().map(Vec::len).sum::<usize>(), 6, "{sent:?}");
}

/// Kafka's metadata may lag a create by a while: a reconcile that comes back meanwhile
/// finds the topic missing, creates it again and hears "already exists". That answer
/// is about the batcher's own topic, not someone else's: the claim must hold. A name
/// the batcher never created that answers the same is another's topic.
#[tokio::test]
async fn a_create_again_before_metadata_shows_our_topic_is_still_ours() {
    let creates = Arc::new(AtomicI32::new(0));
    let cluster = FakeCluster::start(1, {
        let creates = Arc::clone(&creates);
        move |call| match call.api {
            // The fake's Metadata never lists these topics: it lags for ever.
            ApiKey::CreateTopics if creates.fetch_add(1, Ordering::SeqCst) == 0 => {
                create_answer(call, |_| (0, None))
            }
            ApiKey::CreateTopics => create_answer(call, |_| {
                (ResponseError::TopicAlreadyExists.code(), Some("Topic already exists."))
            }),
            _ => Reply::Default,
        }
    })
    .await;
    let admin = admin(&cluster.bootstrap(), Duration::from_millis(10));
    let claimed = |name: &str| DesiredTopic { claim: Claim::Claimed, ..desired(name) };

    let first = admin.apply(claimed("lagging")).await.expect("created");
    let Applied::Topic(first) = first else { panic!("not created: {first:?}") };
    assert!(first.created);
    let again = admin.apply(claimed("lagging")).await.expect("applied again");
    let Applied::Topic(again) = again else { panic!("our own topic refused: {again:?}") };
    assert!(!again.created, "it existed already: {again:?}");
    assert_eq!(creates.load(Ordering::SeqCst), 2);

    let other = admin.apply(claimed("someone-elses")).await.expect("answered");
    assert_eq!(other, Applied::NotOwned { topic_id: None }, "a topic this batcher never made");
}

/// A new Topic's topic is created once its intent is in the claim store, and only then:
/// one record for the whole batch, no status write in between.
#[tokio::test]
async fn a_missing_topic_is_claimed_in_the_store_before_its_create() {
    let claims = Arc::new(MemoryClaims::default());
    let claimed_at_create = Arc::new(Mutex::new(Vec::new()));
    let cluster = FakeCluster::start(1, {
        let (claims, seen) = (Arc::clone(&claims), Arc::clone(&claimed_at_create));
        move |call| match call.api {
            ApiKey::CreateTopics => {
                for name in topics_to_create(call) {
                    seen.lock().unwrap().push((name.clone(), claims.claimant(&name)));
                }
                create_answer(call, |_| (0, None))
            }
            _ => Reply::Default,
        }
    })
    .await;
    let admin = admin_with(&cluster.bootstrap(), Duration::from_millis(50), Arc::clone(&claims));

    let (a, b) = tokio::join!(admin.apply(unclaimed("a")), admin.apply(unclaimed("b")));
    for applied in [a, b] {
        let applied = applied.expect("applied");
        assert!(matches!(applied, Applied::Topic(ref t) if t.created), "{applied:?}");
    }
    let mut seen = claimed_at_create.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("a".to_owned(), Some("ns/a/uid-1".to_owned())),
            ("b".to_owned(), Some("ns/b/uid-1".to_owned()))
        ],
        "every topic's claim was recorded before the create that made it"
    );
}

/// A claim store that cannot record the intent stops the create: the error says why,
/// and Kafka is not asked to create anything.
#[tokio::test]
async fn a_claim_that_cannot_be_recorded_creates_nothing() {
    let claims = Arc::new(MemoryClaims::default());
    claims.fail_with(Some("store unreachable"));
    let cluster = FakeCluster::start(1, |call| match call.api {
        ApiKey::CreateTopics => create_answer(call, |_| (0, None)),
        _ => Reply::Default,
    })
    .await;
    let admin = admin_with(&cluster.bootstrap(), Duration::from_millis(10), Arc::clone(&claims));

    let error = admin.apply(unclaimed("a")).await.expect_err("no claim, no create");
    assert!(matches!(error, AdminError::Claims(_)), "{error:?}");
    assert!(error.to_string().contains("store unreachable"), "{error}");
    assert!(cluster.nodes_for(ApiKey::CreateTopics).is_empty(), "nothing was created");

    claims.fail_with(None);
    let applied = admin.apply(unclaimed("a")).await.expect("created once the store is back");
    assert!(matches!(applied, Applied::Topic(ref t) if t.created), "{applied:?}");
}

/// The operator stopped between a create and the status write that records the id: the
/// topic is there, the Topic's status says nothing of it. The claim store tells whose it
/// is: that Topic's (the same uid), not another's, nor anyone's without a claim.
#[tokio::test]
async fn an_existing_topic_is_ours_only_with_our_recorded_claim() {
    let claims = Arc::new(MemoryClaims::default());
    let cluster = FakeCluster::start(1, |call| match call.api {
        ApiKey::DescribeConfigs => no_configs(call),
        _ => Reply::Default,
    })
    .await;
    let partitions = vec![FakePartition { leader: 1, replicas: vec![1] }; 3];
    for name in ["left", "foreign"] {
        cluster.add_topic(name, partitions.clone());
    }
    let claim =
        |name: &str| TopicClaim { kafka_name: name.into(), claimant: format!("ns/{name}/uid-1") };
    claims.record(&[claim("left"), claim("recycled")]).await.expect("recorded");
    cluster.add_topic("recycled", partitions.clone());
    let admin = admin_with(&cluster.bootstrap(), Duration::from_millis(10), Arc::clone(&claims));

    let ours = admin.apply(unclaimed("left")).await.expect("applied");
    let Applied::Topic(ours) = ours else { panic!("our own topic refused: {ours:?}") };
    assert!(!ours.created && ours.topic_id.is_some(), "{ours:?}");

    let recreated = DesiredTopic { claimant: "ns/left/uid-2".into(), ..unclaimed("left") };
    let other = admin.apply(recreated).await.expect("answered");
    assert!(matches!(other, Applied::NotOwned { topic_id: Some(_) }), "another uid: {other:?}");
    // "recycled" was created by its Topic, which recorded another id than the topic of
    // that name has now: made again by someone else. Its claim goes with that verdict, so
    // once the status has lost the id, nothing vouches for the new topic.
    let owned = DesiredTopic {
        claim: Claim::Owned("AAAAAAAAAAAAAAAAAAAAAQ".into()),
        ..unclaimed("recycled")
    };
    let replaced = admin.apply(owned).await.expect("answered");
    assert!(matches!(replaced, Applied::NotOwned { topic_id: Some(_) }), "{replaced:?}");
    assert_eq!(claims.claimant("recycled"), None, "the claim was forgotten");
    let recycled = admin.apply(unclaimed("recycled")).await.expect("answered");
    assert!(matches!(recycled, Applied::NotOwned { .. }), "made again: {recycled:?}");
    let foreign = admin.apply(unclaimed("foreign")).await.expect("answered");
    assert!(matches!(foreign, Applied::NotOwned { topic_id: Some(_) }), "no claim: {foreign:?}");
    assert!(cluster.nodes_for(ApiKey::CreateTopics).is_empty(), "nothing was created");
}
