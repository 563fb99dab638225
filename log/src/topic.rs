//! Topics, their persisted metadata, key routing, and the per-partition
//! state readers share with the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::segment::SegmentView;

/// The partition of a record key: `xxh3_64(key) mod partitions`, XXH3
/// with seed 0 as specified by the xxHash project. It is part of the
/// on-disk contract — all changes of one row must keep landing in one
/// partition across versions — so it must never change. Keyless records
/// (an empty key) all go to one partition, which keeps them in order.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0; // what the hash would give, without hashing
    }
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(partitions)) as u32
}

/// `{dir}/topics/{topic}/topic.checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub partitions: u32,
    pub created_ms: i64,
}

pub const META_NAME: &str = "topic";

pub fn topics_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("topics")
}

pub fn partition_dir(topic_dir: &Path, partition: u32) -> PathBuf {
    topic_dir.join(format!("{partition:05}"))
}

/// A partition as readers see it. Only the writer thread changes it.
#[derive(Debug)]
pub struct PartitionShared {
    pub topic: Arc<str>,
    pub partition: u32,
    segments: RwLock<Vec<Arc<SegmentView>>>,
    /// Offset after the last durable record: readers see records below it.
    hwm: watch::Sender<u64>,
    /// Offset after the last written record (durable or not).
    log_end: AtomicU64,
}

impl PartitionShared {
    pub fn new(topic: Arc<str>, partition: u32, segments: Vec<Arc<SegmentView>>, end: u64) -> Self {
        PartitionShared {
            topic,
            partition,
            segments: RwLock::new(segments),
            hwm: watch::Sender::new(end),
            log_end: AtomicU64::new(end),
        }
    }

    pub fn segments(&self) -> Vec<Arc<SegmentView>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The segment holding `offset` (or the first one after it, if retention
    /// or a skipped damaged segment left a gap), and the next one's base.
    pub fn segment_for(&self, offset: u64) -> Option<(Arc<SegmentView>, Option<u64>)> {
        let segments = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let i = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let segment = segments.get(i)?.clone();
        let next = segments.get(i + 1).map(|s| s.base_offset);
        Some((segment, next))
    }

    pub fn log_start(&self) -> u64 {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .map_or(0, |s| s.base_offset)
    }

    pub fn push_segment(&self, view: Arc<SegmentView>) {
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(view);
    }

    pub fn remove_first_segment(&self) {
        let mut segments = self.segments.write().unwrap_or_else(|p| p.into_inner());
        if segments.len() > 1 {
            segments.remove(0);
        }
    }

    pub fn high_watermark(&self) -> u64 {
        *self.hwm.borrow()
    }

    pub fn set_high_watermark(&self, hwm: u64) {
        self.hwm.send_if_modified(|current| {
            let moved = hwm > *current;
            if moved {
                *current = hwm;
            }
            moved
        });
    }

    pub fn watch(&self) -> watch::Receiver<u64> {
        self.hwm.subscribe()
    }

    pub fn log_end(&self) -> u64 {
        self.log_end.load(Ordering::Acquire)
    }

    pub fn set_log_end(&self, end: u64) {
        self.log_end.store(end, Ordering::Release);
    }
}

#[derive(Debug)]
pub struct TopicState {
    pub name: Arc<str>,
    pub meta: TopicMeta,
    pub partitions: Vec<Arc<PartitionShared>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: [u32; 8] = [1, 0, 1, 1, 0, 2, 2, 0];

    /// Pinned values: changing the hash would move rows between partitions.
    #[test]
    fn routing_is_stable() {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        let spread: Vec<u32> = (0..8u32)
            .map(|i| partition_for(&i.to_le_bytes(), 4))
            .collect();
        assert_eq!(spread, PINNED);
        assert!(spread.iter().all(|p| *p < 4));
    }
}
