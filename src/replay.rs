//! `headwater replay`: an archive read back and delivered again — to a sink
//! configured in the file, or into the log as new records.

use std::sync::Arc;

use futures::StreamExt;

use headwater_core::{Appender, Error, EventBatch, Result, Sink, SinkRecord};
use headwater_sink::parquet::{read_archive, ArchiveFilter, ParquetConfig, StoreOptions};

use crate::config::Config;

/// Records handed to the target at a time.
const BATCH: usize = 1_000;

/// Where an archive URL's credentials come from: the parquet sink of the
/// configuration that writes under that URL, else the `AWS_…` variables.
pub fn store_options_for(config: &Config, url: &str) -> StoreOptions {
    config
        .sinks
        .values()
        .filter_map(|sink| sink.downcast::<ParquetConfig>())
        .find(|p| url.starts_with(p.url.trim_end_matches('/')))
        .map(StoreOptions::from_config)
        .unwrap_or_default()
}

/// The archive's records, `BATCH` at a time.
async fn batches(
    url: &str,
    options: &StoreOptions,
    filter: ArchiveFilter,
) -> Result<impl futures::Stream<Item = Result<Vec<SinkRecord>>> + Unpin> {
    let context = format!("reading the archive {url}");
    let records = read_archive(url, options, filter)
        .await
        .map_err(|e| Error::component(context.clone(), e))?;
    Ok(records.chunks(BATCH).map(move |chunk| {
        chunk
            .into_iter()
            .collect::<Result<Vec<SinkRecord>, _>>()
            .map_err(|e| Error::component(context.clone(), e))
    }))
}

/// Streams the archive into `sink` and waits until the sink has
/// delivered everything; returns the number of change events.
pub async fn to_sink(
    url: &str,
    options: &StoreOptions,
    filter: ArchiveFilter,
    sink: &mut dyn Sink,
) -> Result<u64> {
    let mut count = 0;
    let mut records = batches(url, options, filter).await?;
    while let Some(batch) = records.next().await {
        let batch = batch?;
        count += batch.len() as u64;
        sink.write(batch).await?;
        sink.flush(false).await?;
        let _ = sink.take_progress();
    }
    sink.flush(true).await?;
    let progress = sink.take_progress();
    if !progress.rejected.is_empty() {
        tracing::warn!(
            rejected = progress.rejected.len(),
            "the sink rejected some replayed records"
        );
    }
    Ok(count)
}

/// Streams the archive into the log through `appender` (no transforms,
/// no checkpoint): the events get new offsets, keep their positions.
pub async fn to_log(
    url: &str,
    options: &StoreOptions,
    filter: ArchiveFilter,
    appender: Arc<dyn Appender>,
) -> Result<u64> {
    let mut count = 0;
    let mut records = batches(url, options, filter).await?;
    let mut pending = Vec::new();
    while let Some(batch) = records.next().await {
        let events: Vec<_> = batch?.into_iter().map(|r| r.event).collect();
        count += events.len() as u64;
        pending.push(
            appender
                .append(EventBatch {
                    events,
                    checkpoint: None,
                })
                .await?,
        );
    }
    for durable in pending {
        durable.await?;
    }
    Ok(count)
}
