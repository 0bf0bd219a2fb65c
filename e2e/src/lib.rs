//! Shared harness of the end-to-end tests: where the real stack is, and
//! helpers that every test needs.
//!
//! The tests run against the servers that `e2e/stack/up` starts and describes
//! in `e2e/.stack/env`; `make e2e` loads that file before `cargo test`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

pub mod api;
pub mod bench_api;
pub mod consumer;
pub mod dev;
pub mod kafka;
pub mod kafka_cluster;
pub mod kube;
pub mod metadata_proxy;
pub mod operator;
pub mod operator_process;
pub mod procfs;
pub mod registry;
pub mod stall_proxy;
pub mod worker;

pub use crate::{
    kafka::{KAFKA_TIMEOUT, Kafka},
    kube::install_crds,
    operator::{InProcessOperator, OperatorUnderTest, Options},
    registry::RegistryReader,
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

/// The allocator settings of the worker image's ENV (Dockerfile, e2e/images/build), for
/// the worker processes started here, so that they run and are measured as deployed:
/// without them mimalloc's arenas sit in transparent huge pages, 12 MiB resident for a
/// 2 MiB heap (session 27).
pub const IMAGE_ALLOCATOR_ENV: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ARENA_EAGER_COMMIT", "0")];

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_image_allocator_settings_are_those_both_image_builds_set() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for file in ["Dockerfile", "e2e/images/build"] {
            let text = std::fs::read_to_string(root.join(file)).expect("read the image build");
            for (name, value) in super::IMAGE_ALLOCATOR_ENV {
                assert!(text.contains(&format!("{name}={value}")), "{file} lacks {name}={value}");
            }
        }
    }
}
