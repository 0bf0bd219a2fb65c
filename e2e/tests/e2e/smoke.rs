//! Each server of the stack answers through the Rust client the project uses.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};
use licenseware_e2e::{Stack, eventually, unique_name};
use mongodb::bson::{Document, doc};
use rdkafka::{
    ClientConfig, Message,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{CommitMode, Consumer, StreamConsumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use redis::AsyncCommands;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn kube_lists_namespaces_and_round_trips_a_configmap() {
    let client = kube::Client::try_default().await.expect("kubeconfig from KUBECONFIG");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|namespace| namespace.metadata.name)
        .collect();
    assert!(names.iter().any(|name| name == "default"), "namespaces: {names:?}");
    assert!(names.iter().any(|name| name == "kube-system"), "namespaces: {names:?}");

    let config_maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let name = unique_name("smoke");
    let config_map = ConfigMap {
        metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() },
        data: Some([("greeting".to_owned(), "hello".to_owned())].into()),
        ..ConfigMap::default()
    };
    config_maps.create(&PostParams::default(), &config_map).await.expect("create configmap");
    let read_back = config_maps.get(&name).await.expect("get configmap");
    assert_eq!(
        read_back.data.unwrap_or_default().get("greeting").map(String::as_str),
        Some("hello")
    );
    assert!(read_back.metadata.uid.is_some(), "the apiserver assigns a uid");
    config_maps.delete(&name, &DeleteParams::default()).await.expect("delete configmap");
}

#[tokio::test]
async fn kube_enforces_rbac() {
    // A ServiceAccount with no bindings must be refused: the stack runs RBAC,
    // so the operator's own RBAC rules can be tested on it.
    let mut config = kube::Config::infer().await.expect("kubeconfig from KUBECONFIG");
    config.auth_info.impersonate =
        Some(format!("system:serviceaccount:default:{}", unique_name("nobody")));
    let client = kube::Client::try_from(config).expect("impersonating client");
    let namespaces: Api<Namespace> = Api::all(client);
    match namespaces.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden for an unbound ServiceAccount, got {other:?}"),
    }
}

#[tokio::test]
async fn kafka_creates_a_topic_then_produces_and_consumes() {
    let stack = Stack::from_env();
    let topic = unique_name("smoke");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_brokers)
        .create()
        .expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT));
    let created = admin
        .create_topics(&[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))], &options)
        .await
        .expect("create_topics request");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].as_ref().map_err(|(_, code)| *code), Ok(&topic));

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_brokers)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let headers = OwnedHeaders::new().insert(Header { key: "tenant_id", value: Some("t-1") });
    producer
        .send(
            FutureRecord::to(&topic)
                .key("event-1")
                .payload(r#"{"hello":"kafka"}"#)
                .headers(headers),
            KAFKA_TIMEOUT,
        )
        .await
        .map_err(|(error, _)| error)
        .expect("produce");

    let group = unique_name("smoke-group");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.kafka_brokers)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let message = tokio::time::timeout(KAFKA_TIMEOUT, consumer.recv())
        .await
        .expect("a message within the timeout")
        .expect("consume");
    assert_eq!(message.key(), Some(&b"event-1"[..]));
    assert_eq!(message.payload(), Some(&br#"{"hello":"kafka"}"#[..]));
    let header = message.headers().expect("headers").get(0);
    assert_eq!((header.key, header.value), ("tenant_id", Some(&b"t-1"[..])));

    // The worker's at-least-once delivery rests on commits being stored.
    consumer.commit_message(&message, CommitMode::Sync).expect("commit");
    let committed = consumer.committed(KAFKA_TIMEOUT).expect("committed offsets");
    let offset = committed
        .find_partition(&topic, message.partition())
        .expect("partition in committed list")
        .offset();
    assert_eq!(offset, rdkafka::Offset::Offset(message.offset() + 1));

    let deleted = admin.delete_topics(&[&topic], &options).await.expect("delete_topics request");
    assert!(deleted[0].is_ok(), "{deleted:?}");
}

#[tokio::test]
async fn mongodb_inserts_and_finds() {
    let stack = Stack::from_env();
    let client = mongodb::Client::with_uri_str(&stack.mongo_url).await.expect("mongodb client");
    let collection =
        client.database("licenseware_smoke").collection::<Document>(&unique_name("smoke"));

    collection
        .insert_one(doc! { "_id": "device-1", "tenant_id": "t-1", "cpus": 4_i64 })
        .await
        .expect("insert");
    collection
        .insert_one(doc! { "_id": "device-2", "tenant_id": "t-2", "cpus": 8_i64 })
        .await
        .expect("insert");

    let found =
        collection.find_one(doc! { "tenant_id": "t-1" }).await.expect("find").expect("a document");
    assert_eq!(found.get_str("_id"), Ok("device-1"));
    assert_eq!(found.get_i64("cpus"), Ok(4));
    let all: Vec<Document> =
        collection.find(doc! {}).await.expect("find").try_collect().await.expect("cursor");
    assert_eq!(all.len(), 2);

    collection.drop().await.expect("drop");
}

#[tokio::test]
async fn redis_sets_with_expiry_and_gets() {
    let stack = Stack::from_env();
    let client = redis::Client::open(stack.redis_url.as_str()).expect("redis url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("redis connection");
    let key = unique_name("smoke");

    let () = connection.set_ex(&key, r#"{"status":"idle"}"#, 7200).await.expect("set");
    let value: Option<String> = connection.get(&key).await.expect("get");
    assert_eq!(value.as_deref(), Some(r#"{"status":"idle"}"#));
    let ttl: i64 = connection.ttl(&key).await.expect("ttl");
    assert!((1..=7200).contains(&ttl), "ttl {ttl}");

    // Expiry really happens: a short-lived key disappears on its own.
    let short = format!("{key}-short");
    let () = redis::cmd("SET")
        .arg(&short)
        .arg("v")
        .arg("PX")
        .arg(200)
        .query_async(&mut connection)
        .await
        .expect("set px");
    eventually(Duration::from_secs(5), "the short-lived key to expire", || {
        let mut connection = connection.clone();
        let short = short.clone();
        async move {
            let exists: bool = connection.exists(&short).await.expect("exists");
            (!exists).then_some(())
        }
    })
    .await;
    let () = connection.del(&key).await.expect("del");
}
