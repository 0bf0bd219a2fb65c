//! The stack's Redis and MongoDB have a user, as production servers do (`e2e/stack/up`:
//! a Redis ACL user with the default user off, FerretDB with SCRAM): every client of
//! the suite authenticates with the credentials in `LW_REDIS_URL` and `LW_MONGO_URL`,
//! which the operator hands to the workers from a Secret. This module shows that the
//! servers refuse a client without credentials, so that the rest of the suite passing
//! proves they flow everywhere; and that a wrong password makes the `/readyz` of the
//! API, the worker and the operator fail within seconds, naming the store and the
//! server's refusal, instead of hanging.

use std::{
    ffi::OsStr,
    path::Path,
    time::{Duration, Instant},
};

use licenseware_e2e::{
    Stack,
    api::ApiProcess,
    consumer::{
        ConsumerSetup, WorkerProcess, mongo_url_with_database, stack_shared, worker_binary,
    },
    eventually,
    operator_process::OperatorProcess,
};
use mongodb::bson::doc;
use serde_json::json;

use crate::restart::Harness;

/// Far longer than the clients' own timeouts (5–10 s); a hang would be minutes.
const WITHIN: Duration = Duration::from_secs(60);

/// `url` with its password replaced (`scheme://user:password@host...`).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (userinfo, host) = rest.split_once('@').expect("the stack's URLs carry a user");
    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` without its user and password.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{host}")
}

/// Whether a `/readyz` body names `store` and says why it refused.
fn names_refusal(body: &str, store: &str) -> bool {
    let lower = body.to_lowercase();
    lower.contains(store) && (lower.contains("auth") || lower.contains("wrongpass"))
}

/// Waits for `readyz` to be 503 naming `store`'s refusal; returns how long it took.
async fn refused_within<F, Fut>(what: &str, store: &str, readyz: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<(u16, String)>>,
{
    let started = Instant::now();
    let body = eventually(WITHIN, &format!("{what}'s /readyz to name {store}'s refusal"), || {
        let answer = readyz();
        async move {
            let (status, body) = answer.await?;
            (status == 503 && names_refusal(&body, store)).then_some(body)
        }
    })
    .await;
    let elapsed = started.elapsed();
    println!("{what}, wrong {store} password: /readyz 503 after {elapsed:?}: {body}");
    elapsed
}

async fn get(http: &reqwest::Client, url: String) -> Option<(u16, String)> {
    let response = http.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stacks_redis_and_mongodb_refuse_clients_without_credentials() {
    let stack = Stack::from_env();
    let redis = redis::Client::open(without_credentials(&stack.redis_url)).expect("redis URL");
    let mut connection = redis.get_multiplexed_async_connection().await.expect("a connection");
    let refused = redis::cmd("PING").query_async::<String>(&mut connection).await.unwrap_err();
    assert!(refused.to_string().contains("NOAUTH"), "Redis without a user: {refused}");
    let authenticated = redis::Client::open(stack.redis_url.as_str()).expect("redis URL");
    let mut connection = authenticated.get_multiplexed_async_connection().await.expect("auth");
    let pong: String = redis::cmd("PING").query_async(&mut connection).await.expect("PING");
    assert_eq!(pong, "PONG");

    let anonymous = mongo_url_with_database(&without_credentials(&stack.mongo_url), "anonymous");
    let client = mongodb::Client::with_uri_str(&anonymous).await.expect("mongo URL");
    let refused = client
        .database("anonymous")
        .collection::<mongodb::bson::Document>("probe")
        .insert_one(doc! {"a": 1})
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("requires authentication"), "MongoDB: {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_redis_and_mongodb_passwords_fail_every_readyz_within_seconds() {
    let _stack = stack_shared().await;
    let http = reqwest::Client::new();
    let harness = Harness::start("store-credentials").await;
    let mut slowest = Duration::ZERO;
    for store in ["redis", "mongodb"] {
        // A world per store: each API creates its registry topic.
        let spec = json!({"name": "Lines", "acceptedFileTypes": [".csv"]});
        let setup = ConsumerSetup::with_spec(&format!("creds-{store}"), 1, 2, spec).await;
        let (variable, url) = match store {
            "redis" => ("LW_REDIS_URL", with_password(&setup.stack.redis_url, "not-the-password")),
            _ => (
                "LW_MONGO_URL",
                mongo_url_with_database(
                    &with_password(&setup.stack.mongo_url, "not-the-password"),
                    &setup.database,
                ),
            ),
        };
        let url = &url;
        let label = format!("wrong-{store}");
        let api = ApiProcess::start_with_env(&setup, &label, &[], &[(variable, url)]).await;
        let took =
            refused_within("serve", store, || get(&http, format!("{}/readyz", api.url))).await;
        slowest = slowest.max(took);

        let worker = WorkerProcess::start_with_env(
            &setup,
            &label,
            worker_binary(),
            &["consume"],
            "info",
            &[(variable, Path::new(url.as_str()))],
        );
        let probe = worker.probe_url(WITHIN).await;
        let took = refused_within("consume", store, || get(&http, format!("{probe}/readyz"))).await;
        slowest = slowest.max(took);
        worker.terminate();

        let operator = OperatorProcess::start_with(
            &harness.setup,
            &label,
            &[],
            &[(variable, OsStr::new(url.as_str()))],
        );
        let took =
            refused_within("operator", store, || get(&http, format!("{}/readyz", operator.probe)))
                .await;
        slowest = slowest.max(took);
        setup.cleanup().await;
    }
    println!("slowest /readyz refusal: {slowest:?}");
}
