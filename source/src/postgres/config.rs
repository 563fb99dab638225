//! `[sources.NAME]` with `type = "postgres"`.

use serde::Deserialize;

use headwater_core::config::{HumanDuration, Problems};
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
