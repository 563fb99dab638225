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

    #[error("cannot decode binlog event {event} of {table} in binlog file {file} at position {offset}: {source}. {integrity} (the event: `mysqlbinlog -v --start-position={offset} {file}`, `mariadb-binlog` on MariaDB)")]
    Decode {
        /// The event type, and for rows the kind (`WRITE_ROWS`, …).
        event: String,
        /// `table `db`.`t``, or what is known when the event names none.
        table: String,
        file: String,
        offset: u64,
        integrity: Integrity,
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

    #[error("the source's state file {path}: {reason}; check the data directory's permissions and free space")]
    State { path: String, reason: String },

    #[error("the checkpoint {position} is a binlog position on server `{recorded}`, but {url} is server `{found}`, where that position means nothing. Point url back at `{recorded}`; or resume by GTID (resume_by = \"gtid\", with GTIDs in the binlog) across a failover; or start afresh with a new snapshot by renaming the source (or removing {state_file} and the source's topics)")]
    ServerMoved {
        position: String,
        recorded: String,
        found: String,
        url: String,
        state_file: String,
    },

    #[error("{op} {path} (a transaction larger than transaction_buffer): {source}; check spill_dir's free space and permissions")]
    Spill {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("appending to the log failed: {0}")]
    Append(#[source] headwater_core::Error),

    #[error("the MySQL source's {task} task ended while the stream ran ({reason}); the source restarts and resumes from the log's checkpoint")]
    HelperEnded { task: &'static str, reason: String },
}

impl From<crate::driver::DriverError> for MySqlError {
    fn from(error: crate::driver::DriverError) -> Self {
        match error {
            crate::driver::DriverError::Append(inner) => MySqlError::Append(inner),
            crate::driver::DriverError::HelperEnded { task, reason } => {
                MySqlError::HelperEnded { task, reason }
            }
        }
    }
}

/// What an event's checksum says about an event that did not decode: who
/// an operator should call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// Its CRC32 matched: the bytes are what the server wrote, so the
    /// decoder is at fault.
    ChecksumVerified,
    /// The server sends no checksums (`binlog_checksum=NONE`).
    NoChecksum,
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Integrity::ChecksumVerified => "The event's CRC32 checksum matched, so the binlog is intact and Headwater's decoder is at fault: report a Headwater bug with the server version, the table's SHOW CREATE TABLE and the event",
            Integrity::NoChecksum => "The server sends no event checksums (binlog_checksum=NONE), so corruption cannot be told from a decoder bug: if the server's own tool decodes the event, report a Headwater bug with the server version and the event; if it cannot, the binlog is corrupt. binlog_checksum=CRC32 tells the two apart",
        })
    }
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
            MySqlError::Stalled { .. }
            | MySqlError::Checksum { .. }
            | MySqlError::HelperEnded { .. } => ErrorKind::Retry,
            MySqlError::PurgedBinlog { .. }
            | MySqlError::Schema { .. }
            | MySqlError::Prerequisite { .. }
            | MySqlError::State { .. }
            | MySqlError::ServerMoved { .. } => ErrorKind::WaitForOperator,
            MySqlError::Decode { .. } | MySqlError::Config(_) | MySqlError::Shutdown => {
                ErrorKind::Stop
            }
            MySqlError::Spill { source, .. } => headwater_core::error::io_kind(source),
            MySqlError::Append(e) => e.kind(),
        }
    }
}

pub type Result<T, E = MySqlError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_error(integrity: Integrity) -> String {
        MySqlError::Decode {
            event: "WRITE_ROWS".into(),
            table: "table shop.orders".into(),
            file: "mariadb-bin.000007".into(),
            offset: 4711,
            integrity,
            source: DecodeError::new("row null bitmap", "needs 5 bytes at offset 9, only 2 left"),
        }
        .to_string()
    }

    #[test]
    fn a_decode_error_names_table_file_position_and_whom_to_call() {
        let verified = decode_error(Integrity::ChecksumVerified);
        for part in [
            "WRITE_ROWS",
            "table shop.orders",
            "binlog file mariadb-bin.000007 at position 4711",
            "row null bitmap: needs 5 bytes",
            "checksum matched",
            "decoder is at fault",
            "--start-position=4711 mariadb-bin.000007",
        ] {
            assert!(verified.contains(part), "{part:?} missing from: {verified}");
        }
        let unchecked = decode_error(Integrity::NoChecksum);
        assert!(
            unchecked.contains("binlog_checksum=NONE") && unchecked.contains("corrupt"),
            "{unchecked}"
        );
        assert!(!unchecked.contains("decoder is at fault"), "{unchecked}");
    }
}
