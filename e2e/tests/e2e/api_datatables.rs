//! Data tables on the real stack: the SDK's table metadata from the registry; a
//! tenant's rows by id, distinct values and pages; PUT, POST and DELETE with the SDK's
//! type checks returned as one 400; an edit seen at once in the component data (the
//! tenant's cache invalidated) and recorded in the history; and tenant isolation: ids,
//! keys and parameters of tenant A used by tenant B never read or change A's rows.

use std::time::Duration;

use futures::TryStreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use licenseware_crds::{DataTable, ReportComponent};
use licenseware_e2e::{
    api::{ApiProcess, forget_tenants},
    consumer::{ConsumerSetup, stack_shared},
    eventually,
};
use mongodb::bson::{Bson, DateTime, Document, doc};
use serde_json::{Value, json};

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn devices_table(app: &str) -> DataTable {
    let yaml = r#"
apiVersion: licenseware.io/v1alpha1
kind: DataTable
metadata: {name: devices, namespace: e2e}
spec:
  componentId: devices
  appId: x
  title: Devices
  columns:
    - {prop: _id}
    - {prop: tenant_id}
    - {prop: name, required: true}
    - {prop: serial, editable: false}
    - {prop: number_of_cpus}
    - {prop: os, values: [linux, windows]}
    - {prop: seen, type: date}
    - {prop: "on", type: bool}
    - {prop: tags, type: json}
    - {prop: host, distinctKey: host, foreignKey: host_name}
"#;
    let mut value: Value = serde_yaml::from_str(yaml).expect("manifest");
    value["spec"]["appId"] = json!(app);
    serde_json::from_value(value).expect("a DataTable")
}

/// The component whose cache an edit must invalidate: the devices, by name.
fn devices_component(app: &str) -> ReportComponent {
    let yaml = r#"
apiVersion: licenseware.io/v1alpha1
kind: ReportComponent
metadata: {name: device-list, namespace: e2e}
spec:
  componentId: device_list
  appId: x
  title: Devices
  type: table
  attributes:
    columns:
      - {name: Name, prop: name, type: string}
  data:
    collection: Data
    cacheTtlSeconds: 300
    pipeline:
      - $match: {document_type: device}
      - $project: {_id: 0, name: 1, number_of_cpus: 1}
      - $sort: {name: 1}
"#;
    let mut value: Value = serde_yaml::from_str(yaml).expect("manifest");
    value["spec"]["appId"] = json!(app);
    serde_json::from_value(value).expect("a ReportComponent")
}

/// Rows as processing writes them: string ids, provenance fields, BSON dates.
fn devices(tenant: &str, app: &str, prefix: &str, count: usize) -> Vec<Document> {
    (0..count)
        .zip(1_i64..)
        .map(|(i, n)| {
            doc! {
                "_id": format!("{prefix}-{i:02}-{}", &tenant[..8]),
                "tenant_id": tenant, "app_id": app, "uploader_id": "rv_tools",
                "event_id": "e1", "source_file": "f.csv",
                "updated_at": DateTime::from_millis(1_704_067_200_000),
                "document_type": "device",
                "name": format!("{prefix}-{i:02}"), "serial": format!("S{i}"),
                "number_of_cpus": n, "os": if i % 2 == 0 { "linux" } else { "windows" },
                "host": format!("{prefix}-host-{}", i % 2), "host_name": format!("{prefix}-host-{}", i % 3),
            }
        })
        .collect()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

struct Client<'a> {
    api: &'a ApiProcess,
    base: String,
}

impl Client<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        who: (&str, &str),
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self
            .api
            .http
            .request(method, format!("{}{path}", self.base))
            .header("TenantId", who.0)
            .bearer_auth(who.1);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("a response");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    async fn get(&self, path: &str, who: (&str, &str)) -> Answer {
        self.send(reqwest::Method::GET, path, who, None).await
    }

    async fn put(&self, path: &str, who: (&str, &str), body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, who, Some(body)).await
    }

    async fn post(&self, path: &str, who: (&str, &str), body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, who, Some(body)).await
    }

    async fn delete(&self, path: &str, who: (&str, &str)) -> Answer {
        self.send(reqwest::Method::DELETE, path, who, None).await
    }
}

fn header(answer: &Answer, name: &str) -> String {
    answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_tables_read_and_edit_a_tenants_rows_only() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-datatables", 1, 2).await;
    let api = ApiProcess::start(&setup, "datatables", &[]).await;
    let app = setup.app_id.clone();
    api.publish_reports(&setup, &[], &[devices_component(&app)]).await;
    api.publish_datatables(&setup, &[devices_table(&app)]).await;
    let (a, b) = (uuid(), uuid());
    let (token_a, token_b) = (api.token(&a, "alice", &[]), api.token(&b, "bob", &[]));
    let (alice, bob) = ((a.as_str(), token_a.as_str()), (b.as_str(), token_b.as_str()));
    let data = setup.mongo.collection::<Document>("Data");
    let mut rows = devices(&a, &app, "a", 5);
    rows.extend(devices(&b, &app, "b", 3));
    data.insert_many(rows).await.expect("insert A's and B's devices");
    let a_id = format!("a-01-{}", &a[..8]);
    let client = Client { api: &api, base: format!("{}/{app}", api.url) };
    let table = "/datatables/devices";

    // The SDK's metadata, without the registry's keys.
    let tables = client.get("/datatables", alice).await;
    assert_eq!(tables.status, 200, "{}", tables.body);
    let metadata = &tables.body[0];
    assert_eq!(metadata["url"], "/datatables/devices");
    assert_eq!(metadata["type"], "editable_table");
    assert_eq!(metadata["component_id"], "devices");
    assert_eq!(metadata["columns"][4]["type"], "number");
    assert_eq!(metadata["columns"][5]["type"], "enum");
    assert_eq!(
        metadata["columns"][9]["entities_url"],
        "/datatables/devices?id=%7Bentity_id%7D&distinct_key=host&foreign_key=host_name"
    );
    for key in ["_id", "kind", "collection", "namespace"] {
        assert!(metadata.get(key).is_none(), "{key} in {metadata}");
    }
    assert_eq!(client.get("/datatables/nope", alice).await.status, 404);

    // Reads: a row by id, a page, distinct values; each the caller's tenant's only.
    let one = client.get(&format!("{table}?id={a_id}"), alice).await;
    assert_eq!((one.status, one.body["name"].clone()), (200, json!("a-01")), "{}", one.body);
    assert_eq!(client.get(&format!("{table}?id={a_id}"), bob).await.status, 404);
    let page = client.get(&format!("{table}?limit=3"), alice).await;
    assert_eq!(page.body.as_array().map(Vec::len), Some(3), "{}", page.body);
    assert_eq!(header(&page, "x-has-more"), "true");
    let all = client.get(&format!("{table}?limit=0&tenant_id={a}"), bob).await;
    let names: Vec<&str> =
        all.body.as_array().expect("rows").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["b-00", "b-01", "b-02"], "a tenant_id parameter widens nothing");
    assert_eq!(header(&all, "x-has-more"), "false");
    let hosts = client.get(&format!("{table}?distinct_key=host"), alice).await;
    assert_eq!(hosts.body, json!(["a-host-0", "a-host-1"]), "{}", hosts.body);
    let foreign = client.get(&format!("{table}?foreign_key=host_name"), bob).await;
    assert_eq!(foreign.body, json!(["b-host-0", "b-host-1", "b-host-2"]), "{}", foreign.body);
    for bad in [
        "distinct_key=tenant_id",
        "foreign_key=secret",
        "distinct_key=%24where",
        "limit=x",
        "limit=50001",
    ] {
        let answer = client.get(&format!("{table}?{bad}"), bob).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }
    // Ids that look like operators are ids, and match nothing.
    for id in [r#"{"$ne":null}"#, "$ne", ".*"] {
        let answer = client.get(&format!("{table}?id={}", encode(id)), bob).await;
        assert_eq!(answer.status, 404, "{id}: {}", answer.body);
    }

    // The component's data, cached.
    let component = "/report-components/device-list";
    let before = client.get(component, alice).await;
    assert_eq!(header(&before, "x-cache"), "miss");
    let cached = client.get(component, alice).await;
    assert_eq!(header(&cached, "x-cache"), "hit");
    assert_eq!(cached.body[1]["number_of_cpus"], 2);
    assert_eq!(header(&client.get(component, bob).await, "x-cache"), "miss");
    let b_cached = client.get(component, bob).await;
    assert_eq!(header(&b_cached, "x-cache"), "hit");
    assert_eq!(b_cached.body.as_array().map(Vec::len), Some(3), "{}", b_cached.body);

    // B cannot edit or delete A's row by its id: 404, and nothing changed.
    let stolen =
        client.put(&format!("{table}?id={a_id}"), bob, &json!({"number_of_cpus": 99})).await;
    assert_eq!(stolen.status, 404, "{}", stolen.body);
    assert_eq!(client.delete(&format!("{table}?id={a_id}"), bob).await.status, 404);
    let stored = data.find_one(doc! {"_id": &a_id}).await.expect("find").expect("A's row");
    assert_eq!(stored.get_i64("number_of_cpus").expect("cpus"), 2);
    assert_eq!(stored.get_str("tenant_id").expect("tenant"), a);

    // A's edit: non-editable and server fields dropped, updated_at a BSON date, seen
    // at once in the component data.
    let edited = client
        .put(
            &format!("{table}?id={a_id}"),
            alice,
            &json!({"number_of_cpus": 64, "serial": "changed", "tenant_id": b, "_id": "other",
                    "seen": "2022-09-01T06:01:38.621461", "on": true, "tags": {"env": "prod"},
                    "os": "windows", "note": "checked"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}\n{}", edited.body, api.log());
    assert_eq!(edited.body["number_of_cpus"], 64);
    assert_eq!(edited.body["serial"], "S1");
    assert_eq!(edited.body["note"], "checked");
    let stored = data.find_one(doc! {"_id": &a_id}).await.expect("find").expect("A's row");
    assert_eq!(stored.get_str("tenant_id").expect("tenant"), a);
    assert!(
        matches!(stored.get("updated_at"), Some(Bson::DateTime(d)) if d.timestamp_millis() > 1_704_067_200_000),
        "{stored}"
    );
    assert!(matches!(stored.get("seen"), Some(Bson::DateTime(_))), "{stored}");
    let after = client.get(component, alice).await;
    assert_eq!(header(&after, "x-cache"), "miss", "the edit invalidated A's cache");
    assert_eq!(after.body[1]["number_of_cpus"], 64, "{}", after.body);
    assert_eq!(header(&client.get(component, bob).await, "x-cache"), "hit", "B's cache stays");

    // Type errors: one 400 with every message, nothing written.
    let refused = client
        .put(
            &format!("{table}?id={a_id}"),
            alice,
            &json!({"name": 1, "number_of_cpus": "many", "seen": "yesterday", "on": "yes",
                    "tags": "x", "os": "beos", "$set": {"tenant_id": b}}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["reason"], "RowInvalid");
    let errors: Vec<&str> = refused.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        errors,
        [
            "Field 'name' must be 'string'  (ex: 'some-string')",
            "Field 'number_of_cpus' must be 'number' (ex: 12, or 14.3)",
            "Field 'seen' must be 'date' (ex: '2022-09-01T06:01:38.621461')",
            "Field 'on' must be 'bool'",
            "Field 'tags' must be 'json'",
            "Field 'os' must be an 'enum' from ['linux', 'windows']",
            "Field '$set' is not a field name (it starts with '$')",
        ]
    );
    let stored = data.find_one(doc! {"_id": &a_id}).await.expect("find").expect("A's row");
    assert_eq!(stored.get_i64("number_of_cpus").expect("cpus"), 64);
    assert_eq!(client.put(table, alice, &json!({"name": "x"})).await.status, 400, "no id");
    assert_eq!(client.put(&format!("{table}?id={a_id}"), alice, &json!([1])).await.status, 400);

    // POST: a new row of A's, with the same checks; B cannot see it.
    let missing = client.post(table, alice, &json!({"number_of_cpus": 1})).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert_eq!(missing.body["errors"], json!(["Field 'name' is required"]));
    let created = client
        .post(table, alice, &json!({"name": "a-new", "number_of_cpus": 8, "tenant_id": b, "document_type": "device"}))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let new_id = created.body["_id"].as_str().expect("an id").to_owned();
    assert_eq!(created.body["tenant_id"], a.as_str());
    assert_eq!(client.get(&format!("{table}?id={new_id}"), bob).await.status, 404);
    let read = client.get(&format!("{table}?id={new_id}"), alice).await;
    assert_eq!(read.body["name"], "a-new");
    let renamed =
        client.put(&format!("{table}?id={new_id}"), alice, &json!({"name": "a-new-2"})).await;
    assert_eq!(renamed.body["name"], "a-new-2", "{}", renamed.body);
    let listed = client.get(component, alice).await;
    assert_eq!(header(&listed, "x-cache"), "miss");
    assert_eq!(listed.body.as_array().map(Vec::len), Some(6), "{}", listed.body);

    // DELETE.
    let deleted = client.delete(&format!("{table}?id={new_id}"), alice).await;
    assert_eq!(
        (deleted.status, deleted.body["deleted"].clone()),
        (200, json!(1)),
        "{}",
        deleted.body
    );
    assert_eq!(client.get(&format!("{table}?id={new_id}"), alice).await.status, 404);
    assert_eq!(client.delete(&format!("{table}?id={new_id}"), alice).await.status, 404);
    assert_eq!(
        data.count_documents(doc! {"tenant_id": &b}).await.expect("count"),
        3,
        "B's rows untouched"
    );

    // Every edit is in A's history, none in B's.
    let history = eventually(Duration::from_secs(30), "the edits in the history", || async {
        let answer = client.get("/history?limit=50", alice).await;
        let edits: Vec<Value> = answer
            .body
            .as_array()?
            .iter()
            .filter(|r| r.get("datatable_edit").is_some())
            .cloned()
            .collect();
        (edits.len() == 4).then_some(edits)
    })
    .await;
    let actions: Vec<&str> =
        history.iter().filter_map(|r| r["datatable_edit"]["action"].as_str()).collect();
    assert_eq!(actions, ["delete", "update", "insert", "update"], "newest first");
    // The edits by action and outcome in /metrics: the four above succeeded, the
    // refused ones as Refused (400) or by their reason.
    let metrics = api.http.get(format!("{}/metrics", api.url)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    let edits = |action: &str, outcome: &str| -> u64 {
        let series = format!(
            "licenseware_api_datatable_edits_total{{action=\"{action}\",outcome=\"{outcome}\"}} "
        );
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map_or(0, |value| value.trim().parse().expect("a count"))
    };
    assert_eq!(edits("update", "ok"), 2, "{metrics}");
    assert_eq!(edits("insert", "ok"), 1, "{metrics}");
    assert_eq!(edits("delete", "ok"), 1, "{metrics}");
    assert!(edits("update", "Refused") + edits("insert", "Refused") >= 1, "{metrics}");
    assert!(edits("delete", "NotFound") >= 1, "{metrics}");
    let update = &history[3];
    assert_eq!(update["datatable_edit"]["row_id"], a_id.as_str());
    assert_eq!(update["datatable_edit"]["user"], "alice");
    assert_eq!(update["datatable_edit"]["changes"]["number_of_cpus"], 64);
    assert_eq!(update["processing_details"][0]["status"], "success");
    let b_history = client.get("/history", bob).await;
    assert_eq!(b_history.body, json!([]), "B's history holds none of A's edits");

    forget_tenants(&setup, &[&a, &b]).await;
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}

// --- Tenant isolation as a property over generated requests of tenant B. ---

/// One request of B's: a method, an id (often one of A's), query parameters that try to
/// widen (a `tenant_id`, keys naming A's fields or the tenant) and a body that tries to
/// move or reach rows (`tenant_id`, `_id`, `$` keys).
#[derive(Debug, Clone)]
struct Attempt {
    method: u8,
    id: Option<String>,
    params: Vec<(String, String)>,
    body: Value,
}

/// `a_ids`: A's rows'; `b_ids`: B's own (so that some of B's edits succeed, on B's
/// rows, and the property is not only about refusals).
fn attempts(a_ids: Vec<String>, b_ids: Vec<String>, a: String) -> impl Strategy<Value = Attempt> {
    let id = prop_oneof![
        3 => prop::sample::select(a_ids),
        3 => prop::sample::select(b_ids),
        1 => prop::sample::select(vec![
            r#"{"$ne":null}"#.to_owned(),
            "$ne".to_owned(),
            ".*".to_owned(),
            "b-00".to_owned(),
            String::new(),
        ]),
        1 => "[ -~]{0,12}",
    ];
    // Weighted towards what the API accepts, so that the property is about answers as
    // much as refusals; the hostile shapes stay frequent.
    let param = (
        prop_oneof![
            2 => Just("tenant_id"),
            1 => prop::sample::select(vec![
                "distinct_key", "foreign_key", "limit", "skip", "_id", "filters", "$where",
            ]),
        ],
        prop_oneof![
            Just(a.clone()),
            prop::sample::select(vec!["tenant_id", "name", "host", "host_name", "0", "5", "$ne"])
                .prop_map(str::to_owned),
        ],
    )
        .prop_map(|(k, v)| (k.to_owned(), v));
    let key = prop_oneof![
        3 => prop::sample::select(vec!["tenant_id", "_id", "tenant_id.x", "note", "app_id"]),
        1 => prop::sample::select(vec!["$set", "name", "number_of_cpus", "$where", "os"]),
    ];
    let value = prop_oneof![
        2 => Just(json!(a)),
        1 => Just(json!({"$ne": null})),
        2 => Just(json!("b-moved")),
        1 => Just(json!(7)),
        1 => Just(json!({"tenant_id": a})),
    ];
    let body = prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    });
    (0u8..4, prop::option::weighted(0.8, id), prop::collection::vec(param, 0..2), body)
        .prop_map(|(method, id, params, body)| Attempt { method, id, params, body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_of_another_tenant_reads_or_changes_a_row_of_tenant_a() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-datatables-iso", 1, 2).await;
    let api = ApiProcess::start(&setup, "datatables-iso", &[]).await;
    let app = setup.app_id.clone();
    api.publish_datatables(&setup, &[devices_table(&app)]).await;
    let (a, b) = (uuid(), uuid());
    let token_b = api.token(&b, "bob", &[]);
    let data = setup.mongo.collection::<Document>("Data");
    let mut rows = devices(&a, &app, "a-secret", 4);
    rows.extend(devices(&b, &app, "b", 2));
    data.insert_many(rows).await.expect("insert");
    let a_rows = || async {
        let rows: Vec<Document> = data
            .find(doc! {"tenant_id": &a})
            .sort(doc! {"_id": 1})
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("rows");
        rows
    };
    let before = a_rows().await;
    let a_ids: Vec<String> =
        before.iter().filter_map(|r| r.get_str("_id").ok().map(str::to_owned)).collect();
    let b_ids: Vec<String> = (0..2).map(|i| format!("b-{i:02}-{}", &b[..8])).collect();
    let url = format!("{}/{app}/datatables/devices", api.url);
    let send = |attempt: Attempt| {
        let mut query: Vec<(String, String)> = attempt.params.clone();
        if let Some(id) = &attempt.id {
            query.push(("id".to_owned(), id.clone()));
        }
        let method = [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::POST,
            reqwest::Method::DELETE,
        ][usize::from(attempt.method)]
        .clone();
        let query: Vec<String> =
            query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let request = api
            .http
            .request(method, format!("{url}?{}", query.join("&")))
            .header("TenantId", &b)
            .bearer_auth(&token_b)
            .json(&attempt.body);
        async move {
            let response = request.send().await.expect("a response");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        }
    };
    let runtime = tokio::runtime::Handle::current();
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let outcome = tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config { cases: 64, ..Config::default() });
        runner.run(&attempts(a_ids.clone(), b_ids.clone(), a.clone()), |attempt| {
            let (status, body) = runtime.block_on(send(attempt.clone()));
            if status == 200 {
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            prop_assert!([200, 400, 404].contains(&status), "{attempt:?} got {status}: {body}");
            prop_assert!(!body.contains("a-secret"), "{attempt:?} got A's rows: {body}");
            // No row of A's, ever: none says A's tenant.
            let rows = match serde_json::from_str::<Value>(&body) {
                Ok(Value::Array(rows)) => rows,
                Ok(row @ Value::Object(_)) => vec![row],
                _ => Vec::new(),
            };
            prop_assert!(
                rows.iter().all(|row| row.get("tenant_id") != Some(&json!(a))),
                "{attempt:?} got a row of A's: {body}"
            );
            // A's tenant id itself may come back, but only as B's own words: a value B
            // wrote into B's rows, or quoted in a 400 (A's rows and ids are `a-secret-*`).
            Ok(())
        })
        // The failure as text: the runner's error holds the whole generated case.
        .map_err(|failure| failure.to_string())
    });
    if let Err(failure) = outcome {
        panic!("{failure}\nAPI log:\n{}", api.log());
    }
    // Not only refusals: some of B's requests read or wrote B's own rows.
    let answered = answered.into_inner();
    println!("data-table isolation: {answered} of 64 generated requests of B's answered 200");
    assert!(answered >= 1, "none of 64 generated requests was answered");
    // The honest case reads B's rows: the property is not vacuous.
    let honest_row = doc! {"_id": "b-honest", "tenant_id": &b, "name": "b-honest"};
    data.insert_one(honest_row).await.expect("insert");
    let honest = api.get(&format!("{url}?limit=0"), &b, &token_b).await;
    assert_eq!(honest.status(), 200);
    let honest: Vec<Value> = honest.json().await.expect("rows");
    assert!(honest.iter().any(|row| row["name"] == "b-honest"), "{honest:?}");
    assert!(honest.iter().all(|row| row["tenant_id"] == b.as_str()), "{honest:?}");
    assert_eq!(a_rows().await, before, "A's rows are as they were");
    let moved = data.count_documents(doc! {"tenant_id": {"$nin": [&a, &b]}}).await.expect("count");
    assert_eq!(moved, 0, "no row left both tenants");
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}
