//! Groups change events into [`EventBatch`]es and hands them to the log:
//! small transactions are coalesced, a large one is split (only its last
//! batch carries its checkpoint), and each batch goes to the acknowledger
//! with what it allows to acknowledge once durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_core::{Appender, ChangeEvent, Durable, EventBatch, Position};
use tokio::sync::mpsc;

use super::{Ack, DriverError};

pub struct Batcher<A> {
    appender: Arc<dyn Appender>,
    max_events: usize,
    /// Sized like the last batch (with room to spare), so it rarely grows:
    /// growing copies every event.
    events: Vec<ChangeEvent>,
    /// How many of `events` belong to complete transactions.
    committed_len: usize,
    /// The checkpoint after the last complete transaction not yet sent.
    checkpoint: Option<Position>,
    /// What the complete transactions allow to acknowledge.
    ack: Option<A>,
    acks: mpsc::Sender<Ack<A>>,
    /// A batch of only a checkpoint waits until this long after the last
    /// append (transactions of tables not captured move the checkpoint).
    checkpoint_only_every: Duration,
    last_sent: Instant,
}

impl<A: Send + 'static> Batcher<A> {
    pub(super) fn new(
        appender: Arc<dyn Appender>,
        max_events: usize,
        acks: mpsc::Sender<Ack<A>>,
        checkpoint_only_every: Duration,
    ) -> Self {
        Batcher {
            appender,
            max_events: max_events.max(1),
            events: Vec::with_capacity(max_events.clamp(1, 65_536)),
            committed_len: 0,
            checkpoint: None,
            ack: None,
            acks,
            checkpoint_only_every,
            last_sent: Instant::now(),
        }
    }

    /// Adds an event (not async, so the event is not moved into a future
    /// first); true when that filled a batch: [`Batcher::send_full`] next.
    #[must_use]
    pub fn add(&mut self, event: ChangeEvent) -> bool {
        self.events.push(event);
        self.events.len() >= self.max_events
    }

    /// Adds an event and sends the batch if that filled it.
    pub async fn push(&mut self, event: ChangeEvent) -> Result<(), DriverError> {
        if self.add(event) {
            self.send_full().await?;
        }
        Ok(())
    }

    /// Sends a full batch. It ends inside a transaction: it carries the
    /// checkpoint of the complete transactions in it, if any, never one
    /// inside the open transaction.
    pub async fn send_full(&mut self) -> Result<(), DriverError> {
        let events = self.take(self.events.len());
        self.committed_len = 0;
        let checkpoint = self.checkpoint.take();
        let ack = self.ack.take();
        self.send(events, checkpoint, ack).await
    }

    /// A transaction ended: everything added so far is complete.
    pub fn commit(&mut self, checkpoint: Position, ack: A) {
        self.committed_len = self.events.len();
        self.checkpoint = Some(checkpoint);
        self.ack = Some(ack);
    }

    /// A transaction already in the log was skipped; what it allows may
    /// still be acknowledged.
    pub fn skipped(&mut self, ack: A) {
        if self.events.len() == self.committed_len {
            self.ack = Some(ack);
        }
    }

    /// Whether complete transactions (or acknowledgements) wait.
    pub fn has_committed(&self) -> bool {
        self.committed_len > 0 || self.checkpoint.is_some() || self.ack.is_some()
    }

    /// Whether enough complete transactions wait to make a full batch.
    pub fn full(&self) -> bool {
        self.committed_len >= self.max_events / 2
    }

    /// Sends every complete transaction waiting; events of an open one
    /// stay, and so does a lone checkpoint sent too soon after the last.
    pub async fn flush_committed(&mut self) -> Result<(), DriverError> {
        if self.committed_len == 0 && self.last_sent.elapsed() < self.checkpoint_only_every {
            return Ok(());
        }
        self.finish().await
    }

    /// Sends every complete transaction waiting, now.
    pub async fn finish(&mut self) -> Result<(), DriverError> {
        if !self.has_committed() {
            return Ok(());
        }
        let events = self.take(self.committed_len);
        self.committed_len = 0;
        let checkpoint = self.checkpoint.take();
        let ack = self.ack.take();
        if events.is_empty() && checkpoint.is_none() {
            // Only skipped transactions: nothing to append.
            return self.acknowledge(Durable::ready(), ack).await;
        }
        self.send(events, checkpoint, ack).await
    }

    /// Moves the first `n` events out: the vector itself goes, and the
    /// next one, allocated for a batch like it, gets the open
    /// transaction's events (usually fewer than the complete ones, so
    /// fewer are copied than by draining the front).
    fn take(&mut self, n: usize) -> Vec<ChangeEvent> {
        if n == 0 {
            return Vec::new();
        }
        let open = self.events.len() - n;
        let mut next = Vec::with_capacity(
            (n + n / 2)
                .clamp(16, self.max_events.max(16))
                .max(open + 16),
        );
        next.extend(self.events.drain(n..));
        std::mem::replace(&mut self.events, next)
    }

    async fn send(
        &mut self,
        events: Vec<ChangeEvent>,
        checkpoint: Option<Position>,
        ack: Option<A>,
    ) -> Result<(), DriverError> {
        let durable = self
            .appender
            .append(EventBatch { events, checkpoint })
            .await?;
        self.last_sent = Instant::now();
        self.acknowledge(durable, ack).await
    }

    async fn acknowledge(&mut self, durable: Durable, ack: Option<A>) -> Result<(), DriverError> {
        self.acks
            .send(Ack { durable, ack })
            .await
            .map_err(|_| DriverError::helper_ended("acknowledger", "it stopped taking batches"))
    }
}
