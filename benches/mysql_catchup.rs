//! Catch-up rate over a binlog backlog, against `mariadb-binlog
//! --read-from-remote-server -v` in the same run.
//!
//! Writes `HW_BENCH_ROWS` rows (default 200,000; the figure is
//! 1,000,000) into a fresh table in 1,000-row INSERTs, then times:
//! 1. `mariadb-binlog --read-from-remote-server -v` over that binlog range,
//!    output to /dev/null (the reference);
//! 2. the MySQL source reading the same range from its start position,
//!    decoding every row and appending it to the embedded log through the
//!    daemon's own appender (`headwater::runtime::LogAppender`: transform
//!    chain, schema registry, replay guard, checkpoints; fsync per batch),
//!    until every row is durable.
//!
//! Run: `cargo bench --bench mysql_catchup`
//! (`HW_BENCH_ROWS=1000000` for the full backlog). Needs dev/services.sh's MariaDB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater::runtime::{checkpoint_name, LogAppender};
use headwater_core::{
    CheckpointStore, MySqlPosition, Position, SchemaRegistry, Source, SourceContext,
};
use headwater_log::{Log, LogConfig};
use headwater_source::mysql::{MySqlConfig, MySqlSource, ResumeBy};
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::{mysql_url, CountingAppender};
use tokio_util::sync::CancellationToken;

// The daemon's allocator (src/main.rs), so the CPU measured is the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// This process's CPU seconds (user + system) from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs mariadb-binlog over [start, end); returns (wall, cpu) seconds.
fn reference(start: &MySqlPosition, end: &MySqlPosition) -> (f64, f64) {
    let url = url::Url::parse(&mysql_url()).expect("mysql url");
    let mut cmd = format!(
        "TIMEFORMAT='%U %S'; time mariadb-binlog --read-from-remote-server --host={} --port={} --user={} --password={} -v --start-position={} ",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(3306),
        url.username(),
        url.password().unwrap_or(""),
        start.offset
    );
    if start.file == end.file {
        cmd.push_str(&format!(
            "--stop-position={} {} > /dev/null",
            end.offset, start.file
        ));
    } else {
        cmd.push_str(&format!("--to-last-log {} > /dev/null", start.file));
    }
    let began = Instant::now();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&cmd)
        .output()
        .expect("run mariadb-binlog");
    let wall = began.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mariadb-binlog failed: {stderr}");
    let cpu: f64 = stderr
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|t| t.parse::<f64>().ok())
        .sum();
    (wall, cpu)
}

fn main() {
    let rows: usize = std::env::var("HW_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(rows));
}

async fn run(rows: usize) {
    // GIVEN a backlog of `rows` rows in the binlog
    let mut db = MySqlDb::create("hw_bench_catchup").await;
    db.exec("CREATE TABLE t (id BIGINT PRIMARY KEY, a INT NOT NULL, b VARCHAR(32), c DECIMAL(10,2), d DATETIME(3))")
        .await;
    let start = db.binlog_position().await;
    let began = Instant::now();
    let mut id = 0usize;
    while id < rows {
        let n = 1000.min(rows - id);
        let values: Vec<String> = (id..id + n)
            .map(|i| {
                format!(
                    "({i}, {}, 'name-{i}', {}.{:02}, '2024-01-01 12:00:00.{:03}')",
                    i % 1000,
                    i % 100000,
                    i % 100,
                    i % 1000
                )
            })
            .collect();
        db.exec(&format!("INSERT INTO t VALUES {}", values.join(",")))
            .await;
        id += n;
    }
    let end = db.binlog_position().await;
    println!(
        "backlog: {rows} rows written in {:.1}s, binlog {}:{} .. {}:{}",
        began.elapsed().as_secs_f64(),
        start.file,
        start.offset,
        end.file,
        end.offset
    );

    // WHEN mariadb-binlog reads it
    let (ref_wall, ref_cpu) = reference(&start, &end);
    let ref_rate = rows as f64 / ref_wall;

    // AND the source catches up into the embedded log
    // A fresh data directory, opened as the daemon opens it, whose
    // checkpoint says where the backlog starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(&dir.path().join("log"), LogConfig::default()).expect("open log");
    let checkpoints = CheckpointStore::open(dir.path().join("checkpoints")).expect("checkpoints");
    checkpoints
        .save(&checkpoint_name("bench"), &Position::MySql(start.clone()))
        .expect("the start checkpoint");
    let daemon = LogAppender::open(
        "bench".into(),
        log,
        Arc::new(SchemaRegistry::open(dir.path().join("schemas")).expect("schemas")),
        Arc::default(),
        checkpoints,
        Arc::default(),
    )
    .await
    .expect("the daemon's appender");
    let appender = CountingAppender::new(daemon);
    let shutdown = CancellationToken::new();
    let mut cfg = MySqlConfig::new(
        mysql_url(),
        unique_server_id(),
        vec![format!("{}.t", db.name)],
    );
    cfg.resume_by = ResumeBy::Position;
    let ctx = SourceContext {
        name: "bench".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    };
    let cpu_before = cpu_seconds();
    let began = Instant::now();
    let task = tokio::spawn(Box::new(MySqlSource::new(cfg)).run(ctx));
    let deadline = Instant::now() + Duration::from_secs(600);
    assert!(
        appender.wait_for(rows, || Instant::now() >= deadline).await,
        "source did not catch up within 10 minutes"
    );
    let wall = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");
    let rate = rows as f64 / wall;

    // THEN
    println!("mariadb-binlog -v      : {ref_rate:>10.0} rows/s  ({ref_wall:.2}s wall, {ref_cpu:.2} CPU s)");
    println!("headwater mysql source : {rate:>10.0} rows/s  ({wall:.2}s wall, {cpu:.2} CPU s, decode + append to the embedded log, fsync per batch)");
    println!(
        "ratio                  : {:.2} (target >= 0.5)",
        rate / ref_rate
    );
    db.drop_db().await;
}
