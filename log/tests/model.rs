//! Property test: random appends, reads, commits, rolls, retention and
//! reopens against an in-memory model of what the log must return.

#![allow(clippy::unwrap_used)] // tests and their helpers may panic

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use headwater_core::config::ByteSize;
use headwater_log::{partition_for, Log, LogConfig, Record};
use proptest::prelude::*;

const TOPICS: [&str; 2] = ["src.public.a", "src.public.b"];
const PARTITIONS: u32 = 2;
const CONSUMER: &str = "sink";

#[derive(Clone, Debug)]
enum Op {
    /// (topic, key, value length)
    Append(Vec<(usize, u8, usize)>),
    /// (topic, partition, where to start as a fraction of the log)
    Read(usize, u32, f64),
    Commit(usize, u32, f64),
    Roll,
    Retention,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0..2usize, any::<u8>(), 0..400usize), 1..20).prop_map(Op::Append),
        3 => (0..2usize, 0..PARTITIONS, 0.0..1.2f64).prop_map(|(t, p, f)| Op::Read(t, p, f)),
        2 => (0..2usize, 0..PARTITIONS, 0.0..1.0f64).prop_map(|(t, p, f)| Op::Commit(t, p, f)),
        1 => Just(Op::Roll),
        2 => Just(Op::Retention),
        1 => Just(Op::Reopen),
    ]
}

fn cfg() -> LogConfig {
    LogConfig {
        partitions: PARTITIONS,
        retention_bytes: Some(ByteSize(6000)),
        ..common::config(PARTITIONS)
    }
}

#[derive(Default)]
struct Partition {
    records: Vec<Record>,
    start: u64,
    committed: u64,
}

struct Model {
    partitions: HashMap<(usize, u32), Partition>,
    clock: i64,
}

fn value(clock: i64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (clock as usize * 31 + i) as u8).collect()
}

fn run(ops: Vec<Op>, dir: &Path) {
    let rt = common::rt();
    let mut log: Arc<Log> = common::open(dir, cfg());
    let mut model = Model {
        partitions: HashMap::new(),
        clock: 0,
    };
    rt.block_on(async {
        for t in TOPICS {
            log.register_consumer(CONSUMER, t).await.unwrap();
        }
    });
    for op in ops {
        match op {
            Op::Append(items) => {
                let records: Vec<(String, Record)> = items
                    .iter()
                    .map(|&(t, key, len)| {
                        model.clock += 1;
                        let r = Record {
                            key: vec![key],
                            value: value(model.clock, len),
                            timestamp_ms: model.clock,
                        };
                        (TOPICS[t].to_string(), r)
                    })
                    .collect();
                let offsets = rt
                    .block_on(async { log.append(records.clone()).await?.durable().await })
                    .unwrap();
                for ((topic, record), (t2, p, o)) in records.into_iter().zip(offsets) {
                    assert_eq!(topic, t2);
                    let t = TOPICS.iter().position(|x| *x == topic).unwrap();
                    assert_eq!(p, partition_for(&record.key, PARTITIONS));
                    let part = model.partitions.entry((t, p)).or_default();
                    assert_eq!(o, part.records.len() as u64, "offsets are dense");
                    part.records.push(record);
                }
            }
            Op::Read(t, p, frac) => {
                let Some(part) = model.partitions.get(&(t, p)) else {
                    continue;
                };
                let from = (part.records.len() as f64 * frac) as u64;
                let got = common::read_all(&log, TOPICS[t], p, from);
                let first = from.max(part.start) as usize;
                let expected = part.records.get(first..).unwrap_or(&[]);
                assert_eq!(
                    got.len(),
                    expected.len(),
                    "read {}/{p} from {from}",
                    TOPICS[t]
                );
                for (i, (g, e)) in got.iter().zip(expected).enumerate() {
                    assert_eq!(g.offset, (first + i) as u64);
                    assert_eq!(
                        (&g.key[..], &g.value[..], g.timestamp_ms),
                        (&e.key[..], &e.value[..], e.timestamp_ms)
                    );
                }
            }
            Op::Commit(t, p, frac) => {
                let Some(part) = model.partitions.get_mut(&(t, p)) else {
                    continue;
                };
                let len = part.records.len() as u64;
                let to = part.committed + ((len - part.committed) as f64 * frac) as u64;
                log.commit_offset_blocking(CONSUMER, TOPICS[t], p, to)
                    .unwrap();
                part.committed = to;
            }
            Op::Roll => rt.block_on(log.roll()).unwrap(),
            Op::Retention => {
                rt.block_on(log.run_retention()).unwrap();
                for ((t, p), part) in &mut model.partitions {
                    let start = log.log_start_offset(TOPICS[*t], *p);
                    assert!(start >= part.start, "the log start never moves back");
                    assert!(
                        start <= part.committed,
                        "retention deleted uncommitted records"
                    );
                    part.start = start;
                }
            }
            Op::Reopen => {
                drop(log);
                log = common::open(dir, cfg());
                for ((t, p), part) in &model.partitions {
                    assert_eq!(
                        log.high_watermark(TOPICS[*t], *p),
                        part.records.len() as u64
                    );
                    assert_eq!(log.log_start_offset(TOPICS[*t], *p), part.start);
                    if part.committed > 0 {
                        assert_eq!(
                            log.committed_offset(CONSUMER, TOPICS[*t], *p),
                            Some(part.committed)
                        );
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        run(ops, dir.path());
    }
}
