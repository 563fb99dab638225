//! Headwater's sinks.

pub mod kafka;
pub mod kind;
pub mod parquet;

pub use kind::{SinkConfig, SinkKind};
