//! The daemon's appender keeps the kind of a durability or checkpoint
//! failure, so the supervisor waits for an operator on a full disk or a
//! refused write instead of retrying forever as if it were transient.
//!
//! The refused write is real: the checkpoint directory is pointed at
//! `/sys/kernel`, where even root cannot create a file (EACCES). So is the
//! poisoned log: under a file-size limit (RLIMIT_FSIZE, set with
//! `prlimit` on this test's own process) the log's segment write fails
//! (EFBIG), the log stops accepting appends, and the source must see a
//! `Stop`, not a retry.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use headwater::runtime::LogAppender;
use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Appender, ChangeEvent, CheckpointStore, EventBatch, SchemaRegistry, Value};
use headwater_log::{Log, LogConfig};

fn event(lsn: u64) -> ChangeEvent {
    event_with(lsn, "")
}

/// An insert into `public.t (id int4, body text)` at `lsn`.
fn event_with(lsn: u64, body: &str) -> ChangeEvent {
    testkit::EventBuilder::insert("public.t")
        .key_column("id", Value::Int32(1))
        .column("body", Value::Text(body.into()))
        .pg(lsn, lsn)
        .build()
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

/// Sets this process's file-size limit (soft; the hard one stays).
fn limit_file_size(limit: &str) {
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--fsize={limit}:"),
        ])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --fsize={limit}: {status}");
}

#[tokio::test]
async fn a_log_poisoned_by_a_failed_write_stops_the_source() {
    // GIVEN the daemon's appender on a fresh data directory
    let dir = tempfile::tempdir().unwrap();
    let appender = LogAppender::open(
        "shop".into(),
        Log::open(&dir.path().join("log"), LogConfig::default()).unwrap(),
        Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap()),
        Arc::default(),
        CheckpointStore::open(dir.path().join("checkpoints")).unwrap(),
        Arc::default(),
    )
    .await
    .unwrap();
    let first = EventBatch {
        events: vec![event(100)],
        checkpoint: Some(event(100).position),
    };
    appender.append(first).await.unwrap().await.unwrap();

    // WHEN a file may grow to 64 KiB only, and a 256 KiB record is appended
    // (the write fails with EFBIG: SIGXFSZ is caught instead of killing us)
    let _caught = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(25))
        .expect("a SIGXFSZ handler");
    limit_file_size("65536");
    let big = "x".repeat(256 << 10);
    let batch = EventBatch {
        events: vec![event_with(200, &big)],
        checkpoint: Some(event(200).position),
    };
    let failed = match appender.append(batch).await {
        Ok(durable) => durable.await,
        Err(e) => Err(e),
    };
    let next = EventBatch {
        events: vec![event(300)],
        checkpoint: Some(event(300).position),
    };
    let after = match appender.append(next).await {
        Ok(durable) => durable.await,
        Err(e) => Err(e),
    };
    limit_file_size("unlimited");

    // THEN that append and every later one stop the source
    let err = failed.expect_err("the segment write fails");
    assert_eq!(err.kind(), ErrorKind::Stop, "{err}");
    assert!(
        err.to_string().contains("stopped accepting appends"),
        "{err}"
    );
    let err = after.expect_err("a poisoned log accepts nothing more");
    assert_eq!(err.kind(), ErrorKind::Stop, "{err}");
    // AND the checkpoint stays at the last durable batch
    assert_eq!(appender.durable_checkpoint(), Some(event(100).position));
}
