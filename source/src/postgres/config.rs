//! `[sources.NAME]` with `type = "postgres"`.

use serde::Deserialize;

use headwater_core::config::{ByteSize, HumanDuration, Problems};
use headwater_core::SecretUrl;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:pass@host:port/db?sslmode=…`, or a socket directory
    /// as host (`postgres://user@%2Fvar%2Frun%2Fpostgresql/db`).
    pub url: SecretUrl,
    /// Tables to capture, `schema.table`, globs allowed (`public.*`).
    pub tables: Vec<String>,
    /// Replication slot; default `headwater_{source name}`.
    pub slot: Option<String>,
    /// Publication; default `headwater_{source name}`.
    pub publication: Option<String>,
    #[serde(default)]
    pub snapshot: SnapshotMode,
    /// Emit a heartbeat message this often while captured tables are idle.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
    /// Binary pgoutput (PostgreSQL 14+): `auto` uses it when the server
    /// supports it and every captured column has a type Headwater decodes
    /// exactly from binary; otherwise text.
    #[serde(default)]
    pub binary: BinaryMode,
    /// Ask the server to stream large in-progress transactions (protocol
    /// version 2, PostgreSQL 14+) instead of spilling them on its own disk.
    #[serde(default = "default_true")]
    pub streaming: bool,
    /// Most events in one batch handed to the log; a larger transaction is
    /// split over several batches. Small transactions are coalesced up to it.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// Memory for one streamed in-progress transaction before it spills to
    /// a file in `spill_dir`.
    #[serde(default = "default_stream_buffer")]
    pub stream_buffer: ByteSize,
    /// Where streamed transactions spill; default the system temp directory.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Where the source keeps its own state (the last schema version of
    /// each table, so versions continue across restarts). The daemon sets
    /// it to a directory of its data directory; without one, versions
    /// start again at 1 in every process.
    pub state_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryMode {
    #[default]
    Auto,
    /// Like `auto`, but says so in the log when it has to fall back to text.
    On,
    Off,
}

const fn default_true() -> bool {
    true
}

const fn default_max_batch_events() -> usize {
    8192
}

const fn default_stream_buffer() -> ByteSize {
    ByteSize(64 << 20)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Copy existing rows once, when the slot is created, then stream.
    #[default]
    Initial,
    /// Stream changes only.
    Never,
}

fn default_heartbeat() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

impl PostgresConfig {
    /// A configuration with every default, for building one in code.
    pub fn new(url: impl Into<String>, tables: Vec<String>) -> Self {
        PostgresConfig {
            url: SecretUrl::new(url),
            tables,
            slot: None,
            publication: None,
            snapshot: SnapshotMode::Initial,
            heartbeat: default_heartbeat(),
            binary: BinaryMode::Auto,
            streaming: true,
            max_batch_events: default_max_batch_events(),
            stream_buffer: default_stream_buffer(),
            spill_dir: None,
            state_dir: None,
        }
    }

    /// The slot name: configured, or `headwater_{source}`.
    pub fn slot_name(&self, source: &str) -> String {
        self.slot
            .clone()
            .unwrap_or_else(|| default_object_name(source))
    }

    /// The publication name: configured, or `headwater_{source}`.
    pub fn publication_name(&self, source: &str) -> String {
        self.publication
            .clone()
            .unwrap_or_else(|| default_object_name(source))
    }

    pub fn validate(&self, key: &str, problems: &mut Problems) {
        let url = self.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.add(
                format!("{key}.url"),
                format!("`{}` is not a postgres:// URL", self.url),
            );
        }
        if self.tables.is_empty() {
            problems.add(
                format!("{key}.tables"),
                "lists no table; name at least one (`public.*` for a whole schema)",
            );
        }
        for (i, table) in self.tables.iter().enumerate() {
            if table.split('.').count() != 2 {
                problems.add(
                    format!("{key}.tables[{i}]"),
                    format!("`{table}` is not `schema.table`"),
                );
            }
        }
        if self.max_batch_events == 0 {
            problems.add(format!("{key}.max_batch_events"), "must be at least 1");
        }
        if self.heartbeat.0.is_zero() {
            problems.add(
                format!("{key}.heartbeat"),
                "must be longer than 0s (write \"30s\")",
            );
        }
        for (field, name) in [("slot", &self.slot), ("publication", &self.publication)] {
            if let Some(name) = name {
                let valid = !name.is_empty()
                    && name.len() <= 63
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    problems.add(
                        format!("{key}.{field}"),
                        format!("`{name}` must be 1-63 characters of a-z, 0-9 and _"),
                    );
                }
            }
        }
    }
}

/// `headwater_{source}` with anything but a-z, 0-9 and _ replaced by _.
fn default_object_name(source: &str) -> String {
    let cleaned: String = source
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    format!("headwater_{cleaned}").chars().take(63).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let config = PostgresConfig::new("postgres://u@h/db", vec!["public.*".into()]);
        assert_eq!(config.slot_name("Shop-EU"), "headwater_shop_eu");
        assert_eq!(config.publication_name("shop"), "headwater_shop");
        let mut problems = Problems::new();
        config.validate("sources.shop", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut config = PostgresConfig::new("mysql://u@h/db", vec!["orders".into()]);
        config.max_batch_events = 0;
        config.slot = Some("Bad-Name".into());
        let mut problems = Problems::new();
        config.validate("sources.shop", &mut problems);
        let all: Vec<&str> = problems.iter().collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.iter().any(|p| p.contains("sources.shop.slot")));
    }
}
