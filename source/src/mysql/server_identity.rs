//! Which server a binlog-position checkpoint was taken on, so that a source
//! whose `url` now reaches another server does not resume at a file and
//! offset that mean nothing there.
//!
//! A binlog position (`mysql-bin.000042:1337`) is one server's; a GTID set
//! is the whole replication topology's. `{state_dir}/mysql-server.checkpoint`
//! records the server the source last streamed from. On resume against a
//! different server, a GTID resume goes on (a failover: recorded anew); a
//! position resume is refused with an error that names both servers.
//! A state directory from before this file existed adopts the server it
//! finds.

use std::path::{Path, PathBuf};

use headwater_core::CheckpointStore;
use serde::{Deserialize, Serialize};

use super::conn::Sql;
use super::error::{MySqlError, Result};

const FILE: &str = "mysql-server";

/// A server, as far as it can tell itself apart from others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// MySQL's `@@server_uuid`; MariaDB has none, so there it is
    /// `server_id=N` with the binlog's base name, which a clone's
    /// configuration may share (then a move goes unnoticed, as before).
    pub server: String,
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.server)
    }
}

impl ServerIdentity {
    pub async fn of(sql: &mut Sql) -> Result<Self> {
        let server = if sql.mariadb {
            let id = sql.variable("server_id").await?.unwrap_or_default();
            let base = sql.variable("log_bin_basename").await?.unwrap_or_default();
            format!("server_id={id} binlog={base}")
        } else {
            sql.variable("server_uuid").await?.unwrap_or_default()
        };
        Ok(ServerIdentity { server })
    }
}

/// What to do on resuming against `found`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The recorded server, or none recorded: go on.
    Same,
    /// Another server, but the resume is by GTID set: go on and record it.
    FailedOver,
    /// Another server and a binlog position: refuse.
    Moved,
}

pub fn verdict(
    recorded: Option<&ServerIdentity>,
    found: &ServerIdentity,
    by_gtid: bool,
) -> Verdict {
    match recorded {
        Some(r) if r != found && by_gtid => Verdict::FailedOver,
        Some(r) if r != found => Verdict::Moved,
        _ => Verdict::Same,
    }
}

/// The server file of a source's state directory.
#[derive(Clone, Debug)]
pub struct ServerFile {
    dir: PathBuf,
}

impl ServerFile {
    pub fn new(state_dir: &Path) -> Self {
        ServerFile {
            dir: state_dir.to_owned(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{FILE}.checkpoint"))
    }

    fn error(&self, e: impl std::fmt::Display) -> MySqlError {
        MySqlError::State {
            path: self.path().display().to_string(),
            reason: e.to_string(),
        }
    }

    pub async fn load(&self) -> Result<Option<ServerIdentity>> {
        CheckpointStore::load_in(self.dir.clone(), FILE)
            .await
            .map_err(|e| self.error(e))
    }

    /// Writes it durably.
    pub async fn save(&self, identity: &ServerIdentity) -> Result<()> {
        CheckpointStore::save_in(self.dir.clone(), FILE, identity.clone())
            .await
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(s: &str) -> ServerIdentity {
        ServerIdentity { server: s.into() }
    }

    #[test]
    fn only_a_position_resume_on_another_server_is_refused() {
        let (a, b) = (server("a"), server("b"));
        assert_eq!(verdict(None, &a, false), Verdict::Same);
        assert_eq!(verdict(Some(&a), &a, false), Verdict::Same);
        assert_eq!(verdict(Some(&a), &b, true), Verdict::FailedOver);
        assert_eq!(verdict(Some(&a), &b, false), Verdict::Moved);
    }
}
