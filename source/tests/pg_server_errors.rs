//! Server configurations the shared test PostgreSQL must not have, each on
//! a throwaway cluster of its own (testkit's `PgCluster`): wal_level below
//! logical, and a slot invalidated by max_slot_wal_keep_size. The source
//! must fail with the error that says what to do, and `check()` must say
//! the same.

#![allow(clippy::unwrap_used)]

mod pg_common;

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Finding, Lsn, Source, SourceContext};
use headwater_source::postgres::{PgError, PostgresConfig, PostgresSource};
use pg_common::{connect, init_tracing, DEADLINE};
use testkit::{MemoryAppender, PgCluster};
use tokio_util::sync::CancellationToken;

async fn cluster(settings: &'static [(&'static str, &'static str)]) -> PgCluster {
    tokio::task::spawn_blocking(move || PgCluster::start(settings))
        .await
        .unwrap()
}

async fn stop(cluster: PgCluster) {
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// Runs the source until it ends by itself; returns its error.
async fn run_until_error(config: PostgresConfig) -> headwater_core::Error {
    init_tracing();
    let source: Box<dyn Source> = Box::new(PostgresSource::new("srverr", config));
    let ctx = SourceContext {
        name: "srverr".into(),
        appender: MemoryAppender::new(),
        shutdown: CancellationToken::new(),
    };
    match tokio::time::timeout(DEADLINE, source.run(ctx)).await {
        Ok(Err(e)) => e,
        Ok(Ok(())) => panic!("the source ended without an error"),
        Err(_) => panic!("the source did not fail within {DEADLINE:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_wal_level_replica_is_refused_with_the_fix() {
    let cluster = cluster(&[("wal_level", "replica")]).await;
    let url = cluster.url("postgres");
    let client = connect(&url).await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let config = PostgresConfig::new(url, vec!["public.t".into()]);
    let expected = PgError::WalLevel {
        current: "replica".into(),
    }
    .to_string();
    assert_eq!(
        expected,
        "wal_level is `replica` but logical replication needs `logical`: run `ALTER SYSTEM SET wal_level = logical` and restart PostgreSQL"
    );

    let findings = PostgresSource::new("srverr", config.clone()).check().await;
    assert!(
        findings.contains(&Finding::fail(expected.clone())),
        "{findings:?}"
    );

    let error = run_until_error(config).await;
    assert_eq!(error.to_string(), format!("postgres source: {expected}"));
    assert_eq!(error.kind(), ErrorKind::WaitForOperator);
    // Nothing was created on the server.
    let slots: i64 = client
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0);
    drop(client);
    stop(cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_slot_invalidated_by_max_slot_wal_keep_size_says_how_to_recover() {
    let cluster = cluster(&[("wal_level", "logical"), ("max_slot_wal_keep_size", "1MB")]).await;
    let url = cluster.url("postgres");
    let client = connect(&url).await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
        .await
        .unwrap();
    let slot = "hw_lost_slot";
    client
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .unwrap();

    // WAL piles up while nobody consumes the slot; a checkpoint past the
    // 1 MiB the slot may keep invalidates it (1 MiB segments: fast).
    let mut status = String::new();
    let mut inserted = 0;
    for round in 0..40 {
        let from = round * 2_000;
        client
            .execute(
                "INSERT INTO t SELECT g, repeat('x', 500) FROM generate_series($1::int, $1::int + 1999) g",
                &[&from],
            )
            .await
            .unwrap();
        inserted += 2_000;
        client
            .batch_execute("SELECT pg_switch_wal(); CHECKPOINT")
            .await
            .unwrap();
        status = client
            .query_one(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()
            .get(0);
        if status == "lost" {
            break;
        }
    }
    assert_eq!(status, "lost", "server log:\n{}", cluster.log());
    let confirmed: Option<String> = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    let confirmed: Option<Lsn> = confirmed.map(|l| l.parse().unwrap());

    let mut config = PostgresConfig::new(url, vec!["public.t".into()]);
    config.slot = Some(slot.into());
    config.publication = Some("hw_lost_pub".into());
    let expected = PgError::SlotInvalidated {
        slot: slot.into(),
        confirmed_flush: confirmed,
    }
    .to_string();
    for part in [
        "replication slot `hw_lost_slot` was invalidated",
        "max_slot_wal_keep_size",
        "SELECT pg_drop_replication_slot('hw_lost_slot')",
        "takes a new snapshot",
    ] {
        assert!(expected.contains(part), "{expected}");
    }

    let findings = PostgresSource::new("srverr", config.clone()).check().await;
    assert!(
        findings.contains(&Finding::fail(expected.clone())),
        "{findings:?}"
    );

    let error = run_until_error(config.clone()).await;
    assert_eq!(error.to_string(), format!("postgres source: {expected}"));
    assert_eq!(error.kind(), ErrorKind::WaitForOperator);

    // The recovery the message gives works: drop the slot, start again.
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .unwrap();
    let appender = MemoryAppender::new();
    let running = pg_common::start(config, appender.clone());
    let events = running
        .wait("the new snapshot", |e| e.len() >= inserted)
        .await;
    assert_eq!(events.len(), inserted);
    running.stop().await;
    drop(client);
    stop(cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cluster_is_removed_when_dropped() {
    let cluster = cluster(&[]).await;
    let dir = cluster.dir.clone();
    let client = connect(&cluster.url("postgres")).await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);
    stop(cluster).await;
    assert!(!dir.exists(), "{} is left behind", dir.display());
}
