//! The acknowledgement pipeline: a task awaits each batch's durability in
//! the order the batches were appended, then acknowledges what it allows.

use headwater_core::Durable;
use tokio::sync::mpsc;

use super::DriverError;
use crate::fault::{self, Helper};

/// A batch on its way to durability, and what it allows to acknowledge.
pub struct Ack<A> {
    pub durable: Durable,
    pub ack: Option<A>,
}

/// What a kind does once a position is durable in the log (PostgreSQL:
/// publish the flush LSN its reader reports upstream). Called in order.
pub trait Acknowledge<A>: Send + 'static {
    fn acknowledge(&mut self, ack: A);
}

/// Nothing to tell upstream: the log's checkpoint is the only record.
impl<A> Acknowledge<A> for () {
    fn acknowledge(&mut self, _: A) {}
}

/// Runs until the batcher is gone; an append that fails ends it.
pub(super) async fn acknowledge<A, K: Acknowledge<A>>(
    mut acks: mpsc::Receiver<Ack<A>>,
    mut kind: K,
    source: std::sync::Arc<str>,
) -> Result<(), DriverError> {
    loop {
        let next = tokio::select! {
            biased;
            next = acks.recv() => next,
            () = fault::killed(&source, Helper::Acknowledger) => panic!("fault injected: the acknowledger is killed"),
        };
        let Some(Ack { durable, ack }) = next else {
            return Ok(());
        };
        durable.await?;
        if let Some(ack) = ack {
            kind.acknowledge(ack);
        }
    }
}
