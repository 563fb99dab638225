//! Headwater's sources.

pub mod config;
pub mod postgres;

pub use config::SourceConfig;
