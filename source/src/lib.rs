//! Headwater's sources.

pub mod config;
mod driver;
pub mod fault;
pub mod mysql;
pub mod postgres;
mod spill;

pub use config::SourceConfig;
