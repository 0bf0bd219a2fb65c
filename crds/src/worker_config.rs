//! The worker's config file (`worker.yaml` in the Uploader's ConfigMap): written by the
//! operator, read by `licenseware-worker consume`.

use serde::{Deserialize, Serialize};

use crate::{TopicSchema, UploaderSpec};

/// What the worker reads from its ConfigMap (`worker.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerConfigFile {
    pub app_id: String,
    pub uploader_id: String,
    /// `namespace/name` of the Uploader.
    pub uploader: String,
    /// Kafka topics, with the operator's prefix.
    pub events_topic: String,
    pub dlq_topic: String,
    /// The message contract of the events Topic (its `spec.schema`), when it has one:
    /// the API checks every event it produces against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_topic_schema: Option<TopicSchema>,
    pub consumer_group: String,
    pub max_attempts: i32,
    pub upload_root: String,
    /// The Uploader's spec, with uploaderId filled in.
    pub spec: UploaderSpec,
}
