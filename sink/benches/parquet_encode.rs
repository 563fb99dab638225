//! Encoding throughput of the Parquet archive: typical change events of a
//! six-column table → prepared rows → Arrow record batch → Parquet (zstd)
//! in memory. No object store: this is the CPU cost per row.
//!
//! `cargo bench -p headwater-sink --bench parquet_encode`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use headwater_core::codec::encode_event;
use headwater_core::{
    ChangeEvent, Column, Decimal, Lsn, Op, PgPosition, Position, SinkRecord, TableId, TableSchema,
    Timestamp, Value, ValueKind,
};
use headwater_sink::parquet::encode::{encode, prepare};
use headwater_sink::parquet::schema::Layout;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

const ROWS: usize = 50_000;

fn schema() -> Arc<TableSchema> {
    let column = |name: &str, kind, key: Option<u16>| Column {
        name: name.into(),
        type_name: String::new(),
        kind,
        nullable: key.is_none(),
        key_position: key,
    };
    Arc::new(TableSchema {
        table: TableId::new("public", "orders"),
        version: 1,
        columns: vec![
            column("id", ValueKind::Int64, Some(0)),
            column("customer_id", ValueKind::Int64, None),
            column("status", ValueKind::Text, None),
            column(
                "amount",
                ValueKind::Decimal {
                    precision: Some(12),
                    scale: Some(2),
                },
                None,
            ),
            column("created_at", ValueKind::TimestampTz, None),
            column("note", ValueKind::Text, None),
        ],
    })
}

fn records(schema: &Arc<TableSchema>) -> Vec<SinkRecord> {
    const STATUS: [&str; 4] = ["new", "paid", "shipped", "cancelled"];
    (0..ROWS as u64)
        .map(|i| {
            let row = vec![
                Value::Int64(i as i64),
                Value::Int64((i * 7919 % 10_000) as i64),
                Value::Text(STATUS[(i % 4) as usize].into()),
                Value::Decimal(Decimal::from_i128((i * 37 % 100_000) as i128, 2)),
                Value::TimestampTz(Timestamp::Micros(1_709_300_700_000_000 + i as i64 * 1000)),
                Value::Text(format!("order {i} for customer {}", i * 7919 % 10_000)),
            ];
            let lsn = 0x100_0000 + i * 64;
            SinkRecord {
                topic: "shop.public.orders".into(),
                partition: 0,
                offset: i,
                event: ChangeEvent {
                    source: "shop".into(),
                    table: schema.table.clone(),
                    op: if i % 3 == 0 { Op::Update } else { Op::Insert },
                    key: vec![Value::Int64(i as i64)],
                    before: None,
                    after: Some(row),
                    position: Position::Postgres(PgPosition {
                        commit_lsn: Lsn(lsn + 32),
                        lsn: Lsn(lsn),
                    }),
                    commit_ts: Some(Timestamp::Micros(1_709_300_700_000_000 + i as i64 * 1000)),
                    tx_id: Some(1000 + i / 10),
                    schema: schema.clone(),
                    topic: None,
                    headers: Vec::new(),
                },
            }
        })
        .collect()
}

fn encode_file(layout: &Layout, records: Vec<SinkRecord>) -> usize {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_bytes(Some(32 << 20))
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), layout.arrow.clone(), Some(properties)).expect("writer");
    let mut chunk = Vec::with_capacity(8192);
    for record in records {
        chunk.push(prepare(layout, record).expect("encodable"));
        if chunk.len() == 8192 {
            writer
                .write(&encode(layout, &chunk).expect("batch"))
                .expect("write");
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        writer
            .write(&encode(layout, &chunk).expect("batch"))
            .expect("write");
    }
    writer.into_inner().expect("close").len()
}

fn bench(c: &mut Criterion) {
    let schema = schema();
    let layout = Layout::new(schema.clone()).expect("layout");
    let input = records(&schema);
    let log_bytes: usize = input
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            encode_event(&r.event, &mut out);
            out.len()
        })
        .sum();
    let parquet_bytes = encode_file(&layout, input.clone());
    eprintln!(
        "{ROWS} rows: {log_bytes} bytes in the log's encoding → {parquet_bytes} bytes of Parquet (zstd), {:.1}x",
        log_bytes as f64 / parquet_bytes as f64
    );

    let mut group = c.benchmark_group("parquet_encode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("rows", |b| {
        b.iter_batched(
            || input.clone(),
            |records| encode_file(&layout, records),
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Bytes(log_bytes as u64));
    group.bench_function("bytes_of_log_encoding", |b| {
        b.iter_batched(
            || input.clone(),
            |records| encode_file(&layout, records),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
