//! Every MySQL/MariaDB column type round-trips exactly, through both the
//! snapshot (binary protocol) and the binlog decoder, against MariaDB.

use std::sync::Arc;
use std::time::Duration;

use headwater_core::time::{days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use headwater_core::{
    ChangeEvent, Date, Op, Source, SourceContext, Time, Timestamp, Value, ValueKind,
};
use headwater_source::mysql::{MySqlConfig, MySqlSource};
use mysql_async::prelude::Queryable;
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::{mysql_url, MemoryAppender};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

const TABLE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, biu BIGINT UNSIGNED,
    d DECIMAL(30,10), d2 DECIMAL(5,2), d0 DECIMAL(65,0), f FLOAT, db DOUBLE,
    b1 BIT(1), b BIT(12),
    dt DATE, tm TIME(3), tm0 TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(6) NULL DEFAULT NULL, y YEAR,
    c CHAR(10), vc VARCHAR(300), l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT, lt LONGTEXT,
    bin BINARY(4), vb VARBINARY(10), bl BLOB,
    e ENUM('small','medium','large'), s SET('a','b','c','d'),
    j JSON, g GEOMETRY
) DEFAULT CHARSET = utf8mb4";

const ROW: &str = "(ID, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
    -9223372036854775808, 18446744073709551615,
    -12345678901234567890.0123456789, 999.99, 12345678901234567890123456789012345678901234567890123456789012345, 1.1, 1.2345678901234567,
    b'1', b'101010101010',
    '2024-02-29', '-838:59:59.000', '25:00:01', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999999', 2155,
    'abc', 'héllo 🎉 ünïcode', 'café €', 'some text', REPEAT('x', 70000),
    X'00010203', X'FF00', X'DEADBEEF',
    'large', 'a,c',
    '{\"a\": [1, 2.5, \"x\"], \"b\": null}', ST_GeomFromText('POINT(1 2)'))";

const NULLS: &str =
    "(ID, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, '0000-00-00', NULL, NULL, NULL, '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0,
    '', '', '', '', '', NULL, NULL, NULL, '', '', NULL, NULL)";

fn micros(h: i64, m: i64, s: i64, frac: i64) -> i64 {
    (h * 3600 + m * 60 + s) * MICROS_PER_SECOND + frac
}

fn expected(wkb: Vec<u8>) -> Vec<(&'static str, Value)> {
    let dec = |s: &str| Value::Decimal(s.parse().expect("decimal"));
    vec![
        ("ti", Value::Int16(-128)),
        ("tiu", Value::Int16(255)),
        ("si", Value::Int16(-32768)),
        ("siu", Value::Int32(65535)),
        ("mi", Value::Int32(-8388608)),
        ("miu", Value::Int32(16777215)),
        ("i", Value::Int32(i32::MIN)),
        ("iu", Value::Int64(4294967295)),
        ("bi", Value::Int64(i64::MIN)),
        ("biu", Value::UInt64(18446744073709551615)),
        ("d", dec("-12345678901234567890.0123456789")),
        ("d2", dec("999.99")),
        (
            "d0",
            dec("12345678901234567890123456789012345678901234567890123456789012345"),
        ),
        ("f", Value::Float32(1.1)),
        ("db", Value::Float64(1.2345678901234567)),
        ("b1", Value::Bool(true)),
        ("b", Value::Bytes(vec![0x0a, 0xaa])),
        (
            "dt",
            Value::Date(Date::Days(days_from_civil(2024, 2, 29) as i32)),
        ),
        ("tm", Value::Time(Time(-micros(838, 59, 59, 0)))),
        ("tm0", Value::Time(Time(micros(25, 0, 1, 0)))),
        (
            "dtm",
            Value::Timestamp(Timestamp::Micros(
                days_from_civil(9999, 12, 31) * MICROS_PER_DAY + micros(23, 59, 59, 999_999),
            )),
        ),
        (
            "dtm0",
            Value::Timestamp(Timestamp::Micros(
                days_from_civil(1000, 1, 1) * MICROS_PER_DAY,
            )),
        ),
        (
            "ts",
            Value::TimestampTz(Timestamp::Micros(
                2_147_483_647 * MICROS_PER_SECOND + 999_999,
            )),
        ),
        ("y", Value::Int32(2155)),
        ("c", Value::Text("abc".into())),
        ("vc", Value::Text("héllo 🎉 ünïcode".into())),
        ("l1", Value::Text("café €".into())),
        ("tx", Value::Text("some text".into())),
        ("lt", Value::Text("x".repeat(70000))),
        ("bin", Value::Bytes(vec![0, 1, 2, 3])),
        ("vb", Value::Bytes(vec![0xff, 0])),
        ("bl", Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
        ("e", Value::Enum("large".into())),
        ("s", Value::Enum("a,c".into())),
        (
            "j",
            Value::Json("{\"a\": [1, 2.5, \"x\"], \"b\": null}".into()),
        ),
        ("g", Value::Bytes(wkb)),
    ]
}

fn expected_nulls() -> Vec<(&'static str, Value)> {
    vec![
        ("ti", Value::Null),
        ("biu", Value::Null),
        ("d", Value::Null),
        ("dt", Value::Null),
        ("dtm0", Value::Null),
        ("ts", Value::Null),
        ("y", Value::Int32(0)),
        ("c", Value::Text(String::new())),
        ("e", Value::Enum(String::new())),
        ("s", Value::Enum(String::new())),
        ("j", Value::Null),
        ("g", Value::Null),
    ]
}

fn check(e: &ChangeEvent, want: &[(&str, Value)]) {
    let row = e.after.as_ref().expect("after image");
    for (name, value) in want {
        let i = e
            .schema
            .column_index(name)
            .unwrap_or_else(|| panic!("column {name}"));
        assert_eq!(&row[i], value, "column {name} ({:?} event)", e.op);
    }
}

#[tokio::test]
async fn mysql_every_type_round_trips_exactly() {
    // GIVEN a table with every type, one row of extremes and one of nulls and zero dates
    let mut db = MySqlDb::create("hw_my_types").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec("SET SESSION time_zone = '+00:00'").await;
    db.exec(TABLE).await;
    db.exec(&format!("INSERT INTO t VALUES {}", ROW.replace("ID", "1")))
        .await;
    db.exec(&format!(
        "INSERT INTO t VALUES {}",
        NULLS.replace("ID", "2")
    ))
    .await;
    let wkb: Vec<u8> = db
        .conn
        .query_first("SELECT ST_AsBinary(g) FROM t WHERE id = 1")
        .await
        .expect("wkb")
        .expect("a row");

    // WHEN the source snapshots them, then streams the same rows inserted again
    let appender = MemoryAppender::new();
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        name: "my".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    };
    let cfg = MySqlConfig::new(
        mysql_url(),
        unique_server_id(),
        vec![format!("{}.t", db.name)],
    );
    let task = tokio::spawn(Box::new(MySqlSource::new(cfg)).run(ctx));
    appender.wait_for(2, DEADLINE).await;
    db.exec(&format!("INSERT INTO t VALUES {}", ROW.replace("ID", "3")))
        .await;
    db.exec(&format!(
        "INSERT INTO t VALUES {}",
        NULLS.replace("ID", "4")
    ))
    .await;
    db.exec("UPDATE t SET tiu = 0 WHERE id = 3").await;
    let events = appender.wait_for(5, DEADLINE).await;
    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");

    // THEN both paths give exactly the values written, and the same schema
    assert_eq!(
        events.iter().map(|e| e.op).collect::<Vec<_>>(),
        vec![Op::Read, Op::Read, Op::Insert, Op::Insert, Op::Update]
    );
    let want = expected(wkb);
    for e in [&events[0], &events[2]] {
        check(e, &want);
    }
    for e in [&events[1], &events[3]] {
        check(e, &expected_nulls());
    }
    assert_eq!(
        events[0].after.as_ref().map(|r| r[1..].to_vec()),
        events[2].after.as_ref().map(|r| r[1..].to_vec())
    );
    assert_eq!(
        events[1].after.as_ref().map(|r| r[1..].to_vec()),
        events[3].after.as_ref().map(|r| r[1..].to_vec())
    );
    assert!(
        Arc::ptr_eq(&events[0].schema, &events[2].schema) || events[0].schema == events[2].schema,
        "snapshot and stream agree on the schema:\n{:#?}\n{:#?}",
        events[0].schema,
        events[2].schema
    );
    let kind = |n: &str| {
        events[2].schema.columns[events[2].schema.column_index(n).expect("col")]
            .kind
            .clone()
    };
    assert_eq!(kind("j"), ValueKind::Json);
    assert_eq!(
        kind("d"),
        ValueKind::Decimal {
            precision: Some(30),
            scale: Some(10)
        }
    );
    assert_eq!(kind("e"), ValueKind::Enum);
    assert_eq!(kind("ts"), ValueKind::TimestampTz);
    check(
        &events[4],
        &[("tiu", Value::Int16(0)), ("biu", Value::UInt64(u64::MAX))],
    );
    db.drop_db().await;
}
