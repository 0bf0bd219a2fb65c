//! The operator's registry as the tests read it back from MongoDB.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

use crate::eventually;

/// The operator's `Registry` collection in one database, read as the SDK shapes (inner
/// arrays unwrapped when the server stored them wrapped; see the operator's
/// `registry::storage`).
#[derive(Debug, Clone)]
pub struct RegistryReader {
    pub collection: mongodb::Collection<Document>,
}

impl RegistryReader {
    pub fn new(mongo: &mongodb::Client, database: &str) -> Self {
        Self { collection: mongo.database(database).collection("Registry") }
    }

    /// A reader of `database` on the stack's MongoDB at `mongo_url`.
    pub async fn connect(mongo_url: &str, database: &str) -> Self {
        let mongo = mongodb::Client::with_uri_str(mongo_url).await.expect("mongodb client");
        Self::new(&mongo, database)
    }

    /// The registry document with this `_id`, as JSON.
    pub async fn document(&self, key: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        use licenseware_operator::registry::storage::unwrap_nested_arrays;
        let found = self
            .collection
            .find_one(doc! { "_id": key })
            .await
            .expect("find a registry document")?;
        match unwrap_nested_arrays(Bson::Document(found).into_relaxed_extjson()) {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The registry document with this `_id`, read as the typed document the API reads
    /// (fails the test when it does not parse).
    pub async fn typed_document(
        &self,
        key: &str,
    ) -> Option<licenseware_operator::crds::AnyRegistryDocument> {
        let json = self.document(key).await?;
        Some(
            serde_json::from_value(serde_json::Value::Object(json))
                .unwrap_or_else(|error| panic!("registry document {key} does not parse: {error}")),
        )
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

    /// Every document, as stored.
    pub async fn documents(&self) -> Vec<Document> {
        self.collection
            .find(doc! {})
            .await
            .expect("find registry documents")
            .try_collect()
            .await
            .expect("read the cursor")
    }

    /// Every `_id`, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let all = self.documents().await;
        let mut keys: Vec<String> =
            all.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect();
        keys.sort();
        keys
    }

    /// Drops the collection, ignoring failures (cleanup).
    pub async fn drop_collection(&self) {
        let _ = self.collection.drop().await;
    }
}
