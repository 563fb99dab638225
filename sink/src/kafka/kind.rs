//! The `kafka` sink kind.

use std::any::Any;

use async_trait::async_trait;

use headwater_core::config::Problems;
use headwater_core::{Error, Result, Sink};

use super::{KafkaConfig, KafkaSink};
use crate::kind::SinkKind;

#[async_trait]
impl SinkKind for KafkaConfig {
    fn validate(&self, key: &str, problems: &mut Problems) {
        KafkaConfig::validate(self, key, problems);
    }

    fn topics(&self) -> &[String] {
        &self.topics
    }

    async fn build(&self, key: &str) -> Result<Box<dyn Sink>> {
        match KafkaSink::new(self) {
            Ok(sink) => Ok(Box::new(sink)),
            Err(e) => Err(Error::component(key, e)),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
