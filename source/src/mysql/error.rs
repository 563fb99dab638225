//! The MySQL source's errors and the policy for each.

use headwater_core::error::{Classify, ErrorKind};

use super::binlog::reader::DecodeError;

/// Server error codes we treat specially.
pub mod codes {
    /// ER_MASTER_FATAL_ERROR_READING_BINLOG: the requested binlog position
    /// or GTID is gone (purged) or invalid.
    pub const FATAL_READING_BINLOG: u16 = 1236;
    pub const ACCESS_DENIED: u16 = 1045;
    pub const DB_ACCESS_DENIED: u16 = 1044;
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    pub const TABLE_ACCESS_DENIED: u16 = 1142;
    /// Another replica with the same server_id connected.
    pub const SLAVE_SAME_ID: u16 = 1593;
}

#[derive(Debug, thiserror::Error)]
pub enum MySqlError {
    #[error("cannot connect to MySQL at {url}: {source}; check that the server is up and the URL, user and password are right")]
    Connect {
        url: String,
        #[source]
        source: mysql_async::Error,
    },

    #[error("{what} failed on {url}: {source}")]
    Query {
        what: String,
        url: String,
        #[source]
        source: mysql_async::Error,
    },

    #[error("binlog stream from {url} failed at {position}: {source}")]
    Stream {
        url: String,
        position: String,
        #[source]
        source: mysql_async::Error,
    },

    #[error("the binlog stream from {url} stopped answering at {position} (no event or heartbeat for {seconds}s); reconnecting")]
    Stalled {
        url: String,
        position: String,
        seconds: u64,
    },

    #[error("the server cannot send the binlog from {position} ({message}): the binlog files holding it were purged (or the position is invalid). Changes after that position are lost to this source; take a new snapshot: stop headwater, remove this source's checkpoint (or rename the source), make sure `snapshot = \"initial\"`, and start again. To avoid this, keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days)")]
    PurgedBinlog { position: String, message: String },

    #[error("cannot decode binlog event {event} at {position}: {source}; this is a bug or corrupt binlog — report it with the server version")]
    Decode {
        event: String,
        position: String,
        #[source]
        source: DecodeError,
    },

    #[error("binlog event at {position} has checksum {found:08x}, computed {computed:08x}: corrupt in transit or on disk; reconnecting")]
    Checksum {
        position: String,
        found: u32,
        computed: u32,
    },

    #[error("table {table}: {reason}")]
    Schema { table: String, reason: String },

    #[error("the server at {url} is not set up for change data capture: {reason}")]
    Prerequisite { url: String, reason: String },

    #[error("mysql source misconfigured: {0}")]
    Config(String),

    #[error("shutting down")]
    Shutdown,

    #[error("{op} {path} (a transaction larger than transaction_buffer): {source}; check spill_dir's free space and permissions")]
    Spill {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("appending to the log failed: {0}")]
    Append(#[source] headwater_core::Error),
}

impl MySqlError {
    pub fn query(what: impl Into<String>, url: &str, source: mysql_async::Error) -> Self {
        MySqlError::Query {
            what: what.into(),
            url: url.to_owned(),
            source,
        }
    }
}

/// The policy for an error from the driver.
pub fn driver_kind(error: &mysql_async::Error) -> ErrorKind {
    match error {
        mysql_async::Error::Server(e) => match e.code {
            codes::ACCESS_DENIED
            | codes::DB_ACCESS_DENIED
            | codes::SPECIFIC_ACCESS_DENIED
            | codes::TABLE_ACCESS_DENIED
            | codes::SLAVE_SAME_ID => ErrorKind::WaitForOperator,
            _ => ErrorKind::Retry,
        },
        mysql_async::Error::Url(_) => ErrorKind::Stop,
        _ => ErrorKind::Retry,
    }
}

impl Classify for MySqlError {
    fn kind(&self) -> ErrorKind {
        match self {
            MySqlError::Connect { source, .. }
            | MySqlError::Query { source, .. }
            | MySqlError::Stream { source, .. } => driver_kind(source),
            MySqlError::Stalled { .. } | MySqlError::Checksum { .. } => ErrorKind::Retry,
            MySqlError::PurgedBinlog { .. }
            | MySqlError::Schema { .. }
            | MySqlError::Prerequisite { .. } => ErrorKind::WaitForOperator,
            MySqlError::Decode { .. } | MySqlError::Config(_) | MySqlError::Shutdown => {
                ErrorKind::Stop
            }
            MySqlError::Spill { source, .. } => headwater_core::error::io_kind(source),
            MySqlError::Append(e) => e.kind(),
        }
    }
}

pub type Result<T, E = MySqlError> = std::result::Result<T, E>;
