//! `[sources.NAME]`: one entry per source, chosen by `type`.

use serde::Deserialize;

use headwater_core::config::Problems;

use crate::mysql::MySqlConfig;
use crate::postgres::PostgresConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    Postgres(PostgresConfig),
    Mysql(MySqlConfig),
}

impl SourceConfig {
    /// Checks the entry `sources.{name}` without any I/O.
    pub fn validate(&self, name: &str, problems: &mut Problems) {
        match self {
            SourceConfig::Postgres(pg) => pg.validate(&format!("sources.{name}"), problems),
            SourceConfig::Mysql(my) => my.validate(&format!("sources.{name}"), problems),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Mysql(_) => "mysql",
        }
    }
}
