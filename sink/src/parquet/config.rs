//! `[sinks.NAME]` with `type = "parquet"`.

use serde::Deserialize;

use headwater_core::config::{ByteSize, HumanDuration, Problems};
use headwater_core::Secret;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetConfig {
    /// Where the archive goes: `file:///path`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`.
    pub url: String,
    /// Topic globs to archive (`shop.*`).
    pub topics: Vec<String>,
    /// Roll a file after this many rows…
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// …or this many bytes (encoded, before compression)…
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// …or when its first row is this old.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    #[serde(default)]
    pub compression: Compression,
    /// Object-store options (S3 endpoint, region, credentials); when absent,
    /// the standard environment variables (`AWS_…`) apply.
    #[serde(default)]
    pub s3: S3Options,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// Allow `http://` endpoints (a local S3 server).
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    None,
}

fn default_max_rows() -> u64 {
    1_000_000
}
fn default_max_bytes() -> ByteSize {
    ByteSize(128 << 20)
}
fn default_max_age() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

impl ParquetConfig {
    pub fn validate(&self, key: &str, problems: &mut Problems) {
        const SCHEMES: [&str; 4] = ["file://", "s3://", "gs://", "az://"];
        if !SCHEMES.iter().any(|s| self.url.starts_with(s)) {
            problems.add(
                format!("{key}.url"),
                format!(
                    "`{}` must start with one of {}",
                    self.url,
                    SCHEMES.join(", ")
                ),
            );
        }
        if self.topics.is_empty() {
            problems.add(
                format!("{key}.topics"),
                "lists no topic; name at least one (`shop.*`)",
            );
        }
        if self.max_rows == 0 {
            problems.add(format!("{key}.max_rows"), "must be more than zero");
        }
    }
}
