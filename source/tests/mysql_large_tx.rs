//! A transaction of 1,000,000 rows passes in bounded memory: past
//! `transaction_buffer` it spills to disk, every row arrives in order, and
//! only a batch that ends at a commit carries a checkpoint (MariaDB).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use headwater_core::config::ByteSize;
use headwater_core::{Appender, Durable, EventBatch, Op, Position, Source, SourceContext, Value};
use headwater_source::mysql::{MySqlConfig, MySqlSource};
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::mysql_url;
use tokio_util::sync::CancellationToken;

const ROWS: i64 = 1_000_000;
const BUFFER: u64 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(600);

/// Checks the rows as they come instead of keeping a million events.
#[derive(Default)]
struct Checker {
    state: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Rows of the big transaction so far (ids 1, 2, 3… in order).
    rows: i64,
    /// Everything else that came, in order: (table, op, id).
    others: Vec<(String, Op, i64)>,
    problems: Vec<String>,
    checkpoint: Option<Position>,
    /// Where the big transaction's first rows event is.
    first_big: Option<Position>,
    batches_inside_big: usize,
}

#[async_trait]
impl Appender for Checker {
    async fn append(&self, batch: EventBatch) -> headwater_core::Result<Durable> {
        let mut seen = self.state.lock().unwrap();
        let before = seen.rows;
        for e in &batch.events {
            let id = match e.key.first() {
                Some(Value::Int64(i)) => *i,
                Some(Value::Int32(i)) => i64::from(*i),
                other => {
                    seen.problems.push(format!("key {other:?}"));
                    continue;
                }
            };
            if &*e.table.name == "big" && e.op == Op::Insert {
                if seen.first_big.is_none() {
                    seen.first_big = Some(e.position.clone());
                }
                let expected = seen.rows + 1;
                let v = e.after.as_ref().and_then(|a| a.get(1)).cloned();
                if id != expected || v != Some(Value::Int64(id * 3)) {
                    let problem = format!("row {id} (v {v:?}) where {expected} was due");
                    seen.problems.push(problem);
                }
                seen.rows = id;
            } else {
                seen.others.push((e.table.name.to_string(), e.op, id));
            }
        }
        // a batch that ends inside the big transaction carries no checkpoint
        if seen.rows > 0 && seen.rows < ROWS {
            seen.batches_inside_big += 1;
            let inside = batch.checkpoint.is_some() && batch.checkpoint >= seen.first_big;
            if inside && seen.rows > before {
                let problem = format!(
                    "checkpoint {:?} inside the transaction (row {})",
                    batch.checkpoint, seen.rows
                );
                seen.problems.push(problem);
            }
        }
        if let Some(c) = batch.checkpoint {
            seen.checkpoint = Some(c);
        }
        Ok(Durable::ready())
    }

    fn durable_checkpoint(&self) -> Option<Position> {
        None
    }
}

impl Checker {
    fn checkpoint(&self) -> Option<Position> {
        self.state.lock().unwrap().checkpoint.clone()
    }
}

#[tokio::test]
async fn mysql_million_row_transaction_spills_and_arrives_whole_in_order() {
    // GIVEN a source streaming an empty table, with a 1 MiB transaction buffer
    let mut db = MySqlDb::create("hw_my_bigtx").await;
    db.exec("CREATE TABLE big (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .await;
    db.exec("CREATE TABLE small (id INT PRIMARY KEY)").await;
    let spill_dir = tempfile::tempdir().unwrap();
    let mut cfg = MySqlConfig::new(
        mysql_url(),
        unique_server_id(),
        vec![format!("{}.*", db.name)],
    );
    cfg.transaction_buffer = ByteSize(BUFFER);
    cfg.spill_dir = Some(spill_dir.path().to_owned());
    let source = MySqlSource::new(cfg);
    let stats = source.transaction_stats();
    let checker = Arc::new(Checker::default());
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        name: "my".into(),
        appender: checker.clone(),
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(Box::new(source).run(ctx));
    testkit::wait_until_async("the snapshot of empty tables", DEADLINE, || async {
        checker.checkpoint().is_some()
    })
    .await;

    // WHEN one transaction inserts a million rows, between two small ones
    db.exec("INSERT INTO small VALUES (1)").await;
    db.exec(&format!(
        "INSERT INTO big SELECT seq, seq * 3 FROM mysql.seq_1_to_{ROWS}"
    ))
    .await;
    db.exec("INSERT INTO small VALUES (2)").await;
    let end = db.binlog_position().await;
    testkit::wait_until_async("the source to catch up", DEADLINE, || async {
        matches!(checker.checkpoint(), Some(Position::MySql(p)) if p >= end)
    })
    .await;
    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");

    // THEN every row arrived once, in order, the small ones around it…
    let seen = std::mem::take(&mut *checker.state.lock().unwrap());
    assert_eq!(seen.problems, Vec::<String>::new());
    assert_eq!(seen.rows, ROWS);
    assert_eq!(
        seen.others,
        vec![
            ("small".to_owned(), Op::Insert, 1),
            ("small".to_owned(), Op::Insert, 2)
        ]
    );
    assert!(
        seen.batches_inside_big > 100,
        "appended in parts: {}",
        seen.batches_inside_big
    );
    // …the transaction spilled, and memory never held more than the buffer
    let high_water = stats.high_water_bytes.load(Ordering::Relaxed);
    assert!(high_water <= BUFFER, "high water {high_water} > {BUFFER}");
    assert!(high_water > BUFFER / 2, "high water {high_water}");
    assert_eq!(stats.spilled_transactions.load(Ordering::Relaxed), 1);
    assert!(stats.spilled_bytes.load(Ordering::Relaxed) > 4 * BUFFER);
    assert_eq!(std::fs::read_dir(spill_dir.path()).unwrap().count(), 0);
    db.drop_db().await;
}
