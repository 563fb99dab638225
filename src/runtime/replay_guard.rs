//! Keeps a restarted source from appending twice what is already durable
//! in the log.
//!
//! A source resumes from its stored checkpoint, but the log may hold more
//! than that checkpoint says: the checkpoint is stored after the batch is
//! durable (a crash in between), a transaction larger than one batch is
//! appended in parts with the checkpoint on the last, and one append that
//! spans partitions may be durable in some of them only. So on start, the
//! newest record this source wrote to each partition is read back, and a
//! replayed event that goes to a partition whose newest record is at or
//! after the event's position is dropped: a partition holds a source's
//! records in position order, and a torn batch is truncated whole, so
//! everything of the source up to that record is there.
//!
//! Snapshot reads (`Op::Read`) are never dropped: a snapshot that did not
//! finish is read again from the start. The guard only runs when the
//! source has a checkpoint, and retires a partition once an event goes past
//! its newest record.

use std::collections::HashMap;

use headwater_core::{ChangeEvent, Error, Op, Position};
use headwater_log::EventLog;

pub struct ReplayGuard {
    /// Per topic, per partition: the newest position this source has there,
    /// until an event passes it.
    newest: HashMap<String, Vec<Option<Position>>>,
    live: usize,
    pub skipped: u64,
}

impl ReplayGuard {
    /// Reads the newest record of `source` in every partition of the log.
    /// `None` when the log holds nothing of this source.
    pub async fn from_log(log: &dyn EventLog, source: &str) -> Option<ReplayGuard> {
        // Not worth stopping the source for: without the guard a replay
        // repeats rows, it loses none.
        let unguarded = |error: &dyn std::fmt::Display| {
            tracing::warn!(%error, "changes replayed to this partition may be appended twice");
        };
        let topics = match log.topics().await {
            Ok(topics) => topics,
            Err(e) => {
                unguarded(&Error::component(
                    format!("listing the log's topics to resume source `{source}`"),
                    e,
                ));
                return None;
            }
        };
        let mut newest = HashMap::new();
        let mut live = 0;
        for topic in topics {
            let mut partitions = vec![None; topic.partitions as usize];
            for p in &topic.partition_info {
                let found = match log.newest_of_source(&topic.name, p.partition, source).await {
                    Ok(found) => found,
                    Err(e) => {
                        unguarded(&Error::component(
                            format!(
                                "reading the newest records of {}/{} to resume source `{source}`",
                                topic.name, p.partition
                            ),
                            e,
                        ));
                        None
                    }
                };
                if let (Some(position), Some(slot)) =
                    (found, partitions.get_mut(p.partition as usize))
                {
                    *slot = Some(position);
                    live += 1;
                }
            }
            if partitions.iter().any(Option::is_some) {
                newest.insert(topic.name, partitions);
            }
        }
        (live > 0).then_some(ReplayGuard {
            newest,
            live,
            skipped: 0,
        })
    }

    /// Whether `event`, bound for `topic`/`partition`, is not in the log yet.
    pub fn keep(&mut self, topic: &str, partition: u32, event: &ChangeEvent) -> bool {
        if event.op == Op::Read {
            return true;
        }
        let Some(slot) = self
            .newest
            .get_mut(topic)
            .and_then(|p| p.get_mut(partition as usize))
        else {
            return true;
        };
        let Some(newest) = slot else {
            return true;
        };
        if event.position.is_covered_by(newest) {
            self.skipped += 1;
            return false;
        }
        *slot = None;
        self.live -= 1;
        true
    }

    /// Every partition has been passed: the guard has nothing left to do.
    pub fn is_done(&self) -> bool {
        self.live == 0
    }
}
