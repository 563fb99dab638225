//! The `mysql` source kind (MySQL and MariaDB).

use async_trait::async_trait;

use headwater_core::config::Problems;
use headwater_core::{Error, Position, Result, Source};

use super::{lag, MySqlConfig, MySqlSource};
use crate::kind::{LagProbe, SourceDirs, SourceKind};

#[async_trait]
impl SourceKind for MySqlConfig {
    fn validate(&self, key: &str, problems: &mut Problems) {
        MySqlConfig::validate(self, key, problems);
    }

    fn build(&self, _name: &str, dirs: &SourceDirs) -> Box<dyn Source> {
        let mut config = self.clone();
        config.spill_dir.get_or_insert_with(|| dirs.spill.clone());
        config.state_dir.get_or_insert_with(|| dirs.state.clone());
        Box::new(MySqlSource::new(config))
    }

    async fn lag_probe(&self, _name: &str) -> Result<Box<dyn LagProbe>> {
        let probe = lag::LagProbe::connect(self)
            .await
            .map_err(|e| Error::component("connecting to read the binlog's size", e))?;
        Ok(Box::new(probe))
    }
}

/// The binlog after the durable checkpoint; unknown without one.
#[async_trait]
impl LagProbe for lag::LagProbe {
    async fn lag_bytes(&mut self, checkpoint: Option<&Position>) -> Result<Option<i64>> {
        let Some(Position::MySql(at)) = checkpoint else {
            return Ok(None);
        };
        lag::LagProbe::lag_bytes(self, at)
            .await
            .map_err(|e| Error::component("reading the binlog's size", e))
    }
}
