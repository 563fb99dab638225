//! The runtime between a source and a sink, in process: the appender puts
//! events in the log and stores the source checkpoint only once they are
//! durable; a sink task delivers every record in order per key, commits
//! only what the sink reported, and after a failure starts over from the
//! committed offsets without a gap.

#![allow(clippy::unwrap_used)] // a test fails loudly by design

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use common::DataDir;
use headwater::metrics::Metrics;
use headwater::runtime::SinkTask;
use headwater_core::{Appender, ChangeEvent, EventBatch, Lsn, PgPosition, Position, Sink, Value};
use headwater_log::{Log, LogConfig};
use testkit::{Delivered, EventBuilder, FaultySink, MemorySink, SlowSink};
use tokio_util::sync::CancellationToken;

fn pos(commit: u64, lsn: u64) -> Position {
    Position::Postgres(PgPosition {
        commit_lsn: Lsn(commit),
        lsn: Lsn(lsn),
    })
}

/// Transaction `tx` updates every key in 0..keys, setting n = tx.
fn transaction(tx: u64, keys: i64) -> EventBatch {
    let events = (0..keys)
        .map(|id| {
            EventBuilder::update("public.orders")
                .key_column("id", Value::Int64(id))
                .column("n", Value::Int64(tx as i64))
                .position(pos(tx * 1000 + 999, tx * 1000 + id as u64))
                .tx_id(tx)
                .build()
        })
        .collect();
    EventBatch {
        events,
        checkpoint: Some(pos(tx * 1000 + 999, tx * 1000 + 999)),
    }
}

fn sink_task(f: &DataDir, factory: headwater::runtime::SinkFactory) -> SinkTask {
    SinkTask {
        name: "memory".into(),
        topics: vec!["shop.*".into()],
        log: f.log.clone(),
        schemas: f.schemas.clone(),
        metrics: Arc::new(Metrics::default()),
        factory,
        tick: Duration::from_millis(20),
    }
}

/// Per key, the `n` values in delivery order.
fn history(delivered: &Delivered) -> BTreeMap<i64, Vec<i64>> {
    let mut by_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in delivered.records() {
        let Value::Int64(id) = r.event.key[0] else {
            panic!()
        };
        let Value::Int64(n) = r.event.after.as_ref().unwrap()[1] else {
            panic!()
        };
        by_key.entry(id).or_default().push(n);
    }
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_is_stored_only_once_durable_and_survives_reopen() {
    let f = DataDir::new();
    let a = f.appender("shop").await;
    assert_eq!(a.durable_checkpoint(), None);
    let mut pending = Vec::new();
    for tx in 1..=20 {
        pending.push(a.append(transaction(tx, 10)).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    assert_eq!(a.durable_checkpoint(), Some(pos(20_999, 20_999)));
    let topic = f
        .log
        .topics()
        .into_iter()
        .find(|t| t.name == "shop.public.orders")
        .unwrap();
    let total: u64 = (0..topic.partitions)
        .map(|p| f.log.high_watermark(&topic.name, p))
        .sum();
    assert_eq!(total, 200);
    let reopened = f.appender("shop").await;
    assert_eq!(reopened.durable_checkpoint(), Some(pos(20_999, 20_999)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_gets_everything_in_order_and_resumes_after_a_failure() {
    let f = DataDir::new();
    let a = f.appender("shop").await;
    for tx in 1..=50 {
        a.append(transaction(tx, 20)).await.unwrap().await.unwrap();
    }

    // GIVEN a sink that fails on its third write
    let delivered = Arc::new(Delivered::default());
    let writes = Arc::new(AtomicUsize::new(0));
    let factory = {
        let (delivered, writes) = (delivered.clone(), writes.clone());
        Arc::new(move || {
            let sink = FaultySink::new(MemorySink::new(delivered.clone()), writes.clone(), 3);
            Box::pin(async move { Ok(Box::new(sink) as Box<dyn Sink>) }) as _
        })
    };
    let task = sink_task(&f, factory);
    let stop = CancellationToken::new();

    // WHEN it runs, fails, and runs again from the committed offsets
    let first = tokio::time::timeout(Duration::from_secs(20), task.run_once(&stop))
        .await
        .unwrap();
    assert!(first.is_err(), "the injected failure surfaces");
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { task.run_once(&stop).await }
    });
    // THEN every key's history is complete and in order (repeats allowed
    // only as a replay of a suffix already seen: at-least-once)
    testkit::wait_until_async(
        "every key's 50 changes",
        Duration::from_secs(20),
        || async {
            let h = history(&delivered);
            h.len() == 20 && h.values().all(|ns| ns.last() == Some(&50))
        },
    )
    .await;
    stop.cancel();
    run.await.unwrap().unwrap();
    for (key, ns) in history(&delivered) {
        let mut expected = 1;
        for n in ns {
            assert!(n <= expected, "key {key}: {n} arrived before {expected}");
            if n == expected {
                expected += 1;
            }
        }
        assert_eq!(expected, 51, "key {key} missed a change");
    }
    // AND the committed offsets reach the end of every partition
    for p in 0..4 {
        let end = f.log.high_watermark("shop.public.orders", p);
        assert_eq!(
            f.log
                .committed_offset("memory", "shop.public.orders", p)
                .unwrap_or(0),
            end
        );
    }
}

/// GIVEN a backlog of 50,000 records and a sink slower than its readers
/// (every write waits 40 ms), so records are always waiting for it
/// WHEN it catches up
/// THEN it commits offsets while the backlog drains, not only at the end:
/// a crash mid-catch-up would otherwise redeliver everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_behind_its_readers_commits_while_it_catches_up() {
    let f = DataDir::new();
    let a = f.appender("shop").await;
    for tx in 1..=50 {
        a.append(transaction(tx, 1_000))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let total = 50_000;
    let delivered = Arc::new(Delivered::default());
    let factory: headwater::runtime::SinkFactory = {
        let delivered = delivered.clone();
        Arc::new(move || {
            let sink = SlowSink::new(
                MemorySink::new(delivered.clone()),
                Duration::from_millis(40),
            );
            Box::pin(async move { Ok(Box::new(sink) as Box<dyn Sink>) }) as _
        })
    };
    let task = sink_task(&f, factory);
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { task.run_once(&stop).await }
    });
    let committed = |log: &Log| {
        (0..4)
            .map(|p| {
                log.committed_offset("memory", "shop.public.orders", p)
                    .unwrap_or(0)
            })
            .sum::<u64>()
    };
    testkit::wait_until_async("a first commit", Duration::from_secs(30), || async {
        committed(&f.log) > 0
    })
    .await;
    let delivered_at_first_commit = delivered.len();
    assert!(
        delivered_at_first_commit < total,
        "nothing was committed until all {total} records were delivered"
    );
    delivered.wait_for(total, Duration::from_secs(60)).await;
    testkit::wait_until_async(
        "every offset committed",
        Duration::from_secs(30),
        || async { committed(&f.log) == total as u64 },
    )
    .await;
    stop.cancel();
    run.await.unwrap().unwrap();
}

/// Rejects every record whose key is odd, delivers the rest.
struct Picky {
    progress: headwater_core::Progress,
}

#[async_trait::async_trait]
impl Sink for Picky {
    async fn write(
        &mut self,
        batch: Vec<headwater_core::SinkRecord>,
    ) -> headwater_core::Result<()> {
        for record in batch {
            let next_offset = record.offset + 1;
            let (topic, partition) = (record.topic.clone(), record.partition);
            if matches!(record.event.key[0], Value::Int64(id) if id % 2 == 1) {
                self.progress.rejected.push(headwater_core::Rejected {
                    record,
                    reason: "odd keys are refused".into(),
                });
            }
            self.progress.durable.push(headwater_core::DurableThrough {
                topic,
                partition,
                next_offset,
            });
        }
        Ok(())
    }

    async fn flush(&mut self, _drain: bool) -> headwater_core::Result<()> {
        Ok(())
    }

    fn take_progress(&mut self) -> headwater_core::Progress {
        std::mem::take(&mut self.progress)
    }

    async fn check(&self) -> Vec<headwater_core::Finding> {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_records_go_to_the_dead_letter_topic_and_the_sink_moves_on() {
    let f = DataDir::new();
    let a = f.appender("shop").await;
    a.append(transaction(1, 10)).await.unwrap().await.unwrap();
    let factory: headwater::runtime::SinkFactory = Arc::new(|| {
        Box::pin(async {
            Ok(Box::new(Picky {
                progress: Default::default(),
            }) as Box<dyn Sink>)
        }) as _
    });
    let mut task = sink_task(&f, factory);
    task.name = "picky".into();
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { task.run_once(&stop).await }
    });
    let dlq = headwater::runtime::dead_letter_topic("picky");
    let committed = |log: &Log| {
        (0..4)
            .map(|p| {
                log.committed_offset("picky", "shop.public.orders", p)
                    .unwrap_or(0)
            })
            .sum::<u64>()
    };
    testkit::wait_until_async(
        "the sink to commit past its rejections",
        Duration::from_secs(20),
        || async { committed(&f.log) >= 10 },
    )
    .await;
    stop.cancel();
    run.await.unwrap().unwrap();
    let topic = f
        .log
        .topics()
        .into_iter()
        .find(|t| t.name == dlq)
        .expect("a dead-letter topic");
    let mut reasons = Vec::new();
    for p in 0..topic.partitions {
        let mut reader = f.log.reader(&dlq, p, 0).unwrap();
        for record in reader.read_now(100).unwrap() {
            let event =
                headwater_core::codec::decode_event(&record.value, |id| f.schemas.get(id)).unwrap();
            let Value::Int64(id) = event.key[0] else {
                panic!()
            };
            assert_eq!(id % 2, 1);
            let reason = event
                .headers
                .iter()
                .find(|h| h.name == "headwater.dlq.reason")
                .unwrap();
            reasons.push(String::from_utf8(reason.value.clone()).unwrap());
        }
    }
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons.iter().all(|r| r == "odd keys are refused"));
}

/// Every (key, n) in the log, in offset order per partition.
fn log_contents(f: &DataDir) -> Vec<(i64, i64)> {
    let topic = "shop.public.orders";
    let partitions = f
        .log
        .topics()
        .into_iter()
        .find(|t| t.name == topic)
        .map_or(0, |t| t.partitions);
    let mut rows = Vec::new();
    for p in 0..partitions {
        let mut reader = f.log.reader(topic, p, 0).unwrap();
        for record in reader.read_now(100_000).unwrap() {
            let event =
                headwater_core::codec::decode_event(&record.value, |id| f.schemas.get(id)).unwrap();
            let (Value::Int64(id), Some(Value::Int64(n))) =
                (&event.key[0], event.after.as_ref().map(|a| a[1].clone()))
            else {
                panic!()
            };
            rows.push((*id, n));
        }
    }
    rows.sort_unstable();
    rows
}

/// GIVEN a log holding part of a transaction the checkpoint does not cover
/// yet — its first half (appended in parts), and of its second half only
/// the records of one partition (an append torn across partitions)
/// WHEN a restarted source replays it whole from its checkpoint
/// THEN the log holds every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_events_the_log_already_has_are_not_appended_twice() {
    let f = DataDir::new();
    let a = f.appender("shop").await;
    a.append(transaction(1, 20)).await.unwrap().await.unwrap();
    let partitions = LogConfig::default().partitions;
    let in_partition_0 = |e: &ChangeEvent| {
        let mut key = Vec::new();
        headwater_core::codec::encode_key(&e.key, &mut key);
        headwater_log::partition_for(&key, partitions) == 0
    };
    let mut first_half = transaction(2, 20);
    first_half.events.truncate(10);
    first_half.checkpoint = None;
    a.append(first_half).await.unwrap().await.unwrap();
    let mut torn = transaction(2, 20);
    torn.events.drain(..10);
    torn.events.retain(in_partition_0);
    torn.checkpoint = None;
    assert!(!torn.events.is_empty() && torn.events.len() < 10);
    a.append(torn).await.unwrap().await.unwrap();
    drop(a);

    let b = f.appender("shop").await;
    assert_eq!(b.durable_checkpoint(), Some(pos(1999, 1999)));
    for tx in 2..=3 {
        b.append(transaction(tx, 20)).await.unwrap().await.unwrap();
    }
    let expected: Vec<(i64, i64)> = (0..20)
        .flat_map(|id| (1..=3).map(move |tx| (id, tx)))
        .collect();
    assert_eq!(log_contents(&f), expected);

    // A later start has nothing left to leave out.
    drop(b);
    let c = f.appender("shop").await;
    c.append(transaction(4, 20)).await.unwrap().await.unwrap();
    assert_eq!(log_contents(&f).len(), 80);
}
