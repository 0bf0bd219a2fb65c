//! GitOps health of the five kinds.
//!
//! - Argo CD: `manifests/gitops/argocd/argocd-cm-health.yaml` has one health check
//!   per kind of `crds/`, each the script `health.lua`, and the script gives the
//!   expected health for sample statuses (run in Lua 5.4 through `mlua`; Argo CD runs
//!   it in gopher-lua, Lua 5.1: the script uses only what both have).
//! - Flux: its health checks are kstatus, which reads `status.observedGeneration`
//!   against `metadata.generation` and the `Ready` condition. The statuses the
//!   operator writes on the stack have what kstatus needs: checked on live objects
//!   by the same rules (see [`kstatus`]).

use std::fs;

use mlua::{Lua, LuaSerdeExt};
use serde_json::{Value, json};

use crate::rbac::{parse_documents, repo_root};

const KINDS_FILE: &str = "manifests/gitops/argocd/argocd-cm-health.yaml";
const SCRIPT_FILE: &str = "manifests/gitops/argocd/health.lua";

/// The kinds of the generated CRDs (crds/*.yaml), so a new kind needs a check too.
fn kinds() -> Vec<String> {
    let mut kinds: Vec<String> = fs::read_dir(repo_root().join("crds"))
        .expect("crds/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .flat_map(|path| parse_documents(&fs::read_to_string(path).expect("read CRD")))
        .map(|crd| {
            assert_eq!(crd["spec"]["group"], "licenseware.io");
            crd["spec"]["names"]["kind"].as_str().expect("kind").to_owned()
        })
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn argocd_health_checks_cover_every_kind_with_the_one_script() {
    let script = fs::read_to_string(repo_root().join(SCRIPT_FILE)).expect("health.lua");
    let config = parse_documents(&fs::read_to_string(repo_root().join(KINDS_FILE)).expect("cm"));
    assert_eq!(config.len(), 1);
    let config = &config[0];
    assert_eq!(
        (config["kind"].as_str(), config["metadata"]["name"].as_str()),
        (Some("ConfigMap"), Some("argocd-cm"))
    );
    let data = config["data"].as_object().expect("data");
    let kinds = kinds();
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    let expected: Vec<String> = kinds
        .iter()
        .map(|kind| format!("resource.customizations.health.licenseware.io_{kind}"))
        .collect();
    let mut keys: Vec<String> = data.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, expected);
    for (key, value) in data {
        assert!(
            value.as_str() == Some(script.as_str()),
            "{KINDS_FILE}: {key} is not {SCRIPT_FILE}; run `make gitops-health`"
        );
    }
}

/// The health Argo CD would show for `object`: (status, message).
fn argocd_health(lua: &Lua, script: &str, object: &Value) -> (String, String) {
    let options = mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let value = lua.to_value_with(object, options).expect("object as a Lua table");
    lua.globals().set("obj", value).expect("set obj");
    let result: mlua::Table =
        lua.load(script).set_name("health.lua").eval().expect("run health.lua");
    let status: String = result.get("status").expect("status");
    let message: Option<String> = result.get("message").expect("message");
    (status, message.unwrap_or_default())
}

fn object(generation: i64, status: Value) -> Value {
    let mut object = json!({
        "apiVersion": "licenseware.io/v1alpha1",
        "kind": "Uploader",
        "metadata": {"name": "rv-tools", "namespace": "apps", "generation": generation},
        "spec": {"appId": "ifmp-service"}
    });
    if !status.is_null() {
        object["status"] = status;
    }
    object
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2})
}

#[test]
fn argocd_health_reads_ready_and_observed_generation() {
    let script = fs::read_to_string(repo_root().join(SCRIPT_FILE)).expect("health.lua");
    let lua = Lua::new();
    let topic_ready =
        json!({"type": "TopicReady", "status": "True", "reason": "Reconciled", "message": ""});
    let cases = [
        ("no status yet", object(1, Value::Null), "Progressing", "status"),
        (
            "a status without conditions",
            object(1, json!({"observedGeneration": 1})),
            "Progressing",
            "Ready",
        ),
        (
            "Ready, current",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [topic_ready, ready("True", "Reconciled", "")]}),
            ),
            "Healthy",
            "Reconciled",
        ),
        (
            "Ready, but of an older generation",
            object(
                3,
                json!({"observedGeneration": 2, "conditions": [ready("True", "Reconciled", "")]}),
            ),
            "Progressing",
            "generation 3",
        ),
        (
            "Ready, no observedGeneration",
            object(3, json!({"conditions": [ready("True", "Reconciled", "")]})),
            "Progressing",
            "generation 3",
        ),
        (
            "waiting for its topics",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "TopicNotReady", "topic rv-tools-events is not Ready")]}),
            ),
            "Progressing",
            "TopicNotReady: topic rv-tools-events is not Ready",
        ),
        (
            "a report waiting for a component",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "ComponentNotFound", "devices_by_os")]}),
            ),
            "Progressing",
            "ComponentNotFound",
        ),
        (
            "a conflict only a change fixes",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "ResourceConflict", "Deployment rv-tools-worker exists")]}),
            ),
            "Degraded",
            "ResourceConflict: Deployment rv-tools-worker exists",
        ),
        (
            "an image outside the allowed registries",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "ImageNotAllowed", "docker.io/x is not allowed")]}),
            ),
            "Degraded",
            "ImageNotAllowed",
        ),
        (
            "a pipeline with $lookup",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "PipelineNotAllowed", "$lookup")]}),
            ),
            "Degraded",
            "PipelineNotAllowed",
        ),
        (
            "a broker error",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "KafkaError", "broker down")]}),
            ),
            "Degraded",
            "KafkaError: broker down",
        ),
        (
            "paused",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("False", "ReconciliationPaused", "licenseware.io/paused")]}),
            ),
            "Suspended",
            "ReconciliationPaused",
        ),
        (
            "unmanaged",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("True", "Unmanaged", "")]}),
            ),
            "Suspended",
            "Unmanaged",
        ),
        (
            "Ready Unknown",
            object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("Unknown", "Progressing", "")]}),
            ),
            "Progressing",
            "Progressing",
        ),
    ];
    for (what, object, status, message) in cases {
        let (got, said) = argocd_health(&lua, &script, &object);
        assert_eq!(got, status, "{what}: {said}");
        assert!(said.contains(message), "{what}: message {said:?} lacks {message:?}");
    }
}

/// The kstatus results (`status`, `message`) of `objects`, by `e2e/tools/kstatus`
/// (sigs.k8s.io/cli-utils' `status.Compute`, as Flux's health checks call it).
fn kstatus(objects: &[Value]) -> Vec<(String, String)> {
    let tool = repo_root().join("e2e/tools/go-tool");
    let mut child = std::process::Command::new(&tool)
        .arg("kstatus")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&serde_json::to_vec(objects).expect("json")).expect("write");
    }
    let output = child.wait_with_output().expect("kstatus");
    assert!(output.status.success(), "kstatus: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let result: Value = serde_json::from_str(line).expect("a JSON line");
            (
                result["status"].as_str().expect("status").to_owned(),
                result["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The statuses the operator writes, read by kstatus (Flux) and by the Argo CD
/// script: a Ready Topic is Current/Healthy; a ReportComponent with a forbidden
/// stage is Failed/Degraded (its Stalled condition: Flux stops waiting at once and
/// reports the condition's message); a Report
/// waiting for a component is InProgress/Progressing; a status of an older
/// generation is InProgress/Progressing whatever it says.
#[tokio::test]
async fn operator_statuses_are_kstatus_and_argocd_compliant() {
    use licenseware_e2e::{
        OperatorUnderTest, Options,
        kube::{Expected, create_custom, wait_condition},
    };
    use licenseware_operator::crds::{Report, ReportComponent, Topic};

    const WAIT: std::time::Duration = std::time::Duration::from_secs(90);
    let operator = OperatorUnderTest::start(Options::new("gitops").own_registry()).await;
    let topics = operator.api::<Topic>();
    let components = operator.api::<ReportComponent>();
    let reports = operator.api::<Report>();
    create_custom(
        &topics,
        "Topic",
        json!({"metadata": {"name": "events"}, "spec": {"partitions": 1}}),
    )
    .await;
    create_custom(
        &components,
        "ReportComponent",
        json!({
            "metadata": {"name": "joined"},
            "spec": {
                "appId": "gitops-service",
                "title": "Joined",
                "type": "pie",
                "attributes": {"series": [
                    {"label_key": "os", "label_description": "Operating System"},
                    {"value_key": "count", "value_description": "Count"}
                ]},
                "style": {"width": "1/2"},
                "data": {"pipeline": [{"$lookup": {"from": "Registry", "localField": "a", "foreignField": "b", "as": "c"}}]}
            }
        }),
    )
    .await;
    create_custom(
        &reports,
        "Report",
        json!({
            "metadata": {"name": "devices"},
            "spec": {"appId": "gitops-service", "name": "Devices", "description": "Devices.", "components": ["missing"]}
        }),
    )
    .await;
    wait_condition(&topics, "events", Expected::new("Ready", "True", "Reconciled"), WAIT).await;
    wait_condition(
        &components,
        "joined",
        Expected::new("Ready", "False", "PipelineNotAllowed"),
        WAIT,
    )
    .await;
    wait_condition(&reports, "devices", Expected::new("Ready", "False", "ComponentNotFound"), WAIT)
        .await;

    let topic = as_json(&topics.get("events").await.expect("Topic"));
    let component = as_json(&components.get("joined").await.expect("ReportComponent"));
    let report = as_json(&reports.get("devices").await.expect("Report"));
    let mut stale = topic.clone();
    stale["metadata"]["generation"] =
        json!(stale["metadata"]["generation"].as_i64().expect("generation") + 1);
    let objects = [topic, component, report, stale];
    let expected = [
        ("Current", "Healthy"),
        ("Failed", "Degraded"),
        ("InProgress", "Progressing"),
        ("InProgress", "Progressing"),
    ];
    let flux = kstatus(&objects);
    let script = fs::read_to_string(repo_root().join(SCRIPT_FILE)).expect("health.lua");
    let lua = Lua::new();
    for ((object, (kstatus, argocd)), (got, message)) in objects.iter().zip(expected).zip(&flux) {
        let name = format!("{} {}", object["kind"], object["metadata"]["name"]);
        assert_eq!(got, kstatus, "kstatus of {name}: {message}");
        let (health, said) = argocd_health(&lua, &script, object);
        assert_eq!(health, argocd, "Argo CD health of {name}: {said}");
    }
    // kstatus carries the condition's reason and message to Flux.
    assert!(flux[1].1.contains("$lookup"), "{:?}", flux[1]);
    operator.stop().await;
}

/// An object as JSON, whatever its type.
fn as_json<K: k8s_openapi::serde::Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("object as JSON")
}
