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
    /// …or when the file reaches this many bytes (encoded and compressed,
    /// plus what is buffered for the next row group)…
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// …or when its first row is this old.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    #[serde(default)]
    pub compression: Compression,
    /// Declared decimals of 39–76 digits: `decimal256` (exact Parquet
    /// DECIMAL; DuckDB reads it as DOUBLE, Spark/Trino/Snowflake refuse
    /// the file) or `text` (the exact digits as a string, readable
    /// everywhere). Up to 38 digits is always a Parquet DECIMAL.
    #[serde(default)]
    pub wide_decimals: WideDecimals,
    /// A row group is closed (encoded, compressed, kept in the file's
    /// buffer) at this many bytes of column data.
    #[serde(default = "default_row_group_bytes")]
    pub row_group_bytes: ByteSize,
    /// Memory bound for every open file together: past it the largest open
    /// file is uploaded early (it is then smaller than `max_bytes`).
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: ByteSize,
    /// Files of this size or more are uploaded in parts (multipart upload).
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: ByteSize,
    /// How long one request to the store may take before it is abandoned
    /// (the sink then fails with a retryable error).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
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
pub enum WideDecimals {
    #[default]
    Decimal256,
    Text,
}

impl WideDecimals {
    /// The widest declared precision stored as an Arrow decimal.
    pub fn max_precision(self) -> u32 {
        match self {
            WideDecimals::Decimal256 => super::schema::MAX_DECIMAL_PRECISION,
            WideDecimals::Text => 38,
        }
    }
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
fn default_row_group_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
/// With the row-group default this holds a row group for six busy
/// partitions, and keeps the whole daemon within 200 MB while the sink
/// drains a large backlog at full speed (measured: benches/pipeline.rs).
fn default_max_buffered_bytes() -> ByteSize {
    ByteSize(96 << 20)
}
fn default_multipart_threshold() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

impl ParquetConfig {
    /// Builds the sink (after [`ParquetConfig::validate`]); the only I/O is
    /// creating a `file://` directory.
    pub async fn build(&self) -> Result<super::ParquetSink, super::ParquetError> {
        super::ParquetSink::new(self).await
    }
    /// A config with every default, for `url` and `topics` (tests, replay).
    pub fn new(url: impl Into<String>, topics: Vec<String>) -> Self {
        ParquetConfig {
            url: url.into(),
            topics,
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_age: default_max_age(),
            compression: Compression::default(),
            wide_decimals: WideDecimals::default(),
            row_group_bytes: default_row_group_bytes(),
            max_buffered_bytes: default_max_buffered_bytes(),
            multipart_threshold: default_multipart_threshold(),
            request_timeout: default_request_timeout(),
            s3: S3Options::default(),
        }
    }

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
        if self.max_bytes.0 < 1 << 10 {
            problems.add(format!("{key}.max_bytes"), "must be at least 1KiB");
        }
        if self.max_age.0.is_zero() {
            problems.add(format!("{key}.max_age"), "must be more than zero (\"5m\")");
        }
        if self.row_group_bytes.0 < 1 << 10 {
            problems.add(format!("{key}.row_group_bytes"), "must be at least 1KiB");
        }
        if self.max_buffered_bytes.0 < self.max_bytes.0.min(self.row_group_bytes.0) {
            problems.add(
                format!("{key}.max_buffered_bytes"),
                "must be at least the smaller of max_bytes and row_group_bytes",
            );
        }
        if self.multipart_threshold.0 < 5 << 20 {
            problems.add(
                format!("{key}.multipart_threshold"),
                "must be at least 5MiB (the smallest part S3 accepts)",
            );
        }
        if self.request_timeout.0.is_zero() {
            problems.add(
                format!("{key}.request_timeout"),
                "must be more than zero (\"30s\")",
            );
        }
        if self
            .s3
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
            && !self.s3.allow_http
        {
            problems.add(
                format!("{key}.s3.allow_http"),
                "the endpoint is http://; set allow_http = true for a local S3 server",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParquetConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_validate() {
        let c = parse("url = \"s3://b/p\"\ntopics = [\"shop.*\"]");
        let mut problems = Problems::new();
        c.validate("sinks.a", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.compression, Compression::Zstd);
    }

    #[test]
    fn every_problem_is_reported() {
        let c = parse(
            "url = \"ftp://x\"\ntopics = []\nmax_rows = 0\n[s3]\nendpoint = \"http://127.0.0.1:9000\"",
        );
        let mut problems = Problems::new();
        c.validate("sinks.a", &mut problems);
        let all: Vec<&str> = problems.iter().collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.iter().any(|p| p.contains("sinks.a.s3.allow_http")));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<ParquetConfig>("url = \"file:///x\"\ntopics = []\nmax_row = 3")
            .unwrap_err();
        assert!(err.to_string().contains("max_row"), "{err}");
    }
}
