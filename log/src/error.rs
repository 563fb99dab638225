//! The log's one error type, and the policy each error maps to.

use std::path::PathBuf;
use std::sync::Arc;

use headwater_core::error::{io_kind, Classify, ErrorKind};

/// Errors are `Clone` so one failed fsync can be reported to every append
/// that was waiting on it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LogError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error("log segment {path} is damaged at byte {position} (the batch expected there starts at offset {offset}): {problem}. Records from there to the end of this segment cannot be read; restore the file from a backup, or set `log.skip_damaged_segments = true` to skip them (they are lost)")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        position: u64,
        problem: String,
    },

    #[error("topic `{topic}` has {on_disk} partitions on disk but `log.partitions` is {configured}; set `log.partitions = {on_disk}`, or move {dir} away to start the topic afresh")]
    PartitionCountMismatch {
        topic: String,
        on_disk: u32,
        configured: u32,
        dir: PathBuf,
    },

    #[error("topic metadata {path} cannot be used ({reason}); restore it from a backup, or move the topic directory away")]
    TopicMeta { path: PathBuf, reason: String },

    #[error("`{name}` is not a valid {what} name: use letters, digits, `.`, `_` and `-` (at most 200, not starting with `.`)")]
    InvalidName { what: &'static str, name: String },

    #[error("topic `{topic}` does not exist yet in the log (it is created by its first append)")]
    UnknownTopic { topic: String },

    #[error("topic `{topic}` has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },

    #[error("consumer `{consumer}` tried to commit offset {requested} for {topic}/{partition}, below its committed {committed}; offsets only move forward")]
    OffsetRegression {
        consumer: String,
        topic: String,
        partition: u32,
        committed: u64,
        requested: u64,
    },

    #[error("consumer `{consumer}` tried to commit offset {requested} for {topic}/{partition}, past the high-water mark {high_watermark}")]
    OffsetBeyondEnd {
        consumer: String,
        topic: String,
        partition: u32,
        requested: u64,
        high_watermark: u64,
    },

    #[error("consumer offsets {path}: {reason}")]
    Offsets { path: PathBuf, reason: String },

    #[error("the log stopped accepting appends after a write or fsync failed ({reason}); fix the cause and restart headwater, which recovers the log from disk")]
    Poisoned { reason: String },

    #[error("the log in {dir} is in use by another process ({holder}): stop it first, or give this one another data_dir")]
    Locked { dir: PathBuf, holder: String },

    #[error("invalid log configuration: {problems}")]
    Config { problems: String },

    #[error("the log is closed")]
    Closed,

    #[error("the log was opened read-only")]
    ReadOnly,

    #[error("a record for topic `{topic}` cannot be appended: {reason}")]
    BadRecord { topic: String, reason: String },

    #[error("a batch built by one log was appended to another; build it with `batch()` of the log it is appended to")]
    ForeignBatch,

    /// An error of another [`crate::EventLog`] implementation, with the
    /// policy it decided.
    #[error("{context}: {source}")]
    Backend {
        context: String,
        kind: ErrorKind,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn core(path: impl Into<PathBuf>, error: headwater_core::Error) -> Self {
        LogError::Offsets {
            path: path.into(),
            reason: error.to_string(),
        }
    }
}

impl Classify for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::Io { source, .. } => io_kind(source),
            LogError::Backend { kind, .. } => *kind,
            LogError::Corrupt { .. }
            | LogError::PartitionCountMismatch { .. }
            | LogError::TopicMeta { .. }
            | LogError::Offsets { .. }
            | LogError::Locked { .. } => ErrorKind::WaitForOperator,
            // A sink may start before its source has appended anything.
            LogError::UnknownTopic { .. } => ErrorKind::Retry,
            LogError::InvalidName { .. }
            | LogError::UnknownPartition { .. }
            | LogError::OffsetRegression { .. }
            | LogError::OffsetBeyondEnd { .. }
            | LogError::Poisoned { .. }
            | LogError::Config { .. }
            | LogError::Closed
            | LogError::ReadOnly
            | LogError::BadRecord { .. }
            | LogError::ForeignBatch => ErrorKind::Stop,
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Topic and consumer names become directory and file names.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if headwater_core::topic::is_valid_topic_name(name) {
        Ok(())
    } else {
        Err(LogError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}
