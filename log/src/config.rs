//! `[log]`: how the embedded log stores and keeps records.

use serde::Deserialize;

use headwater_core::config::{ByteSize, HumanDuration, Problems};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Partitions per topic; a record's partition is a hash of its key.
    pub partitions: u32,
    /// Delete segments whose newest record timestamp is older than this
    /// (once every sink has committed past them).
    pub retention: Option<HumanDuration>,
    /// Keep at most this many bytes per partition (same condition).
    pub retention_bytes: Option<ByteSize>,
    /// Roll the active segment when it reaches this size…
    pub segment_bytes: ByteSize,
    /// …or this age (counted from when the segment file was created, also
    /// across restarts; a segment rolls at its next append once it is old
    /// enough).
    pub segment_age: HumanDuration,
    pub fsync: FsyncPolicy,
    /// Above this much disk use, appends wait (back-pressure) until
    /// retention frees space.
    pub max_disk: Option<ByteSize>,
    /// Let retention delete segments a sink has not committed past.
    pub allow_uncommitted_deletes: bool,
    /// Bytes of segment between two entries of the sparse indexes.
    pub index_interval_bytes: ByteSize,
    /// On a damaged batch inside a sealed segment, skip the rest of that
    /// segment (its records are lost) instead of stopping with an error.
    pub skip_damaged_segments: bool,
}

/// When appended records are fsynced, and so when a source may acknowledge.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FsyncPolicy {
    /// `fsync = "batch"`: every append is fsynced before it is acknowledged;
    /// appends arriving together share one fsync (group commit).
    Batch(BatchLiteral),
    /// `fsync = { interval = "50ms" }`: fsync at most this often; appends
    /// are acknowledged once the next fsync has covered them.
    Interval { interval: HumanDuration },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchLiteral {
    Batch,
}

pub const DEFAULT_PARTITIONS: u32 = 4;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            partitions: DEFAULT_PARTITIONS,
            retention: Some(HumanDuration(std::time::Duration::from_secs(7 * 86_400))),
            retention_bytes: None,
            segment_bytes: ByteSize(128 << 20),
            segment_age: HumanDuration(std::time::Duration::from_secs(3_600)),
            fsync: FsyncPolicy::Batch(BatchLiteral::Batch),
            max_disk: None,
            allow_uncommitted_deletes: false,
            index_interval_bytes: ByteSize(4096),
            skip_damaged_segments: false,
        }
    }
}

impl LogConfig {
    pub fn validate(&self, problems: &mut Problems) {
        if self.partitions == 0 || self.partitions > 4096 {
            problems.add("log.partitions", "must be between 1 and 4096");
        }
        if self.segment_bytes.0 < 4096 || self.segment_bytes.0 > 1 << 30 {
            problems.add("log.segment_bytes", "must be between 4KiB and 1GiB");
        }
        if self.index_interval_bytes.0 == 0 {
            problems.add("log.index_interval_bytes", "must be more than zero");
        }
        if let FsyncPolicy::Interval { interval } = &self.fsync {
            if interval.0.is_zero() {
                problems.add(
                    "log.fsync.interval",
                    "must be more than zero; use fsync = \"batch\" to fsync every append",
                );
            }
        }
    }
}
