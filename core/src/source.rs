//! The source side of the durability contract.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::event::ChangeEvent;
use crate::position::Position;
use crate::schema::TableId;

/// A batch of changes in source order.
#[derive(Debug, Default)]
pub struct EventBatch {
    pub events: Vec<ChangeEvent>,
    /// The source position this batch completes: once the batch is durable,
    /// the source may report this position upstream (PostgreSQL flush LSN)
    /// or store it as its resume point (MySQL). `None` when the batch ends
    /// inside a transaction that continues in the next batch.
    pub checkpoint: Option<Position>,
}

/// Resolves once a batch handed to [`Appender::append`] is durable in the
/// log under the configured fsync policy — after that, no crash can lose it.
pub struct Durable(BoxFuture<'static, Result<()>>);

impl Durable {
    pub fn new(future: impl Future<Output = Result<()>> + Send + 'static) -> Self {
        Durable(Box::pin(future))
    }

    /// Already durable (an empty batch, or one the log had already).
    pub fn ready() -> Self {
        Durable::new(async { Ok(()) })
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// Where a source's batches go: the transform chain, then the log.
///
/// # Contract
/// - **Appended**: `append` returns once the batch is accepted in order
///   behind every earlier batch of this source. It waits while the log is
///   behind (back-pressure), so a source never outruns the disk.
/// - **Durable**: the returned [`Durable`] resolves once every event of the
///   batch (after transforms) is in the log and fsynced under the fsync
///   policy, and every earlier batch is too. Only then may the source
///   acknowledge the batch's `checkpoint` upstream.
/// - A failed append fails every later one; the source stops and restarts
///   from its last acknowledged position (at-least-once).
#[async_trait]
pub trait Appender: Send + Sync {
    async fn append(&self, batch: EventBatch) -> Result<Durable>;

    /// The last checkpoint of this source that is durable in the log, so a
    /// restarted source skips transactions already there (by position).
    fn durable_checkpoint(&self) -> Option<Position>;
}

pub struct SourceContext {
    /// The source's configured name.
    pub name: Arc<str>,
    pub appender: Arc<dyn Appender>,
    pub shutdown: CancellationToken,
}

/// A change-data-capture source.
///
/// `run` reads changes until `shutdown` is cancelled, appending them in
/// commit order. It resumes from its own durable state (replication slot,
/// checkpoint) and skips what [`Appender::durable_checkpoint`] says is
/// already in the log, so a restart neither loses nor repeats a committed
/// transaction beyond at-least-once.
///
/// `Ok` from `run` means stopped for good (on shutdown): the supervisor does
/// not restart it. Any other end is an `Err` whose
/// [`crate::error::ErrorKind`] says whether to retry, wait for an operator
/// or stop.
#[async_trait]
pub trait Source: Send {
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()>;

    /// Probes the endpoint and its prerequisites for `headwater check`.
    async fn check(&self) -> Vec<Finding>;

    /// The tables this source captures and their column names, for
    /// `headwater check` to hold transforms against (`None`: not known
    /// without running; a failure to read them is `check`'s to report).
    async fn captured_columns(&self) -> Option<Vec<(TableId, Vec<String>)>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warn,
    Fail,
}

/// One line of `headwater check`: what was checked and how it went; a
/// warning or failure says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn ok(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Ok,
            message: message.into(),
        }
    }
    pub fn warn(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warn,
            message: message.into(),
        }
    }
    pub fn fail(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Fail,
            message: message.into(),
        }
    }
}
