//! [`EventLog`]: what the runtime needs of a log, whichever log it is.
//!
//! The daemon's sources append through it, its sinks read and commit
//! through it, and `headwater log` inspects through it. The embedded log
//! ([`crate::Log`]) implements it; a log kept in a Kafka cluster is another
//! implementation of the same trait. Everything a remote log would answer
//! over the network is `async`; the traits are object-safe, so the runtime
//! holds an `Arc<dyn EventLog>`.
//!
//! # Durability contract (every implementation)
//! - **Queued**: [`EventLog::append`] returns once the batch is accepted in
//!   order behind every earlier append of this process (waiting while the
//!   log is behind: back-pressure). Not durable yet, not visible to readers.
//! - **Durable**: [`Receipt::durable`] resolves once no crash can lose the
//!   batch or any earlier one, and readers see it. Only then may a source
//!   acknowledge its position.
//! - A failed append fails every later one until the log is reopened.
//! - Readers see only durable records; a consumer's committed offset only
//!   moves forward and is durable once [`EventLog::commit_offset`] returns.
//!
//! Errors are [`LogError`]s, whose [`kind`](headwater_core::error::Classify)
//! tells the supervisor to retry, wait for an operator, or stop; another
//! implementation wraps its own errors in [`LogError::Backend`] with theirs.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use headwater_core::Position;

use crate::append_batch::BatchTopic;
use crate::batch::LogRecord;
use crate::error::Result;
use crate::log::{AppendedBatch, TopicInfo};

#[async_trait]
pub trait EventLog: Send + Sync {
    /// An empty batch to fill and hand to [`EventLog::append`].
    fn batch(&self) -> Box<dyn LogBatch>;

    /// Appends a batch from this log's [`EventLog::batch`] (topics are
    /// created on first use). See the durability contract above.
    async fn append(&self, batch: Box<dyn LogBatch>) -> Result<Receipt>;

    /// Resolves once everything appended so far is durable.
    async fn flush(&self) -> Result<()>;

    /// Every topic with its partitions and their offsets.
    async fn topics(&self) -> Result<Vec<TopicInfo>>;

    /// The oldest stored offset and the high-water mark of a partition.
    async fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets>;

    /// A reader of `topic`/`partition` from `from` (clamped to the oldest
    /// stored record). It sees durable records only.
    async fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn LogReader>>;

    /// The offset of the first durable record with `timestamp_ms >= ts_ms`
    /// (the high-water mark if there is none).
    async fn offset_for_timestamp(&self, topic: &str, partition: u32, ts_ms: i64) -> Result<u64>;

    /// The position of the newest record `source` wrote to the partition,
    /// if the log still has one among the partition's last records: where
    /// a restarted source's replay is already in the log.
    async fn newest_of_source(
        &self,
        topic: &str,
        partition: u32,
        source: &str,
    ) -> Result<Option<Position>>;

    /// Declares `consumer` a reader of `topic`, so retention keeps what it
    /// has not committed. Durable on return.
    async fn register_consumer(&self, consumer: &str, topic: &str) -> Result<()>;

    async fn committed_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>>;

    /// Commits that `consumer` processed everything of `topic`/`partition`
    /// below `next_offset`, durably. Offsets only move forward; the current
    /// value again is a no-op; past the high-water mark is an error.
    async fn commit_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<()>;
}

/// [`EventLog::offsets`]: `log_start .. high_watermark` is readable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start: u64,
    /// Offset after the last durable record.
    pub high_watermark: u64,
}

/// Records being put together for one [`EventLog::append`]. Each record
/// goes to partition [`partition_for`](crate::partition_for)`(key,
/// partitions)` of its topic; the records of one partition keep push order.
pub trait LogBatch: Send {
    /// Records pushed so far.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A handle on `topic` for [`LogBatch::push_encoded`], valid in this
    /// batch only. Fails on a name the log does not accept.
    fn topic(&mut self, topic: &str) -> Result<BatchTopic>;

    /// How many partitions `topic` has (for a new topic: will have).
    fn partitions(&self, topic: BatchTopic) -> Result<u32>;

    /// Adds a record, copying `key` and `value`.
    fn push(&mut self, topic: &str, key: &[u8], value: &[u8], timestamp_ms: i64) -> Result<()>;

    /// Adds a record encoded in place: `key` appends the key to an empty
    /// buffer, then `value` appends the value to the buffer it is given
    /// (only appends: it never changes what is already there). Each is
    /// called once.
    fn push_encoded(
        &mut self,
        topic: BatchTopic,
        timestamp_ms: i64,
        key: &mut dyn FnMut(&mut Vec<u8>),
        value: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Result<()>;

    /// For the log that made the batch, to take its own type back.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// An append accepted by the log; [`Receipt::durable`] waits for it to be
/// durable.
pub struct Receipt {
    records: usize,
    durable: Pin<Box<dyn Future<Output = Result<Vec<AppendedBatch>>> + Send>>,
}

impl Receipt {
    /// `durable` resolves with one entry per (topic, partition) batch of
    /// the append once it is durable.
    pub fn new(
        records: usize,
        durable: impl Future<Output = Result<Vec<AppendedBatch>>> + Send + 'static,
    ) -> Self {
        Receipt {
            records,
            durable: Box::pin(durable),
        }
    }

    /// Records in this append.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Resolves once the append (and every earlier one) is durable, with
    /// where each of its batches landed.
    pub async fn durable(self) -> Result<Vec<AppendedBatch>> {
        self.durable.await
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("records", &self.records)
            .finish()
    }
}

/// Reads one partition in offset order, durable records only.
#[async_trait]
pub trait LogReader: Send {
    fn topic(&self) -> &str;

    fn partition(&self) -> u32;

    /// The offset of the next record this reader returns.
    fn position(&self) -> u64;

    /// Up to `max` records from the position, waiting for appends when
    /// there are none yet. Cancel-safe: dropping the future loses no
    /// position.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>>;

    /// Up to `max` records that are durable now, without waiting for
    /// more: empty at the high-water mark.
    async fn read_available(&mut self, max: usize) -> Result<Vec<LogRecord>>;
}
