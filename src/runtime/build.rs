//! Components from their configuration.

use std::path::Path;

use headwater_core::{Error, Result, Sink, Source};
use headwater_sink::parquet::ParquetSink;
use headwater_sink::SinkConfig;
use headwater_source::mysql::MySqlSource;
use headwater_source::postgres::PostgresSource;
use headwater_source::SourceConfig;

pub fn build_source(name: &str, config: &SourceConfig, data_dir: &Path) -> Result<Box<dyn Source>> {
    Ok(match config {
        SourceConfig::Postgres(c) => {
            let mut c = c.clone();
            // Large transactions spill here rather than to /tmp.
            c.spill_dir
                .get_or_insert_with(|| data_dir.join("spill").join(name));
            // Schema versions continue across restarts.
            c.state_dir
                .get_or_insert_with(|| data_dir.join("sources").join(name));
            Box::new(PostgresSource::new(name, c))
        }
        SourceConfig::Mysql(c) => {
            let mut c = c.clone();
            c.spill_dir
                .get_or_insert_with(|| data_dir.join("spill").join(name));
            c.state_dir
                .get_or_insert_with(|| data_dir.join("sources").join(name));
            Box::new(MySqlSource::new(c))
        }
    })
}

pub async fn build_sink(name: &str, config: &SinkConfig) -> Result<Box<dyn Sink>> {
    match config {
        SinkConfig::Parquet(c) => ParquetSink::new(c)
            .await
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .map_err(|e| Error::component(format!("sink `{name}` (parquet)"), e)),
        SinkConfig::Kafka(c) => headwater_sink::kafka::KafkaSink::new(c)
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .map_err(|e| Error::component(format!("sink `{name}` (kafka)"), e)),
    }
}
