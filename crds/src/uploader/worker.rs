//! How the operator runs and scales an uploader's worker. The lag scaler follows KEDA's
//! Kafka scaler: replicas = clamp(ceil(lag / lagPerReplica), minReplicas, maxReplicas).

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The worker Deployment of an uploader and how it scales with the backlog of its
/// events topic.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not be greater than maxReplicas"))]
pub struct WorkerSpec {
    /// Container image of the worker. Empty: the operator's default worker image, which
    /// runs `processing`.
    #[serde(default)]
    pub image: String,
    /// Fewest replicas. 0 lets the worker scale to zero when there is no backlog.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min_replicas: i32,
    /// Most replicas. The operator also never runs more replicas than the events topic
    /// has partitions.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Unconsumed events per replica: replicas = ceil(lag / lagPerReplica).
    #[serde(default = "default_lag_per_replica")]
    #[schemars(range(min = 1))]
    pub lag_per_replica: i64,
    /// The worker scales up from zero only when the lag is greater than this.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub activation_lag: i64,
    /// Seconds without lag before the worker scales down to zero.
    #[serde(default = "default_cooldown_seconds")]
    #[schemars(range(min = 0))]
    pub cooldown_seconds: i64,
    /// Attempts at an event before it goes to the dead-letter topic.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1))]
    pub max_attempts: i32,
    /// CPU and memory requests and limits of the worker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn default_max_replicas() -> i32 {
    10
}

fn default_lag_per_replica() -> i64 {
    5
}

fn default_cooldown_seconds() -> i64 {
    300
}

fn default_max_attempts() -> i32 {
    5
}

impl Default for WorkerSpec {
    fn default() -> Self {
        Self {
            image: String::new(),
            min_replicas: 0,
            max_replicas: default_max_replicas(),
            lag_per_replica: default_lag_per_replica(),
            activation_lag: 0,
            cooldown_seconds: default_cooldown_seconds(),
            max_attempts: default_max_attempts(),
            resources: None,
        }
    }
}
