//! The stage into the log: a prepared batch encoded into one log batch
//! (leaving out what a replay would append twice), appended, and once
//! durable, the source's checkpoint stored.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{ChangeEvent, CheckpointStore, Durable, Error, Position, Result};
use headwater_log::events::{push_events, push_events_where};
use headwater_log::{EventLog, LogBatch, LogError, Receipt};

use super::appender::{lock, spawn_blocking, topic_name};
use super::pre_append::Prepared;
use super::replay_guard::ReplayGuard;
use crate::metrics::{Metrics, SOURCE_EVENTS};

/// Writes one source's prepared batches. They become durable in the order
/// they were written; after each durable batch that carries a checkpoint,
/// the checkpoint is stored (`checkpoints/source.{name}`), and only then
/// does the batch's [`Durable`] resolve.
pub struct LogWriter {
    source: Arc<str>,
    log: Arc<dyn EventLog>,
    metrics: Arc<Metrics>,
    pending: mpsc::Sender<Pending>,
    checkpoint: Arc<Mutex<Option<Position>>>,
    /// Until every partition is passed: drops replayed events the log
    /// already has.
    guard: Mutex<Option<ReplayGuard>>,
}

struct Pending {
    receipt: Option<Receipt>,
    checkpoint: Option<Position>,
    done: oneshot::Sender<Result<()>>,
}

pub fn checkpoint_name(source: &str) -> String {
    format!("source.{source}")
}

impl LogWriter {
    /// Loads the source's checkpoint and starts the task that stores new
    /// ones. A damaged checkpoint file is an error, never a fresh start.
    pub async fn open(
        source: Arc<str>,
        log: Arc<dyn EventLog>,
        store: CheckpointStore,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let name = checkpoint_name(&source);
        let loaded = {
            let (store, name) = (store.clone(), name.clone());
            spawn_blocking(move || store.load::<Position>(&name)).await?
        };
        // Without a checkpoint the source starts over (a new snapshot), and
        // nothing it sends is a replay.
        let guard = match loaded {
            Some(_) => ReplayGuard::from_log(&*log, &source).await,
            None => None,
        };
        let checkpoint = Arc::new(Mutex::new(loaded));
        let (pending, rx) = mpsc::channel(1024);
        tokio::spawn(store_checkpoints(rx, store, name, checkpoint.clone()));
        Ok(LogWriter {
            source,
            log,
            metrics,
            pending,
            checkpoint,
            guard: Mutex::new(guard),
        })
    }

    /// Drops nothing as already in the log from now on.
    pub fn disable_replay_guard(&self) {
        *lock(&self.guard) = None;
    }

    /// Appends the batch; the [`Durable`] resolves once it is durable and
    /// its checkpoint (if any) is stored.
    pub async fn write(&self, prepared: Prepared) -> Result<Durable> {
        let appending = || format!("source `{}` appending to the log", self.source);
        let records = self
            .encode(&prepared)
            .map_err(|e| Error::component(appending(), e))?;
        self.metrics.add(
            SOURCE_EVENTS,
            &[("source", &self.source)],
            records.len() as u64,
        );
        let receipt = if records.is_empty() {
            None
        } else {
            let receipt = self
                .log
                .append(records)
                .await
                .map_err(|e| Error::component(appending(), e))?;
            Some(receipt)
        };
        let (done, rx) = oneshot::channel();
        self.pending
            .send(Pending {
                receipt,
                checkpoint: prepared.checkpoint,
                done,
            })
            .await
            .map_err(|_| Error::Cancelled)?;
        Ok(Durable::new(async move {
            rx.await.map_err(|_| Error::Cancelled)?
        }))
    }

    pub fn durable_checkpoint(&self) -> Option<Position> {
        lock(&self.checkpoint).clone()
    }

    /// Encodes every event straight into one log batch, but those the
    /// log already has.
    fn encode(&self, prepared: &Prepared) -> Result<Box<dyn LogBatch>, LogError> {
        let (events, ids) = (&prepared.events, &prepared.ids);
        let mut batch = self.log.batch();
        let topic_of = |e: &ChangeEvent| topic_name(&e.topic_name());
        let mut guard = lock(&self.guard);
        let Some(replay) = guard.as_mut() else {
            push_events(&mut *batch, events, ids, topic_of)?;
            return Ok(batch);
        };
        let skipped =
            push_events_where(&mut *batch, events, ids, topic_of, |topic, partition, e| {
                replay.keep(topic, partition, e)
            })?;
        if skipped > 0 {
            tracing::info!(source = %self.source, skipped, "left out replayed events the log already has");
        }
        if replay.is_done() {
            tracing::info!(source = %self.source, skipped = replay.skipped, "resumed past everything the log had of this source");
            *guard = None;
        }
        Ok(batch)
    }
}

/// Waits for each append to become durable, in order; stores the newest
/// checkpoint once for every run of batches that became durable together.
async fn store_checkpoints(
    mut rx: mpsc::Receiver<Pending>,
    store: CheckpointStore,
    name: String,
    current: Arc<Mutex<Option<Position>>>,
) {
    // The first failure, with its kind: a poisoned log stops, a full disk
    // waits for an operator, a transient error retries.
    let mut failed: Option<(ErrorKind, String)> = None;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let mut newest = None;
        let mut done = Vec::with_capacity(group.len());
        for p in group {
            if failed.is_none() {
                if let Some(receipt) = p.receipt {
                    if let Err(e) = receipt.durable().await {
                        failed = Some((
                            e.kind(),
                            format!("the log could not make a batch durable: {e}"),
                        ));
                    }
                }
            }
            if p.checkpoint.is_some() {
                newest = p.checkpoint;
            }
            done.push(p.done);
        }
        if let (None, Some(position)) = (&failed, newest) {
            let (store, name2) = (store.clone(), name.clone());
            let saved = position.clone();
            match spawn_blocking(move || store.save(&name2, &saved)).await {
                Ok(()) => *lock(&current) = Some(position),
                Err(e) => failed = Some((e.kind(), format!("storing checkpoint {name}: {e}"))),
            }
        }
        for d in done {
            let result = match &failed {
                None => Ok(()),
                // Every batch after a failure fails too: the source restarts
                // from its last durable checkpoint.
                Some((kind, reason)) => Err(Error::Component {
                    context: "appending".into(),
                    kind: *kind,
                    source: reason.clone().into(),
                }),
            };
            let _ = d.send(result);
        }
    }
}
