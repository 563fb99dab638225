//! `[sources.NAME]` with `type = "mysql"`.

use serde::Deserialize;

use std::time::Duration;

use headwater_core::config::{glob_match, ByteSize, HumanDuration, Problems};
use headwater_core::SecretUrl;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MySqlConfig {
    /// `mysql://user:pass@host:port`
    pub url: SecretUrl,
    /// The replica id this source uses; unique among the server's replicas.
    pub server_id: u32,
    /// Tables to capture, `database.table`, globs allowed (`shop.*`).
    pub tables: Vec<String>,
    /// `initial`: with no checkpoint, read every captured table first, then
    /// stream from the position the snapshot corresponds to. `never`: with
    /// no checkpoint, stream from the server's current binlog end.
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// How the snapshot's start position is made consistent with the rows
    /// it reads (see [`SnapshotLocking`]).
    #[serde(default)]
    pub snapshot_locking: SnapshotLocking,
    /// How long the snapshot's lock may wait (behind a long transaction or
    /// DDL, while writers queue behind the lock request) before it gives
    /// up and is retried later, as Debezium's `snapshot.lock.timeout.ms`;
    /// whole seconds (the server's `lock_wait_timeout`).
    #[serde(default = "default_snapshot_lock_timeout")]
    pub snapshot_lock_timeout: HumanDuration,
    /// Rows per primary-key-ordered snapshot chunk (one SELECT each).
    #[serde(default = "default_chunk_size")]
    pub snapshot_chunk_size: u32,
    /// How a restart resumes: `gtid` (when the checkpoint has a GTID set;
    /// MariaDB) or `position` (binlog file + offset).
    #[serde(default)]
    pub resume_by: ResumeBy,
    /// Events gathered from consecutive small transactions into one append.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// The server's heartbeat period on an idle stream; the stream is
    /// reconnected after three missed beats.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
    /// Bytes of one transaction's row events kept in memory until its
    /// commit; past that the rest waits in a file in `spill_dir`, so a huge
    /// transaction passes in bounded memory.
    #[serde(default = "default_transaction_buffer")]
    pub transaction_buffer: ByteSize,
    /// Where large transactions spill; default the system temp directory.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Where the source records the server its checkpoint belongs to. The
    /// daemon sets it to a directory of its data directory; without one,
    /// a binlog position is resumed on whatever server `url` reaches.
    pub state_dir: Option<std::path::PathBuf>,
}

/// How the snapshot pins the binlog position its rows correspond to
/// (Debezium's `snapshot.locking.mode`, adapted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotLocking {
    /// MariaDB: `none` (its snapshot transaction reports its own binlog
    /// position). MySQL: `global`, or `tables` when the user may not take
    /// the global read lock (no RELOAD).
    #[default]
    Auto,
    /// `FLUSH TABLES WITH READ LOCK` while the position is read and the
    /// snapshot transaction starts (needs RELOAD); every write on the
    /// server waits for that moment.
    Global,
    /// `LOCK TABLES … READ` on the captured tables only, on a second
    /// connection, while the position is read and the snapshot transaction
    /// starts (needs LOCK TABLES); writes to the captured tables wait for
    /// that moment.
    Tables,
    /// No lock: the position comes from the snapshot transaction itself
    /// (`binlog_snapshot_file` / `_position`). MariaDB only.
    None,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    #[default]
    Initial,
    Never,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResumeBy {
    #[default]
    Gtid,
    Position,
}

const fn default_chunk_size() -> u32 {
    10_000
}

const fn default_max_batch_events() -> usize {
    4096
}

const fn default_heartbeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

const fn default_snapshot_lock_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

const fn default_transaction_buffer() -> ByteSize {
    ByteSize(64 << 20)
}

impl MySqlConfig {
    /// A config with the defaults for everything but the essentials.
    pub fn new(url: impl Into<String>, server_id: u32, tables: Vec<String>) -> Self {
        MySqlConfig {
            url: SecretUrl::new(url),
            server_id,
            tables,
            snapshot: SnapshotMode::default(),
            snapshot_chunk_size: default_chunk_size(),
            resume_by: ResumeBy::default(),
            max_batch_events: default_max_batch_events(),
            heartbeat: default_heartbeat(),
            snapshot_locking: SnapshotLocking::default(),
            snapshot_lock_timeout: default_snapshot_lock_timeout(),
            transaction_buffer: default_transaction_buffer(),
            spill_dir: None,
            state_dir: None,
        }
    }

    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if !self.url.expose().starts_with("mysql://") {
            problems.add(
                format!("{key}.url"),
                format!("`{}` is not a mysql:// URL", self.url),
            );
        }
        if self.server_id == 0 {
            problems.add(
                format!("{key}.server_id"),
                "must not be 0 (the server refuses replicas with id 0)",
            );
        }
        if self.tables.is_empty() {
            problems.add(
                format!("{key}.tables"),
                "lists no table; name at least one (`shop.*` for a whole database)",
            );
        }
        for pattern in &self.tables {
            if pattern.split('.').count() != 2 {
                problems.add(
                    format!("{key}.tables"),
                    format!("`{pattern}` is not `database.table` (globs allowed: `shop.*`)"),
                );
            }
        }
        if self.snapshot_chunk_size == 0 {
            problems.add(format!("{key}.snapshot_chunk_size"), "must be at least 1");
        }
        if self.max_batch_events == 0 {
            problems.add(format!("{key}.max_batch_events"), "must be at least 1");
        }
        if self.snapshot_lock_timeout.0 < Duration::from_secs(1) {
            problems.add(
                format!("{key}.snapshot_lock_timeout"),
                "must be at least 1s",
            );
        }
        if self.transaction_buffer.0 == 0 {
            problems.add(
                format!("{key}.transaction_buffer"),
                "must be at least 1 byte (it is the memory one transaction may take before spilling to disk)",
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.heartbeat.0) {
            problems.add(format!("{key}.heartbeat"), "must be between 1s and 1h");
        }
    }

    /// Whether `database.table` is captured.
    pub fn captures(&self, database: &str, table: &str) -> bool {
        self.tables.iter().any(|pattern| {
            pattern
                .split_once('.')
                .is_some_and(|(d, t)| glob_match(d, database) && glob_match(t, table))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_by_database_and_table() {
        let c = MySqlConfig::new("mysql://u@h", 5, vec!["shop.*".into(), "crm.people".into()]);
        assert!(c.captures("shop", "orders"));
        assert!(c.captures("crm", "people"));
        assert!(!c.captures("crm", "notes"));
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut c = MySqlConfig::new("postgres://x", 0, vec!["nodot".into()]);
        c.snapshot_chunk_size = 0;
        let mut problems = Problems::default();
        c.validate("sources.x", &mut problems);
        assert!(problems.iter().count() >= 4, "{problems:?}");
    }
}
