//! The Parquet sink's contract, written once and run against every object
//! store backend: a local directory, the S3 server (moto) and Azure Blob
//! Storage (Azurite). No GCS stand-in here speaks the XML API the object
//! store writes with (fake-gcs-server 1.54 and gcp-storage-emulator were
//! tried), so `gs://` is covered by its URL and configuration tests only.

mod common;

use std::time::Duration;

use common::*;
use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Op, Sink, Value};
use headwater_sink::parquet::{ArchiveFilter, ParquetConfig, ParquetSink};

async fn sink(config: &ParquetConfig) -> ParquetSink {
    ParquetSink::new(config).await.expect("build sink")
}

fn durable_of(progress: &headwater_core::Progress, partition: u32) -> Option<u64> {
    progress
        .durable
        .iter()
        .filter(|d| d.partition == partition)
        .map(|d| d.next_offset)
        .max()
}

/// Every value kind and every event shape comes back exactly.
async fn round_trip_every_kind<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    // GIVEN inserts of every kind on two partitions and every event shape
    let mut records = inserts(&schema, 0, 0, 12);
    records.extend(every_shape(&schema, 1, 100));
    // WHEN they go through the sink
    let mut sink = sink(&config).await;
    sink.write(records.clone()).await.expect("write");
    assert!(
        sink.take_progress().durable.is_empty(),
        "nothing is durable before an upload"
    );
    sink.flush(true).await.expect("drain");
    let progress = sink.take_progress();
    assert_eq!(durable_of(&progress, 0), Some(12));
    assert_eq!(
        durable_of(&progress, 1),
        Some(100 + every_shape(&schema, 1, 100).len() as u64)
    );
    assert!(progress.rejected.is_empty(), "{:?}", progress.rejected);
    // THEN the archive reads back as the same events
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// Feeding the same records again (after a crash) creates no new file.
async fn redelivery_does_not_duplicate<B: Backend>() {
    let backend = B::create().await;
    let mut config = backend.config();
    config.max_rows = 10;
    let schema = all_kinds_schema(1);
    let records = inserts(&schema, 0, 0, 25);
    for _ in 0..2 {
        let mut sink = sink(&config).await;
        sink.write(records.clone()).await.expect("write");
        sink.flush(true).await.expect("drain");
        assert_eq!(durable_of(&sink.take_progress(), 0), Some(25));
    }
    let files = list_files(&config).await;
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[0].ends_with("hour=13/0-0-9.parquet"), "{files:?}");
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// Files roll at `max_rows`, and each roll makes its rows durable.
async fn rolls_by_rows<B: Backend>() {
    let backend = B::create().await;
    let mut config = backend.config();
    config.max_rows = 10;
    let schema = all_kinds_schema(1);
    let mut sink = sink(&config).await;
    sink.write(inserts(&schema, 3, 0, 35)).await.expect("write");
    assert_eq!(durable_of(&sink.take_progress(), 3), Some(30));
    assert_eq!(list_files(&config).await.len(), 3);
    sink.flush(true).await.expect("drain");
    assert_eq!(durable_of(&sink.take_progress(), 3), Some(35));
    let files = list_files(&config).await;
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "3-0-9.parquet",
            "3-10-19.parquet",
            "3-20-29.parquet",
            "3-30-34.parquet"
        ]
    );
    backend.cleanup().await;
}

/// Files roll at `max_bytes`.
async fn rolls_by_bytes<B: Backend>() {
    let backend = B::create().await;
    let mut config = backend.config();
    config.max_bytes = headwater_core::config::ByteSize(16 << 10);
    let schema = all_kinds_schema(1);
    let records: Vec<_> = inserts(&schema, 0, 0, 400);
    let mut sink = sink(&config).await;
    for chunk in records.chunks(50) {
        sink.write(chunk.to_vec()).await.expect("write");
    }
    sink.flush(true).await.expect("drain");
    let files = list_files(&config).await;
    assert!(files.len() > 1, "{files:?}");
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// An open file is uploaded once its first row is `max_age` old.
async fn rolls_by_age<B: Backend>() {
    let backend = B::create().await;
    let mut config = backend.config();
    config.max_age = headwater_core::config::HumanDuration(Duration::from_millis(300));
    let schema = all_kinds_schema(1);
    let mut sink = sink(&config).await;
    sink.write(inserts(&schema, 0, 0, 5)).await.expect("write");
    sink.flush(false).await.expect("flush");
    assert!(list_files(&config).await.is_empty(), "too young to roll");
    testkit::wait_until_async(
        "the file to roll by age",
        Duration::from_secs(10),
        async || {
            sink.flush(false).await.expect("flush");
            !list_files(&config).await.is_empty()
        },
    )
    .await;
    assert_eq!(durable_of(&sink.take_progress(), 0), Some(5));
    backend.cleanup().await;
}

/// A new schema version closes the file once, and each file keeps its own
/// schema.
async fn rolls_on_schema_change<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let v1 = all_kinds_schema(1);
    let v2 = all_kinds_schema(2);
    let mut records = inserts(&v1, 0, 0, 5);
    records.extend(inserts(&v2, 0, 5, 20));
    let mut sink = sink(&config).await;
    sink.write(records.clone()).await.expect("write");
    assert_eq!(list_files(&config).await.len(), 1, "v1's file closed");
    assert_eq!(durable_of(&sink.take_progress(), 0), Some(5));
    sink.flush(true).await.expect("drain");
    let files = list_files(&config).await;
    assert_eq!(files.len(), 2, "{files:?}");
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    assert_eq!(got[4].event.schema.version, 1);
    assert_eq!(got[5].event.schema.version, 2);
    backend.cleanup().await;
}

/// A record the archive cannot hold (a value of another kind than its
/// column's, which only a faulty transform makes) is rejected with its
/// reason, once the records before it are durable, and the others are
/// archived.
async fn unencodable_record_is_rejected<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    let mut records = inserts(&schema, 0, 0, 6);
    if let Some(after) = records[2].event.after.as_mut() {
        after[3] = Value::Text("not an int".into());
    }
    let mut sink = sink(&config).await;
    sink.write(records.clone()).await.expect("write");
    let early = sink.take_progress();
    assert!(
        early.rejected.is_empty(),
        "held until offsets 0-1 are durable"
    );
    sink.flush(true).await.expect("drain");
    let progress = sink.take_progress();
    assert_eq!(durable_of(&progress, 0), Some(6));
    assert_eq!(progress.rejected.len(), 1);
    assert_eq!(progress.rejected[0].record.offset, 2);
    assert!(
        progress.rejected[0].reason.contains("`i32`"),
        "{}",
        progress.rejected[0].reason
    );
    let got = read_all(&config, ArchiveFilter::default()).await;
    let mut want = records.clone();
    want.remove(2);
    assert_same_events(&got, &want);
    backend.cleanup().await;
}

/// NaN and ±Infinity in a DECIMAL column, and arrays of any dimensions
/// and lower bounds, are archived (stand-ins in `_special`), in the row,
/// in `_before` and in `_key`, and read back exactly.
async fn special_values_are_archived<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    let mut records = inserts(&schema, 0, 0, 4);
    let grid = shaped(
        &[(2, 0), (2, -1)],
        vec![
            Value::Int32(1),
            Value::Null,
            Value::Int32(3),
            Value::Int32(4),
        ],
    );
    let cube = shaped(
        &[(1, 1), (1, 1), (2, 1)],
        vec![Value::Int32(5), Value::Int32(6)],
    );
    let specials = [
        (dec("NaN"), grid.clone()),
        (dec("Infinity"), cube.clone()),
        (dec("-Infinity"), shaped(&[(1, 7)], vec![Value::Null])),
    ];
    for (r, (d, a)) in records.iter_mut().zip(specials.clone()) {
        let after = r.event.after.as_mut().expect("an insert");
        after[7] = d;
        after[20] = a;
    }
    // An update whose before-image has them, and whose new row is plain.
    let before = records[0].event.after.clone();
    let mut after = all_kinds_row(&schema, 0);
    after[7] = dec("1.00");
    // A primary-key change: `_key` is written.
    let update = event(&schema, Op::Update, 0)
        .before(before)
        .after(after)
        .key(vec![Value::Int64(-5)])
        .build();
    records.push(record(0, 4, update));
    let mut sink = sink(&config).await;
    sink.write(records.clone()).await.expect("write");
    sink.flush(true).await.expect("drain");
    let progress = sink.take_progress();
    assert!(progress.rejected.is_empty(), "{:?}", progress.rejected);
    assert_eq!(durable_of(&progress, 0), Some(5));
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// An unreachable store fails the flush as retryable, reports nothing,
/// and the same sink, re-fed, delivers once the store is back.
async fn unreachable_store_is_retryable<B: Backend>() {
    let mut backend = B::create().await;
    let config = backend.broken_config().await;
    let schema = all_kinds_schema(1);
    let records = inserts(&schema, 0, 0, 8);
    let mut sink = sink(&config).await;
    sink.write(records.clone())
        .await
        .expect("write only buffers");
    let error = sink
        .flush(true)
        .await
        .expect_err("the store is unreachable");
    assert_eq!(error.kind(), ErrorKind::Retry, "{error}");
    assert!(error.to_string().contains("0..=7"), "{error}");
    let progress = sink.take_progress();
    assert!(progress.durable.is_empty() && progress.rejected.is_empty());
    assert_eq!(sink.open_files(), 0, "the sink reset itself");
    // The runtime re-feeds from the last committed offset.
    backend.repair().await;
    sink.write(records.clone()).await.expect("write");
    sink.flush(true).await.expect("the store is back");
    assert_eq!(durable_of(&sink.take_progress(), 0), Some(8));
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// Files past the multipart threshold go up in parts, and are not written
/// twice either.
async fn large_file_goes_up_in_parts<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    // Incompressible bytes: 64 rows of 100 KiB = 6.4 MiB > 5 MiB threshold.
    let mut config = config;
    config.multipart_threshold = headwater_core::config::ByteSize(5 << 20);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let records: Vec<_> = inserts(&schema, 0, 0, 64)
        .into_iter()
        .map(|mut r| {
            if let Some(after) = r.event.after.as_mut() {
                let noise: Vec<u8> = (0..100 << 10)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                after[11] = Value::Bytes(noise);
            }
            r
        })
        .collect();
    for _ in 0..2 {
        let mut sink = sink(&config).await;
        sink.write(records.clone()).await.expect("write");
        sink.flush(true).await.expect("drain");
        assert_eq!(durable_of(&sink.take_progress(), 0), Some(64));
    }
    let files = list_files(&config).await;
    assert_eq!(files.len(), 1, "{files:?}");
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// Past `max_buffered_bytes` the largest open file is uploaded early.
async fn memory_stays_bounded<B: Backend>() {
    let backend = B::create().await;
    let mut config = backend.config();
    config.max_buffered_bytes = headwater_core::config::ByteSize(256 << 10);
    config.row_group_bytes = headwater_core::config::ByteSize(64 << 10);
    let schema = all_kinds_schema(1);
    let mut sink = sink(&config).await;
    let mut records = Vec::new();
    for p in 0..8 {
        records.extend(inserts(&schema, p, 0, 300));
    }
    for chunk in records.chunks(100) {
        sink.write(chunk.to_vec()).await.expect("write");
        assert!(
            sink.buffered_bytes() <= (256 << 10) + (64 << 10),
            "buffered {} bytes",
            sink.buffered_bytes()
        );
    }
    sink.flush(true).await.expect("drain");
    assert!(
        list_files(&config).await.len() > 8,
        "some files rolled early"
    );
    let mut got = read_all(&config, ArchiveFilter::default()).await;
    got.sort_by_key(|r| (r.partition, r.offset));
    assert_same_events(&got, &records);
    backend.cleanup().await;
}

/// Replay filters by topic glob and commit time.
async fn replay_filters<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    // commit times: offset i commits at 13:00 + (i % 30) minutes, and
    // offset 40.. at 14:xx.
    let mut records = inserts(&schema, 0, 0, 30);
    let mut later = inserts(&schema, 0, 30, 40);
    for r in &mut later {
        r.event.commit_ts = Some(commit_time(60 + r.offset as i64));
    }
    records.extend(later);
    let mut sink = sink(&config).await;
    sink.write(records.clone()).await.expect("write");
    sink.flush(true).await.expect("drain");
    let files = list_files(&config).await;
    assert!(files.iter().any(|f| f.contains("hour=14")), "{files:?}");
    let got = read_all(
        &config,
        ArchiveFilter {
            topics: vec!["shop.public.*".into()],
            since: Some(commit_time(10)),
            until: Some(commit_time(95)),
        },
    )
    .await;
    let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
    let want: Vec<u64> = (10..30).chain(30..35).collect();
    assert_eq!(offsets, want);
    let none = read_all(
        &config,
        ArchiveFilter {
            topics: vec!["other.*".into()],
            ..ArchiveFilter::default()
        },
    )
    .await;
    assert!(none.is_empty());
    backend.cleanup().await;
}

/// Overlapping files (a redelivery cut at other offsets) read back once.
async fn overlapping_files_read_once<B: Backend>() {
    let backend = B::create().await;
    let config = backend.config();
    let schema = all_kinds_schema(1);
    let records = inserts(&schema, 0, 0, 20);
    let mut first = sink(&config).await;
    first.write(records[..12].to_vec()).await.expect("write");
    first.flush(true).await.expect("drain");
    let mut second = sink(&config).await;
    second.write(records.clone()).await.expect("write");
    second.flush(true).await.expect("drain");
    assert_eq!(list_files(&config).await.len(), 2);
    let got = read_all(&config, ArchiveFilter::default()).await;
    assert_same_events(&got, &records);
    let _ = Op::Insert;
    backend.cleanup().await;
}

/// `headwater check` says whether the store answers.
async fn check_probes_the_store<B: Backend>() {
    let mut backend = B::create().await;
    let good = sink(&backend.config()).await;
    let findings = good.check().await;
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[0].severity,
        headwater_core::Severity::Ok,
        "{findings:?}"
    );
    if !std::any::type_name::<B>().contains("File") {
        let broken = sink(&backend.broken_config().await).await;
        let findings = broken.check().await;
        assert_eq!(findings[0].severity, headwater_core::Severity::Fail);
        assert!(
            findings[0].message.contains("check the URL"),
            "{findings:?}"
        );
    }
    backend.cleanup().await;
}

macro_rules! conformance {
    ($backend:ty, $module:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn round_trip_every_kind() {
                super::round_trip_every_kind::<$backend>().await;
            }
            #[tokio::test]
            async fn redelivery_does_not_duplicate() {
                super::redelivery_does_not_duplicate::<$backend>().await;
            }
            #[tokio::test]
            async fn rolls_by_rows() {
                super::rolls_by_rows::<$backend>().await;
            }
            #[tokio::test]
            async fn rolls_by_bytes() {
                super::rolls_by_bytes::<$backend>().await;
            }
            #[tokio::test]
            async fn rolls_by_age() {
                super::rolls_by_age::<$backend>().await;
            }
            #[tokio::test]
            async fn rolls_on_schema_change() {
                super::rolls_on_schema_change::<$backend>().await;
            }
            #[tokio::test]
            async fn unencodable_record_is_rejected() {
                super::unencodable_record_is_rejected::<$backend>().await;
            }
            #[tokio::test]
            async fn special_values_are_archived() {
                super::special_values_are_archived::<$backend>().await;
            }
            #[tokio::test]
            async fn unreachable_store_is_retryable() {
                super::unreachable_store_is_retryable::<$backend>().await;
            }
            #[tokio::test]
            async fn large_file_goes_up_in_parts() {
                super::large_file_goes_up_in_parts::<$backend>().await;
            }
            #[tokio::test]
            async fn memory_stays_bounded() {
                super::memory_stays_bounded::<$backend>().await;
            }
            #[tokio::test]
            async fn replay_filters() {
                super::replay_filters::<$backend>().await;
            }
            #[tokio::test]
            async fn check_probes_the_store() {
                super::check_probes_the_store::<$backend>().await;
            }
            #[tokio::test]
            async fn overlapping_files_read_once() {
                super::overlapping_files_read_once::<$backend>().await;
            }
        }
    };
}

conformance!(FileBackend, file);
conformance!(S3Backend, s3);
conformance!(AzureBackend, azure);
