//! A child process appends and prints every acknowledged offset; it is
//! killed with SIGKILL at random moments, again and again on the same log.
//! After reopening, every acknowledged record must be there, intact.
//!
//! The child is this test binary re-run with `CHILD_ENV` set.

#![allow(clippy::unwrap_used)] // tests and their helpers may panic

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use headwater_core::config::ByteSize;
use headwater_log::{Log, LogConfig};

const CHILD_ENV: &str = "HEADWATER_LOG_SIGKILL_DIR";
const KILLS: u64 = 24;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: ByteSize(64 << 10),
        ..common::config(3)
    }
}

fn value_for(run: u64, task: u64, seq: u64, n: u64) -> Vec<u8> {
    let len = 20 + (seq * 7 + n * 13) % 300;
    let mut v = format!("run{run} task{task} seq{seq} rec{n} ").into_bytes();
    v.resize(len as usize, b'a' + (seq % 26) as u8);
    v
}

/// The child: appends forever from three tasks; prints each record once
/// durable as `ack topic partition offset xxh3(value)`.
#[test]
fn sigkill_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let run: u64 = std::env::var("HEADWATER_LOG_SIGKILL_RUN")
        .unwrap()
        .parse()
        .unwrap();
    let rt = common::rt();
    let log = Log::open(std::path::Path::new(&dir), cfg()).unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..3u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for seq in 0.. {
                    let records = (0..1 + (seq + task) % 9)
                        .map(|n| {
                            let topic = format!("db.public.t{}", (seq + n) % 2);
                            let value = value_for(run, task, seq, n);
                            (
                                topic,
                                headwater_log::Record {
                                    key: format!("{task}-{n}").into_bytes(),
                                    value,
                                    timestamp_ms: seq as i64,
                                },
                            )
                        })
                        .collect::<Vec<_>>();
                    let hashes: Vec<u64> = records
                        .iter()
                        .map(|(_, r)| xxhash_rust::xxh3::xxh3_64(&r.value))
                        .collect();
                    let offsets = log.append(records).await.unwrap().durable().await.unwrap();
                    let mut out = std::io::stdout().lock();
                    for ((t, p, o), h) in offsets.iter().zip(hashes) {
                        writeln!(out, "ack {t} {p} {o} {h} .").unwrap();
                    }
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_records_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<(String, u32, u64), u64> = BTreeMap::new();
    let mut seed = Instant::now().elapsed().as_nanos() as u64
        ^ 0x9E37_79B9_7F4A_7C15
        ^ u64::from(std::process::id());
    for run in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("HEADWATER_LOG_SIGKILL_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let lines = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill after a random number of acknowledgements (1..400), so the
        // kill lands at a random point of the append/fsync cycle.
        let target = 1 + seed % 400;
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen < target {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => seen += record_ack(&line, &mut acked),
                Err(_) => panic!("run {run}: the child acknowledged only {seen} records"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        lines.join().unwrap();
        // Every line printed before the kill is an acknowledgement to keep.
        for line in rx.try_iter() {
            record_ack(&line, &mut acked);
        }
    }
    assert!(
        acked.len() as u64 > KILLS,
        "too few acknowledgements to mean anything"
    );

    let log = Log::open(dir.path(), cfg()).unwrap();
    let mut by_partition: BTreeMap<(String, u32), Vec<(u64, u64)>> = BTreeMap::new();
    for ((t, p, o), h) in &acked {
        by_partition
            .entry((t.clone(), *p))
            .or_default()
            .push((*o, *h));
    }
    for ((topic, partition), expected) in by_partition {
        let got = common::read_all(&log, &topic, partition, 0);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(
                r.offset, i as u64,
                "{topic}/{partition}: offsets must be dense"
            );
        }
        for (offset, hash) in expected {
            let record = got.get(offset as usize).unwrap_or_else(|| {
                panic!(
                    "{topic}/{partition} lost acknowledged offset {offset} (has {})",
                    got.len()
                )
            });
            assert_eq!(
                xxhash_rust::xxh3::xxh3_64(&record.value),
                hash,
                "{topic}/{partition}@{offset} changed"
            );
        }
    }
    let report = headwater_log::verify::verify(dir.path()).unwrap();
    assert!(report.damage.is_empty(), "{report:?}");
    eprintln!(
        "{} acknowledged records over {KILLS} kills all present; the log holds {} records",
        acked.len(),
        report.records
    );
}

/// Records a complete `ack` line (the kill may cut the last one short:
/// the trailing `.` tells); returns 1 if it was one.
fn record_ack(line: &str, acked: &mut BTreeMap<(String, u32, u64), u64>) -> u64 {
    let parts: Vec<&str> = line.split(' ').collect();
    if let ["ack", t, p, o, h, "."] = parts[..] {
        let key = (t.to_string(), p.parse().unwrap(), o.parse().unwrap());
        let hash: u64 = h.parse().unwrap();
        if let Some(previous) = acked.insert(key.clone(), hash) {
            assert_eq!(
                previous, hash,
                "offset {key:?} acknowledged twice with different values"
            );
        }
        return 1;
    }
    0
}
