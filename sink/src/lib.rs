//! Headwater's sinks.

pub mod config;
pub mod parquet;

pub use config::SinkConfig;
