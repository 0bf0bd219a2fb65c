//! The end-to-end suite against the real stack (`e2e/stack/up`), as one test
//! binary: each module below was a binary of its own, and every one of them
//! linked the whole dependency tree (kube, rdkafka, mongodb...), which cost a
//! link per file and several GB of disk per build.

mod api;
mod api_datatables;
mod api_downloads;
mod api_isolation;
mod api_near_cache;
mod api_reports;
mod api_sample_app;
mod api_schema;
mod api_snapshots;
mod api_unavailable;
mod app;
mod dev;
mod gitops;
mod kafka_brokers;
mod kafka_rebootstrap;
mod kafka_security;
mod leader;
mod operator_first_run;
mod packaging;
mod rbac;
mod registry;
mod restart;
mod safety;
mod sample_app;
mod smoke;
mod store_credentials;
mod topic;
mod uploader;
mod worker_consume;
mod worker_contained;
mod worker_default;
mod worker_hostile;
