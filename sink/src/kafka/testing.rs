//! Sample events for tests and benchmarks: Debezium's tutorial table
//! `customers (id, first_name, last_name, email)`.

use std::sync::Arc;

use headwater_core::{
    ChangeEvent, Column, Lsn, Op, PgPosition, Position, TableId, TableSchema, Timestamp, Value,
    ValueKind,
};

/// `public.customers`: `id int4` key, three `varchar` columns.
pub fn customers_schema(namespace: &str) -> Arc<TableSchema> {
    let text = |name: &str| Column {
        name: name.into(),
        type_name: "varchar(255)".into(),
        kind: ValueKind::Text,
        nullable: false,
        key_position: None,
    };
    Arc::new(TableSchema {
        table: TableId::new(namespace, "customers"),
        version: 1,
        columns: vec![
            Column {
                name: "id".into(),
                type_name: "int4".into(),
                kind: ValueKind::Int32,
                nullable: false,
                key_position: Some(0),
            },
            text("first_name"),
            text("last_name"),
            text("email"),
        ],
    })
}

/// A customer row.
pub fn customer(id: i32, first: &str, last: &str, email: &str) -> Vec<Value> {
    vec![
        Value::Int32(id),
        Value::Text(first.into()),
        Value::Text(last.into()),
        Value::Text(email.into()),
    ]
}

/// An insert of customer `n` into `shop.public.customers`, from PostgreSQL.
pub fn event(n: u64) -> ChangeEvent {
    let id = i32::try_from(n % 1_000_000).unwrap_or(0);
    ChangeEvent {
        source: "shop".into(),
        table: TableId::new("public", "customers"),
        op: Op::Insert,
        key: vec![Value::Int32(id)],
        before: None,
        after: Some(customer(id, "Anne", "Kretchmar", "annek@noanswer.org")),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(24_023_128 + n),
            lsn: Lsn(24_023_128 + n),
        }),
        commit_ts: Some(Timestamp::Micros(1_559_033_904_863_000)),
        tx_id: Some(555),
        schema: customers_schema("public"),
        topic: None,
        headers: Vec::new(),
    }
}
