//! Downloads on the real stack: a component's rows as json, csv and xlsx attachments,
//! each opened and read back (the CSV parsed, the workbook read with calamine), with
//! the tenant's rows only and the data route's filters; a whole report as one workbook
//! with a sheet per component; and a large download with the API's peak RSS printed
//! (measured, not asserted by time).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use licenseware_crds::{Report, ReportComponent};
use licenseware_e2e::{
    api::ApiProcess,
    consumer::{ConsumerSetup, stack_shared},
};
use mongodb::bson::{DateTime, Document, doc};
use serde_json::{Value, json};

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn with_app(yaml: &str, app: &str) -> Value {
    let mut value: Value = serde_yaml::from_str(yaml).expect("manifest");
    value["spec"]["appId"] = json!(app);
    value["metadata"]["namespace"] = json!("e2e");
    value
}

/// A table component over the tenant's machines, with the given id and fields.
fn table(id: &str, fields: &[&str], app: &str) -> ReportComponent {
    table_sorted(id, fields, app, "\n      - $sort: {name: 1}")
}

/// The same, with `sort` (a stage, or nothing) at the end of its pipeline.
fn table_sorted(id: &str, fields: &[&str], app: &str, sort: &str) -> ReportComponent {
    let project: Vec<String> = fields.iter().map(|f| format!("\"{f}\": 1")).collect();
    let yaml = format!(
        r#"
apiVersion: licenseware.io/v1alpha1
kind: ReportComponent
metadata: {{name: {name}}}
spec:
  componentId: {id}
  appId: x
  title: Machines
  type: table
  attributes:
    columns:
      - {{name: Name, prop: name, type: string}}
  filters:
    - {{column: name}}
  data:
    collection: Data
    cacheTtlSeconds: 60
    pipeline:
      - $match: {{document_type: machine}}
      - $project: {{_id: 0, {project}}}{sort}
"#,
        name = id.replace('_', "-"),
        project = project.join(", "),
    );
    serde_json::from_value(with_app(&yaml, app)).expect("a ReportComponent")
}

const LONG_ID: &str = "machines_with_a_component_id_longer_than_excel_allows";

fn resources(app: &str) -> (Report, Vec<ReportComponent>) {
    let components = vec![
        table("vm_list", &["name", "cpus", "seen", "on", "tags"], app),
        table("os_list", &["name", "os"], app),
        table(LONG_ID, &["name"], app),
    ];
    let yaml = format!(
        r"
apiVersion: licenseware.io/v1alpha1
kind: Report
metadata: {{name: inventory}}
spec:
  appId: x
  name: Inventory
  components: [vm_list, os_list, {LONG_ID}]
  filters:
    - {{column: name}}
"
    );
    (serde_json::from_value(with_app(&yaml, app)).expect("a Report"), components)
}

fn machines(tenant: &str, app: &str, prefix: &str, count: usize) -> Vec<Document> {
    (0..count)
        .zip(0_i64..)
        .map(|(i, n)| {
            doc! {
                "tenant_id": tenant, "app_id": app, "document_type": "machine",
                "name": format!("{prefix}-{i:06}"), "os": if i % 2 == 0 { "linux" } else { "windows, \"quoted\"" },
                "cpus": n + 1, "seen": DateTime::from_millis(1_704_067_200_000 + 86_400_000 * n),
                "on": i % 2 == 0, "tags": {"env": "prod"},
            }
        })
        .collect()
}

struct Download {
    status: u16,
    disposition: String,
    content_type: String,
    bytes: Vec<u8>,
}

async fn download(
    api: &ApiProcess,
    url: &str,
    tenant: &str,
    token: &str,
    filters: Option<&Value>,
) -> Download {
    let request = match filters {
        Some(filters) => api.http.post(url).json(filters),
        None => api.http.get(url),
    };
    let response =
        request.header("TenantId", tenant).bearer_auth(token).send().await.expect("a response");
    let header = |name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let (status, disposition, content_type) =
        (response.status().as_u16(), header("content-disposition"), header("content-type"));
    let bytes = response.bytes().await.expect("the whole body").to_vec();
    Download { status, disposition, content_type, bytes }
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn workbook(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
    open_workbook_from_rs(Cursor::new(bytes)).expect("an xlsx workbook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stream_each_format_and_whole_reports() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-downloads", 1, 2).await;
    let api = ApiProcess::start(&setup, "downloads", &[]).await;
    let app = setup.app_id.clone();
    let (report, components) = resources(&app);
    api.publish_reports(&setup, &[report], &components).await;
    let (a, b) = (uuid(), uuid());
    let (token_a, token_b) = (api.token(&a, "alice", &[]), api.token(&b, "bob", &[]));
    let data = setup.mongo.collection::<Document>("Data");
    let mut rows = machines(&a, &app, "a", 10);
    rows.extend(machines(&b, &app, "b", 3));
    data.insert_many(rows).await.expect("insert");
    let base = format!("{}/{app}", api.url);
    let vm = format!("{base}/report-components/vm-list/download");

    // JSON: the tenant's rows, as the data route gives them.
    let json = download(&api, &format!("{vm}?filetype=json"), &a, &token_a, None).await;
    assert_eq!(json.status, 200, "{}", String::from_utf8_lossy(&json.bytes));
    assert_eq!(json.disposition, "attachment; filename=\"vm_list.json\"");
    assert_eq!(json.content_type, "application/json");
    let rows: Vec<Value> = serde_json::from_slice(&json.bytes).expect("a JSON list");
    assert_eq!(rows.len(), 10);
    assert_eq!(
        rows[3],
        json!({"name": "a-000003", "cpus": 4, "seen": "2024-01-04T00:00:00Z", "on": false, "tags": {"env": "prod"}})
    );
    let of_b = download(&api, &format!("{vm}?format=json"), &b, &token_b, None).await;
    let of_b: Vec<Value> = serde_json::from_slice(&of_b.bytes).expect("a JSON list");
    assert_eq!(of_b.len(), 3, "B's rows only, `format` taken for `filetype`");
    assert!(of_b.iter().all(|r| r["name"].as_str().is_some_and(|n| n.starts_with("b-"))));

    // CSV, parsed; quotes and commas survive.
    let csv = download(&api, &format!("{vm}?filetype=csv"), &a, &token_a, None).await;
    assert_eq!(
        (csv.status, csv.disposition.as_str()),
        (200, "attachment; filename=\"vm_list.csv\"")
    );
    assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
    let (header, records) = csv_rows(&csv.bytes);
    assert_eq!(header, ["name", "cpus", "seen", "on", "tags"]);
    assert_eq!(records.len(), 10);
    assert_eq!(records[3], ["a-000003", "4", "2024-01-04T00:00:00Z", "false", r#"{"env":"prod"}"#]);
    let os = download(
        &api,
        &format!("{base}/report-components/os-list/download?filetype=csv"),
        &a,
        &token_a,
        None,
    )
    .await;
    let (_, records) = csv_rows(&os.bytes);
    assert_eq!(records[1], ["a-000001", "windows, \"quoted\""]);

    // The same through the report that shows the component: the same rows, filterable
    // on the report's filters; a component the report does not show is a 404.
    let in_report = format!("{base}/reports/inventory/vm-list/download?filetype=csv");
    let through_report = download(&api, &in_report, &a, &token_a, None).await;
    assert_eq!(through_report.status, 200);
    assert_eq!(through_report.bytes, csv.bytes, "the same rows as the component's download");
    let by_name = json!([{"column": "name", "filter_type": "equals", "filter_value": "a-000002"}]);
    let filtered_in_report = download(&api, &in_report, &a, &token_a, Some(&by_name)).await;
    assert_eq!(csv_rows(&filtered_in_report.bytes).1.len(), 1);
    let others = download(&api, &in_report, &b, &token_b, None).await;
    assert!(!String::from_utf8_lossy(&others.bytes).contains("a-0000"), "B never gets A's rows");
    let not_shown = format!("{base}/reports/inventory/nope/download?filetype=csv");
    assert_eq!(download(&api, &not_shown, &a, &token_a, None).await.status, 404);

    // Filters as for the data: POST body or `filters`; the tenant is never one.
    let filters = json!([{"column": "name", "filter_type": "equals", "filter_value": "a-000004"}]);
    let filtered =
        download(&api, &format!("{vm}?filetype=csv"), &a, &token_a, Some(&filters)).await;
    assert_eq!(csv_rows(&filtered.bytes).1.len(), 1);
    let widen = json!([{"column": "tenant_id", "filter_type": "equals", "filter_value": a}]);
    let refused = download(&api, &format!("{vm}?filetype=csv"), &b, &token_b, Some(&widen)).await;
    assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.bytes));
    for bad in ["", "?filetype=pdf", "?filetype=csv&limit=0", "?filetype=csv&limit=1000001"] {
        let answer = download(&api, &format!("{vm}{bad}"), &a, &token_a, None).await;
        assert_eq!(answer.status, 400, "{bad}");
    }
    let paged =
        download(&api, &format!("{vm}?filetype=json&limit=2&skip=8"), &a, &token_a, None).await;
    let paged: Vec<Value> = serde_json::from_slice(&paged.bytes).expect("a JSON list");
    assert_eq!(
        paged.iter().map(|r| r["name"].clone()).collect::<Vec<_>>(),
        [json!("a-000008"), json!("a-000009")]
    );
    let missing = download(
        &api,
        &format!("{base}/report-components/nope/download?filetype=csv"),
        &a,
        &token_a,
        None,
    )
    .await;
    assert_eq!(missing.status, 404);

    // xlsx, read back: numbers, booleans and dates as Excel types.
    let xlsx = download(&api, &format!("{vm}?filetype=xlsx"), &a, &token_a, None).await;
    assert_eq!(
        (xlsx.status, xlsx.disposition.as_str()),
        (200, "attachment; filename=\"vm_list.xlsx\"")
    );
    let mut book = workbook(xlsx.bytes);
    assert_eq!(book.sheet_names(), ["vm_list"]);
    let range = book.worksheet_range("vm_list").expect("the sheet");
    assert_eq!(range.height(), 11, "a header and ten rows");
    let cell =
        |row: u32, column: u32| range.get_value((row, column)).cloned().unwrap_or(Data::Empty);
    assert_eq!(cell(0, 0), Data::String("name".into()));
    assert_eq!(cell(4, 0), Data::String("a-000003".into()));
    assert_eq!(cell(4, 1), Data::Float(4.0));
    // A date cell: 2024-01-04 is Excel's day 45,295.
    match cell(4, 2) {
        Data::DateTime(date) => assert_eq!(date.as_f64(), 45_295.0),
        other => panic!("not a date: {other:?}"),
    }
    assert_eq!(cell(4, 3), Data::Bool(false));
    assert_eq!(cell(4, 4), Data::String(r#"{"env":"prod"}"#.into()));

    // The whole report: a sheet per component, in order, names fit for Excel.
    let report =
        download(&api, &format!("{base}/reports/inventory/download"), &a, &token_a, None).await;
    assert_eq!(report.status, 200, "{}", String::from_utf8_lossy(&report.bytes));
    assert_eq!(report.disposition, "attachment; filename=\"inventory.xlsx\"");
    let mut book = workbook(report.bytes);
    let names = book.sheet_names();
    assert_eq!(names, ["vm_list", "os_list", &LONG_ID[..31]]);
    for name in &names {
        let range = book.worksheet_range(name).expect("a sheet");
        assert_eq!(range.height(), 11, "{name}");
    }
    let filtered = download(
        &api,
        &format!("{base}/reports/inventory/download"),
        &b,
        &token_b,
        Some(&json!([
            {"column": "name", "filter_type": "contains", "filter_value": "b-00000"}
        ])),
    )
    .await;
    let mut book = workbook(filtered.bytes);
    assert_eq!(book.worksheet_range("os_list").expect("a sheet").height(), 4, "B's three rows");
    let csv_report = download(
        &api,
        &format!("{base}/reports/inventory/download?filetype=csv"),
        &a,
        &token_a,
        None,
    )
    .await;
    assert_eq!(csv_report.status, 400);

    // Downloads started, by format.
    let metrics = api.http.get(format!("{}/metrics", api.url)).send().await.expect("metrics");
    let metrics = metrics.text().await.expect("text");
    for format in ["json", "csv", "xlsx"] {
        let series = format!("licenseware_api_downloads_total{{format=\"{format}\"}} ");
        let count: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map_or(0, |value| value.trim().parse().expect("a count"));
        assert!(count >= 1, "{format}: {metrics}");
    }
    assert!(!metrics.contains("format=\"pdf\""), "refused formats are not counted");

    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}

/// Peak resident set size of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_download_streams_in_constant_memory() {
    const ROWS: usize = 200_000;
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-downloads-big", 1, 2).await;
    let api = ApiProcess::start(&setup, "downloads-big", &[]).await;
    let app = setup.app_id.clone();
    // No `$sort`: FerretDB v1 sorts in memory, which is not what is measured here.
    let bulk = table_sorted("bulk", &["name", "cpus", "seen", "on", "tags"], &app, "");
    let (report, mut components) = resources(&app);
    components.push(bulk);
    api.publish_reports(&setup, &[report], &components).await;
    let tenant = uuid();
    let token = api.token(&tenant, "alice", &[]);
    let data = setup.mongo.collection::<Document>("Data");
    let all = machines(&tenant, &app, "m", ROWS);
    for batch in all.chunks(10_000) {
        data.insert_many(batch).await.expect("insert a batch");
    }
    drop(all);
    let before = peak_rss_kib(api.pid());
    let base = format!("{}/{app}/report-components/bulk/download", api.url);

    let started = std::time::Instant::now();
    let xlsx = download(&api, &format!("{base}?filetype=xlsx"), &tenant, &token, None).await;
    let xlsx_took = started.elapsed();
    assert_eq!(xlsx.status, 200);
    let xlsx_bytes = xlsx.bytes.len();
    let after_xlsx = peak_rss_kib(api.pid());
    let mut book = workbook(xlsx.bytes);
    assert_eq!(book.worksheet_range("bulk").expect("the sheet").height(), ROWS + 1);
    drop(book);

    let started = std::time::Instant::now();
    let csv = download(&api, &format!("{base}?filetype=csv"), &tenant, &token, None).await;
    let csv_took = started.elapsed();
    assert_eq!(csv_rows(&csv.bytes).1.len(), ROWS);
    let after_csv = peak_rss_kib(api.pid());
    let json = download(&api, &format!("{base}?filetype=json"), &tenant, &token, None).await;
    let rows: Vec<Value> = serde_json::from_slice(&json.bytes).expect("a JSON list");
    assert_eq!(rows.len(), ROWS);
    let after_json = peak_rss_kib(api.pid());
    println!(
        "large download, {ROWS} rows x 5 columns: API peak RSS before {} MiB; after xlsx ({} bytes, {:.1} s) {} MiB; after csv ({} bytes, {:.1} s) {} MiB; after json ({} bytes) {} MiB",
        before / 1024,
        xlsx_bytes,
        xlsx_took.as_secs_f64(),
        after_xlsx / 1024,
        csv.bytes.len(),
        csv_took.as_secs_f64(),
        after_csv / 1024,
        json.bytes.len(),
        after_json / 1024,
    );
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}
