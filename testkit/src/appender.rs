//! An [`Appender`] that keeps events in memory, for testing sources without
//! a log. Batches are durable at once; tests wait on `notify` for news.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use headwater_core::{Appender, ChangeEvent, Durable, EventBatch, Position, Result};
use tokio::sync::Notify;

#[derive(Default)]
pub struct MemoryAppender {
    state: Mutex<State>,
    /// Woken after every append.
    pub notify: Notify,
}

#[derive(Default)]
struct State {
    events: Vec<ChangeEvent>,
    checkpoint: Option<Position>,
    batches: usize,
}

impl MemoryAppender {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts from a checkpoint, as a restarted source would find the log.
    pub fn with_checkpoint(checkpoint: Position) -> Arc<Self> {
        let appender = Self::default();
        appender.lock().checkpoint = Some(checkpoint);
        Arc::new(appender)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn events(&self) -> Vec<ChangeEvent> {
        self.lock().events.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn batches(&self) -> usize {
        self.lock().batches
    }

    pub fn checkpoint(&self) -> Option<Position> {
        self.lock().checkpoint.clone()
    }

    /// Waits until at least `n` events arrived, or panics after `deadline`.
    pub async fn wait_for(&self, n: usize, deadline: std::time::Duration) -> Vec<ChangeEvent> {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                if self.len() >= n {
                    return self.events();
                }
                notified.await;
            }
        };
        match tokio::time::timeout(deadline, wait).await {
            Ok(events) => events,
            Err(_) => panic!(
                "timed out after {deadline:?} waiting for {n} events; have {}",
                self.len()
            ),
        }
    }
}

#[async_trait]
impl Appender for MemoryAppender {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        {
            let mut state = self.lock();
            state.events.extend(batch.events);
            state.batches += 1;
            if batch.checkpoint.is_some() {
                state.checkpoint = batch.checkpoint;
            }
        }
        self.notify.notify_waiters();
        Ok(Durable::ready())
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.checkpoint()
    }
}
