//! `[sinks.NAME]`: one entry per sink, chosen by `type`.

use serde::Deserialize;

use headwater_core::config::Problems;
use headwater_core::Sink;

use crate::kafka::KafkaConfig;
use crate::parquet::ParquetConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Parquet(ParquetConfig),
    Kafka(KafkaConfig),
}

impl SinkConfig {
    /// Checks the entry `sinks.{name}` without any I/O.
    pub fn validate(&self, name: &str, problems: &mut Problems) {
        let key = format!("sinks.{name}");
        match self {
            SinkConfig::Parquet(c) => c.validate(&key, problems),
            SinkConfig::Kafka(c) => c.validate(&key, problems),
        }
    }

    /// Topic globs this sink reads.
    pub fn topics(&self) -> &[String] {
        match self {
            SinkConfig::Parquet(c) => &c.topics,
            SinkConfig::Kafka(c) => &c.topics,
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
            SinkConfig::Kafka(c) => match crate::kafka::KafkaSink::new(c) {
                Ok(sink) => Ok(Box::new(sink)),
                Err(e) => Err(headwater_core::Error::component(format!("sinks.{name}"), e)),
            },
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Parquet(_) => "parquet",
            SinkConfig::Kafka(_) => "kafka",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_entry_parses_by_type() {
        let config: SinkConfig = toml::from_str(
            "type = \"parquet\"\nurl = \"file:///tmp/archive\"\ntopics = [\"shop.*\"]\nmax_age = \"1m\"",
        )
        .unwrap();
        assert_eq!(config.type_name(), "parquet");
        assert_eq!(config.topics(), ["shop.*"]);
        let mut problems = Problems::new();
        config.validate("archive", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[tokio::test]
    async fn build_reports_a_bad_url_for_an_operator() {
        let config: SinkConfig =
            toml::from_str("type = \"parquet\"\nurl = \"ftp://x/y\"\ntopics = [\"a\"]").unwrap();
        let error = config.build("archive").await.err().unwrap();
        use headwater_core::error::Classify;
        assert_eq!(error.kind(), headwater_core::ErrorKind::WaitForOperator);
        assert!(error.to_string().contains("sinks.archive"), "{error}");
    }
}
