//! Shared harness of the end-to-end tests: where the real stack is, and
//! helpers that every test needs.
//!
//! The tests run against the servers that `e2e/stack/up` starts and describes
//! in `e2e/.stack/env`; `make e2e` loads that file before `cargo test`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Addresses of the stack's servers, as `e2e/stack/up` exports them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub kafka_brokers: String,
    pub mongo_url: String,
    pub redis_url: String,
}

impl Stack {
    /// Reads the stack's variables, failing with the command that provides
    /// them: an e2e test that silently skips would prove nothing.
    pub fn from_env() -> Self {
        Self {
            kafka_brokers: required("LW_KAFKA_BROKERS"),
            mongo_url: required("LW_MONGO_URL"),
            redis_url: required("LW_REDIS_URL"),
        }
    }
}

fn required(name: &str) -> String {
    let hint = "start the stack with `e2e/stack/up`, then `set -a; . e2e/.stack/env; set +a` \
                (or run `make e2e`)";
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set: {hint}"),
    }
}

/// A name no other test or earlier run has used, valid for Kubernetes objects,
/// Kafka topics and MongoDB collections alike.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Polls `probe` until it yields a value or `timeout` passes. Tests wait on
/// observed state instead of sleeping for a guessed duration.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator's `Registry` collection in one database, read as the SDK shapes (inner
/// arrays unwrapped when the server stored them wrapped; see the operator's
/// `registry::storage`).
#[derive(Debug, Clone)]
pub struct RegistryReader {
    pub collection: mongodb::Collection<mongodb::bson::Document>,
}

impl RegistryReader {
    pub fn new(mongo: &mongodb::Client, database: &str) -> Self {
        Self { collection: mongo.database(database).collection("Registry") }
    }

    /// The registry document with this `_id`, as JSON.
    pub async fn document(&self, key: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        use licenseware_operator::registry::storage::unwrap_nested_arrays;
        let found = self
            .collection
            .find_one(mongodb::bson::doc! { "_id": key })
            .await
            .expect("find a registry document")?;
        match unwrap_nested_arrays(mongodb::bson::Bson::Document(found).into_relaxed_extjson()) {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    }

    pub async fn wait_document(
        &self,
        key: &str,
        timeout: Duration,
    ) -> serde_json::Map<String, serde_json::Value> {
        eventually(timeout, &format!("registry document {key}"), || self.document(key)).await
    }

    pub async fn wait_no_document(&self, key: &str, timeout: Duration) {
        eventually(timeout, &format!("registry document {key} to be removed"), || async {
            self.document(key).await.is_none().then_some(())
        })
        .await;
    }

    /// Every `_id`, sorted.
    pub async fn keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let all: Vec<mongodb::bson::Document> = self
            .collection
            .find(mongodb::bson::doc! {})
            .await
            .expect("find registry documents")
            .try_collect()
            .await
            .expect("read the cursor");
        let mut keys: Vec<String> =
            all.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect();
        keys.sort();
        keys
    }
}

/// Installs (server-side applies) the CRDs of every kind and waits until the apiserver
/// serves them.
pub async fn install_crds(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::{
        Api, ResourceExt,
        api::{Patch, PatchParams},
    };
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("licenseware-e2e").force();
    for crd in licenseware_operator::crds::generate::crds() {
        let name = crd.name_any();
        api.patch(&name, &params, &Patch::Apply(&crd)).await.expect("apply a CRD");
        eventually(Duration::from_secs(30), &format!("CRD {name} to be established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                let conditions = crd.status?.conditions?;
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}
