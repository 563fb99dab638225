//! Headwater's sources.

pub mod kind;
pub mod mysql;
pub mod postgres;
mod spill;

pub use kind::{LagProbe, SourceConfig, SourceDirs, SourceKind};
