//! Writes a few change events into `{data_dir}/log` (with their schema in
//! `{data_dir}/schemas`), to try `headwater log topics|tail|verify`:
//! `cargo run -p headwater-log --example demo_log -- /tmp/hw-data`.

use std::path::PathBuf;
use std::sync::Arc;

use headwater_core::codec::encode_event;
use headwater_core::{
    ChangeEvent, Column, Lsn, Op, PgPosition, Position, SchemaRegistry, TableId, TableSchema,
    Value, ValueKind,
};
use headwater_log::{Log, LogConfig, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: demo_log DATA_DIR")?);
    let schemas = SchemaRegistry::open(data_dir.join("schemas"))?;
    let schema = Arc::new(TableSchema {
        table: TableId::new("public", "orders"),
        version: 1,
        columns: vec![
            column("id", "int8", ValueKind::Int64, Some(0)),
            column("note", "text", ValueKind::Text, None),
        ],
    });
    schemas.register(&schema)?;
    let log = Log::open(&data_dir.join("log"), LogConfig::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let records = (0..20i64)
        .map(|i| {
            let event = ChangeEvent {
                source: "shop".into(),
                table: schema.table.clone(),
                op: if i % 5 == 4 { Op::Delete } else { Op::Insert },
                key: vec![Value::Int64(i)],
                before: None,
                after: Some(vec![Value::Int64(i), Value::Text(format!("order {i}"))]),
                position: Position::Postgres(PgPosition {
                    commit_lsn: Lsn(0x1000 + i as u64),
                    lsn: Lsn(0x1000 + i as u64),
                }),
                commit_ts: None,
                tx_id: Some(700 + i as u64),
                schema: schema.clone(),
                topic: None,
                headers: Vec::new(),
            };
            let mut value = Vec::new();
            encode_event(&event, &mut value);
            let record = Record {
                key: i.to_le_bytes().to_vec(),
                value,
                timestamp_ms: 1_700_000_000_000 + i * 1000,
            };
            (event.topic_name(), record)
        })
        .collect();
    let offsets = runtime.block_on(async { log.append(records).await?.durable().await })?;
    println!(
        "appended {} change events to shop.public.orders",
        offsets.len()
    );
    Ok(())
}

fn column(name: &str, type_name: &str, kind: ValueKind, key_position: Option<u16>) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        kind,
        nullable: key_position.is_none(),
        key_position,
    }
}
