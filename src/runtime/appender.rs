//! The appender a source writes through: transform chain, schema registry,
//! encoding, log append, and the source's checkpoint — in that order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{
    Appender, ChangeEvent, CheckpointStore, Durable, Error, EventBatch, Position, Result, SchemaId,
    SchemaRegistry,
};
use headwater_log::events::{push_events, push_events_where, schema_ids};
use headwater_log::{AppendBatch, AppendReceipt, Log, LogError};
use headwater_transforms::TransformChain;

use super::replay_guard::ReplayGuard;
use crate::metrics::{Metrics, SOURCE_EVENTS};

/// Appends what one source reads. Batches become durable in the order they
/// were appended; after each durable batch that carries a checkpoint, the
/// checkpoint is stored (`checkpoints/source.{name}`), and only then does
/// the batch's [`Durable`] resolve.
pub struct LogAppender {
    source: Arc<str>,
    log: Arc<Log>,
    schemas: Arc<SchemaRegistry>,
    chain: Arc<TransformChain>,
    metrics: Arc<Metrics>,
    registered: Mutex<HashSet<SchemaId>>,
    pending: mpsc::Sender<Pending>,
    checkpoint: Arc<Mutex<Option<Position>>>,
    /// Until every partition is passed: drops replayed events the log
    /// already has.
    guard: Mutex<Option<ReplayGuard>>,
}

struct Pending {
    receipt: Option<AppendReceipt>,
    checkpoint: Option<Position>,
    done: oneshot::Sender<Result<()>>,
}

pub fn checkpoint_name(source: &str) -> String {
    format!("source.{source}")
}

impl LogAppender {
    /// Loads the source's checkpoint and starts the task that stores new
    /// ones. A damaged checkpoint file is an error, never a fresh start.
    pub async fn open(
        source: Arc<str>,
        log: Arc<Log>,
        schemas: Arc<SchemaRegistry>,
        chain: Arc<TransformChain>,
        store: CheckpointStore,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let name = checkpoint_name(&source);
        let loaded = {
            let (store, name) = (store.clone(), name.clone());
            spawn_blocking(move || store.load::<Position>(&name)).await?
        };
        // Without a checkpoint the source starts over (a new snapshot), and
        // nothing it sends is a replay.
        let guard = match loaded {
            Some(_) => {
                let (log, source) = (log.clone(), source.clone());
                spawn_blocking(move || Ok(ReplayGuard::from_log(&log, &source))).await?
            }
            None => None,
        };
        let checkpoint = Arc::new(Mutex::new(loaded));
        let (pending, rx) = mpsc::channel(1024);
        tokio::spawn(store_checkpoints(rx, store, name, checkpoint.clone()));
        Ok(Arc::new(LogAppender {
            source,
            log,
            schemas,
            chain,
            metrics,
            registered: Mutex::new(HashSet::new()),
            pending,
            checkpoint,
            guard: Mutex::new(guard),
        }))
    }

    /// For `headwater replay --to-log`: archived events are appended again
    /// on purpose, so none is dropped as already in the log, even under the
    /// name of a live source with a checkpoint.
    pub fn without_replay_guard(self: Arc<Self>) -> Arc<Self> {
        *lock(&self.guard) = None;
        self
    }

    /// The schema id of every event (computed once per distinct schema
    /// of the batch), after storing the schemas this appender has not
    /// stored yet (each once; fsync).
    async fn register_schemas(&self, events: &[ChangeEvent]) -> Result<Vec<SchemaId>> {
        let ids = schema_ids(events);
        let new: Vec<_> = {
            let registered = lock(&self.registered);
            let mut seen = HashSet::new();
            events
                .iter()
                .zip(&ids)
                .filter(|(_, id)| !registered.contains(*id) && seen.insert(**id))
                .map(|(e, _)| e.schema.clone())
                .collect()
        };
        if !new.is_empty() {
            let schemas = self.schemas.clone();
            let stored = spawn_blocking(move || {
                new.iter()
                    .map(|s| schemas.register(s))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
            lock(&self.registered).extend(stored);
        }
        Ok(ids)
    }

    /// Encodes every event straight into one log batch, but those the
    /// log already has.
    fn encode(&self, events: &[ChangeEvent], ids: &[SchemaId]) -> Result<AppendBatch, LogError> {
        let mut batch = self.log.batch();
        let topic_of = |e: &ChangeEvent| topic_name(&e.topic_name());
        let mut guard = lock(&self.guard);
        let Some(replay) = guard.as_mut() else {
            push_events(&mut batch, events, ids, topic_of)?;
            return Ok(batch);
        };
        let skipped =
            push_events_where(&mut batch, events, ids, topic_of, |topic, partition, e| {
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

#[async_trait]
impl Appender for LogAppender {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        let events = if self.chain.is_empty() {
            batch.events
        } else {
            self.chain.apply(batch.events)?
        };
        let ids = self.register_schemas(&events).await?;
        let appending = || format!("source `{}` appending to the log", self.source);
        let records = self
            .encode(&events, &ids)
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
                .append_batch(records)
                .await
                .map_err(|e| Error::component(appending(), e))?;
            Some(receipt)
        };
        let (done, rx) = oneshot::channel();
        self.pending
            .send(Pending {
                receipt,
                checkpoint: batch.checkpoint,
                done,
            })
            .await
            .map_err(|_| Error::Cancelled)?;
        Ok(Durable::new(async move {
            rx.await.map_err(|_| Error::Cancelled)?
        }))
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        lock(&self.checkpoint).clone()
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
                    if let Err(e) = receipt.durable_batches().await {
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

/// A topic name the log accepts: characters other than letters, digits,
/// `.`, `_` and `-` become `_` (as Debezium does).
pub fn topic_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub use headwater_core::checkpoint::spawn_blocking;
