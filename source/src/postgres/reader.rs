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
/// A chunk is handed over once it holds this many messages...
const HAND_OVER: usize = 256;
/// ...or once its first message has waited this long (over a unix
/// socket, where reads are not paced). So the decoding task is woken per
/// chunk and not per message (a reader that keeps up with the walsender
/// gets one message per read), while the reader still empties the socket
/// as fast as the server fills it: the server's send buffer holds only a
/// few hundred messages, and a reader that waited would stall it. The
/// batcher lingers longer than this before it appends anyway.
const HOLD: Duration = Duration::from_millis(1);
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
    let hold = tokio::time::sleep(HOLD);
    tokio::pin!(hold);
    let mut held_long_enough = false;
    let mut chunk: Vec<WalMessage> = Vec::with_capacity(HAND_OVER);
    let mut paused_at = stream.conn.received;
    // Over a unix socket the server's send buffer holds only a few hundred
    // messages: pausing would stall the server, so read as data comes.
    let pace = !stream.conn.is_unix();
    loop {
        // Never with a chunk to hand over: the decoding task would idle.
        if pace && chunk.is_empty() && stream.conn.received - paused_at >= BUSY {
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                _ = tokio::time::sleep(PACE) => {}
            }
            paused_at = stream.conn.received;
        }
        let full = chunk.len() >= CHUNK;
        // Paced reads are large already: hand them over as they come.
        let ready = !chunk.is_empty() && (pace || chunk.len() >= HAND_OVER || held_long_enough);
        tokio::select! {
            biased;
            _ = &mut stopped => return Ok(()),
            _ = &mut notified => {
                notified.set(notify.notified());
                status.send(stream, false).await?;
            }
            // Back-pressured with a full chunk: the server's keepalive
            // requests wait unread behind the data, so answer in advance.
            _ = tick.tick() => status.send(stream, full).await?,
            permit = tx.reserve(), if ready => match permit {
                Ok(permit) => {
                    permit.send(Ok(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(HAND_OVER),
                    )));
                    held_long_enough = false;
                }
                Err(_) => return Ok(()),
            },
            _ = &mut hold, if !chunk.is_empty() && !ready => held_long_enough = true,
            message = stream.recv(), if !full => {
                // (An armed timer wakes the runtime when it expires, even
                // unpolled: paced reads arm none.)
                if chunk.is_empty() && !pace {
                    hold.as_mut().reset(tokio::time::Instant::now() + HOLD);
                }
                if take_buffered(stream, message?, &mut chunk)? {
                    status.send(stream, true).await?;
                }
            }
        }
    }
}

/// Adds `first` and the messages already buffered behind it to `chunk`,
/// up to [`CHUNK`]; true when a keepalive asked for a reply.
fn take_buffered(
    stream: &mut CopyBoth,
    first: Option<ReplMessage>,
    chunk: &mut Vec<WalMessage>,
) -> PgResult<bool> {
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
            return Ok(reply);
        }
        match stream.try_recv()? {
            Some(message) => next = Some(message),
            None => return Ok(reply),
        }
    }
}
