//! PostgreSQL source throughput against `pg_recvlogical`.
//!
//! Loads N rows (default 1,000,000; `--rows N`, or `--quick` for 100,000)
//! in 1,000-row transactions into a 6-column table, with four identical
//! pgoutput slots created before the load. Then, one after the other, over
//! TCP and over the unix socket: `pg_recvlogical --no-loop -f /dev/null`
//! reads one slot to the end of the load, and Headwater's source reads
//! another into the embedded log through the daemon's own appender
//! (`headwater::runtime::LogAppender`: transform chain, schema registry,
//! replay guard, checkpoints; fsync per batch). Prints rows/s, the ratio,
//! client CPU
//! seconds (user/system), and Headwater's context switches. Both sides use
//! `sslmode=disable` over TCP, and the real pg_recvlogical binary (not
//! Debian's perl wrapper, whose start-up would count against it).
//!
//! `cargo bench --bench pg_throughput -- --quick`
//! (`--repeat 3` takes the best of three runs of each, on a busy machine;
//! `--transport unix` or `tcp` measures only that one)
//! (needs dev/services.sh's PostgreSQL).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater::runtime::LogAppender;
use headwater_core::{CheckpointStore, SchemaRegistry, SecretUrl, Source, SourceContext};
use headwater_log::{Log, LogConfig};
use headwater_source::postgres::{PostgresConfig, PostgresSource, SnapshotMode};
use testkit::CountingAppender;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

// The daemon's allocator (src/main.rs), so the CPU measured is the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const TX_ROWS: usize = 1_000;

/// CPU seconds of this process and of its waited-for children.
#[derive(Clone, Copy, Default)]
struct Cpu {
    user: f64,
    sys: f64,
    child_user: f64,
    child_sys: f64,
}

/// From /proc/self/stat.
fn cpu_now() -> Cpu {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // After the `)`: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let at = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0);
    let tick = 100.0;
    Cpu {
        user: at(14) / tick,
        sys: at(15) / tick,
        child_user: at(16) / tick,
        child_sys: at(17) / tick,
    }
}

/// The voluntary (a thread went to sleep: the cost that large reads
/// avoid) and involuntary (preempted: other load on the machine) context
/// switches of this process's threads so far.
fn context_switches() -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    let (mut voluntary, mut involuntary) = (0, 0);
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                voluntary += n.trim().parse::<u64>().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                involuntary += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    (voluntary, involuntary)
}

/// The real pg_recvlogical, not Debian's perl wrapper in /usr/bin (whose
/// start-up would count against it).
fn recvlogical_binary() -> String {
    let direct = "/usr/lib/postgresql/15/bin/pg_recvlogical";
    if std::path::Path::new(direct).exists() {
        direct.to_owned()
    } else {
        "pg_recvlogical".to_owned()
    }
}

/// `--repeat N`: each measurement N times on fresh slots; the best run counts.
fn repeat_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// `--transport tcp` or `--transport unix`: measure only that one.
fn transport_arg() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--transport")?;
    args.get(i + 1).cloned()
}

fn rows_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--quick") {
        return 100_000;
    }
    if let Some(i) = args.iter().position(|a| a == "--rows") {
        if let Some(n) = args.get(i + 1).and_then(|n| n.parse().ok()) {
            return n;
        }
    }
    std::env::var("HEADWATER_PG_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

struct Run {
    seconds: f64,
    cpu: f64,
    user: f64,
    sys: f64,
    switches: (u64, u64),
}

fn recvlogical(db: &str, host: &str, slot: &str, publication: &str, endpos: &str) -> Run {
    let before = cpu_now();
    let started = Instant::now();
    let status = Command::new(recvlogical_binary())
        .env("PGPASSWORD", "headwater")
        .args([
            "-d",
            &format!("dbname={db} host={host} user=headwater sslmode=disable"),
            "--slot",
            slot,
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
            "-o",
            "proto_version=1",
            "-o",
            &format!("publication_names={publication}"),
            "-E",
            endpos,
        ])
        .status()
        .expect("pg_recvlogical runs (apt-get install postgresql-client-15)");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "pg_recvlogical failed: {status}");
    let after = cpu_now();
    let user = after.child_user - before.child_user;
    let sys = after.child_sys - before.child_sys;
    Run {
        seconds,
        cpu: user + sys,
        user,
        sys,
        switches: (0, 0),
    }
}

/// The source on `slot`, with its data directory `dir` opened as the
/// daemon opens it (log, schemas, checkpoints, the source's state).
async fn start_source(
    url: &str,
    slot: &str,
    publication: &str,
    dir: &std::path::Path,
) -> (
    Arc<CountingAppender>,
    tokio::task::JoinHandle<headwater_core::Result<()>>,
    CancellationToken,
) {
    let mut config = PostgresConfig::new(url.to_owned(), vec!["public.bench".into()]);
    config.slot = Some(slot.into());
    config.publication = Some(publication.into());
    config.snapshot = SnapshotMode::Never;
    config.state_dir = Some(dir.join("state"));
    config.url = SecretUrl::new(config.url.expose());
    let log = Log::open(&dir.join("log"), LogConfig::default()).expect("open log");
    let daemon = LogAppender::open(
        "bench".into(),
        log,
        Arc::new(SchemaRegistry::open(dir.join("schemas")).expect("schemas")),
        Arc::default(),
        CheckpointStore::open(dir.join("checkpoints")).expect("checkpoints"),
        Arc::default(),
    )
    .await
    .expect("the daemon's appender");
    let appender = CountingAppender::new(daemon);
    let shutdown = CancellationToken::new();
    let source: Box<dyn Source> = Box::new(PostgresSource::new("bench", config));
    let handle = tokio::spawn(source.run(SourceContext {
        name: "bench".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    }));
    (appender, handle, shutdown)
}

/// A data directory whose source created `slot`, as a daemon's first start
/// does (a slot the source did not create is refused as not its own).
async fn headwater_slot(
    admin: &tokio_postgres::Client,
    url: &str,
    slot: &str,
    publication: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, handle, shutdown) = start_source(url, slot, publication, dir.path()).await;
    common::wait_until_streaming(admin, slot, &handle).await;
    shutdown.cancel();
    let _ = handle.await;
    dir
}

async fn headwater(
    url: &str,
    slot: &str,
    publication: &str,
    dir: &std::path::Path,
    rows: usize,
) -> Run {
    let before = cpu_now();
    let switches_before = context_switches();
    let started = Instant::now();
    let (appender, handle, shutdown) = start_source(url, slot, publication, dir).await;
    let wait = async {
        let caught_up = appender.wait_for(rows, || handle.is_finished()).await;
        assert!(caught_up, "the source stopped early");
    };
    tokio::time::timeout(Duration::from_secs(1800), wait)
        .await
        .expect("headwater finished within 30 minutes");
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu_now();
    let switches_after = context_switches();
    let switches = (
        switches_after.0 - switches_before.0,
        switches_after.1 - switches_before.1,
    );
    shutdown.cancel();
    let _ = handle.await;
    let user = after.user - before.user;
    let sys = after.sys - before.sys;
    Run {
        seconds,
        cpu: user + sys,
        user,
        sys,
        switches,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = rows_arg();
    let db = format!("hw_bench_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&testkit::postgres_admin_url(), NoTls)
        .await
        .expect("PostgreSQL from dev/services.sh");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    let (client, conn) = tokio_postgres::connect(&testkit::postgres_url(&db), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let publication = "bench_pub";
    client
        .batch_execute(&format!(
            "CREATE TABLE bench (id bigint PRIMARY KEY, a int, b text, c double precision, \
             d timestamptz, e numeric(12,2)); CREATE PUBLICATION {publication} FOR TABLE bench;"
        ))
        .await
        .expect("schema");
    let repeat = repeat_arg();
    let slots: Vec<String> = (0..repeat)
        .flat_map(|r| ["hw_tcp", "recv_tcp", "hw_unix", "recv_unix"].map(|s| format!("{s}_{r}")))
        .collect();
    let tcp_url = format!("{}?sslmode=disable", testkit::postgres_url(&db));
    let unix_url = format!("postgres://headwater:headwater@%2Fvar%2Frun%2Fpostgresql/{db}");
    let mut dirs = std::collections::HashMap::new();
    for slot in &slots {
        if slot.starts_with("hw_") {
            let url = if slot.starts_with("hw_tcp") {
                &tcp_url
            } else {
                &unix_url
            };
            dirs.insert(
                slot.clone(),
                headwater_slot(&admin, url, slot, publication).await,
            );
        } else {
            client
                .execute(
                    "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                    &[&slot],
                )
                .await
                .expect("slot");
        }
    }
    println!("loading {rows} rows in {TX_ROWS}-row transactions…");
    let started = Instant::now();
    let mut next = 1i64;
    while (next as usize) <= rows {
        let end = (next + TX_ROWS as i64 - 1).min(rows as i64);
        client
            .execute(
                "INSERT INTO bench SELECT g, g::int, 'row number ' || g, g * 1.5, \
                 now(), g / 100.0 FROM generate_series($1::int8, $2::int8) g",
                &[&next, &end],
            )
            .await
            .expect("load");
        next = end + 1;
    }
    let endpos: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("lsn")
        .get(0);
    println!("loaded in {:.1}s", started.elapsed().as_secs_f64());

    println!(
        "{:<8} {:>14} {:>8} {:>14} {:>8} {:>7}",
        "", "pg_recvlogical", "cpu s", "headwater", "cpu s", "ratio"
    );
    let only = transport_arg();
    for (name, host, url) in [
        ("tcp", "127.0.0.1", tcp_url),
        ("unix", "/var/run/postgresql", unix_url),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut recv = Run {
            seconds: f64::MAX,
            cpu: 0.0,
            user: 0.0,
            sys: 0.0,
            switches: (0, 0),
        };
        let mut hw = Run {
            seconds: f64::MAX,
            cpu: 0.0,
            user: 0.0,
            sys: 0.0,
            switches: (0, 0),
        };
        for r in 0..repeat {
            let got = recvlogical(&db, host, &format!("recv_{name}_{r}"), publication, &endpos);
            if got.seconds < recv.seconds {
                recv = got;
            }
            let slot = format!("hw_{name}_{r}");
            let got = headwater(&url, &slot, publication, dirs[&slot].path(), rows).await;
            if got.seconds < hw.seconds {
                hw = got;
            }
        }
        let recv_rate = rows as f64 / recv.seconds;
        let hw_rate = rows as f64 / hw.seconds;
        println!(
            "{name:<8} {:>10.0} r/s {:>8.2} {:>10.0} r/s {:>8.2} {:>7.2}",
            recv_rate,
            recv.cpu,
            hw_rate,
            hw.cpu,
            hw_rate / recv_rate
        );
        println!(
            "{:<8} user/sys s: pg_recvlogical {:.2}/{:.2}, headwater {:.2}/{:.2}; headwater context switches {} voluntary, {} involuntary",
            "", recv.user, recv.sys, hw.user, hw.sys, hw.switches.0, hw.switches.1
        );
    }
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for slot in &slots {
        let _ = admin
            .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
            .await;
    }
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}
