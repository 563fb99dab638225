//! The streaming loop: pgoutput messages from the reader task become
//! change events in transactions, batches go to the log, heartbeats keep
//! an idle slot moving.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_core::{Appender, Lsn, PgPosition, Position};
use tokio::sync::Notify;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::driver::{self, Acknowledge, Batcher, Kind, Reader};
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
    streamed: StreamedTxns,
    client: Arc<Client>,
    settings: StreamSettings,
    open: Option<Open>,
    /// Top-level xid of the streamed block in progress.
    stream_xid: Option<u32>,
    last_commit: Instant,
}

/// Publishes a durable flush LSN for the reader to report upstream.
struct FlushLsn {
    flushed: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

impl Acknowledge<Lsn> for FlushLsn {
    fn acknowledge(&mut self, lsn: Lsn) {
        self.flushed.fetch_max(lsn.0, Ordering::AcqRel);
        self.notify.notify_one();
    }
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
        let reader = Reader::spawn(
            &settings.source,
            16,
            tracing::info_span!("pg_reader"),
            |tx, stop| reader::run(stream, tx, flushed.clone(), notify.clone(), stop),
        );
        let driver_settings = driver::Settings {
            source: settings.source.clone(),
            max_batch_events: settings.max_batch_events,
            linger: LINGER,
            tick: settings.heartbeat,
            checkpoint_only_every: Duration::ZERO,
        };
        let mut streamer = Streamer {
            decoder,
            streamed: StreamedTxns::new(settings.stream_buffer, settings.spill_dir.clone()),
            client,
            open: None,
            stream_xid: None,
            last_commit: Instant::now(),
            settings,
        };
        driver::run(
            &mut streamer,
            reader,
            FlushLsn { flushed, notify },
            appender,
            driver_settings,
            shutdown,
        )
        .await
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

    async fn handle_message(&mut self, wal: WalMessage, batch: &mut Batcher<Lsn>) -> PgResult<()> {
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
                    batch.skipped(Lsn(end_lsn));
                } else {
                    batch.commit(commit_position(Lsn(commit_lsn)), Lsn(end_lsn));
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
                self.replay(batch, xid, Lsn(commit_lsn), Lsn(end_lsn), commit_ts)
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
                    batch.push(event).await?;
                    batch.commit(commit_position(lsn), lsn);
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
                self.apply(batch, other, &ctx, wal.lsn).await?;
            }
        }
        Ok(())
    }

    /// A data message of a transaction being kept: events to the batcher.
    async fn apply(
        &mut self,
        batch: &mut Batcher<Lsn>,
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
                batch.push(event).await?;
            }
            LogicalMessage::Update { rel, old, new } => {
                let event = self.decoder.update(rel, old, new, ctx, lsn)?;
                batch.push(event).await?;
            }
            LogicalMessage::Delete { rel, old } => {
                let event = self.decoder.delete(rel, old, ctx, lsn)?;
                batch.push(event).await?;
            }
            LogicalMessage::Truncate { options, rels } => {
                for event in self.decoder.truncate(options, &rels, ctx, lsn)? {
                    batch.push(event).await?;
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
                batch.push(event).await?;
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
        batch: &mut Batcher<Lsn>,
        xid: u32,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_ts: i64,
    ) -> PgResult<()> {
        let mut replay = self.streamed.take(xid).await?;
        self.last_commit = Instant::now();
        if self.skip(commit_lsn) {
            while replay.next().await?.is_some() {}
            batch.skipped(end_lsn);
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
                self.apply(batch, message, &ctx, buffered.lsn).await?;
            }
            Ok::<_, PgError>(())
        }
        .await;
        self.decoder.end_replay();
        result?;
        batch.commit(commit_position(commit_lsn), end_lsn);
        Ok(())
    }
}

impl Kind for Streamer {
    type Input = Chunk;
    type Ack = Lsn;
    type Error = PgError;

    async fn handle(&mut self, chunk: Chunk, batch: &mut Batcher<Lsn>) -> PgResult<()> {
        for message in chunk? {
            self.handle_message(message, batch).await?;
        }
        Ok(())
    }

    async fn tick(&mut self) -> PgResult<()> {
        self.heartbeat().await
    }

    fn stopped(&mut self) {
        self.streamed.clear();
    }
}
