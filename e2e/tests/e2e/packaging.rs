//! The ways to install, checked against the stack's apiserver (rbac.rs holds the
//! RBAC half: the chart's rules are kustomize's, and the operator runs under them):
//!
//! - `helm lint --strict` of the chart, with its default values and with
//!   `ci/full-values.yaml` (every option on);
//! - `values.schema.json` refuses misspelled keys and mistyped values, at every level;
//! - the chart rendered with the default and the full values, and every kustomize
//!   overlay, are accepted by `kubectl apply --server-side --dry-run=server` (the
//!   apiserver's own validation: schemas, unknown fields, CRDs included; the Gateway
//!   API CRDs come from the `sigs.k8s.io/gateway-api` Go module);
//! - the API part of the chart: Deployment, Service, probes, the upload claim shared
//!   with the workers, Secrets by reference only;
//! - kube-score (a best-practice linter, `go install`ed from the Go module proxy by
//!   `e2e/tools/go-tool`) over the rendered chart and overlays: clean, but for the
//!   checks listed in [`KUBE_SCORE_SKIPPED`], each with its reason.

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use licenseware_e2e::{
    eventually,
    kube::{delete_namespace, fresh_namespace, install_crds},
};
use serde_json::{Value, json};

use crate::rbac::{chart_dir, helm_template, named, of_kind, parse_documents, repo_root};

const FULL_VALUES: &str = "ci/full-values.yaml";
const OVERLAYS: [&str; 4] =
    ["base", "overlays/dev", "overlays/production", "overlays/cluster-wide"];

/// Runs `program` with `args` (and `stdin`), with a hint when it is missing.
fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {program} ({e}): start the stack with `e2e/stack/up` (it provides \
             kubectl and helm), then `set -a; . e2e/.stack/env; set +a`"
        )
    });
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(program: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    let output = run(program, args, stdin);
    assert!(output.status.success(), "{program} {}:\n{}", args.join(" "), text(&output));
    String::from_utf8(output.stdout).expect("utf-8")
}

fn chart() -> String {
    chart_dir().to_string_lossy().into_owned()
}

/// `helm template` of the chart as YAML text.
fn render(release: &str, namespace: &str, extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec!["template", release, chart.as_str(), "--namespace", namespace];
    args.extend_from_slice(extra);
    ok("helm", &args, None)
}

/// `kubectl kustomize` of a directory under manifests/.
fn kustomize(dir: &str) -> String {
    let path = repo_root().join("manifests").join(dir);
    ok("kubectl", &["kustomize", &path.to_string_lossy()], None)
}

fn full_values() -> String {
    chart_dir().join(FULL_VALUES).to_string_lossy().into_owned()
}

#[test]
fn helm_lint_strict_passes_with_default_and_full_values() {
    let chart = chart();
    let default = ok("helm", &["lint", "--strict", &chart], None);
    assert!(default.contains("0 chart(s) failed"), "{default}");
    let full = full_values();
    let all = ok("helm", &["lint", "--strict", &chart, "--values", &full], None);
    assert!(all.contains("0 chart(s) failed"), "{all}");
}

#[test]
fn values_schema_rejects_misspelled_and_mistyped_values() {
    // Accepted: the documented values, as strings where Helm's --set makes strings.
    render("lw", "lw", &["--set", "api.replicaCount=3", "--set", "watchNamespaces={a,b}"]);
    let refused = [
        // Misspelled keys, at the top and deep down.
        ("replicaCont=2", "replicaCont"),
        ("api.replicas=2", "replicas"),
        ("api.jwt.secretKy=x", "secretKy"),
        ("api.ingress.hosts[0].paths[0].pathTyp=Prefix", "pathTyp"),
        ("connections.kafka.saslPassword=hunter2", "saslPassword"),
        ("uploads.storageClass=nfs", "storageClass"),
        // Mistyped and out-of-range values.
        ("replicaCount=two", "replicaCount"),
        ("api.port=0", "port"),
        ("api.autoscaling.enabled=yes", "enabled"),
        ("api.service.type=Ingress", "type"),
        ("logFormat=yaml", "logFormat"),
        ("connections.kafka.securityProtocol=SASL", "securityProtocol"),
        ("connections.kafka.saslMechanism=SCRAM-SHA-1", "saslMechanism"),
        ("uploads.accessModes={ReadWriteAll}", "accessModes"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
    ];
    let chart = chart();
    for (set, key) in refused {
        let output = run("helm", &["template", "lw", &chart, "--set", set], None);
        let said = text(&output);
        assert!(!output.status.success(), "--set {set} was accepted");
        assert!(
            said.contains("values don't meet the specifications of the schema")
                && said.contains(key),
            "--set {set}: refused without naming {key}:\n{said}"
        );
    }
    // The chart's own checks: a token key is required, a route needs a Gateway.
    let no_keys = run("helm", &["template", "lw", &chart, "--set", "api.jwt.secretKey="], None);
    assert!(!no_keys.status.success() && text(&no_keys).contains("api.jwt"), "{}", text(&no_keys));
    let no_parent =
        run("helm", &["template", "lw", &chart, "--set", "api.httpRoute.enabled=true"], None);
    assert!(!no_parent.status.success() && text(&no_parent).contains("parentRefs"));
}

/// The env entries of a container, by name.
fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)
}

#[test]
fn chart_api_is_a_probed_deployment_with_secrets_by_reference() {
    let docs = helm_template("lw", "apps", &[]);
    let deployment = named(&docs, "Deployment", "-api");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        json!(format!("ghcr.io/licenseware/licenseware-worker:{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(container["args"], json!(["serve"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    // Connections and keys by reference, never as values.
    for var in ["LW_KAFKA_BROKERS", "LW_MONGO_URL", "LW_REDIS_URL"] {
        let entry = env(container, var).unwrap_or_else(|| panic!("{var}"));
        assert!(entry.get("value").is_none(), "{var} is a literal");
        assert_eq!(entry["valueFrom"]["secretKeyRef"]["name"], "licenseware-operator-connections");
    }
    assert_eq!(
        env(container, "LW_JWT_SECRET_FILE").expect("jwt")["value"],
        "/etc/licenseware/jwt/secret"
    );
    // The upload claim: the chart's PVC, the API's volume, the workers' claim.
    let claim = of_kind(&docs, "PersistentVolumeClaim");
    assert_eq!(claim.len(), 1);
    assert_eq!(claim[0]["spec"]["accessModes"], json!(["ReadWriteMany"]));
    let claim_name = &claim[0]["metadata"]["name"];
    let volumes = pod["volumes"].as_array().expect("volumes");
    assert!(volumes.iter().any(|v| v["persistentVolumeClaim"]["claimName"] == *claim_name));
    let operator = &named(&docs, "Deployment", crate::rbac::OPERATOR)["spec"]["template"]["spec"]["containers"]
        [0];
    assert_eq!(env(operator, "LW_UPLOAD_CLAIM").expect("claim")["value"], *claim_name);
    // The Service selects the API's pods and not the operator's, and the other way round.
    let service = named(&docs, "Service", "-api");
    let selector = service["spec"]["selector"].as_object().expect("selector");
    let api_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let operator_labels = &named(&docs, "Deployment", crate::rbac::OPERATOR)["spec"]["template"]["metadata"]
        ["labels"];
    assert!(selector.iter().all(|(k, v)| api_labels[k] == *v));
    assert!(!selector.iter().all(|(k, v)| operator_labels[k] == *v));
    let operator_selector =
        named(&docs, "Deployment", crate::rbac::OPERATOR)["spec"]["selector"]["matchLabels"]
            .clone();
    let operator_selector = operator_selector.as_object().expect("matchLabels");
    assert!(
        !operator_selector.iter().all(|(k, v)| api_labels[k] == *v),
        "the operator's selector matches the API's pods"
    );
    // helm test: both /readyz.
    let test = of_kind(&docs, "Pod");
    assert_eq!(test.len(), 1);
    assert_eq!(test[0]["metadata"]["annotations"]["helm.sh/hook"], "test");
    let urls: Vec<String> = test[0]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["command"].as_array().expect("command").last().expect("url").to_string())
        .collect();
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls.iter().all(|u| u.ends_with("/readyz\"")), "{urls:?}");

    // Everything on: Ingress, HTTPRoute, HPA (no fixed replicas), PDB, Kafka files.
    let full = helm_template("lw", "apps", &["--values", &full_values()]);
    for kind in ["Ingress", "HTTPRoute", "HorizontalPodAutoscaler"] {
        assert_eq!(of_kind(&full, kind).len(), 1, "{kind}");
    }
    assert!(named(&full, "Deployment", "-api")["spec"].get("replicas").is_none());
    assert_eq!(of_kind(&full, "PodDisruptionBudget").len(), 2, "operator and API");
    let api = &named(&full, "Deployment", "-api")["spec"]["template"]["spec"];
    let container = &api["containers"][0];
    assert_eq!(
        env(container, "LW_KAFKA_SECURITY_PROTOCOL").expect("protocol")["value"],
        "SASL_SSL"
    );
    assert_eq!(
        env(container, "LW_KAFKA_SASL_PASSWORD_FILE").expect("password")["value"],
        "/etc/licenseware/kafka/password"
    );
    assert_eq!(
        env(container, "LW_JWT_PUBLIC_KEY_FILE").expect("keys")["value"],
        "/etc/licenseware/jwt/rs256.pem,/etc/licenseware/jwt/es256.pem"
    );
}

/// Applies the Gateway API's HTTPRoute CRD (from the Go module) so that the full
/// values' HTTPRoute can be checked by the apiserver like everything else.
async fn install_gateway_api_crds(client: &Client) {
    let dir =
        ok(&repo_root().join("e2e/tools/go-tool").to_string_lossy(), &["gateway-api-crds"], None);
    let file = Path::new(dir.trim()).join("gateway.networking.k8s.io_httproutes.yaml");
    ok(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=licenseware-e2e",
            "-f",
            &file.to_string_lossy(),
        ],
        None,
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually(Duration::from_secs(60), "the HTTPRoute CRD to be established", || async {
        let crd = crds.get("httproutes.gateway.networking.k8s.io").await.ok()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
}

/// `kubectl apply --server-side --dry-run=server` of `yaml`: the apiserver validates
/// every object (strict field validation) and persists nothing.
fn dry_run(what: &str, yaml: &str) {
    let output = run(
        "kubectl",
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=licenseware-e2e-dry-run",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(yaml.as_bytes()),
    );
    assert!(output.status.success(), "{what}: the apiserver refused it:\n{}", text(&output));
    let applied = String::from_utf8_lossy(&output.stdout);
    let objects = parse_documents(yaml).len();
    assert_eq!(applied.lines().count(), objects, "{what}: {applied}");
}

#[tokio::test]
async fn chart_and_overlays_pass_the_apiservers_dry_run() {
    let client = Client::try_default().await.expect("kubeconfig");
    install_crds(&client).await;
    install_gateway_api_crds(&client).await;

    // The chart, into a namespace of its own (dry-run objects need it to exist).
    let namespace = fresh_namespace(&client, "pkg").await;
    let outcome = std::panic::AssertUnwindSafe(async {
        dry_run("helm template (default values)", &render("lw", &namespace, &[]));
        let full = full_values();
        dry_run("helm template (full values)", &render("lw", &namespace, &["--values", &full]));
        // watchNamespaces puts Roles in those namespaces: the release's own here.
        let own = format!("watchNamespaces={{{namespace}}}");
        dry_run("helm template (watchNamespaces)", &render("lw", &namespace, &["--set", &own]));
    });
    let result = futures::FutureExt::catch_unwind(outcome).await;
    delete_namespace(&client, &namespace).await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    // The overlays name their namespaces (licenseware-system, licenseware-dev) and
    // carry the Namespace objects: those are applied for real (empty namespaces),
    // the rest is dry-run.
    for overlay in OVERLAYS {
        let yaml = kustomize(overlay);
        let docs = parse_documents(&yaml);
        for namespace in of_kind(&docs, "Namespace") {
            let one = serde_yaml::to_string(namespace).expect("yaml");
            ok(
                "kubectl",
                &["apply", "--server-side", "--field-manager=licenseware-e2e", "-f", "-"],
                Some(one.as_bytes()),
            );
        }
        dry_run(&format!("kubectl kustomize manifests/{overlay}"), &yaml);
    }
}

#[test]
fn overlays_run_the_api_next_to_the_operator() {
    for overlay in OVERLAYS {
        let docs = parse_documents(&kustomize(overlay));
        let api = named(&docs, "Deployment", "licenseware-api");
        let container = &api["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["args"], json!(["serve"]), "{overlay}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{overlay}");
        assert_eq!(
            named(&docs, "Service", "licenseware-api")["spec"]["selector"],
            api["spec"]["selector"]["matchLabels"],
            "{overlay}"
        );
        let claims: Vec<&Value> = of_kind(&docs, "PersistentVolumeClaim");
        assert_eq!(claims.len(), 1, "{overlay}");
        assert_eq!(claims[0]["metadata"]["name"], "licenseware-uploads");
    }
    let production = parse_documents(&kustomize("overlays/production"));
    let hpa = only_named(&production, "HorizontalPodAutoscaler", "licenseware-api");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "licenseware-api");
    assert!(named(&production, "Deployment", "licenseware-api")["spec"].get("replicas").is_none());
    only_named(&production, "PodDisruptionBudget", "licenseware-api");
}

fn only_named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> =
        of_kind(docs, kind).into_iter().filter(|d| d["metadata"]["name"] == name).collect();
    assert_eq!(found.len(), 1, "{kind} {name}");
    found[0]
}

/// kube-score checks left out, each with its reason. Everything else must pass (a
/// WARNING or CRITICAL fails the test); the helm test Pod also skips `pod-probes`
/// with its own `kube-score/ignore` annotation (it runs once and exits).
const KUBE_SCORE_SKIPPED: [(&str, &str); 4] = [
    (
        "container-image-pull-policy",
        "the images are pinned to a version (the chart's appVersion), which is never \
         pushed twice: IfNotPresent, so that restarts do not depend on the registry",
    ),
    (
        "pod-networkpolicy",
        "it also wants an egress policy: egress stays open on purpose (the apiserver, \
         Kafka, MongoDB and Redis addresses are cluster-specific); the operator and the \
         API have ingress NetworkPolicies",
    ),
    (
        "deployment-strategy",
        "the operator's single leader-elected replica is replaced with Recreate (a second \
         pod would only wait for the Lease); with more replicas it rolls",
    ),
    (
        "deployment-replicas",
        "one operator replica is enough (leader election: only one reconciles); \
         replicaCount adds standbys, and the API runs two or more",
    ),
];

/// Also left out: CPU limits (`--ignore-container-cpu-limit`): CPU limits throttle the
/// operator's Lease renewals and the API's uploads; CPU requests, memory and
/// ephemeral-storage requests and limits are all set.
const KUBE_SCORE_FLAGS: [&str; 1] = ["--ignore-container-cpu-limit"];

#[test]
fn kube_score_is_clean_over_the_chart_and_overlays() {
    let tool = repo_root().join("e2e/tools/go-tool").to_string_lossy().into_owned();
    let full = full_values();
    let mut inputs = vec![
        ("chart (default values)".to_owned(), render("lw", "licenseware-system", &[])),
        (
            "chart (full values)".to_owned(),
            render("lw", "licenseware-system", &["--values", &full]),
        ),
    ];
    for overlay in OVERLAYS {
        inputs.push((format!("kustomize {overlay}"), kustomize(overlay)));
    }
    for (what, yaml) in inputs {
        let mut args = vec!["kube-score", "score", "--output-format", "ci"];
        for (check, _) in KUBE_SCORE_SKIPPED {
            args.extend(["--ignore-test", check]);
        }
        args.extend(KUBE_SCORE_FLAGS);
        args.push("-");
        let output = run(&tool, &args, Some(yaml.as_bytes()));
        let report = text(&output);
        let problems: Vec<&str> = report
            .lines()
            .filter(|line| line.starts_with("[WARNING]") || line.starts_with("[CRITICAL]"))
            .collect();
        assert!(
            problems.is_empty() && output.status.success(),
            "kube-score over the {what}:\n{}",
            if problems.is_empty() { report.clone() } else { problems.join("\n") }
        );
        assert!(report.contains("[OK]"), "kube-score checked nothing in the {what}:\n{report}");
    }
}
