//! The sink side of the durability contract.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::event::ChangeEvent;
use crate::source::Finding;

/// A change event read back from the log, with where it sits there.
#[derive(Clone, Debug)]
pub struct SinkRecord {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub event: ChangeEvent,
}

/// "Everything in `topic`/`partition` below `next_offset` is delivered."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurableThrough {
    pub topic: Arc<str>,
    pub partition: u32,
    pub next_offset: u64,
}

/// A record the target refused for good; it goes to the dead-letter topic
/// with the reason, and counts as delivered.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub record: SinkRecord,
    pub reason: String,
}

/// What a sink has finished since it was last asked.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub durable: Vec<DurableThrough>,
    pub rejected: Vec<Rejected>,
}

/// A destination fed from the log.
///
/// # Contract
/// - **Accepted**: `write` returning `Ok` means the sink has taken the batch
///   (it may buffer it); nothing is promised about the target yet.
/// - **Delivered**: a [`DurableThrough`] from [`Sink::take_progress`] promises
///   that every record of that partition below `next_offset` is durable at
///   the target (Kafka acknowledged it, the object PUT succeeded, the bulk
///   response was checked item by item) or was rejected and reported. Reports
///   are cumulative, never skip a record, and never go backwards.
/// - The runtime commits the sink's offsets only from those reports. After a
///   crash the sink is fed again from the committed offsets, so it must make
///   redelivery harmless where the target allows it.
/// - An `Err` from any method means nothing after the last report is
///   delivered; the runtime re-feeds from there after the error's policy.
#[async_trait]
pub trait Sink: Send {
    /// Takes the next records. Within one partition they come in offset
    /// order, each once, continuing where the last batch of that partition
    /// ended (after an error, from the committed offset again); records of
    /// different partitions may interleave.
    async fn write(&mut self, batch: Vec<SinkRecord>) -> Result<()>;

    /// Lets the sink finish time-driven work (roll files by age). With
    /// `drain`, at shutdown, everything accepted must become delivered.
    async fn flush(&mut self, drain: bool) -> Result<()>;

    /// What became delivered (or rejected) since the last call.
    fn take_progress(&mut self) -> Progress;

    /// Probes the target for `headwater check`.
    async fn check(&self) -> Vec<Finding>;
}
