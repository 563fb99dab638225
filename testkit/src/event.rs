//! [`EventBuilder`]: change events for tests, with defaults for every field
//! a test does not care about.

use std::sync::Arc;

use headwater_core::{
    ChangeEvent, Column, Header, Lsn, MySqlPosition, Op, PgPosition, Position, TableId,
    TableSchema, Timestamp, Value, ValueKind,
};

/// Builds a [`ChangeEvent`]. Unless set: source `shop`, schema version 1,
/// position `0/1` in PostgreSQL, no commit time, no transaction id, the
/// default topic, no headers.
///
/// The table's shape comes either from [`column`](Self::column) calls,
/// each adding a column and its value, or from a prepared
/// [`schema`](Self::schema) with a [`row`](Self::row). The row is the
/// `before` image of a delete and the `after` image of any other op;
/// [`before`](Self::before) and [`after`](Self::after) set either image
/// outright. The key is the row's key columns unless [`key`](Self::key)
/// says otherwise.
///
/// ```
/// use headwater_core::Value;
/// use headwater_testkit::EventBuilder;
///
/// let e = EventBuilder::insert("public.orders")
///     .key_column("id", Value::Int64(1))
///     .column("note", Value::Text("first".into()))
///     .tx_id(7)
///     .build();
/// assert_eq!(e.key, vec![Value::Int64(1)]);
/// assert_eq!(e.topic_name(), "shop.public.orders");
/// ```
#[derive(Clone, Debug)]
#[must_use = "an EventBuilder does nothing until build()"]
pub struct EventBuilder {
    op: Op,
    source: Arc<str>,
    table: TableId,
    version: u32,
    columns: Vec<Column>,
    schema: Option<Arc<TableSchema>>,
    row: Option<Vec<Value>>,
    key: Option<Vec<Value>>,
    before: Option<Option<Vec<Value>>>,
    after: Option<Option<Vec<Value>>>,
    position: Position,
    commit_ts: Option<Timestamp>,
    tx_id: Option<u64>,
    topic: Option<Arc<str>>,
    headers: Vec<Header>,
}

impl EventBuilder {
    /// An `op` event on `table`, written `namespace.name`.
    pub fn new(op: Op, table: &str) -> Self {
        Self::on(op, table_id(table))
    }

    /// An `op` event on the table of a prepared schema.
    pub fn with_schema(op: Op, schema: &Arc<TableSchema>) -> Self {
        Self::on(op, schema.table.clone()).schema(schema)
    }

    fn on(op: Op, table: TableId) -> Self {
        EventBuilder {
            op,
            source: "shop".into(),
            table,
            version: 1,
            columns: Vec::new(),
            schema: None,
            row: None,
            key: None,
            before: None,
            after: None,
            position: pg(1, 1),
            commit_ts: None,
            tx_id: None,
            topic: None,
            headers: Vec::new(),
        }
    }

    pub fn read(table: &str) -> Self {
        Self::new(Op::Read, table)
    }

    pub fn insert(table: &str) -> Self {
        Self::new(Op::Insert, table)
    }

    pub fn update(table: &str) -> Self {
        Self::new(Op::Update, table)
    }

    pub fn delete(table: &str) -> Self {
        Self::new(Op::Delete, table)
    }

    pub fn truncate(table: &str) -> Self {
        Self::new(Op::Truncate, table)
    }

    /// A key column, with its value: key positions follow the call order.
    /// Its kind is the value's (see [`column_of`](Self::column_of)).
    pub fn key_column(self, name: &str, value: Value) -> Self {
        let kind = kind_of(&value);
        self.key_column_of(name, kind, value)
    }

    /// A key column of an explicit kind.
    pub fn key_column_of(self, name: &str, kind: ValueKind, value: Value) -> Self {
        let position = self
            .columns
            .iter()
            .filter(|c| c.key_position.is_some())
            .count();
        let position = u16::try_from(position).expect("fewer than 65536 key columns");
        self.push_column(name, kind, Some(position), value)
    }

    /// A nullable column, with its value; its kind is the value's. A
    /// `Null` or `Unchanged` value says nothing of the kind, so those take
    /// [`column_of`](Self::column_of).
    pub fn column(self, name: &str, value: Value) -> Self {
        let kind = kind_of(&value);
        self.column_of(name, kind, value)
    }

    /// A nullable column of an explicit kind.
    pub fn column_of(self, name: &str, kind: ValueKind, value: Value) -> Self {
        self.push_column(name, kind, None, value)
    }

    fn push_column(
        mut self,
        name: &str,
        kind: ValueKind,
        key_position: Option<u16>,
        value: Value,
    ) -> Self {
        self.columns.push(column(name, kind, key_position));
        self.row.get_or_insert_with(Vec::new).push(value);
        self
    }

    /// A prepared schema instead of columns; the event's table is the
    /// schema's.
    pub fn schema(mut self, schema: &Arc<TableSchema>) -> Self {
        self.table = schema.table.clone();
        self.schema = Some(schema.clone());
        self
    }

    /// The row, one value per column of the [`schema`](Self::schema).
    pub fn row(mut self, row: Vec<Value>) -> Self {
        self.row = Some(row);
        self
    }

    /// The before image outright (`None`: none), whatever the op.
    pub fn before(mut self, row: impl Into<Option<Vec<Value>>>) -> Self {
        self.before = Some(row.into());
        self
    }

    /// The after image outright (`None`: none), whatever the op.
    pub fn after(mut self, row: impl Into<Option<Vec<Value>>>) -> Self {
        self.after = Some(row.into());
        self
    }

    /// The key outright, instead of the row's key columns.
    pub fn key(mut self, key: Vec<Value>) -> Self {
        self.key = Some(key);
        self
    }

    /// No key (a keyless table, a truncate, a message).
    pub fn no_key(self) -> Self {
        self.key(Vec::new())
    }

    pub fn source(mut self, source: &str) -> Self {
        self.source = source.into();
        self
    }

    /// The event's table (`namespace.name`) apart from its schema's.
    pub fn table(mut self, table: &str) -> Self {
        self.table = table_id(table);
        self
    }

    /// The version of the schema built from columns.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    pub fn position(mut self, position: Position) -> Self {
        self.position = position;
        self
    }

    /// A PostgreSQL position: the transaction's commit LSN and the
    /// change's own.
    pub fn pg(self, commit_lsn: u64, lsn: u64) -> Self {
        self.position(pg(commit_lsn, lsn))
    }

    /// A MySQL position without a GTID set, first in its transaction.
    pub fn mysql(self, file: &str, offset: u64) -> Self {
        self.position(Position::MySql(MySqlPosition {
            file: file.into(),
            offset,
            gtid_set: None,
            tx_index: 0,
        }))
    }

    pub fn commit_ts(mut self, commit_ts: impl Into<Option<Timestamp>>) -> Self {
        self.commit_ts = commit_ts.into();
        self
    }

    pub fn tx_id(mut self, tx_id: impl Into<Option<u64>>) -> Self {
        self.tx_id = tx_id.into();
        self
    }

    /// A topic other than the default, as the `route` transform sets.
    pub fn topic(mut self, topic: &str) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// One more header, after those already added.
    pub fn header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.to_vec(),
        });
        self
    }

    pub fn build(self) -> ChangeEvent {
        let schema = self.schema.unwrap_or_else(|| {
            Arc::new(TableSchema {
                table: self.table.clone(),
                version: self.version,
                columns: self.columns,
            })
        });
        let (mut before, mut after) = match self.op {
            Op::Delete => (self.row, None),
            _ => (None, self.row),
        };
        if let Some(row) = self.before {
            before = row;
        }
        if let Some(row) = self.after {
            after = row;
        }
        let key = self
            .key
            .unwrap_or_else(|| key_of(&schema, after.as_ref().or(before.as_ref())));
        ChangeEvent {
            source: self.source,
            table: self.table,
            op: self.op,
            key,
            before,
            after,
            position: self.position,
            commit_ts: self.commit_ts,
            tx_id: self.tx_id,
            schema,
            topic: self.topic,
            headers: self.headers,
        }
    }
}

/// A column for a test's schema: nullable unless it is in the key, its
/// type name the kind's (`Int64`, `Text`).
pub fn column(name: &str, kind: ValueKind, key_position: Option<u16>) -> Column {
    Column {
        name: name.into(),
        type_name: format!("{kind:?}"),
        kind,
        nullable: key_position.is_none(),
        key_position,
    }
}

fn pg(commit_lsn: u64, lsn: u64) -> Position {
    Position::Postgres(PgPosition {
        commit_lsn: Lsn(commit_lsn),
        lsn: Lsn(lsn),
    })
}

fn table_id(table: &str) -> TableId {
    let (namespace, name) = table
        .split_once('.')
        .unwrap_or_else(|| panic!("table {table:?} is not written namespace.name"));
    TableId::new(namespace, name)
}

/// The values of the schema's key columns in `row`, in key order; none
/// without a row.
fn key_of(schema: &TableSchema, row: Option<&Vec<Value>>) -> Vec<Value> {
    let Some(row) = row else {
        return Vec::new();
    };
    schema
        .key_indexes()
        .into_iter()
        .map(|i| {
            row.get(i).cloned().unwrap_or_else(|| {
                panic!(
                    "the row of {} has no value for key column {i}",
                    schema.table
                )
            })
        })
        .collect()
}

/// The kind a value's variant stands for. Decimals are unconstrained, an
/// array's elements take the first non-null element's kind (text if none).
fn kind_of(value: &Value) -> ValueKind {
    match value {
        Value::Null | Value::Unchanged => panic!(
            "a {} value has no kind: give the column one with column_of",
            value.kind_name()
        ),
        Value::Bool(_) => ValueKind::Bool,
        Value::Int16(_) => ValueKind::Int16,
        Value::Int32(_) => ValueKind::Int32,
        Value::Int64(_) => ValueKind::Int64,
        Value::UInt64(_) => ValueKind::UInt64,
        Value::Float32(_) => ValueKind::Float32,
        Value::Float64(_) => ValueKind::Float64,
        Value::Decimal(_) => ValueKind::Decimal {
            precision: None,
            scale: None,
        },
        Value::Text(_) => ValueKind::Text,
        Value::Bytes(_) => ValueKind::Bytes,
        Value::Json(_) => ValueKind::Json,
        Value::Uuid(_) => ValueKind::Uuid,
        Value::Date(_) => ValueKind::Date,
        Value::Time(_) => ValueKind::Time,
        Value::TimeTz(_) => ValueKind::TimeTz,
        Value::Timestamp(_) => ValueKind::Timestamp,
        Value::TimestampTz(_) => ValueKind::TimestampTz,
        Value::Interval(_) => ValueKind::Interval,
        Value::Array(array) => {
            let element = array
                .elements()
                .iter()
                .find(|v| !matches!(v, Value::Null | Value::Unchanged))
                .map_or(ValueKind::Text, kind_of);
            ValueKind::Array(Box::new(element))
        }
        Value::Enum(_) => ValueKind::Enum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_make_the_schema_row_and_key() {
        let e = EventBuilder::update("inventory.customers")
            .key_column("id", Value::Int32(1004))
            .column("email", Value::Text("a@x.org".into()))
            .column_of("note", ValueKind::Text, Value::Null)
            .build();
        assert_eq!(e.table, TableId::new("inventory", "customers"));
        assert_eq!(e.schema.table, e.table);
        assert_eq!(e.schema.key_indexes(), vec![0]);
        let kinds: Vec<_> = e.schema.columns.iter().map(|c| &c.kind).collect();
        assert_eq!(
            kinds,
            [&ValueKind::Int32, &ValueKind::Text, &ValueKind::Text]
        );
        assert_eq!(e.key, vec![Value::Int32(1004)]);
        assert_eq!(e.before, None);
        assert_eq!(e.after.as_ref().map(Vec::len), Some(3));
        assert_eq!(&*e.source, "shop");
    }

    #[test]
    fn a_delete_carries_the_row_as_its_before_image() {
        let e = EventBuilder::delete("public.t")
            .key_column("id", Value::Int64(3))
            .build();
        assert_eq!(e.before, Some(vec![Value::Int64(3)]));
        assert_eq!(e.after, None);
        assert_eq!(e.key, vec![Value::Int64(3)]);
    }

    #[test]
    fn explicit_images_and_key_win() {
        let schema = EventBuilder::insert("public.t")
            .key_column("id", Value::Int64(0))
            .build()
            .schema;
        let e = EventBuilder::with_schema(Op::Update, &schema)
            .row(vec![Value::Int64(2)])
            .before(vec![Value::Int64(1)])
            .key(vec![Value::Int64(1)])
            .build();
        assert_eq!(e.before, Some(vec![Value::Int64(1)]));
        assert_eq!(e.after, Some(vec![Value::Int64(2)]));
        assert_eq!(e.key, vec![Value::Int64(1)]);
        assert!(Arc::ptr_eq(&e.schema, &schema));
        let t = EventBuilder::with_schema(Op::Truncate, &schema).build();
        assert_eq!((t.key, t.before, t.after), (vec![], None, None));
    }
}
