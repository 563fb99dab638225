//! [`ParquetSink`]: the `core::Sink` over the writer and the store.
//!
//! # What the runtime does
//!
//! - Build: `ParquetSink::new(&config).await` (validate the config first;
//!   the only I/O is creating a `file://` directory).
//! - Feed each partition's records in offset order with `write`; call
//!   `flush(false)` at least every few seconds (files roll by age only
//!   there and in `write`), `flush(true)` at shutdown; then
//!   `take_progress` and commit the reported offsets.
//! - **After an `Err`** from `write` or `flush`: the sink has dropped
//!   everything it buffered (open files, held rejections) and is clean.
//!   Re-feed every partition from the last offset it committed (at the
//!   latest, the last `DurableThrough` it took) — not just the failed batch.
//!   Already uploaded files are not written twice: names derive from
//!   offsets and are created only if absent.
//!
//! # Delivery
//!
//! `DurableThrough { next_offset }` for a partition is reported only when
//! every record below `next_offset` is in an uploaded file or rejected. A
//! rejected record (one the archive cannot represent) is reported in
//! `Progress::rejected`, with the reason, once the records before it are
//! durable, so the runtime sends it to the dead-letter topic exactly when
//! it commits past it.
//!
//! After a crash the log re-feeds from the committed offset; a file cut at
//! the same offsets gets the same name and is skipped. A file cut at
//! other offsets (a roll by age or by the memory bound happened at another
//! moment) overlaps an earlier one: [`super::archive::read_archive`] drops
//! the repeated `(_partition, _offset)` rows; SQL readers do the same with
//! `QUALIFY row_number() OVER (PARTITION BY _partition, _offset) = 1`
//! (per topic).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tracing::{debug, info, warn};

use headwater_core::{
    DurableThrough, Finding, Progress, Rejected, SchemaId, Sink, SinkRecord, TableSchema,
};

use super::config::ParquetConfig;
use super::encode::{prepare, Prepared};
use super::error::ParquetError;
use super::schema::Layout;
use super::store::{Archive, StoreOptions, Uploaded};
use super::writer::{file_name, Limits, OpenFile};

type PartitionKey = (Arc<str>, u32);
/// A table's layout, or why it cannot be archived.
type LayoutResult = Result<Arc<Layout>, String>;

#[derive(Default)]
struct PartitionState {
    file: Option<OpenFile>,
    /// First offset fed since the last reset.
    start: Option<u64>,
    /// One past the last offset fed.
    seen_next: Option<u64>,
    /// The last `next_offset` reported durable.
    reported: Option<u64>,
    /// Rejected records waiting for the records before them to be durable.
    held: Vec<Rejected>,
}

impl PartitionState {
    /// Every offset below this is uploaded or rejected.
    fn durable_next(&self) -> Option<u64> {
        match &self.file {
            Some(file) => Some(file.first_offset),
            None => self.seen_next,
        }
    }
}

/// Archives change events as Parquet files on an object store.
pub struct ParquetSink {
    archive: Archive,
    limits: Limits,
    layouts: HashMap<SchemaId, LayoutResult>,
    /// The schema of the previous record and its layout: events of one
    /// table share the `Arc`, so most records skip hashing the schema.
    last_layout: Option<(Arc<TableSchema>, LayoutResult)>,
    partitions: HashMap<PartitionKey, PartitionState>,
    /// Bytes held by every open file (kept up to date on each push).
    buffered: usize,
    progress: Progress,
}

impl ParquetSink {
    /// Builds the sink from a validated config.
    pub async fn new(config: &ParquetConfig) -> Result<Self, ParquetError> {
        let archive = Archive::open(&config.url, &StoreOptions::from_config(config)).await?;
        Ok(Self::with_archive(archive, Limits::from_config(config)))
    }

    pub fn with_archive(archive: Archive, limits: Limits) -> Self {
        ParquetSink {
            archive,
            limits,
            layouts: HashMap::new(),
            last_layout: None,
            partitions: HashMap::new(),
            buffered: 0,
            progress: Progress::default(),
        }
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Files open now (for tests and metrics).
    pub fn open_files(&self) -> usize {
        self.partitions
            .values()
            .filter(|s| s.file.is_some())
            .count()
    }

    /// Bytes buffered in open files.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    fn layout(&mut self, schema: &Arc<TableSchema>) -> LayoutResult {
        if let Some((last, layout)) = &self.last_layout {
            if Arc::ptr_eq(last, schema) {
                return layout.clone();
            }
        }
        let max = self.limits.max_decimal_precision;
        let layout = self
            .layouts
            .entry(schema.id())
            .or_insert_with(|| {
                Layout::with_max_decimal_precision(schema.clone(), max).map(Arc::new)
            })
            .clone();
        self.last_layout = Some((schema.clone(), layout.clone()));
        layout
    }

    /// Forgets everything not yet durable; the runtime re-feeds.
    fn reset(&mut self) {
        for state in self.partitions.values_mut() {
            state.file = None;
            state.start = None;
            state.seen_next = None;
            state.held.clear();
        }
        self.buffered = 0;
        warn!(
            archive = %self.archive.url,
            "parquet sink reset after an error; buffered rows dropped, waiting to be re-fed from the committed offsets"
        );
    }

    async fn accept(&mut self, record: SinkRecord) -> Result<(), ParquetError> {
        let key: PartitionKey = (record.topic.clone(), record.partition);
        let offset = record.offset;
        {
            let state = self.partitions.entry(key.clone()).or_default();
            if state.seen_next.is_some_and(|next| offset < next) {
                debug!(topic = %key.0, partition = key.1, offset, "record fed twice; skipped");
                return Ok(());
            }
            state.start.get_or_insert(offset);
            state.seen_next = Some(offset + 1);
        }
        let prepared = match self.layout(&record.event.schema) {
            Ok(layout) => prepare(&layout, record).map(|p| (layout, p)),
            Err(reason) => Err(Box::new(Rejected { record, reason })),
        };
        let (layout, row) = match prepared {
            Ok(ok) => ok,
            Err(rejected) => {
                // The sink task logs it once, with the reason, when it goes
                // to the dead-letter topic.
                if let Some(state) = self.partitions.get_mut(&key) {
                    state.held.push(*rejected);
                }
                return Ok(());
            }
        };
        self.push(&key, layout, row).await
    }

    async fn push(
        &mut self,
        key: &PartitionKey,
        layout: Arc<Layout>,
        row: Prepared,
    ) -> Result<(), ParquetError> {
        let roll = self
            .partitions
            .get(key)
            .and_then(|s| s.file.as_ref())
            .and_then(|f| f.roll_before(&row));
        if let Some(reason) = roll {
            self.close(key, reason).await?;
        }
        let limits = self.limits.clone();
        let state = self.partitions.entry(key.clone()).or_default();
        let file = match &mut state.file {
            Some(file) => file,
            empty => empty.insert(OpenFile::new(layout, &row, &limits)?),
        };
        let before = file.size();
        file.push(row, &key.0).await?;
        let after = file.size();
        let full = file.full(&limits);
        self.buffered = (self.buffered + after).saturating_sub(before);
        if let Some(reason) = full {
            self.close(key, reason).await?;
        }
        if self.buffered > self.limits.max_buffered_bytes {
            let largest = self
                .partitions
                .iter()
                .filter_map(|(k, s)| s.file.as_ref().map(|f| (f.size(), k.clone())))
                .max_by_key(|(size, _)| *size)
                .map(|(_, k)| k);
            if let Some(largest) = largest {
                self.close(&largest, "memory bound").await?;
            }
        }
        Ok(())
    }

    /// Closes and uploads the open file of `key`.
    async fn close(&mut self, key: &PartitionKey, reason: &str) -> Result<(), ParquetError> {
        let Some(file) = self.partitions.get_mut(key).and_then(|s| s.file.take()) else {
            return Ok(());
        };
        self.buffered = self.buffered.saturating_sub(file.size());
        let (topic, partition) = (&key.0, key.1);
        let schema_version = file.layout.table.version;
        let done = file.finish(topic, partition).await?;
        let name = file_name(partition, done.first_offset, done.last_offset);
        let path = self.archive.path([
            &**topic,
            done.bucket.date_part().as_str(),
            done.bucket.hour_part().as_str(),
            name.as_str(),
        ]);
        let size = done.bytes.len();
        let outcome = self
            .archive
            .put_if_absent(&path, done.bytes, self.limits.multipart_threshold)
            .await
            .map_err(|e| {
                ParquetError::from_store(
                    &self.archive.url,
                    path.as_ref(),
                    topic,
                    partition,
                    (done.first_offset, done.last_offset),
                    e,
                )
            })?;
        info!(
            %topic, partition,
            first_offset = done.first_offset,
            last_offset = done.last_offset,
            rows = done.rows,
            bytes = size,
            schema_version,
            reason,
            object = %path,
            already_there = outcome == Uploaded::AlreadyThere,
            "parquet file uploaded"
        );
        Ok(())
    }

    async fn flush_inner(&mut self, drain: bool) -> Result<(), ParquetError> {
        let due: Vec<PartitionKey> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                s.file
                    .as_ref()
                    .is_some_and(|f| drain || f.aged(&self.limits))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.close(&key, if drain { "drain" } else { "age" })
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for ParquetSink {
    async fn write(&mut self, batch: Vec<SinkRecord>) -> headwater_core::Result<()> {
        for record in batch {
            if let Err(e) = self.accept(record).await {
                self.reset();
                return Err(e.into());
            }
        }
        // Files also roll by age while records keep coming.
        if let Err(e) = self.flush_inner(false).await {
            self.reset();
            return Err(e.into());
        }
        Ok(())
    }

    async fn flush(&mut self, drain: bool) -> headwater_core::Result<()> {
        if let Err(e) = self.flush_inner(drain).await {
            self.reset();
            return Err(e.into());
        }
        Ok(())
    }

    fn take_progress(&mut self) -> Progress {
        for ((topic, partition), state) in &mut self.partitions {
            let Some(durable) = state.durable_next() else {
                continue;
            };
            let floor = state.reported.or(state.start).unwrap_or(durable);
            if durable > floor {
                self.progress.durable.push(DurableThrough {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset: durable,
                });
                state.reported = Some(durable);
            }
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.held)
                .into_iter()
                .partition(|r| r.record.offset < durable);
            state.held = waiting;
            self.progress.rejected.extend(ready);
        }
        std::mem::take(&mut self.progress)
    }

    async fn check(&self) -> Vec<Finding> {
        match self.archive.store.list_with_delimiter(Some(&self.archive.prefix)).await {
            Ok(_) => vec![Finding::ok(format!("parquet archive {} is reachable", self.archive.url))],
            Err(e) => vec![Finding::fail(format!(
                "parquet archive {}: cannot list the prefix ({e}); check the URL, the endpoint and the credentials",
                self.archive.url
            ))],
        }
    }
}
