//! The controllers of the operator, one module per kind.

pub mod backoff;
pub mod topic;
