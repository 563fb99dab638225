//! The Parquet sink's errors, each with the policy the supervisor applies.

use headwater_core::error::{Classify, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The archive URL or its options are wrong; nothing can be written
    /// until the configuration is fixed.
    #[error("parquet sink: archive url `{url}`: {reason}")]
    Config { url: String, reason: String },

    /// The object store refused or did not answer (network, a 5xx, a
    /// throttle): the runtime retries with backoff and re-feeds.
    #[error("parquet sink: object `{object}` on {store} ({topic}/{partition}, offsets {first}..={last}): {source}; nothing after the last reported offset is delivered — the sink retries after a backoff, check that the store is reachable and the credentials are valid")]
    Store {
        store: String,
        object: String,
        topic: String,
        partition: u32,
        first: u64,
        last: u64,
        #[source]
        source: object_store::Error,
    },

    /// The store refused our credentials or permissions.
    #[error("parquet sink: object `{object}` on {store}: access denied ({source}); give the sink's credentials write access to the archive prefix")]
    Denied {
        store: String,
        object: String,
        #[source]
        source: object_store::Error,
    },

    /// Reading an archive (replay) failed at the store.
    #[error("parquet archive: reading `{object}` on {store}: {source}; check that the store is reachable and the object exists")]
    Read {
        store: String,
        object: String,
        #[source]
        source: object_store::Error,
    },

    /// The Parquet writer or reader failed: a bug, or a damaged file.
    #[error("parquet sink: {context}: {source}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// Arrow refused arrays we built: a bug in the encoder.
    #[error("parquet sink: {context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow_schema::ArrowError,
    },

    /// A file in the archive does not hold what this sink writes.
    #[error("parquet archive: `{object}`: {reason}; the file was not written by headwater or is damaged — move it out of the archive prefix")]
    Corrupt { object: String, reason: String },

    /// An encoding task panicked or was cancelled.
    #[error("parquet sink: encoding task for {topic}/{partition} failed: {reason}")]
    Task {
        topic: String,
        partition: u32,
        reason: String,
    },
}

impl ParquetError {
    /// Sorts an object-store failure into retry or operator.
    pub(crate) fn from_store(
        store: &str,
        object: &str,
        topic: &str,
        partition: u32,
        range: (u64, u64),
        source: object_store::Error,
    ) -> Self {
        match source {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => ParquetError::Denied {
                store: store.to_owned(),
                object: object.to_owned(),
                source,
            },
            source => ParquetError::Store {
                store: store.to_owned(),
                object: object.to_owned(),
                topic: topic.to_owned(),
                partition,
                first: range.0,
                last: range.1,
                source,
            },
        }
    }
}

impl Classify for ParquetError {
    fn kind(&self) -> ErrorKind {
        match self {
            ParquetError::Store { .. } | ParquetError::Read { .. } | ParquetError::Task { .. } => {
                ErrorKind::Retry
            }
            ParquetError::Config { .. } | ParquetError::Denied { .. } => ErrorKind::WaitForOperator,
            ParquetError::Corrupt { .. } => ErrorKind::WaitForOperator,
            ParquetError::Parquet { .. } | ParquetError::Arrow { .. } => ErrorKind::Stop,
        }
    }
}

impl From<ParquetError> for headwater_core::Error {
    fn from(error: ParquetError) -> Self {
        headwater_core::Error::component("parquet sink", error)
    }
}
