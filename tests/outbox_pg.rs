//! The transactional outbox end to end: PostgreSQL → `outbox` transform →
//! log → Kafka and Parquet, with the daemon as a child process.
//!
//! Kafka is librdkafka's mock cluster, run in this test process and
//! reached over loopback: it speaks the Kafka protocol to the daemon's
//! producer, but it is not a real broker (no replication, no disk, no
//! transactions), which is all the outbox path needs from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio_postgres::Client;

use common::{wait_for, Daemon, TestDb};

type Mock = MockCluster<'static, DefaultProducerContext>;

const TOPIC: &str = "outbox.event.Order";
const KAFKA_PARTITIONS: i32 = 6;

const SCHEMA: &str = "
CREATE TABLE aggregates (id text PRIMARY KEY, seq int NOT NULL DEFAULT 0);
CREATE TABLE orders (id bigserial PRIMARY KEY, aggregate text NOT NULL, seq int NOT NULL);
CREATE TABLE outbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    aggregatetype text,
    aggregateid text NOT NULL,
    type text NOT NULL,
    payload jsonb,
    tenant text
);
";

/// One message as a consumer sees it.
#[derive(Clone, Debug)]
struct Received {
    partition: i32,
    key: String,
    value: Option<Vec<u8>>,
    headers: BTreeMap<String, String>,
}

impl Received {
    fn id(&self) -> &str {
        &self.headers["id"]
    }

    fn seq(&self) -> i64 {
        let value: serde_json::Value =
            serde_json::from_slice(self.value.as_ref().unwrap()).unwrap();
        value["seq"].as_i64().unwrap()
    }
}

/// Everything `topic` holds, in offset order per partition, once `done`
/// says enough arrived (or after a minute and a half).
fn consume(mock: &Mock, topic: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", format!("reader-{}", testkit::unique_name("g")))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..KAFKA_PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(message) => {
                let message = message.unwrap();
                let mut headers = BTreeMap::new();
                for h in message.headers().into_iter().flat_map(|h| h.iter()) {
                    let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                    headers.insert(h.key.to_owned(), value.unwrap_or_default());
                }
                out.push(Received {
                    partition: message.partition(),
                    key: String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
                quiet_since = Instant::now();
            }
            None if quiet_since.elapsed() > Duration::from_millis(500) && done(&out) => return out,
            None if Instant::now() > deadline => return out,
            None => {}
        }
    }
}

/// Kafka's Java `murmur2` partitioner (what Debezium's router gets from
/// the default producer): `toPositive(murmur2(key)) % partitions`.
fn java_partition(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ key.len() as u32;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

#[test]
fn java_murmur2_matches_kafkas_known_values() {
    // From Kafka's UtilsTest.testMurmur2.
    let cases: [(&[u8], i32); 3] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
    ];
    for (key, hash) in cases {
        let expected = ((hash as u32 & 0x7fff_ffff) % 1_000_000) as i32;
        assert_eq!(java_partition(key, 1_000_000), expected, "{key:?}");
    }
}

fn write_config(dir: &Path, db: &TestDb, port: u16, mock: &Mock, extra: &str) -> PathBuf {
    let text = format!(
        r#"
data_dir = "{data}"

[log]
partitions = 4

[api]
listen = "127.0.0.1:{port}"

[sources.shop]
type = "postgres"
url = "{url}"
tables = ["public.orders", "public.outbox*"]
slot = "{slot}"
publication = "{slot}"

[[transforms]]
type = "outbox"
tables = ["public.outbox*"]
headers = ["tenant"]
messages = {{ prefix = "outbox" }}
{extra}

[sinks.kafka]
type = "kafka"
brokers = "{brokers}"
topics = ["outbox.event.*"]
topic = "{{topic}}"
linger = "5ms"

[sinks.archive]
type = "parquet"
url = "file://{archive}"
topics = ["outbox.event.*"]
max_age = "1s"
"#,
        data = dir.join("data").display(),
        url = db.url(),
        slot = db.name,
        brokers = mock.bootstrap_servers(),
        archive = dir.join("archive").display(),
    );
    let path = dir.join("headwater.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Until the source streams after its (empty) snapshot: a row inserted and
/// deleted before its slot exists is in neither.
async fn wait_streaming(dir: &Path, db: &TestDb) {
    let snapshot_done = dir.join("data/checkpoints/source.shop.checkpoint");
    wait_for("the source streaming", Duration::from_secs(60), || async {
        snapshot_done.exists()
            && db
                .admin
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active",
                    &[&db.name],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
    })
    .await;
}

fn mock_cluster() -> Mock {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, KAFKA_PARTITIONS, 1).unwrap();
    mock
}

/// What the writers committed (and rolled back), by event id.
#[derive(Default)]
struct Written {
    /// id → (aggregate, seq)
    committed: HashMap<String, (String, i64)>,
    rolled_back: BTreeSet<String>,
}

/// One business change and its outbox row in one transaction. The
/// aggregate's row lock orders its transactions, so `seq` is the commit
/// order of the aggregate's events. Some delete the outbox row before
/// committing (the usual way to keep the table empty); some roll back.
async fn write_event(
    client: &mut Client,
    aggregate: &str,
    delete: bool,
    rollback: bool,
) -> (String, i64) {
    let tx = client.transaction().await.unwrap();
    let seq: i32 = tx
        .query_one(
            "UPDATE aggregates SET seq = seq + 1 WHERE id = $1 RETURNING seq",
            &[&aggregate],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "INSERT INTO orders (aggregate, seq) VALUES ($1, $2)",
        &[&aggregate, &seq],
    )
    .await
    .unwrap();
    let id: String = tx
        .query_one(
            "INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant) \
             VALUES ('Order', $1, 'OrderCreated', jsonb_build_object('aggregate', $1::text, 'seq', $2::int), 't1') \
             RETURNING id::text",
            &[&aggregate, &seq],
        )
        .await
        .unwrap()
        .get(0);
    if delete {
        tx.execute("DELETE FROM outbox WHERE id = $1::text::uuid", &[&id])
            .await
            .unwrap();
    }
    if rollback {
        tx.rollback().await.unwrap();
    } else {
        tx.commit().await.unwrap();
    }
    (id, i64::from(seq))
}

/// Per aggregate: every message in the partition Java's partitioner picks
/// for its key, and the first arrival of each event in commit order.
fn assert_in_order_per_aggregate(messages: &[Received], written: &Written) {
    let mut seen = BTreeSet::new();
    let mut last_seq: HashMap<&str, i64> = HashMap::new();
    for m in messages {
        assert_eq!(
            m.partition,
            java_partition(m.key.as_bytes(), KAFKA_PARTITIONS),
            "key {} is not where Java's partitioner puts it",
            m.key
        );
        if !seen.insert(m.id().to_owned()) {
            continue;
        }
        let (aggregate, seq) = written
            .committed
            .get(m.id())
            .unwrap_or_else(|| panic!("event {} was never committed", m.id()));
        assert_eq!(&m.key, aggregate);
        assert_eq!(m.seq(), *seq, "the payload as written");
        let last = last_seq.entry(aggregate).or_insert(0);
        assert_eq!(
            *seq,
            *last + 1,
            "{aggregate}: event {seq} arrived after {last}"
        );
        *last = *seq;
    }
}

/// Every event of the Parquet archive: (id, aggregate, seq), in log order
/// per partition.
const READ_ARCHIVE: &str = r#"
import sys, json, duckdb, glob
files = glob.glob(f"{sys.argv[1]}/**/*.parquet", recursive=True)
if files:
    rows = duckdb.connect().execute(
        "SELECT _op, id::varchar, aggregateid, type, payload::varchar, _partition, _offset "
        "FROM read_parquet(?, hive_partitioning = true, union_by_name = true) ORDER BY _partition, _offset",
        [files],
    ).fetchall()
    for r in rows:
        print(json.dumps(r))
"#;

fn archived(root: &Path) -> Vec<serde_json::Value> {
    common::python(READ_ARCHIVE, &[root.to_str().unwrap()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// GIVEN three connections writing 10,000 business changes with their
/// outbox rows over 200 aggregates (some deleting the row in the same
/// transaction, some rolling back)
/// WHEN the daemon is SIGKILLed five times during the run
/// THEN every committed event id arrives in Kafka and in Parquet, none
/// rolled back does, and per aggregate the events arrive in commit order
/// in the partition Debezium's router would pick; duplicates are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outbox_event_arrives_in_order_per_aggregate_across_kills() {
    const EVENTS: usize = 10_000;
    const AGGREGATES: usize = 200;
    const KILLS: usize = 5;
    let db = TestDb::new("outbox_kill").await;
    let setup = db.client().await;
    setup.batch_execute(SCHEMA).await.unwrap();
    setup
        .batch_execute(&format!(
            "INSERT INTO aggregates SELECT 'order-' || g FROM generate_series(1, {AGGREGATES}) g"
        ))
        .await
        .unwrap();
    let mock = mock_cluster();
    let (_tmp, dir) = common::temp_dir();
    let port = common::free_port();
    let config = write_config(&dir, &db, port, &mock, "");
    let log = dir.join("daemon.log");
    let mut daemon = Daemon::start(&config, port, &log);
    wait_streaming(&dir, &db).await;

    let written = Arc::new(Mutex::new(Written::default()));
    let finished = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (written, url) = (written.clone(), db.url());
        writers.push(tokio::spawn(async move {
            let mut client = common::connect(&url).await;
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            while written.lock().unwrap().committed.len() < EVENTS {
                let aggregate = format!("order-{}", rng.random_range(1..=AGGREGATES));
                let rollback = rng.random_bool(0.03);
                let (id, seq) =
                    write_event(&mut client, &aggregate, rng.random_bool(0.5), rollback).await;
                let mut w = written.lock().unwrap();
                if rollback {
                    w.rolled_back.insert(id);
                } else {
                    w.committed.insert(id, (aggregate, seq));
                }
            }
        }));
    }
    {
        let finished = finished.clone();
        let writers_done = futures::future::join_all(writers);
        tokio::spawn(async move {
            for w in writers_done.await {
                w.unwrap();
            }
            finished.store(true, Ordering::SeqCst);
        });
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(700..2000))).await;
        daemon.kill9();
        daemon = Daemon::start(&config, port, &log);
    }
    wait_for("the writers", Duration::from_secs(300), || async {
        finished.load(Ordering::SeqCst)
    })
    .await;

    let written = Arc::try_unwrap(written).ok().unwrap().into_inner().unwrap();
    let committed = written.committed.len();
    let messages = consume(&mock, TOPIC, |got| {
        got.iter().map(Received::id).collect::<BTreeSet<_>>().len() >= committed
    });
    let ids: BTreeSet<&str> = messages.iter().map(Received::id).collect();
    for id in written.committed.keys() {
        assert!(ids.contains(id.as_str()), "event {id} is missing in Kafka");
    }
    for id in &written.rolled_back {
        assert!(
            !ids.contains(id.as_str()),
            "rolled-back event {id} reached Kafka"
        );
    }
    assert_in_order_per_aggregate(&messages, &written);
    println!(
        "{committed} events committed ({} rolled back), {} Kafka messages: {} duplicates after {KILLS} kills",
        written.rolled_back.len(),
        messages.len(),
        messages.len() - ids.len()
    );

    // SIGTERM closes the open Parquet files.
    assert!(daemon.terminate(Duration::from_secs(60)).success());
    let rows = archived(&dir.join("archive"));
    let mut archived_ids = BTreeSet::new();
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for row in &rows {
        assert_eq!(row[0], "e");
        let id = row[1].as_str().unwrap().to_owned();
        if !archived_ids.insert(id.clone()) {
            continue;
        }
        let (aggregate, seq) = &written.committed[&id];
        assert_eq!(row[2].as_str(), Some(aggregate.as_str()));
        assert_eq!(row[3], "OrderCreated");
        let payload: serde_json::Value = serde_json::from_str(row[4].as_str().unwrap()).unwrap();
        assert_eq!(payload["seq"].as_i64(), Some(*seq));
        let last = last_seq.entry(aggregate.clone()).or_insert(0);
        assert_eq!(
            *seq,
            *last + 1,
            "{aggregate} in the archive: {seq} after {last}"
        );
        *last = *seq;
    }
    assert_eq!(
        archived_ids.len(),
        committed,
        "every event in the archive once at least"
    );
    println!(
        "{} archived rows: {} duplicates",
        rows.len(),
        rows.len() - archived_ids.len()
    );
    db.cleanup().await;
}

/// GIVEN an outbox table, outbox messages and a second, older outbox
/// table without a `type` column
/// WHEN events come from rows (one deleted in the same transaction), from
/// transactional messages in the same transactions, a rolled-back
/// transaction, an update, a non-transactional message and bad rows
/// THEN Kafka gets exactly the events, in order for the aggregate, with
/// the payload as stored; the bad ones are in `_dlq.shop` with their
/// reasons, the update is skipped, and the metrics count both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_and_messages_become_events_and_bad_ones_are_dead_lettered() {
    let db = TestDb::new("outbox_kinds").await;
    let client = db.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO aggregates VALUES ('order-1');
             CREATE TABLE outbox_legacy (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text, aggregateid text, payload jsonb, tenant text);",
        )
        .await
        .unwrap();
    let mock = mock_cluster();
    let (_tmp, dir) = common::temp_dir();
    let port = common::free_port();
    let config = write_config(&dir, &db, port, &mock, "");
    let daemon = Daemon::start(&config, port, &dir.join("daemon.log"));
    wait_streaming(&dir, &db).await;

    let message = |seq: i64| {
        format!(
            "SELECT pg_logical_emit_message(true, 'outbox', '{{\"id\": \"m-{seq}\", \"aggregatetype\": \"Order\", \"aggregateid\": \"order-1\", \"type\": \"OrderPaid\", \"payload\": {{\"seq\": {seq}}}, \"tenant\": \"t1\"}}')"
        )
    };
    let row = |seq: i64| {
        format!(
            "INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant) VALUES ('Order', 'order-1', 'OrderCreated', '{{\"seq\": {seq}}}', 't1')"
        )
    };
    client
        .batch_execute(&format!(
            "BEGIN; {}; COMMIT;
             BEGIN; {}; COMMIT;
             BEGIN; {}; DELETE FROM outbox WHERE payload->>'seq' = '3'; COMMIT;
             BEGIN; {}; {}; COMMIT;
             BEGIN; {}; {}; ROLLBACK;
             UPDATE outbox SET type = 'Changed' WHERE payload->>'seq' = '1';
             SELECT pg_logical_emit_message(false, 'outbox', '{{\"id\": \"nt\"}}');
             SELECT pg_logical_emit_message(true, 'outbox', '{{\"id\": 1, oops');
             INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES (NULL, 'order-1', 'X', '{{}}');
             INSERT INTO outbox_legacy (aggregatetype, aggregateid, payload) VALUES ('Order', 'order-1', '{{}}');
             BEGIN; {}; COMMIT;",
            row(1),
            message(2),
            row(3),
            message(4),
            row(5),
            row(99),
            message(98),
            row(6),
        ))
        .await
        .unwrap();

    let messages = consume(&mock, TOPIC, |got| got.len() >= 6);
    let seqs: Vec<i64> = messages.iter().map(Received::seq).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5, 6],
        "exactly the events, in commit order"
    );
    assert!(messages
        .iter()
        .all(|m| m.partition == messages[0].partition && m.key == "order-1"));
    assert_eq!(messages[1].id(), "m-2");
    assert_eq!(messages[1].headers["type"], "OrderPaid");
    assert_eq!(
        messages[1].value.as_deref(),
        Some(&br#"{"seq": 2}"#[..]),
        "as written"
    );
    assert_eq!(messages[0].headers["type"], "OrderCreated");
    assert_eq!(messages[0].headers["tenant"], "t1");
    assert!(messages[0].headers.contains_key("headwater.position"));
    assert_eq!(
        messages[0].value.as_deref(),
        Some(&br#"{"seq": 1}"#[..]),
        "jsonb as PostgreSQL prints it"
    );

    let dead = common::log_records(&config, "_dlq.shop");
    let reasons: Vec<&str> = dead
        .iter()
        .map(|r| r["headers"]["headwater.dlq.reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    for expected in [
        "non-transactional",
        "not a JSON object",
        "`aggregatetype` is NULL",
        "table public.outbox_legacy has no column `type`",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "no dead letter says {expected:?}: {reasons:#?}"
        );
    }
    let m = daemon.metrics().await.unwrap();
    let outcome = |o: &str| {
        m.get(&format!(
            "headwater_transform_events_total{{transform=\"outbox\",source=\"shop\",outcome=\"{o}\"}}"
        ))
        .copied()
    };
    assert_eq!(outcome("dead_lettered"), Some(4.0), "{m:#?}");
    assert_eq!(outcome("skipped_update"), Some(1.0), "{m:#?}");

    // `headwater log tail` shows an event with its id, type and payload.
    let events = common::log_records(&config, TOPIC);
    assert_eq!(events[0]["op"], "e");
    assert_eq!(events[0]["key"]["aggregateid"], "order-1");
    assert_eq!(events[0]["after"]["payload"]["seq"], 1);
    assert_eq!(events[0]["headers"]["type"], "OrderCreated");

    assert!(daemon.terminate(Duration::from_secs(60)).success());
    db.cleanup().await;
}

/// `headwater check` names the outbox table and the column it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_outbox_column_a_table_lacks() {
    let db = TestDb::new("outbox_check").await;
    db.client().await.batch_execute(SCHEMA).await.unwrap();
    let mock = mock_cluster();
    let (_tmp, dir) = common::temp_dir();
    let config = write_config(
        &dir,
        &db,
        common::free_port(),
        &mock,
        "key = \"aggregate_id\"",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_headwater"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL")
            && l.contains("table public.outbox of source `shop`")
            && l.contains("`aggregate_id`")),
        "{text}"
    );
    db.cleanup().await;
}
