//! `Uploader`: SDK `NewUploader` with its validation and encryption parameters, plus
//! the processing pipeline and the worker that runs it.

pub mod processing;
mod upload;
mod validation;
mod worker;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use processing::ProcessingSpec;
pub use upload::UploadLimits;
pub use validation::ValidationParameters;
pub use worker::WorkerSpec;

use crate::schema::{ID_MAX_LENGTH, ID_PATTERN};

/// An uploader accepts files for one app, validates them, and has them processed by a
/// worker that scales with its backlog.
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "Uploader",
    namespaced,
    status = "UploaderStatus",
    derive = "PartialEq",
    shortname = "lwup",
    category = "licenseware",
    doc = "An uploader accepts files for an app, validates them, and has a worker process them into documents.",
    printcolumn(name = "App", type_ = "string", json_path = ".spec.appId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.desiredReplicas"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.lag"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct UploaderSpec {
    /// Id of the app the uploader belongs to, e.g. `ifmp-service`.
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub app_id: String,
    /// Id of the uploader, e.g. `rv_tools`; its URLs use the dash form (`rv-tools`).
    /// Default: metadata.name with '-' replaced by '_'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub uploader_id: Option<String>,
    /// Name shown to users, e.g. `RVTools`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// What to upload and where it comes from.
    #[serde(default)]
    pub description: String,
    /// File extensions offered in the file picker, e.g. [".xls", ".xlsx"]. For display
    /// only; validation.filenameEndswith is what is enforced.
    #[schemars(inner(pattern(r"^\.[A-Za-z0-9][A-Za-z0-9.]*$")))]
    pub accepted_file_types: Vec<String>,
    /// Icon shown in the UI, e.g. ServersIcon, FeaturesIcon, CpuIcon, DatabaseIconRounded,
    /// DeviceIcon or FileIcon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Labels shown in the UI: beta, soon, partner_app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub flags: Vec<Flag>,
    /// Files a user may upload per month on a free plan.
    #[serde(default = "default_free_quota_units")]
    #[schemars(range(min = 0))]
    pub free_quota_units: i64,
    /// MongoDB collections this uploader writes to; an upload with clear_data first
    /// deletes the tenant's documents in them.
    #[serde(default = "crate::defaults::collections")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), inner(length(min = 1)))]
    pub used_collections: Vec<String>,
    /// Whether the uploader is published in the registry (and so shown to users).
    #[serde(default = "crate::defaults::yes")]
    pub registrable: bool,
    /// Checks run on file names and contents before a file is accepted.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub validation: ValidationParameters,
    /// Anonymization rules, applied on the client before upload: each entry is a literal,
    /// or a regular expression whose one capture group is the part to encrypt.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub encryption: EncryptionParameters,
    /// Limits on one upload request, enforced by the API while the files stream in.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub upload: UploadLimits,
    /// How the default worker turns accepted files into documents.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub processing: ProcessingSpec,
    /// The worker Deployment and how it scales.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub worker: WorkerSpec,
}

fn default_free_quota_units() -> i64 {
    1
}

/// A label shown in the UI: beta, soon or partner_app.
// No variant docs: they would turn the schema into `oneOf` branches.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Beta,
    Soon,
    PartnerApp,
}

/// SDK `UploaderEncryptionParameters`: what the anonymization tools encrypt.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionParameters {
    /// Matches in file and folder paths to encrypt, e.g. ["DeviceX", "Device-(\\w+)"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filepaths: Vec<String>,
    /// Matches in the content of text files (.txt, .xml) to encrypt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filecontent: Vec<String>,
    /// Columns of .xlsx, .xls and .csv files whose every value is encrypted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

/// Observed state of an Uploader.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploaderStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Kafka topic the upload events go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Kafka topic of the events that failed maxAttempts times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlq_topic_name: Option<String>,
    /// Replicas of the worker Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Replicas the lag scaler asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    /// Unconsumed events of the worker's consumer group at the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    /// When the lag scaler last changed the worker's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Current state: Ready, TopicReady, WorkerReady and Registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

impl Uploader {
    /// `spec.uploaderId`, or metadata.name with '-' replaced by '_'.
    pub fn uploader_id(&self) -> String {
        match &self.spec.uploader_id {
            Some(id) => id.clone(),
            None => self.metadata.name.as_deref().unwrap_or_default().replace('-', "_"),
        }
    }

    /// Kafka topic of the upload events, before the operator's topic prefix:
    /// `{appId}.{uploaderId}.events`.
    pub fn events_topic_name(&self) -> String {
        format!("{}.{}.events", self.spec.app_id, self.uploader_id())
    }

    /// Dead-letter topic, before the operator's topic prefix: `{appId}.{uploaderId}.dlq`.
    pub fn dlq_topic_name(&self) -> String {
        format!("{}.{}.dlq", self.spec.app_id, self.uploader_id())
    }
}
