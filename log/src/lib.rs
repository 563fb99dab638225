//! Headwater's embedded partitioned log.

pub mod config;

pub use config::{FsyncPolicy, LogConfig};
