//! Counters the pipeline exports as metrics, and their names.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const APPENDED_RECORDS: &str = "headwater_log_appended_records_total";
pub const APPENDED_BYTES: &str = "headwater_log_appended_bytes_total";
pub const FSYNCS: &str = "headwater_log_fsyncs_total";
pub const DISK_BYTES: &str = "headwater_log_disk_bytes";
pub const BACKPRESSURE: &str = "headwater_log_disk_backpressure";
pub const BACKPRESSURE_EPISODES: &str = "headwater_log_disk_backpressure_episodes_total";
pub const RETENTION_DELETED_BYTES: &str = "headwater_log_retention_deleted_bytes_total";

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub appended_records: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub disk_bytes: AtomicU64,
    pub backpressure: AtomicBool,
    pub backpressure_episodes: AtomicU64,
    pub retention_deleted_bytes: AtomicU64,
}

/// A snapshot of the log's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    pub appended_records: u64,
    pub appended_bytes: u64,
    pub fsyncs: u64,
    /// Bytes of segment files.
    pub disk_bytes: u64,
    /// Appends are waiting because disk use is over `log.max_disk`.
    pub backpressure: bool,
    pub backpressure_episodes: u64,
    pub retention_deleted_bytes: u64,
}

impl Stats {
    pub fn snapshot(&self) -> LogStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LogStats {
            appended_records: r(&self.appended_records),
            appended_bytes: r(&self.appended_bytes),
            fsyncs: r(&self.fsyncs),
            disk_bytes: r(&self.disk_bytes),
            backpressure: self.backpressure.load(Ordering::Relaxed),
            backpressure_episodes: r(&self.backpressure_episodes),
            retention_deleted_bytes: r(&self.retention_deleted_bytes),
        }
    }
}
