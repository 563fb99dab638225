//! Core's error type and the policy vocabulary every crate's errors map to.

use std::path::PathBuf;

/// What the supervisor does with a failed component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Transient (network, a busy server): retry after a backoff.
    Retry,
    /// Needs a person (a permission, a dropped slot, a full disk): keep
    /// state, report, and retry only slowly until it is fixed.
    WaitForOperator,
    /// A bug or corrupt data: stop the component; retrying cannot help.
    Stop,
}

/// Implemented by every crate's error enum so the runtime can apply a
/// policy without knowing the crate.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("checkpoint file {path} is unreadable or corrupt ({reason}); it was left in place — restore it from a backup, or delete it to start this component from the beginning")]
    CorruptCheckpoint { path: PathBuf, reason: String },

    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },

    #[error("schema {id} is not in the schema registry at {dir}; the log refers to a schema that was never stored — the data directory is damaged")]
    MissingSchema { id: crate::SchemaId, dir: PathBuf },

    #[error("shutting down")]
    Cancelled,

    /// An error from another crate, with its policy already decided.
    #[error("{context}: {source}")]
    Component {
        context: String,
        kind: ErrorKind,
        #[source]
        source: BoxError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn decode(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Decode {
            what,
            reason: reason.into(),
        }
    }

    /// Wraps another crate's error, keeping its policy.
    pub fn component<E>(context: impl Into<String>, error: E) -> Self
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
    {
        Error::Component {
            context: context.into(),
            kind: error.kind(),
            source: Box::new(error),
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => io_kind(source),
            Error::CorruptCheckpoint { .. } | Error::MissingSchema { .. } => {
                ErrorKind::WaitForOperator
            }
            Error::Decode { .. } => ErrorKind::Stop,
            Error::Cancelled => ErrorKind::Stop,
            Error::Component { kind, .. } => *kind,
        }
    }
}

/// The policy for an I/O error: a full disk or a permission needs a person,
/// anything else may pass.
pub fn io_kind(error: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as K;
    match error.kind() {
        K::PermissionDenied | K::StorageFull | K::ReadOnlyFilesystem | K::QuotaExceeded => {
            ErrorKind::WaitForOperator
        }
        K::InvalidData | K::InvalidInput => ErrorKind::Stop,
        _ => ErrorKind::Retry,
    }
}
