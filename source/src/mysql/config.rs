//! `[sources.NAME]` with `type = "mysql"`.

use serde::Deserialize;

use headwater_core::config::{glob_match, Problems};
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
    /// Seconds between the server's heartbeats on an idle stream; the
    /// stream is reconnected after three missed beats.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u32,
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

const fn default_heartbeat_secs() -> u32 {
    5
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
            heartbeat_secs: default_heartbeat_secs(),
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
        if self.heartbeat_secs == 0 || self.heartbeat_secs > 3600 {
            problems.add(
                format!("{key}.heartbeat_secs"),
                "must be between 1 and 3600",
            );
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
