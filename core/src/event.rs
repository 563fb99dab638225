//! The change event: one row changed (or a table truncated, or a message
//! emitted) in a source database.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::position::Position;
use crate::schema::{TableId, TableSchema};
use crate::time::Timestamp;
use crate::topic::default_topic;
use crate::value::Value;

/// In configuration (the `filter` transform's `ops`) by lower-case name:
/// `read`, `insert`, `update`, `delete`, `truncate`, `message`, `event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A row read by the initial snapshot.
    Read,
    Insert,
    Update,
    Delete,
    Truncate,
    /// A logical message (`pg_logical_emit_message`), not a row.
    Message,
    /// A domain event from a transactional outbox (an outbox row or an
    /// outbox message), not a change: see [`crate::outbox`].
    Event,
}

impl Op {
    /// Debezium's one-letter code (`r`, `c`, `u`, `d`, `t`, `m`), and `e`
    /// for an outbox event (Debezium has none: its router emits no envelope).
    pub fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
            Op::Message => "m",
            Op::Event => "e",
        }
    }
}

/// A name and an opaque value, carried through to sinks (Kafka headers,
/// metadata columns). Transforms may add them; `Message` events carry the
/// message's prefix here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    /// The configured name of the source that read it.
    pub source: Arc<str>,
    pub table: TableId,
    pub op: Op,
    /// Primary-key (or replica-identity) values, in key order. Empty for a
    /// table without a key, for `Truncate` and `Message`.
    pub key: Vec<Value>,
    /// The row before the change, one value per schema column, when the
    /// source sends it (updates and deletes; with REPLICA IDENTITY DEFAULT
    /// only the key columns are set and the others are `Unchanged`).
    pub before: Option<Vec<Value>>,
    /// The row after the change; the payload bytes of a `Message`.
    pub after: Option<Vec<Value>>,
    pub position: Position,
    pub commit_ts: Option<Timestamp>,
    pub tx_id: Option<u64>,
    pub schema: Arc<TableSchema>,
    /// Set by the `route` transform; `None` means the default topic
    /// `{source}.{namespace}.{table}`.
    pub topic: Option<Arc<str>>,
    pub headers: Vec<Header>,
}

impl ChangeEvent {
    /// The topic this event goes to.
    pub fn topic_name(&self) -> String {
        match &self.topic {
            Some(topic) => topic.to_string(),
            None => default_topic(&self.source, &self.table),
        }
    }
}
