//! `[sinks.NAME]`: one entry per sink, chosen by `type`.

use serde::Deserialize;

use headwater_core::config::Problems;
use headwater_core::Sink;

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

    /// Builds the configured sink. Errors carry their policy
    /// (`Classify::kind`): a bad URL waits for an operator.
    pub async fn build(&self, name: &str) -> headwater_core::Result<Box<dyn Sink>> {
        match self {
            SinkConfig::Parquet(c) => match c.build().await {
                Ok(sink) => Ok(Box::new(sink)),
                Err(e) => Err(headwater_core::Error::component(format!("sinks.{name}"), e)),
            },
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Parquet(_) => "parquet",
        }
    }
}
