//! Helpers for Headwater's tests. Tests talk to real services; these find
//! them, name things so tests can run in parallel, and wait on conditions
//! instead of sleeping.

pub mod appender;
pub mod event;
mod log_appender;
pub mod mysql;
pub mod names;
pub mod pg_cluster;
pub mod services;
pub mod sink;
pub mod wait;

pub use appender::MemoryAppender;
pub use event::EventBuilder;
pub use log_appender::CountingAppender;
pub use names::unique_name;
pub use pg_cluster::PgCluster;
pub use services::{
    azure_endpoint, duckdb_python, mysql_url, postgres_admin_url, postgres_ca_path, postgres_url,
    s3_endpoint,
};
pub use sink::{Delivered, FaultySink, MemorySink, SlowSink};
pub use wait::{wait_until, wait_until_async};
