//! The writer thread: the only place the log's segment files are written,
//! fsynced, rolled or deleted. Async callers talk to it over a channel, so
//! blocking file I/O never runs on the runtime's worker threads.
//!
//! Group commit: the thread takes every command waiting in the channel,
//! writes all their batches (`writev` per partition, every 1 MiB staged),
//! then issues one round of fsyncs (in parallel across partitions)
//! and answers all of them. Appends that arrive during an fsync wait for the
//! next round and share it. With `fsync = { interval }` the fsync round runs
//! at most once per interval instead.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use headwater_core::CheckpointStore;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::config::FsyncPolicy;
use crate::error::{LogError, Result};
use crate::log::Shared;
use crate::partition::{sync_dir, PartitionWriter};
use crate::sync_pool::{SyncPool, SyncTarget};
use crate::topic::{partition_dir, topics_dir, TopicMeta, TopicState, META_NAME};

/// One partition's share of an append, encoded by the caller.
pub(crate) struct PartitionBatch {
    pub topic: Arc<str>,
    pub partition: u32,
    pub bytes: Vec<u8>,
    pub records: u32,
}

/// Answers an append with its batches' base offsets once durable.
pub(crate) type DurableSender = oneshot::Sender<Result<Vec<u64>>>;

pub(crate) enum Command {
    Append {
        batches: Vec<PartitionBatch>,
        /// Back-pressure: held until the batches are written.
        permit: OwnedSemaphorePermit,
        /// The base offset of each batch, once durable; a failure at once.
        durable: DurableSender,
    },
    /// Resolves once everything written so far is durable.
    Flush(oneshot::Sender<Result<()>>),
    /// Runs retention now; answers the bytes freed.
    Retention(oneshot::Sender<Result<u64>>),
    /// Seals every non-empty active segment (tests, tools).
    Roll(oneshot::Sender<Result<()>>),
    Shutdown,
}

const RETENTION_EVERY: Duration = Duration::from_secs(30);
const MAX_COMMANDS_PER_ROUND: usize = 4096;
/// Staged bytes that are written (and their appenders' back-pressure
/// permits released) without waiting for the end of the round, so a caller
/// blocked on a full queue resumes while the writer writes the rest.
const WRITE_EVERY: usize = 1 << 20;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    partitions: HashMap<Arc<str>, Vec<PartitionWriter>>,
    /// Written appends waiting for the next fsync, with their base offsets.
    pending: Vec<(DurableSender, Vec<u64>)>,
    poisoned: Option<LogError>,
    sync_pool: SyncPool,
    last_sync: Instant,
    last_retention: Instant,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, partitions: HashMap<Arc<str>, Vec<PartitionWriter>>) -> Self {
        Writer {
            shared,
            partitions,
            pending: Vec::new(),
            poisoned: None,
            sync_pool: SyncPool::new(),
            last_sync: Instant::now(),
            last_retention: Instant::now(),
        }
    }

    pub fn run(mut self, rx: Receiver<Command>) {
        self.update_disk_bytes();
        let mut shutting_down = false;
        while !shutting_down {
            let first = match rx.recv_timeout(self.wait_time()) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut commands: Vec<Command> = first.into_iter().collect();
            while commands.len() < MAX_COMMANDS_PER_ROUND {
                match rx.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            if commands.iter().any(|c| matches!(c, Command::Append { .. })) {
                self.wait_for_disk_space();
            }
            let mut force_sync = false;
            let mut flushes = Vec::new();
            let mut permits = Vec::new();
            let mut staged = 0;
            for command in commands {
                if !matches!(command, Command::Append { .. }) {
                    self.write_staged();
                }
                if staged >= WRITE_EVERY {
                    self.write_staged();
                    permits.clear();
                    staged = 0;
                }
                match command {
                    Command::Append {
                        batches,
                        permit,
                        durable,
                    } => {
                        // Staged here, written below with the round's
                        // other batches: one write per partition.
                        staged += permit.num_permits();
                        let result = self.append(batches);
                        permits.push(permit);
                        // The caller is woken once, when durable: a wake-up
                        // per write would cost a context switch per append.
                        match result {
                            Ok(bases) => self.pending.push((durable, bases)),
                            Err(error) => {
                                let _ = durable.send(Err(error));
                            }
                        }
                    }
                    Command::Flush(done) => {
                        force_sync = true;
                        flushes.push(done);
                    }
                    Command::Retention(done) => {
                        let _ = done.send(self.retention());
                    }
                    Command::Roll(done) => {
                        let _ = done.send(self.roll_all());
                    }
                    Command::Shutdown => shutting_down = true,
                }
            }
            self.write_staged();
            drop(permits);
            let due = match &self.shared.config.fsync {
                FsyncPolicy::Batch(_) => true,
                FsyncPolicy::Interval { interval } => self.last_sync.elapsed() >= interval.0,
            };
            if due || force_sync || shutting_down {
                let result = self.sync_round();
                for done in flushes {
                    let _ = done.send(result.clone());
                }
            }
            if self.last_retention.elapsed() >= RETENTION_EVERY {
                if let Err(error) = self.retention() {
                    tracing::error!(%error, "retention failed; it will be retried");
                }
            }
        }
        let _ = self.sync_round();
    }

    fn wait_time(&self) -> Duration {
        let retention = RETENTION_EVERY.saturating_sub(self.last_retention.elapsed());
        match &self.shared.config.fsync {
            FsyncPolicy::Interval { interval } if !self.pending.is_empty() => interval
                .0
                .saturating_sub(self.last_sync.elapsed())
                .min(retention),
            _ => retention,
        }
    }

    /// Stages an append's batches (offsets stamped, indexed); a failure
    /// fails this append only, unless it is a write error (see `poison`).
    fn append(&mut self, batches: Vec<PartitionBatch>) -> Result<Vec<u64>> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        let mut bases = Vec::with_capacity(batches.len());
        let (mut records, mut bytes) = (0u64, 0u64);
        for batch in batches {
            records += u64::from(batch.records);
            bytes += batch.bytes.len() as u64;
            match self.append_one(batch) {
                Ok(base) => bases.push(base),
                Err(error) => {
                    // A partial write may sit in the file: recovery at the
                    // next open cuts it; until then accept nothing more.
                    if matches!(error, LogError::Io { .. }) {
                        self.poison(&error);
                    }
                    return Err(error);
                }
            }
        }
        let stats = &self.shared.stats;
        stats.appended_records.fetch_add(records, Ordering::Relaxed);
        stats.appended_bytes.fetch_add(bytes, Ordering::Relaxed);
        stats.disk_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(bases)
    }

    fn append_one(&mut self, batch: PartitionBatch) -> Result<u64> {
        if !self.partitions.contains_key(&batch.topic) {
            self.create_topic(&batch.topic)?;
        }
        let config = &self.shared.config;
        let partitions =
            self.partitions
                .get_mut(&batch.topic)
                .ok_or_else(|| LogError::UnknownTopic {
                    topic: batch.topic.to_string(),
                })?;
        let count = partitions.len() as u32;
        let partition = partitions
            .get_mut(batch.partition as usize)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                partitions: count,
            })?;
        partition.append(batch.bytes, config, &self.shared.buffers)
    }

    /// Writes every partition's staged batches. A failed write poisons the
    /// log, and every append not yet durable fails with it at once.
    fn write_staged(&mut self) {
        let pool = &self.shared.buffers;
        let mut failed = None;
        for p in self.partitions.values_mut().flatten() {
            if p.has_staged() {
                if let Err(error) = p.write_staged(pool) {
                    failed.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failed {
            self.poison(&error);
            let _ = self.sync_round();
        }
    }

    fn create_topic(&mut self, name: &Arc<str>) -> Result<()> {
        let config = &self.shared.config;
        let root = topics_dir(&self.shared.dir);
        let dir = root.join(&**name);
        let meta = TopicMeta {
            partitions: config.partitions,
            created_ms: now_ms(),
        };
        // The metadata goes first: a topic directory without it holds no
        // acknowledged data and is recreated.
        let store = CheckpointStore::open(&dir).map_err(|e| LogError::core(&dir, e))?;
        store
            .save(META_NAME, &meta)
            .map_err(|e| LogError::core(store.path_of(META_NAME), e))?;
        sync_dir(&root)?;
        let mut writers = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            writers.push(PartitionWriter::open(
                name.clone(),
                p,
                &partition_dir(&dir, p),
                config,
            )?);
        }
        sync_dir(&dir)?;
        tracing::info!(topic = %name, partitions = meta.partitions, "created topic");
        let state = TopicState {
            name: name.clone(),
            meta,
            partitions: writers.iter().map(|w| w.shared.clone()).collect(),
        };
        self.shared.insert_topic(state);
        self.partitions.insert(name.clone(), writers);
        Ok(())
    }

    fn poison(&mut self, error: &LogError) {
        tracing::error!(%error, "the log stops accepting appends");
        self.poisoned = Some(LogError::Poisoned {
            reason: error.to_string(),
        });
    }

    /// fsyncs every partition written since the last round, then moves
    /// their high-water marks and answers the waiting appends.
    fn sync_round(&mut self) -> Result<()> {
        if self.poisoned.is_none() && self.partitions.values().flatten().any(|p| p.has_staged()) {
            self.write_staged();
        }
        if let Some(error) = self.poisoned.clone() {
            for (done, _) in self.pending.drain(..) {
                let _ = done.send(Err(error.clone()));
            }
            return Err(error);
        }
        let dirty: Vec<SyncTarget> = self
            .partitions
            .values()
            .flatten()
            .filter(|p| p.dirty)
            .map(PartitionWriter::sync_target)
            .collect();
        let result = self.sync_pool.sync_all(&dirty);
        let synced = dirty.len() as u64;
        self.last_sync = Instant::now();
        if let Err(error) = result {
            // After a failed fsync the page cache can no longer be trusted.
            self.poison(&error);
            return self.sync_round();
        }
        self.shared
            .stats
            .fsyncs
            .fetch_add(synced, Ordering::Relaxed);
        for p in self.partitions.values_mut().flatten().filter(|p| p.dirty) {
            p.dirty = false;
            p.shared.set_high_watermark(p.log_end());
        }
        for (done, bases) in self.pending.drain(..) {
            let _ = done.send(Ok(bases));
        }
        Ok(())
    }

    fn roll_all(&mut self) -> Result<()> {
        let config = self.shared.config.clone();
        for p in self.partitions.values_mut().flatten() {
            if p.log_end() > p.shared.segments().last().map_or(0, |s| s.base_offset) {
                p.roll(&config, &self.shared.buffers)?;
            }
        }
        Ok(())
    }

    fn retention(&mut self) -> Result<u64> {
        self.last_retention = Instant::now();
        let now = now_ms();
        let mut freed = 0;
        for (topic, partitions) in &mut self.partitions {
            for p in partitions.iter_mut() {
                let committed = self.shared.offsets.min_committed(topic, p.shared.partition);
                freed += p.apply_retention(&self.shared.config, committed, now)?;
            }
        }
        let stats = &self.shared.stats;
        stats
            .retention_deleted_bytes
            .fetch_add(freed, Ordering::Relaxed);
        self.update_disk_bytes();
        Ok(freed)
    }

    fn update_disk_bytes(&self) -> u64 {
        let used = self
            .partitions
            .values()
            .flatten()
            .map(|p| p.disk_bytes())
            .sum();
        self.shared.stats.disk_bytes.store(used, Ordering::Relaxed);
        used
    }

    /// Back-pressure: while disk use is over `log.max_disk`, run retention
    /// and wait (woken by offset commits) instead of writing.
    fn wait_for_disk_space(&mut self) {
        let Some(cap) = self.shared.config.max_disk else {
            return;
        };
        let shared = self.shared.clone();
        let stats = &shared.stats;
        loop {
            if self.update_disk_bytes() < cap.0 {
                break;
            }
            if let Err(error) = self.retention() {
                tracing::error!(%error, "retention failed while the disk is over its cap");
            }
            let used = self.update_disk_bytes();
            if used < cap.0 || self.shared.closing.load(Ordering::Acquire) {
                break;
            }
            if !stats.backpressure.swap(true, Ordering::Relaxed) {
                stats.backpressure_episodes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    disk_bytes = used,
                    max_disk = cap.0,
                    "log disk use is over log.max_disk: appends wait until retention can delete \
                     segments (sinks must commit past them), or raise log.max_disk"
                );
            }
            std::thread::park_timeout(Duration::from_millis(500));
        }
        if stats.backpressure.swap(false, Ordering::Relaxed) {
            tracing::info!("log disk use is back under log.max_disk; appends resume");
        }
    }
}
