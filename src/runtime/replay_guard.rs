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
use headwater_source::mysql::gtid::Gtids;

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
        if already_at(&event.position, newest) {
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

/// Whether a record at `newest` in a partition means the event at
/// `position` was written there before it.
fn already_at(position: &Position, newest: &Position) -> bool {
    match (position, newest) {
        (Position::Postgres(p), Position::Postgres(n)) => p <= n,
        (Position::MySql(p), Position::MySql(n)) => match (&p.gtid_set, &n.gtid_set) {
            // By GTIDs, which survive a failover to another server (file
            // and offset are only comparable on one server); within one
            // transaction by the change's place in it.
            (Some(p_set), Some(n_set)) => match (Gtids::parse(p_set), Gtids::parse(n_set)) {
                (Some(p_gtids), Some(n_gtids)) if p_gtids == n_gtids => p.tx_index <= n.tx_index,
                (Some(p_gtids), Some(n_gtids)) => p_gtids.is_covered_by(&n_gtids),
                _ => false,
            },
            (None, None) => p <= n,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_core::{Lsn, MySqlPosition, PgPosition};

    fn my(file: &str, offset: u64, gtids: Option<&str>, tx_index: u64) -> Position {
        Position::MySql(MySqlPosition {
            file: file.into(),
            offset,
            gtid_set: gtids.map(Into::into),
            tx_index,
        })
    }

    #[test]
    fn already_in_the_log_by_lsn_by_gtid_and_by_file_and_offset() {
        let pg = |c, l| {
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(c),
                lsn: Lsn(l),
            })
        };
        assert!(already_at(&pg(10, 5), &pg(10, 6)));
        assert!(!already_at(&pg(10, 7), &pg(10, 6)));

        // one transaction, on any server: by its place in the transaction
        let newest = my("a.000002", 900, Some("0-1-42"), 7);
        assert!(already_at(&my("b.000001", 100, Some("0-1-42"), 7), &newest));
        assert!(!already_at(
            &my("b.000001", 100, Some("0-1-42"), 8),
            &newest
        ));
        // an earlier transaction, whatever its file and offset
        assert!(already_at(&my("z.000009", 1, Some("0-1-41"), 99), &newest));
        assert!(!already_at(&my("a.000001", 1, Some("0-1-43"), 0), &newest));
        // another domain the log has not seen: not there
        assert!(!already_at(
            &my("a.000001", 1, Some("0-1-40,1-1-1"), 0),
            &newest
        ));

        // without GTIDs: by file, offset and place
        let newest = my("a.000002", 900, None, 3);
        assert!(already_at(&my("a.000002", 900, None, 3), &newest));
        assert!(already_at(&my("a.000001", 5000, None, 0), &newest));
        assert!(!already_at(&my("a.000002", 900, None, 4), &newest));
        assert!(!already_at(&my("a.000003", 4, None, 0), &newest));
        // a GTID on one side only cannot be compared: kept
        assert!(!already_at(&my("a.000001", 4, Some("0-1-1"), 0), &newest));
    }
}
