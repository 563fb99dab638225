//! Groups change events into [`EventBatch`]es and hands them to the log:
//! small transactions are coalesced, a large one is split (only its last
//! batch carries the checkpoint), and each batch's flush LSN goes to the
//! acknowledger, which reports it upstream once the batch is durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use headwater_core::{Appender, ChangeEvent, Durable, EventBatch, Lsn, Position};
use tokio::sync::{mpsc, Notify};

use crate::fault::{self, Helper};
use crate::postgres::error::{PgError, PgResult};

/// A batch on its way to durability, and the flush LSN it allows.
pub struct Ack {
    pub durable: Durable,
    pub flush: Option<Lsn>,
}

pub struct Batcher {
    appender: Arc<dyn Appender>,
    max_events: usize,
    /// Sized like the last batch (with room to spare), so it rarely grows:
    /// growing copies every event.
    events: Vec<ChangeEvent>,
    /// How many of `events` belong to complete transactions.
    committed_len: usize,
    checkpoint: Option<Position>,
    flush_lsn: Option<Lsn>,
    acks: mpsc::Sender<Ack>,
}

impl Batcher {
    pub fn new(appender: Arc<dyn Appender>, max_events: usize, acks: mpsc::Sender<Ack>) -> Self {
        Batcher {
            appender,
            max_events: max_events.max(1),
            events: Vec::with_capacity(max_events.clamp(1, 65_536)),
            committed_len: 0,
            checkpoint: None,
            flush_lsn: None,
            acks,
        }
    }

    /// Adds an event (not async, so the event is not moved into a future
    /// first); true when that filled a batch: [`Batcher::send_full`] next.
    #[must_use]
    pub fn add(&mut self, event: ChangeEvent) -> bool {
        self.events.push(event);
        self.events.len() >= self.max_events
    }

    /// Sends a full batch. It ends inside a transaction: no checkpoint, but
    /// the complete transactions in it may still be acknowledged.
    pub async fn send_full(&mut self) -> PgResult<()> {
        let events = self.take(self.events.len());
        self.committed_len = 0;
        self.checkpoint = None;
        let flush = self.flush_lsn.take();
        self.send(events, None, flush).await
    }

    /// A transaction ended: everything pushed so far is complete.
    pub fn commit(&mut self, checkpoint: Position, end_lsn: Lsn) {
        self.committed_len = self.events.len();
        self.checkpoint = Some(checkpoint);
        self.flush_lsn = Some(end_lsn);
    }

    /// A transaction already in the log was skipped; the server may still
    /// be told it is flushed.
    pub fn skipped(&mut self, end_lsn: Lsn) {
        if self.events.len() == self.committed_len {
            self.flush_lsn = Some(end_lsn);
        }
    }

    /// Whether complete transactions (or acknowledgements) wait.
    pub fn has_committed(&self) -> bool {
        self.committed_len > 0 || self.checkpoint.is_some() || self.flush_lsn.is_some()
    }

    /// Whether enough complete transactions wait to make a full batch.
    pub fn full(&self) -> bool {
        self.committed_len >= self.max_events / 2
    }

    /// Sends every complete transaction waiting; events of an open one stay.
    pub async fn flush_committed(&mut self) -> PgResult<()> {
        if self.committed_len == 0 && self.checkpoint.is_none() && self.flush_lsn.is_none() {
            return Ok(());
        }
        let events = self.take(self.committed_len);
        self.committed_len = 0;
        let checkpoint = self.checkpoint.take();
        let flush = self.flush_lsn.take();
        if events.is_empty() && checkpoint.is_none() {
            // Only skipped transactions: nothing to append.
            return self.ack(Durable::ready(), flush).await;
        }
        self.send(events, checkpoint, flush).await
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
        flush: Option<Lsn>,
    ) -> PgResult<()> {
        let durable = self
            .appender
            .append(EventBatch { events, checkpoint })
            .await?;
        self.ack(durable, flush).await
    }

    async fn ack(&mut self, durable: Durable, flush: Option<Lsn>) -> PgResult<()> {
        self.acks
            .send(Ack { durable, flush })
            .await
            .map_err(|_| PgError::HelperEnded {
                task: "acknowledger",
                reason: "it stopped taking batches".into(),
            })
    }
}

/// Awaits each batch's durability in order and publishes the flush LSN.
pub async fn acknowledge(
    mut acks: mpsc::Receiver<Ack>,
    flushed: Arc<AtomicU64>,
    notify: Arc<Notify>,
    source: Arc<str>,
) -> PgResult<()> {
    loop {
        let ack = tokio::select! {
            biased;
            ack = acks.recv() => ack,
            () = fault::killed(&source, Helper::Acknowledger) => panic!("fault injected: the acknowledger is killed"),
        };
        let Some(ack) = ack else { break };
        ack.durable.await?;
        if let Some(lsn) = ack.flush {
            flushed.fetch_max(lsn.0, Ordering::AcqRel);
            notify.notify_one();
        }
    }
    Ok(())
}
