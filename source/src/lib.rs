//! Headwater's sources.

mod driver;
pub mod fault;
pub mod kind;
pub mod mysql;
pub mod postgres;
mod spill;

pub use kind::{LagProbe, SourceConfig, SourceDirs, SourceKind};
