//! The transactional outbox from MariaDB's binlog: business row and
//! outbox row in one transaction from three connections, the daemon
//! SIGKILLed twice; every committed event is in the log, per aggregate in
//! one partition and in commit order, and nothing rolled back is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use testkit::mysql::mysql_async::prelude::Queryable;
use testkit::mysql::mysql_async::{Conn, TxOpts};
use testkit::mysql::MySqlDb;

use common::{wait_for, Daemon};

const EVENTS: usize = 2_000;
const AGGREGATES: usize = 20;
const TOPIC: &str = "outbox.event.Order";

#[derive(Default)]
struct Written {
    committed: HashMap<String, (String, i64)>,
    rolled_back: BTreeSet<String>,
}

/// The aggregate's row lock orders its transactions: `seq` is the commit
/// order of its events.
async fn write_event(
    conn: &mut Conn,
    aggregate: &str,
    delete: bool,
    rollback: bool,
) -> (String, i64) {
    let mut tx = conn.start_transaction(TxOpts::default()).await.unwrap();
    tx.exec_drop(
        "UPDATE aggregates SET seq = LAST_INSERT_ID(seq + 1) WHERE id = ?",
        (aggregate,),
    )
    .await
    .unwrap();
    let seq: i64 = tx
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    tx.exec_drop(
        "INSERT INTO orders (aggregate, seq) VALUES (?, ?)",
        (aggregate, seq),
    )
    .await
    .unwrap();
    let id: String = tx.query_first("SELECT UUID()").await.unwrap().unwrap();
    tx.exec_drop(
        "INSERT INTO outbox VALUES (?, 'Order', ?, 'OrderCreated', JSON_OBJECT('aggregate', ?, 'seq', ?))",
        (&id, aggregate, aggregate, seq),
    )
    .await
    .unwrap();
    if delete {
        tx.exec_drop("DELETE FROM outbox WHERE id = ?", (&id,))
            .await
            .unwrap();
    }
    if rollback {
        tx.rollback().await.unwrap();
    } else {
        tx.commit().await.unwrap();
    }
    (id, seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outbox_events_arrive_in_order_per_aggregate_across_kills() {
    let mut db = MySqlDb::create("outbox_my").await;
    db.exec("CREATE TABLE aggregates (id VARCHAR(32) PRIMARY KEY, seq BIGINT NOT NULL DEFAULT 0)")
        .await;
    db.exec("CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, aggregate VARCHAR(32) NOT NULL, seq BIGINT NOT NULL)")
        .await;
    db.exec(
        "CREATE TABLE outbox (id CHAR(36) PRIMARY KEY, aggregatetype VARCHAR(64), aggregateid VARCHAR(64) NOT NULL, \
         type VARCHAR(64) NOT NULL, payload JSON)",
    )
    .await;
    db.exec(&format!(
        "INSERT INTO aggregates (id) SELECT CONCAT('order-', seq) FROM seq_1_to_{AGGREGATES}"
    ))
    .await;

    let (_tmp, dir) = common::temp_dir();
    let port = common::free_port();
    let config = dir.join("headwater.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "{data}"

[log]
partitions = 4

[api]
listen = "127.0.0.1:{port}"

[sources.shop]
type = "mysql"
url = "{url}"
server_id = {server_id}
tables = ["{db}.orders", "{db}.outbox"]

[[transforms]]
type = "outbox"
tables = ["{db}.outbox"]
"#,
            data = dir.join("data").display(),
            url = testkit::mysql_url(),
            server_id = testkit::mysql::unique_server_id(),
            db = db.name,
        ),
    )
    .unwrap();
    let log = dir.join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log);
    // Streaming after its (empty) snapshot: a row inserted and deleted
    // before that is in neither.
    let snapshot_done = dir.join("data/checkpoints/source.shop.checkpoint");
    wait_for("the source streaming", Duration::from_secs(60), || async {
        snapshot_done.exists()
    })
    .await;

    let written = Arc::new(Mutex::new(Written::default()));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let written = written.clone();
        let mut conn = db.another().await;
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            while written.lock().unwrap().committed.len() < EVENTS {
                let aggregate = format!("order-{}", rng.random_range(1..=AGGREGATES));
                let rollback = rng.random_bool(0.03);
                let (id, seq) =
                    write_event(&mut conn, &aggregate, rng.random_bool(0.5), rollback).await;
                let mut w = written.lock().unwrap();
                if rollback {
                    w.rolled_back.insert(id);
                } else {
                    w.committed.insert(id, (aggregate, seq));
                }
            }
        }));
    }
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        daemon.kill9();
        daemon = Daemon::start(&config, port, &log);
    }
    for w in writers {
        w.await.unwrap();
    }
    let written = Arc::try_unwrap(written).ok().unwrap().into_inner().unwrap();
    let committed = written.committed.len();
    wait_for(
        "every event in the log",
        Duration::from_secs(120),
        || async {
            let ids: BTreeSet<String> = common::log_records(&config, TOPIC)
                .iter()
                .map(|r| r["headers"]["id"].as_str().unwrap().to_owned())
                .collect();
            ids.len() >= committed
        },
    )
    .await;
    assert!(daemon.terminate(Duration::from_secs(60)).success());

    let records = common::log_records(&config, TOPIC);
    let mut seen = BTreeSet::new();
    let mut partition_of: HashMap<String, u64> = HashMap::new();
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let id = r["headers"]["id"].as_str().unwrap().to_owned();
        assert!(
            !written.rolled_back.contains(&id),
            "rolled-back event {id} is in the log"
        );
        let aggregate = r["key"]["aggregateid"].as_str().unwrap().to_owned();
        let partition = r["partition"].as_u64().unwrap();
        assert_eq!(
            *partition_of.entry(aggregate.clone()).or_insert(partition),
            partition,
            "{aggregate} in two partitions"
        );
        if !seen.insert(id.clone()) {
            continue;
        }
        let (expected_aggregate, seq) = &written.committed[&id];
        assert_eq!(&aggregate, expected_aggregate);
        assert_eq!(r["after"]["payload"]["seq"].as_i64(), Some(*seq));
        let last = last_seq.entry(aggregate.clone()).or_insert(0);
        assert_eq!(*seq, *last + 1, "{aggregate}: event {seq} after {last}");
        *last = *seq;
    }
    assert_eq!(
        seen.len(),
        committed,
        "every committed event, once at least"
    );
    println!(
        "{committed} events committed, {} in the log ({} duplicates after 2 kills)",
        records.len(),
        records.len() - seen.len()
    );
    db.drop_db().await;
}
