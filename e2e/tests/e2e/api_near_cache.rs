//! The API's near cache of component data on the real stack: a hit answered from the
//! process's memory (the value gone from Redis, still the same hit), a change of
//! generation made by another process reaching it as a Redis push, and the tracking
//! connection killed: nothing it kept is trusted, and tracking comes back.

use licenseware_e2e::{
    api::{ApiProcess, forget_tenants},
    consumer::{ConsumerSetup, stack_shared},
};
use mongodb::bson::{Document, doc};

use crate::api_reports::{Client, bump, csv_spec, inventory, machines, names, uuid, vm_list};

/// The Redis keys of tenant `tenant`'s cached component results.
async fn cached_values(redis: &mut redis::aio::MultiplexedConnection, tenant: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("component_cache:{tenant}:*"))
        .query_async(redis)
        .await
        .expect("KEYS")
}

/// The ids of the API process's tracking connections.
async fn tracking_connections(
    redis: &mut redis::aio::MultiplexedConnection,
    pid: u32,
) -> Vec<String> {
    let list: String =
        redis::cmd("CLIENT").arg("LIST").query_async(redis).await.expect("CLIENT LIST");
    let name = format!("name=licenseware-api-near-cache-{pid} ");
    list.lines()
        .filter(|line| line.contains(&name))
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_near_cache_answers_hits_itself_and_follows_every_change_made_elsewhere() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::with_spec("api-near", 1, 2, csv_spec()).await;
    let api = ApiProcess::start(&setup, "near", &[]).await;
    let app = setup.app_id.clone();
    api.publish_reports(&setup, &[inventory(&app)], &[vm_list(&app)]).await;
    let a = uuid();
    let token = api.token(&a, "alice", &[]);
    let data = setup.mongo.collection::<Document>("Data");
    data.insert_many(machines(&a, &app, "alpha", 3)).await.expect("insert A's machines");
    let client = Client { api: &api, base: format!("{}/{app}", api.url) };
    let path = "/report-components/vm-list";
    let mut redis = setup.redis.get_multiplexed_async_connection().await.expect("redis");
    let has = |name: &'static str| {
        move |answer: &crate::api_reports::Answer| {
            answer.status == 200 && names(&answer.body).iter().any(|n| n == name)
        }
    };

    // Computed once; then the value leaves Redis and the answer is still a hit with the
    // same ETag: this process holds it (what one key names never changes).
    let first = client.get(path, &a, &token).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "miss"), "{}", first.body);
    let keys = cached_values(&mut redis, &a).await;
    assert!(!keys.is_empty(), "the result is in Redis too");
    let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.expect("DEL");
    let near = client.get(path, &a, &token).await;
    assert_eq!(
        (near.cache.as_str(), near.etag.as_str()),
        ("hit", first.etag.as_str()),
        "{}",
        api.log()
    );
    assert_eq!(tracking_connections(&mut redis, api.pid()).await.len(), 1);

    // Another process changes A's data and generation (what the worker does after an
    // event): Redis pushes the change, and the next answers are computed anew.
    data.insert_one(doc! {"tenant_id": &a, "app_id": &app, "document_type": "virtual_machine", "name": "alpha-new"})
        .await
        .expect("insert");
    bump(&setup, &a).await;
    let fresh = client.get_until(path, &a, &token, has("alpha-new")).await;
    assert!(has("alpha-new")(&fresh), "{}\n{}", fresh.body, api.log());
    assert_eq!(fresh.cache, "miss");
    assert_ne!(fresh.etag, first.etag);

    // The counter deleted (a flush, an eviction, a cleanup) and made again: nothing
    // kept or cached under its old numbers may be served.
    let _: u64 = redis::cmd("DEL")
        .arg(format!("component_cache_gen:{a}:{app}"))
        .query_async(&mut redis)
        .await
        .expect("DEL the generation");
    let counted_from_zero = client.get(path, &a, &token).await;
    assert_eq!(counted_from_zero.status, 200);
    data.insert_one(doc! {"tenant_id": &a, "app_id": &app, "document_type": "virtual_machine", "name": "alpha-recounted"})
        .await
        .expect("insert");
    bump(&setup, &a).await;
    let recounted = client.get_until(path, &a, &token, has("alpha-recounted")).await;
    assert!(has("alpha-recounted")(&recounted), "{}\n{}", recounted.body, api.log());

    // The tracking connection killed, then a change: what the API kept is not trusted
    // without the pushes, so the change is seen; and tracking comes back.
    for id in tracking_connections(&mut redis, api.pid()).await {
        let _: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(&id)
            .query_async(&mut redis)
            .await
            .expect("KILL");
    }
    data.insert_one(doc! {"tenant_id": &a, "app_id": &app, "document_type": "virtual_machine", "name": "alpha-after-kill"})
        .await
        .expect("insert");
    bump(&setup, &a).await;
    let after = client.get_until(path, &a, &token, has("alpha-after-kill")).await;
    assert!(has("alpha-after-kill")(&after), "{}\n{}", after.body, api.log());
    // Connections are made again at most once a second: requests bring it back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tracking_connections(&mut redis, api.pid()).await.is_empty()
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        client.get(path, &a, &token).await;
    }
    assert_eq!(tracking_connections(&mut redis, api.pid()).await.len(), 1, "tracking again");
    let keys = cached_values(&mut redis, &a).await;
    let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.expect("DEL");
    let again = client.get(path, &a, &token).await;
    assert_eq!((again.cache.as_str(), again.etag.as_str()), ("hit", after.etag.as_str()));

    forget_tenants(&setup, &[&a]).await;
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}
