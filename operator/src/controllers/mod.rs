//! The controllers of the operator, one module per kind.

pub mod backoff;
pub mod registry_kinds;
pub mod topic;
pub mod uploader;
