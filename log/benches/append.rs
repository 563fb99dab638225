//! Criterion view of the log's hot paths (the side-by-side table with the
//! raw disk limit is `examples/append_harness.rs`):
//! `cargo bench -p headwater-log --bench append`.

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use headwater_core::config::HumanDuration;
use headwater_log::{batch, FsyncPolicy, Log, LogConfig, Record};

const RECORD_BYTES: usize = 200;

fn records(n: usize) -> Vec<(String, Record)> {
    (0..n)
        .map(|i| {
            let key = (i as u64).to_le_bytes().to_vec();
            let value = vec![b'x'; RECORD_BYTES - key.len()];
            (
                "bench.t".to_string(),
                Record {
                    key,
                    value,
                    timestamp_ms: 0,
                },
            )
        })
        .collect()
}

fn config(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        partitions: 1,
        retention: None,
        fsync,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let policies = [
        ("fsync-batch", LogConfig::default().fsync),
        (
            "fsync-50ms",
            FsyncPolicy::Interval {
                interval: HumanDuration(Duration::from_millis(50)),
            },
        ),
    ];
    for batch_size in [1usize, 100, 1000] {
        group.throughput(Throughput::Bytes((batch_size * RECORD_BYTES) as u64));
        for (name, fsync) in &policies {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = Log::open(dir.path(), config(fsync.clone())).expect("open");
            let pipelined = matches!(fsync, FsyncPolicy::Interval { .. });
            // Log::append: owned records, built outside the timing.
            group.bench_function(
                BenchmarkId::new(format!("append-{name}"), batch_size),
                |b| {
                    b.iter_custom(|iters| {
                        let input: Vec<_> = (0..iters).map(|_| records(batch_size)).collect();
                        rt.block_on(async {
                            let start = Instant::now();
                            let mut last = None;
                            for batch in input {
                                let receipt = log.append(batch).await.expect("append");
                                if pipelined {
                                    last = Some(receipt);
                                } else {
                                    receipt.durable().await.expect("durable");
                                }
                            }
                            if let Some(receipt) = last {
                                receipt.durable().await.expect("durable");
                            }
                            start.elapsed()
                        })
                    })
                },
            );
            // Log::append_batch: borrowed records, encoding timed.
            let input = records(batch_size);
            group.bench_function(
                BenchmarkId::new(format!("append_batch-{name}"), batch_size),
                |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let start = Instant::now();
                            let mut last = None;
                            for _ in 0..iters {
                                let mut batch = log.batch();
                                for (topic, r) in &input {
                                    batch
                                        .push(topic, &r.key, &r.value, r.timestamp_ms)
                                        .expect("push");
                                }
                                let receipt = log.append_batch(batch).await.expect("append");
                                if pipelined {
                                    last = Some(receipt);
                                } else {
                                    receipt.durable_batches().await.expect("durable");
                                }
                            }
                            if let Some(receipt) = last {
                                receipt.durable_batches().await.expect("durable");
                            }
                            start.elapsed()
                        })
                    })
                },
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = File::create(dir.path().join("raw")).expect("raw file");
        let recs = records(batch_size);
        let bytes = batch::encode(recs.iter().map(|(_, r)| r));
        group.bench_function(BenchmarkId::new("raw-write-sync", batch_size), |b| {
            b.iter(|| {
                file.write_all(&bytes).expect("write");
                file.sync_data().expect("sync");
            })
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path(), config(LogConfig::default().fsync)).expect("open");
    let total = 200_000u64;
    rt.block_on(async {
        for _ in 0..total / 1000 {
            log.append(records(1000))
                .await
                .expect("append")
                .durable()
                .await
                .expect("durable");
        }
    });
    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    group.throughput(Throughput::Bytes(total * RECORD_BYTES as u64));
    group.bench_function("sequential-page-cache", |b| {
        b.iter(|| {
            let mut reader = log.reader("bench.t", 0, 0).expect("reader");
            let mut n = 0;
            while n < total {
                n += reader.read_now(10_000).expect("read").len() as u64;
            }
        })
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
