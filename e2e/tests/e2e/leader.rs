//! Leader election when the leader's apiserver stalls: connections stay open and
//! nothing is answered. Operator A reaches the apiserver through a proxy
//! ([`StallProxy`]) that the test stalls; operator B reaches it directly. A must give
//! leadership up when its renew deadline passes, which comes before the Lease expires
//! for B, so the two never lead at once: A's "leadership lost" is logged before B's
//! "became the leader", `licenseware_leader` is never 1 on both, the Lease goes from A
//! straight to B, and A exits non-zero (its pod restarts and campaigns again).

use std::{
    ffi::OsStr,
    net::{SocketAddr, ToSocketAddrs},
    time::{Duration, Instant},
};

use k8s_openapi::jiff::Timestamp;
use licenseware_e2e::{operator_process::OperatorProcess, stall_proxy::StallProxy, unique_name};

use crate::restart::Harness;

const WAIT: Duration = Duration::from_secs(90);

/// Short Lease timing, so the test takes seconds: the leader renews every second and
/// gives up 2 s after its last successful renewal; the Lease lasts 4 s.
const TIMING: [&str; 8] = [
    "--lease-duration-secs",
    "4",
    "--lease-renew-deadline-secs",
    "2",
    "--lease-renew-every-secs",
    "1",
    "--lease-retry-every-secs",
    "1",
];

/// The stack's kubeconfig (text), its apiserver URL and that server's address.
fn stack_apiserver() -> (String, String, SocketAddr) {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG (load e2e/.stack/env)");
    let text = std::fs::read_to_string(&path).expect("read the kubeconfig");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig YAML");
    let server = yaml["clusters"][0]["cluster"]["server"].as_str().expect("a server").to_owned();
    let authority = server.strip_prefix("https://").expect("an https server").trim_end_matches('/');
    assert!(authority.starts_with("127.0.0.1:"), "the stack's apiserver is local: {server}");
    let address = authority.to_socket_addrs().expect("server address").next().expect("one");
    (text, server, address)
}

/// The stack's kubeconfig with its server moved to `proxy`: same host, so the
/// apiserver's certificate (issued for 127.0.0.1) still matches through the proxy.
fn proxied_kubeconfig(proxy: SocketAddr) -> std::path::PathBuf {
    let (text, server, _) = stack_apiserver();
    let proxied = text.replace(&server, &format!("https://{proxy}"));
    let out = std::env::temp_dir().join(format!("{}.kubeconfig", unique_name("stalled")));
    std::fs::write(&out, proxied).expect("write the proxied kubeconfig");
    out
}

/// The first JSON log line of `operator` whose message contains `message`.
fn log_line(operator: &OperatorProcess, message: &str) -> Option<serde_json::Value> {
    operator
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"].as_str().is_some_and(|text| text.contains(message)))
}

fn logged_at(line: &serde_json::Value) -> Timestamp {
    line["timestamp"].as_str().and_then(|at| at.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

fn identity(operator: &OperatorProcess) -> String {
    let line = log_line(operator, "campaigning for leadership").expect("a campaign line");
    line["identity"].as_str().expect("identity").to_owned()
}

#[tokio::test]
async fn a_stalled_leader_stops_before_another_takes_over() {
    let h = Harness::start("leader-stall").await;
    let proxy = StallProxy::start(stack_apiserver().2).await;
    let kubeconfig = proxied_kubeconfig(proxy.addr);
    let mut proxied = OperatorProcess::start_with(
        &h.setup,
        "proxied",
        &TIMING,
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    proxied.wait_leader(true, WAIT).await;
    let direct = OperatorProcess::start_with(&h.setup, "direct", &TIMING, &[] as &[(&str, &OsStr)]);
    direct.wait_leader(false, WAIT).await;
    let (proxied_id, direct_id) = (identity(&proxied), identity(&direct));
    assert_eq!(h.holder().await.as_deref(), Some(proxied_id.as_str()));

    proxy.stall();
    let stalled = Instant::now();
    // Sample until B leads and A is gone. B is sampled before A: B never gives up
    // here, so "B leads, then A still leads" means both led at A's sample.
    let mut holders: Vec<String> = Vec::new();
    let mut proxied_exit = None;
    let mut direct_led_after = None;
    let mut proxied_stopped_leading_after = None;
    while proxied_exit.is_none() || direct_led_after.is_none() {
        assert!(
            stalled.elapsed() < WAIT,
            "A exited: {proxied_exit:?}, B led: {direct_led_after:?}"
        );
        let direct_leads = direct.sample("licenseware_leader").await == Some(1.0);
        let proxied_leads = proxied.sample("licenseware_leader").await == Some(1.0);
        assert!(
            !(direct_leads && proxied_leads),
            "two leaders {:?} after the stall; A's log:\n{}",
            stalled.elapsed(),
            proxied.log()
        );
        if !proxied_leads && proxied_stopped_leading_after.is_none() {
            proxied_stopped_leading_after = Some(stalled.elapsed());
        }
        if direct_leads && direct_led_after.is_none() {
            direct_led_after = Some(stalled.elapsed());
        }
        if proxied_exit.is_none() {
            proxied_exit = proxied.try_exited().map(|status| (status, stalled.elapsed()));
        }
        let holder = h.holder().await.unwrap_or_default();
        if holders.last() != Some(&holder) {
            holders.push(holder);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, exited_after) = proxied_exit.expect("A exited");
    println!(
        "after the stall: A stopped leading within {proxied_stopped_leading_after:?}, exited \
         after {exited_after:?}; B led after {direct_led_after:?}"
    );
    assert!(!status.success(), "a lost leader exits non-zero; log:\n{}", proxied.log());
    assert_eq!(holders, [proxied_id.clone(), direct_id.clone()], "the Lease's holders in turn");

    // The logs agree, on the one clock of this machine: A gave up first.
    let lost = log_line(&proxied, "renew deadline: leadership lost")
        .unwrap_or_else(|| panic!("A gives up on its renew deadline; log:\n{}", proxied.log()));
    let became = log_line(&direct, "became the leader").expect("B's became the leader line");
    let (lost_at, became_at) = (logged_at(&lost), logged_at(&became));
    assert!(lost_at < became_at, "A lost at {lost_at}, B led at {became_at}");
    println!("A gave up {} before B led", became_at.duration_since(lost_at));
    assert!(
        log_line(&proxied, "the Lease was taken over").is_none(),
        "A gave up by itself, before seeing B's holder; log:\n{}",
        proxied.log()
    );
    let _ = std::fs::remove_file(kubeconfig);
    drop(direct);
}
