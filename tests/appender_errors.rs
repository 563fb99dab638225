//! The daemon's appender keeps the kind of a durability or checkpoint
//! failure, so the supervisor waits for an operator on a full disk or a
//! refused write instead of retrying forever as if it were transient.
//!
//! The refused write is real: the checkpoint directory is pointed at
//! `/sys/kernel`, where even root cannot create a file (EACCES). Not
//! covered: a log poisoned by a failed fsync (a `Stop`), which needs a
//! failing disk; its kind comes through the same path.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use headwater::runtime::LogAppender;
use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{
    Appender, ChangeEvent, CheckpointStore, Column, EventBatch, Lsn, Op, PgPosition, Position,
    SchemaRegistry, TableId, TableSchema, Value, ValueKind,
};
use headwater_log::{Log, LogConfig};

fn event(lsn: u64) -> ChangeEvent {
    let schema = Arc::new(TableSchema {
        table: TableId::new("public", "t"),
        version: 1,
        columns: vec![Column {
            name: "id".into(),
            type_name: "int4".into(),
            kind: ValueKind::Int32,
            nullable: false,
            key_position: Some(0),
        }],
    });
    ChangeEvent {
        source: "shop".into(),
        table: schema.table.clone(),
        op: Op::Insert,
        key: vec![Value::Int32(1)],
        before: None,
        after: Some(vec![Value::Int32(1)]),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(lsn),
            lsn: Lsn(lsn),
        }),
        commit_ts: None,
        tx_id: None,
        schema,
        topic: None,
        headers: vec![],
    }
}

#[tokio::test]
async fn a_refused_checkpoint_write_waits_for_an_operator() {
    let unwritable = std::path::Path::new("/sys/kernel");
    if !unwritable.is_dir() {
        eprintln!("skipped: no /sys/kernel to refuse a write");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let store = CheckpointStore::open(&checkpoints).unwrap();
    let appender = LogAppender::open(
        "shop".into(),
        Log::open(&dir.path().join("log"), LogConfig::default()).unwrap(),
        Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap()),
        Arc::default(),
        store,
        Arc::default(),
    )
    .await
    .unwrap();
    std::fs::remove_dir(&checkpoints).unwrap();
    std::os::unix::fs::symlink(unwritable, &checkpoints).unwrap();

    let batch = EventBatch {
        events: vec![event(100)],
        checkpoint: Some(event(100).position),
    };
    let err = appender
        .append(batch)
        .await
        .unwrap()
        .await
        .expect_err("the checkpoint cannot be written");
    assert_eq!(err.kind(), ErrorKind::WaitForOperator, "{err}");
    assert!(err.to_string().contains("storing checkpoint"), "{err}");
}
