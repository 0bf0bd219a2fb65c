//! Snapshots and public links on the real stack: a snapshot keeps a tenant's rows as
//! they were when it was taken (read after the live data changed), its versions, its
//! metadata, filters and paging on its rows, row edits, deletes, and another tenant
//! reaching none of it; public links used with the token alone, refused when expired,
//! revoked, forged or used on another report or component.

use std::time::Duration;

use licenseware_e2e::{
    api::{ApiProcess, forget_tenants},
    consumer::{ConsumerSetup, stack_shared},
};
use licenseware_worker::serve::public_links::token::{AUDIENCE, LinkClaims, sign};
use mongodb::bson::{Document, doc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::api_reports::{
    Request, bump, component, example, inventory, isolation_resources, machines, names, report,
    requests, url_encode, uuid, vm_list,
};

struct Answer {
    status: u16,
    has_more: String,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let has_more = response
        .headers()
        .get("x-has-more")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, has_more, body }
}

/// A user's requests against one app.
struct User<'a> {
    api: &'a ApiProcess,
    base: String,
    tenant: String,
    token: String,
}

impl User<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .api
            .http
            .request(method, format!("{}{path}", self.base))
            .header("TenantId", &self.tenant)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.expect("a response")).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> Answer {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

/// Alice (tenant A, three machines `alpha-vm-0N`) and Bob (tenant B, two `beta-vm-0N`).
async fn users_with_machines<'a>(
    api: &'a ApiProcess,
    setup: &ConsumerSetup,
) -> (User<'a>, User<'a>) {
    let app = &setup.app_id;
    let (a, b) = (uuid(), uuid());
    let base = format!("{}/{app}", api.url);
    let mut documents = machines(&a, app, "alpha", 3);
    documents.extend(machines(&b, app, "beta", 2));
    let data = setup.mongo.collection::<Document>("Data");
    data.insert_many(documents).await.expect("insert A's and B's machines");
    let alice = User { api, base: base.clone(), token: api.token(&a, "alice", &[]), tenant: a };
    let bob = User { api, base, token: api.token(&b, "bob", &[]), tenant: b };
    (alice, bob)
}

/// Takes a snapshot of `report` for `user`; its version.
async fn snapshot(user: &User<'_>, report: &str) -> String {
    let created = user.post(&format!("/snapshot-reports/{report}"), None).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body["version"].as_str().expect("a version").to_owned()
}

async fn anonymous_get(api: &ApiProcess, url: &str) -> Answer {
    answer(api.http.get(url).send().await.expect("a response")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_keep_a_tenants_rows_as_they_were_and_stay_tenant_scoped() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-snapshots", 1, 2).await;
    let api = ApiProcess::start(&setup, "snapshots", &[]).await;
    let app = setup.app_id.clone();
    api.publish_reports(&setup, &[inventory(&app)], &[vm_list(&app)]).await;
    let (alice, bob) = users_with_machines(&api, &setup).await;
    let (a, b) = (alice.tenant.clone(), bob.tenant.clone());
    let base = alice.base.clone();
    let data = setup.mongo.collection::<Document>("Data");

    // Take a snapshot: the report's metadata with the snapshot's fields.
    let created = alice.post("/snapshot-reports/inventory", None).await;
    assert_eq!(created.status, 201, "{}\n{}", created.body, api.log());
    let v1 = created.body["version"].as_str().expect("a version").to_owned();
    assert!(v1.len() == 6 && v1.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(created.body["report_id"], "inventory");
    assert_eq!(created.body["tenant_id"], a.as_str());
    let kept = &created.body["report_components"][0];
    assert_eq!(kept["snapshot_url"], format!("/snapshot-report-components/vm-list/{v1}"));
    assert_eq!(
        (kept["snapshot_rows"].as_i64(), kept["snapshot_truncated"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(created.body["truncated_components"], json!([]));

    // The live data changes: one machine renamed, one gone, one new.
    data.update_one(
        doc! {"tenant_id": &a, "name": "alpha-vm-00"},
        doc! {"$set": {"name": "alpha-renamed"}},
    )
    .await
    .expect("rename");
    data.delete_one(doc! {"tenant_id": &a, "name": "alpha-vm-01"}).await.expect("delete");
    data.insert_one(doc! {"tenant_id": &a, "app_id": &app, "document_type": "virtual_machine", "name": "alpha-new", "cpus": 9})
        .await
        .expect("insert");
    bump(&setup, &a).await;
    // Another process's change reaches the API's near cache as a Redis push: a moment.
    let expected = ["alpha-new", "alpha-renamed", "alpha-vm-02"];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut live = alice.get("/report-components/vm-list").await;
    while names(&live.body) != expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        live = alice.get("/report-components/vm-list").await;
    }
    assert_eq!(names(&live.body), expected, "{}", live.body);

    // The snapshot still holds the rows as they were, in the component-data shape.
    let rows_path = format!("/snapshot-report-components/vm-list/{v1}");
    let old = alice.get(&rows_path).await;
    assert_eq!(old.status, 200, "{}", old.body);
    assert_eq!(names(&old.body), ["alpha-vm-00", "alpha-vm-01", "alpha-vm-02"]);
    assert_eq!(old.body[1]["cpus"], 2);
    let row = old.body[0].as_object().expect("a row");
    assert!(row["_id"].is_string(), "{row:?}");
    for bookkeeping in ["tenant_id", "version", "component_id", "row_index", "row", "kind"] {
        assert!(!row.contains_key(bookkeeping), "{bookkeeping} in {row:?}");
    }
    // The component's id form and the report's filters, on GET and POST; paging.
    let filters =
        json!([{"column": "cpus", "filter_type": "greater_or_equal_to", "filter_value": 2}]);
    let filtered =
        alice.post(&format!("/snapshot-report-components/vm_list/{v1}"), Some(&filters)).await;
    assert_eq!(names(&filtered.body), ["alpha-vm-01", "alpha-vm-02"], "{}", filtered.body);
    let encoded = url_encode(
        &json!([{"column": "name", "filter_type": "contains", "filter_value": "VM-02"}])
            .to_string(),
    );
    let got = alice.get(&format!("{rows_path}?filters={encoded}")).await;
    assert_eq!(names(&got.body), ["alpha-vm-02"], "{}", got.body);
    let page = alice.get(&format!("{rows_path}?limit=1&skip=1")).await;
    assert_eq!(
        (names(&page.body), page.has_more.as_str()),
        (vec!["alpha-vm-01".to_owned()], "true")
    );
    let last = alice.get(&format!("{rows_path}?limit=5&skip=2")).await;
    assert_eq!(last.has_more, "false");
    let bad = json!([{"column": "tenant_id", "filter_type": "equals", "filter_value": b}]);
    let refused = alice.post(&rows_path, Some(&bad)).await;
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (400, Some("FilterColumnForbidden"))
    );
    assert_eq!(alice.get(&format!("{rows_path}?limit=0")).await.status, 400);
    // The SDK v1 form: the version as a query parameter, the same rows and filters.
    let by_query = alice.get(&format!("/snapshot-report-components/vm-list?version={v1}")).await;
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    assert_eq!(by_query.body, old.body);
    let filtered_by_query = alice
        .post(&format!("/snapshot-report-components/vm_list?version={v1}&limit=1"), Some(&filters))
        .await;
    assert_eq!(names(&filtered_by_query.body), ["alpha-vm-01"], "{}", filtered_by_query.body);
    let no_version = alice.get("/snapshot-report-components/vm-list").await;
    assert_eq!(
        (no_version.status, no_version.body["reason"].as_str()),
        (400, Some("VersionMissing"))
    );
    assert_eq!(alice.get("/snapshot-report-components/vm-list?version=ZZZZZZ").await.status, 404);
    assert_eq!(alice.get("/snapshot-report-components/vm-list/ZZZZZZ").await.status, 404);
    assert_eq!(alice.get(&format!("/snapshot-report-components/nope/{v1}")).await.status, 404);

    // A second snapshot, of the changed data; versions newest first; metadata by version.
    let second = alice.post("/snapshot-reports/inventory", None).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let v2 = second.body["version"].as_str().expect("a version").to_owned();
    assert_ne!(v1, v2);
    let versions = alice.get("/snapshot-reports/inventory").await;
    assert_eq!(versions.body, json!({"version": [v2, v1]}));
    let metadata = alice.get(&format!("/snapshot-reports/inventory?version={v1}")).await;
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    assert_eq!(metadata.body["version"], v1.as_str());
    assert_eq!(metadata.body["report_snapshot_date"], created.body["report_snapshot_date"]);
    let newer = alice.get(&format!("/snapshot-report-components/vm-list/{v2}")).await;
    assert_eq!(names(&newer.body), ["alpha-new", "alpha-renamed", "alpha-vm-02"]);

    // Edit a row: its fields change, bookkeeping does not.
    let id = old.body[0]["_id"].as_str().expect("an id").to_owned();
    let edit =
        json!({"_id": id, "new_data": {"name": "alpha-edited", "tenant_id": b, "version": v2}});
    let edited = alice.put(&rows_path, &edit).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(
        (edited.body["name"].as_str(), edited.body["_id"].as_str()),
        (Some("alpha-edited"), Some(id.as_str()))
    );
    let after = alice.get(&rows_path).await;
    assert_eq!(names(&after.body), ["alpha-edited", "alpha-vm-01", "alpha-vm-02"]);
    let stored = setup
        .mongo
        .collection::<Document>("ReportSnapshots")
        .find_one(doc! {"row.name": "alpha-edited"})
        .await
        .expect("find")
        .expect("the edited row");
    assert_eq!(
        (stored.get_str("tenant_id"), stored.get_str("version")),
        (Ok(a.as_str()), Ok(v1.as_str()))
    );
    let unknown = json!({"_id": "65f000000000000000000000", "new_data": {"name": "x"}});
    let missing = alice.put(&rows_path, &unknown).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(
        missing.body["message"],
        "Didn't found any match on field `_id` on this `tenant_id`"
    );
    let only_bookkeeping =
        alice.put(&rows_path, &json!({"_id": id, "new_data": {"version": "X"}})).await;
    assert_eq!(
        (only_bookkeeping.status, only_bookkeeping.body["reason"].as_str()),
        (400, Some("SnapshotFieldsNotEditable"))
    );
    // The row of v1 is not a row of v2.
    assert_eq!(
        alice.put(&format!("/snapshot-report-components/vm-list/{v2}"), &edit).await.status,
        404
    );

    // Tenant B reaches none of A's snapshots, by any parameter.
    assert_eq!(bob.delete(&format!("{rows_path}?_id={id}")).await.status, 404);
    assert_eq!(bob.get("/snapshot-reports/inventory").await.body, json!({"version": []}));
    assert_eq!(bob.get(&format!("/snapshot-reports/inventory?version={v1}")).await.status, 404);
    assert_eq!(bob.get(&rows_path).await.status, 404);
    let bobs_query = format!("/snapshot-report-components/vm-list?version={v1}");
    assert_eq!(bob.get(&bobs_query).await.status, 404, "the query form is tenant-scoped too");
    assert_eq!(bob.post(&rows_path, Some(&filters)).await.status, 404);
    assert_eq!(
        bob.put(&rows_path, &json!({"_id": id, "new_data": {"name": "bob-was-here"}})).await.status,
        404
    );
    assert_eq!(bob.delete(&format!("/snapshot-reports/inventory?version={v1}")).await.status, 404);
    let forged =
        User { api: &api, base: base.clone(), tenant: a.clone(), token: bob.token.clone() };
    assert_eq!(forged.get(&rows_path).await.status, 403);
    assert_eq!(alice.get(&rows_path).await.body, after.body, "A's rows unchanged by B");
    // B's own snapshot holds B's rows only.
    let of_b = bob.post("/snapshot-reports/inventory", None).await;
    let vb = of_b.body["version"].as_str().expect("a version").to_owned();
    let rows_b = bob.get(&format!("/snapshot-report-components/vm-list/{vb}")).await;
    assert_eq!(names(&rows_b.body), ["beta-vm-00", "beta-vm-01"]);
    assert_eq!(alice.get(&format!("/snapshot-report-components/vm-list/{vb}")).await.status, 404);

    // Delete a row: B cannot, A can, once.
    let one_row = format!("{rows_path}?_id={id}");
    assert_eq!(bob.delete(&one_row).await.status, 404);
    assert_eq!(alice.delete(&rows_path).await.status, 400, "no _id");
    let gone = alice.delete(&one_row).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(names(&alice.get(&rows_path).await.body), ["alpha-vm-01", "alpha-vm-02"]);
    assert_eq!(alice.delete(&one_row).await.status, 404);

    // Delete a version: its metadata and rows are gone, the other stays.
    assert_eq!(alice.delete("/snapshot-reports/inventory").await.status, 400);
    let deleted = alice.delete(&format!("/snapshot-reports/inventory?version={v1}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["message"], "Requested items were deleted");
    assert_eq!(alice.get(&rows_path).await.status, 404);
    assert_eq!(alice.get("/snapshot-reports/inventory").await.body, json!({"version": [v2]}));
    let left = setup
        .mongo
        .collection::<Document>("ReportSnapshots")
        .count_documents(doc! {"tenant_id": &a, "version": &v1})
        .await
        .expect("count");
    assert_eq!(left, 0);
    assert_eq!(
        alice.delete(&format!("/snapshot-reports/inventory?version={v1}")).await.status,
        404
    );

    // The unique index makes a version id unique per tenant and app: a second claim
    // on v2 is refused by MongoDB itself.
    let snapshots = setup.mongo.collection::<Document>("ReportSnapshots");
    licenseware_e2e::eventually(Duration::from_secs(60), "the snapshot index", || async {
        let names = snapshots.list_index_names().await.ok()?;
        names.iter().any(|n| n == "snapshot_version").then_some(())
    })
    .await;
    let claim = doc! {"tenant_id": &a, "app_id": &app, "version": &v2, "component_id": null,
    "row_index": null, "kind": "report"};
    assert!(snapshots.insert_one(claim).await.is_err(), "a second claim on {v2} was accepted");

    // The SDK's bulk delete: a list of versions and snapshot rows, checked first, of the
    // caller's own snapshots of this report only.
    let v3 = snapshot(&alice, "inventory").await;
    let v4 = snapshot(&alice, "inventory").await;
    let v3_rows = format!("/snapshot-report-components/vm-list/{v3}");
    let before = alice.get(&v3_rows).await.body;
    let row_id = before[0]["_id"].as_str().expect("a row id").to_owned();
    let bulk = json!([{"_id": row_id}, {"version": v4}]);
    let by_bob =
        bob.send(reqwest::Method::DELETE, "/snapshot-reports/inventory", Some(&bulk)).await;
    assert_eq!(by_bob.status, 404, "{}", by_bob.body);
    for bad in [json!([]), json!([{"version": v4, "_id": row_id}]), json!([{"report_uuid": "x"}])] {
        let refused =
            alice.send(reqwest::Method::DELETE, "/snapshot-reports/inventory", Some(&bad)).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
    }
    let listed = |body: Value| -> Vec<String> {
        let mut versions: Vec<String> = body["version"]
            .as_array()
            .expect("versions")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        versions.sort();
        versions
    };
    let mut expected = vec![v2.clone(), v3.clone(), v4.clone()];
    expected.sort();
    assert_eq!(listed(alice.get("/snapshot-reports/inventory").await.body), expected);
    let deleted =
        alice.send(reqwest::Method::DELETE, "/snapshot-reports/inventory", Some(&bulk)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["deleted"], json!({"versions": 1, "rows": 1}));
    expected.retain(|v| *v != v4);
    assert_eq!(listed(alice.get("/snapshot-reports/inventory").await.body), expected);
    let after = alice.get(&v3_rows).await.body;
    assert_eq!(after.as_array().map(Vec::len), before.as_array().map(|rows| rows.len() - 1));

    // A public link with the secret the API made and keeps in MongoDB.
    let link = alice.post("/public-reports/inventory", None).await;
    assert_eq!(link.status, 201, "{}", link.body);
    let public_url = format!("{}{}", api.url, link.body["public_url"].as_str().expect("a URL"));
    assert_eq!(anonymous_get(&api, &public_url).await.status, 200);
    let stored_secret = setup
        .mongo
        .collection::<Document>("ApiSecrets")
        .count_documents(doc! {})
        .await
        .expect("count");
    assert_eq!(stored_secret, 1);

    forget_tenants(&setup, &[&a, &b]).await;
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_links_are_bound_to_a_report_expire_and_can_be_revoked() {
    // (Also: the snapshot row cap, on an API started with a small one.)
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-public", 1, 2).await;
    let secret_file = setup.root.with_file_name("public-link-secret");
    let secret = format!("{}{}", uuid(), uuid());
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write the link secret");
    let secret_arg = secret_file.to_string_lossy().into_owned();
    let flags = ["--public-link-secret-file", &secret_arg, "--snapshot-row-cap", "2"];
    let api = ApiProcess::start(&setup, "public", &flags).await;
    let app = setup.app_id.clone();
    let components = vec![
        vm_list(&app),
        component(&example("devices-overview.reportcomponent.yaml"), &app),
        component(&example("devices-by-os.reportcomponent.yaml"), &app),
    ];
    let reports = vec![inventory(&app), report(&example("devices.report.yaml"), &app)];
    api.publish_reports(&setup, &reports, &components).await;
    let (alice, bob) = users_with_machines(&api, &setup).await;
    let (a, b) = (alice.tenant.clone(), bob.tenant.clone());
    let base = alice.base.clone();

    // Create: a token, a URL that works with no other credential, an expiry.
    let link = alice.post("/public-reports/inventory?expire=5", None).await;
    assert_eq!(link.status, 201, "{}\n{}", link.body, api.log());
    let token = link.body["token"].as_str().expect("a token").to_owned();
    assert_eq!(
        link.body["public_url"],
        format!("/{app}/public-reports/inventory?public_token={token}")
    );
    assert!(
        link.body["expiration_date"].as_str().is_some_and(|d| d.ends_with('Z')),
        "{}",
        link.body
    );
    for bad in ["0", "43201", "x"] {
        let refused = alice.post(&format!("/public-reports/inventory?expire={bad}"), None).await;
        assert_eq!(refused.status, 400, "expire={bad}: {}", refused.body);
    }
    assert_eq!(alice.post("/public-reports/nope", None).await.status, 404);

    let report_url = |token: &str| format!("{base}/public-reports/inventory?public_token={token}");
    let rows_url = |component: &str, token: &str, more: &str| {
        format!("{base}/public-report-components/{component}?public_token={token}{more}")
    };
    // Used: the report's metadata and its component's rows, of A's tenant only.
    let metadata = anonymous_get(&api, &report_url(&token)).await;
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    assert_eq!(metadata.body["report_id"], "inventory");
    let rows = anonymous_get(&api, &rows_url("vm-list", &token, "")).await;
    assert_eq!(names(&rows.body), ["alpha-vm-00", "alpha-vm-01", "alpha-vm-02"], "{}", rows.body);
    let page = anonymous_get(&api, &rows_url("vm_list", &token, "&limit=1&skip=2")).await;
    assert_eq!(names(&page.body), ["alpha-vm-02"]);
    let filters = json!([{"column": "cpus", "filter_type": "less_than", "filter_value": 2}]);
    let filtered =
        api.http.post(rows_url("vm-list", &token, "")).json(&filters).send().await.expect("POST");
    assert_eq!(names(&answer(filtered).await.body), ["alpha-vm-00"]);
    // B's link on the same report shows B's rows.
    let link_b = bob.post("/public-reports/inventory", None).await;
    let token_b = link_b.body["token"].as_str().expect("a token").to_owned();
    let rows_b = anonymous_get(&api, &rows_url("vm-list", &token_b, "")).await;
    assert_eq!(names(&rows_b.body), ["beta-vm-00", "beta-vm-01"]);

    // Another report, or a component not in the token's report: 403.
    let other =
        anonymous_get(&api, &format!("{base}/public-reports/devices?public_token={token}")).await;
    assert_eq!(
        (other.status, other.body["reason"].as_str()),
        (403, Some("PublicTokenOtherReport"))
    );
    let not_in = anonymous_get(&api, &rows_url("devices-by-os", &token, "")).await;
    assert_eq!(
        (not_in.status, not_in.body["reason"].as_str()),
        (403, Some("PublicTokenOtherComponent"))
    );
    assert_eq!(anonymous_get(&api, &rows_url("nope", &token, "")).await.status, 403);
    // Missing: the SDK's 403; garbage or another secret: 401.
    let missing = anonymous_get(&api, &format!("{base}/public-reports/inventory")).await;
    assert_eq!(
        (missing.status, missing.body["message"].as_str()),
        (403, Some("Public token missing or invalid"))
    );
    assert_eq!(
        anonymous_get(&api, &format!("{base}/public-report-components/vm-list")).await.status,
        403
    );
    assert_eq!(anonymous_get(&api, &report_url("garbage")).await.status, 401);
    // The record's claims, signed with the right secret and a past `exp`: expired.
    let record = setup
        .mongo
        .collection::<Document>("PublicReportLinks")
        .find_one(doc! {"tenant_id": &a})
        .await
        .expect("find")
        .expect("the link's record");
    let jti = record.get_str("_id").expect("jti").to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = LinkClaims {
        jti: jti.clone(),
        tenant_id: a.clone(),
        app_id: app.clone(),
        report_id: "inventory".to_owned(),
        expire: 5,
        iat: now - 600,
        exp: now - 300,
        aud: AUDIENCE.to_owned(),
    };
    let expired = sign(secret.as_bytes(), &claims).expect("sign");
    let refused = anonymous_get(&api, &report_url(&expired)).await;
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (401, Some("PublicTokenExpired"))
    );
    let forged =
        sign(b"not the API's secret at all, no", &LinkClaims { exp: now + 300, ..claims.clone() })
            .expect("sign");
    let refused = anonymous_get(&api, &report_url(&forged)).await;
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (401, Some("PublicTokenInvalid"))
    );
    // A well-signed token without a record (never issued): refused as revoked.
    let unissued = sign(secret.as_bytes(), &LinkClaims { jti: uuid(), exp: now + 300, ..claims })
        .expect("sign");
    assert_eq!(anonymous_get(&api, &report_url(&unissued)).await.status, 401);

    // This API keeps 2 rows per component in a snapshot: A's 3 machines are cut, and
    // the snapshot says so.
    let cut = alice.post("/snapshot-reports/inventory", None).await;
    assert_eq!(cut.status, 201, "{}", cut.body);
    let kept = &cut.body["report_components"][0];
    assert_eq!(
        (kept["snapshot_rows"].as_i64(), kept["snapshot_truncated"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(cut.body["truncated_components"], json!(["vm_list"]));
    assert_eq!(cut.body["snapshot_row_cap"], 2);
    let version = cut.body["version"].as_str().expect("a version");
    let rows = alice.get(&format!("/snapshot-report-components/vm-list/{version}")).await;
    assert_eq!(names(&rows.body), ["alpha-vm-00", "alpha-vm-01"]);

    // Revoke one: B cannot revoke A's; A can; the token is then refused.
    let one = format!("/public-reports/inventory?public_token={token}");
    assert_eq!(bob.delete(&one).await.status, 404);
    let revoked = alice.delete(&one).await;
    assert_eq!(
        (revoked.status, revoked.body["revoked"].as_i64()),
        (200, Some(1)),
        "{}",
        revoked.body
    );
    let refused = anonymous_get(&api, &report_url(&token)).await;
    assert_eq!(
        (refused.status, refused.body["reason"].as_str()),
        (401, Some("PublicTokenRevoked"))
    );
    assert_eq!(anonymous_get(&api, &rows_url("vm-list", &token, "")).await.status, 401);
    assert_eq!(alice.delete(&one).await.status, 404, "already revoked");
    // Revoke all of A's links of the report; B's stays valid.
    let mut more = Vec::new();
    for _ in 0..2 {
        let link = alice.post("/public-reports/inventory", None).await;
        more.push(link.body["token"].as_str().expect("a token").to_owned());
    }
    let all = alice.delete("/public-reports/inventory").await;
    assert_eq!(all.body["revoked"].as_i64(), Some(2), "{}", all.body);
    for token in &more {
        assert_eq!(anonymous_get(&api, &report_url(token)).await.status, 401);
    }
    assert_eq!(anonymous_get(&api, &report_url(&token_b)).await.status, 200);

    forget_tenants(&setup, &[&a, &b]).await;
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}

// --- Tenant isolation of snapshots as a property over generated filters. ---

/// Tenant B, with its own snapshot and A's version ids, sends generated filters
/// (`tenant_id` columns, `$` operators, dotted and nested fields, A's id as a value),
/// paging and A's tenant header: nothing answers a row or the id of A, B's own
/// snapshot answers B's rows only, and A's versions and rows are 404 to B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_filter_list_of_another_tenant_reaches_a_snapshot_of_tenant_a() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("api-snapshots-iso", 1, 2).await;
    let api = ApiProcess::start(&setup, "snapshots-iso", &[]).await;
    let app = setup.app_id.clone();
    let (isolation, raw_rows) = isolation_resources(&app);
    api.publish_reports(&setup, &[isolation], &[raw_rows]).await;
    let (a, b) = (uuid(), uuid());
    let base = format!("{}/{app}", api.url);
    let alice = User {
        api: &api,
        base: base.clone(),
        token: api.token(&a, "alice", &[]),
        tenant: a.clone(),
    };
    let bob =
        User { api: &api, base: base.clone(), token: api.token(&b, "bob", &[]), tenant: b.clone() };
    let rows = |tenant: &str, prefix: &str| -> Vec<Document> {
        (0..6)
            .map(|i| {
                doc! {"tenant_id": tenant, "app_id": &app, "name": format!("{prefix}-{i}"),
                "cpus": i, "tags": {"env": "prod", "tenant_id": tenant}}
            })
            .collect()
    };
    let mut documents = rows(&a, "a-secret");
    documents.extend(rows(&b, "b-row"));
    setup.mongo.collection::<Document>("Data").insert_many(documents).await.expect("insert");
    let (va, vb) = (snapshot(&alice, "isolation").await, snapshot(&bob, "isolation").await);

    let send = |request: Request, tenant: String, token: String, version: String| {
        let component = if request.report_route { "raw_rows" } else { "raw-rows" };
        let path = format!("{base}/snapshot-report-components/{component}/{version}");
        request.send(&api.http, &path, tenant, token)
    };
    let runtime = tokio::runtime::Handle::current();
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let outcome = tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config { cases: 96, ..Config::default() });
        runner.run(&requests(a.clone()), |request| {
            let (a_status, _) =
                runtime.block_on(send(request.clone(), a.clone(), alice.token.clone(), va.clone()));
            prop_assert!(a_status == 200 || a_status == 400, "A got {a_status}");
            let tenant = if request.header_of_a { a.clone() } else { b.clone() };
            for version in [&va, &vb] {
                let (status, body) = runtime.block_on(send(
                    request.clone(),
                    tenant.clone(),
                    bob.token.clone(),
                    version.clone(),
                ));
                if status != 400 {
                    prop_assert!(
                        !body.contains(&a),
                        "{request:?} got {status} with A's id: {body}"
                    );
                    prop_assert!(!body.contains("a-secret"), "{request:?} got {status}: {body}");
                }
                if request.header_of_a {
                    prop_assert_eq!(status, 403, "{:?}: {}", request, body);
                } else if version == &va {
                    prop_assert!(
                        status == 404 || status == 400,
                        "{request:?} on A's version: {status} {body}"
                    );
                } else {
                    prop_assert_eq!(status, a_status, "A and B get the same refusals: {}", body);
                    if status == 200 {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let rows: Vec<Value> = serde_json::from_str(&body).expect("rows");
                        prop_assert!(rows.iter().all(|r| r["tenant_id"] == b.as_str()), "{body}");
                    }
                }
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}\nAPI log:\n{}", api.log());
    }
    let answered = answered.into_inner();
    // Not vacuous: some generated requests are answered with rows (about one in seven;
    // CI once saw 7 of 48 against a bound of 8): 4 of 96 keeps the proof, not the flake.
    assert!(answered >= 4, "only {answered} of 96 generated requests were answered with rows");

    // A's rows cannot be edited by B, on either version, and stay as they were.
    let path_a = format!("/snapshot-report-components/raw-rows/{va}");
    let before = alice.get(&path_a).await;
    assert_eq!(names(&before.body).len(), 6, "{}", before.body);
    for row in before.body.as_array().expect("rows") {
        let edit = json!({"_id": row["_id"], "new_data": {"name": "bob-was-here"}});
        assert_eq!(bob.put(&path_a, &edit).await.status, 404);
        let path_b = format!("/snapshot-report-components/raw-rows/{vb}");
        assert_eq!(bob.put(&path_b, &edit).await.status, 404);
    }
    assert_eq!(alice.get(&path_a).await.body, before.body);
    let honest = bob.get(&format!("/snapshot-report-components/raw-rows/{vb}")).await;
    assert_eq!(names(&honest.body).iter().filter(|n| n.starts_with("b-row-")).count(), 6);

    forget_tenants(&setup, &[&a, &b]).await;
    setup.kafka.delete_topics(&[&api.registry_topic]).await;
    setup.cleanup().await;
}
