//! Envelope encode rate of the Kafka sink: typical change events of a
//! six-column table → Debezium JSON key + value, with and without the
//! Kafka Connect schema part. No broker: this is the CPU cost per event
//! (target: ≥ 500k events/s per core).
//!
//! `cargo bench -p headwater-sink --bench kafka_encode`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use headwater_core::{
    ChangeEvent, Column, Decimal, Lsn, Op, PgPosition, Position, TableId, TableSchema, Timestamp,
    Value, ValueKind,
};
use headwater_sink::kafka::config::DecimalHandling;
use headwater_sink::kafka::{EncodeOptions, Encoder};

const EVENTS: usize = 10_000;

fn schema() -> Arc<TableSchema> {
    let column = |name: &str, type_name: &str, kind, key: Option<u16>| Column {
        name: name.into(),
        type_name: type_name.into(),
        kind,
        nullable: key.is_none(),
        key_position: key,
    };
    Arc::new(TableSchema {
        table: TableId::new("public", "orders"),
        version: 1,
        columns: vec![
            column("id", "int8", ValueKind::Int64, Some(0)),
            column("customer_id", "int8", ValueKind::Int64, None),
            column("status", "text", ValueKind::Text, None),
            column(
                "amount",
                "numeric(12,2)",
                ValueKind::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
                None,
            ),
            column("created_at", "timestamptz", ValueKind::TimestampTz, None),
            column("note", "text", ValueKind::Text, None),
        ],
    })
}

/// `n` updates of the orders table (before and after images).
pub fn events(n: usize) -> Vec<ChangeEvent> {
    let schema = schema();
    (0..n as i64)
        .map(|i| {
            let row = |status: &str| {
                vec![
                    Value::Int64(i),
                    Value::Int64(i % 977),
                    Value::Text(status.into()),
                    Value::Decimal(Decimal::from_i128(i128::from(i) * 137 + 99, 2)),
                    Value::TimestampTz(Timestamp::Micros(1_706_702_400_000_000 + i * 1_000)),
                    Value::Text("leave at the door, ring twice".into()),
                ]
            };
            ChangeEvent {
                source: "shop".into(),
                table: schema.table.clone(),
                op: Op::Update,
                key: vec![Value::Int64(i)],
                before: Some(row("pending")),
                after: Some(row("shipped")),
                position: Position::Postgres(PgPosition {
                    commit_lsn: Lsn(0x1_0000_0000 + i as u64 * 64),
                    lsn: Lsn(0x1_0000_0000 + i as u64 * 64 - 8),
                }),
                commit_ts: Some(Timestamp::Micros(1_706_702_400_000_000 + i * 1_000)),
                tx_id: Some(1_000 + i as u64),
                schema: schema.clone(),
                topic: None,
                headers: Vec::new(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = events(EVENTS);
    let mut group = c.benchmark_group("kafka_encode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    for schemas in [false, true] {
        let name = if schemas {
            "debezium_json_with_schema"
        } else {
            "debezium_json_payload_only"
        };
        let mut encoder = Encoder::new(EncodeOptions {
            schemas,
            decimal: DecimalHandling::Precise,
            ..EncodeOptions::default()
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut bytes = 0;
                for e in &events {
                    encoder.encode(e, 1_706_702_400_000);
                    bytes += encoder.value().len() + encoder.key().map_or(0, <[u8]>::len);
                }
                black_box(bytes)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
