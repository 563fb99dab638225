//! The `postgres` source kind.

use async_trait::async_trait;

use headwater_core::config::Problems;
use headwater_core::{Position, Result, Source};

use super::{lag, PostgresConfig, PostgresSource};
use crate::kind::{LagProbe, SourceDirs, SourceKind};

#[async_trait]
impl SourceKind for PostgresConfig {
    fn validate(&self, key: &str, problems: &mut Problems) {
        PostgresConfig::validate(self, key, problems);
    }

    fn build(&self, name: &str, dirs: &SourceDirs) -> Box<dyn Source> {
        let mut config = self.clone();
        config.spill_dir.get_or_insert_with(|| dirs.spill.clone());
        config.state_dir.get_or_insert_with(|| dirs.state.clone());
        Box::new(PostgresSource::new(name, config))
    }

    async fn lag_probe(&self, name: &str) -> Result<Box<dyn LagProbe>> {
        let probe = lag::LagProbe::connect(name, self).await?;
        Ok(Box::new(probe))
    }

    fn request_resnapshot(&self) -> std::result::Result<(), String> {
        self.resnapshot.request();
        Ok(())
    }
}

/// The WAL the slot holds back; the checkpoint plays no part.
#[async_trait]
impl LagProbe for lag::LagProbe {
    async fn lag_bytes(&mut self, _checkpoint: Option<&Position>) -> Result<Option<i64>> {
        Ok(lag::LagProbe::lag_bytes(self).await?)
    }
}
