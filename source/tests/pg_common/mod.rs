//! Helpers for the PostgreSQL source's tests: a fresh database per test
//! (dropped at the end, also when the test panics), a source running on a
//! memory appender, and waiting for events.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use headwater_core::{ChangeEvent, Op, Source, SourceContext};
use headwater_source::postgres::{PostgresConfig, PostgresSource};
use testkit::MemoryAppender;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

pub const DEADLINE: Duration = Duration::from_secs(60);

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e} (run dev/services.sh)"));
    tokio::spawn(conn);
    client
}

/// A database of its own, dropped with every slot on it at the end.
pub struct TestDb {
    pub name: String,
    pub client: Client,
    /// The sources' state directory, as the daemon gives each source one
    /// in its data directory (it records which slot the source created).
    pub state: tempfile::TempDir,
    cleaned: bool,
}

impl TestDb {
    pub async fn new(prefix: &str) -> TestDb {
        let name = testkit::unique_name(prefix);
        let admin = connect(&testkit::postgres_admin_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let client = connect(&testkit::postgres_url(&name)).await;
        TestDb {
            name,
            client,
            state: tempfile::tempdir().expect("a state directory"),
            cleaned: false,
        }
    }

    pub fn url(&self) -> String {
        testkit::postgres_url(&self.name)
    }

    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    pub fn config(&self, tables: &[&str]) -> PostgresConfig {
        let mut config =
            PostgresConfig::new(self.url(), tables.iter().map(|t| t.to_string()).collect());
        config.slot = Some(format!("{}_slot", self.name).chars().take(63).collect());
        config.publication = Some(format!("{}_pub", self.name).chars().take(63).collect());
        config.state_dir = Some(self.state.path().to_path_buf());
        config
    }

    pub async fn cleanup(mut self) {
        self.cleaned = true;
        drop_database(self.name.clone()).await;
    }
}

async fn drop_database(name: String) {
    let admin = connect(&testkit::postgres_admin_url()).await;
    for _ in 0..50 {
        let _ = admin
            .execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE database = $1 AND active_pid IS NOT NULL",
                &[&name],
            )
            .await;
        let dropped = admin
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE database = $1",
                &[&name],
            )
            .await;
        if dropped.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // A failed test: drop the database from a thread of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(name));
            }
        })
        .join();
    }
}

/// A source running on a memory appender until `stop`.
pub struct Running {
    pub appender: Arc<MemoryAppender>,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<headwater_core::Result<()>>,
}

/// Logs to the test's output (`RUST_LOG=headwater_source=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub fn start(config: PostgresConfig, appender: Arc<MemoryAppender>) -> Running {
    init_tracing();
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        name: "pgtest".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    };
    let source: Box<dyn Source> = Box::new(PostgresSource::new("pgtest", config));
    let handle = tokio::spawn(source.run(ctx));
    Running {
        appender,
        shutdown,
        handle,
    }
}

impl Running {
    pub async fn stop(self) -> Arc<MemoryAppender> {
        self.shutdown.cancel();
        match tokio::time::timeout(DEADLINE, self.handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("source failed: {e}"),
            Ok(Err(e)) => panic!("source panicked: {e}"),
            Err(_) => panic!("source did not stop within {DEADLINE:?}"),
        }
        self.appender
    }

    /// Waits until the events satisfy `done`; fails early if the source
    /// stopped.
    pub async fn wait(
        &self,
        what: &str,
        mut done: impl FnMut(&[ChangeEvent]) -> bool,
    ) -> Vec<ChangeEvent> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.appender.notify.notified();
            let events = self.appender.events();
            if done(&events) {
                return events;
            }
            assert!(
                !self.handle.is_finished(),
                "the source stopped while waiting for {what}"
            );
            if tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            })
            .await
            .is_err()
                || tokio::time::Instant::now() >= deadline
            {
                panic!(
                    "timed out waiting for {what}; have {} events: {:?}",
                    events.len(),
                    events
                        .iter()
                        .map(|e| (e.op, e.table.to_string()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    /// Waits until at least `n` events that are not snapshot reads arrived.
    pub async fn wait_changes(&self, n: usize) -> Vec<ChangeEvent> {
        let events = self
            .wait(&format!("{n} changes"), |e| {
                e.iter().filter(|e| e.op != Op::Read).count() >= n
            })
            .await;
        events.into_iter().filter(|e| e.op != Op::Read).collect()
    }
}

/// Waits until the source streams: its slot exists, is consistent (a
/// confirmed flush LSN) and is held by a walsender. A slot still being
/// created is active too, but changes made then may precede its
/// consistent point.
pub async fn wait_for_slot(db: &TestDb) {
    let slot = db.config(&[]).slot.unwrap_or_default();
    testkit::wait_until_async("the slot to stream", DEADLINE, || async {
        db.client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active \
                 AND confirmed_flush_lsn IS NOT NULL",
                &[&slot],
            )
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    // START_REPLICATION itself holds the slot too: make sure it is past
    // creation by looking for the walsender in streaming state.
    testkit::wait_until_async("the walsender to stream", DEADLINE, || async {
        db.client
            .query_opt(
                "SELECT 1 FROM pg_stat_replication r JOIN pg_replication_slots s \
                 ON s.active_pid = r.pid WHERE s.slot_name = $1 AND r.state = 'streaming'",
                &[&slot],
            )
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
}

/// Waits until the walsender of a stopped source has let go of the slot:
/// it exits some time after the client hung up, and until then
/// `wait_for_slot` would take the old walsender for the new source's.
pub async fn wait_for_slot_released(db: &TestDb) {
    let slot = db.config(&[]).slot.unwrap_or_default();
    testkit::wait_until_async("the slot to be released", DEADLINE, || async {
        db.client
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active",
                &[&slot],
            )
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
}

/// Drops the test's slot once its walsender has let go of it.
pub async fn drop_slot(db: &TestDb) {
    wait_for_slot_released(db).await;
    let slot = db.config(&[]).slot.unwrap_or_default();
    db.client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .expect("drop slot");
}
