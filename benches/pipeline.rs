//! End-to-end harness: PostgreSQL → log → Parquet, in one process.
//!
//! 1. Catch-up: `HEADWATER_BENCH_ROWS` rows (default 200,000; 1,000-row
//!    transactions, 6 columns) are committed while the pipeline is down,
//!    then it starts and the time until the Parquet sink has committed them
//!    all gives rows/s.
//! 2. Steady load: 5,000 rows/s for `HEADWATER_BENCH_STEADY_SECS` (default
//!    10) seconds; for every row, the time from its commit (PostgreSQL's
//!    commit timestamp) until it is durable in the log: p50 and p99.
//!
//! Prints peak RSS (VmHWM) of this process at the end. Needs the services
//! of `dev/services.sh`. Run: `cargo bench --bench pipeline`; the source
//! connects over TCP, or over the unix socket with `HEADWATER_BENCH_SOCKET=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
use tokio_postgres::NoTls;
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

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn committed(log: &Log, topic: &str) -> u64 {
    (0..4)
        .map(|p| log.committed_offset("archive", topic, p).unwrap_or(0))
        .sum()
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
    let source_url = if std::env::var_os("HEADWATER_BENCH_SOCKET").is_some() {
        format!("postgres://headwater:headwater@%2Fvar%2Frun%2Fpostgresql/{db}")
    } else {
        url.clone()
    };
    client
        .batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, a int, b text, c numeric(12,2), d timestamptz, e boolean)",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&dir.path().join("log"), LogConfig::default()).unwrap();
    let schemas = Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap());
    let checkpoints = CheckpointStore::open(dir.path().join("checkpoints")).unwrap();
    let mut config = PostgresConfig::new(source_url.clone(), vec!["public.t".into()]);
    config.snapshot = SnapshotMode::Never;
    config.slot = Some(db.clone());
    config.publication = Some(db.clone());
    let metrics = Arc::new(Metrics::default());
    let recording = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));

    let start_pipeline = |stop: CancellationToken| {
        let appender = {
            let (log, schemas, checkpoints, metrics) = (
                log.clone(),
                schemas.clone(),
                checkpoints.clone(),
                metrics.clone(),
            );
            let (recording, latencies) = (recording.clone(), latencies.clone());
            async move {
                let inner = LogAppender::open(
                    "bench".into(),
                    log,
                    schemas,
                    Arc::default(),
                    checkpoints,
                    metrics,
                )
                .await
                .unwrap();
                Arc::new(Timed {
                    inner,
                    latencies_us: latencies,
                    recording,
                }) as Arc<dyn Appender>
            }
        };
        let source = PostgresSource::new("bench", config.clone());
        let sink_dir = dir.path().join("archive");
        let task = SinkTask {
            name: "archive".into(),
            topics: vec!["bench.*".into()],
            log: log.clone(),
            schemas: schemas.clone(),
            metrics: metrics.clone(),
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
        async move {
            let appender = appender.await;
            let s = tokio::spawn({
                let stop = stop.clone();
                async move {
                    Box::new(source)
                        .run(SourceContext {
                            name: "bench".into(),
                            appender,
                            shutdown: stop,
                        })
                        .await
                }
            });
            let k = tokio::spawn(async move { task.run_once(&stop).await });
            (s, k)
        }
    };

    // Create the slot, then stop: the load below becomes a backlog. The
    // slot's row appears while CREATE_REPLICATION_SLOT still waits for its
    // consistent point; only a streaming walsender (active, with a
    // confirmed position) means the slot is really there.
    let stop = CancellationToken::new();
    let (s, k) = start_pipeline(stop.clone()).await;
    loop {
        let ready: bool = admin
            .query_one(
                "SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let _ = s.await;
    let _ = k.await;

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

    let topic = "bench.public.t";
    let stop = CancellationToken::new();
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let (s, k) = start_pipeline(stop.clone()).await;
    while committed(&log, topic) < rows {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let transport = if source_url == url {
        "TCP"
    } else {
        "unix socket"
    };
    println!(
        "catch-up PostgreSQL → log → Parquet over {transport}: {rows} rows in {secs:.2} s = {:.0} rows/s ({cpu:.1} CPU s in this process)",
        rows as f64 / secs
    );

    println!("steady load: 5,000 rows/s for {steady_secs} s…");
    recording.store(true, std::sync::atomic::Ordering::Relaxed);
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
    while committed(&log, topic) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let _ = s.await;
    let _ = k.await;
    let mut l = latencies.lock().unwrap().clone();
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
    println!("peak RSS of the pipeline process: {:.0} MB", peak_rss_mb());
    let _ = admin
        .execute("SELECT pg_drop_replication_slot($1)", &[&db])
        .await;
    let _ = admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await;
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}
