//! `headwater replay` delivers exactly the archived change events: events
//! → Parquet archive → replay → the same events, in process and through
//! the command line into a second archive and into a live source's log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::StreamExt;
use headwater_core::{
    ChangeEvent, Decimal, Lsn, Op, PgPosition, Sink, SinkRecord, TableId, TableSchema, Timestamp,
    Value, ValueKind,
};
use headwater_sink::parquet::{
    read_archive, ArchiveFilter, ParquetConfig, ParquetSink, StoreOptions,
};
use testkit::event::column;
use testkit::{Delivered, EventBuilder, MemorySink};

fn records() -> Vec<SinkRecord> {
    let schema = Arc::new(TableSchema {
        table: TableId::new("public", "orders"),
        version: 1,
        columns: vec![
            column("id", ValueKind::Int64, Some(0)),
            column(
                "amount",
                ValueKind::Decimal {
                    precision: Some(10),
                    scale: Some(2),
                },
                None,
            ),
            column(
                "exact",
                ValueKind::Decimal {
                    precision: None,
                    scale: None,
                },
                None,
            ),
            column("note", ValueKind::Text, None),
            column("at", ValueKind::TimestampTz, None),
            column("tags", ValueKind::Array(Box::new(ValueKind::Text)), None),
        ],
    });
    let commit_ts = Timestamp::Micros(1_795_000_000_000_000);
    (0..50_u64)
        .map(|i| {
            let row = vec![
                Value::Int64(i as i64),
                Value::Decimal(Decimal::from_i128(i as i128 * 101, 2)),
                Value::Decimal(format!("{i}.{}", "9".repeat(40)).parse().unwrap()),
                if i % 7 == 0 {
                    Value::Null
                } else {
                    Value::Text(format!("żółw {i}"))
                },
                Value::TimestampTz(Timestamp::Micros(1_700_000_000_123_456 + i as i64)),
                Value::Array(headwater_core::value::Array::list(vec![
                    Value::Text("a".into()),
                    Value::Null,
                ])),
            ];
            let op = match i % 3 {
                0 => Op::Insert,
                1 => Op::Update,
                _ => Op::Read,
            };
            SinkRecord {
                topic: "shop.public.orders".into(),
                partition: 0,
                offset: i,
                event: EventBuilder::with_schema(op, &schema)
                    .row(row)
                    .pg(1000 + i, 900 + i)
                    .commit_ts(commit_ts)
                    .tx_id(7)
                    .build(),
            }
        })
        .collect()
}

async fn archive(url: &str, records: Vec<SinkRecord>) {
    let mut sink = ParquetSink::new(&ParquetConfig::new(url, vec!["shop.*".into()]))
        .await
        .unwrap();
    sink.write(records).await.unwrap();
    sink.flush(true).await.unwrap();
}

fn same(a: &[ChangeEvent], b: &[ChangeEvent]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(format!("{x:?}"), format!("{y:?}"));
    }
}

#[tokio::test]
async fn replay_to_a_sink_delivers_the_archived_events() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/archive", dir.path().display());
    let originals = records();
    archive(&url, originals.clone()).await;

    let delivered = Arc::new(Delivered::default());
    let mut sink = MemorySink::new(delivered.clone());
    let count = headwater::replay::to_sink(
        &url,
        &StoreOptions::default(),
        ArchiveFilter::default(),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(count, 50);
    let events: Vec<_> = delivered.records().into_iter().map(|r| r.event).collect();
    same(
        &originals
            .iter()
            .map(|r| r.event.clone())
            .collect::<Vec<_>>(),
        &events,
    );
}

#[tokio::test]
async fn replay_command_copies_an_archive_into_another_sink() {
    let dir = tempfile::tempdir().unwrap();
    let from = format!("file://{}/archive", dir.path().display());
    let to = format!("file://{}/copy", dir.path().display());
    let originals = records();
    archive(&from, originals.clone()).await;
    let config = dir.path().join("headwater.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}/data\"\n[sources.shop]\ntype = \"postgres\"\nurl = \"postgres://x@127.0.0.1/x\"\ntables = [\"public.*\"]\n[sinks.copy]\ntype = \"parquet\"\nurl = \"{to}\"\ntopics = [\"shop.*\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headwater"))
        .args(["replay", "-c"])
        .arg(&config)
        .args(["--from", &from, "--topics", "shop.*", "--to-sink", "copy"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 50 change events"));

    let copied: Vec<ChangeEvent> =
        read_archive(&to, &StoreOptions::default(), ArchiveFilter::default())
            .await
            .unwrap()
            .map(|r| r.unwrap().event)
            .collect()
            .await;
    same(
        &originals
            .iter()
            .map(|r| r.event.clone())
            .collect::<Vec<_>>(),
        &copied,
    );
}

#[tokio::test]
async fn replay_filters_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/archive", dir.path().display());
    archive(&url, records()).await;
    let filter = ArchiveFilter {
        since: Some(Timestamp::Micros(1_795_000_000_000_001)),
        ..ArchiveFilter::default()
    };
    let delivered = Arc::new(Delivered::default());
    let mut sink = MemorySink::new(delivered.clone());
    let count = headwater::replay::to_sink(&url, &StoreOptions::default(), filter, &mut sink)
        .await
        .unwrap();
    assert_eq!(count, 0, "every event was committed before `since`");
}

/// `--to-log NAME` with NAME a live source whose log is ahead of the
/// archive: every replayed event is appended, none dropped by the source's
/// replay guard (which drops what a restarted source sends again).
#[tokio::test]
async fn replay_to_the_log_of_a_live_source_appends_every_event() {
    use headwater_core::{EventBatch, Position};
    use headwater_log::{Log, LogConfig};

    let dir = tempfile::tempdir().unwrap();
    let from = format!("file://{}/archive", dir.path().display());
    archive(&from, records()).await;
    let data = dir.path().join("data");
    let topic = "shop.public.orders";

    // The source `shop` has run past the archive: a checkpoint and an event
    // at a later position than any archived one.
    {
        let log = Log::open(&data.join("log"), LogConfig::default()).unwrap();
        let appender = headwater::runtime::LogAppender::open(
            "shop".into(),
            log.clone(),
            Arc::new(headwater_core::SchemaRegistry::open(data.join("schemas")).unwrap()),
            Arc::default(),
            headwater_core::CheckpointStore::open(data.join("checkpoints")).unwrap(),
            Arc::default(),
        )
        .await
        .unwrap();
        let newest = Position::Postgres(PgPosition {
            commit_lsn: Lsn(5000),
            lsn: Lsn(5000),
        });
        let mut event = records().pop().unwrap().event;
        event.position = newest.clone();
        headwater_core::Appender::append(
            appender.as_ref(),
            EventBatch {
                events: vec![event],
                checkpoint: Some(newest),
            },
        )
        .await
        .unwrap()
        .await
        .unwrap();
        log.flush().await.unwrap();
    }

    let config = dir.path().join("headwater.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[sources.shop]\ntype = \"postgres\"\nurl = \"postgres://x@127.0.0.1/x\"\ntables = [\"public.*\"]\n",
            data.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headwater"))
        .args(["replay", "-c"])
        .arg(&config)
        .args(["--from", &from, "--to-log", "shop"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("replayed 50 change events"), "{stderr}");

    let log = Log::open_read_only(&data.join("log"), LogConfig::default()).unwrap();
    let partitions = LogConfig::default().partitions;
    let in_log: u64 = (0..partitions).map(|p| log.high_watermark(topic, p)).sum();
    assert_eq!(in_log, 1 + 50, "the live event and every replayed one");
}
