//! The kinds of source, chosen by `type` in `[sources.NAME]`.
//!
//! A kind is its config type implementing [`SourceKind`] (build, `check`
//! through the built source, lag probe, `--resnapshot`), its position type
//! in `headwater_core::position`, and one line in [`KINDS`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};

use headwater_core::config::Problems;
use headwater_core::kind::Kind;
use headwater_core::{Position, Result, Source};

/// Every kind of source.
static KINDS: &[Kind<dyn SourceKind>] = &[
    headwater_core::kind!(
        "postgres",
        crate::postgres::PostgresConfig as dyn SourceKind
    ),
    headwater_core::kind!("mysql", crate::mysql::MySqlConfig as dyn SourceKind),
];

/// What a kind of source supplies, implemented by its config type.
#[async_trait]
pub trait SourceKind: fmt::Debug + Send + Sync + 'static {
    /// Checks the entry at `key` (`sources.NAME`) without any I/O.
    fn validate(&self, key: &str, problems: &mut Problems);

    /// The source `name` reads; its state and spill files go under `dirs`
    /// unless configured elsewhere.
    fn build(&self, name: &str, dirs: &SourceDirs) -> Box<dyn Source>;

    /// A connection that reports how far behind the source is.
    async fn lag_probe(&self, name: &str) -> Result<Box<dyn LagProbe>>;

    /// `--resnapshot`: why this kind cannot take a new snapshot on request,
    /// or `Ok` once it will at its next start.
    fn request_resnapshot(&self) -> std::result::Result<(), String> {
        Err("only PostgreSQL sources own a replication slot to take a new snapshot from".into())
    }
}

/// How many bytes of the database's change log a source has yet to read.
#[async_trait]
pub trait LagProbe: Send {
    /// `None`: unknown for now. `checkpoint` is the source's durable one.
    async fn lag_bytes(&mut self, checkpoint: Option<&Position>) -> Result<Option<i64>>;
}

/// Where a source keeps its files by default, under the daemon's data_dir.
#[derive(Clone, Debug)]
pub struct SourceDirs {
    /// Transactions too large for memory wait here.
    pub spill: PathBuf,
    /// Schema versions, slot and server identity, across restarts.
    pub state: PathBuf,
}

impl SourceDirs {
    pub fn under(data_dir: &Path, name: &str) -> Self {
        SourceDirs {
            spill: data_dir.join("spill").join(name),
            state: data_dir.join("sources").join(name),
        }
    }
}

/// A `[sources.NAME]` entry: its kind and that kind's config.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    type_name: &'static str,
    kind: Arc<dyn SourceKind>,
}

impl SourceConfig {
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    pub fn kind(&self) -> &dyn SourceKind {
        &*self.kind
    }

    /// The source `name`, its files under `data_dir` unless configured
    /// elsewhere.
    pub fn build(&self, name: &str, data_dir: &Path) -> Box<dyn Source> {
        self.kind.build(name, &SourceDirs::under(data_dir, name))
    }

    /// Checks the entry `sources.{name}` without any I/O.
    pub fn validate(&self, name: &str, problems: &mut Problems) {
        self.kind.validate(&format!("sources.{name}"), problems);
    }
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        headwater_core::kind::deserialize(d, "source", KINDS)
            .map(|(type_name, kind)| SourceConfig { type_name, kind })
    }
}
