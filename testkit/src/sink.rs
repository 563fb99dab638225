//! Sinks for testing the runtime: one that keeps what it is given, and a
//! wrapper that fails on command.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use headwater_core::error::ErrorKind;
use headwater_core::{DurableThrough, Error, Finding, Progress, Result, Sink, SinkRecord};

/// Everything a [`MemorySink`] was given, shared with the test.
#[derive(Default)]
pub struct Delivered {
    records: Mutex<Vec<SinkRecord>>,
    pub notify: tokio::sync::Notify,
}

impl Delivered {
    fn lock(&self) -> MutexGuard<'_, Vec<SinkRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn records(&self) -> Vec<SinkRecord> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `n` records were delivered, or panics.
    pub async fn wait_for(&self, n: usize, deadline: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                if self.len() >= n {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(deadline, wait).await.is_err() {
            panic!(
                "timed out after {deadline:?} waiting for {n} delivered records; have {}",
                self.len()
            );
        }
    }
}

/// Delivers on `write`: each record is durable at once.
pub struct MemorySink {
    delivered: Arc<Delivered>,
    next: BTreeMap<(Arc<str>, u32), u64>,
}

impl MemorySink {
    pub fn new(delivered: Arc<Delivered>) -> Self {
        MemorySink {
            delivered,
            next: BTreeMap::new(),
        }
    }
}

#[async_trait]
impl Sink for MemorySink {
    async fn write(&mut self, batch: Vec<SinkRecord>) -> Result<()> {
        for r in &batch {
            self.next
                .insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        self.delivered.lock().extend(batch);
        self.delivered.notify.notify_waiters();
        Ok(())
    }

    async fn flush(&mut self, _drain: bool) -> Result<()> {
        Ok(())
    }

    fn take_progress(&mut self) -> Progress {
        Progress {
            durable: self
                .next
                .iter()
                .map(|((topic, partition), next)| DurableThrough {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset: *next,
                })
                .collect(),
            rejected: Vec::new(),
        }
    }

    async fn check(&self) -> Vec<Finding> {
        vec![Finding::ok("memory sink")]
    }
}

/// Wraps a sink; the `fail_at`-th call to `write` (counting from 1, over
/// every sink sharing the counter) fails with a retryable error before
/// reaching the inner sink.
pub struct FaultySink<S> {
    inner: S,
    writes: Arc<AtomicUsize>,
    fail_at: usize,
}

impl<S> FaultySink<S> {
    pub fn new(inner: S, writes: Arc<AtomicUsize>, fail_at: usize) -> Self {
        FaultySink {
            inner,
            writes,
            fail_at,
        }
    }
}

#[async_trait]
impl<S: Sink + Sync> Sink for FaultySink<S> {
    async fn write(&mut self, batch: Vec<SinkRecord>) -> Result<()> {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(Error::Component {
                context: "faulty sink".into(),
                kind: ErrorKind::Retry,
                source: "injected failure".into(),
            });
        }
        self.inner.write(batch).await
    }

    async fn flush(&mut self, drain: bool) -> Result<()> {
        self.inner.flush(drain).await
    }

    fn take_progress(&mut self) -> Progress {
        self.inner.take_progress()
    }

    async fn check(&self) -> Vec<Finding> {
        self.inner.check().await
    }
}

/// Wraps a sink; every `write` first waits `delay`, so the sink falls
/// behind its log readers and always has records waiting.
pub struct SlowSink<S> {
    inner: S,
    delay: std::time::Duration,
}

impl<S> SlowSink<S> {
    pub fn new(inner: S, delay: std::time::Duration) -> Self {
        SlowSink { inner, delay }
    }
}

#[async_trait]
impl<S: Sink + Sync> Sink for SlowSink<S> {
    async fn write(&mut self, batch: Vec<SinkRecord>) -> Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.write(batch).await
    }

    async fn flush(&mut self, drain: bool) -> Result<()> {
        self.inner.flush(drain).await
    }

    fn take_progress(&mut self) -> Progress {
        self.inner.take_progress()
    }

    async fn check(&self) -> Vec<Finding> {
        self.inner.check().await
    }
}
