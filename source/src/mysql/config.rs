//! `[sources.NAME]` with `type = "mysql"`.

use serde::Deserialize;

use headwater_core::config::Problems;
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
}

impl MySqlConfig {
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
    }
}
