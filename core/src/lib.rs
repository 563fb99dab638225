//! Headwater's shared vocabulary.
//!
//! Every other crate speaks in these types: a [`ChangeEvent`] carries rows of
//! [`Value`]s shaped by a [`TableSchema`], found at a [`Position`] in its
//! source. The [`Source`], [`Transform`] and [`Sink`] traits state the
//! durability contract the runtime relies on, and [`codec`] is the versioned
//! binary form a change event takes in the log.

pub mod checkpoint;
pub mod codec;
pub mod config;
pub mod decimal;
pub mod error;
pub mod event;
pub mod kind;
pub mod outbox;
pub mod position;
pub mod schema;
pub mod schema_registry;
pub mod secret;
pub mod sink;
pub mod source;
pub mod time;
pub mod topic;
pub mod transform;
pub mod value;

pub use checkpoint::CheckpointStore;
pub use decimal::Decimal;
pub use error::{Error, ErrorKind, Result};
pub use event::{ChangeEvent, Header, Op};
pub use position::{Lsn, MySqlPosition, Offsets, PgPosition, Position, SourcePosition};
pub use schema::{Column, SchemaId, TableId, TableSchema, ValueKind};
pub use schema_registry::SchemaRegistry;
pub use secret::{Secret, SecretUrl};
pub use sink::{DurableThrough, Progress, Rejected, Sink, SinkRecord};
pub use source::{Appender, Durable, EventBatch, Finding, Severity, Source, SourceContext};
pub use time::{Date, Interval, Time, TimeTz, Timestamp};
pub use topic::TopicTemplate;
pub use transform::Transform;
pub use value::Value;
