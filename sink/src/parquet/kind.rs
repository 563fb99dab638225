//! The `parquet` sink kind.

use std::any::Any;
use std::path::Path;

use async_trait::async_trait;

use headwater_core::config::Problems;
use headwater_core::{Error, Result, Sink};

use super::ParquetConfig;
use crate::kind::SinkKind;

#[async_trait]
impl SinkKind for ParquetConfig {
    fn validate(&self, key: &str, problems: &mut Problems) {
        ParquetConfig::validate(self, key, problems);
    }

    fn topics(&self) -> &[String] {
        &self.topics
    }

    async fn build(&self, key: &str) -> Result<Box<dyn Sink>> {
        match ParquetConfig::build(self).await {
            Ok(sink) => Ok(Box::new(sink)),
            Err(e) => Err(Error::component(key, e)),
        }
    }

    /// `file://./dir` and `file://dir` name a directory relative to the
    /// working directory (as `data_dir` does); the object store needs an
    /// absolute path.
    fn resolve_relative_paths(&mut self, cwd: &Path) {
        if let Some(path) = self.url.strip_prefix("file://") {
            if !path.starts_with('/') {
                let absolute = cwd.join(path.trim_start_matches("./"));
                self.url = format!("file://{}", absolute.display());
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
