//! Torn and garbled writes: cut or damage the last batch at every byte
//! position, reopen, and check that every complete batch before it is
//! readable and nothing after the damage is returned.

#![allow(clippy::unwrap_used)] // tests and their helpers may panic

mod common;

use std::path::{Path, PathBuf};

use common::{open, read_all, record, rt};
use headwater_core::config::ByteSize;
use headwater_log::LogConfig;

const BATCHES: usize = 5;
const PER_BATCH: usize = 3;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: ByteSize(1 << 20),
        ..common::config(1)
    }
}

/// Writes the batches; returns the segment path, its bytes and where each
/// batch starts.
fn setup(dir: &Path) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let rt = rt();
    let log = open(dir, cfg());
    let mut starts = Vec::new();
    rt.block_on(async {
        for b in 0..BATCHES {
            starts.push(
                log.topics()
                    .first()
                    .map_or(0, |t| t.partition_info[0].bytes as usize),
            );
            let recs = (0..PER_BATCH)
                .map(|r| {
                    (
                        "t".to_string(),
                        record(
                            &format!("k{b}{r}"),
                            &format!("value {b}.{r}"),
                            (b * 10 + r) as i64,
                        ),
                    )
                })
                .collect();
            log.append(recs).await.unwrap().durable().await.unwrap();
        }
    });
    drop(log);
    let path = dir.join("topics/t/00000/00000000000000000000.log");
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes, starts)
}

/// Reopens and checks that exactly the first `batches` survive, then that
/// appending continues right after them.
fn check_survivors(dir: &Path, batches: usize, what: &str) {
    let rt = rt();
    let log = open(dir, cfg());
    let got = read_all(&log, "t", 0, 0);
    assert_eq!(got.len(), batches * PER_BATCH, "{what}");
    for (i, r) in got.iter().enumerate() {
        let (b, n) = (i / PER_BATCH, i % PER_BATCH);
        assert_eq!(r.offset, i as u64, "{what}");
        assert_eq!(r.value, format!("value {b}.{n}").as_bytes(), "{what}");
    }
    let expected = (batches * PER_BATCH) as u64;
    assert_eq!(log.high_watermark("t", 0), expected, "{what}");
    let receipt = rt
        .block_on(log.append(vec![("t".into(), record("k", "after", 99))]))
        .unwrap();
    let offsets = rt.block_on(receipt.durable()).unwrap();
    assert_eq!(offsets[0].2, expected, "{what}");
    assert_eq!(
        read_all(&log, "t", 0, expected)[0].value,
        &b"after"[..],
        "{what}"
    );
}

#[test]
fn cut_last_batch_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, starts) = setup(dir.path());
    let last = starts[BATCHES - 1];
    for cut in last..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        check_survivors(dir.path(), BATCHES - 1, &format!("cut at byte {cut}"));
    }
    std::fs::write(&path, &bytes).unwrap();
    check_survivors(dir.path(), BATCHES, "intact");
}

#[test]
fn garble_last_batch_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes, starts) = setup(dir.path());
    let last = starts[BATCHES - 1];
    for at in last..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0xA5;
        std::fs::write(&path, &bad).unwrap();
        check_survivors(dir.path(), BATCHES - 1, &format!("byte {at} garbled"));
    }
}

#[test]
fn garbage_appended_after_the_last_batch_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, _) = setup(dir.path());
    bytes.extend_from_slice(&[0xEE; 57]);
    std::fs::write(&path, &bytes).unwrap();
    check_survivors(dir.path(), BATCHES, "trailing garbage");
}

#[test]
fn damage_in_a_middle_batch_of_the_active_segment_returns_nothing_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut bytes, starts) = setup(dir.path());
    bytes[starts[2] + 45] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    check_survivors(dir.path(), 2, "batch 2 garbled");
}
