//! Parquet archives on object storage.

pub mod config;

pub use config::ParquetConfig;
