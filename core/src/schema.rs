//! Tables and their shape.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A table's namespace (PostgreSQL schema, MySQL database) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TableId {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl TableId {
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        TableId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

/// Which [`crate::Value`] variant a column's values take, with what sinks
/// need to pick a target type (declared precision and scale, element kind).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    Bool,
    Int16,
    Int32,
    Int64,
    UInt64,
    Float32,
    Float64,
    /// `None` precision or scale: the column declares none (PostgreSQL's
    /// unconstrained `numeric`), so values may have any scale.
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Text,
    Bytes,
    Json,
    Uuid,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Array(Box<ValueKind>),
    Enum,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The source's own type name (`numeric(10,2)`, `varchar(255)`,
    /// `inet`): kept so nothing about the column is lost.
    pub type_name: String,
    pub kind: ValueKind,
    pub nullable: bool,
    /// Position within the primary (or replica-identity) key, from 0.
    pub key_position: Option<u16>,
}

/// The shape of one version of a table. Rows in a [`crate::ChangeEvent`] have
/// exactly one value per column, in this order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableSchema {
    pub table: TableId,
    /// Increases each time the source sees the table's shape change.
    pub version: u32,
    pub columns: Vec<Column>,
}

/// A content hash of a [`TableSchema`]: the identity under which the log
/// stores it and events refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SchemaId(pub u64);

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl TableSchema {
    /// The schema's identity; equal schemas have equal ids in every process
    /// and every release (the hash is over the versioned binary encoding).
    pub fn id(&self) -> SchemaId {
        SchemaId(xxhash_rust::xxh3::xxh3_64(&crate::codec::encode_schema(
            self,
        )))
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Indexes of the key columns, in key order.
    pub fn key_indexes(&self) -> Vec<usize> {
        let mut keyed: Vec<(u16, usize)> = self
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.key_position.map(|p| (p, i)))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, i)| i).collect()
    }
}
