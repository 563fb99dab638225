//! The snapshot meets the stream with no gap and no overlap; restarts
//! neither lose nor repeat transactions; tables added later are read once.

// Test helpers may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod pg_common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use headwater_core::{Appender, ChangeEvent, Durable, EventBatch, Op, Position, Value};
use pg_common::{start, wait_for_slot, wait_for_slot_released, TestDb};
use testkit::MemoryAppender;

fn id_of(e: &ChangeEvent) -> i32 {
    match e.key.first() {
        Some(Value::Int32(i)) => *i,
        other => panic!("key {other:?}"),
    }
}

fn v_of(row: &[Value]) -> i32 {
    match &row[1] {
        Value::Int32(v) => *v,
        other => panic!("value {other:?}"),
    }
}

/// GIVEN a table with rows and writers changing it all the time
/// WHEN the source snapshots it and streams on
/// THEN replaying the events gives exactly the table, and no row is both
/// read by the snapshot and inserted by the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_snapshot_and_stream_under_concurrent_writers_is_exactly_the_history() {
    let db = TestDb::new("pg_snap").await;
    db.exec(
        "CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL); \
         CREATE SEQUENCE acct_ids START 100001; \
         INSERT INTO acct SELECT g, 0 FROM generate_series(1, 20000) g;",
    )
    .await;
    let url = db.url();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = pg_common::connect(&url).await;
                for i in 0..400 {
                    let sql = match (i + w) % 4 {
                        0 => "INSERT INTO acct VALUES (nextval('acct_ids'), 1)".to_owned(),
                        1 => format!("UPDATE acct SET v = v + 1 WHERE id = {}", (i * 37 + w) % 20000 + 1),
                        2 => format!("DELETE FROM acct WHERE id = {}", (i * 53 + w * 7) % 20000 + 1),
                        _ => "BEGIN; INSERT INTO acct VALUES (nextval('acct_ids'), 2); \
                              UPDATE acct SET v = v + 10 WHERE id = (SELECT max(id) FROM acct); COMMIT;"
                            .to_owned(),
                    };
                    client.batch_execute(&sql).await.expect("writer");
                }
            })
        })
        .collect();
    let running = start(db.config(&["public.acct"]), MemoryAppender::new());
    for w in writers {
        w.await.unwrap();
    }
    // A marker after every writer finished: once it arrives, all is in.
    wait_for_slot(&db).await;
    db.exec("INSERT INTO acct VALUES (0, -1)").await;
    let events = running
        .wait("the marker row", |e| {
            e.iter().any(|e| e.op == Op::Insert && id_of(e) == 0)
        })
        .await;
    let mut state: BTreeMap<i32, i32> = BTreeMap::new();
    let mut read = HashSet::new();
    for e in &events {
        let id = id_of(e);
        match e.op {
            Op::Read => {
                assert!(read.insert(id), "row {id} read twice");
                assert!(state.insert(id, v_of(e.after.as_ref().unwrap())).is_none());
            }
            Op::Insert => {
                assert!(
                    !read.contains(&id),
                    "row {id} both in the snapshot and inserted: overlap"
                );
                assert!(
                    state.insert(id, v_of(e.after.as_ref().unwrap())).is_none(),
                    "insert of existing {id}"
                );
            }
            Op::Update => {
                assert!(
                    state.insert(id, v_of(e.after.as_ref().unwrap())).is_some(),
                    "update of missing {id}: gap"
                );
            }
            Op::Delete => {
                assert!(state.remove(&id).is_some(), "delete of missing {id}: gap");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let rows = db
        .client
        .query("SELECT id, v FROM acct", &[])
        .await
        .unwrap();
    let table: BTreeMap<i32, i32> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(state.len(), table.len());
    assert!(state == table, "replayed events differ from the table");
    assert!(events.iter().any(|e| e.op == Op::Read));
    running.stop().await;
    db.cleanup().await;
}

/// Stores events; never makes them durable (the log "crashes" before fsync).
#[derive(Default)]
struct StallingAppender {
    events: Mutex<Vec<ChangeEvent>>,
}

#[async_trait]
impl Appender for StallingAppender {
    async fn append(&self, batch: EventBatch) -> headwater_core::Result<Durable> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch.events);
        Ok(Durable::new(std::future::pending()))
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        None
    }
}

/// GIVEN five transactions appended, of which the log made three durable,
/// and a slot never told about any (the process died before the flush)
/// WHEN the source restarts from the log's checkpoint
/// THEN the server resends all five, and only the last two are appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_restart_skips_what_the_log_has_and_loses_nothing() {
    let db = TestDb::new("pg_restart").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v int)").await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = headwater_source::postgres::SnapshotMode::Never;
    let stalling = Arc::new(StallingAppender::default());
    pg_common::init_tracing();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let source: Box<dyn headwater_core::Source> = Box::new(
        headwater_source::postgres::PostgresSource::new("pgtest", config.clone()),
    );
    let handle = tokio::spawn(source.run(headwater_core::SourceContext {
        name: "pgtest".into(),
        appender: stalling.clone(),
        shutdown: shutdown.clone(),
    }));
    wait_for_slot(&db).await;
    for id in 1..=5 {
        db.exec(&format!("INSERT INTO t VALUES ({id}, {id})")).await;
    }
    testkit::wait_until_async("five events", pg_common::DEADLINE, || async {
        stalling.events.lock().unwrap().len() >= 5
    })
    .await;
    // Crash: no shutdown, nothing acknowledged.
    handle.abort();
    let _ = handle.await;
    let first = stalling.events.lock().unwrap().clone();
    let durable = first[2].position.clone();
    let Position::Postgres(p) = &durable else {
        panic!()
    };
    let checkpoint = Position::Postgres(headwater_core::PgPosition {
        commit_lsn: p.commit_lsn,
        lsn: p.commit_lsn,
    });

    let running = start(config, MemoryAppender::with_checkpoint(checkpoint));
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (6, 6)").await;
    let events = running.wait_changes(3).await;
    let ids: Vec<i32> = events.iter().map(id_of).collect();
    assert_eq!(ids, [4, 5, 6]);
    let appender = running.stop().await;
    // A clean stop acknowledged everything: a third run gets nothing old.
    let running = start(db.config(&["public.t"]), appender);
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (7, 7)").await;
    let events = running.wait_changes(4).await;
    let ids: Vec<i32> = events.iter().map(id_of).collect();
    assert_eq!(ids, [4, 5, 6, 7]);
    running.stop().await;
    db.cleanup().await;
}

/// GIVEN a source that streamed table `a`
/// WHEN it restarts with `b` added to its tables
/// THEN `b`'s rows are read once, later changes to both stream, and `b`
/// is in the publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_table_added_to_config_is_snapshotted_on_restart() {
    let db = TestDb::new("pg_added").await;
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); \
         INSERT INTO a VALUES (1); INSERT INTO b VALUES (1), (2);",
    )
    .await;
    let running = start(db.config(&["public.a"]), MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO a VALUES (2); INSERT INTO b VALUES (3)")
        .await;
    running.wait_changes(1).await;
    let appender = running.stop().await;
    wait_for_slot_released(&db).await;
    db.exec("INSERT INTO b VALUES (4)").await;
    let running = start(db.config(&["public.a", "public.b"]), appender);
    wait_for_slot(&db).await;
    db.exec("INSERT INTO b VALUES (5); INSERT INTO a VALUES (3)")
        .await;
    let events = running.wait_changes(3).await;
    let all = running.appender.events();
    let b_reads: Vec<i32> = all
        .iter()
        .filter(|e| e.op == Op::Read && e.table.name.as_ref() == "b")
        .map(id_of)
        .collect();
    assert_eq!(b_reads, [1, 2, 3, 4]);
    let changes: Vec<(String, i32)> = events
        .iter()
        .map(|e| (e.table.name.to_string(), id_of(e)))
        .collect();
    assert_eq!(changes, [("a".into(), 2), ("b".into(), 5), ("a".into(), 3)]);
    running.stop().await;
    db.cleanup().await;
}

/// Fails every append after the first (the log breaks mid-snapshot).
#[derive(Default)]
struct BreaksAfterOne {
    appends: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Appender for BreaksAfterOne {
    async fn append(&self, _batch: EventBatch) -> headwater_core::Result<Durable> {
        if self
            .appends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            >= 1
        {
            return Err(headwater_core::Error::decode("test", "the log broke"));
        }
        Ok(Durable::ready())
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        None
    }
}

/// GIVEN a snapshot that dies halfway (its checkpoint never durable)
/// WHEN the source starts again
/// THEN it drops the half-used slot, creates it anew and reads every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_during_snapshot_restarts_it_cleanly() {
    let db = TestDb::new("pg_snapcrash").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3000);")
        .await;
    let mut config = db.config(&["public.t"]);
    config.max_batch_events = 1000;
    pg_common::init_tracing();
    let source: Box<dyn headwater_core::Source> = Box::new(
        headwater_source::postgres::PostgresSource::new("pgtest", config.clone()),
    );
    let result = source
        .run(headwater_core::SourceContext {
            name: "pgtest".into(),
            appender: Arc::new(BreaksAfterOne::default()),
            shutdown: tokio_util::sync::CancellationToken::new(),
        })
        .await;
    assert!(result.is_err());
    // The slot was created before the snapshot and outlives the crash.
    let slot = config.slot.clone().unwrap();
    let exists = db
        .client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    assert!(exists.is_some());
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (0)").await;
    let events = running
        .wait("snapshot and the new row", |e| e.len() >= 3001)
        .await;
    let reads: HashSet<i32> = events
        .iter()
        .filter(|e| e.op == Op::Read)
        .map(id_of)
        .collect();
    assert_eq!(reads.len(), 3000);
    assert_eq!(events.len(), 3001);
    running.stop().await;
    db.cleanup().await;
}
