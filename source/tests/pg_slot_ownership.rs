//! A source never drops or uses a replication slot or publication it
//! cannot prove it created: slot names are cluster-wide, so another
//! database's source, or another data directory's, may hold the same name.

#![allow(clippy::unwrap_used)] // a test fails loudly by design

mod pg_common;

use headwater_core::{Op, Source, SourceContext};
use headwater_source::postgres::{PostgresConfig, PostgresSource};
use pg_common::{start, wait_for_slot, wait_for_slot_released, TestDb, DEADLINE};
use testkit::MemoryAppender;
use tokio_util::sync::CancellationToken;

/// Runs a source until it fails, and returns the error's text.
async fn run_to_error(config: PostgresConfig) -> String {
    pg_common::init_tracing();
    let source: Box<dyn Source> = Box::new(PostgresSource::new("pgtest", config));
    let run = source.run(SourceContext {
        name: "pgtest".into(),
        appender: MemoryAppender::new(),
        shutdown: CancellationToken::new(),
    });
    match tokio::time::timeout(DEADLINE, run).await {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("the source stopped without an error"),
        Err(_) => panic!("the source ran on instead of refusing"),
    }
}

async fn slot_database(db: &TestDb, slot: &str) -> Option<String> {
    db.client
        .query_opt(
            "SELECT database::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

fn with_state(mut config: PostgresConfig) -> (PostgresConfig, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    config.state_dir = Some(state.path().to_path_buf());
    (config, state)
}

/// GIVEN source A streaming from its slot, and source B of the same name
/// started on the same database from a fresh data directory (nothing in
/// its log) with the same slot name
/// WHEN B starts
/// THEN B refuses, naming the slot, its database and both ways out; A's
/// slot is still there, and A goes on losing nothing.
/// AND WHEN B is started with --resnapshot
/// THEN it takes the slot over and snapshots again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_slot_this_data_directory_did_not_create_is_never_dropped() {
    let db = TestDb::new("pg_own_same").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
        .await;
    let (config_a, state_a) = with_state(db.config(&["public.t"]));
    let slot = config_a.slot.clone().unwrap();
    let a = start(config_a, MemoryAppender::new());
    a.wait("A's snapshot", |e| e.len() >= 2).await;
    wait_for_slot(&db).await;
    let a_events = a.stop().await;
    wait_for_slot_released(&db).await;

    let (config_b, _state_b) = with_state(db.config(&["public.t"]));
    let error = run_to_error(config_b.clone()).await;
    assert!(error.contains(&slot), "{error}");
    assert!(error.contains(&db.name), "{error}");
    assert!(error.contains("--resnapshot pgtest"), "{error}");
    assert!(error.contains("`slot"), "{error}");
    assert_eq!(
        slot_database(&db, &slot).await.as_deref(),
        Some(db.name.as_str())
    );

    // A resumes from its slot: the insert made while it was down arrives.
    db.exec("INSERT INTO t VALUES (3)").await;
    let mut config_a = db.config(&["public.t"]);
    config_a.state_dir = Some(state_a.path().to_path_buf());
    let a = start(config_a, a_events.clone());
    a.wait("A's insert after the restart", |e| {
        e.iter().any(|e| e.op == Op::Insert)
    })
    .await;
    a.stop().await;
    wait_for_slot_released(&db).await;

    config_b.resnapshot.request();
    let b = start(config_b, MemoryAppender::new());
    let events = b.wait("B's new snapshot", |e| e.len() >= 3).await;
    assert!(events.iter().all(|e| e.op == Op::Read), "{events:?}");
    b.stop().await;
    db.cleanup().await;
}

/// GIVEN a slot created by a source reading database X
/// WHEN a source reading database Y (another database of the cluster) is
/// configured with the same slot name, even with --resnapshot
/// THEN it refuses, naming the slot and both databases, and X's slot
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_slot_of_another_database_is_never_used_or_dropped() {
    let x = TestDb::new("pg_own_x").await;
    let y = TestDb::new("pg_own_y").await;
    for db in [&x, &y] {
        db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    }
    let (config_x, _state_x) = with_state(x.config(&["public.t"]));
    let slot = config_x.slot.clone().unwrap();
    let running = start(config_x, MemoryAppender::new());
    wait_for_slot(&x).await;
    running.stop().await;
    wait_for_slot_released(&x).await;

    let (mut config_y, _state_y) = with_state(y.config(&["public.t"]));
    config_y.slot = Some(slot.clone());
    config_y.resnapshot.request();
    let error = run_to_error(config_y).await;
    assert!(error.contains(&slot), "{error}");
    assert!(
        error.contains(&x.name) && error.contains(&y.name),
        "{error}"
    );
    assert_eq!(
        slot_database(&x, &slot).await.as_deref(),
        Some(x.name.as_str())
    );
    y.cleanup().await;
    x.cleanup().await;
}

/// GIVEN the publication of one source (marked with its source id)
/// WHEN another source, from another data directory, names the same
/// publication
/// THEN it refuses to change it, naming the publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_another_sources_publication_is_left_alone() {
    let db = TestDb::new("pg_own_pub").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY);")
        .await;
    let (config_a, _state_a) = with_state(db.config(&["public.t"]));
    let publication = config_a.publication.clone().unwrap();
    let running = start(config_a, MemoryAppender::new());
    wait_for_slot(&db).await;
    running.stop().await;

    let (mut config_b, _state_b) = with_state(db.config(&["public.u"]));
    config_b.slot = Some(format!("{}_b", db.name).chars().take(63).collect());
    let error = run_to_error(config_b).await;
    assert!(error.contains(&publication), "{error}");
    let tables: Vec<String> = db
        .client
        .query(
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["t"], "the publication was changed");
    db.cleanup().await;
}

/// A data directory from before identities: a checkpoint in the log and a
/// slot named the old way (`headwater_{source}`). The source keeps that
/// slot, resuming from it, and records it as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_slot_named_the_old_way_and_proven_by_the_log_is_kept() {
    let db = TestDb::new("pg_own_old").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    // GIVEN a source that ran with the old default slot name
    let old_name = format!("hw_old_{}", db.name)
        .chars()
        .take(40)
        .collect::<String>();
    let (mut config, state) = with_state(db.config(&["public.t"]));
    config.slot = Some(format!("headwater_{old_name}"));
    let source = PostgresSource::new(old_name.clone(), config.clone());
    let appender = MemoryAppender::new();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(Box::new(source).run(SourceContext {
        name: old_name.clone().into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    }));
    testkit::wait_until_async("the old source's snapshot", DEADLINE, || async {
        appender.checkpoint().is_some()
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap().unwrap();
    // ... whose data directory has no identity, nor its publication a
    // mark (both predate them)
    std::fs::remove_file(state.path().join("identity.checkpoint")).unwrap();
    let publication = config.publication.clone().unwrap();
    db.exec(&format!("COMMENT ON PUBLICATION {publication} IS NULL"))
        .await;
    let slot = config.slot.take().unwrap();
    testkit::wait_until_async("the old slot to be released", DEADLINE, || async {
        db.client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                &[&slot],
            )
            .await
            .unwrap()
            .is_some()
    })
    .await;

    // WHEN it starts with the default slot name
    db.exec("INSERT INTO t VALUES (2)").await;
    let source = PostgresSource::new(old_name.clone(), config.clone());
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(Box::new(source).run(SourceContext {
        name: old_name.clone().into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    }));
    // THEN it streams from the old slot: the insert arrives, no new snapshot
    testkit::wait_until_async("the insert", DEADLINE, || async {
        appender.events().iter().any(|e| e.op == Op::Insert)
    })
    .await;
    shutdown.cancel();
    handle.await.unwrap().unwrap();
    let reads = appender
        .events()
        .iter()
        .filter(|e| e.op == Op::Read)
        .count();
    assert_eq!(reads, 1, "a second snapshot was taken");
    let slots: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 1, "a new slot was created beside the old one");
    assert!(state.path().join("identity.checkpoint").exists());
    db.cleanup().await;
}
