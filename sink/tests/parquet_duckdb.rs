//! The archive as DuckDB sees it: types and values of every kind, read
//! with DuckDB's own Parquet reader (the `duckdb` Python package that
//! `dev/services.sh` installs). DuckDB's `httpfs` extension is a download
//! DuckDB makes at first use, which this machine cannot do, so the S3
//! archive is fetched through `object_store` into a directory and read
//! from there.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;
use futures::TryStreamExt;
use headwater_core::Sink;
use headwater_sink::parquet::ParquetSink;
use object_store::ObjectStoreExt;

const SCRIPT: &str = r#"
import duckdb, json, sys
glob = sys.argv[1] + "/**/*.parquet"
con = duckdb.connect()
rel = con.sql(f"select * from read_parquet('{glob}', hive_partitioning = true)")
types = {c: str(t) for c, t in zip(rel.columns, rel.types)}
query = f"""
select _offset, _op, _image, id, u64::varchar, f64::varchar, dec::varchar, num,
       uid::varchar, day::varchar, tod::varchar, ts::varchar, tstz::varchar,
       doc::varchar, ints::varchar, grid::varchar, _unchanged::varchar,
       toast, todtz.offset_seconds, iv.months, date::varchar, hour::varchar,
       _position, bin::varchar, mood, dec_wide::varchar
from read_parquet('{glob}', hive_partitioning = true)
order by _partition, _offset
"""
names = ["_offset", "_op", "_image", "id", "u64", "f64", "dec", "num", "uid", "day",
         "tod", "ts", "tstz", "doc", "ints", "grid", "_unchanged", "toast",
         "todtz.offset_seconds", "iv.months", "date", "hour", "_position", "bin", "mood",
         "dec_wide"]
rows = [dict(zip(names, [None if v is None else str(v) for v in r])) for r in con.sql(query).fetchall()]
codecs = sorted({str(r[0]) for r in con.sql(f"select compression from parquet_metadata('{glob}')").fetchall()})
kv = con.sql(f"select count(*) from parquet_kv_metadata('{glob}') where decode(key) = 'headwater.schema'").fetchone()[0]
files = con.sql(f"select count(*) from glob('{glob}')").fetchone()[0]
print(json.dumps({"types": types, "rows": rows, "codecs": codecs, "schema_kv": kv, "files": files}))
"#;

struct DuckDbView {
    codecs: Vec<String>,
    schema_kv: u64,
    files: u64,
    types: HashMap<String, String>,
    rows: Vec<HashMap<String, Option<String>>>,
}

fn duckdb_read(dir: &Path) -> DuckDbView {
    let output = Command::new(testkit::duckdb_python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir)
        .output()
        .expect("run the duckdb python (bash dev/services.sh installs it)");
    assert!(
        output.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("duckdb script prints JSON");
    let types = json["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let rows = json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_object()
                .expect("row")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
                .collect()
        })
        .collect();
    let codecs = json["codecs"]
        .as_array()
        .expect("codecs")
        .iter()
        .map(|c| c.as_str().unwrap_or_default().to_owned())
        .collect();
    DuckDbView {
        codecs,
        schema_kv: json["schema_kv"].as_u64().unwrap_or(0),
        files: json["files"].as_u64().unwrap_or(0),
        types,
        rows,
    }
}

async fn archive_every_kind(config: &headwater_sink::parquet::ParquetConfig) {
    let schema = all_kinds_schema(1);
    let mut records = inserts(&schema, 0, 0, 4);
    records.extend(every_shape(&schema, 0, 4));
    let mut sink = ParquetSink::new(config).await.expect("sink");
    sink.write(records).await.expect("write");
    sink.flush(true).await.expect("drain");
}

fn check_view(view: &DuckDbView) {
    assert_eq!(view.codecs, ["ZSTD"], "zstd by default");
    assert!(view.files > 0);
    assert_eq!(
        view.schema_kv, view.files,
        "every file carries its TableSchema"
    );
    let t = |c: &str| view.types.get(c).map(String::as_str).unwrap_or("missing");
    let expected = [
        ("_op", "VARCHAR"),
        ("_position", "VARCHAR"),
        ("_position_order", "VARCHAR"),
        ("_commit_ts", "TIMESTAMP WITH TIME ZONE"),
        ("_offset", "BIGINT"),
        ("_partition", "BIGINT"),
        ("_tx_id", "UBIGINT"),
        ("_unchanged", "VARCHAR[]"),
        ("id", "BIGINT"),
        ("b", "BOOLEAN"),
        ("i16", "SMALLINT"),
        ("i32", "INTEGER"),
        ("u64", "UBIGINT"),
        ("f32", "FLOAT"),
        ("f64", "DOUBLE"),
        ("dec", "DECIMAL(10,2)"),
        // DuckDB's decimals stop at 38 digits: it reads the file's exact
        // DECIMAL(50,5) as DOUBLE (headwater's reader keeps it exact).
        ("dec_wide", "DOUBLE"),
        ("_key", "STRUCT(id BIGINT)"),
        ("_image", "VARCHAR"),
        ("date", "DATE"),
        ("hour", "BIGINT"),
        ("num", "VARCHAR"),
        ("txt", "VARCHAR"),
        ("bin", "BLOB"),
        ("doc", "JSON"),
        ("uid", "UUID"),
        ("day", "DATE"),
        ("tod", "TIME"),
        ("ts", "TIMESTAMP"),
        ("tstz", "TIMESTAMP WITH TIME ZONE"),
        ("ints", "INTEGER[]"),
        ("grid", "VARCHAR[][]"),
        ("mood", "VARCHAR"),
    ];
    for (column, ty) in expected {
        assert_eq!(t(column), ty, "type of {column}; all: {:?}", view.types);
    }
    assert!(
        t("todtz").contains("TIME") && t("todtz").contains("offset_seconds INTEGER"),
        "{}",
        t("todtz")
    );
    assert!(
        t("iv").contains("\"months\" INTEGER") && t("iv").contains("micros BIGINT"),
        "{}",
        t("iv")
    );

    let row = |offset: &str| {
        view.rows
            .iter()
            .find(|r| r["_offset"].as_deref() == Some(offset))
            .unwrap_or_else(|| panic!("no row at offset {offset}"))
    };
    let v = |offset: &str, column: &str| row(offset)[column].clone();
    // Offset 0: ordinary values.
    assert_eq!(v("0", "u64").as_deref(), Some("18446744073709551615"));
    assert_eq!(v("0", "dec").as_deref(), Some("0.25"));
    assert_eq!(
        v("0", "num").as_deref(),
        Some("3.14159265358979323846264338327950288419716939937510")
    );
    assert_eq!(
        v("0", "uid").as_deref(),
        Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    assert_eq!(v("0", "day").as_deref(), Some("2024-02-29"));
    assert_eq!(v("0", "tod").as_deref(), Some("12:34:56.000001"));
    assert_eq!(v("0", "ts").as_deref(), Some("2024-03-01 13:45:00.123456"));
    assert!(
        v("0", "tstz").is_some_and(|s| s.starts_with("2024-03-01 13:45:00.000001")),
        "{:?}",
        v("0", "tstz")
    );
    assert_eq!(v("0", "doc").as_deref(), Some("{\"a\": 1}"));
    assert_eq!(v("0", "ints").as_deref(), Some("[1, 2, 3]"));
    assert_eq!(v("0", "grid").as_deref(), Some("[[a, NULL], [b]]"));
    assert_eq!(v("0", "todtz.offset_seconds").as_deref(), Some("3600"));
    assert_eq!(v("0", "iv.months").as_deref(), Some("14"));
    assert_eq!(v("0", "date").as_deref(), Some("2024-03-01"));
    assert_eq!(v("0", "hour").as_deref(), Some("13"));
    assert_eq!(v("0", "_op").as_deref(), Some("c"));
    assert_eq!(v("0", "_position").as_deref(), Some("0/1008@0/1000"));
    assert_eq!(v("0", "mood").as_deref(), Some("happy"));
    // Offset 1: NULLs, and an unchanged TOAST column that is not NULL.
    assert_eq!(v("1", "u64"), None);
    assert_eq!(v("1", "toast"), None);
    assert_eq!(v("1", "_unchanged").as_deref(), Some("[toast]"));
    assert_eq!(v("0", "_unchanged").as_deref(), Some("[]"));
    // Offset 2: extremes and infinities.
    assert_eq!(v("2", "dec").as_deref(), Some("-99999999.99"));
    assert_eq!(v("2", "num").as_deref(), Some("NaN"));
    assert_eq!(v("2", "day").as_deref(), Some("infinity"));
    assert_eq!(v("2", "ts").as_deref(), Some("-infinity"));
    assert_eq!(v("2", "tstz").as_deref(), Some("infinity"));
    assert_eq!(v("2", "f64").as_deref(), Some("-inf"));
    // Offset 3: negative infinity date, JSON text kept as written.
    assert_eq!(v("3", "day").as_deref(), Some("-infinity"));
    assert_eq!(
        v("3", "doc").as_deref(),
        Some("{\"b\": 1,  \"a\": [true, null]}")
    );
    // Deletes are rows: with the before-image, or only the key.
    let delete = row("8");
    assert_eq!(delete["_op"].as_deref(), Some("d"));
    assert_eq!(delete["_image"].as_deref(), Some("before"));
    assert_eq!(delete["id"].as_deref(), Some("4"));
    let key_only = row("9");
    assert_eq!(key_only["_image"].as_deref(), Some("key"));
    assert_eq!(key_only["id"].as_deref(), Some("5"));
    assert_eq!(key_only["u64"], None);
}

#[tokio::test]
async fn duckdb_reads_a_local_archive() {
    let backend = FileBackend::create().await;
    let config = backend.config();
    archive_every_kind(&config).await;
    let view = duckdb_read(backend.dir());
    check_view(&view);
    backend.cleanup().await;
}

#[tokio::test]
async fn duckdb_reads_an_s3_archive_fetched_through_object_store() {
    let backend = S3Backend::create().await;
    let config = backend.config();
    archive_every_kind(&config).await;
    let archive = open(&config).await;
    let local = tempfile::tempdir().expect("temp dir");
    let objects: Vec<_> = archive
        .store
        .list(Some(&archive.prefix))
        .try_collect()
        .await
        .expect("list");
    assert!(!objects.is_empty());
    for meta in objects {
        let bytes = archive
            .store
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        let relative = meta.location.as_ref().trim_start_matches("archive/");
        let target = local.path().join(relative);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, bytes).expect("write");
    }
    let view = duckdb_read(local.path());
    check_view(&view);
    backend.cleanup().await;
}

/// With `wide_decimals = "text"`, a DECIMAL(50,5) column is exact text that
/// every engine reads, and replay still gives back the exact decimals.
#[tokio::test]
async fn wide_decimals_can_be_text() {
    let backend = FileBackend::create().await;
    let mut config = backend.config();
    config.wide_decimals = headwater_sink::parquet::config::WideDecimals::Text;
    let schema = all_kinds_schema(1);
    let records = inserts(&schema, 0, 0, 4);
    let mut sink = ParquetSink::new(&config).await.expect("sink");
    sink.write(records.clone()).await.expect("write");
    sink.flush(true).await.expect("drain");
    let view = duckdb_read(backend.dir());
    assert_eq!(view.types["dec_wide"], "VARCHAR");
    assert_eq!(view.types["dec"], "DECIMAL(10,2)");
    let wide = view
        .rows
        .iter()
        .find(|r| r["_offset"].as_deref() == Some("2"))
        .and_then(|r| r["dec_wide"].clone());
    assert_eq!(
        wide.as_deref(),
        Some("123456789012345678901234567890123456789012345.12345")
    );
    let got = read_all(&config, Default::default()).await;
    assert_same_events(&got, &records);
    backend.cleanup().await;
}
