//! Tenant isolation of the API as a property: requests generated from every route,
//! every way of naming a tenant (headers, legacy headers, casing, tokens that list
//! other tenants) and tenant A's ids (event ids, tickets, file names, uploader), sent
//! by or for tenant B, are refused or see nothing of A; and A's ticket survives them.

use std::path::PathBuf;

use licenseware_e2e::{
    api::ApiProcess,
    consumer::{ConsumerSetup, stack_shared},
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What A owns that B probes for.
#[derive(Debug, Clone)]
struct Secrets {
    tenant: String,
    used_event: String,
    open_ticket: String,
    file_marker: String,
}

/// Who B claims to be.
#[derive(Debug, Clone)]
enum Identity {
    /// B's token, B's header: the honest neighbour.
    Own,
    /// B's token with A's tenant header.
    HeaderOfA,
    /// A token listing B and another tenant, A's header.
    TokenListingOthers,
    /// B's header, and the legacy `tenant_id` header naming A.
    LegacyHeaderOfA,
    /// A's tenant in another casing of the header name, B's token.
    CasedHeaderOfA,
}

#[derive(Debug, Clone)]
enum Probe {
    History { event: bool, uploader: bool },
    HistoryOne,
    UploadWithTicket { used: bool },
    Status,
    Quota,
    Validation,
    TenantInfo,
    Metadata,
}

fn identities() -> impl Strategy<Value = Identity> {
    prop_oneof![
        Just(Identity::Own),
        Just(Identity::HeaderOfA),
        Just(Identity::TokenListingOthers),
        Just(Identity::LegacyHeaderOfA),
        Just(Identity::CasedHeaderOfA),
    ]
}

fn probes() -> impl Strategy<Value = Probe> {
    prop_oneof![
        (any::<bool>(), any::<bool>())
            .prop_map(|(event, uploader)| Probe::History { event, uploader }),
        Just(Probe::HistoryOne),
        any::<bool>().prop_map(|used| Probe::UploadWithTicket { used }),
        Just(Probe::Status),
        Just(Probe::Quota),
        Just(Probe::Validation),
        Just(Probe::TenantInfo),
        Just(Probe::Metadata),
    ]
}

struct World<'a> {
    api: &'a ApiProcess,
    setup: &'a ConsumerSetup,
    a: Secrets,
    b: String,
    token_b: String,
    token_b_and_other: String,
}

impl World<'_> {
    async fn send(&self, identity: &Identity, probe: &Probe) -> (u16, String) {
        let (tenant_header, token, legacy) = match identity {
            Identity::Own => (("TenantId", self.b.clone()), &self.token_b, None),
            Identity::HeaderOfA => (("TenantId", self.a.tenant.clone()), &self.token_b, None),
            Identity::TokenListingOthers => {
                (("TenantId", self.a.tenant.clone()), &self.token_b_and_other, None)
            }
            Identity::LegacyHeaderOfA => {
                (("TenantId", self.b.clone()), &self.token_b, Some(self.a.tenant.clone()))
            }
            Identity::CasedHeaderOfA => (("tenantID", self.a.tenant.clone()), &self.token_b, None),
        };
        let api = self.api;
        let app = &self.setup.app_id;
        let history = format!("{}/{app}/history", api.url);
        let request = match probe {
            Probe::History { event, uploader } => {
                let mut query = Vec::new();
                if *event {
                    query.push(format!("event_id={}", self.a.used_event));
                }
                if *uploader {
                    query.push(format!("uploader_id={}", self.setup.uploader_id));
                }
                api.http.get(format!("{history}?{}", query.join("&")))
            }
            Probe::HistoryOne => api.http.get(format!("{history}/{}", self.a.used_event)),
            Probe::UploadWithTicket { used } => {
                let ticket = if *used { &self.a.used_event } else { &self.a.open_ticket };
                let url = format!("{}?event_id={ticket}", api.uploader_url(self.setup, "files"));
                let part = reqwest::multipart::Part::bytes(b"a\n1\n".to_vec()).file_name("a.csv");
                api.http.post(url).multipart(reqwest::multipart::Form::new().part("files", part))
            }
            Probe::Status => api.http.get(api.uploader_url(self.setup, "status")),
            Probe::Quota => api.http.get(api.uploader_url(self.setup, "quota")),
            Probe::Validation => {
                api.http.post(api.uploader_url(self.setup, "validation")).json(&json!(["a.csv"]))
            }
            Probe::TenantInfo => {
                api.http.get(format!("{}/{app}/tenants/{}", api.url, self.a.tenant))
            }
            Probe::Metadata => api.http.get(format!("{}/{app}/metadata", api.url)),
        };
        let mut request = request.header(tenant_header.0, tenant_header.1).bearer_auth(token);
        if let Some(legacy) = legacy {
            request = request.header("tenant_id", legacy);
        }
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_tenant_see_nothing_of_a_tenant() {
    let _stack = stack_shared().await;
    let spec = json!({"name": "Lines", "acceptedFileTypes": [".csv"], "freeQuotaUnits": 1000,
                      "validation": {"filenameEndswith": [".csv"]}});
    let setup = ConsumerSetup::with_spec("api-isolation", 1, 2, spec).await;
    let api = ApiProcess::start(&setup, "isolation", &[]).await;
    let a = uuid();
    let token_a = api.token(&a, "alice", &[]);
    let marker = format!("secret-{}.csv", &uuid()[..8]);
    let validation_url = api.uploader_url(&setup, "validation");
    let ticket = |body: Value| body["event_id"].as_str().expect("event_id").to_owned();
    let used: Value = api
        .post_json(&validation_url, &a, &token_a, &json!([marker]))
        .await
        .json()
        .await
        .expect("json");
    let used_event = ticket(used);
    let files = format!("{}?event_id={used_event}", api.uploader_url(&setup, "files"));
    let uploaded = api.upload(&files, &a, &token_a, &[(&marker, b"a\n1\n".to_vec())]).await;
    assert_eq!(uploaded.status(), 200);
    let open: Value = api
        .post_json(&validation_url, &a, &token_a, &json!(["a.csv"]))
        .await
        .json()
        .await
        .expect("json");
    let open_ticket = ticket(open);

    let b = uuid();
    let world = World {
        token_b: api.token(&b, "bob", &[]),
        token_b_and_other: api.token(&b, "bob", &["--tenant", &uuid()]),
        api: &api,
        setup: &setup,
        b,
        a: Secrets {
            tenant: a.clone(),
            used_event: used_event.clone(),
            open_ticket: open_ticket.clone(),
            file_marker: marker.clone(),
        },
    };
    let runtime = tokio::runtime::Handle::current();
    let outcome = tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config { cases: 96, ..Config::default() });
        runner.run(&(identities(), probes()), |(identity, probe)| {
            let (status, body) = runtime.block_on(world.send(&identity, &probe));
            let secrets = &world.a;
            for secret in
                [&secrets.tenant, &secrets.used_event, &secrets.open_ticket, &secrets.file_marker]
            {
                prop_assert!(
                    !body.contains(secret.as_str()),
                    "{identity:?} {probe:?} got {status} with A's {secret}: {body}"
                );
            }
            if !matches!(identity, Identity::Own) {
                prop_assert!(
                    (400..500).contains(&status),
                    "{identity:?} {probe:?} got {status}: {body}"
                );
            }
            if matches!(probe, Probe::UploadWithTicket { .. }) {
                prop_assert!(
                    status == 403 || status == 400,
                    "{identity:?} {probe:?}: {status} {body}"
                );
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}\nAPI log:\n{}", api.log());
    }
    // A's open ticket still works for A: no probe consumed it.
    let files = format!("{}?event_id={open_ticket}", api.uploader_url(&setup, "files"));
    let uploaded = api.upload(&files, &a, &token_a, &[("a.csv", b"a\n1\n".to_vec())]).await;
    assert_eq!(uploaded.status(), 200, "A's ticket survived B's probes");
    let upload_root: PathBuf = setup.root.clone();
    let others: Vec<_> = std::fs::read_dir(&upload_root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| *name != a)
        .collect();
    assert!(
        others.iter().all(|dir| std::fs::read_dir(upload_root.join(dir))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)),
        "B's requests stored nothing: {others:?}"
    );
    setup.cleanup().await;
}
