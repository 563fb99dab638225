//! Counts the rows another appender made durable, for benchmarks of a
//! source → log: wrap the daemon's own appender
//! (`headwater::runtime::LogAppender`), so what is measured is the real
//! append path (transforms, schemas, checkpoints, the replay guard).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use headwater_core::{Appender, Durable, EventBatch, Position, Result};
use tokio::sync::Notify;

pub struct CountingAppender {
    inner: Arc<dyn Appender>,
    durable_rows: Arc<AtomicUsize>,
    notify: Arc<Notify>,
}

impl CountingAppender {
    pub fn new(inner: Arc<dyn Appender>) -> Arc<Self> {
        Arc::new(CountingAppender {
            inner,
            durable_rows: Arc::default(),
            notify: Arc::default(),
        })
    }

    /// Rows (as the source sent them) durable in the log so far.
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
impl Appender for CountingAppender {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        let n = batch.events.len();
        let durable = self.inner.append(batch).await?;
        let (rows, notify) = (self.durable_rows.clone(), self.notify.clone());
        Ok(Durable::new(async move {
            durable.await?;
            rows.fetch_add(n, Ordering::SeqCst);
            notify.notify_waiters();
            Ok(())
        }))
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.inner.durable_checkpoint()
    }
}
