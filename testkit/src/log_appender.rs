//! An appender into the real embedded log, encoding as the daemon's does
//! (`headwater_log::events`), that counts the rows once durable: for
//! benchmarks of a source → log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use headwater_core::{Appender, Durable, Error, EventBatch, Position, Result};
use headwater_log::events::{push_events, schema_ids};
use headwater_log::Log;
use tokio::sync::Notify;

pub struct LogAppender {
    log: Arc<Log>,
    checkpoint: Arc<Mutex<Option<Position>>>,
    durable_rows: Arc<AtomicUsize>,
    notify: Arc<Notify>,
}

impl LogAppender {
    pub fn new(log: Arc<Log>, checkpoint: Option<Position>) -> Arc<Self> {
        Arc::new(LogAppender {
            log,
            checkpoint: Arc::new(Mutex::new(checkpoint)),
            durable_rows: Arc::default(),
            notify: Arc::default(),
        })
    }

    /// Rows durable in the log so far.
    pub fn durable_rows(&self) -> usize {
        self.durable_rows.load(Ordering::SeqCst)
    }

    /// Waits until `rows` are durable; false when `give_up` says so first
    /// (checked at least every 50 ms).
    pub async fn wait_for(&self, rows: usize, give_up: impl Fn() -> bool) -> bool {
        loop {
            let notified = self.notify.notified();
            if self.durable_rows() >= rows {
                return true;
            }
            if give_up() {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }
}

#[async_trait]
impl Appender for LogAppender {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        let n = batch.events.len();
        let mut records = self.log.batch();
        let ids = schema_ids(&batch.events);
        push_events(&mut records, &batch.events, &ids, |e| e.topic_name())
            .map_err(|err| Error::component("log", err))?;
        let receipt = self
            .log
            .append_batch(records)
            .await
            .map_err(|e| Error::component("log", e))?;
        let (checkpoint, rows, notify) = (
            self.checkpoint.clone(),
            self.durable_rows.clone(),
            self.notify.clone(),
        );
        Ok(Durable::new(async move {
            receipt
                .durable_batches()
                .await
                .map_err(|e| Error::component("log", e))?;
            if let Some(c) = batch.checkpoint {
                *checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
            }
            rows.fetch_add(n, Ordering::SeqCst);
            notify.notify_waiters();
            Ok(())
        }))
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
