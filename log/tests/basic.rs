//! The log's API end to end: append, read, tail, offsets, timestamps,
//! retention, metadata and damage in sealed segments.

#![allow(clippy::unwrap_used)] // tests and their helpers may panic

mod common;

use std::time::Duration;

use common::{append_one, config, open, read_all, record, rt};
use headwater_core::config::{ByteSize, HumanDuration};
use headwater_core::error::{Classify, ErrorKind};
use headwater_log::{partition_for, Log, LogConfig, LogError};

#[test]
fn append_then_read_back_across_partitions_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(4));
    let records: Vec<_> = (0..200)
        .map(|i| {
            (
                format!("t{}", i % 2),
                record(&format!("k{i}"), &format!("v{i}"), i),
            )
        })
        .collect();
    let receipt = rt.block_on(log.append(records.clone())).unwrap();
    let offsets = rt.block_on(receipt.durable()).unwrap();
    assert_eq!(offsets.len(), 200);
    for ((topic, rec), (t, p, _)) in records.iter().zip(&offsets) {
        assert_eq!(topic, t);
        assert_eq!(*p, partition_for(&rec.key, 4));
    }
    let check = |log: &Log| {
        for ((topic, rec), (_, p, o)) in records.iter().zip(&offsets) {
            let got = read_all(log, topic, *p, *o);
            assert_eq!(got[0].value, rec.value);
            assert_eq!(got[0].key, rec.key);
            assert_eq!(got[0].offset, *o);
        }
    };
    check(&log);
    drop(log);
    let log = open(dir.path(), config(4));
    check(&log);
    let topics = log.topics();
    assert_eq!(topics.len(), 2);
    assert_eq!(topics[0].partitions, 4);
    let total: u64 = topics
        .iter()
        .flat_map(|t| &t.partition_info)
        .map(|p| p.high_watermark)
        .sum();
    assert_eq!(total, 200);
}

#[test]
fn tailing_reader_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    rt.block_on(async {
        log.append(vec![("t".into(), record("k", "first", 1))])
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
        let mut reader = log.reader("t", 0, 0).unwrap();
        assert_eq!(reader.next_batch(10).await.unwrap().len(), 1);
        let waiting = tokio::spawn(async move { reader.next_batch(10).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a reader at the end must wait");
        log.append(vec![("t".into(), record("k", "second", 2))])
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got[0].value, &b"second"[..]);
        assert_eq!(got[0].offset, 1);
    });
}

#[test]
fn interval_fsync_acknowledges_after_the_next_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(2);
    cfg.fsync = headwater_log::FsyncPolicy::Interval {
        interval: HumanDuration(Duration::from_millis(30)),
    };
    let log = open(dir.path(), cfg);
    rt.block_on(async {
        let receipts: Vec<_> = futures_join(&log).await;
        for r in receipts {
            r.durable().await.unwrap();
        }
    });
    assert_eq!(
        read_all(&log, "t", 0, 0).len() + read_all(&log, "t", 1, 0).len(),
        50
    );
    assert!(
        log.stats().fsyncs < 50,
        "interval fsync must batch: {:?}",
        log.stats()
    );
}

async fn futures_join(log: &Log) -> Vec<headwater_log::AppendReceipt> {
    let mut out = Vec::new();
    for i in 0..50 {
        out.push(
            log.append(vec![("t".into(), record(&format!("{i}"), "v", i))])
                .await
                .unwrap(),
        );
    }
    out
}

#[test]
fn consumer_offsets_are_monotonic_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    rt.block_on(async {
        let r = log
            .append(
                (0..10)
                    .map(|i| ("t".to_string(), record("k", "v", i)))
                    .collect(),
            )
            .await
            .unwrap();
        r.durable().await.unwrap();
        log.commit_offset("sink-a", "t", 0, 5).await.unwrap();
        log.commit_offset("sink-a", "t", 0, 5).await.unwrap();
        let err = log.commit_offset("sink-a", "t", 0, 4).await.unwrap_err();
        assert!(
            matches!(
                err,
                LogError::OffsetRegression {
                    committed: 5,
                    requested: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err = log.commit_offset("sink-a", "t", 0, 11).await.unwrap_err();
        assert!(matches!(err, LogError::OffsetBeyondEnd { .. }), "{err}");
        assert!(log.commit_offset("../evil", "t", 0, 1).await.is_err());
        log.commit_offset("sink-a", "t", 0, 10).await.unwrap();
    });
    assert_eq!(log.committed_offset("sink-a", "t", 0), Some(10));
    assert_eq!(log.committed_offset("sink-b", "t", 0), None);
    drop(log);
    let log = open(dir.path(), config(1));
    assert_eq!(log.committed_offset("sink-a", "t", 0), Some(10));
}

#[test]
fn read_from_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    rt.block_on(async {
        for chunk in 0..20 {
            let recs = (0..10).map(|i| {
                (
                    "t".to_string(),
                    record(
                        "k",
                        "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
                        (chunk * 10 + i) * 100,
                    ),
                )
            });
            log.append(recs.collect())
                .await
                .unwrap()
                .durable()
                .await
                .unwrap();
        }
        assert!(
            log.topics()[0].partition_info[0].segments > 1,
            "the test should span segments"
        );
        for (ts, expected) in [
            (0, 0),
            (50, 1),
            (100, 1),
            (12_345, 124),
            (19_900, 199),
            (19_901, 200),
        ] {
            let mut reader = log.reader_from_timestamp("t", 0, ts).await.unwrap();
            assert_eq!(reader.position(), expected, "ts {ts}");
            if expected < 200 {
                assert_eq!(reader.next_batch(1).await.unwrap()[0].offset, expected);
            }
        }
    });
}

#[test]
fn partition_count_mismatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(2));
    rt.block_on(log.append(vec![("shop.public.orders".into(), record("k", "v", 0))]))
        .unwrap();
    drop(log);
    let err = Log::open(dir.path(), config(3)).err().unwrap();
    assert!(
        matches!(
            err,
            LogError::PartitionCountMismatch {
                on_disk: 2,
                configured: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("shop.public.orders"), "{err}");
    assert_eq!(err.kind(), ErrorKind::WaitForOperator);
}

#[test]
fn retention_waits_for_consumers_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(1);
    cfg.retention_bytes = Some(ByteSize(8192));
    let log = open(dir.path(), cfg.clone());
    rt.block_on(async {
        log.register_consumer("sink", "t").await.unwrap();
        for i in 0..100 {
            let value = "x".repeat(200);
            log.append(vec![("t".into(), record("k", &value, i))])
                .await
                .unwrap()
                .durable()
                .await
                .unwrap();
        }
        assert_eq!(
            log.run_retention().await.unwrap(),
            0,
            "nothing is committed yet"
        );
        assert_eq!(log.log_start_offset("t", 0), 0);
        log.commit_offset("sink", "t", 0, 50).await.unwrap();
        assert!(log.run_retention().await.unwrap() > 0);
        let start = log.log_start_offset("t", 0);
        assert!(start > 0 && start <= 50, "start {start}");
        // A reader from before the start is moved up to it.
        assert_eq!(read_all(&log, "t", 0, 0).first().unwrap().offset, start);
    });
    drop(log);
    cfg.allow_uncommitted_deletes = true;
    let log = open(dir.path(), cfg);
    rt.block_on(async {
        log.run_retention().await.unwrap();
        assert!(log.log_start_offset("t", 0) > 50);
        assert_eq!(log.high_watermark("t", 0), 100);
    });
}

#[test]
fn disk_cap_applies_backpressure_until_consumers_commit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(1);
    cfg.retention_bytes = Some(ByteSize(4096));
    cfg.max_disk = Some(ByteSize(10_000));
    let log = open(dir.path(), cfg);
    rt.block_on(async {
        log.register_consumer("sink", "t").await.unwrap();
        let value = "x".repeat(1000);
        for i in 0..10 {
            log.append(vec![("t".into(), record("k", &value, i))])
                .await
                .unwrap()
                .durable()
                .await
                .unwrap();
        }
        let blocked = async {
            let receipt = log
                .append(vec![("t".into(), record("k", &value, 99))])
                .await?;
            receipt.durable().await
        };
        let mut blocked = Box::pin(blocked);
        let waited = tokio::time::timeout(Duration::from_millis(300), &mut blocked).await;
        assert!(waited.is_err(), "the append must wait for disk space");
        assert!(log.stats().backpressure);
        log.commit_offset("sink", "t", 0, 10).await.unwrap();
        let offsets = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(offsets[0].2, 10);
        assert!(!log.stats().backpressure);
        assert_eq!(log.stats().backpressure_episodes, 1);
    });
}

#[test]
fn damage_in_a_sealed_segment_is_loud_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    rt.block_on(async {
        for i in 0..60 {
            let value = "y".repeat(200);
            log.append(vec![("t".into(), record("k", &value, i))])
                .await
                .unwrap()
                .durable()
                .await
                .unwrap();
        }
    });
    let first = log.topics()[0].partition_info[0].clone();
    assert!(first.segments >= 3);
    drop(log);
    let seg = dir.path().join("topics/t/00000/00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 300;
    bytes[at] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();

    // Opening checks only the last batches of a sealed segment; reading
    // finds the damage.
    let log = open(dir.path(), config(1));
    let mut reader = log.reader("t", 0, 0).unwrap();
    let err = loop {
        match reader.read_now(100) {
            Ok(batch) => assert!(!batch.is_empty(), "read past the damage"),
            Err(err) => break err,
        }
    };
    drop(log);
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("00000000000000000000.log"),
        "{err}"
    );
    assert!(err.to_string().contains("skip_damaged_segments"), "{err}");

    let report = headwater_log::verify::verify(dir.path()).unwrap();
    assert_eq!(report.damage.len(), 1, "{report:?}");

    // Damage in the last batch of a sealed segment is found at open.
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let err = Log::open(dir.path(), config(1)).err().unwrap();
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("00000000000000000000.log"),
        "{err}"
    );

    let mut cfg = config(1);
    cfg.skip_damaged_segments = true;
    let log = open(dir.path(), cfg);
    let got = read_all(&log, "t", 0, 0);
    assert!(got.len() < 60 && got.len() > 30, "{}", got.len());
    assert_eq!(got.last().unwrap().offset, 59);
    assert!(got.windows(2).all(|w| w[0].offset < w[1].offset));
}

#[test]
fn read_only_open_sees_records_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(2));
    rt.block_on(async {
        let recs = (0..30)
            .map(|i| ("a.b.c".to_string(), record(&format!("{i}"), "v", i)))
            .collect();
        log.append(recs).await.unwrap().durable().await.unwrap();
    });
    let ro = Log::open_read_only(dir.path(), config(7)).unwrap();
    assert_eq!(ro.topics()[0].partitions, 2);
    assert_eq!(
        read_all(&ro, "a.b.c", 0, 0).len() + read_all(&ro, "a.b.c", 1, 0).len(),
        30
    );
    let err = rt
        .block_on(ro.append(vec![("a.b.c".into(), record("k", "v", 0))]))
        .unwrap_err();
    assert!(matches!(err, LogError::ReadOnly));
    drop(log);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(1);
    cfg.segment_age = HumanDuration(Duration::from_millis(1));
    let log = open(dir.path(), cfg);
    for i in 0..3 {
        append_one(&rt, &log, "t", record("k", "v", i));
        // older than segment_age before the next append
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(log.topics()[0].partition_info[0].segments, 3);
    assert_eq!(read_all(&log, "t", 0, 0).len(), 3);
}

#[test]
fn a_reopened_segment_keeps_its_age() {
    // GIVEN a segment started before a restart, older than segment_age by
    // the time the log is reopened
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(1);
    cfg.segment_age = HumanDuration(Duration::from_secs(1));
    let log = open(dir.path(), cfg.clone());
    append_one(&rt, &log, "t", record("k", "v", 1));
    drop(log);
    std::thread::sleep(Duration::from_millis(1_100));
    // WHEN the restarted log appends
    let log = open(dir.path(), cfg);
    append_one(&rt, &log, "t", record("k", "v", 2));
    // THEN the old segment rolled: its age did not restart at the reopen
    assert_eq!(log.topics()[0].partition_info[0].segments, 2);
    assert_eq!(read_all(&log, "t", 0, 0).len(), 2);
}

#[test]
fn a_reopened_young_segment_does_not_roll() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    for i in 0..3 {
        let log = open(dir.path(), config(1));
        append_one(&rt, &log, "t", record("k", "v", i));
        assert_eq!(log.topics()[0].partition_info[0].segments, 1);
    }
}

#[test]
fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    rt.block_on(async {
        // GIVEN 64 appenders at once
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let receipt = log
                        .append(vec![("t".into(), record(&format!("{i}"), "v", i))])
                        .await
                        .unwrap();
                    receipt.durable().await.unwrap()
                })
            })
            .collect();
        // WHEN all are durable
        let mut offsets = Vec::new();
        for t in tasks {
            offsets.push(t.await.unwrap()[0].2);
        }
        // THEN each got its own offset, and fsyncs were shared
        offsets.sort_unstable();
        assert_eq!(offsets, (0..64).collect::<Vec<u64>>());
    });
    let fsyncs = log.stats().fsyncs;
    assert!(
        fsyncs < 64,
        "group commit should share fsyncs, got {fsyncs}"
    );
}

#[test]
fn topic_metadata_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(3));
    let receipt = rt.block_on(log.append(vec![("a.b".into(), record("k", "v", 0))]));
    rt.block_on(receipt.unwrap().durable()).unwrap();
    let before = log.topics();
    drop(log);
    let after = open(dir.path(), config(3)).topics();
    assert_eq!(before[0].created_ms, after[0].created_ms);
    assert!(after[0].created_ms > 1_600_000_000_000);
    assert_eq!(after[0].partitions, 3);
}

#[test]
fn retention_by_age_uses_record_times_and_respects_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut cfg = config(1);
    cfg.retention = Some(HumanDuration(Duration::from_secs(3600)));
    let log = open(dir.path(), cfg);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rt.block_on(async {
        log.register_consumer("sink", "t").await.unwrap();
        // GIVEN old records in sealed segments, then recent ones
        let value = "z".repeat(300);
        for i in 0..40 {
            let ts = if i < 30 { now_ms - 7_200_000 } else { now_ms };
            let receipt = log
                .append(vec![("t".into(), record("k", &value, ts))])
                .await
                .unwrap();
            receipt.durable().await.unwrap();
        }
        // WHEN nothing is committed THEN nothing old is deleted
        assert_eq!(log.run_retention().await.unwrap(), 0);
        // WHEN the sink commits everything THEN only old segments go
        log.commit_offset("sink", "t", 0, 40).await.unwrap();
        assert!(log.run_retention().await.unwrap() > 0);
        let start = log.log_start_offset("t", 0);
        assert!(start > 0 && start <= 30, "start {start}");
        assert_eq!(read_all(&log, "t", 0, 0).len() as u64, 40 - start);
    });
}

#[test]
fn append_batch_encodes_in_place_and_reports_batches() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(4));
    // GIVEN records pushed borrowed and encoded in place, over two topics
    let mut batch = log.batch();
    for i in 0..50 {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let topic = if i % 2 == 0 { "a" } else { "b" };
        if i % 3 == 0 {
            batch
                .push_with(
                    topic,
                    i,
                    |k| k.extend_from_slice(key.as_bytes()),
                    |v| v.extend_from_slice(value.as_bytes()),
                )
                .unwrap();
        } else {
            batch
                .push(topic, key.as_bytes(), value.as_bytes(), i)
                .unwrap();
        }
    }
    assert_eq!(batch.len(), 50);
    // WHEN appended
    let receipt = rt.block_on(log.append_batch(batch)).unwrap();
    let batches = rt.block_on(receipt.durable_batches()).unwrap();
    // THEN one batch per topic and partition, covering every record once
    assert_eq!(batches.iter().map(|b| b.records).sum::<u32>(), 50);
    for b in &batches {
        assert_eq!(b.base_offset, 0);
        let records = read_all(&log, &b.topic, b.partition, 0);
        assert_eq!(records.len(), b.records as usize);
        for r in records {
            let i: i64 = std::str::from_utf8(&r.key[1..]).unwrap().parse().unwrap();
            assert_eq!(&*b.topic, if i % 2 == 0 { "a" } else { "b" });
            assert_eq!(b.partition, partition_for(&r.key, 4));
            assert_eq!(&r.value[..], format!("v{i}").as_bytes());
            assert_eq!(r.timestamp_ms, i);
        }
    }
    // AND per-record offsets follow push order within each partition
    let mut batch = log.batch();
    batch.push("a", b"k0", b"again", 99).unwrap();
    batch.push("a", b"k0", b"and again", 100).unwrap();
    let receipt = rt.block_on(log.append_batch(batch)).unwrap();
    let offsets = rt.block_on(receipt.durable()).unwrap();
    let p = partition_for(b"k0", 4);
    let before = batches
        .iter()
        .find(|b| &*b.topic == "a" && b.partition == p)
        .map_or(0, |b| u64::from(b.records));
    assert_eq!(
        offsets,
        vec![
            ("a".to_string(), p, before),
            ("a".to_string(), p, before + 1)
        ]
    );
}

#[test]
fn append_batch_rejects_bad_records_and_foreign_batches() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(1));
    let other = open(other_dir.path(), config(1));
    let mut batch = log.batch();
    assert!(matches!(
        batch.push("../t", b"k", b"v", 0),
        Err(LogError::InvalidName { .. })
    ));
    // A value encoder that removes bytes is refused; the batch stays whole.
    let err = batch
        .push_with("t", 0, |k| k.push(b'k'), |v| v.truncate(0))
        .unwrap_err();
    assert!(matches!(err, LogError::BadRecord { .. }), "{err}");
    assert!(batch.is_empty());
    batch.push("t", b"k", b"v", 7).unwrap();
    let receipt = rt.block_on(log.append_batch(batch)).unwrap();
    assert_eq!(
        rt.block_on(receipt.durable()).unwrap(),
        vec![("t".to_string(), 0, 0)]
    );
    assert_eq!(read_all(&log, "t", 0, 0).len(), 1);
    let foreign = other.batch();
    assert!(matches!(
        rt.block_on(log.append_batch(foreign)),
        Err(LogError::ForeignBatch)
    ));
    // A topic handle of one batch is refused by another, even one with a
    // topic at the same index.
    let mut first = log.batch();
    let handle = first.topic("t").unwrap();
    let mut second = log.batch();
    second.topic("u").unwrap();
    assert!(matches!(
        second.push_to(handle, b"k", b"v", 0),
        Err(LogError::BadRecord { .. })
    ));
}

#[test]
fn append_batch_topic_handles() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path(), config(2));
    let mut batch = log.batch();
    let a = batch.topic("a").unwrap();
    let b = batch.topic("b").unwrap();
    assert_eq!(batch.topic("a").unwrap(), a);
    batch.push_to(a, b"k1", b"one", 1).unwrap();
    batch
        .push_with_to(
            b,
            2,
            |k| k.extend_from_slice(b"k2"),
            |v| v.extend_from_slice(b"two"),
        )
        .unwrap();
    batch.push("a", b"k1", b"three", 3).unwrap();
    let mut other = log.batch();
    assert!(matches!(
        other.push_to(b, b"k", b"v", 0),
        Err(LogError::BadRecord { .. })
    ));
    let receipt = rt.block_on(log.append_batch(batch)).unwrap();
    let offsets = rt.block_on(receipt.durable()).unwrap();
    let (p1, p2) = (partition_for(b"k1", 2), partition_for(b"k2", 2));
    assert_eq!(
        offsets,
        vec![
            ("a".to_string(), p1, 0),
            ("b".to_string(), p2, 0),
            ("a".to_string(), p1, 1)
        ]
    );
    let values: Vec<_> = read_all(&log, "a", p1, 0)
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values, vec![&b"one"[..], &b"three"[..]]);
    assert_eq!(&read_all(&log, "b", p2, 0)[0].value[..], b"two");
}

/// GIVEN batches laid out so that a reader's 64 KiB chunk ends inside the
/// second batch's header
/// WHEN read from the start
/// THEN every record comes back (the rest of the header is read next).
#[test]
fn a_read_chunk_ending_inside_a_batch_header_reads_on() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(
        dir.path(),
        LogConfig {
            segment_bytes: ByteSize(1 << 20),
            ..config(1)
        },
    );
    // batch = 40-byte header + 16-byte record header + key + value
    let first = record("k", &"x".repeat((64 << 10) - 20 - 40 - 16 - 1), 1);
    for rec in [first, record("k", "second", 2), record("k", "third", 3)] {
        append_one(&rt, &log, "t", rec);
    }
    let mut reader = log.reader("t", 0, 0).unwrap();
    let got = reader.read_now(1).unwrap();
    assert_eq!(got.len(), 1);
    let rest = reader.read_now(2).unwrap();
    let values: Vec<_> = rest.iter().map(|r| r.value.to_vec()).collect();
    assert_eq!(values, [b"second".to_vec(), b"third".to_vec()]);
    let all = log.reader("t", 0, 0).unwrap().read_now(3).unwrap();
    assert_eq!(all.len(), 3);
}
