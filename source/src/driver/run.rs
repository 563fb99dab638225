//! The stream loop every kind runs: inputs from the reader task go to the
//! kind, complete transactions go to the log once a batch is full or
//! after a short linger, and the helpers are watched: one that ends while
//! the stream runs ends it with an error. Only a cancelled shutdown token
//! ends it with `Ok`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use headwater_core::Appender;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::ack::{acknowledge, Acknowledge};
use super::{AbortOnDrop, Batcher, DriverError};
use crate::fault::{self, Helper};

/// Batches waiting to become durable before appending waits.
const ACKS_IN_FLIGHT: usize = 64;
/// How long the acknowledger may take for what is in flight when the
/// stream ends, and the reader for its goodbye.
const ACK_DRAIN: Duration = Duration::from_secs(30);
const READER_STOP: Duration = Duration::from_secs(10);

/// What a source kind does with what its reader reads.
pub(crate) trait Kind: Send {
    /// What the reader task sends: a chunk of messages, an event, or the
    /// error that ended its read.
    type Input: Send + 'static;
    /// What a durable transaction allows to acknowledge upstream.
    type Ack: Send + 'static;
    type Error: From<DriverError> + Send;

    /// Decodes one input: its events and transaction boundaries go to
    /// `batch` ([`Batcher::push`], [`Batcher::commit`]).
    fn handle(
        &mut self,
        input: Self::Input,
        batch: &mut Batcher<Self::Ack>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Runs every [`Settings::tick`] (PostgreSQL: a heartbeat when idle).
    fn tick(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// The stream ended: forget buffered open transactions.
    fn stopped(&mut self) {}
}

pub struct Settings {
    /// The source's name (for fault injection in tests).
    pub source: Arc<str>,
    pub max_batch_events: usize,
    /// How long complete transactions wait for more to share their batch:
    /// small transactions arriving together go to the log together.
    pub linger: Duration,
    pub tick: Duration,
    /// See [`Batcher`]: zero sends a lone checkpoint at once.
    pub checkpoint_only_every: Duration,
}

/// The kind's reader task and the channel it sends its inputs down.
pub struct Reader<I> {
    rx: mpsc::Receiver<I>,
    task: AbortOnDrop<()>,
    stop: CancellationToken,
}

impl<I: Send + 'static> Reader<I> {
    /// Spawns `read(tx, stop)`: it sends inputs to `tx` until `stop` (when
    /// it may say goodbye upstream), its end, or an error, which it sends
    /// as its last input. `capacity` inputs wait at most.
    pub fn spawn<F>(
        source: &Arc<str>,
        capacity: usize,
        span: tracing::Span,
        read: impl FnOnce(mpsc::Sender<I>, CancellationToken) -> F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity);
        let stop = CancellationToken::new();
        let read = read(tx, stop.clone());
        let source = source.clone();
        let task = tokio::spawn(
            async move {
                tokio::select! {
                    biased;
                    () = read => {}
                    () = fault::killed(&source, Helper::Reader) => panic!("fault injected: the reader is killed"),
                }
            }
            .instrument(span),
        );
        Reader {
            rx,
            task: AbortOnDrop(task),
            stop,
        }
    }
}

/// Streams until `shutdown` (Ok) or the error that ended the stream.
/// Before it returns, what was appended is let become durable and is
/// acknowledged, so a restart goes on after it.
pub async fn run<K, A>(
    kind: &mut K,
    reader: Reader<K::Input>,
    acknowledger: A,
    appender: Arc<dyn Appender>,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), K::Error>
where
    K: Kind,
    A: Acknowledge<K::Ack>,
{
    let Reader {
        mut rx,
        task: mut reader,
        stop: stop_reader,
    } = reader;
    let (ack_tx, ack_rx) = mpsc::channel(ACKS_IN_FLIGHT);
    let mut acker = AbortOnDrop(tokio::spawn(acknowledge(
        ack_rx,
        acknowledger,
        settings.source.clone(),
    )));
    let mut batcher = Batcher::new(
        appender,
        settings.max_batch_events,
        ack_tx,
        settings.checkpoint_only_every,
    );
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut flush_at: Option<tokio::time::Instant> = None;
    // Made once, not per input: each new timer or cancellation future
    // registers (and on drop deregisters) under a lock.
    let linger = tokio::time::sleep(settings.linger);
    tokio::pin!(linger);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let result: Result<(), K::Error> = async {
        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => return Ok(()),
                done = &mut acker.0 => {
                    return Err(match done {
                        Ok(Err(e)) => e,
                        Ok(Ok(())) => DriverError::helper_ended("acknowledger", "it stopped"),
                        Err(e) => DriverError::joined("acknowledger", &e),
                    }.into());
                }
                input = rx.recv() => match input {
                    Some(input) => {
                        kind.handle(input, &mut batcher).await?;
                        if batcher.full() {
                            batcher.flush_committed().await?;
                            flush_at = None;
                        } else if flush_at.is_none() && batcher.has_committed() {
                            let at = tokio::time::Instant::now() + settings.linger;
                            linger.as_mut().reset(at);
                            flush_at = Some(at);
                        }
                    }
                    // The reader ended without passing an error on.
                    None => {
                        let error = match tokio::time::timeout(Duration::from_secs(1), &mut reader.0).await {
                            Ok(Err(e)) => DriverError::joined("reader", &e),
                            _ => DriverError::helper_ended("reader", "it stopped"),
                        };
                        return Err(error.into());
                    }
                },
                () = &mut linger, if flush_at.is_some() => {
                    batcher.flush_committed().await?;
                    flush_at = None;
                }
                _ = tick.tick() => kind.tick().await?,
            }
        }
    }
    .await;
    // Hand over what is complete, let the acknowledger finish what is in
    // flight, then stop the reader (PostgreSQL's sends the last flush LSN
    // upstream).
    let drained = if result.is_ok() {
        batcher.finish().await.map_err(K::Error::from)
    } else {
        Ok(())
    };
    kind.stopped();
    drop(batcher);
    let acked = if acker.0.is_finished() {
        Ok(())
    } else {
        match tokio::time::timeout(ACK_DRAIN, &mut acker.0).await {
            Ok(Ok(Err(e))) => Err(K::Error::from(e)),
            _ => Ok(()),
        }
    };
    stop_reader.cancel();
    // (Awaited already when it ended early.)
    if !reader.0.is_finished() {
        let _ = tokio::time::timeout(READER_STOP, &mut reader.0).await;
    }
    result.and(drained).and(acked)
}
