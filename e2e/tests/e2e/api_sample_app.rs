//! The sample app (manifests/examples) end to end through the API, on the real stack:
//! the SDK's RVTools.xlsx uploaded and processed by a real worker, then both components'
//! data, filters, paging, every download format read back, a snapshot read after the
//! live data changed, a data-table edit seen in the component data at once, and a
//! public link used, then revoked.

use std::{io::Cursor, time::Duration};

use calamine::{Reader, Xlsx};
use licenseware_crds::DataTable;
use licenseware_e2e::{
    api::ApiProcess,
    consumer::{ConsumerSetup, WorkerProcess, stack_shared},
};
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Value, json};

use crate::{
    api::{fixture, rv_tools_spec},
    api_reports::{component, example, manifest, report, uuid},
};

const WAIT: Duration = Duration::from_secs(180);

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.bytes).into_owned()))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn rows(&self) -> Vec<Value> {
        match self.json() {
            Value::Array(rows) => rows,
            other => panic!("not rows ({}): {other}", self.status),
        }
    }
}

/// One tenant's calls to the app.
struct Tenant<'a> {
    api: &'a ApiProcess,
    base: String,
    id: String,
    token: String,
}

impl Tenant<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .api
            .http
            .request(method, format!("{}{path}", self.base))
            .header("TenantId", &self.id)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("a response");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let bytes = response.bytes().await.expect("a body").to_vec();
        Answer { status, headers, bytes }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> Answer {
        self.send(reqwest::Method::POST, path, body).await
    }
}

async fn anonymous_get(api: &ApiProcess, url: &str) -> Answer {
    let response = api.http.get(url).send().await.expect("a response");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = response.bytes().await.expect("a body").to_vec();
    Answer { status, headers, bytes }
}

/// Rows as a sorted list of their JSON texts, keys sorted: the same rows in any order,
/// with their fields in any order, compare equal.
fn multiset(rows: &[Value]) -> Vec<String> {
    let canonical = |row: &Value| match row.as_object() {
        Some(fields) => {
            let sorted: std::collections::BTreeMap<&String, &Value> = fields.iter().collect();
            serde_json::to_string(&sorted).unwrap_or_default()
        }
        None => row.to_string(),
    };
    let mut rows: Vec<String> = rows.iter().map(canonical).collect();
    rows.sort();
    rows
}

fn sum_of(rows: &[Value], field: &str) -> i64 {
    rows.iter().filter_map(|row| row[field].as_i64()).sum()
}

/// The tenant's virtual machines by OS, counted from the documents themselves.
async fn machines_by_os(setup: &ConsumerSetup, tenant: &str) -> Vec<(String, i64)> {
    use futures::TryStreamExt;
    let machines: Vec<Document> = setup
        .mongo
        .collection::<Document>("Data")
        .find(doc! {"tenant_id": tenant, "document_type": "virtual_machine"})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("machines");
    let mut groups = std::collections::BTreeMap::<String, i64>::new();
    for machine in &machines {
        *groups.entry(machine.get_str("os").unwrap_or_default().to_owned()).or_default() += 1;
    }
    groups.into_iter().collect()
}

/// An example component's pipeline run straight through the driver behind the tenant's
/// match and `filter`: what the API must serve. The machine counts are also checked
/// against the documents themselves: the stack's FerretDB v1 computes only the first
/// accumulator of a `$group` (FerretDB/FerretDB#4616) and takes `"$_id"` in `$project`
/// for a literal, so there the driver's answer is the only reference for the rest.
async fn by_the_driver(
    setup: &ConsumerSetup,
    tenant: &str,
    example_file: &str,
    filter: Document,
) -> Vec<Value> {
    use futures::TryStreamExt;
    let manifest: Value = serde_yaml::from_str(&example(example_file)).expect("manifest");
    let mut pipeline = vec![doc! {"$match": {"tenant_id": tenant}}];
    if !filter.is_empty() {
        pipeline.push(doc! {"$match": filter});
    }
    for stage in manifest["spec"]["data"]["pipeline"].as_array().expect("a pipeline") {
        pipeline.push(mongodb::bson::to_document(stage).expect("a stage"));
    }
    let rows: Vec<Document> = setup
        .mongo
        .collection::<Document>("Data")
        .aggregate(pipeline)
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("rows");
    rows.into_iter()
        .map(|row| serde_json::to_value(Bson::Document(row).into_relaxed_extjson()).expect("json"))
        .collect()
}

const BY_OS: &str = "devices-by-os.reportcomponent.yaml";
const OVERVIEW: &str = "devices-overview.reportcomponent.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_app_serves_an_rvtools_upload_end_to_end() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::with_spec("api-sample", 1, 2, rv_tools_spec()).await;
    let secret_file = setup.root.with_file_name("public-link-secret");
    std::fs::write(&secret_file, format!("{}{}\n", uuid(), uuid())).expect("write the secret");
    let secret_arg = secret_file.to_string_lossy().into_owned();
    let api =
        ApiProcess::start(&setup, "sample", &["--public-link-secret-file", &secret_arg]).await;
    let app = setup.app_id.clone();
    let components = vec![component(&example(OVERVIEW), &app), component(&example(BY_OS), &app)];
    let reports = vec![report(&example("devices.report.yaml"), &app)];
    api.publish_reports(&setup, &reports, &components).await;
    let table: DataTable =
        serde_json::from_value(manifest(&example("devices.datatable.yaml"), &app)).expect("table");
    api.publish_datatables(&setup, &[table]).await;
    let mut worker = WorkerProcess::start_default(&setup, "api-sample");
    let id = uuid();
    let tenant = Tenant {
        api: &api,
        base: format!("{}/{app}", api.url),
        token: api.token(&id, "u", &[]),
        id,
    };

    // The SDK's RVTools export, uploaded and processed.
    let validation = api
        .post_json(
            &api.uploader_url(&setup, "validation"),
            &tenant.id,
            &tenant.token,
            &json!(["RVTools.xlsx"]),
        )
        .await;
    assert_eq!(validation.status(), 200);
    let validation: Value = validation.json().await.expect("json");
    let event_id = validation["event_id"].as_str().expect("an event id").to_owned();
    let rv_tools = fixture("RVTools.xlsx");
    let files_url = format!("{}?event_id={event_id}", api.uploader_url(&setup, "files"));
    let uploaded =
        api.upload(&files_url, &tenant.id, &tenant.token, &[("RVTools.xlsx", rv_tools)]).await;
    assert_eq!(uploaded.status(), 200, "log:\n{}", api.log());
    setup.wait_all_committed(1, WAIT).await;
    let counted = machines_by_os(&setup, &tenant.id).await;
    let machines: i64 = counted.iter().map(|(_, machines)| machines).sum();
    assert!(machines > 10, "machines: {machines}; worker log:\n{}", worker.log());

    // The report, its components in order, and both components' data.
    let devices = tenant.get("/reports/devices").await;
    assert_eq!(devices.status, 200);
    let order: Vec<Value> = devices.json()["report_components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["component_id"].clone())
        .collect();
    assert_eq!(order, [json!("devices_overview"), json!("devices_by_os")]);
    let overview = tenant.get("/reports/devices/devices-overview").await;
    assert_eq!(overview.status, 200, "{}", overview.json());
    assert_eq!(overview.header("x-cache"), "miss");
    assert_eq!(overview.rows(), by_the_driver(&setup, &tenant.id, OVERVIEW, doc! {}).await);
    assert_eq!(sum_of(&overview.rows(), "number_of_devices"), machines);
    let live = tenant.get("/report-components/devices-by-os").await.rows();
    let expected = by_the_driver(&setup, &tenant.id, BY_OS, doc! {}).await;
    assert_eq!(multiset(&live), multiset(&expected));
    assert_eq!(live.len(), counted.len(), "a row per OS");
    assert_eq!(sum_of(&live, "number_of_devices"), machines);
    assert_eq!(tenant.get("/report-components/devices-by-os").await.header("x-cache"), "hit");

    // Filters of each type the report's columns take, applied to the machines.
    let (busiest_os, busiest) =
        counted.iter().max_by_key(|(_, machines)| *machines).cloned().expect("an OS");
    let equals = json!([{"column": "os", "filter_type": "equals", "filter_value": busiest_os}]);
    let one = tenant.post("/reports/devices/devices-by-os", Some(&equals)).await.rows();
    assert_eq!((one.len(), sum_of(&one, "number_of_devices")), (1, busiest));
    let word = busiest_os.split_whitespace().next().unwrap_or("a").to_lowercase();
    let contains = json!([{"column": "os", "filter_type": "contains", "filter_value": word}]);
    let contained = tenant.post("/reports/devices/devices-by-os", Some(&contains)).await.rows();
    let with_word: i64 = counted
        .iter()
        .filter(|(os, _)| os.to_lowercase().contains(&word))
        .map(|(_, machines)| machines)
        .sum();
    assert_eq!(sum_of(&contained, "number_of_devices"), with_word);
    let powered =
        json!([{"column": "power_state", "filter_type": "in_list", "filter_value": ["poweredOn"]}]);
    let on = tenant.post("/reports/devices/devices-overview", Some(&powered)).await.rows();
    let powered_on = setup
        .count(
            "Data",
            doc! {"tenant_id": &tenant.id, "document_type": "virtual_machine",
            "power_state": "poweredOn"},
        )
        .await;
    assert_eq!(u64::try_from(sum_of(&on, "number_of_devices")).expect("a count"), powered_on);
    let filtered =
        by_the_driver(&setup, &tenant.id, OVERVIEW, doc! {"power_state": {"$in": ["poweredOn"]}});
    assert_eq!(on, filtered.await);
    let unknown = json!([{"column": "os", "filter_type": "sounds_like", "filter_value": "x"}]);
    let refused = tenant.post("/reports/devices/devices-by-os", Some(&unknown)).await;
    assert_eq!(
        (refused.status, refused.json()["reason"].clone()),
        (400, json!("FilterTypeUnknown"))
    );

    // Paging: one row a page, every row once.
    let mut paged = Vec::new();
    for skip in 0..live.len() {
        let page =
            tenant.get(&format!("/report-components/devices-by-os?limit=1&skip={skip}")).await;
        let more = skip + 1 < live.len();
        assert_eq!(page.header("x-has-more"), if more { "true" } else { "false" });
        paged.extend(page.rows());
    }
    assert_eq!(multiset(&paged), multiset(&live));

    // Downloads: each format read back.
    let json_rows = tenant.get("/report-components/devices-by-os/download?filetype=json").await;
    assert_eq!(json_rows.status, 200);
    assert!(json_rows.header("content-disposition").contains("devices_by_os.json"));
    assert_eq!(multiset(&json_rows.rows()), multiset(&live));
    let csv = tenant.get("/report-components/devices-by-os/download?filetype=csv").await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.bytes.as_slice());
    let headers = reader.headers().expect("a header").clone();
    let count_column =
        headers.iter().position(|h| h == "number_of_devices").expect("a count column");
    let csv_total: i64 = reader
        .records()
        .map(|r| r.expect("a record")[count_column].parse::<i64>().expect("a count"))
        .sum();
    assert_eq!(csv_total, machines);
    let xlsx = tenant.get("/report-components/devices-by-os/download?filetype=xlsx").await;
    assert_eq!(xlsx.status, 200);
    let mut workbook = Xlsx::new(Cursor::new(xlsx.bytes.clone())).expect("an xlsx");
    let sheet = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&sheet).expect("a sheet");
    assert_eq!(range.height(), live.len() + 1, "a header and a row per OS");
    let whole = tenant.get("/reports/devices/download").await;
    assert_eq!(whole.status, 200);
    let workbook = Xlsx::new(Cursor::new(whole.bytes.clone())).expect("an xlsx");
    assert_eq!(workbook.sheet_names().len(), 2, "a sheet per component");

    // A snapshot, then a data-table edit that moves a machine to a new OS: seen in the
    // live data at once (the cached answer is invalidated), not in the snapshot.
    let snapshot = tenant.post("/snapshot-reports/devices", None).await;
    assert_eq!(snapshot.status, 201, "{}", snapshot.json());
    let version = snapshot.json()["version"].as_str().expect("a version").to_owned();
    let rows = tenant.get(&format!("/datatables/devices?limit={}", busiest + 1)).await;
    assert_eq!(rows.status, 200, "{}", rows.json());
    let row = rows
        .rows()
        .into_iter()
        .find(|row| row["os"] == json!(busiest_os))
        .expect("a machine of the busiest OS");
    let row_id = row["_id"].as_str().expect("a row id").to_owned();
    let edited = tenant
        .send(
            reqwest::Method::PUT,
            &format!("/datatables/devices?id={row_id}"),
            Some(&json!({"os": "Edited OS", "cluster": "not editable"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.json());
    let stored = tenant.get(&format!("/datatables/devices?id={row_id}")).await.json();
    assert_eq!((&stored["os"], &stored["cluster"]), (&json!("Edited OS"), &row["cluster"]));
    let after = tenant.get("/report-components/devices-by-os").await;
    assert_eq!(after.header("x-cache"), "miss", "the edit invalidated the cached rows");
    let after = after.rows();
    assert_eq!(after.len(), live.len() + 1, "a new OS group");
    assert_eq!(sum_of(&after, "number_of_devices"), machines);
    assert_eq!(
        multiset(&after),
        multiset(&by_the_driver(&setup, &tenant.id, BY_OS, doc! {}).await)
    );
    let kept = tenant.get(&format!("/snapshot-report-components/devices-by-os/{version}")).await;
    assert_eq!(kept.status, 200, "{}", kept.json());
    let strip_ids = |rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut row| {
                if let Some(row) = row.as_object_mut() {
                    row.remove("_id");
                }
                row
            })
            .collect()
    };
    assert_eq!(
        multiset(&strip_ids(kept.rows())),
        multiset(&live),
        "the snapshot keeps the rows as they were"
    );

    // A public link: the report's rows with the token alone, until it is revoked.
    let link = tenant.post("/public-reports/devices?expire=5", None).await;
    assert_eq!(link.status, 201, "{}", link.json());
    let token = link.json()["token"].as_str().expect("a token").to_owned();
    let public = |component: &str| {
        format!("{}/{app}/public-report-components/{component}?public_token={token}", api.url)
    };
    let seen = anonymous_get(&api, &public("devices-by-os")).await;
    assert_eq!(seen.status, 200, "{}", seen.json());
    assert_eq!(multiset(&seen.rows()), multiset(&after));
    let revoked = tenant
        .send(
            reqwest::Method::DELETE,
            &format!("/public-reports/devices?public_token={token}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.json());
    assert_eq!(anonymous_get(&api, &public("devices-by-os")).await.status, 401);

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}
