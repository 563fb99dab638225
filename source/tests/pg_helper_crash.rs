//! A helper task of the PostgreSQL source (the reader of the replication
//! connection, the acknowledger of durable batches) that dies mid-stream
//! ends the source with an error the supervisor retries, never with the
//! clean stop that only a shutdown may give; a restart resumes without
//! loss or duplicates.

mod pg_common;

use std::sync::Arc;

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Source, SourceContext, Value};
use headwater_source::fault::{self, Helper};
use headwater_source::postgres::{PostgresConfig, PostgresSource, SnapshotMode};
use pg_common::{wait_for_slot, wait_for_slot_released, TestDb, DEADLINE};
use testkit::MemoryAppender;
use tokio_util::sync::CancellationToken;

fn spawn(
    name: &str,
    config: PostgresConfig,
    appender: Arc<MemoryAppender>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<headwater_core::Result<()>> {
    let source: Box<dyn Source> = Box::new(PostgresSource::new(name, config));
    tokio::spawn(source.run(SourceContext {
        name: name.into(),
        appender,
        shutdown,
    }))
}

async fn a_dead_helper_is_a_retried_error(helper: Helper, task: &str) {
    pg_common::init_tracing();
    // GIVEN a source streaming a table
    let db = TestDb::new("pg_crash").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    let name = testkit::unique_name("pgcrash");
    let appender = MemoryAppender::new();
    let shutdown = CancellationToken::new();
    let handle = spawn(&name, config.clone(), appender.clone(), shutdown.clone());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (1)").await;
    appender.wait_for(1, DEADLINE).await;

    // WHEN the helper task dies while the stream runs
    fault::kill(&name, helper);
    db.exec("INSERT INTO t VALUES (2)").await;

    // THEN the source ends with an error to retry that names the task,
    // and no shutdown was asked for
    let result = tokio::time::timeout(DEADLINE, handle)
        .await
        .expect("the source ends")
        .expect("the source itself does not panic");
    let error = result.expect_err("a dead helper is not a clean stop");
    assert_eq!(error.kind(), ErrorKind::Retry, "{error}");
    assert!(error.to_string().contains(task), "{error}");
    assert!(!shutdown.is_cancelled());

    // AND started again, as the supervisor does, it resumes: every row once
    wait_for_slot_released(&db).await;
    let handle = spawn(&name, config, appender.clone(), shutdown.clone());
    db.exec("INSERT INTO t VALUES (3)").await;
    let events = appender.wait_for(3, DEADLINE).await;
    shutdown.cancel();
    handle
        .await
        .expect("no panic")
        .expect("a shutdown is a clean stop");
    let ids: Vec<Value> = appender.events().iter().map(|e| e.key[0].clone()).collect();
    assert_eq!(ids, [1, 2, 3].map(Value::Int32), "{events:?}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_dead_reader_is_an_error_to_retry() {
    a_dead_helper_is_a_retried_error(Helper::Reader, "reader").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_dead_acknowledger_is_an_error_to_retry() {
    a_dead_helper_is_a_retried_error(Helper::Acknowledger, "acknowledger").await;
}
