//! The optional App kind against the real stack: its metadata in the app's registry
//! entry, in the `parrent_app` of an Uploader and in the `parrent_app` and `apps` of a
//! Report of the app; an edit
//! propagates; a second App of one appId is a conflict; deleting the Apps falls back
//! to the defaults.

use std::time::Duration;

use licenseware_e2e::{
    OperatorUnderTest, Options, eventually,
    kube::{Expected, create_custom, delete_and_wait, merge_patch, wait_condition},
};
use licenseware_operator::crds::{App, Report, ReportComponent, Uploader};
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(60);
const APP_KEY: &str = "app/ifmp-service/ifmp-service";
const REPORT_KEY: &str = "report/ifmp-service/devices";
const UPLOADER_KEY: &str = "uploader/ifmp-service/rv_tools";

fn app(name: &str, description: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "appId": "ifmp-service", "name": "Infrastructure Mapping",
            "description": description, "flags": ["beta"],
            "appMeta": {"partner_meta": {"partner_app": true}},
            "features": [{"name": "inventory"}]
        }
    })
}

/// Waits until the registry documents of the app, of its report and of its uploader
/// all carry `description` (null for none) in their app metadata; returns the app's
/// and the report's.
async fn wait_description(
    operator: &OperatorUnderTest,
    description: Value,
) -> (Map<String, Value>, Map<String, Value>) {
    let what = format!("the app metadata to say {description}");
    eventually(WAIT, &what, || async {
        let app = operator.registry().document(APP_KEY).await?;
        let report = operator.registry().document(REPORT_KEY).await?;
        let uploader = operator.registry().document(UPLOADER_KEY).await?;
        let carried = app["description"] == description
            && uploader["parrent_app"]["description"] == description
            && report["parrent_app"]["description"] == description
            && report["apps"][0]["description"] == description;
        carried.then_some((app, report))
    })
    .await
}

#[tokio::test]
async fn an_app_describes_its_entries_an_edit_propagates_and_deleting_falls_back() {
    let operator = OperatorUnderTest::start(Options::new("app").own_registry()).await;
    create_custom::<ReportComponent>(
        &operator.api(),
        "ReportComponent",
        json!({
            "metadata": {"name": "devices-count"},
            "spec": {"appId": "ifmp-service", "componentId": "devices_count", "title": "Devices",
                     "type": "summary",
                     "attributes": {"series": [{"value_key": "devices", "value_description": "Devices"}]},
                     "data": {"pipeline": [{"$count": "devices"}]}}
        }),
    )
    .await;
    create_custom::<Report>(
        &operator.api(),
        "Report",
        json!({
            "metadata": {"name": "devices"},
            "spec": {"appId": "ifmp-service", "name": "Devices", "components": ["devices_count"]}
        }),
    )
    .await;
    create_custom::<Uploader>(
        &operator.api(),
        "Uploader",
        json!({
            "metadata": {"name": "rv-tools"},
            "spec": {"appId": "ifmp-service", "uploaderId": "rv_tools", "name": "RVTools",
                     "acceptedFileTypes": [".csv"]}
        }),
    )
    .await;
    // Without an App: the defaults.
    let (entry, report) = wait_description(&operator, Value::Null).await;
    assert_eq!(entry["name"], "Ifmp Service");
    assert_eq!(report["parrent_app"]["name"], "Ifmp Service");

    let apps = operator.api::<App>();
    create_custom::<App>(&apps, "App", app("ifmp", "Maps infrastructure")).await;
    wait_condition(&apps, "ifmp", Expected::new("Ready", "True", "Reconciled"), WAIT).await;
    let (entry, report) = wait_description(&operator, json!("Maps infrastructure")).await;
    for metadata in [&Value::Object(entry.clone()), &report["parrent_app"], &report["apps"][0]] {
        assert_eq!(metadata["name"], "Infrastructure Mapping", "{metadata}");
        assert_eq!(metadata["flags"], json!(["beta"]), "{metadata}");
        assert_eq!(metadata["app_meta"]["partner_meta"]["partner_app"], true, "{metadata}");
        assert_eq!(metadata["features"][0]["name"], "inventory", "{metadata}");
        assert_eq!(metadata["integration_details"], Value::Null, "{metadata}");
    }
    assert_eq!(entry["reports"], json!(["devices"]), "the app still lists its members");
    assert_eq!(entry["uploaders"], json!(["rv_tools"]));

    // A second App of the appId: refused, the first one still describes the app.
    create_custom::<App>(&apps, "App", app("ifmp-again", "Something else")).await;
    let conflict = wait_condition(
        &apps,
        "ifmp-again",
        Expected::new("Ready", "False", "ResourceConflict"),
        WAIT,
    )
    .await;
    assert!(conflict.message.contains("App ifmp already describes appId ifmp-service"));

    // An edit reaches every entry.
    merge_patch(&apps, "ifmp", json!({"spec": {"description": "Edited"}})).await;
    wait_description(&operator, json!("Edited")).await;

    // The first App goes: the second one describes the app and becomes Ready.
    delete_and_wait(&apps, "ifmp", WAIT).await;
    wait_condition(&apps, "ifmp-again", Expected::new("Ready", "True", "Reconciled"), WAIT).await;
    wait_description(&operator, json!("Something else")).await;

    // No App left: back to the defaults.
    delete_and_wait(&apps, "ifmp-again", WAIT).await;
    let (entry, report) = wait_description(&operator, Value::Null).await;
    assert_eq!(entry["name"], "Ifmp Service");
    assert_eq!(report["parrent_app"]["flags"], Value::Null);
    operator.stop().await;
}
