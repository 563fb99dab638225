//! [`AppendBatch`]: records encoded as they are pushed, straight into one
//! batch frame per (topic, partition) — the very bytes the writer thread
//! writes. No per-record allocation: the
//! caller lends keys and values (or encodes them in place), and the frame
//! buffers come from the log's pool and go back to it once written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::batch::{record_header, Frame, HEADER_LEN, MAX_BATCH_LEN, RECORD_HEADER_LEN};
use crate::error::{check_name, LogError, Result};
use crate::log::Shared;
use crate::topic::partition_for;
use crate::writer::PartitionBatch;

/// A topic of one [`AppendBatch`], from [`AppendBatch::topic`]: the
/// batch's id and the topic's index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchTopic {
    batch: u64,
    index: u32,
}

impl BatchTopic {
    /// The handle on the `index`th topic of the batch `batch` (an id that
    /// tells the batches of one log apart), for other [`crate::LogBatch`]
    /// implementations.
    pub fn new(batch: u64, index: u32) -> Self {
        BatchTopic { batch, index }
    }

    pub fn batch(self) -> u64 {
        self.batch
    }

    pub fn index(self) -> u32 {
        self.index
    }
}

/// Tells batches apart, so a handle from another batch is refused.
static NEXT_BATCH_ID: AtomicU64 = AtomicU64::new(0);

/// Records to append together, built with [`Log::batch`](crate::Log::batch)
/// and appended with [`Log::append_batch`](crate::Log::append_batch). Each
/// record goes to partition [`partition_for`]`(key)` of its topic; the
/// records that land in one partition form one batch, in push order.
pub struct AppendBatch {
    pub(crate) shared: Arc<Shared>,
    id: u64,
    topics: Vec<TopicSlot>,
    /// The topic of the previous push: sources push runs of one topic.
    last: usize,
    groups: Vec<Group>,
    /// Per record: its group and its index in the group's batch.
    placement: Vec<(u32, u32)>,
    key: Vec<u8>,
}

struct TopicSlot {
    name: Arc<str>,
    partitions: u32,
    /// Per partition: 1 + the index of its group, 0 for none yet.
    groups: Vec<u32>,
}

struct Group {
    topic: usize,
    partition: u32,
    buf: Vec<u8>,
    frame: Frame,
}

/// What [`AppendBatch::finish`] hands over: the encoded batches, per batch
/// its topic, partition and record count, and per record its placement.
pub(crate) struct Finished {
    pub batches: Vec<PartitionBatch>,
    pub groups: Vec<(Arc<str>, u32, u32)>,
    pub placement: Vec<(u32, u32)>,
}

fn too_large(topic: &str) -> LogError {
    LogError::BadRecord {
        topic: topic.to_owned(),
        reason: format!(
            "the records for one partition in one append would exceed {} bytes; append fewer at a time",
            MAX_BATCH_LEN
        ),
    }
}

impl AppendBatch {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let records = shared.buffers.last_records();
        AppendBatch {
            shared,
            id: NEXT_BATCH_ID.fetch_add(1, Ordering::Relaxed),
            topics: Vec::new(),
            last: 0,
            groups: Vec::new(),
            placement: Vec::with_capacity(records),
            key: Vec::new(),
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.placement.len()
    }

    pub fn is_empty(&self) -> bool {
        self.placement.is_empty()
    }

    /// A handle on `topic` for [`AppendBatch::push_to`] and
    /// [`AppendBatch::push_with_to`], which then skip looking the name up
    /// per record. Valid for this batch only. Fails on an invalid name.
    pub fn topic(&mut self, topic: &str) -> Result<BatchTopic> {
        self.topic_index(topic).map(|t| BatchTopic {
            batch: self.id,
            index: t as u32,
        })
    }

    /// How many partitions `topic` has: a record with key `k` goes to
    /// [`partition_for`]`(k, partitions)`.
    pub fn partitions(&self, topic: BatchTopic) -> Result<u32> {
        self.slot(topic).map(|t| self.topics[t].partitions)
    }

    fn slot(&self, topic: BatchTopic) -> Result<usize> {
        let t = topic.index as usize;
        if topic.batch == self.id && t < self.topics.len() {
            Ok(t)
        } else {
            Err(LogError::BadRecord {
                topic: format!("#{t}"),
                reason: "the topic handle comes from another batch".into(),
            })
        }
    }

    /// Adds a record, copying `key` and `value` into the batch. Fails on an
    /// invalid topic name, or past 1 GiB for one partition.
    pub fn push(&mut self, topic: &str, key: &[u8], value: &[u8], timestamp_ms: i64) -> Result<()> {
        let t = self.topic_index(topic)?;
        self.push_at(t, key, value, timestamp_ms)
    }

    /// [`AppendBatch::push`] to a topic from [`AppendBatch::topic`].
    pub fn push_to(
        &mut self,
        topic: BatchTopic,
        key: &[u8],
        value: &[u8],
        timestamp_ms: i64,
    ) -> Result<()> {
        let t = self.slot(topic)?;
        self.push_at(t, key, value, timestamp_ms)
    }

    fn push_at(&mut self, t: usize, key: &[u8], value: &[u8], timestamp_ms: i64) -> Result<()> {
        let partition = partition_for(key, self.topics[t].partitions);
        let record = RECORD_HEADER_LEN + key.len() + value.len();
        let used = match self.topics[t].groups[partition as usize] {
            0 => HEADER_LEN,
            g => {
                let group = &self.groups[g as usize - 1];
                group.frame.len(&group.buf)
            }
        };
        if used.saturating_add(record) > MAX_BATCH_LEN as usize {
            return Err(too_large(&self.topics[t].name));
        }
        let g = self.group(t, partition);
        let group = &mut self.groups[g];
        self.placement.push((g as u32, group.frame.count));
        group.frame.push(&mut group.buf, key, value, timestamp_ms);
        Ok(())
    }

    /// Adds a record encoded in place: `key` appends the key to an empty
    /// buffer (it picks the partition), then `value` appends the value
    /// straight to the batch. `value` must only append to the buffer it is
    /// given (as `extend_from_slice` or `std::io::Write` do), never change
    /// or remove what is already there.
    pub fn push_with(
        &mut self,
        topic: &str,
        timestamp_ms: i64,
        key: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let t = self.topic_index(topic)?;
        self.push_with_at(t, timestamp_ms, key, value)
    }

    /// [`AppendBatch::push_with`] to a topic from [`AppendBatch::topic`].
    pub fn push_with_to(
        &mut self,
        topic: BatchTopic,
        timestamp_ms: i64,
        key: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let t = self.slot(topic)?;
        self.push_with_at(t, timestamp_ms, key, value)
    }

    fn push_with_at(
        &mut self,
        t: usize,
        timestamp_ms: i64,
        key: impl FnOnce(&mut Vec<u8>),
        value: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let mut key_buf = std::mem::take(&mut self.key);
        key_buf.clear();
        key(&mut key_buf);
        let partition = partition_for(&key_buf, self.topics[t].partitions);
        let created = self.topics[t].groups[partition as usize] == 0;
        let g = self.group(t, partition);
        let group = &mut self.groups[g];
        let start = group.buf.len();
        group.buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
        group.buf.extend_from_slice(&key_buf);
        let value_start = group.buf.len();
        value(&mut group.buf);
        let end = group.buf.len();
        let topic = &self.topics[t].name;
        let problem = if end < value_start {
            Some(LogError::BadRecord {
                topic: topic.to_string(),
                reason: "the value encoder removed bytes from the batch instead of appending"
                    .into(),
            })
        } else if group.frame.len(&group.buf) > MAX_BATCH_LEN as usize {
            Some(too_large(topic))
        } else {
            None
        };
        if let Some(error) = problem {
            group.buf.truncate(start);
            if created {
                // Never hand the writer an empty batch.
                if let Some(empty) = self.groups.pop() {
                    self.shared.buffers.give_back(empty.buf);
                }
                self.topics[t].groups[partition as usize] = 0;
            }
            self.key = key_buf;
            return Err(error);
        }
        group.buf[start..start + RECORD_HEADER_LEN].copy_from_slice(&record_header(
            key_buf.len(),
            end - value_start,
            timestamp_ms,
        ));
        self.placement.push((g as u32, group.frame.count));
        group.frame.pushed(timestamp_ms);
        self.key = key_buf;
        Ok(())
    }

    fn topic_index(&mut self, topic: &str) -> Result<usize> {
        if self
            .topics
            .get(self.last)
            .is_some_and(|s| &*s.name == topic)
        {
            return Ok(self.last);
        }
        // Few topics per append: a linear scan beats hashing.
        if let Some(t) = self.topics.iter().position(|s| &*s.name == topic) {
            self.last = t;
            return Ok(t);
        }
        let (name, partitions) = match self.shared.topic(topic) {
            Some(state) => (state.name.clone(), state.meta.partitions),
            None => {
                check_name("topic", topic)?;
                (Arc::from(topic), self.shared.config.partitions)
            }
        };
        self.topics.push(TopicSlot {
            name,
            partitions,
            groups: vec![0; partitions as usize],
        });
        self.last = self.topics.len() - 1;
        Ok(self.last)
    }

    fn group(&mut self, t: usize, partition: u32) -> usize {
        let slot = &mut self.topics[t].groups[partition as usize];
        if *slot == 0 {
            let mut buf = self.shared.buffers.take();
            buf.clear();
            let frame = Frame::begin(&mut buf);
            self.groups.push(Group {
                topic: t,
                partition,
                buf,
                frame,
            });
            *slot = self.groups.len() as u32;
        }
        *slot as usize - 1
    }

    /// Seals every batch (header and CRC) for the writer.
    pub(crate) fn finish(mut self) -> Finished {
        let groups = std::mem::take(&mut self.groups);
        let mut summary = Vec::with_capacity(groups.len());
        let mut batches = Vec::with_capacity(groups.len());
        for mut group in groups {
            let topic = self.topics[group.topic].name.clone();
            group.frame.finish(&mut group.buf);
            summary.push((topic.clone(), group.partition, group.frame.count));
            batches.push(PartitionBatch {
                topic,
                partition: group.partition,
                bytes: group.buf,
                records: group.frame.count,
            });
        }
        self.shared.buffers.set_last_records(self.placement.len());
        Finished {
            batches,
            groups: summary,
            placement: std::mem::take(&mut self.placement),
        }
    }
}

impl Drop for AppendBatch {
    /// A batch dropped without being appended returns its buffers.
    fn drop(&mut self) {
        for group in self.groups.drain(..) {
            self.shared.buffers.give_back(group.buf);
        }
    }
}

impl std::fmt::Debug for AppendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendBatch")
            .field("records", &self.placement.len())
            .field("batches", &self.groups.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_can_cross_an_await_in_a_send_future() {
        fn assert_send<T: Send + Sync>() {}
        assert_send::<AppendBatch>();
        assert_send::<crate::AppendReceipt>();
    }
}
