//! The documented 503s: `serve` pointed at a Redis or a MongoDB that is away, either
//! refusing connections or accepting them and never answering. `/readyz` is 503 and
//! names the store; the routes that need it answer 503 with the SDK's fail body, each
//! within a bound (the clients' own timeouts), never hanging.

use std::time::{Duration, Instant};

use licenseware_e2e::{
    api::ApiProcess,
    consumer::{ConsumerSetup, stack_shared},
};
use serde_json::{Value, json};

/// Longer than any timeout of the API's store clients (5 s), far shorter than a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// An address where nothing listens: a port just bound and released.
fn refusing_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

/// An address that accepts connections and never sends a byte; the connections stay
/// open until the test's runtime ends.
async fn silent_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}

/// Sends `request`, and checks it is answered 503 within [`ANSWER_WITHIN`], with the
/// fail body naming one of `what` (a store is named by the step that found it away).
async fn expect_unavailable(request: reqwest::RequestBuilder, what: &[&str], route: &str) {
    let started = Instant::now();
    let response = tokio::time::timeout(ANSWER_WITHIN, request.send())
        .await
        .unwrap_or_else(|_| panic!("{route} did not answer within {ANSWER_WITHIN:?}"))
        .expect("a response");
    assert_eq!(response.status(), 503, "{route}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "fail", "{route}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    let named = what.iter().any(|what| message.starts_with(&format!("{what} is unavailable")));
    assert!(named, "{route}: {body}");
    println!("{route}: 503 in {:?}", started.elapsed());
}

/// `/readyz` is 503, its check of `store` is an error and the others are ok.
async fn expect_not_ready(api: &ApiProcess, store: &str) {
    let started = Instant::now();
    let response =
        tokio::time::timeout(ANSWER_WITHIN, api.http.get(format!("{}/readyz", api.url)).send())
            .await
            .expect("/readyz answers within the bound")
            .expect("a response");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "not ready", "{body}");
    for check in ["registry", "mongodb", "redis", "kafka"] {
        if check == store {
            assert_ne!(body["checks"][check], "ok", "{body}");
        } else {
            assert_eq!(body["checks"][check], "ok", "{body}");
        }
    }
    println!("/readyz: 503 in {:?}", started.elapsed());
}

fn spec() -> Value {
    json!({"name": "Lines", "acceptedFileTypes": [".csv"], "freeQuotaUnits": 10})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_is_503_on_readyz_and_on_the_routes_that_need_it() {
    let _stack = stack_shared().await;
    for (how, address) in [("refusing", refusing_address()), ("silent", silent_address().await)] {
        // A world per API: each API creates its registry topic.
        let setup = ConsumerSetup::with_spec(&format!("api-redis-{how}"), 1, 2, spec()).await;
        let url = format!("redis://{address}/");
        let label = format!("redis-{how}");
        let api = ApiProcess::start_with_env(&setup, &label, &[], &[("LW_REDIS_URL", &url)]).await;
        let tenant = uuid::Uuid::new_v4().to_string();
        let token = api.token(&tenant, "user", &[]);
        expect_not_ready(&api, "redis").await;
        let with_auth = |request: reqwest::RequestBuilder| {
            request.header("TenantId", &tenant).bearer_auth(&token)
        };
        expect_unavailable(
            with_auth(api.http.get(api.uploader_url(&setup, "status"))),
            &["Redis"],
            &format!("{how}: GET status"),
        )
        .await;
        expect_unavailable(
            with_auth(api.http.post(api.uploader_url(&setup, "validation")))
                .json(&json!({"filenames": ["a.csv"]})),
            &["Redis", "the ticket store"],
            &format!("{how}: POST validation"),
        )
        .await;
        let form = reqwest::multipart::Form::new()
            .part("files", reqwest::multipart::Part::bytes(b"a\n1\n".to_vec()).file_name("a.csv"));
        expect_unavailable(
            with_auth(api.http.post(api.uploader_url(&setup, "files"))).multipart(form),
            &["Redis", "the quota store"],
            &format!("{how}: POST files"),
        )
        .await;
        setup.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_away_is_503_on_readyz_and_on_the_routes_that_need_it() {
    let _stack = stack_shared().await;
    for (how, address) in [("refusing", refusing_address()), ("silent", silent_address().await)] {
        let setup = ConsumerSetup::with_spec(&format!("api-mongo-{how}"), 1, 2, spec()).await;
        let url = format!("mongodb://{address}/{}", setup.database);
        let label = format!("mongo-{how}");
        let api = ApiProcess::start_with_env(&setup, &label, &[], &[("LW_MONGO_URL", &url)]).await;
        let tenant = uuid::Uuid::new_v4().to_string();
        let token = api.token(&tenant, "user", &[]);
        expect_not_ready(&api, "mongodb").await;
        let with_auth = |request: reqwest::RequestBuilder| {
            request.header("TenantId", &tenant).bearer_auth(&token)
        };
        let app = format!("{}/{}", api.url, setup.app_id);
        for (route, what) in [
            (api.uploader_url(&setup, "quota"), "the quota store"),
            (format!("{app}/history"), "MongoDB"),
        ] {
            let name = format!("{how}: GET {}", route.trim_start_matches(&api.url));
            expect_unavailable(with_auth(api.http.get(&route)), &[what], &name).await;
        }
        // The tenant's info is for machine tokens.
        let machine = api.token(&tenant, "platform", &["--machine"]);
        expect_unavailable(
            api.http
                .get(format!("{app}/tenants/{tenant}"))
                .header("TenantId", &tenant)
                .bearer_auth(&machine),
            &["MongoDB"],
            &format!("{how}: GET tenants/{{tenant}}"),
        )
        .await;
        expect_unavailable(
            with_auth(api.http.post(api.uploader_url(&setup, "validation")))
                .json(&json!({"filenames": ["a.csv"]})),
            &["the quota store"],
            &format!("{how}: POST validation"),
        )
        .await;
        setup.cleanup().await;
    }
}
