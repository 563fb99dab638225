//! Connecting: SCRAM, md5, trust, the unix socket, TLS with every
//! sslmode; and the errors and `check` findings an operator sees.

// Test helpers may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod pg_common;

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Op, SecretUrl, Severity, Source, Value};
use headwater_source::postgres::conn::{sql_connect, ConnParams};
use headwater_source::postgres::replication::ReplicationConn;
use headwater_source::postgres::{PgError, PostgresSource, SnapshotMode};
use pg_common::{start, wait_for_slot, TestDb};
use testkit::MemoryAppender;

/// `postgres://USER:PASS@HOST/DB?QUERY` for the test database.
fn url(db: &TestDb, userinfo: &str, host: &str, query: &str) -> String {
    format!("postgres://{userinfo}@{host}/{}{query}", db.name)
}

async fn ssl_in_use(db: &TestDb, url: &str) -> bool {
    let params = ConnParams::from_url(&SecretUrl::new(url)).unwrap();
    let client = sql_connect(&params)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let _ = db;
    row.get(0)
}

async fn connect_err(url: &str) -> PgError {
    let params = ConnParams::from_url(&SecretUrl::new(url)).unwrap();
    match sql_connect(&params).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e,
    }
}

/// The source streams over each login method and transport.
async fn streams_with(db: &TestDb, source_url: String) {
    let mut config = db.config(&["public.t"]);
    config.url = SecretUrl::new(source_url);
    config.snapshot = SnapshotMode::Never;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(db).await;
    db.exec("INSERT INTO t VALUES (DEFAULT)").await;
    let events = running.wait_changes(1).await;
    assert_eq!(events[0].op, Op::Insert);
    running.stop().await;
    pg_common::drop_slot(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_logins_scram_md5_trust_and_unix_socket() {
    let db = TestDb::new("pg_login").await;
    db.exec("CREATE TABLE t (id serial PRIMARY KEY)").await;
    // SCRAM-SHA-256 over TCP, and over the socket (percent-encoded and as
    // a `host` parameter).
    streams_with(
        &db,
        url(&db, "headwater:headwater", "127.0.0.1", "?sslmode=disable"),
    )
    .await;
    streams_with(
        &db,
        url(&db, "headwater:headwater", "%2Fvar%2Frun%2Fpostgresql", ""),
    )
    .await;
    streams_with(
        &db,
        url(
            &db,
            "headwater:headwater",
            "localhost",
            "?host=/var/run/postgresql",
        ),
    )
    .await;
    // md5 and trust.
    streams_with(
        &db,
        url(
            &db,
            "headwater_md5:headwater",
            "127.0.0.1",
            "?sslmode=disable",
        ),
    )
    .await;
    streams_with(
        &db,
        url(&db, "headwater_trust", "127.0.0.1", "?sslmode=disable"),
    )
    .await;
    // A wrong password waits for an operator and says so.
    let e = connect_err(&url(
        &db,
        "headwater:wrong",
        "127.0.0.1",
        "?sslmode=disable",
    ))
    .await;
    assert!(matches!(e, PgError::Auth { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::WaitForOperator);
    let params = ConnParams::from_url(&SecretUrl::new(url(
        &db,
        "headwater:wrong",
        "127.0.0.1",
        "",
    )))
    .unwrap();
    let e = ReplicationConn::connect(&params)
        .await
        .err()
        .expect("wrong password");
    assert!(matches!(e, PgError::Auth { .. }), "{e}");
    db.cleanup().await;
}

fn write_pem(dir: &tempfile::TempDir, name: &str, pem: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// TLS: the server's certificate comes from dev/services.sh's test CA;
/// a CA this test generates (rcgen) signed nothing the server has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_tls_require_verify_full_and_wrong_ca() {
    let db = TestDb::new("pg_tls").await;
    db.exec("CREATE TABLE t (id serial PRIMARY KEY)").await;
    let ca = testkit::postgres_ca_path();
    let user = "headwater:headwater";
    assert!(!ssl_in_use(&db, &url(&db, user, "127.0.0.1", "?sslmode=disable")).await);
    assert!(ssl_in_use(&db, &url(&db, user, "127.0.0.1", "?sslmode=prefer")).await);
    assert!(ssl_in_use(&db, &url(&db, user, "127.0.0.1", "?sslmode=require")).await);
    for host in ["127.0.0.1", "localhost"] {
        let full = url(
            &db,
            user,
            host,
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        );
        assert!(ssl_in_use(&db, &full).await, "{full}");
    }
    assert!(
        ssl_in_use(
            &db,
            &url(
                &db,
                user,
                "127.0.0.1",
                &format!("?sslmode=verify-ca&sslrootcert={ca}")
            )
        )
        .await
    );

    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let wrong = write_pem(&dir, "other-ca.crt", &other.cert.pem());
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = connect_err(&url(
            &db,
            user,
            "127.0.0.1",
            &format!("?sslmode={mode}&sslrootcert={wrong}"),
        ))
        .await;
        assert!(matches!(e, PgError::Tls { .. }), "{mode}: {e}");
        assert_eq!(e.kind(), ErrorKind::WaitForOperator);
    }
    let e = connect_err(&url(
        &db,
        user,
        "127.0.0.1",
        "?sslmode=verify-full&sslrootcert=/nonexistent.crt",
    ))
    .await;
    assert!(e.to_string().contains("sslrootcert"), "{e}");

    // The whole source, replication connection included, over verified TLS.
    let full = url(
        &db,
        user,
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    );
    let mut config = db.config(&["public.t"]);
    config.url = SecretUrl::new(full);
    config.snapshot = SnapshotMode::Never;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    let slot = db.config(&[]).slot.unwrap();
    let walsender_ssl: bool = db
        .client
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_replication_slots r ON r.active_pid = s.pid WHERE r.slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .get(0);
    assert!(walsender_ssl);
    db.exec("INSERT INTO t VALUES (DEFAULT)").await;
    let events = running.wait_changes(1).await;
    assert_eq!(events[0].after, Some(vec![Value::Int32(1)]));
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_slot_in_use_names_slot_and_pid() {
    let db = TestDb::new("pg_busy").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let running = start(db.config(&["public.t"]), MemoryAppender::new());
    wait_for_slot(&db).await;
    let second = PostgresSource::new("pgtest", db.config(&["public.t"]));
    let ctx = headwater_core::SourceContext {
        name: "pgtest".into(),
        appender: MemoryAppender::new(),
        shutdown: tokio_util::sync::CancellationToken::new(),
    };
    let e = Box::new(second).run(ctx).await.expect_err("a busy slot");
    let text = e.to_string();
    let slot = db.config(&[]).slot.unwrap();
    assert!(text.contains(&slot) && text.contains("PID"), "{text}");
    assert_eq!(e.kind(), ErrorKind::Retry);
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_check_reports_what_to_fix() {
    let db = TestDb::new("pg_check").await;
    let role = format!("hw_{}_r", db.name);
    db.exec(&format!(
        "CREATE TABLE good (id int PRIMARY KEY); CREATE TABLE nokey (v int); \
         CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING; \
         CREATE TABLE fullrow (v int); ALTER TABLE fullrow REPLICA IDENTITY FULL; \
         CREATE ROLE {role} LOGIN REPLICATION; GRANT SELECT ON good TO {role};"
    ))
    .await;
    let config = db.config(&[
        "public.good",
        "public.nokey",
        "public.nothing",
        "public.fullrow",
        "public.missing*",
    ]);
    let findings = PostgresSource::new("pgtest", config.clone()).check().await;
    let text = |s: Severity| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.severity == s)
            .map(|f| f.message.clone())
            .collect()
    };
    let (ok, warn, fail) = (
        text(Severity::Ok),
        text(Severity::Warn),
        text(Severity::Fail),
    );
    assert!(
        ok.iter().any(|m| m.contains("wal_level is logical")),
        "{ok:?}"
    );
    assert!(ok.iter().any(|m| m.contains("may replicate")), "{ok:?}");
    assert!(
        ok.iter()
            .any(|m| m.contains("public.fullrow") && m.contains("FULL")),
        "{ok:?}"
    );
    assert!(
        warn.iter()
            .any(|m| m.contains("public.nokey") && m.contains("no primary key")),
        "{warn:?}"
    );
    assert!(
        warn.iter()
            .any(|m| m.contains("public.nothing") && m.contains("NOTHING")),
        "{warn:?}"
    );
    assert!(
        fail.iter().any(|m| m.contains("public.missing*")),
        "{fail:?}"
    );
    assert!(
        ok.iter().any(|m| m.contains("does not exist yet")),
        "{ok:?}"
    );

    // A role without SELECT on most tables.
    let mut limited = config.clone();
    limited.url = SecretUrl::new(url(&db, &role, "127.0.0.1", "?sslmode=disable"));
    let findings = PostgresSource::new("pgtest", limited).check().await;
    let fails: Vec<&str> = findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        fails.iter().any(|m| m.contains("cannot SELECT")
            && m.contains("nokey")
            && m.contains("GRANT SELECT")),
        "{fails:?}"
    );
    assert!(!fails.iter().any(|m| m.contains("\"good\"")), "{fails:?}");

    // Once streaming, the slot's state and retained WAL are reported.
    let running = start(db.config(&["public.good"]), MemoryAppender::new());
    wait_for_slot(&db).await;
    let findings = PostgresSource::new("pgtest", db.config(&["public.good"]))
        .check()
        .await;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Warn && f.message.contains("PID")),
        "{findings:?}"
    );
    running.stop().await;
    let findings = PostgresSource::new("pgtest", db.config(&["public.good"]))
        .check()
        .await;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Ok && f.message.contains("WAL")),
        "{findings:?}"
    );
    db.exec(&format!("DROP OWNED BY {role}; ")).await;
    db.cleanup().await;
    let admin = pg_common::connect(&testkit::postgres_admin_url()).await;
    let _ = admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
}

/// A lost connection ends the run with a Retry error (the supervisor
/// reconnects), and a new run resumes from the slot without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_connection_loss_is_retry_and_resume_loses_nothing() {
    let db = TestDb::new("pg_lost").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    let running = start(config.clone(), MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (1)").await;
    running.wait_changes(1).await;
    let slot = db.config(&[]).slot.unwrap();
    db.client
        .execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap();
    db.exec("INSERT INTO t VALUES (2)").await;
    let result = tokio::time::timeout(pg_common::DEADLINE, running.handle)
        .await
        .expect("the run ends")
        .expect("no panic");
    let e = result.expect_err("an error");
    assert_eq!(e.kind(), ErrorKind::Retry, "{e}");
    let running = start(config, running.appender);
    wait_for_slot(&db).await;
    db.exec("INSERT INTO t VALUES (3)").await;
    let events = running.wait_changes(3).await;
    let ids: Vec<&Value> = events.iter().map(|e| &e.key[0]).collect();
    assert_eq!(ids, [&Value::Int32(1), &Value::Int32(2), &Value::Int32(3)]);
    running.stop().await;
    db.cleanup().await;
}

/// An idle source emits heartbeats, so its slot's confirmed flush moves
/// past WAL written by tables it does not capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_heartbeat_advances_an_idle_slot() {
    let db = TestDb::new("pg_beat").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE other (id int)")
        .await;
    let mut config = db.config(&["public.t"]);
    config.snapshot = SnapshotMode::Never;
    config.heartbeat = headwater_core::config::HumanDuration(std::time::Duration::from_millis(300));
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec("INSERT INTO other SELECT generate_series(1, 1000)")
        .await;
    let target: String = db
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let slot = db.config(&[]).slot.unwrap();
    testkit::wait_until_async("the slot to move past idle WAL", pg_common::DEADLINE, || async {
        db.client
            .query_one(
                "SELECT confirmed_flush_lsn >= $2::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot, &target],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false)
    })
    .await;
    // Heartbeats are not events.
    let appender = running.stop().await;
    assert!(appender.is_empty(), "{:?}", appender.events());
    db.cleanup().await;
}

/// A role that may replicate but not read a table is told which GRANT
/// it needs, and the supervisor waits for an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_missing_select_privilege_names_table_and_grant() {
    let db = TestDb::new("pg_nosel").await;
    let role = format!("hw_{}_r", db.name);
    let config = db.config(&["public.secret"]);
    db.exec(&format!(
        "CREATE TABLE secret (id int PRIMARY KEY); INSERT INTO secret VALUES (1); \
         CREATE ROLE {role} LOGIN REPLICATION; \
         CREATE PUBLICATION {} FOR TABLE secret;",
        config.publication.clone().unwrap()
    ))
    .await;
    let mut limited = config;
    limited.url = SecretUrl::new(url(&db, &role, "127.0.0.1", "?sslmode=disable"));
    let ctx = headwater_core::SourceContext {
        name: "pgtest".into(),
        appender: MemoryAppender::new(),
        shutdown: tokio_util::sync::CancellationToken::new(),
    };
    let e = Box::new(PostgresSource::new("pgtest", limited))
        .run(ctx)
        .await
        .expect_err("no SELECT");
    let text = e.to_string();
    assert!(
        text.contains("GRANT SELECT ON \"public\".\"secret\""),
        "{text}"
    );
    assert!(text.contains(&role), "{text}");
    assert_eq!(e.kind(), ErrorKind::WaitForOperator);
    db.cleanup().await;
    let admin = pg_common::connect(&testkit::postgres_admin_url()).await;
    let _ = admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
}
