//! Append and read throughput of the log against the raw limit of the disk.
//!
//! `cargo run --release -p headwater-log --example append_harness [DIR]`
//!
//! For 200-byte records in batches of 1, 100 and 1,000, it measures the
//! log and then the raw limit: the very same batch bytes written to one
//! file on the same file system with `write` + `sync_data` (per batch, or
//! every 50 ms). Modes (first column):
//!
//! - `batch`: `fsync = "batch"`, each append awaited until durable before
//!   the next is built: one fsync per append, as in the raw run (the last
//!   columns show appends per fsync), and nothing overlaps the fsync;
//! - `50ms`: `fsync = { interval = "50ms" }`, appends pipelined, the last
//!   one awaited.
//!
//! The log is fed through [`Log::append_batch`], from one prepared set of
//! keys and values (the records the raw bytes encode), so encoding is
//! counted; the topic is created before the clock starts, as the raw file
//! is (and holds one batch). Log and raw alternate five times per case
//! (0.5 s each at most), since the machine may be shared. Then it reads a
//! million records back from the page cache. The raw run writes the same
//! distinct batches the log writes, all encoded before its clock starts
//! (writing one batch again and again, as it once did, let the kernel copy
//! from a buffer kept hot in the CPU cache while the log's batches are new
//! memory each time).
//!
//! `ratio best` is the best log run over the best raw run; `paired median`
//! the median over rounds of log / raw run back to back (less sensitive to
//! a slow phase of a shared disk). The next two columns are CPU time per
//! record (all threads, 10 ms ticks): less sensitive than wall time to
//! other work on the machine.
//!
//! `HEADWATER_BENCH_CASE=batch-100` runs only that case (`{mode}-{batch}`),
//! `HEADWATER_BENCH_API=append` feeds the log through [`Log::append`] with
//! owned records instead, built right before each append (the building time
//! is not counted, its CPU is estimated up front and taken out),
//! `HEADWATER_BENCH_ONLY_READ=1` only the read part,
//! `HEADWATER_BENCH_VERBOSE=1` prints the log's counters per case,
//! `HEADWATER_BENCH_NO_RAW=1` skips the raw runs (for profiling the log).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use headwater_core::config::HumanDuration;
use headwater_log::{batch, FsyncPolicy, Log, LogConfig, Record};

const RECORD_BYTES: usize = 200;
const CASE_TIME: Duration = Duration::from_millis(500);
/// The machine is shared: log and raw alternate this many times per case
/// and the best run of each counts.
const ROUNDS: usize = 5;
const TOPIC: &str = "bench.public.t";
const INTERVAL: Duration = Duration::from_millis(50);

fn records(n: usize, seq: u64) -> Vec<(String, Record)> {
    (0..n)
        .map(|i| {
            let key = (seq * 1000 + i as u64).to_le_bytes().to_vec();
            let mut value = vec![b'x'; RECORD_BYTES - key.len()];
            value[..8].copy_from_slice(&seq.to_le_bytes());
            (
                TOPIC.to_string(),
                Record {
                    key,
                    value,
                    timestamp_ms: seq as i64,
                },
            )
        })
        .collect()
}

struct Rate {
    records: u64,
    elapsed: Duration,
    /// fsync calls during the run.
    fsyncs: u64,
    /// CPU time of the whole process (all threads) for the run.
    cpu: Duration,
}

/// CPU nanoseconds to build one input record, measured once up front so
/// the log's CPU column does not include it.
static BUILD_NS_PER_RECORD: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn calibrate_building() {
    let start = cpu_time();
    let mut n = 0u64;
    while cpu_time().saturating_sub(start) < Duration::from_millis(300) {
        for seq in 0..100 {
            std::hint::black_box(records(1000, seq));
        }
        n += 100_000;
    }
    let ns = cpu_time().saturating_sub(start).as_nanos() as f64 / n as f64;
    let _ = BUILD_NS_PER_RECORD.set(ns);
}

/// User + system CPU time of this process, from /proc (Linux; 10 ms ticks).
/// Unlike wall time it barely moves when other work shares the machine.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    fn mb_per_sec(&self) -> f64 {
        self.per_sec() * RECORD_BYTES as f64 / 1e6
    }
    fn cpu_ns_per_record(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.records.max(1) as f64
    }
}

/// How appends are issued and fsynced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `fsync = "batch"`, each append awaited until durable before the
    /// next is built: one fsync per append, as the raw run does (the
    /// `appends/fsync` columns show it), and nothing overlaps the fsync.
    Batch,
    /// `fsync = { interval = "50ms" }`, appends pipelined, the last awaited.
    Interval,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Interval => "50ms",
        }
    }
    fn interval(self) -> bool {
        self == Mode::Interval
    }
}

fn config(interval: bool) -> LogConfig {
    LogConfig {
        partitions: 1,
        retention: None,
        fsync: if interval {
            FsyncPolicy::Interval {
                interval: HumanDuration(INTERVAL),
            }
        } else {
            LogConfig::default().fsync
        },
        ..LogConfig::default()
    }
}

/// At most this many records per case (bounds the disk used).
fn record_cap(batch_size: usize, interval: bool) -> usize {
    match (interval, batch_size) {
        (false, 1) => 5_000,
        (false, 100) => 300_000,
        (true, 1) => 200_000,
        _ => 1_000_000,
    }
}

/// Appends through [`Log::append_batch`] (or [`Log::append`] when
/// `legacy`), one batch per append of the same `batch_size` records.
fn bench_log(
    dir: &Path,
    batch_size: usize,
    mode: Mode,
    legacy: bool,
    rt: &tokio::runtime::Runtime,
) -> Rate {
    let interval = mode.interval();
    let log = Log::open(dir, config(interval)).expect("open log");
    // The records the raw run writes, as a source would hold them.
    let input = records(batch_size, 0);
    let push_all = || {
        let mut batch = log.batch();
        let topic = batch.topic(TOPIC).expect("topic");
        for (_, r) in &input {
            batch
                .push_to(topic, &r.key, &r.value, r.timestamp_ms)
                .expect("push");
        }
        batch
    };
    // Create the topic before the clock starts, as the raw file is.
    rt.block_on(async { log.append_batch(push_all()).await?.durable_batches().await })
        .expect("first append");
    let batches = (record_cap(batch_size, interval) / batch_size) as u64;
    let fsyncs_before = log.stats().fsyncs;
    let cpu_start = cpu_time();
    let (count, elapsed) = rt.block_on(async {
        let start = Instant::now();
        let mut building = Duration::ZERO;
        let mut seq = 0u64;
        let mut last = None;
        while start.elapsed() < CASE_TIME + building && seq < batches {
            let receipt = if legacy {
                let t = Instant::now();
                let batch = records(batch_size, seq);
                building += t.elapsed();
                log.append(batch).await.expect("append")
            } else {
                log.append_batch(push_all()).await.expect("append")
            };
            seq += 1;
            match mode {
                Mode::Interval => last = Some(receipt),
                Mode::Batch => {
                    receipt.durable_batches().await.expect("durable");
                }
            }
        }
        if let Some(receipt) = last {
            receipt.durable_batches().await.expect("durable");
        }
        (
            seq * batch_size as u64,
            start.elapsed().saturating_sub(building),
        )
    });
    let building_cpu = if legacy {
        Duration::from_nanos(
            (BUILD_NS_PER_RECORD.get().copied().unwrap_or(0.0) * count as f64) as u64,
        )
    } else {
        Duration::ZERO
    };
    let cpu = cpu_time()
        .saturating_sub(cpu_start)
        .saturating_sub(building_cpu);
    let stats = log.stats();
    if std::env::var_os("HEADWATER_BENCH_VERBOSE").is_some() {
        eprintln!("  batch {batch_size} {}: {stats:?}", mode.name());
    }
    Rate {
        records: count,
        elapsed,
        cpu,
        fsyncs: stats.fsyncs - fsyncs_before,
    }
}

fn bench_raw(path: &Path, batch_size: usize, interval: bool) -> Rate {
    let mut file = File::create(path).expect("create raw file");
    // The same bytes the log writes, every batch encoded before the clock
    // starts: the raw limit pays for nothing but write and sync. Distinct
    // batches, as the log's, rather than one batch again and again, which
    // the kernel would copy from a buffer kept hot in the CPU's cache.
    let batches = (record_cap(batch_size, interval) / batch_size) as u64;
    let encoded: Vec<Vec<u8>> = (0..=batches)
        .map(|seq| batch::encode(records(batch_size, seq).iter().map(|(_, r)| r)))
        .collect();
    // As the log's topic, the file exists and holds a batch before the clock starts.
    file.write_all(&encoded[0]).expect("write");
    file.sync_data().expect("sync");
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut last_sync = Instant::now();
    let mut seq = 0u64;
    let mut fsyncs = 1;
    while start.elapsed() < CASE_TIME && seq < batches {
        file.write_all(&encoded[seq as usize + 1]).expect("write");
        seq += 1;
        if !interval || last_sync.elapsed() >= INTERVAL {
            file.sync_data().expect("sync");
            fsyncs += 1;
            last_sync = Instant::now();
        }
    }
    if interval {
        file.sync_data().expect("sync");
    } else {
        fsyncs -= 1;
    }
    Rate {
        records: seq * batch_size as u64,
        elapsed: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu_start),
        fsyncs,
    }
}

fn bench_read(dir: &Path, rt: &tokio::runtime::Runtime) {
    let log = Log::open(dir, config(true)).expect("open log");
    let target: u64 = 1_000_000;
    rt.block_on(async {
        let mut seq = 0;
        let mut last = None;
        while seq * 1000 < target {
            let mut batch = log.batch();
            for (_, r) in records(1000, 1_000_000 + seq) {
                batch
                    .push(TOPIC, &r.key, &r.value, r.timestamp_ms)
                    .expect("push");
            }
            last = Some(log.append_batch(batch).await.expect("append"));
            seq += 1;
        }
        if let Some(r) = last {
            r.durable().await.expect("durable");
        }
    });
    let hwm = log.high_watermark(TOPIC, 0);
    // Three passes each; the first also warms the allocator.
    let modes = [("read_now (blocking)", false), ("next_batch (async)", true)];
    for (name, asynchronous) in modes.into_iter().flat_map(|m| [m; 3]) {
        let mut reader = log.reader(TOPIC, 0, 0).expect("reader");
        let start = Instant::now();
        let (mut n, mut bytes) = (0u64, 0u64);
        while n < hwm {
            let batch = if asynchronous {
                rt.block_on(reader.next_batch(10_000)).expect("read")
            } else {
                reader.read_now(10_000).expect("read")
            };
            n += batch.len() as u64;
            bytes += batch
                .iter()
                .map(|r| (r.key.len() + r.value.len()) as u64)
                .sum::<u64>();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "sequential read, {name:<20} {n:>9} records in {secs:.3}s: {:>10.0} records/s, {:>7.2} GB/s of record bytes",
            n as f64 / secs,
            bytes as f64 / secs / 1e9
        );
    }
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::tempdir_in(&base).expect("scratch directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "200-byte records, one partition, scratch in {}",
        scratch.path().display()
    );
    let only_read = std::env::var_os("HEADWATER_BENCH_ONLY_READ").is_some();
    let legacy = std::env::var("HEADWATER_BENCH_API").is_ok_and(|a| a == "append");
    println!(
        "log API: {}",
        if legacy {
            "Log::append (owned records; building not counted)"
        } else {
            "Log::append_batch (borrowed keys and values; encoding counted)"
        }
    );
    if legacy {
        calibrate_building();
    }
    println!(
        "{:<9} {:>5} | {:>10} {:>8} | {:>10} {:>8} | {:>5} {:>6} | {:>7} {:>7} | {:>6} {:>6}",
        "fsync",
        "batch",
        "log rec/s",
        "log MB/s",
        "raw rec/s",
        "raw MB/s",
        "ratio",
        "paired",
        "log cpu",
        "raw cpu",
        "log",
        "raw"
    );
    println!(
        "{:<9} {:>5} | {:>10} {:>8} | {:>10} {:>8} | {:>5} {:>6} | {:>7} {:>7} | {:>13}",
        "", "", "", "", "", "", "best", "median", "ns/rec", "ns/rec", "appends/fsync"
    );
    let modes = [Mode::Batch, Mode::Interval];
    let no_raw = std::env::var_os("HEADWATER_BENCH_NO_RAW").is_some();
    let none = || Rate {
        records: 0,
        elapsed: Duration::from_secs(1),
        cpu: Duration::ZERO,
        fsyncs: 0,
    };
    for mode in modes.into_iter().filter(|_| !only_read) {
        for batch_size in [1usize, 100, 1000] {
            let case_name = format!("{}-{batch_size}", mode.name());
            if std::env::var("HEADWATER_BENCH_CASE").is_ok_and(|c| c != case_name) {
                continue;
            }
            let (mut log, mut raw) = (none(), none());
            let mut paired = Vec::with_capacity(ROUNDS);
            let case = scratch.path().join(format!("case-{case_name}"));
            for round in 0..ROUNDS {
                let log_dir = case.join(format!("log{round}"));
                let l = bench_log(&log_dir, batch_size, mode, legacy, &rt);
                let raw_file = case.with_extension(format!("raw{round}"));
                let r = if no_raw {
                    none()
                } else {
                    bench_raw(&raw_file, batch_size, mode.interval())
                };
                paired.push(l.per_sec() / r.per_sec().max(f64::MIN_POSITIVE));
                if l.per_sec() > log.per_sec() {
                    log = l;
                }
                if r.per_sec() > raw.per_sec() {
                    raw = r;
                }
                let _ = std::fs::remove_dir_all(&log_dir);
                let _ = std::fs::remove_file(&raw_file);
            }
            paired.sort_by(f64::total_cmp);
            let appends_per_fsync =
                |r: &Rate| r.records as f64 / batch_size as f64 / r.fsyncs.max(1) as f64;
            println!(
                "{:<9} {:>5} | {:>10.0} {:>8.2} | {:>10.0} {:>8.2} | {:>5.2} {:>6.2} | {:>7.0} {:>7.0} | {:>6.1} {:>6.1}",
                mode.name(),
                batch_size,
                log.per_sec(),
                log.mb_per_sec(),
                raw.per_sec(),
                raw.mb_per_sec(),
                log.per_sec() / raw.per_sec().max(f64::MIN_POSITIVE),
                paired[paired.len() / 2],
                log.cpu_ns_per_record(),
                raw.cpu_ns_per_record(),
                appends_per_fsync(&log),
                appends_per_fsync(&raw),
            );
            let _ = std::fs::remove_dir_all(&case);
        }
    }
    if std::env::var_os("HEADWATER_BENCH_CASE").is_none() {
        bench_read(&scratch.path().join("read"), &rt);
    }
}
