//! The [`Log`]: topics of partitions, appended to by sources and read by
//! sinks at their own pace.
//!
//! # Durability contract
//! - **Queued**: [`Log::append`] returns once the records are queued to
//!   the writer thread in order behind every earlier append (waiting while
//!   too much is queued: back-pressure). They are not yet durable and
//!   readers do not see them.
//! - **Durable**: [`AppendReceipt::durable`] resolves once an fsync covers
//!   the records (and every earlier append): no crash can lose them, and
//!   readers see them. Only then may a source acknowledge its position.
//! - A failed write or fsync fails that append and every later one until
//!   the log is reopened; recovery then cuts whatever was not durable.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::{JoinHandle, Thread};

use headwater_core::config::Problems;
use headwater_core::CheckpointStore;
use tokio::sync::{oneshot, Semaphore};

use crate::append_batch::AppendBatch;
use crate::batch::Record;
use crate::buffers::BufferPool;
use crate::config::LogConfig;
use crate::error::{check_name, LogError, Result};
use crate::lock::DirLock;
use crate::offsets::ConsumerOffsets;
use crate::partition::{open_read_only, PartitionWriter};
use crate::reader::{offset_for_timestamp, Reader};
use crate::stats::{LogStats, Stats};
use crate::topic::{partition_dir, topics_dir, PartitionShared, TopicMeta, TopicState, META_NAME};
use crate::writer::{Command, Writer};

/// Bytes of appends handed to the writer but not yet written; more waits.
/// Enough to keep the writer busy (milliseconds of writing); more only
/// costs memory, page faults to fill fresh buffers, and a slower copy into
/// the page cache once the queued batches no longer fit in the CPU caches.
const MAX_IN_FLIGHT: usize = 4 << 20;

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub config: LogConfig,
    topics: RwLock<BTreeMap<String, Arc<TopicState>>>,
    pub offsets: ConsumerOffsets,
    pub stats: Stats,
    pub closing: AtomicBool,
    writer_thread: OnceLock<Thread>,
    pub buffers: BufferPool,
    /// Held while any part of a writable log lives; none when read-only.
    _lock: Option<DirLock>,
}

impl Shared {
    pub fn insert_topic(&self, state: TopicState) {
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(state.name.to_string(), Arc::new(state));
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<TopicState>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn partition(&self, topic: &str, partition: u32) -> Result<Arc<PartitionShared>> {
        let state = self.topic(topic).ok_or_else(|| LogError::UnknownTopic {
            topic: topic.to_owned(),
        })?;
        state
            .partitions
            .get(partition as usize)
            .cloned()
            .ok_or(LogError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions: state.meta.partitions,
            })
    }
}

/// One partition of [`TopicInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    /// The oldest offset still stored (retention deletes below it).
    pub log_start: u64,
    /// Offset after the last durable record: what readers can see.
    pub high_watermark: u64,
    /// Offset after the last written record, durable or not.
    pub log_end: u64,
    pub segments: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub created_ms: i64,
    pub partition_info: Vec<PartitionInfo>,
}

/// An append queued to the writer. Await [`AppendReceipt::durable`] (or
/// [`AppendReceipt::durable_batches`]) before acknowledging anything
/// upstream.
#[derive(Debug)]
pub struct AppendReceipt {
    /// Per record, for [`Log::append`]: the topic name it was given with.
    record_topics: Vec<String>,
    /// Per record: its group, and its index in the group's batch.
    placement: Vec<(u32, u32)>,
    /// Per group (one batch): topic, partition, records.
    groups: Vec<(Arc<str>, u32, u32)>,
    durable: Option<oneshot::Receiver<Result<Vec<u64>>>>,
}

/// One batch of an append, once durable: its records are offsets
/// `base_offset .. base_offset + records` of `topic`/`partition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedBatch {
    pub topic: Arc<str>,
    pub partition: u32,
    pub base_offset: u64,
    pub records: u32,
}

impl AppendReceipt {
    fn empty() -> Self {
        AppendReceipt {
            record_topics: Vec::new(),
            placement: Vec::new(),
            groups: Vec::new(),
            durable: None,
        }
    }

    /// Records in this append.
    pub fn len(&self) -> usize {
        self.placement.len()
    }

    pub fn is_empty(&self) -> bool {
        self.placement.is_empty()
    }

    async fn bases(&mut self) -> Result<Vec<u64>> {
        match self.durable.take() {
            Some(rx) => rx.await.map_err(|_| LogError::Closed)?,
            None => Ok(Vec::new()),
        }
    }

    /// Resolves once an fsync covers every record of this append (and of
    /// every earlier one) with `(topic, partition, offset)` of each record,
    /// in append order. For [`Log::append_batch`] this allocates a topic
    /// name per record; [`AppendReceipt::durable_batches`] does not.
    pub async fn durable(mut self) -> Result<Vec<(String, u32, u64)>> {
        let bases = self.bases().await?;
        let groups = &self.groups;
        let mut topics = std::mem::take(&mut self.record_topics).into_iter();
        Ok(self
            .placement
            .iter()
            .map(|&(g, i)| {
                let (name, partition, _) = &groups[g as usize];
                let topic = topics.next().unwrap_or_else(|| name.to_string());
                (topic, *partition, bases[g as usize] + u64::from(i))
            })
            .collect())
    }

    /// Resolves like [`AppendReceipt::durable`], with one entry per batch
    /// (per topic and partition of the append) instead of one per record.
    pub async fn durable_batches(mut self) -> Result<Vec<AppendedBatch>> {
        let bases = self.bases().await?;
        Ok(self
            .groups
            .iter()
            .zip(bases)
            .map(|((topic, partition, records), base_offset)| AppendedBatch {
                topic: topic.clone(),
                partition: *partition,
                base_offset,
                records: *records,
            })
            .collect())
    }
}

pub struct Log {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Command>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    in_flight: Arc<Semaphore>,
}

impl Log {
    /// Opens the log in `dir` (created if needed), recovering every
    /// partition: a torn or damaged tail of a last segment is cut; damage
    /// elsewhere is an error naming the file. Blocks on file I/O: call it
    /// at startup or from `spawn_blocking`.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Arc<Log>> {
        let mut problems = Problems::new();
        config.validate(&mut problems);
        if !problems.is_empty() {
            return Err(LogError::Config {
                problems: problems.iter().collect::<Vec<_>>().join("; "),
            });
        }
        let root = topics_dir(dir);
        fs::create_dir_all(&root).map_err(|e| LogError::io("creating log directory", &root, e))?;
        let lock = DirLock::acquire(dir)?;
        let offsets = ConsumerOffsets::load(dir.join("consumers"))?;
        let mut writers = HashMap::new();
        let mut topics = BTreeMap::new();
        for (name, topic_dir, meta) in read_topics(&root, true)? {
            if meta.partitions != config.partitions {
                return Err(LogError::PartitionCountMismatch {
                    topic: name,
                    on_disk: meta.partitions,
                    configured: config.partitions,
                    dir: topic_dir,
                });
            }
            let name: Arc<str> = name.into();
            let mut parts = Vec::with_capacity(meta.partitions as usize);
            for p in 0..meta.partitions {
                parts.push(PartitionWriter::open(
                    name.clone(),
                    p,
                    &partition_dir(&topic_dir, p),
                    &config,
                )?);
            }
            let state = TopicState {
                name: name.clone(),
                meta,
                partitions: parts.iter().map(|w| w.shared.clone()).collect(),
            };
            topics.insert(name.to_string(), Arc::new(state));
            writers.insert(name, parts);
        }
        tracing::info!(dir = %dir.display(), topics = topics.len(), "opened the log");
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            config,
            topics: RwLock::new(topics),
            offsets,
            stats: Stats::default(),
            closing: AtomicBool::new(false),
            writer_thread: OnceLock::new(),
            buffers: BufferPool::default(),
            _lock: Some(lock),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(shared.clone(), writers);
        let thread = std::thread::Builder::new()
            .name("headwater-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io("starting the log writer thread for", dir, e))?;
        let _ = shared.writer_thread.set(thread.thread().clone());
        Ok(Arc::new(Log {
            shared,
            tx: Some(tx),
            thread: Mutex::new(Some(thread)),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    /// Opens the log for inspection while a daemon may be writing to it:
    /// nothing is created, cut or deleted, and appends fail. Topics keep the
    /// partition count they were created with.
    pub fn open_read_only(dir: &Path, config: LogConfig) -> Result<Arc<Log>> {
        let mut topics = BTreeMap::new();
        for (name, topic_dir, meta) in read_topics(&topics_dir(dir), false)? {
            let name: Arc<str> = name.into();
            let mut parts = Vec::with_capacity(meta.partitions as usize);
            for p in 0..meta.partitions {
                parts.push(open_read_only(
                    name.clone(),
                    p,
                    &partition_dir(&topic_dir, p),
                    &config,
                )?);
            }
            let state = TopicState {
                name: name.clone(),
                meta,
                partitions: parts,
            };
            topics.insert(name.to_string(), Arc::new(state));
        }
        let consumers = dir.join("consumers");
        let offsets = if consumers.exists() {
            ConsumerOffsets::load(consumers)?
        } else {
            ConsumerOffsets::empty(consumers)
        };
        Ok(Arc::new(Log {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                config,
                topics: RwLock::new(topics),
                offsets,
                stats: Stats::default(),
                closing: AtomicBool::new(false),
                writer_thread: OnceLock::new(),
                buffers: BufferPool::default(),
                _lock: None,
            }),
            tx: None,
            thread: Mutex::new(None),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }))
    }

    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Appends records to their topics (created on first use with
    /// `log.partitions` partitions); each record goes to partition
    /// [`partition_for`](crate::partition_for)`(key)`. The records of one call that land in one
    /// partition form one batch, in call order.
    ///
    /// Returns once the append is queued to the writer in order behind
    /// every earlier append (waiting first while more than 4 MiB are queued:
    /// back-pressure). Offsets, and any write or fsync error, come from
    /// [`AppendReceipt::durable`]. Returning before the write lets a caller
    /// prepare its next batch while the writer thread writes this one.
    ///
    /// [`Log::append_batch`] does the same without owned inputs: no
    /// allocation per record.
    pub async fn append(&self, records: Vec<(String, Record)>) -> Result<AppendReceipt> {
        if self.tx.is_none() {
            return Err(LogError::ReadOnly);
        }
        let mut batch = self.batch();
        for (topic, record) in &records {
            batch.push(topic, &record.key, &record.value, record.timestamp_ms)?;
        }
        let mut receipt = self.append_batch(batch).await?;
        receipt.record_topics = records.into_iter().map(|(topic, _)| topic).collect();
        Ok(receipt)
    }

    /// An empty batch to fill with [`AppendBatch::push`] or
    /// [`AppendBatch::push_with`] and append with [`Log::append_batch`].
    pub fn batch(&self) -> AppendBatch {
        AppendBatch::new(self.shared.clone())
    }

    /// Appends a batch built with [`Log::batch`]: same contract as
    /// [`Log::append`], but the records were encoded as they were pushed,
    /// so this only seals each partition's batch (its header and CRC) and
    /// hands it to the writer thread, which writes it as it is.
    pub async fn append_batch(&self, batch: AppendBatch) -> Result<AppendReceipt> {
        let tx = self.tx.as_ref().ok_or(LogError::ReadOnly)?;
        if !Arc::ptr_eq(&batch.shared, &self.shared) {
            return Err(LogError::ForeignBatch);
        }
        let finished = batch.finish();
        if finished.placement.is_empty() {
            return Ok(AppendReceipt::empty());
        }
        let bytes: usize = finished.batches.iter().map(|b| b.bytes.len()).sum();
        let permits = bytes.clamp(1, MAX_IN_FLIGHT) as u32;
        let permit = self
            .in_flight
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| LogError::Closed)?;
        let (durable_tx, durable_rx) = oneshot::channel();
        tx.send(Command::Append {
            batches: finished.batches,
            permit,
            durable: durable_tx,
        })
        .map_err(|_| LogError::Closed)?;
        Ok(AppendReceipt {
            record_topics: Vec::new(),
            placement: finished.placement,
            groups: finished.groups,
            durable: Some(durable_rx),
        })
    }

    /// Resolves once everything appended so far is durable.
    pub async fn flush(&self) -> Result<()> {
        let rx = self.request(Command::Flush)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Runs retention now (it also runs by itself every 30 s); returns the
    /// bytes freed.
    pub async fn run_retention(&self) -> Result<u64> {
        let rx = self.request(Command::Retention)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Seals every active segment that holds records (for tests and tools).
    pub async fn roll(&self) -> Result<()> {
        let rx = self.request(Command::Roll)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>> {
        let tx = self.tx.as_ref().ok_or(LogError::ReadOnly)?;
        let (done, rx) = oneshot::channel();
        tx.send(make(done)).map_err(|_| LogError::Closed)?;
        Ok(rx)
    }

    pub fn topics(&self) -> Vec<TopicInfo> {
        let topics = self.shared.topics.read().unwrap_or_else(|p| p.into_inner());
        topics
            .values()
            .map(|t| TopicInfo {
                name: t.name.to_string(),
                partitions: t.meta.partitions,
                created_ms: t.meta.created_ms,
                partition_info: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let segments = p.segments();
                        PartitionInfo {
                            partition: p.partition,
                            log_start: p.log_start(),
                            high_watermark: p.high_watermark(),
                            log_end: p.log_end(),
                            segments: segments.len(),
                            bytes: segments.iter().map(|s| s.size()).sum(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// A reader of `topic`/`partition` from offset `from` (clamped to the
    /// oldest record still stored).
    pub fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Reader> {
        let part = self.shared.partition(topic, partition)?;
        Ok(Reader::new(
            part,
            from,
            self.shared.config.skip_damaged_segments,
        ))
    }

    /// The offset of the first durable record with `timestamp_ms >= ts_ms`
    /// (the high-water mark if none). Blocks on file reads.
    pub fn offset_for_timestamp_blocking(
        &self,
        topic: &str,
        partition: u32,
        ts_ms: i64,
    ) -> Result<u64> {
        let part = self.shared.partition(topic, partition)?;
        offset_for_timestamp(&part, ts_ms, self.shared.config.skip_damaged_segments)
    }

    /// A reader from the first record with `timestamp_ms >= ts_ms`.
    pub async fn reader_from_timestamp(
        &self,
        topic: &str,
        partition: u32,
        ts_ms: i64,
    ) -> Result<Reader> {
        let part = self.shared.partition(topic, partition)?;
        let skip = self.shared.config.skip_damaged_segments;
        let lookup = part.clone();
        let offset =
            tokio::task::spawn_blocking(move || offset_for_timestamp(&lookup, ts_ms, skip))
                .await
                .map_err(|e| LogError::Poisoned {
                    reason: format!("a timestamp lookup failed: {e}"),
                })??;
        Ok(Reader::new(part, offset, skip))
    }

    /// Offset after the last durable record (for lag: hwm − committed).
    pub fn high_watermark(&self, topic: &str, partition: u32) -> u64 {
        self.shared
            .partition(topic, partition)
            .map_or(0, |p| p.high_watermark())
    }

    /// Offset after the last written record, durable or not.
    pub fn log_end_offset(&self, topic: &str, partition: u32) -> u64 {
        self.shared
            .partition(topic, partition)
            .map_or(0, |p| p.log_end())
    }

    /// The oldest offset still stored.
    pub fn log_start_offset(&self, topic: &str, partition: u32) -> u64 {
        self.shared
            .partition(topic, partition)
            .map_or(0, |p| p.log_start())
    }

    pub fn committed_offset(&self, consumer: &str, topic: &str, partition: u32) -> Option<u64> {
        self.shared.offsets.committed(consumer, topic, partition)
    }

    /// Declares `consumer` a reader of `topic`: from now on retention keeps
    /// every segment it has not committed past (unless
    /// `allow_uncommitted_deletes`). Durable on return.
    pub async fn register_consumer(&self, consumer: &str, topic: &str) -> Result<()> {
        check_name("consumer", consumer)?;
        check_name("topic", topic)?;
        let partitions = self
            .shared
            .topic(topic)
            .map_or(self.shared.config.partitions, |t| t.meta.partitions);
        let shared = self.shared.clone();
        let (consumer, topic) = (consumer.to_owned(), topic.to_owned());
        blocking(move || {
            shared
                .offsets
                .update(&consumer, &topic, partitions, |_| Ok(false))
        })
        .await
    }

    /// Commits that `consumer` has processed everything in
    /// `topic`/`partition` below `next_offset`, atomically and durably.
    /// Offsets only move forward; committing the current value again is a
    /// no-op.
    pub async fn commit_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<()> {
        let shared = self.shared.clone();
        let (consumer, topic) = (consumer.to_owned(), topic.to_owned());
        blocking(move || commit(&shared, &consumer, &topic, partition, next_offset)).await
    }

    /// [`Log::commit_offset`] for threads that may block.
    pub fn commit_offset_blocking(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<()> {
        commit(&self.shared, consumer, topic, partition, next_offset)
    }

    pub fn stats(&self) -> LogStats {
        self.shared.stats.snapshot()
    }
}

fn commit(
    shared: &Shared,
    consumer: &str,
    topic: &str,
    partition: u32,
    next_offset: u64,
) -> Result<()> {
    check_name("consumer", consumer)?;
    let part = shared.partition(topic, partition)?;
    let hwm = part.high_watermark();
    if next_offset > hwm {
        return Err(LogError::OffsetBeyondEnd {
            consumer: consumer.to_owned(),
            topic: topic.to_owned(),
            partition,
            requested: next_offset,
            high_watermark: hwm,
        });
    }
    let partitions = shared.topic(topic).map_or(0, |t| t.meta.partitions);
    shared
        .offsets
        .update(consumer, topic, partitions, |offsets| {
            let slot = &mut offsets[partition as usize];
            match *slot {
                Some(committed) if committed > next_offset => Err(LogError::OffsetRegression {
                    consumer: consumer.to_owned(),
                    topic: topic.to_owned(),
                    partition,
                    committed,
                    requested: next_offset,
                }),
                Some(committed) if committed == next_offset => Ok(false),
                _ => {
                    *slot = Some(next_offset);
                    Ok(true)
                }
            }
        })?;
    // Retention may now free space an append is waiting for.
    if let Some(thread) = shared.writer_thread.get() {
        thread.unpark();
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Poisoned {
            reason: format!("a blocking log task failed: {e}"),
        })?
}

/// Every topic directory with its metadata. A directory without metadata
/// and without data is the trace of a topic creation cut by a crash: it is
/// removed when `tidy`, skipped otherwise.
fn read_topics(root: &Path, tidy: bool) -> Result<Vec<(String, PathBuf, TopicMeta)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(LogError::io("listing topics", root, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing topics", root, e))?;
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let store = CheckpointStore::open(&dir).map_err(|e| LogError::core(&dir, e))?;
        let meta: Option<TopicMeta> = store.load(META_NAME).map_err(|e| LogError::TopicMeta {
            path: store.path_of(META_NAME),
            reason: e.to_string(),
        })?;
        match meta {
            Some(meta) => out.push((name, dir, meta)),
            None if !holds_data(&dir) => {
                if tidy {
                    tracing::warn!(dir = %dir.display(), "removing a topic directory left by an interrupted topic creation");
                    fs::remove_dir_all(&dir).map_err(|e| LogError::io("removing", &dir, e))?;
                }
            }
            None => {
                return Err(LogError::TopicMeta {
                    path: store.path_of(META_NAME),
                    reason: "the file is missing but the topic holds records".into(),
                })
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn holds_data(topic_dir: &Path) -> bool {
    let Ok(parts) = fs::read_dir(topic_dir) else {
        return false;
    };
    parts.flatten().any(|p| {
        fs::read_dir(p.path()).is_ok_and(|files| {
            files
                .flatten()
                .any(|f| f.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
        })
    })
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Command::Shutdown);
        }
        if let Some(thread) = self.shared.writer_thread.get() {
            thread.unpark();
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}
