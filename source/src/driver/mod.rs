//! What every source kind shares: batching committed transactions (small
//! ones coalesced, a large one split with its checkpoint on its last
//! part), the acknowledgement pipeline (each batch's [`Durable`] awaited
//! in order, then its position acknowledged upstream), cancellation by
//! the shutdown token, and the errors that end a stream — a helper task
//! that dies is an error to retry, never a clean stop.
//!
//! A kind supplies a reader task that sends its inputs down a channel
//! ([`Reader`]), what to do with one input ([`Kind::handle`]: events and
//! transaction boundaries into the [`Batcher`]), and how to acknowledge a
//! durable position ([`Acknowledge`]). Reconnecting is the supervisor's:
//! an error ends [`run`], and the source is started again.
//!
//! [`Durable`]: headwater_core::Durable

mod ack;
mod batch;
mod run;

pub use ack::{Ack, Acknowledge};
pub use batch::Batcher;
pub(crate) use run::Kind;
pub use run::{run, Reader, Settings};

/// How a stream the driver runs can end besides the kind's own errors;
/// each kind wraps these in its error enum (`From<DriverError>`).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("appending to the log: {0}")]
    Append(#[from] headwater_core::Error),

    /// A helper task (the reader, the acknowledger) ended while the
    /// stream ran: a panic or a bug, never a shutdown. Retried.
    #[error("the source's {task} task ended while the stream ran ({reason}); the source restarts and resumes from its last durable position")]
    HelperEnded { task: &'static str, reason: String },
}

impl DriverError {
    pub(crate) fn helper_ended(task: &'static str, reason: impl Into<String>) -> Self {
        DriverError::HelperEnded {
            task,
            reason: reason.into(),
        }
    }

    pub(crate) fn joined(task: &'static str, e: &tokio::task::JoinError) -> Self {
        let reason = if e.is_panic() {
            format!("it panicked: {e}")
        } else {
            "it was aborted".to_owned()
        };
        DriverError::helper_ended(task, reason)
    }
}

/// Aborts its task when dropped, so a source task that is itself aborted
/// takes its helpers (and the connections they hold) down with it.
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
