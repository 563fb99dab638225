//! MySQL / MariaDB row-based binlog.

pub mod config;

pub use config::MySqlConfig;
