//! The processing events of `POST .../files` checked against the events Topic's message
//! contract (`spec.schema`, carried in the uploader's registry entry as the worker
//! config's `eventsTopicSchema`): an event it accepts is produced; one it refuses is a
//! 500 naming the schema, with nothing produced and no quota used.

use std::time::Duration;

use licenseware_crds::{TopicSchema, WorkerConfigFile};
use licenseware_e2e::{
    api::ApiProcess,
    consumer::{ConsumerSetup, stack_shared},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// A setup whose worker.yaml (and so its published registry entry) carries `json_schema`
/// as the events Topic's schema `ProcessingEvent:1`.
async fn setup_with_schema(label: &str, json_schema: Value) -> ConsumerSetup {
    let spec = json!({"name": "Lines", "acceptedFileTypes": [".csv"], "freeQuotaUnits": 10});
    let setup = ConsumerSetup::with_spec(label, 1, 2, spec).await;
    let text = std::fs::read_to_string(&setup.config_path).expect("worker.yaml");
    let mut worker: WorkerConfigFile = serde_yaml::from_str(&text).expect("worker.yaml");
    worker.events_topic_schema = Some(TopicSchema {
        id: "ProcessingEvent".into(),
        version: 1,
        json_schema: serde_json::from_value(json_schema).expect("an object"),
    });
    std::fs::write(&setup.config_path, serde_yaml::to_string(&worker).expect("yaml"))
        .expect("write worker.yaml");
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_topic_schema_accepts_is_produced() {
    let _stack = stack_shared().await;
    let setup = setup_with_schema(
        "api-schema-ok",
        json!({
            "type": "object",
            "required": ["tenant_id", "uploader_id", "filepaths", "clear_data", "event_id", "app_id"],
            "properties": {
                "filepaths": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "clear_data": {"type": "boolean"},
            },
        }),
    )
    .await;
    let api = ApiProcess::start(&setup, "schema-ok", &[]).await;
    let tenant = uuid::Uuid::new_v4().to_string();
    let token = api.token(&tenant, "user", &[]);
    let files_url = api.uploader_url(&setup, "files");
    let stored = api.upload(&files_url, &tenant, &token, &[("a.csv", b"a\n1\n".to_vec())]).await;
    assert_eq!(stored.status(), 200, "log:\n{}", api.log());
    let messages = setup.messages(&setup.events_topic, 1, WAIT).await;
    let payload: Value =
        serde_json::from_slice(rdkafka::Message::payload(&messages[0]).expect("a payload"))
            .expect("json");
    assert_eq!(payload["schema"], "ProcessingEvent:1");
    assert_eq!(payload["data"]["tenant_id"], tenant.as_str());
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_topic_schema_refuses_is_a_500_and_nothing_is_produced() {
    let _stack = stack_shared().await;
    let setup = setup_with_schema(
        "api-schema-refused",
        json!({"type": "object", "required": ["authorization"]}),
    )
    .await;
    let api = ApiProcess::start(&setup, "schema-refused", &[]).await;
    let tenant = uuid::Uuid::new_v4().to_string();
    let token = api.token(&tenant, "user", &[]);
    let files_url = api.uploader_url(&setup, "files");
    let refused = api.upload(&files_url, &tenant, &token, &[("a.csv", b"a\n1\n".to_vec())]).await;
    assert_eq!(refused.status(), 500, "log:\n{}", api.log());
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["status"], "fail", "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains("ProcessingEvent:1"), "{message}");
    assert!(message.contains("authorization"), "{message}");
    assert!(api.log().contains("EventSchemaRefused"), "logged with its reason");

    let (_, published) = setup.offsets().await;
    assert_eq!(published, 0, "nothing on the events topic");
    let quota = api.get(&api.uploader_url(&setup, "quota"), &tenant, &token).await;
    let quota: Value = quota.json().await.expect("json");
    assert_eq!(quota["monthly_quota_consumed"], json!(0), "no quota used: {quota}");
    assert!(
        std::fs::read_dir(setup.root.join(&tenant)).map(|d| d.count()).unwrap_or(0) == 0,
        "no file kept"
    );
    setup.cleanup().await;
}
