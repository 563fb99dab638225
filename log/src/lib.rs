//! Headwater's embedded partitioned log.
//!
//! On disk, under the log directory:
//!
//! ```text
//! topics/{topic}/topic.checkpoint            partition count, creation time
//! topics/{topic}/{partition:05}/{base:020}.log        record batches
//! topics/{topic}/{partition:05}/{base:020}.index      sparse offset index
//! topics/{topic}/{partition:05}/{base:020}.timeindex  sparse time index
//! consumers/{consumer}/{topic}.checkpoint    committed offsets
//! ```
//!
//! See [`Log`] for the durability contract and [`batch`] for the format.

mod append_batch;
pub mod batch;
mod buffers;
pub mod config;
mod embedded;
pub mod error;
mod event_log;
pub mod events;
mod index;
mod lock;
mod log;
mod newest;
mod offsets;
mod partition;
mod reader;
mod scan;
mod segment;
pub mod stats;
mod sync_pool;
mod topic;
pub mod verify;
mod writer;

pub use append_batch::{AppendBatch, BatchTopic};
pub use batch::{LogRecord, Record};
pub use config::{FsyncPolicy, LogConfig};
pub use error::LogError;
pub use event_log::{EventLog, LogBatch, LogReader, PartitionOffsets, Receipt};
pub use log::{AppendReceipt, AppendedBatch, Log, PartitionInfo, TopicInfo};
pub use reader::Reader;
pub use stats::LogStats;
pub use topic::partition_for;
