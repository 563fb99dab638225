//! Streaming changes from a real PostgreSQL: row operations, TOAST,
//! replica identity, truncate, logical messages, schema changes, big
//! (streamed and spilled) transactions.

// Test helpers may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod pg_common;

use headwater_core::{Op, Value};
use headwater_source::postgres::SnapshotMode;
use pg_common::{start, wait_for_slot, wait_for_slot_released, TestDb};
use testkit::MemoryAppender;

fn text(v: &str) -> Value {
    Value::Text(v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_inserts_updates_deletes_with_keys_and_positions() {
    let db = TestDb::new("pg_crud").await;
    db.exec("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await;
    let running = start(db.config(&["public.items"]), MemoryAppender::new());
    // The slot is active once the source is streaming; wait for it.
    wait_for_slot(&db).await;
    db.exec("INSERT INTO items VALUES (1, 'a'), (2, 'b')").await;
    db.exec("UPDATE items SET name = 'c' WHERE id = 1").await;
    db.exec("DELETE FROM items WHERE id = 2").await;
    let events = running.wait_changes(4).await;
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(ops, [Op::Insert, Op::Insert, Op::Update, Op::Delete]);
    assert_eq!(events[0].key, vec![Value::Int32(1)]);
    assert_eq!(events[0].after, Some(vec![Value::Int32(1), text("a")]));
    // REPLICA IDENTITY DEFAULT: no old row on update; the key on delete.
    assert_eq!(events[2].before, None);
    assert_eq!(events[2].after, Some(vec![Value::Int32(1), text("c")]));
    assert_eq!(
        events[3].before,
        Some(vec![Value::Int32(2), Value::Unchanged])
    );
    assert_eq!(events[3].key, vec![Value::Int32(2)]);
    // One transaction's rows share a commit LSN; positions increase.
    let commit = |e: &headwater_core::ChangeEvent| match &e.position {
        headwater_core::Position::Postgres(p) => p.commit_lsn,
        other => panic!("{other:?}"),
    };
    assert_eq!(commit(&events[0]), commit(&events[1]), "one INSERT");
    assert!(commit(&events[1]) < commit(&events[2]), "the UPDATE after");
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(events[0].schema.columns[0].key_position, Some(0));
    assert!(events[0].commit_ts.is_some());
    let appender = running.stop().await;
    assert!(appender.checkpoint().is_some());
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_toast_unchanged_and_full_before_images() {
    let db = TestDb::new("pg_toast").await;
    db.exec(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, n int); \
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL; \
         CREATE TABLE full_rows (id int PRIMARY KEY, a text, b int); \
         ALTER TABLE full_rows REPLICA IDENTITY FULL;",
    )
    .await;
    let big: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    db.client
        .execute("INSERT INTO docs VALUES (1, $1, 0)", &[&big])
        .await
        .unwrap();
    db.exec("INSERT INTO full_rows VALUES (1, 'x', 1)").await;
    let mut config = db.config(&["public.docs", "public.full_rows"]);
    config.snapshot = SnapshotMode::Never;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("UPDATE docs SET n = 1 WHERE id = 1").await;
    db.exec("UPDATE full_rows SET b = 2 WHERE id = 1").await;
    db.exec("DELETE FROM full_rows WHERE id = 1").await;
    let events = running.wait_changes(3).await;
    // The TOASTed body was not touched: Unchanged, never Null.
    assert_eq!(
        events[0].after,
        Some(vec![Value::Int32(1), Value::Unchanged, Value::Int32(1)])
    );
    // REPLICA IDENTITY FULL: whole old rows.
    assert_eq!(
        events[1].before,
        Some(vec![Value::Int32(1), text("x"), Value::Int32(1)])
    );
    assert_eq!(
        events[2].before,
        Some(vec![Value::Int32(1), text("x"), Value::Int32(2)])
    );
    assert_eq!(events[2].key, vec![Value::Int32(1)]);
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_truncate_and_logical_messages() {
    let db = TestDb::new("pg_trunc").await;
    db.exec(
        "CREATE TABLE parent (id int PRIMARY KEY); \
         CREATE TABLE child (id serial PRIMARY KEY, p int REFERENCES parent(id));",
    )
    .await;
    let mut config = db.config(&["public.*"]);
    config.snapshot = SnapshotMode::Never;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO parent VALUES (1)").await;
    db.exec("TRUNCATE parent, child RESTART IDENTITY CASCADE")
        .await;
    db.exec("SELECT pg_logical_emit_message(true, 'app', 'in tx')")
        .await;
    db.exec("SELECT pg_logical_emit_message(false, 'app', '\\x00ff'::bytea)")
        .await;
    let events = running.wait_changes(5).await;
    assert_eq!(events[0].op, Op::Insert);
    let truncated: Vec<String> = events[1..3].iter().map(|e| e.table.to_string()).collect();
    assert!(events[1..3].iter().all(|e| e.op == Op::Truncate));
    assert!(truncated.contains(&"public.parent".to_owned()));
    assert!(truncated.contains(&"public.child".to_owned()));
    let flags = events[1]
        .headers
        .iter()
        .find(|h| h.name == "truncate_options")
        .map(|h| String::from_utf8_lossy(&h.value).into_owned());
    assert_eq!(flags.as_deref(), Some("cascade,restart_identity"));
    assert_eq!(events[3].op, Op::Message);
    assert_eq!(events[3].after, Some(vec![Value::Bytes(b"in tx".to_vec())]));
    assert!(events[3]
        .headers
        .iter()
        .any(|h| h.name == "prefix" && h.value == b"app"));
    assert_eq!(events[4].after, Some(vec![Value::Bytes(vec![0, 255])]));
    assert!(events[4]
        .headers
        .iter()
        .any(|h| h.name == "transactional" && h.value == b"false"));
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_schema_change_mid_stream_gets_a_new_version() {
    let db = TestDb::new("pg_ddl").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, a int)").await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (1, 1)").await;
    db.exec("ALTER TABLE t ADD COLUMN b text").await;
    db.exec("INSERT INTO t VALUES (2, 2, 'two')").await;
    db.exec("ALTER TABLE t RENAME COLUMN a TO a2").await;
    db.exec("INSERT INTO t VALUES (3, 3, 'three')").await;
    db.exec("ALTER TABLE t ALTER COLUMN a2 TYPE bigint").await;
    db.exec("INSERT INTO t VALUES (4, 4, 'four')").await;
    db.exec("ALTER TABLE t DROP COLUMN b").await;
    db.exec("INSERT INTO t VALUES (5, 5)").await;
    let events = running.wait_changes(5).await;
    let versions: Vec<u32> = events.iter().map(|e| e.schema.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert_eq!(
        events[1].after,
        Some(vec![Value::Int32(2), Value::Int32(2), text("two")])
    );
    assert_eq!(events[2].schema.columns[1].name, "a2");
    assert_eq!(
        events[3].after,
        Some(vec![Value::Int32(4), Value::Int64(4), text("four")])
    );
    assert_eq!(events[3].schema.columns[1].type_name, "bigint");
    assert_eq!(
        events[4].after,
        Some(vec![Value::Int32(5), Value::Int64(5)])
    );
    running.stop().await;
    db.cleanup().await;
}

/// A transaction much larger than logical_decoding_work_mem is streamed
/// by the server in chunks (protocol 2), buffered here past the memory
/// limit into a spill file, and reaches the log whole, in split batches;
/// an aborted streamed transaction never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_big_streamed_transaction_spills_and_aborts_vanish() {
    let db = TestDb::new("pg_big").await;
    db.exec(&format!(
        "CREATE TABLE big (id int PRIMARY KEY, pad text); \
         ALTER DATABASE {} SET logical_decoding_work_mem = '64kB';",
        db.name
    ))
    .await;
    let mut config = db.config(&["public.big"]);
    config.snapshot = SnapshotMode::Never;
    config.stream_buffer = headwater_core::config::ByteSize(256 * 1024);
    config.max_batch_events = 1000;
    let spill = tempfile::tempdir().unwrap();
    config.spill_dir = Some(spill.path().to_owned());
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec(
        "BEGIN; INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g; \
         SAVEPOINT s; INSERT INTO big VALUES (-1, 'gone'); ROLLBACK TO s; COMMIT;",
    )
    .await;
    db.exec(
        "BEGIN; INSERT INTO big SELECT g, 'aborted' FROM generate_series(10001, 15000) g; ROLLBACK;",
    )
    .await;
    db.exec("INSERT INTO big VALUES (0, 'after')").await;
    let events = running.wait_changes(5001).await;
    assert_eq!(events.len(), 5001);
    let ids: Vec<i32> = events
        .iter()
        .map(|e| match &e.key[0] {
            Value::Int32(i) => *i,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected: Vec<i32> = (1..=5000).collect();
    expected.push(0);
    assert_eq!(ids, expected);
    let appender = running.stop().await;
    assert!(appender.batches() >= 5, "the big transaction was split");
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    db.cleanup().await;
}

/// An appender that stalls once for longer than the server's
/// wal_sender_timeout: the source keeps the connection alive meanwhile.
struct StallOnce {
    inner: std::sync::Arc<MemoryAppender>,
    stalled: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl headwater_core::Appender for StallOnce {
    async fn append(
        &self,
        batch: headwater_core::EventBatch,
    ) -> headwater_core::Result<headwater_core::Durable> {
        if !self.stalled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_secs(8)).await;
        }
        self.inner.append(batch).await
    }

    fn durable_checkpoint(&self) -> Option<headwater_core::Position> {
        self.inner.durable_checkpoint()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_keepalives_answered_while_the_log_is_back_pressured() {
    let db = TestDb::new("pg_slow").await;
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, pad text); \
         ALTER DATABASE {} SET wal_sender_timeout = '2s';",
        db.name
    ))
    .await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    config.max_batch_events = 1000;
    let memory = MemoryAppender::new();
    let appender = std::sync::Arc::new(StallOnce {
        inner: memory.clone(),
        stalled: std::sync::atomic::AtomicBool::new(false),
    });
    pg_common::init_tracing();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let source: Box<dyn headwater_core::Source> = Box::new(
        headwater_source::postgres::PostgresSource::new("pgtest", config),
    );
    let handle = tokio::spawn(source.run(headwater_core::SourceContext {
        name: "pgtest".into(),
        appender,
        shutdown: shutdown.clone(),
    }));
    wait_for_slot(&db).await;
    let slot = db.config(&[]).slot.unwrap();
    let pid_of = || async {
        db.client
            .query_one(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()
            .get::<_, Option<i32>>(0)
    };
    let walsender = pid_of().await;
    db.exec("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g")
        .await;
    testkit::wait_until_async("all rows", pg_common::DEADLINE, || async {
        assert!(
            !handle.is_finished(),
            "the source stopped: the server dropped it"
        );
        memory.len() >= 60_000
    })
    .await;
    // The same walsender served it all: the server never timed us out.
    assert_eq!(pid_of().await, walsender);
    shutdown.cancel();
    handle.await.unwrap().unwrap();
    db.cleanup().await;
}

/// Without server-side streaming (protocol 1), a big transaction arrives
/// whole at commit and is split into bounded batches on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_big_transaction_protocol_1_is_split_into_bounded_batches() {
    let db = TestDb::new("pg_big1").await;
    db.exec("CREATE TABLE big (id int PRIMARY KEY)").await;
    let mut config = db.config(&["public.big"]);
    config.snapshot = SnapshotMode::Never;
    config.streaming = false;
    config.max_batch_events = 500;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO big SELECT generate_series(1, 20000)")
        .await;
    let events = running.wait_changes(20_000).await;
    assert_eq!(events.len(), 20_000);
    assert!(events.iter().all(|e| e.position.clone()
        > headwater_core::Position::Postgres(headwater_core::PgPosition {
            commit_lsn: headwater_core::Lsn(0),
            lsn: headwater_core::Lsn(0)
        })));
    let commit = |e: &headwater_core::ChangeEvent| match &e.position {
        headwater_core::Position::Postgres(p) => p.commit_lsn,
        other => panic!("{other:?}"),
    };
    assert!(
        events.iter().all(|e| commit(e) == commit(&events[0])),
        "one transaction"
    );
    let appender = running.stop().await;
    assert!(appender.batches() >= 40, "{} batches", appender.batches());
    db.cleanup().await;
}

/// Schema versions continue across restarts (kept in `state_dir`): an
/// ALTER while the source is down gives the next version, a restart
/// without change keeps the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_schema_versions_continue_across_restarts() {
    let db = TestDb::new("pg_ver").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, a int)").await;
    let state = tempfile::tempdir().unwrap();
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    config.state_dir = Some(state.path().to_path_buf());

    let mut versions = Vec::new();
    for (run, change) in [
        (1, None),
        (2, Some("ALTER TABLE t ADD COLUMN b text")),
        (3, None),
    ] {
        if let Some(sql) = change {
            db.exec(sql).await;
        }
        let running = start(config.clone(), MemoryAppender::new());
        wait_for_slot(&db).await;
        db.exec(&format!("INSERT INTO t (id, a) VALUES ({run}, {run})"))
            .await;
        let events = running
            .wait(&format!("the insert of run {run}"), |e| {
                e.iter().any(|e| e.key == [Value::Int32(run)])
            })
            .await;
        let event = events
            .iter()
            .find(|e| e.key == [Value::Int32(run)])
            .unwrap();
        versions.push((event.schema.version, event.schema.columns.len()));
        running.stop().await;
    }
    assert_eq!(versions, [(1, 2), (2, 3), (2, 3)]);
    db.cleanup().await;
}

/// GIVEN a row written, then its column's type changed, while the source
/// was stopped
/// WHEN the source decodes both afterwards
/// THEN each event's schema names the type the row was written with — from
/// the Relation message, not from the catalog as it is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_type_names_are_those_of_the_decoded_change_not_of_the_catalog_now() {
    let db = TestDb::new("pg_typename").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v varchar(10))")
        .await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    let running = start(config.clone(), MemoryAppender::new());
    wait_for_slot(&db).await;
    let appender = running.stop().await;
    wait_for_slot_released(&db).await;
    db.exec("INSERT INTO t VALUES (1, 'one')").await;
    db.exec("ALTER TABLE t ALTER COLUMN v TYPE bigint USING 0")
        .await;
    db.exec("INSERT INTO t VALUES (2, 2)").await;
    let running = start(config, appender);
    let events = running.wait_changes(2).await;
    let types: Vec<(&str, &Option<Vec<Value>>)> = events
        .iter()
        .map(|e| (e.schema.columns[1].type_name.as_str(), &e.after))
        .collect();
    assert_eq!(
        types,
        [
            (
                "character varying(10)",
                &Some(vec![Value::Int32(1), text("one")])
            ),
            ("bigint", &Some(vec![Value::Int32(2), Value::Int64(2)])),
        ]
    );
    running.stop().await;
    db.cleanup().await;
}
