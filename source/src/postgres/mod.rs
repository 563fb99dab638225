//! PostgreSQL logical replication (pgoutput).
//!
//! The replication stream runs on our own walsender client (`conn`,
//! `replication`, `reader`) built on `postgres-protocol`: tokio-postgres has
//! no CopyBoth stream, and no maintained crate offers TLS, SCRAM, prompt
//! keepalive replies and back-pressure together. tokio-postgres serves the
//! ordinary SQL connection (catalog, snapshot, heartbeats), connected over
//! the same socket and TLS code so both behave alike.
//!
//! Build one with [`PostgresSource::new`]`(name, config)` and run it as a
//! [`headwater_core::Source`].

pub mod check;
pub mod claim;
pub mod config;
pub mod conn;
pub mod decode;
pub mod error;
pub mod identity;
mod kind;
pub mod lag;
pub mod pgoutput;
pub mod reader;
pub mod replication;
pub mod slot;
pub mod snapshot;
pub mod source;
pub mod stream;
pub mod streamed;
pub mod types;
pub mod versions;

pub use config::{BinaryMode, PostgresConfig, Resnapshot, SnapshotMode};
pub use error::PgError;
pub use source::PostgresSource;
