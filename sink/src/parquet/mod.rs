//! Parquet archives on object storage: the sink that writes them and the
//! reader `headwater replay` uses.
//!
//! Layout: `{topic}/date=YYYY-MM-DD/hour=HH/{partition}-{first}-{last}.parquet`
//! under the archive URL. `date`/`hour` are the UTC commit time of the
//! file's first record (a file never spans two commit hours); a file whose
//! first record has no commit time uses the hour it was opened in. See
//! [`schema`] for the columns and the type of every value kind, [`sink`]
//! for the delivery contract.

pub mod archive;
pub mod config;
mod decode;
pub mod encode;
pub mod error;
mod kind;
pub mod prepare;
pub mod schema;
pub mod sink;
pub mod special;
pub mod store;
pub mod writer;

pub use archive::{read_archive, ArchiveFilter};
pub use config::ParquetConfig;
pub use error::ParquetError;
pub use sink::ParquetSink;
pub use store::{Archive, StoreOptions};
