//! The task that owns the replication connection: it reads XLogData in
//! chunks and hands them on through a bounded channel, and it answers the
//! server — keepalive replies and standby status updates with the flush
//! LSN — even while the channel is full because the log is slow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use headwater_core::Lsn;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::postgres::error::PgResult;
use crate::postgres::replication::{CopyBoth, ReplMessage};

/// Most messages handed over in one chunk.
const CHUNK: usize = 1024;
/// A status update goes out at least this often, asked or not.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// ...and a new flush LSN at most this often: each one the walsender
/// applies may make it write (and fsync) the slot's state, which costs
/// the server the throughput it streams with.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// When this much has arrived since the last pause the stream is busy...
const BUSY: u64 = 16 * 1024;
/// ...and then (over TCP) the reader pauses this long, so a busy stream
/// arrives in few large reads instead of one small read per message (the
/// walsender sends each message as it is decoded, and a reader that keeps
/// up is woken for each): every wakeup costs a syscall and a handoff to
/// the decoding task. Adds at most ~2 ms of latency, and only while the
/// server sends fast; the kernel's TCP receive buffer holds what arrives
/// meanwhile.
const PACE: Duration = Duration::from_millis(1);

/// One XLogData payload and the WAL position of its start.
pub struct WalMessage {
    pub lsn: Lsn,
    pub data: Bytes,
}

pub type Chunk = PgResult<Vec<WalMessage>>;

struct Status {
    flushed: Arc<AtomicU64>,
    sent: u64,
    at: Instant,
}

impl Status {
    async fn send(&mut self, stream: &mut CopyBoth, force: bool) -> PgResult<()> {
        let flushed = self.flushed.load(Ordering::Acquire);
        let since = self.at.elapsed();
        if force || (flushed > self.sent && since >= FLUSH_EVERY) || since >= STATUS_EVERY {
            stream.send_status(Lsn(flushed), false).await?;
            if flushed > self.sent {
                tracing::debug!(flush_lsn = %Lsn(flushed), "acknowledged upstream");
            }
            self.sent = flushed;
            self.at = Instant::now();
        }
        Ok(())
    }
}

/// Runs until `stop`, the end of the stream, or an error (which it also
/// passes down the channel). On `stop` it sends a last status update.
pub async fn run(
    mut stream: CopyBoth,
    tx: mpsc::Sender<Chunk>,
    flushed: Arc<AtomicU64>,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    let start = flushed.load(Ordering::Acquire);
    let mut status = Status {
        flushed,
        sent: start,
        at: Instant::now(),
    };
    let result = pump(&mut stream, &tx, &mut status, &notify, &stop).await;
    match result {
        Ok(()) => {
            let _ = status.send(&mut stream, true).await;
            stream.close().await;
        }
        Err(e) => {
            let _ = tx.send(Err(e)).await;
        }
    }
}

async fn pump(
    stream: &mut CopyBoth,
    tx: &mpsc::Sender<Chunk>,
    status: &mut Status,
    notify: &Notify,
    stop: &CancellationToken,
) -> PgResult<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Made once, not per read: each new one registers under a lock.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut notified = Box::pin(notify.notified());
    let mut paused_at = stream.conn.received;
    // Over a unix socket the server's send buffer holds only a few hundred
    // messages: waiting would stall the server, so read as data comes.
    let pace = !stream.conn.is_unix();
    loop {
        if pace && stream.conn.received - paused_at >= BUSY {
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                _ = tokio::time::sleep(PACE) => {}
            }
            paused_at = stream.conn.received;
        }
        let first = tokio::select! {
            biased;
            _ = &mut stopped => return Ok(()),
            _ = &mut notified => {
                notified.set(notify.notified());
                status.send(stream, false).await?;
                continue;
            }
            _ = tick.tick() => { status.send(stream, false).await?; continue; }
            message = stream.recv() => message?,
        };
        let mut chunk = Vec::new();
        let mut reply = false;
        let mut next = first;
        loop {
            match next {
                None => {
                    // The server ended the stream (it is shutting down).
                    return Err(crate::postgres::error::PgError::ConnectionLost {
                        target: stream.conn.target.clone(),
                        context: "streaming",
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server ended the replication stream",
                        ),
                    });
                }
                Some(ReplMessage::Keepalive {
                    reply_requested, ..
                }) => reply |= reply_requested,
                Some(ReplMessage::XLogData {
                    wal_start, data, ..
                }) => chunk.push(WalMessage {
                    lsn: wal_start,
                    data,
                }),
            }
            if chunk.len() >= CHUNK {
                break;
            }
            match stream.try_recv()? {
                Some(message) => next = Some(message),
                None => break,
            }
        }
        if reply {
            status.send(stream, true).await?;
        }
        if chunk.is_empty() {
            continue;
        }
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                permit = tx.reserve() => match permit {
                    Ok(permit) => { permit.send(Ok(chunk)); break; }
                    Err(_) => return Ok(()),
                },
                _ = &mut notified => {
                    notified.set(notify.notified());
                    status.send(stream, false).await?;
                }
                // Back-pressured: the server's keepalive requests wait
                // unread behind the data, so answer them in advance.
                _ = tick.tick() => status.send(stream, true).await?,
            }
        }
    }
}
