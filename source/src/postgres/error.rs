//! The PostgreSQL source's errors, each with the policy the supervisor
//! applies ([`Classify`]) and a message that names the object and the fix.

use std::io;

use headwater_core::error::{io_kind, Classify, ErrorKind};
use headwater_core::Lsn;

/// A PostgreSQL `ErrorResponse`: SQLSTATE, message, and the optional detail
/// and hint the server added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {target}: {source}; check that the server runs and the URL's host and port")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },

    #[error("the connection to PostgreSQL at {target} was lost ({context}): {source}; reconnecting resumes from the slot")]
    ConnectionLost {
        target: String,
        context: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("TLS with PostgreSQL at {target} failed: {reason}")]
    Tls { target: String, reason: String },

    #[error("PostgreSQL rejected the login of role `{user}`: {reason}; check the password in the URL and pg_hba.conf")]
    Auth { user: String, reason: String },

    #[error("PostgreSQL refused {context}: {error}")]
    Server { context: String, error: ServerError },

    #[error("{context}: {source}")]
    Sql {
        context: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("unexpected reply from PostgreSQL during {context}: {reason}")]
    Protocol {
        context: &'static str,
        reason: String,
    },

    #[error("cannot decode the pgoutput stream at LSN {lsn}: {reason}")]
    Decode { lsn: Lsn, reason: String },

    #[error("table {table} gained a column of type `{type_name}` that binary pgoutput cannot represent as text; reconnecting switches the stream to text mode")]
    NeedsTextMode { table: String, type_name: String },

    #[error("replication slot `{slot}` is in use by another process (PID {pid}); stop the other consumer (`SELECT pg_terminate_backend({pid})`) or give this source its own `slot`")]
    SlotActive { slot: String, pid: i32 },

    #[error("replication slot `{slot}` was invalidated (wal_status = lost: the server removed WAL the slot still needed, usually because more than max_slot_wal_keep_size of WAL piled up while the slot was not consumed); the changes after {} are gone. Recover with `SELECT pg_drop_replication_slot('{slot}')` and restart the source: it creates the slot again and takes a new snapshot (raise max_slot_wal_keep_size, or set it to -1, so it does not happen again)", since_text(*confirmed_flush))]
    SlotInvalidated {
        slot: String,
        /// The last position the slot's consumer confirmed, when known.
        confirmed_flush: Option<Lsn>,
    },

    #[error("replication slot `{slot}` belongs to database `{slot_database}`, not to `{database}` that this source reads; slot names are cluster-wide, so another source (perhaps another Headwater) uses this name. Headwater never drops it. Give this source its own slot: set `slot = \"...\"` in its configuration (the default, headwater_{{database}}_{{source}}, includes the database)")]
    SlotInOtherDatabase {
        slot: String,
        slot_database: String,
        database: String,
    },

    #[error("replication slot `{slot}` exists in database `{database}`, but this data directory did not create it (no identity in {state}), so it may be another Headwater's, whose unconsumed changes dropping it would lose. Either give source `{source_name}` its own `slot = \"...\"`, or, if the slot is this source's (its old data directory is gone), start once with `headwater run --resnapshot {source_name}`: that drops the slot and takes a new snapshot")]
    SlotNotOurs {
        slot: String,
        database: String,
        source_name: String,
        state: String,
    },

    #[error("publication `{publication}` in database `{database}` belongs to another Headwater source (its comment names source id {owner}); Headwater does not change it. Give source `{source_name}` its own `publication = \"...\"`, or take it over once with `headwater run --resnapshot {source_name}`")]
    PublicationNotOurs {
        publication: String,
        database: String,
        owner: String,
        source_name: String,
    },

    #[error("the data directory's identity for this source ({path}) was made for database `{recorded}`, but the source now reads `{database}`; its log and checkpoint do not describe this database. Use a new data directory (or source name) for the new database")]
    OtherDatabaseDataDir {
        path: String,
        recorded: String,
        database: String,
    },

    #[error("wal_level is `{current}` but logical replication needs `logical`: run `ALTER SYSTEM SET wal_level = logical` and restart PostgreSQL")]
    WalLevel { current: String },

    #[error("role `{user}` lacks the REPLICATION attribute: run `ALTER ROLE {user} REPLICATION`")]
    NoReplication { user: String },

    #[error(
        "role `{user}` cannot SELECT from table {table}: run `GRANT SELECT ON {table} TO {user}`"
    )]
    NoSelect { user: String, table: String },

    #[error("no table matches `{pattern}` in `tables`; create the table or fix the pattern")]
    NoTable { pattern: String },

    #[error("the connection URL is not usable: {reason}")]
    Url { reason: String },

    #[error("{op} {path}: {source}")]
    Spill {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },

    #[error("the source's state file {path}: {reason}; check that the data directory is writable (a damaged file may be removed: schema versions then start again at 1)")]
    State { path: String, reason: String },

    #[error("appending to the log: {0}")]
    Append(#[from] headwater_core::Error),

    #[error("the PostgreSQL source's {task} task ended while the stream ran ({reason}); the source restarts and resumes from its slot")]
    HelperEnded { task: &'static str, reason: String },

    #[error("shutting down")]
    Cancelled,
}

pub type PgResult<T> = Result<T, PgError>;

fn since_text(confirmed_flush: Option<Lsn>) -> String {
    match confirmed_flush {
        Some(lsn) => format!("the slot's last confirmed position {lsn}"),
        None => "the slot's last confirmed position".to_owned(),
    }
}

impl PgError {
    pub fn sql(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Sql {
            context: context.into(),
            source,
        }
    }

    pub fn protocol(context: &'static str, reason: impl Into<String>) -> Self {
        PgError::Protocol {
            context,
            reason: reason.into(),
        }
    }

    /// The SQLSTATE of a server-side error, if this is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server { error, .. } => Some(&error.code),
            PgError::Sql { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// The policy for a SQLSTATE: connection problems and server shutdowns are
/// transient; privileges, missing objects and configuration need a person.
fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // insufficient_privilege, invalid_authorization, undefined_object,
        // undefined_table, object_not_in_prerequisite_state (wal_level),
        // invalid_password
        "42501" | "28000" | "28P01" | "42704" | "42P01" | "55000" => ErrorKind::WaitForOperator,
        // object_in_use (slot active elsewhere): retry, the other may end.
        "55006" => ErrorKind::Retry,
        c if c.starts_with("08") || c.starts_with("57") || c.starts_with("53") => ErrorKind::Retry,
        c if c.starts_with("42") => ErrorKind::WaitForOperator,
        _ => ErrorKind::Retry,
    }
}

impl Classify for PgError {
    fn kind(&self) -> ErrorKind {
        match self {
            PgError::Connect { .. } | PgError::ConnectionLost { .. } => ErrorKind::Retry,
            PgError::NeedsTextMode { .. } | PgError::HelperEnded { .. } => ErrorKind::Retry,
            PgError::Tls { .. } | PgError::Auth { .. } => ErrorKind::WaitForOperator,
            PgError::Server { error, .. } => sqlstate_kind(&error.code),
            PgError::Sql { source, .. } => match source.code() {
                Some(code) => sqlstate_kind(code.code()),
                None => ErrorKind::Retry,
            },
            PgError::Protocol { .. } | PgError::Decode { .. } => ErrorKind::Stop,
            PgError::SlotActive { .. } => ErrorKind::Retry,
            PgError::SlotInvalidated { .. }
            | PgError::WalLevel { .. }
            | PgError::NoReplication { .. }
            | PgError::NoSelect { .. }
            | PgError::NoTable { .. }
            | PgError::SlotInOtherDatabase { .. }
            | PgError::SlotNotOurs { .. }
            | PgError::PublicationNotOurs { .. }
            | PgError::OtherDatabaseDataDir { .. } => ErrorKind::WaitForOperator,
            PgError::Url { .. } => ErrorKind::Stop,
            PgError::Spill { source, .. } => io_kind(source),
            PgError::State { .. } => ErrorKind::WaitForOperator,
            PgError::Append(inner) => inner.kind(),
            PgError::Cancelled => ErrorKind::Stop,
        }
    }
}

impl From<crate::driver::DriverError> for PgError {
    fn from(error: crate::driver::DriverError) -> Self {
        match error {
            crate::driver::DriverError::Append(inner) => PgError::Append(inner),
            crate::driver::DriverError::HelperEnded { task, reason } => {
                PgError::HelperEnded { task, reason }
            }
        }
    }
}

impl From<PgError> for headwater_core::Error {
    fn from(error: PgError) -> Self {
        match error {
            PgError::Append(inner) => inner,
            PgError::Cancelled => headwater_core::Error::Cancelled,
            other => headwater_core::Error::component("postgres source", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let lost = PgError::ConnectionLost {
            target: "127.0.0.1:5432".into(),
            context: "streaming",
            source: io::Error::from(io::ErrorKind::ConnectionReset),
        };
        assert_eq!(lost.kind(), ErrorKind::Retry);
        let slot = PgError::SlotActive {
            slot: "s".into(),
            pid: 42,
        };
        assert!(slot.to_string().contains("PID 42"));
        let invalid = PgError::SlotInvalidated {
            slot: "s".into(),
            confirmed_flush: Some(Lsn(1)),
        };
        assert_eq!(invalid.kind(), ErrorKind::WaitForOperator);
        assert!(invalid
            .to_string()
            .contains("pg_drop_replication_slot('s')"));
        let core: headwater_core::Error = lost.into();
        assert_eq!(core.kind(), ErrorKind::Retry);
    }
}
