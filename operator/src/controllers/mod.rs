//! The controllers of the operator, one module per kind, and what they share.

pub mod app;
pub mod backoff;
pub mod events;
pub mod finalizer;
pub mod policy;
pub mod registry_kinds;
pub mod scope;
pub mod status;
pub mod superseded;
pub mod topic;
pub mod uploader;
