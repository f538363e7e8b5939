//! vecmigrate: offline migrations of Milvus / Zilliz Cloud collections between clusters.
//!
//! One engine ([`engine`]) runs every job, written against ports: the job store ([`store`]),
//! the work queue ([`queue`]) and cluster access ([`milvus`]). Entrypoints ([`entrypoints`])
//! drive it from the command line with in-process workers and from AWS Lambda; [`env`] reads
//! the settings both take from the environment.
//! The [`domain`] holds the request, the job and task records and their rules, with no I/O.

pub mod aws;
pub mod credentials;
pub mod domain;
pub mod engine;
pub mod entrypoints;
mod env;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod milvus;
pub mod queue;
pub mod staging;
pub mod store;
pub mod tls;
pub mod webhook;
pub mod xray;

/// `cargo test` alone runs the unit tests; this test's name tells a newcomer where the rest is.
#[cfg(all(test, not(feature = "test-support")))]
mod integration_tests {
    #[test]
    fn integration_tests_need_the_test_servers_run_scripts_test_sh() {}
}
