//! Headwater's sinks.

pub mod config;
pub mod kafka;
pub mod parquet;

pub use config::SinkConfig;
