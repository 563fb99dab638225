//! Components from their configuration.

use std::path::Path;

use headwater_core::{Result, Sink, Source};
use headwater_sink::SinkConfig;
use headwater_source::SourceConfig;

use super::unavailable;

pub fn build_source(name: &str, config: &SourceConfig, _data_dir: &Path) -> Result<Box<dyn Source>> {
    match config {
        other => Err(unavailable(format!("source `{name}` ({})", other.type_name()))),
    }
}

pub async fn build_sink(name: &str, config: &SinkConfig) -> Result<Box<dyn Sink>> {
    match config {
        other => Err(unavailable(format!("sink `{name}` ({})", other.type_name()))),
    }
}
