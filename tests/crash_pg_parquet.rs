//! The crash test: PostgreSQL → log → Parquet survives SIGKILL.
//!
//! A writer runs random transactions (inserts, updates, deletes, TOAST-sized
//! values, 500-row transactions, some rolled back) on three tables while
//! the daemon is killed with SIGKILL at random moments, ten times, and
//! restarted. Then the archive is read with DuckDB: every committed change
//! is there, in order per key, nothing rolled back is, and the state
//! rebuilt from the archive equals the tables. Once against `file://`, once
//! against the S3 server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use common::{wait_for, Daemon, TestDb};

const KILLS: usize = 10;
const TABLES: [&str; 3] = ["accounts", "orders", "events"];

/// What the writer knows it committed, per table and key: the row's last
/// version, and whether it was deleted.
#[derive(Default)]
struct Committed {
    rows: BTreeMap<&'static str, BTreeMap<i64, (i64, bool)>>,
    next_id: i64,
    transactions: usize,
    rolled_back: usize,
}

impl Committed {
    fn live_keys(&self, table: &str) -> Vec<i64> {
        self.rows
            .get(table)
            .map(|rows| {
                rows.iter()
                    .filter(|(_, (_, deleted))| !deleted)
                    .map(|(k, _)| *k)
                    .collect()
            })
            .unwrap_or_default()
    }
}

const SCHEMA: &str = "
CREATE TABLE accounts (id bigint PRIMARY KEY, version int NOT NULL, balance numeric(12,2), note text);
CREATE TABLE orders (id bigint PRIMARY KEY, version int NOT NULL, amount numeric(10,2), status text, updated timestamptz);
CREATE TABLE events (id bigint PRIMARY KEY, version int NOT NULL, payload jsonb);
";

/// Random hex, about 12 KB: too long and too random to stay inline, so
/// PostgreSQL TOASTs it and sends it as unchanged when an update leaves it.
const TOAST_VALUE: &str =
    "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400))";

fn insert_sql(table: &str, id: i64, toast: bool) -> String {
    match table {
        "accounts" => {
            let note = if toast { TOAST_VALUE.to_owned() } else { format!("'note {id} ü'") };
            format!("INSERT INTO accounts VALUES ({id}, 1, {id}.25, {note})")
        }
        "orders" => format!(
            "INSERT INTO orders VALUES ({id}, 1, {}.{:02}, 'new', now())",
            id % 1000,
            id % 100
        ),
        _ => format!(
            "INSERT INTO events VALUES ({id}, 1, '{{\"id\": {id}, \"tags\": [\"a\", null], \"n\": 1.50}}')"
        ),
    }
}

fn update_sql(table: &str, id: i64) -> String {
    match table {
        // The note (often TOASTed) is left alone: unchanged in the stream.
        "accounts" => format!("UPDATE accounts SET version = version + 1, balance = balance + 0.01 WHERE id = {id}"),
        "orders" => format!(
            "UPDATE orders SET version = version + 1, status = 'v' || (version + 1), amount = amount + 1, updated = now() WHERE id = {id}"
        ),
        _ => format!(
            "UPDATE events SET version = version + 1, payload = jsonb_set(payload, '{{n}}', to_jsonb(version + 1)) WHERE id = {id}"
        ),
    }
}

/// One random transaction; the model changes only if it committed.
async fn random_transaction(client: &mut Client, rng: &mut StdRng, model: &Mutex<Committed>) {
    let mut statements = Vec::new();
    let mut effects: Vec<(&'static str, i64, i32)> = Vec::new(); // (table, id, +1 insert / 0 update / -1 delete)
    {
        let mut m = model.lock().unwrap();
        let kind = rng.random_range(0..100);
        if kind < 4 {
            // A 500-row transaction.
            for _ in 0..500 {
                m.next_id += 1;
                statements.push(insert_sql("orders", m.next_id, false));
                effects.push(("orders", m.next_id, 1));
            }
        } else {
            for _ in 0..rng.random_range(1..6) {
                let table = TABLES[rng.random_range(0..3)];
                let live = m.live_keys(table);
                let action = rng.random_range(0..10);
                if live.is_empty() || action < 4 {
                    m.next_id += 1;
                    let toast = table == "accounts" && rng.random_bool(0.3);
                    statements.push(insert_sql(table, m.next_id, toast));
                    effects.push((table, m.next_id, 1));
                } else {
                    let id = live[rng.random_range(0..live.len())];
                    if effects.iter().any(|(t, i, _)| *t == table && *i == id) {
                        continue;
                    }
                    if action < 9 {
                        statements.push(update_sql(table, id));
                        effects.push((table, id, 0));
                    } else {
                        statements.push(format!("DELETE FROM {table} WHERE id = {id}"));
                        effects.push((table, id, -1));
                    }
                }
            }
        }
    }
    let rollback = rng.random_bool(0.05);
    let tx = client.transaction().await.unwrap();
    for s in &statements {
        tx.batch_execute(s).await.unwrap();
    }
    let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
    if rollback {
        drop(m);
        tx.rollback().await.unwrap();
        model.lock().unwrap().rolled_back += 1;
        return;
    }
    drop(m);
    tx.commit().await.unwrap();
    m = model.lock().unwrap();
    m.transactions += 1;
    for (table, id, effect) in effects {
        let rows = m.rows.entry(table).or_default();
        match effect {
            1 => drop(rows.insert(id, (1, false))),
            0 => rows.get_mut(&id).unwrap().0 += 1,
            _ => rows.get_mut(&id).unwrap().1 = true,
        }
    }
}

/// Loads the initial rows (they arrive as the snapshot).
async fn initial_rows(client: &Client, model: &Mutex<Committed>) {
    let sql = initial_sql(&mut model.lock().unwrap());
    client.batch_execute(&sql).await.unwrap();
}

fn initial_sql(m: &mut Committed) -> String {
    let mut sql = String::from("BEGIN;");
    for table in TABLES {
        for _ in 0..100 {
            m.next_id += 1;
            sql.push_str(&insert_sql(
                table,
                m.next_id,
                table == "accounts" && m.next_id % 3 == 0,
            ));
            sql.push(';');
            let id = m.next_id;
            m.rows.entry(table).or_default().insert(id, (1, false));
        }
    }
    sql.push_str("COMMIT;");
    sql
}

fn write_config(
    dir: &Path,
    db: &TestDb,
    port: u16,
    archive_url: &str,
    s3: Option<&str>,
) -> std::path::PathBuf {
    let s3 = s3.map_or(String::new(), |endpoint| {
        format!(
            "\n[sinks.archive.s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true\n"
        )
    });
    let text = format!(
        r#"
data_dir = "{data}"

[log]
partitions = 3

[api]
listen = "127.0.0.1:{port}"

[sources.shop]
type = "postgres"
url = "{url}"
tables = ["public.accounts", "public.orders", "public.events"]
slot = "{slot}"
publication = "{slot}"

[sinks.archive]
type = "parquet"
url = "{archive_url}"
topics = ["shop.*"]
max_age = "1s"
{s3}"#,
        data = dir.join("data").display(),
        url = db.url(),
        slot = db.name,
    );
    let path = dir.join("headwater.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every table row of the archive, read by DuckDB, as JSON lines.
const READ_ARCHIVE: &str = r#"
import sys, json, duckdb, glob
root = sys.argv[1]
con = duckdb.connect()
cols = {
    "accounts": "id, version, balance::varchar AS balance, note",
    "orders": "id, version, amount::varchar AS amount, status, epoch_us(updated) AS updated",
    "events": "id, version, payload::varchar AS payload",
}
for table, select in cols.items():
    files = glob.glob(f"{root}/shop.public.{table}/**/*.parquet", recursive=True)
    if not files:
        continue
    rows = con.execute(
        f"SELECT _op, _position, _partition, _offset, _unchanged, {select} "
        f"FROM read_parquet(?, hive_partitioning = true, union_by_name = true)",
        [files],
    ).fetchall()
    names = ["op", "position", "partition", "offset", "unchanged"] + [c.split(" AS ")[-1].split("(")[-1].rstrip(")").strip() for c in select.split(", ")]
    for r in rows:
        d = dict(zip(names, r))
        d["table"] = table
        print(json.dumps(d, default=str))
"#;

type Row = BTreeMap<String, serde_json::Value>;

/// The archive's changes per (table, id), deduplicated by log position and
/// source position, in log order.
fn archive_changes(root: &Path) -> BTreeMap<(String, i64), Vec<serde_json::Value>> {
    let out = common::python(READ_ARCHIVE, &[root.to_str().unwrap()]);
    let mut rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| {
        (
            r["table"].as_str().unwrap().to_owned(),
            r["partition"].as_i64(),
            r["offset"].as_i64(),
        )
    });
    rows.dedup_by_key(|r| {
        (
            r["table"].clone(),
            r["partition"].clone(),
            r["offset"].clone(),
        )
    });
    let mut by_key: BTreeMap<(String, i64), Vec<serde_json::Value>> = BTreeMap::new();
    for r in rows {
        let key = (
            r["table"].as_str().unwrap().to_owned(),
            r["id"].as_i64().unwrap(),
        );
        let changes = by_key.entry(key).or_default();
        // A transaction appended again after a crash: same source position.
        if changes.iter().any(|c| c["position"] == r["position"]) {
            continue;
        }
        changes.push(r);
    }
    by_key
}

async fn table_contents(client: &Client) -> BTreeMap<(String, i64), Row> {
    let mut out = BTreeMap::new();
    let queries = [
        ("accounts", "SELECT id, version, balance::text AS balance, note FROM accounts"),
        ("orders", "SELECT id, version, amount::text AS amount, status, (extract(epoch FROM updated) * 1000000)::bigint AS updated FROM orders"),
        ("events", "SELECT id, version, payload::text AS payload FROM events"),
    ];
    for (table, sql) in queries {
        for row in client.query(sql, &[]).await.unwrap() {
            let mut r = Row::new();
            for (i, column) in row.columns().iter().enumerate() {
                let v = match *column.type_() {
                    tokio_postgres::types::Type::INT8 => {
                        serde_json::json!(row.get::<_, Option<i64>>(i))
                    }
                    tokio_postgres::types::Type::INT4 => {
                        serde_json::json!(row.get::<_, Option<i32>>(i))
                    }
                    _ => serde_json::json!(row.get::<_, Option<String>>(i)),
                };
                r.insert(column.name().to_owned(), v);
            }
            out.insert((table.to_owned(), row.get::<_, i64>(0)), r);
        }
    }
    out
}

fn verify(archive_root: &Path, model: &Committed, tables: &BTreeMap<(String, i64), Row>) {
    let changes = archive_changes(archive_root);
    let mut rebuilt: BTreeMap<(String, i64), Row> = BTreeMap::new();
    for ((table, id), list) in &changes {
        let (last_version, deleted) = model
            .rows
            .get(table.as_str())
            .and_then(|rows| rows.get(id))
            .copied()
            .unwrap_or_else(|| {
                panic!("{table} {id} is in the archive but was never committed (rolled back?)")
            });
        let mut expected_version = 1;
        let mut state: Option<Row> = None;
        for c in list {
            let op = c["op"].as_str().unwrap();
            if op == "d" {
                assert!(deleted, "{table} {id}: a delete the writer never committed");
                assert_eq!(
                    expected_version,
                    last_version + 1,
                    "{table} {id}: deleted before all its updates arrived"
                );
                state = None;
                continue;
            }
            let version = c["version"].as_i64().unwrap();
            assert_eq!(version, expected_version, "{table} {id}: version {version} arrived where {expected_version} was due: {list:#?}");
            expected_version += 1;
            let mut row: Row = c
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| {
                    ![
                        "op",
                        "position",
                        "partition",
                        "offset",
                        "unchanged",
                        "table",
                    ]
                    .contains(&k.as_str())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for unchanged in c["unchanged"].as_array().into_iter().flatten() {
                let name = unchanged.as_str().unwrap();
                let previous = state.as_ref().and_then(|s| s.get(name)).cloned();
                row.insert(
                    name.to_owned(),
                    previous.expect("an unchanged TOAST value before any value"),
                );
            }
            state = Some(row);
        }
        assert_eq!(
            expected_version,
            last_version + 1,
            "{table} {id}: last versions missing: {list:#?}"
        );
        assert_eq!(deleted, state.is_none(), "{table} {id}: delete missing");
        if let Some(row) = state {
            rebuilt.insert((table.clone(), *id), row);
        }
    }
    for (table, rows) in &model.rows {
        for id in rows.keys() {
            assert!(
                changes.contains_key(&((*table).to_owned(), *id)),
                "{table} {id}: committed but not in the archive"
            );
        }
    }
    assert_eq!(rebuilt.len(), tables.len());
    for (key, row) in tables {
        assert_eq!(
            rebuilt.get(key),
            Some(row),
            "{key:?}: the archive rebuilds a different row"
        );
    }
}

enum Archive {
    File,
    S3 { bucket: String },
}

async fn crash_test(archive: Archive) {
    let db = TestDb::new("crash").await;
    let (_tmp, dir) = common::temp_dir();
    let port = common::free_port();
    let (archive_url, s3) = match &archive {
        Archive::File => (format!("file://{}", dir.join("archive").display()), None),
        Archive::S3 { bucket } => (format!("s3://{bucket}/cdc"), Some(testkit::s3_endpoint())),
    };
    let config = write_config(&dir, &db, port, &archive_url, s3.as_deref());
    let daemon_log = dir.join("daemon.log");
    let mut client = db.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    let model = Arc::new(Mutex::new(Committed::default()));
    initial_rows(&client, &model).await;

    // GIVEN the daemon has taken its snapshot
    let daemon = Daemon::start(&config, port, &daemon_log);
    wait_for(
        "the snapshot in the log",
        Duration::from_secs(60),
        || async {
            let m = daemon.metrics().await.unwrap_or_default();
            m.get("headwater_log_end_offset").copied().unwrap_or(0.0) >= 300.0
        },
    )
    .await;

    // WHEN a writer commits random transactions while the daemon is killed
    // and restarted, again and again
    let stop_writer = CancellationToken::new();
    let writer = tokio::spawn({
        let (model, stop) = (model.clone(), stop_writer.clone());
        async move {
            let mut rng = StdRng::seed_from_u64(0x5eed);
            while !stop.is_cancelled() {
                random_transaction(&mut client, &mut rng, &model).await;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            client
        }
    });
    let mut rng = StdRng::seed_from_u64(42);
    let mut daemon = daemon;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        daemon.kill9();
        daemon = Daemon::start(&config, port, &daemon_log);
    }
    stop_writer.cancel();
    let client = writer.await.unwrap();
    // The last committed transaction's LSN: once the slot confirms past
    // it, every committed change is durable in the log.
    let lsn: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let slot = db.name.clone();
    wait_for("the slot to confirm the last transaction", Duration::from_secs(120), || {
        let (admin, slot, lsn) = (&db.admin, slot.clone(), lsn.clone());
        async move {
            admin
                .query_one(
                    "SELECT coalesce(confirmed_flush_lsn >= $2::text::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot, &lsn],
                )
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false)
        }
    })
    .await;
    // Caught up: no sink lag, and the log's end stays where it is.
    let last_end = Mutex::new(-1.0);
    wait_for(
        "the archive to catch up with the log",
        Duration::from_secs(120),
        || async {
            let Some(m) = daemon.metrics().await else {
                return false;
            };
            let end = m.get("headwater_log_end_offset").copied().unwrap_or(0.0);
            let lag = m.get("headwater_sink_lag_records").copied().unwrap_or(1.0);
            let prev = std::mem::replace(&mut *last_end.lock().unwrap(), end);
            lag == 0.0 && end == prev
        },
    )
    .await;
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    // THEN the archive holds exactly the committed history
    let archive_root = match &archive {
        Archive::S3 { bucket } => {
            let local = dir.join("downloaded");
            common::download_bucket(bucket, &local);
            local.join("cdc")
        }
        Archive::File => dir.join("archive"),
    };
    let tables = table_contents(&db.client().await).await;
    {
        let m = model.lock().unwrap();
        assert!(
            m.transactions > 50,
            "the writer committed only {} transactions",
            m.transactions
        );
        verify(&archive_root, &m, &tables);
        eprintln!(
            "crash test: {} transactions committed, {} rolled back, {} kills, {} rows",
            m.transactions,
            m.rolled_back,
            KILLS,
            tables.len()
        );
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_file_archive() {
    crash_test(Archive::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_s3_archive() {
    let bucket = testkit::unique_name("crash").replace('_', "-");
    common::create_bucket(&bucket);
    crash_test(Archive::S3 { bucket }).await;
}
