//! Values PostgreSQL accepts are archived, never dead-lettered: arrays of
//! every shape (1-D, 2-D, 3-D, empty, NULL elements, lower bounds other
//! than 1) and `numeric` NaN / ±Infinity / the largest values, inserted,
//! updated and deleted under both replica identities, through the daemon
//! (PostgreSQL → log → Parquet), in binary and in text pgoutput. The state
//! rebuilt from the archive with DuckDB equals `SELECT *` of the tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value as Json;
use tokio_postgres::Client;

use common::{wait_for, Daemon, TestDb};

const SOURCES: [&str; 2] = ["bin", "txt"];
/// `vals_d` has the default replica identity, `vals_f` FULL.
const TABLES: [&str; 2] = ["vals_d", "vals_f"];

const COLUMNS: &str = "id int PRIMARY KEY, a int4[], t text[], n numeric(10,2), \
    n38 numeric(38,6), nw numeric(50,5), nmax numeric(1000,500), nu numeric, big text";

/// 7 inserts, 4 updates, 2 deletes.
const CHANGES: usize = 13;

fn workload(table: &str) -> String {
    // Incompressible, about 12 KB: stored out of line (TOAST).
    let big = "(SELECT string_agg(md5(g::text || 'x'), '') FROM generate_series(1, 400) g)";
    let max_nu = "(repeat('9', 131072) || '.' || repeat('9', 16383))::numeric";
    let nmax = "(repeat('9', 500) || '.' || repeat('9', 500))::numeric";
    format!(
        r#"
INSERT INTO {table} VALUES
 (1, '{{1,2,3}}', '{{a,"b c"}}', 'NaN', '99999999999999999999999999999999.999999',
     '999999999999999999999999999999999999999999999.99999', 'NaN', 'NaN', {big}),
 (2, '{{{{1,2}},{{3,4}}}}', '{{{{a,b}},{{c,NULL}}}}', '99999999.99',
     '-99999999999999999999999999999999.999999', 'NaN', {nmax}, 'Infinity', {big}),
 (3, '{{{{{{1,2}},{{3,4}}}},{{{{5,6}},{{7,8}}}}}}', '{{{{{{x}}}}}}', '-99999999.99', 'NaN', NULL,
     -{nmax}, '-Infinity', {big}),
 (4, '{{}}', '{{}}', '-0.01', '0.000001', '-0.00001', NULL, {max_nu}, {big}),
 (5, '{{NULL,2,NULL}}', '{{NULL,"NULL"}}', NULL, NULL, NULL, NULL, '-0.000000000000000000001', {big}),
 (6, '[0:1]={{1,2}}', '[5:5]={{x}}', 'NaN', NULL, NULL, NULL, '0', {big}),
 (7, '[-2:-1][3:4]={{{{1,NULL}},{{3,4}}}}', '[2:3][1:1]={{{{a}},{{b}}}}', '0', NULL, NULL, NULL,
     '1e-100', NULL);
UPDATE {table} SET a = '{{{{5,6}},{{7,8}}}}', n = '1.50', nu = '2' WHERE id = 1;
UPDATE {table} SET a = '[0:0]={{9}}', n = 'NaN', nu = 'NaN' WHERE id = 4;
UPDATE {table} SET a = '{{1}}', t = '{{}}', n = '2.00', nu = '-Infinity' WHERE id = 2;
UPDATE {table} SET n38 = '1', nw = 'NaN' WHERE id = 7;
DELETE FROM {table} WHERE id IN (3, 6);
"#
    )
}

fn write_config(dir: &Path, db: &TestDb, port: u16) -> std::path::PathBuf {
    let mut text = format!(
        "data_dir = \"{}\"\n\n[log]\npartitions = 2\n\n[api]\nlisten = \"127.0.0.1:{port}\"\n",
        dir.join("data").display()
    );
    for (source, binary) in SOURCES.iter().zip(["on", "off"]) {
        text.push_str(&format!(
            "\n[sources.{source}]\ntype = \"postgres\"\nurl = \"{url}\"\ntables = [\"public.vals_d\", \"public.vals_f\"]\nslot = \"{db}_{source}\"\npublication = \"{db}_{source}\"\nbinary = \"{binary}\"\n",
            url = db.url(),
            db = db.name,
        ));
    }
    text.push_str(&format!(
        "\n[sinks.archive]\ntype = \"parquet\"\nurl = \"file://{}\"\ntopics = [\"bin.*\", \"txt.*\"]\nmax_age = \"1s\"\nwide_decimals = \"text\"\n",
        dir.join("archive").display()
    ));
    let path = dir.join("headwater.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every archived row of one topic, in log order, as JSON.
const READ_ARCHIVE: &str = r#"
import sys, json, duckdb, glob
files = glob.glob(f"{sys.argv[1]}/{sys.argv[2]}/**/*.parquet", recursive=True)
con = duckdb.connect()
rows = con.execute(
    "SELECT _op, _partition, _offset, _unchanged, _special, id, a, t, n::varchar, "
    "n38::varchar, nw, nmax, nu, md5(big) FROM read_parquet(?, hive_partitioning = true) "
    "ORDER BY _partition, _offset",
    [files],
).fetchall() if files else []
names = ["op", "partition", "offset", "unchanged", "special", "id", "a", "t", "n", "n38",
         "nw", "nmax", "nu", "big"]
for r in rows:
    print(json.dumps(dict(zip(names, r)), default=str))
"#;

type Row = BTreeMap<String, Option<String>>;

const VALUE_COLUMNS: [&str; 8] = ["a", "t", "n", "n38", "nw", "nmax", "nu", "big"];

/// An array as `dims=elem|elem` (`<NULL>` for a NULL element), the form
/// the PostgreSQL query below prints.
fn array_text(dims: &str, elements: &[Json]) -> String {
    let elements: Vec<String> = elements
        .iter()
        .map(|e| match e {
            Json::Null => "<NULL>".to_owned(),
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    format!("{dims}={}", elements.join("|"))
}

/// One archived row's table columns, with the `_special` stand-ins put
/// back; `None` for an `_unchanged` column (the caller keeps the old one).
fn archived_row(r: &Json) -> BTreeMap<String, Option<Option<String>>> {
    let special = |column: &str| -> Option<String> {
        r["special"].as_array().unwrap().iter().find_map(|s| {
            (s["image"] == "row" && s["column"] == column)
                .then(|| s["value"].as_str().unwrap().to_owned())
        })
    };
    let unchanged: Vec<&str> = r["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for c in VALUE_COLUMNS {
        if unchanged.contains(&c) {
            out.insert(c.to_owned(), None);
            continue;
        }
        let v = match (&r[c], special(c)) {
            (Json::Array(elements), dims) => {
                let dims = dims.unwrap_or_else(|| match elements.len() {
                    0 => String::new(),
                    n => format!("[1:{n}]"),
                });
                Some(array_text(&dims, elements))
            }
            (Json::Null, Some(stand_in)) => Some(stand_in),
            (Json::Null, None) => None,
            (Json::String(s), None) => Some(s.clone()),
            (other, s) => panic!("column {c}: {other} with stand-in {s:?}"),
        };
        out.insert(c.to_owned(), Some(v));
    }
    out
}

/// The state the archive of `topic` rebuilds, per id; checks every change
/// is there once.
fn rebuild(archive: &Path, topic: &str, full: bool) -> BTreeMap<i64, Row> {
    let out = common::python(READ_ARCHIVE, &[archive.to_str().unwrap(), topic]);
    let mut rows: Vec<Json> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.dedup_by_key(|r| (r["partition"].clone(), r["offset"].clone()));
    assert_eq!(rows.len(), CHANGES, "{topic}: every change archived once");
    let mut state: BTreeMap<i64, Row> = BTreeMap::new();
    for r in &rows {
        let id = r["id"].as_i64().unwrap();
        if r["op"] == "d" {
            assert!(
                state.remove(&id).is_some(),
                "{topic} {id}: delete of a missing row"
            );
            continue;
        }
        if full {
            assert_eq!(
                r["unchanged"],
                Json::Array(vec![]),
                "{topic} {id}: REPLICA IDENTITY FULL fills unchanged TOAST from the old row"
            );
        }
        let previous = state.get(&id).cloned();
        let row: Row = archived_row(r)
            .into_iter()
            .map(|(c, v)| {
                let v = v.unwrap_or_else(|| {
                    previous.as_ref().expect("unchanged before any value")[&c].clone()
                });
                (c, v)
            })
            .collect();
        state.insert(id, row);
    }
    state
}

async fn table_state(client: &Client, table: &str) -> BTreeMap<i64, Row> {
    let array = |c: &str| {
        format!(
            "CASE WHEN {c} IS NULL THEN NULL ELSE coalesce(array_dims({c}), '') || '=' || \
             coalesce((SELECT string_agg(coalesce(x::text, '<NULL>'), '|' ORDER BY o) \
             FROM unnest({c}) WITH ORDINALITY AS u(x, o)), '') END"
        )
    };
    let sql = format!(
        "SELECT id, {}, {}, n::text, n38::text, nw::text, nmax::text, nu::text, md5(big) FROM {table}",
        array("a"),
        array("t")
    );
    let mut out = BTreeMap::new();
    for row in client.query(&sql, &[]).await.unwrap() {
        let values: Row = VALUE_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| ((*c).to_owned(), row.get::<_, Option<String>>(i + 1)))
            .collect();
        out.insert(i64::from(row.get::<_, i32>(0)), values);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_value_is_archived_and_rebuilds_the_table() {
    let db = TestDb::new("pgvals").await;
    let (_tmp, dir) = common::temp_dir();
    let _tmp = _tmp.keep();
    let port = common::free_port();
    let config = write_config(&dir, &db, port);
    let client = db.client().await;
    for table in TABLES {
        client
            .batch_execute(&format!("CREATE TABLE {table} ({COLUMNS})"))
            .await
            .unwrap();
    }
    client
        .batch_execute("ALTER TABLE vals_f REPLICA IDENTITY FULL")
        .await
        .unwrap();

    // GIVEN the daemon streams both tables through a binary and a text source
    let daemon = Daemon::start(&config, port, &dir.join("daemon.log"));
    wait_for("both slots", Duration::from_secs(60), || async {
        db.admin
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active AND confirmed_flush_lsn IS NOT NULL",
                &[&db.name],
            )
            .await
            .map(|r| r.get::<_, i64>(0) == 2)
            .unwrap_or(false)
    })
    .await;

    // WHEN every shape and special value is inserted, updated and deleted
    for table in TABLES {
        client.batch_execute(&workload(table)).await.unwrap();
    }
    let lsn: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    wait_for("the slots to confirm the workload", Duration::from_secs(60), || async {
        db.admin
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND confirmed_flush_lsn >= $2::text::pg_lsn",
                &[&db.name, &lsn],
            )
            .await
            .map(|r| r.get::<_, i64>(0) == 2)
            .unwrap_or(false)
    })
    .await;
    let last_end = Mutex::new(-1.0);
    let rejected = Mutex::new(0.0);
    wait_for(
        "the archive to catch up",
        Duration::from_secs(60),
        || async {
            let Some(m) = daemon.metrics().await else {
                return false;
            };
            *rejected.lock().unwrap() = m
                .get("headwater_sink_rejected_total")
                .copied()
                .unwrap_or(0.0);
            let end = m.get("headwater_log_end_offset").copied().unwrap_or(0.0);
            let lag = m.get("headwater_sink_lag_records").copied().unwrap_or(1.0);
            let prev = std::mem::replace(&mut *last_end.lock().unwrap(), end);
            lag == 0.0 && end == prev && end > 0.0
        },
    )
    .await;
    let status = daemon.terminate(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    // THEN nothing went to the dead-letter topic, and the archive rebuilds
    // both tables value for value, from either source
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert_eq!(
        *rejected.lock().unwrap(),
        0.0,
        "records were dead-lettered: {}",
        log.lines()
            .filter(|l| l.contains("dead-letter"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!log.contains("record rejected"), "{log}");
    let topics: Vec<String> = std::fs::read_dir(dir.join("data/log/topics"))
        .expect("the daemon's log topics")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        topics.iter().any(|t| t == "bin.public.vals_f"),
        "{topics:?}"
    );
    assert!(
        !topics.iter().any(|t| t.starts_with("_dlq.")),
        "a dead-letter topic exists: {topics:?}"
    );
    for table in TABLES {
        let want = table_state(&client, table).await;
        assert_eq!(want.len(), 5, "{table}: rows left after the deletes");
        for source in SOURCES {
            let topic = format!("{source}.public.{table}");
            let got = rebuild(&dir.join("archive"), &topic, table == "vals_f");
            for (id, row) in &want {
                assert_eq!(got.get(id), Some(row), "{topic} row {id}");
            }
            assert_eq!(got.len(), want.len(), "{topic}: rows");
        }
    }
    db.cleanup().await;
}
