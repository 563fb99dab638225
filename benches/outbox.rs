//! What the outbox transform costs: PostgreSQL → log → Parquet, the same
//! outbox rows captured as plain changes and as outbox events.
//!
//! `HEADWATER_BENCH_ROWS` outbox rows (default 200,000; 1,000-row
//! transactions; a jsonb payload of three fields, 1,000 aggregates) are
//! committed while four slots wait. Then, one after the other, plain,
//! outbox, plain, outbox: each slot's source → its own log → a Parquet
//! sink, until the sink has committed every row (rows/s end to end, CPU s
//! of this process). Last, the transform alone, in memory: the chain over
//! the same events, ns per event, against the plain pipeline's time per row.
//!
//! Needs the services of `dev/services.sh`. Run: `cargo bench --bench outbox`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater::metrics::Metrics;
use headwater::runtime::{LogAppender, SinkTask};
use headwater_core::{CheckpointStore, Result, SchemaRegistry, Sink, Source, SourceContext};
use headwater_log::{Log, LogConfig};
use headwater_sink::parquet::{ParquetConfig, ParquetSink};
use headwater_source::postgres::{PostgresConfig, PostgresSource, SnapshotMode};
use headwater_transforms::{TransformChain, TransformConfig};
use testkit::MemoryAppender;
use tokio_util::sync::CancellationToken;

use common::{cpu_seconds, env_or, pg};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PLAIN_TOPIC: &str = "bench.public.outbox";
const EVENT_TOPIC: &str = "outbox.event.Order";
const PARTITIONS: u32 = 4;

fn outbox_chain() -> TransformChain {
    let config: TransformConfig =
        toml::from_str("type = \"outbox\"\ntables = [\"public.outbox\"]").unwrap();
    TransformChain::build(&[config]).unwrap()
}

struct Run<'a> {
    dir: &'a Path,
    url: &'a str,
    db: &'a str,
    schemas: Arc<SchemaRegistry>,
    metrics: Arc<Metrics>,
}

impl Run<'_> {
    fn source_config(&self, slot: &str) -> PostgresConfig {
        let mut config = PostgresConfig::new(self.url.to_owned(), vec!["public.outbox".into()]);
        config.snapshot = SnapshotMode::Never;
        config.slot = Some(format!("{}_{slot}", self.db));
        config.publication = Some(format!("{}_{slot}", self.db));
        config.state_dir = Some(self.dir.join(format!("state-{slot}")));
        config
    }

    async fn source(
        &self,
        slot: &str,
        log: &Arc<Log>,
        chain: TransformChain,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let appender = LogAppender::open(
            "bench".into(),
            log.clone(),
            self.schemas.clone(),
            Arc::new(chain),
            CheckpointStore::open(self.dir.join(format!("checkpoints-{slot}"))).unwrap(),
            self.metrics.clone(),
        )
        .await
        .unwrap();
        let source = PostgresSource::new("bench", self.source_config(slot));
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

    fn sink(
        &self,
        name: &str,
        topic: &str,
        log: &Arc<Log>,
        stop: &CancellationToken,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let sink_dir = self.dir.join(name);
        let topics = vec![topic.to_owned()];
        let task = SinkTask {
            name: name.into(),
            topics: topics.clone(),
            log: log.clone(),
            schemas: self.schemas.clone(),
            metrics: self.metrics.clone(),
            factory: Arc::new(move || {
                let (url, topics) = (format!("file://{}", sink_dir.display()), topics.clone());
                Box::pin(async move {
                    let mut c = ParquetConfig::new(url, topics);
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

fn committed(log: &Log, sink: &str, topic: &str) -> u64 {
    (0..PARTITIONS)
        .map(|p| log.committed_offset(sink, topic, p).unwrap_or(0))
        .sum()
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let rows = env_or("HEADWATER_BENCH_ROWS", 200_000);
    let db = testkit::unique_name("bench_outbox");
    let admin = pg(&testkit::postgres_admin_url()).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = testkit::postgres_url(&db);
    let client = pg(&url).await;
    client
        .batch_execute(
            "CREATE TABLE outbox (id bigint PRIMARY KEY, aggregatetype text, aggregateid text, type text, payload jsonb)",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = Run {
        dir: dir.path(),
        url: &url,
        db: &db,
        schemas: Arc::new(SchemaRegistry::open(dir.path().join("schemas")).unwrap()),
        metrics: Arc::new(Metrics::default()),
    };
    let phases = [
        ("plain", "plain1"),
        ("outbox", "outbox1"),
        ("plain", "plain2"),
        ("outbox", "outbox2"),
    ];
    // One slot more: the last phase reads the rows into memory.
    let slots = phases.iter().map(|(_, slot)| *slot).chain(["memory"]);
    for slot in slots.clone() {
        let stop = CancellationToken::new();
        let log = Log::open(
            &dir.path().join(format!("log-{slot}")),
            LogConfig::default(),
        )
        .unwrap();
        let task = run
            .source(slot, &log, TransformChain::default(), &stop)
            .await;
        common::wait_until_streaming(&admin, &format!("{db}_{slot}"), &task).await;
        stop.cancel();
        let _ = task.await;
    }
    println!("loading {rows} outbox rows in 1,000-row transactions…");
    for chunk in 0..rows.div_ceil(1000) {
        let (from, to) = (chunk * 1000 + 1, ((chunk + 1) * 1000).min(rows));
        client
            .batch_execute(&format!(
                "INSERT INTO outbox SELECT g, 'Order', 'order-' || (g % 1000), 'OrderCreated', \
                 jsonb_build_object('order', g, 'total', g * 1.25, 'note', 'row ' || g) \
                 FROM generate_series({from}, {to}) g"
            ))
            .await
            .unwrap();
    }

    let mut plain_secs = Vec::new();
    for (mode, slot) in phases {
        let (chain, topic) = match mode {
            "plain" => (TransformChain::default(), PLAIN_TOPIC),
            _ => (outbox_chain(), EVENT_TOPIC),
        };
        let log = Log::open(
            &dir.path().join(format!("log-{slot}")),
            LogConfig::default(),
        )
        .unwrap();
        let stop = CancellationToken::new();
        let sink = format!("archive_{slot}");
        let tasks = [
            run.source(slot, &log, chain, &stop).await,
            run.sink(&sink, topic, &log, &stop),
        ];
        let (started, cpu) = (Instant::now(), cpu_seconds());
        while committed(&log, &sink, topic) < rows {
            assert!(
                !tasks.iter().any(|t| t.is_finished()),
                "{mode}: the source or the sink stopped before the end"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        if mode == "plain" {
            plain_secs.push(secs);
        }
        println!(
            "{mode:>6} ({slot}): PostgreSQL → log → Parquet, {rows} rows in {secs:.2} s = {:.0} rows/s ({:.1} CPU s)",
            rows as f64 / secs,
            cpu_seconds() - cpu
        );
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
    }

    // The transform alone, on the events the source reads.
    let memory = MemoryAppender::new();
    let stop = CancellationToken::new();
    let source = PostgresSource::new("bench", run.source_config("memory"));
    let task = {
        let (appender, stop) = (memory.clone(), stop.clone());
        tokio::spawn(async move {
            Box::new(source)
                .run(SourceContext {
                    name: "bench".into(),
                    appender,
                    shutdown: stop,
                })
                .await
        })
    };
    let events = memory
        .wait_for(rows as usize, Duration::from_secs(600))
        .await;
    stop.cancel();
    let _ = task.await;
    let chain = outbox_chain();
    let started = Instant::now();
    let out = chain.apply(events).unwrap();
    let per_event_ns = started.elapsed().as_nanos() as f64 / out.len() as f64;
    let plain_ns = plain_secs.iter().sum::<f64>() / plain_secs.len() as f64 * 1e9 / rows as f64;
    println!(
        "the outbox transform alone: {per_event_ns:.0} ns per event; the plain pipeline takes {plain_ns:.0} ns per row: {:.1}% of it",
        per_event_ns / plain_ns * 100.0
    );

    for slot in slots {
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
