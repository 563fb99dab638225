//! A MariaDB transaction larger than one append (`max_batch_events`) is
//! appended in parts, with the checkpoint on the last. When the source dies
//! between the parts, the restarted source replays the transaction from its
//! checkpoint and the daemon's appender leaves out what the log already has:
//! every row is in the log exactly once, by GTID and by file + offset.
#![allow(clippy::unwrap_used)] // a test fails loudly by design

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::DataDir;
use headwater::runtime::LogAppender;
use headwater_core::{
    Appender, Durable, Error, EventBatch, Position, Result, Source, SourceContext, Value,
};
use headwater_source::mysql::{MySqlConfig, MySqlSource, ResumeBy};
use testkit::mysql::{unique_server_id, MySqlDb};
use tokio_util::sync::CancellationToken;

const ROWS: i64 = 10_000;
const PARTS_BEFORE_DYING: usize = 3;
const DEADLINE: Duration = Duration::from_secs(120);

/// Passes appends on until `PARTS_BEFORE_DYING` parts of the big
/// transaction are durable, then fails everything, as a killed process
/// would append nothing more.
struct DiesInsideTransaction {
    inner: Arc<LogAppender>,
    big_rows: AtomicUsize,
    parts: AtomicUsize,
    dead: AtomicBool,
    stop: CancellationToken,
}

#[async_trait]
impl Appender for DiesInsideTransaction {
    async fn append(&self, batch: EventBatch) -> Result<Durable> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        let big = batch
            .events
            .iter()
            .filter(|e| &*e.table.name == "big")
            .count();
        let so_far = self.big_rows.fetch_add(big, Ordering::SeqCst) + big;
        let inside = big > 0 && (so_far as i64) < ROWS;
        let durable = self.inner.append(batch).await?;
        if inside && self.parts.fetch_add(1, Ordering::SeqCst) + 1 == PARTS_BEFORE_DYING {
            durable.await?;
            self.dead.store(true, Ordering::SeqCst);
            self.stop.cancel();
            return Err(Error::Cancelled);
        }
        Ok(durable)
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        self.inner.durable_checkpoint()
    }
}

/// How many times each id of table `big` is in the log.
fn big_ids(data: &DataDir) -> BTreeMap<i64, usize> {
    let mut ids = BTreeMap::new();
    for topic in data.log.topics() {
        if !topic.name.ends_with(".big") {
            continue;
        }
        for p in 0..topic.partitions {
            let mut reader = data.log.reader(&topic.name, p, 0).unwrap();
            loop {
                let records = reader.read_now(10_000).unwrap();
                if records.is_empty() {
                    break;
                }
                for r in records {
                    let event =
                        headwater_core::codec::decode_event(&r.value, |id| data.schemas.get(id))
                            .unwrap();
                    let Value::Int64(id) = event.key[0] else {
                        panic!("key {:?}", event.key)
                    };
                    *ids.entry(id).or_default() += 1;
                }
            }
        }
    }
    ids
}

async fn dies_between_parts_and_resumes_exactly_once(resume_by: ResumeBy) {
    // GIVEN a source streaming an empty table, appending 1,000 rows at most
    let mut db = MySqlDb::create("hw_my_split").await;
    db.exec("CREATE TABLE big (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .await;
    let mut cfg = MySqlConfig::new(
        testkit::mysql_url(),
        unique_server_id(),
        vec![format!("{}.big", db.name)],
    );
    cfg.max_batch_events = 1000;
    cfg.resume_by = resume_by;
    let data = DataDir::new();
    let stop = CancellationToken::new();
    let dying = Arc::new(DiesInsideTransaction {
        inner: data.appender("my").await,
        big_rows: AtomicUsize::new(0),
        parts: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
        stop: stop.clone(),
    });
    let first = tokio::spawn(Box::new(MySqlSource::new(cfg.clone())).run(SourceContext {
        name: "my".into(),
        appender: dying.clone(),
        shutdown: stop.clone(),
    }));
    testkit::wait_until_async("the snapshot of the empty table", DEADLINE, || async {
        dying.durable_checkpoint().is_some()
    })
    .await;

    // WHEN one transaction inserts 10,000 rows and the source dies after
    // three of its parts are durable
    db.exec(&format!(
        "INSERT INTO big SELECT seq, seq * 3 FROM mysql.seq_1_to_{ROWS}"
    ))
    .await;
    let end = db.binlog_position().await;
    let _ = tokio::time::timeout(DEADLINE, first).await.unwrap();
    let durable_before: usize = big_ids(&data).values().sum();
    // (a part ends at the first rows event that fills it: 1,000 rows or more)
    assert!(
        durable_before >= PARTS_BEFORE_DYING * 1000 && (durable_before as i64) < ROWS,
        "{durable_before} rows durable before the source died"
    );

    // AND it starts again from its checkpoint
    let appender = data.appender("my").await;
    let stop = CancellationToken::new();
    let second = tokio::spawn(Box::new(MySqlSource::new(cfg)).run(SourceContext {
        name: "my".into(),
        appender: appender.clone(),
        shutdown: stop.clone(),
    }));
    testkit::mysql::wait_for_checkpoint(&*appender, &end, DEADLINE).await;
    stop.cancel();
    tokio::time::timeout(DEADLINE, second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // THEN every row is in the log exactly once
    let ids = big_ids(&data);
    assert_eq!(ids.len(), ROWS as usize);
    let repeated: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(
        repeated.is_empty(),
        "ids in the log more than once: {repeated:?}"
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_split_transaction_resumed_by_gtid_is_in_the_log_once() {
    dies_between_parts_and_resumes_exactly_once(ResumeBy::Gtid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_split_transaction_resumed_by_position_is_in_the_log_once() {
    dies_between_parts_and_resumes_exactly_once(ResumeBy::Position).await;
}
