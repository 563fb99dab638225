//! The appender a source writes through: the pre-append stage (transform
//! chain, schema registry), then the log writer (encoding, log append, the
//! source's checkpoint) — in that order.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use headwater_core::{
    Appender, CheckpointStore, Durable, EventBatch, Position, Result, SchemaRegistry,
};
use headwater_log::EventLog;
use headwater_transforms::TransformChain;

use super::log_writer::LogWriter;
use super::pre_append::PreAppend;
use crate::metrics::Metrics;

pub use super::log_writer::checkpoint_name;

/// Appends what one source reads, through [`PreAppend`] and [`LogWriter`]:
/// see the writer for when a batch's [`Durable`] resolves.
pub struct LogAppender {
    pre: PreAppend,
    writer: LogWriter,
}

impl LogAppender {
    /// Loads the source's checkpoint and starts the task that stores new
    /// ones. A damaged checkpoint file is an error, never a fresh start.
    pub async fn open(
        source: Arc<str>,
        log: Arc<dyn EventLog>,
        schemas: Arc<SchemaRegistry>,
        chain: Arc<TransformChain>,
        store: CheckpointStore,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let writer = LogWriter::open(source, log, store, metrics.clone()).await?;
        Ok(Arc::new(LogAppender {
            pre: PreAppend::new(schemas, chain, metrics.clone()),
            writer,
        }))
    }

    /// For `headwater replay --to-log`: archived events are appended again
    /// on purpose, so none is dropped as already in the log, even under the
    /// name of a live source with a checkpoint.
    pub fn without_replay_guard(self: Arc<Self>) -> Arc<Self> {
        self.writer.disable_replay_guard();
        self
    }
}

#[async_trait]
impl Appender for LogAppender {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        let prepared = self.pre.prepare(batch).await?;
        self.writer.write(prepared).await
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.writer.durable_checkpoint()
    }
}

pub use headwater_core::topic::topic_name;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub use headwater_core::checkpoint::spawn_blocking;
