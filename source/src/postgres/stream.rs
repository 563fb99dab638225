//! The streaming loop: pgoutput messages from the reader task become
//! change events in transactions, batches go to the log, heartbeats keep
//! an idle slot moving.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_core::{Appender, Lsn, PgPosition, Position};
use tokio::sync::{mpsc, Notify};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::fault::{self, Helper};
use crate::postgres::batch::{acknowledge, Ack, Batcher};
use crate::postgres::decode::{pg_timestamp, Decoder, TxContext, HEARTBEAT_PREFIX};
use crate::postgres::error::{PgError, PgResult};
use crate::postgres::pgoutput::{decode, LogicalMessage};
use crate::postgres::reader::{self, Chunk, WalMessage};
use crate::postgres::replication::CopyBoth;
use crate::postgres::streamed::{Buffered, StreamedTxns};

/// How long complete transactions wait for more to share their batch:
/// small transactions arriving together go to the log together.
const LINGER: Duration = Duration::from_millis(5);

pub struct StreamSettings {
    /// The source's name (for fault injection in tests).
    pub source: Arc<str>,
    pub heartbeat: Duration,
    pub max_batch_events: usize,
    pub stream_buffer: usize,
    pub spill_dir: std::path::PathBuf,
    /// Transactions committed at or before this are already in the log.
    pub resume_after: Option<Lsn>,
    /// The flush LSN the server already knows (the slot's confirmed flush).
    pub start_flush: Lsn,
}

struct Open {
    ctx: TxContext,
    skip: bool,
}

pub struct Streamer {
    decoder: Decoder,
    batcher: Batcher,
    streamed: StreamedTxns,
    client: Arc<Client>,
    settings: StreamSettings,
    open: Option<Open>,
    /// Top-level xid of the streamed block in progress.
    stream_xid: Option<u32>,
    last_commit: Instant,
}

/// Aborts its task when dropped, so a source task that is itself aborted
/// takes its reader (and the slot it holds) down with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn helper_ended(task: &'static str, reason: impl Into<String>) -> PgError {
    PgError::HelperEnded {
        task,
        reason: reason.into(),
    }
}

/// Why a task that should still run ended.
fn join_reason(e: &tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "it was aborted".to_owned();
    }
    format!("it panicked: {e}")
}

fn commit_position(commit_lsn: Lsn) -> Position {
    Position::Postgres(PgPosition {
        commit_lsn,
        lsn: commit_lsn,
    })
}

impl Streamer {
    fn skip(&self, commit_lsn: Lsn) -> bool {
        self.settings.resume_after.is_some_and(|r| commit_lsn <= r)
    }

    /// Streams until `shutdown`; returns the error that ended it otherwise.
    pub async fn run(
        decoder: Decoder,
        client: Arc<Client>,
        stream: CopyBoth,
        appender: Arc<dyn Appender>,
        settings: StreamSettings,
        shutdown: CancellationToken,
    ) -> PgResult<()> {
        let flushed = Arc::new(AtomicU64::new(settings.start_flush.0));
        let notify = Arc::new(Notify::new());
        let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(16);
        let (ack_tx, ack_rx) = mpsc::channel::<Ack>(64);
        let stop_reader = CancellationToken::new();
        let read = reader::run(
            stream,
            chunk_tx,
            flushed.clone(),
            notify.clone(),
            stop_reader.clone(),
        );
        let source = settings.source.clone();
        let mut reader = AbortOnDrop(tokio::spawn(
            async move {
                tokio::select! {
                    biased;
                    () = read => {}
                    () = fault::killed(&source, Helper::Reader) => panic!("fault injected: the reader is killed"),
                }
            }
            .instrument(tracing::info_span!("pg_reader")),
        ));
        let mut acker = AbortOnDrop(tokio::spawn(acknowledge(
            ack_rx,
            flushed.clone(),
            notify.clone(),
            settings.source.clone(),
        )));
        let mut streamer = Streamer {
            decoder,
            batcher: Batcher::new(appender, settings.max_batch_events, ack_tx),
            streamed: StreamedTxns::new(settings.stream_buffer, settings.spill_dir.clone()),
            client,
            open: None,
            stream_xid: None,
            last_commit: Instant::now(),
            settings,
        };
        let mut heartbeat = tokio::time::interval(streamer.settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut flush_at: Option<tokio::time::Instant> = None;
        // Made once, not per message chunk: each new timer or cancellation
        // future registers (and on drop deregisters) under a lock.
        let linger = tokio::time::sleep(LINGER);
        tokio::pin!(linger);
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let result: PgResult<()> = async {
            loop {
                tokio::select! {
                    biased;
                    _ = &mut cancelled => return Ok(()),
                    done = &mut acker.0 => {
                        return Err(match done {
                            Ok(Err(e)) => e,
                            Ok(Ok(())) => helper_ended("acknowledger", "it stopped"),
                            Err(e) => helper_ended("acknowledger", join_reason(&e)),
                        });
                    }
                    chunk = chunk_rx.recv() => match chunk {
                        Some(Ok(messages)) => {
                            for message in messages {
                                streamer.handle(message).await?;
                            }
                            if streamer.batcher.full() {
                                streamer.batcher.flush_committed().await?;
                                flush_at = None;
                            } else if flush_at.is_none() && streamer.batcher.has_committed() {
                                let at = tokio::time::Instant::now() + LINGER;
                                linger.as_mut().reset(at);
                                flush_at = Some(at);
                            }
                        }
                        Some(Err(e)) => return Err(e),
                        None => {
                            // The reader ended without passing an error on.
                            let reason = match tokio::time::timeout(Duration::from_secs(1), &mut reader.0).await {
                                Ok(Err(e)) => join_reason(&e),
                                _ => "it stopped".to_owned(),
                            };
                            return Err(helper_ended("reader", reason));
                        }
                    },
                    _ = &mut linger, if flush_at.is_some() => {
                        streamer.batcher.flush_committed().await?;
                        flush_at = None;
                    }
                    _ = heartbeat.tick() => streamer.heartbeat().await?,
                }
            }
        }
        .await;
        // Hand over what is complete, let the acknowledger finish, then
        // stop the reader, which sends the last flush LSN upstream.
        let drained = if result.is_ok() {
            streamer.batcher.flush_committed().await
        } else {
            Ok(())
        };
        streamer.streamed.clear();
        let Streamer { batcher, .. } = streamer;
        drop(batcher);
        if !acker.0.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(30), &mut acker.0).await;
        }
        stop_reader.cancel();
        // (Awaited already when it ended early.)
        if !reader.0.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut reader.0).await;
        }
        result.and(drained)
    }

    async fn heartbeat(&mut self) -> PgResult<()> {
        if self.last_commit.elapsed() < self.settings.heartbeat || self.open.is_some() {
            return Ok(());
        }
        tracing::debug!("idle: emitting a heartbeat message");
        self.client
            .execute(
                "SELECT pg_logical_emit_message(true, $1, '')",
                &[&HEARTBEAT_PREFIX],
            )
            .await
            .map_err(|e| PgError::sql("emitting a heartbeat (pg_logical_emit_message)", e))?;
        self.last_commit = Instant::now();
        Ok(())
    }

    async fn handle(&mut self, wal: WalMessage) -> PgResult<()> {
        let in_stream = self.stream_xid.is_some();
        let (message, xid) = decode(&wal.data, in_stream).map_err(|e| PgError::Decode {
            lsn: wal.lsn,
            reason: e.0,
        })?;
        if let (Some(top), Some(sub)) = (self.stream_xid, xid) {
            return self
                .streamed
                .push(
                    top,
                    Buffered {
                        lsn: wal.lsn,
                        xid: sub,
                        data: wal.data.clone(),
                    },
                )
                .await;
        }
        match message {
            LogicalMessage::Begin {
                final_lsn,
                commit_ts,
                xid,
            } => {
                let commit_lsn = Lsn(final_lsn);
                self.open = Some(Open {
                    ctx: TxContext {
                        commit_lsn,
                        commit_ts: pg_timestamp(commit_ts),
                        xid: Some(u64::from(xid)),
                        origin: None,
                    },
                    skip: self.skip(commit_lsn),
                });
            }
            LogicalMessage::Commit {
                commit_lsn,
                end_lsn,
                ..
            } => {
                let open = self.open.take();
                self.last_commit = Instant::now();
                if open.is_some_and(|o| o.skip) {
                    self.batcher.skipped(Lsn(end_lsn));
                } else {
                    self.batcher
                        .commit(commit_position(Lsn(commit_lsn)), Lsn(end_lsn));
                }
            }
            LogicalMessage::Origin { name, .. } => {
                if let Some(open) = &mut self.open {
                    open.ctx.origin = Some(name);
                }
            }
            LogicalMessage::StreamStart { xid, .. } => self.stream_xid = Some(xid),
            LogicalMessage::StreamStop => self.stream_xid = None,
            LogicalMessage::StreamAbort { xid, subxid } => self.streamed.abort(xid, subxid).await,
            LogicalMessage::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_ts,
                ..
            } => {
                self.replay(xid, Lsn(commit_lsn), Lsn(end_lsn), commit_ts)
                    .await?
            }
            LogicalMessage::Message {
                transactional: false,
                lsn,
                prefix,
                content,
            } => {
                // Outside any transaction: its own unit, positioned at itself.
                let lsn = Lsn(lsn);
                if !self.skip(lsn) && prefix != HEARTBEAT_PREFIX {
                    let ctx = TxContext {
                        commit_lsn: lsn,
                        commit_ts: None,
                        xid: None,
                        origin: None,
                    };
                    let event = self.decoder.message(false, &prefix, content, &ctx, lsn);
                    if self.batcher.add(event) {
                        self.batcher.send_full().await?;
                    }
                    self.batcher.commit(commit_position(lsn), lsn);
                }
            }
            LogicalMessage::Relation(relation) => {
                self.decoder.on_relation(&self.client, &relation).await?
            }
            LogicalMessage::Type { .. } => {}
            other => {
                let Some(open) = &self.open else {
                    return Err(PgError::Decode {
                        lsn: wal.lsn,
                        reason: "a change arrived outside a transaction".into(),
                    });
                };
                if open.skip {
                    return Ok(());
                }
                let ctx = open.ctx.clone();
                self.apply(other, &ctx, wal.lsn).await?;
            }
        }
        Ok(())
    }

    /// A data message of a transaction being kept: events to the batcher.
    async fn apply(
        &mut self,
        message: LogicalMessage<'_>,
        ctx: &TxContext,
        lsn: Lsn,
    ) -> PgResult<()> {
        match message {
            LogicalMessage::Relation(relation) => {
                self.decoder.on_relation(&self.client, &relation).await?
            }
            LogicalMessage::Insert { rel, new } => {
                let event = self.decoder.insert(rel, new, ctx, lsn)?;
                if self.batcher.add(event) {
                    self.batcher.send_full().await?;
                }
            }
            LogicalMessage::Update { rel, old, new } => {
                let event = self.decoder.update(rel, old, new, ctx, lsn)?;
                if self.batcher.add(event) {
                    self.batcher.send_full().await?;
                }
            }
            LogicalMessage::Delete { rel, old } => {
                let event = self.decoder.delete(rel, old, ctx, lsn)?;
                if self.batcher.add(event) {
                    self.batcher.send_full().await?;
                }
            }
            LogicalMessage::Truncate { options, rels } => {
                for event in self.decoder.truncate(options, &rels, ctx, lsn)? {
                    if self.batcher.add(event) {
                        self.batcher.send_full().await?;
                    }
                }
            }
            LogicalMessage::Message {
                transactional,
                prefix,
                content,
                ..
            } if prefix != HEARTBEAT_PREFIX => {
                let event = self
                    .decoder
                    .message(transactional, &prefix, content, ctx, lsn);
                if self.batcher.add(event) {
                    self.batcher.send_full().await?;
                }
            }
            // Type messages: types are resolved from the catalog instead.
            _ => {}
        }
        Ok(())
    }

    /// Stream Commit: the buffered messages, decoded in order now that the
    /// commit LSN is known.
    async fn replay(
        &mut self,
        xid: u32,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_ts: i64,
    ) -> PgResult<()> {
        let mut replay = self.streamed.take(xid).await?;
        self.last_commit = Instant::now();
        if self.skip(commit_lsn) {
            while replay.next().await?.is_some() {}
            self.batcher.skipped(end_lsn);
            return Ok(());
        }
        let ctx = TxContext {
            commit_lsn,
            commit_ts: pg_timestamp(commit_ts),
            xid: Some(u64::from(xid)),
            origin: None,
        };
        self.decoder.begin_replay();
        let result = async {
            while let Some(buffered) = replay.next().await? {
                let (message, _) = decode(&buffered.data, true).map_err(|e| PgError::Decode {
                    lsn: buffered.lsn,
                    reason: e.0,
                })?;
                self.apply(message, &ctx, buffered.lsn).await?;
            }
            Ok::<_, PgError>(())
        }
        .await;
        self.decoder.end_replay();
        result?;
        self.batcher.commit(commit_position(commit_lsn), end_lsn);
        Ok(())
    }
}
