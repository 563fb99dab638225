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
    /// Replication slot; default `headwater_{database}_{source name}`
    /// (slot names are cluster-wide; the database keeps two sources of one
    /// name apart).
    pub slot: Option<String>,
    /// Publication; default `headwater_{source name}` (publications
    /// belong to one database).
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
    /// `headwater run --resnapshot SOURCE`; not a configuration key.
    #[serde(skip)]
    pub resnapshot: Resnapshot,
}

/// The operator's request to drop the source's slot (even one this data
/// directory cannot prove it created) and snapshot again. Clones share it,
/// so the supervisor's later attempts see it cleared once the new snapshot
/// is durable, and do not snapshot again.
#[derive(Clone, Debug, Default)]
pub struct Resnapshot(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Resnapshot {
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn done(&self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
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
            resnapshot: Resnapshot::default(),
        }
    }

    /// The slot name: configured, or `headwater_{database}_{source}`.
    pub fn slot_name(&self, source: &str, database: &str) -> String {
        self.slot
            .clone()
            .unwrap_or_else(|| object_name(&[database, source]))
    }

    /// The default slot name before it included the database; a slot of
    /// that name that the source's log proves it used is kept.
    pub fn legacy_slot_name(&self, source: &str) -> String {
        object_name(&[source])
    }

    /// The publication name: configured, or `headwater_{source}`.
    pub fn publication_name(&self, source: &str) -> String {
        self.publication
            .clone()
            .unwrap_or_else(|| object_name(&[source]))
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

/// `headwater_{part}_{part}…` with anything but a-z, 0-9 and _ replaced by
/// _; past PostgreSQL's 63 bytes, cut and ended with a hash of the whole,
/// so long names that share a beginning still differ.
fn object_name(parts: &[&str]) -> String {
    let mut name = String::from("headwater");
    for part in parts {
        name.push('_');
        name.extend(part.chars().map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        }));
    }
    if name.len() <= 63 {
        return name;
    }
    let hash = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
    format!("{}_{:08x}", &name[..54], hash as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let config = PostgresConfig::new("postgres://u@h/db", vec!["public.*".into()]);
        assert_eq!(config.slot_name("Shop-EU", "eu"), "headwater_eu_shop_eu");
        assert_eq!(config.legacy_slot_name("Shop-EU"), "headwater_shop_eu");
        assert_eq!(config.publication_name("shop"), "headwater_shop");
        let long = "a_database_name_long_enough_to_need_cutting_it_short";
        let a = config.slot_name("shop_1", long);
        let b = config.slot_name("shop_2", long);
        assert_eq!(a.len(), 63);
        assert_ne!(a, b);
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
