//! The kinds of sink, chosen by `type` in `[sinks.NAME]`.
//!
//! A kind is its config type implementing [`SinkKind`] (validate, the
//! topics it reads, build) and one line in [`KINDS`].

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};

use headwater_core::config::Problems;
use headwater_core::kind::Kind;
use headwater_core::{Result, Sink};

/// Every kind of sink.
static KINDS: &[Kind<dyn SinkKind>] = &[
    headwater_core::kind!("parquet", crate::parquet::ParquetConfig as dyn SinkKind),
    headwater_core::kind!("kafka", crate::kafka::KafkaConfig as dyn SinkKind),
];

/// What a kind of sink supplies, implemented by its config type.
#[async_trait]
pub trait SinkKind: fmt::Debug + Send + Sync + 'static {
    /// Checks the entry at `key` (`sinks.NAME`) without any I/O.
    fn validate(&self, key: &str, problems: &mut Problems);

    /// Topic globs this sink reads.
    fn topics(&self) -> &[String];

    /// Builds the sink. Errors carry their policy (`Classify::kind`): a
    /// bad URL waits for an operator. `key` names the entry in them.
    async fn build(&self, key: &str) -> Result<Box<dyn Sink>>;

    /// Makes paths relative to the working directory absolute (`cwd`).
    fn resolve_relative_paths(&mut self, _cwd: &Path) {}

    fn as_any(&self) -> &dyn Any;
}

/// A `[sinks.NAME]` entry: its kind and that kind's config.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    type_name: &'static str,
    kind: Arc<dyn SinkKind>,
}

impl SinkConfig {
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The kind's config as its own type, if it is a `C`.
    pub fn downcast<C: 'static>(&self) -> Option<&C> {
        self.kind.as_any().downcast_ref()
    }

    /// Checks the entry `sinks.{name}` without any I/O.
    pub fn validate(&self, name: &str, problems: &mut Problems) {
        self.kind.validate(&format!("sinks.{name}"), problems);
    }

    pub fn topics(&self) -> &[String] {
        self.kind.topics()
    }

    /// The sink `name`: the one way the daemon, `check` and `replay` build
    /// one.
    pub async fn build(&self, name: &str) -> Result<Box<dyn Sink>> {
        self.kind.build(&format!("sinks.{name}")).await
    }

    /// See [`SinkKind::resolve_relative_paths`]; right after loading, while
    /// this entry is the only handle on its config.
    pub fn resolve_relative_paths(&mut self, cwd: &Path) {
        if let Some(kind) = Arc::get_mut(&mut self.kind) {
            kind.resolve_relative_paths(cwd);
        }
    }
}

impl<'de> Deserialize<'de> for SinkConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        headwater_core::kind::deserialize(d, "sink", KINDS)
            .map(|(type_name, kind)| SinkConfig { type_name, kind })
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
