//! Delivery tracking: which log offsets are delivered, as a contiguous
//! prefix per log partition.
//!
//! Every record handed to the producer gets an entry in its log
//! partition's queue, with the number of Kafka messages it became (its
//! value, and a tombstone after a delete). librdkafka's delivery reports
//! count them down; the queue's front entries whose messages all succeeded
//! (or were refused for good, and are then dead-lettered) are popped and
//! advance "durable through". A failed entry stays at the front and blocks
//! its partition: nothing behind it is ever reported.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use headwater_core::error::ErrorKind;
use headwater_core::{DurableThrough, Progress, Rejected, SinkRecord};
use rdkafka::error::KafkaError;

use super::error::{classify, Failure, KafkaSinkError};

/// Bits of the delivery opaque that carry the entry's sequence number; the
/// partition's index takes the rest.
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

struct Entry {
    offset: u64,
    /// Messages not yet reported.
    pending: u8,
    failed: bool,
    reject: Option<String>,
    record: Option<SinkRecord>,
}

struct PartitionTrack {
    topic: Arc<str>,
    partition: u32,
    /// Sequence number of `entries[0]`.
    base_seq: u64,
    entries: VecDeque<Entry>,
    durable: Option<u64>,
    reported: Option<u64>,
}

#[derive(Default)]
pub struct Tracker {
    partitions: Vec<PartitionTrack>,
    index: HashMap<(Arc<str>, u32), usize>,
    rejected: Vec<Rejected>,
    failure: Option<KafkaSinkError>,
    /// The policy and text of a failure already returned.
    failed: Option<(ErrorKind, String)>,
    /// Entries not yet popped, over every partition.
    outstanding: usize,
}

/// A handle on one record's entry, packed into librdkafka's opaque pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(pub usize);

impl Ticket {
    fn new(partition_index: usize, seq: u64) -> Self {
        Ticket(((partition_index as u64) << SEQ_BITS | (seq & SEQ_MASK)) as usize)
    }
    fn split(self) -> (usize, u64) {
        let raw = self.0 as u64;
        ((raw >> SEQ_BITS) as usize, raw & SEQ_MASK)
    }
}

/// The tracker shared with librdkafka's delivery callback thread.
#[derive(Clone, Default)]
pub struct Shared(Arc<(Mutex<Tracker>, tokio::sync::Notify)>);

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Tracker> {
        // A panic while holding the lock leaves counts that are still
        // consistent enough to report nothing new; keep going.
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn notify(&self) -> &tokio::sync::Notify {
        &self.0 .1
    }
}

impl Tracker {
    /// Registers a record that becomes `messages` Kafka messages.
    pub fn begin(&mut self, record: SinkRecord, messages: u8) -> Ticket {
        let key = (record.topic.clone(), record.partition);
        let index = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                self.partitions.push(PartitionTrack {
                    topic: record.topic.clone(),
                    partition: record.partition,
                    base_seq: 0,
                    entries: VecDeque::new(),
                    durable: None,
                    reported: None,
                });
                self.index.insert(key, self.partitions.len() - 1);
                self.partitions.len() - 1
            }
        };
        let track = &mut self.partitions[index];
        let seq = track.base_seq + track.entries.len() as u64;
        track.entries.push_back(Entry {
            offset: record.offset,
            pending: messages,
            failed: false,
            reject: None,
            record: Some(record),
        });
        self.outstanding += 1;
        Ticket::new(index, seq)
    }

    /// One message of the ticket's record succeeded.
    pub fn delivered(&mut self, ticket: Ticket) {
        if let Some(entry) = self.entry(ticket) {
            entry.pending = entry.pending.saturating_sub(1);
        }
        self.settle(ticket);
    }

    /// One message of the ticket's record failed with `error` while going
    /// to `target`.
    pub fn failed(&mut self, ticket: Ticket, target: &str, error: KafkaError) {
        let failure = classify(&error);
        let Some(entry) = self.entry(ticket) else {
            return;
        };
        entry.pending = entry.pending.saturating_sub(1);
        let offset = entry.offset;
        if failure == Failure::Permanent {
            entry.reject.get_or_insert_with(|| {
                format!("kafka refused the message for topic `{target}`: {error}")
            });
        } else {
            entry.failed = true;
            let (index, _) = ticket.split();
            let track = &self.partitions[index];
            let (topic, partition) = (track.topic.to_string(), track.partition);
            let target = target.to_owned();
            let error = match failure {
                Failure::Unauthorized => KafkaSinkError::Unauthorized {
                    target,
                    topic,
                    partition,
                    offset,
                    source: Box::new(error),
                },
                Failure::UnknownTopic => KafkaSinkError::UnknownTopic {
                    target,
                    topic,
                    partition,
                    offset,
                },
                _ => KafkaSinkError::Delivery {
                    target,
                    topic,
                    partition,
                    offset,
                    source: Box::new(error),
                },
            };
            self.fail(error);
        }
        self.settle(ticket);
    }

    /// Records the first failure; later writes and flushes return it.
    pub fn fail(&mut self, error: KafkaSinkError) {
        if self.failure.is_none() {
            tracing::warn!(error = %error, "kafka sink: delivery failed");
            self.failure = Some(error);
        }
    }

    pub fn take_failure(&mut self) -> Option<KafkaSinkError> {
        self.failure.take()
    }

    pub fn has_failure(&self) -> bool {
        self.failure.is_some() || self.failed.is_some()
    }

    pub fn set_failed(&mut self, kind: ErrorKind, message: String) {
        self.failed = Some((kind, message));
    }

    pub fn failed_before(&self) -> Option<(ErrorKind, String)> {
        self.failed.clone()
    }

    /// Records accepted and not yet delivered or rejected.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    fn entry(&mut self, ticket: Ticket) -> Option<&mut Entry> {
        let (index, seq) = ticket.split();
        let track = self.partitions.get_mut(index)?;
        let at = seq.checked_sub(track.base_seq)?;
        track.entries.get_mut(usize::try_from(at).ok()?)
    }

    /// Pops the finished front of the ticket's partition.
    fn settle(&mut self, ticket: Ticket) {
        let (index, _) = ticket.split();
        let Some(track) = self.partitions.get_mut(index) else {
            return;
        };
        while let Some(front) = track.entries.front_mut() {
            if front.pending > 0 || front.failed {
                break;
            }
            let offset = front.offset;
            let reject = front.reject.take();
            let record = front.record.take();
            track.entries.pop_front();
            track.base_seq += 1;
            self.outstanding -= 1;
            track.durable = Some(offset + 1);
            if let (Some(reason), Some(record)) = (reject, record) {
                self.rejected.push(Rejected { record, reason });
            }
        }
    }

    /// What became delivered or rejected since the last call.
    pub fn take_progress(&mut self) -> Progress {
        let mut progress = Progress {
            durable: Vec::new(),
            rejected: std::mem::take(&mut self.rejected),
        };
        for track in &mut self.partitions {
            if track.durable != track.reported {
                if let Some(next_offset) = track.durable {
                    progress.durable.push(DurableThrough {
                        topic: track.topic.clone(),
                        partition: track.partition,
                        next_offset,
                    });
                }
                track.reported = track.durable;
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::RDKafkaErrorCode;

    fn record(offset: u64) -> SinkRecord {
        SinkRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            event: crate::kafka::testing::event(offset),
        }
    }

    #[test]
    fn out_of_order_reports_advance_only_a_contiguous_prefix() {
        let mut t = Tracker::default();
        let a = t.begin(record(10), 1);
        let b = t.begin(record(11), 2);
        let c = t.begin(record(12), 1);
        t.delivered(c);
        t.delivered(b);
        assert!(t.take_progress().durable.is_empty());
        t.delivered(a);
        let p = t.take_progress();
        assert_eq!(p.durable[0].next_offset, 11, "b still has a tombstone out");
        t.delivered(b);
        assert_eq!(t.take_progress().durable[0].next_offset, 13);
        assert_eq!(t.outstanding(), 0);
        assert!(t.take_progress().durable.is_empty(), "reported once");
    }

    #[test]
    fn a_failure_blocks_and_a_refusal_is_rejected() {
        let mut t = Tracker::default();
        let a = t.begin(record(0), 1);
        let b = t.begin(record(1), 1);
        let c = t.begin(record(2), 1);
        t.failed(
            a,
            "x",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        t.failed(
            b,
            "x",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        );
        t.delivered(c);
        let p = t.take_progress();
        assert_eq!(p.durable[0].next_offset, 1);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].record.offset, 0);
        assert!(t.has_failure());
        assert!(t.take_progress().durable.is_empty());
    }
}
