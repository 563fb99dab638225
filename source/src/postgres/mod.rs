//! PostgreSQL logical replication (pgoutput).

pub mod config;

pub use config::PostgresConfig;
