//! `[sinks.NAME]`: one entry per sink, chosen by `type`.

use serde::Deserialize;

use headwater_core::config::Problems;

use crate::parquet::ParquetConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Parquet(ParquetConfig),
}

impl SinkConfig {
    /// Checks the entry `sinks.{name}` without any I/O.
    pub fn validate(&self, name: &str, problems: &mut Problems) {
        let key = format!("sinks.{name}");
        match self {
            SinkConfig::Parquet(c) => c.validate(&key, problems),
        }
    }

    /// Topic globs this sink reads.
    pub fn topics(&self) -> &[String] {
        match self {
            SinkConfig::Parquet(c) => &c.topics,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Parquet(_) => "parquet",
        }
    }
}
