//! The operator binary's first run: it reaches every server of the stack,
//! reports ready, and stops cleanly when told to.

use std::time::Duration;

use licenseware_e2e::{Stack, eventually};
use licenseware_operator::config::{Config, LeaderConfig, LogFormat};
use tokio::{net::TcpListener, sync::oneshot};

#[tokio::test]
async fn operator_reports_ready_and_shuts_down_gracefully() {
    let stack = Stack::from_env();
    let client = kube::Client::try_default().await.expect("kubeconfig from KUBECONFIG");
    licenseware_e2e::install_crds(&client).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
    let probe = format!("http://{}", listener.local_addr().expect("local addr"));
    let config = Config {
        kafka_brokers: stack.kafka_brokers,
        mongo_url: stack.mongo_url,
        redis_url: stack.redis_url,
        probe_addr: listener.local_addr().expect("local addr"),
        readiness_interval_secs: 1,
        log_format: LogFormat::Text,
        // A namespace of its own, so this operator leaves the other tests' Topics alone.
        namespaces: vec![licenseware_e2e::unique_name("first-run")],
        topic_prefix: String::new(),
        resync_interval_secs: 120,
        registry_database: None,
        workers: Default::default(),
        leader: LeaderConfig::disabled(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let operator = tokio::spawn(licenseware_operator::serve(config, listener, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let healthz = http.get(format!("{probe}/healthz")).send().await.expect("GET /healthz");
    assert_eq!(healthz.status(), 200);

    let readiness: serde_json::Value =
        eventually(Duration::from_secs(30), "/readyz to answer 200", || {
            let http = http.clone();
            let url = format!("{probe}/readyz");
            async move {
                let response = http.get(url).send().await.ok()?;
                if response.status() != 200 {
                    return None;
                }
                response.json().await.ok()
            }
        })
        .await;
    let checks = readiness["checks"].as_array().expect("checks array");
    let names: Vec<&str> = checks.iter().filter_map(|check| check["name"].as_str()).collect();
    assert_eq!(names, ["kubernetes", "crds", "kafka", "mongodb", "redis"]);
    assert!(checks.iter().all(|check| check["ready"] == true), "{readiness}");
    assert_eq!(checks[1]["detail"], "5 established");
    assert_eq!(checks[2]["detail"], "1 broker(s)");

    stop.send(()).expect("operator still running");
    let outcome = tokio::time::timeout(Duration::from_secs(10), operator)
        .await
        .expect("operator stops within 10 s of shutdown")
        .expect("operator task did not panic");
    assert!(outcome.is_ok(), "{outcome:?}");
}
