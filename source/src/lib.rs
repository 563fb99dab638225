//! Headwater's sources.

pub mod config;
pub mod mysql;
pub mod postgres;

pub use config::SourceConfig;
