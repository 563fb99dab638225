//! Components from their configuration.

use std::path::Path;

use headwater_core::{Error, Result, Sink, Source};
use headwater_sink::parquet::ParquetSink;
use headwater_sink::SinkConfig;
use headwater_source::SourceConfig;

use super::unavailable;

pub fn build_source(
    name: &str,
    config: &SourceConfig,
    _data_dir: &Path,
) -> Result<Box<dyn Source>> {
    Err(unavailable(format!(
        "source `{name}` ({})",
        config.type_name()
    )))
}

pub async fn build_sink(name: &str, config: &SinkConfig) -> Result<Box<dyn Sink>> {
    match config {
        SinkConfig::Parquet(c) => ParquetSink::new(c)
            .await
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .map_err(|e| Error::component(format!("sink `{name}` (parquet)"), e)),
    }
}
