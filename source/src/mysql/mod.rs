//! MySQL / MariaDB row-based binlog.
//!
//! Files, one job each: [`config`]; [`error`]; [`conn`] (SQL connections);
//! [`binlog`] (event bodies: format description, table map, rows v1/v2,
//! query, xid, rotate, GTIDs, annotate, heartbeat; binary JSON); [`types`]
//! (column values); [`schema`] (table schemas in force, information_schema);
//! [`server_identity`] (which server a checkpoint belongs to);
//! [`ddl`]; [`txbuf`] (the open transaction, spilled past a limit);
//! [`gtid`] (executed GTID sets); [`snapshot_start`] (the
//! consistent start: locking modes); [`snapshot`]; [`stream`] (the
//! binlog loop); [`source`] (run loop and reconnects); [`check`]; [`lag`]
//! (binlog bytes behind, for /metrics).

pub mod binlog;
pub mod check;
pub mod config;
pub mod conn;
pub mod ddl;
pub mod error;
pub mod gtid;
mod kind;
pub mod lag;
pub mod schema;
pub mod server_identity;
pub mod snapshot;
pub mod snapshot_start;
pub mod source;
pub mod stream;
pub mod txbuf;
pub mod types;

pub use config::{MySqlConfig, ResumeBy, SnapshotLocking, SnapshotMode};
pub use error::MySqlError;
pub use source::MySqlSource;
