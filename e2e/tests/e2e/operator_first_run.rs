//! The operator binary's first run: it reaches every server of the stack,
//! reports ready, and stops cleanly when told to.

use std::time::Duration;

use licenseware_e2e::{InProcessOperator, Stack, eventually, operator};
use licenseware_operator::config::Config;
use tokio::net::TcpListener;

#[tokio::test]
async fn operator_reports_ready_and_shuts_down_gracefully() {
    let stack = Stack::from_env();
    let client = kube::Client::try_default().await.expect("kubeconfig from KUBECONFIG");
    licenseware_e2e::install_crds(&client).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
    let probe = format!("http://{}", listener.local_addr().expect("local addr"));
    // A namespace of its own, so this operator leaves the other tests' Topics alone.
    let namespace = licenseware_e2e::unique_name("first-run");
    let probe_addr = listener.local_addr().expect("local addr");
    let config = Config {
        readiness_interval_secs: 1,
        ..operator::config(stack, probe_addr, &namespace, "")
    };
    let mut operator = InProcessOperator::spawn(config, listener);

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
    assert_eq!(checks[1]["detail"], "6 established");
    assert_eq!(checks[2]["detail"], "1 broker(s)");

    assert!(operator.signal_stop(), "operator still running");
    operator.stop(Duration::from_secs(10)).await;
}
