//! End-to-end harness: PostgreSQL → log → Parquet, in one process.
//!
//! `HEADWATER_BENCH_ROWS` rows (default 200,000; 1,000-row transactions,
//! 6 columns) are committed while two slots wait, then, one after the
//! other, in the same run:
//!
//! 1. Source alone: the first slot → log, no sink (the rate the Parquet
//!    sink has to keep up with).
//! 2. End to end: the second slot → log → Parquet sink, until the sink has
//!    committed every row.
//! 3. Steady load, through the same running pipeline: 5,000 rows/s for
//!    `HEADWATER_BENCH_STEADY_SECS` (default 10) seconds; for every row,
//!    the time from its commit (PostgreSQL's commit timestamp) until it is
//!    durable in the log: p50 and p99.
//! 4. Sink alone: a second Parquet sink drains that log from its start
//!    (the rate the sink sustains on its own).
//!
//! Prints rows/s and CPU seconds per phase, and each phase's peak RSS
//! (VmHWM, reset between phases). Needs the services of `dev/services.sh`. Run:
//! `cargo bench --bench pipeline`; the source connects over TCP, or over
//! the unix socket with `HEADWATER_BENCH_SOCKET=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cpu_seconds, env_or, peak_rss_mb, pg, reset_peak_rss};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use headwater::metrics::Metrics;
use headwater::runtime::{LogAppender, SinkTask};
use headwater_core::{
    Appender, CheckpointStore, Durable, EventBatch, Position, Result, SchemaRegistry, Sink, Source,
    SourceContext, Timestamp,
};
use headwater_log::{Log, LogConfig};
use headwater_sink::parquet::{ParquetConfig, ParquetSink};
use headwater_source::postgres::{PostgresConfig, PostgresSource, SnapshotMode};
use tokio_util::sync::CancellationToken;

/// Wraps the real appender; records commit → durable latency per row.
struct Timed {
    inner: Arc<LogAppender>,
    latencies_us: Arc<Mutex<Vec<i64>>>,
    recording: Arc<std::sync::atomic::AtomicBool>,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[async_trait]
impl Appender for Timed {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        let commits: Vec<i64> = batch
            .events
            .iter()
            .filter_map(|e| match e.commit_ts {
                Some(Timestamp::Micros(us)) => Some(us),
                _ => None,
            })
            .collect();
        let durable = self.inner.append(batch).await?;
        if !self.recording.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(durable);
        }
        let latencies = self.latencies_us.clone();
        Ok(Durable::new(async move {
            durable.await?;
            let now = now_us();
            latencies
                .lock()
                .unwrap()
                .extend(commits.iter().map(|c| now - c));
            Ok(())
        }))
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.inner.durable_checkpoint()
    }
}

fn main() {
    if let Ok(filter) = std::env::var("HEADWATER_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

// The daemon's allocator (src/main.rs), so RSS and CPU are the daemon's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const TOPIC: &str = "bench.public.t";

/// What the phases share.
struct Bench {
    dir: tempfile::TempDir,
    source_url: String,
    db: String,
    schemas: Arc<SchemaRegistry>,
    metrics: Arc<Metrics>,
    recording: Arc<std::sync::atomic::AtomicBool>,
    latencies: Arc<Mutex<Vec<i64>>>,
}

impl Bench {
    fn log(&self, name: &str) -> Arc<Log> {
        Log::open(&self.dir.path().join(name), LogConfig::default()).unwrap()
    }

    /// The source on slot `{db}_{slot}`, appending to `log`.
    async fn start_source(
        &self,
        slot: &str,
        log: &Arc<Log>,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let inner = LogAppender::open(
            "bench".into(),
            log.clone(),
            self.schemas.clone(),
            Arc::default(),
            // Its own checkpoints per slot: each resumes where it stopped.
            CheckpointStore::open(self.dir.path().join(format!("checkpoints-{slot}"))).unwrap(),
            self.metrics.clone(),
        )
        .await
        .unwrap();
        let appender = Arc::new(Timed {
            inner,
            latencies_us: self.latencies.clone(),
            recording: self.recording.clone(),
        });
        let mut config = PostgresConfig::new(self.source_url.clone(), vec!["public.t".into()]);
        config.snapshot = SnapshotMode::Never;
        config.slot = Some(format!("{}_{slot}", self.db));
        // A publication per slot: a publication belongs to the source
        // identity (slot) that created it.
        config.publication = Some(format!("{}_{slot}", self.db));
        // As the daemon does: the source's identity (slot, publication)
        // is recorded here, so the second run on a slot proves it its own.
        config.state_dir = Some(self.dir.path().join(format!("state-{slot}")));
        let source = PostgresSource::new("bench", config);
        let stop = stop.clone();
        tokio::spawn(async move {
            Box::new(source)
                .run(SourceContext {
                    name: "bench".into(),
                    appender,
                    shutdown: stop,
                })
                .await
        })
    }

    /// A Parquet sink named `name` reading `log` into `{dir}/{name}`.
    fn start_sink(
        &self,
        name: &str,
        log: &Arc<Log>,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let sink_dir = self.dir.path().join(name);
        let task = SinkTask {
            name: name.into(),
            topics: vec!["bench.*".into()],
            log: log.clone(),
            schemas: self.schemas.clone(),
            metrics: self.metrics.clone(),
            factory: Arc::new(move || {
                let url = format!("file://{}", sink_dir.display());
                Box::pin(async move {
                    let mut c = ParquetConfig::new(url, vec!["bench.*".into()]);
                    c.max_age = headwater_core::config::HumanDuration(Duration::from_secs(1));
                    Ok(Box::new(ParquetSink::new(&c).await.unwrap()) as Box<dyn Sink>)
                })
            }),
            tick: Duration::from_millis(200),
        };
        let stop = stop.clone();
        tokio::spawn(async move { task.run_once(&stop).await })
    }
}

/// Waits until `done` holds; prints and returns (seconds, CPU s). Panics
/// when one of `tasks` ends first: the phase would never finish.
async fn timed_phase(
    name: &str,
    rows: u64,
    tasks: &[tokio::task::JoinHandle<Result<()>>],
    done: impl Fn() -> bool,
) -> (f64, f64) {
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    while !done() {
        assert!(
            !tasks.iter().any(|t| t.is_finished()),
            "{name}: a source or sink stopped before the phase finished (its error is in the log; HEADWATER_LOG=info)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{name}: {rows} rows in {secs:.2} s = {:.0} rows/s ({cpu:.1} CPU s in this process)",
        rows as f64 / secs
    );
    (secs, cpu)
}

fn durable(log: &Log) -> u64 {
    (0..4).map(|p| log.high_watermark(TOPIC, p)).sum()
}

fn committed(log: &Log, sink: &str) -> u64 {
    (0..4)
        .map(|p| log.committed_offset(sink, TOPIC, p).unwrap_or(0))
        .sum()
}

async fn stop_all(stop: CancellationToken, tasks: Vec<tokio::task::JoinHandle<Result<()>>>) {
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
}

async fn run() {
    let rows = env_or("HEADWATER_BENCH_ROWS", 200_000);
    let steady_secs = env_or("HEADWATER_BENCH_STEADY_SECS", 10);
    let db = testkit::unique_name("bench_e2e");
    let admin = pg(&testkit::postgres_admin_url()).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = testkit::postgres_url(&db);
    let client = pg(&url).await;
    let socket = std::env::var_os("HEADWATER_BENCH_SOCKET").is_some();
    let source_url = if socket {
        format!("postgres://headwater:headwater@%2Fvar%2Frun%2Fpostgresql/{db}")
    } else {
        url.clone()
    };
    let transport = if socket { "unix socket" } else { "TCP" };
    client
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, a int, b text, c numeric(12,2), d timestamptz, e boolean)",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bench = Bench {
        schemas: Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap()),
        dir,
        source_url,
        db: db.clone(),
        metrics: Arc::new(Metrics::default()),
        recording: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        latencies: Arc::new(Mutex::new(Vec::new())),
    };
    reset_peak_rss();
    let source_log = bench.log("source-log");
    let log = bench.log("log");

    // Create both slots, then stop: the load below becomes their backlog.
    for (slot, log) in [("alone", &source_log), ("e2e", &log)] {
        let stop = CancellationToken::new();
        let task = bench.start_source(slot, log, &stop).await;
        let slot = format!("{db}_{slot}");
        common::wait_until_streaming(&admin, &slot, &task).await;
        stop_all(stop, vec![task]).await;
    }

    println!("loading {rows} rows in 1,000-row transactions…");
    for chunk in 0..rows.div_ceil(1000) {
        let from = chunk * 1000 + 1;
        let to = ((chunk + 1) * 1000).min(rows);
        client
            .batch_execute(&format!(
                "INSERT INTO t SELECT g, g % 1000, 'row ' || g, g * 1.25, now(), g % 2 = 0 FROM generate_series({from}, {to}) g"
            ))
            .await
            .unwrap();
    }

    let stop = CancellationToken::new();
    let task = bench.start_source("alone", &source_log, &stop).await;
    let (source_secs, _) = timed_phase(
        &format!("source alone, PostgreSQL → log over {transport}"),
        rows,
        std::slice::from_ref(&task),
        || durable(&source_log) >= rows,
    )
    .await;
    stop_all(stop, vec![task]).await;
    drop(source_log);
    println!("peak RSS, source alone: {:.0} MB", peak_rss_mb());
    reset_peak_rss();

    let stop = CancellationToken::new();
    let tasks = vec![
        bench.start_source("e2e", &log, &stop).await,
        bench.start_sink("archive", &log, &stop),
    ];
    timed_phase(
        &format!("end to end, PostgreSQL → log → Parquet over {transport}"),
        rows,
        &tasks,
        || committed(&log, "archive") >= rows,
    )
    .await;

    println!("steady load: 5,000 rows/s for {steady_secs} s…");
    bench
        .recording
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut next = rows + 1;
    let end = Instant::now() + Duration::from_secs(steady_secs);
    while Instant::now() < end {
        tick.tick().await;
        client
            .batch_execute(&format!(
                "INSERT INTO t SELECT g, g % 1000, 'row ' || g, g * 1.25, now(), true FROM generate_series({next}, {}) g",
                next + 49
            ))
            .await
            .unwrap();
        next += 50;
    }
    let total = next - 1;
    while committed(&log, "archive") < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_all(stop, tasks).await;
    let mut l = bench.latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "commit → durable in the log at 5,000 rows/s: p50 {:.1} ms, p99 {:.1} ms ({} rows)",
        pct(0.50),
        pct(0.99),
        l.len()
    );
    println!("peak RSS, end to end: {:.0} MB", peak_rss_mb());
    reset_peak_rss();

    let stop = CancellationToken::new();
    let tasks = vec![bench.start_sink("archive_alone", &log, &stop)];
    let (sink_secs, _) = timed_phase("sink alone, log → Parquet", total, &tasks, || {
        committed(&log, "archive_alone") >= total
    })
    .await;
    stop_all(stop, tasks).await;
    println!(
        "the Parquet sink alone runs at {:.2}× the rate of the source alone",
        (total as f64 / sink_secs) / (rows as f64 / source_secs)
    );

    println!("peak RSS, sink alone: {:.0} MB", peak_rss_mb());
    for slot in ["alone", "e2e"] {
        let _ = admin
            .execute(
                "SELECT pg_drop_replication_slot($1)",
                &[&format!("{db}_{slot}")],
            )
            .await;
    }
    let _ = admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await;
}
