//! Every change the MySQL source captures equals, value for value, what
//! `SELECT` returns for the same row at that moment, against MariaDB: a
//! table of every documented type at its edges (with rows NULL in every
//! nullable column, and a row with only the key and one int set), and a
//! 200-column table with random NULL patterns, through snapshot, insert,
//! update and delete.

use std::time::Duration;

use headwater_core::time::{days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use headwater_core::{
    ChangeEvent, Date, Op, Source, SourceContext, TableSchema, Time, Timestamp, Value, ValueKind,
};
use headwater_source::mysql::{MySqlConfig, MySqlSource};
use mysql_async::prelude::Queryable;
use mysql_async::Value as MyValue;
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::{mysql_url, MemoryAppender};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(90);

/// `id` and 35 typed columns: every type the MySQL source documents.
const EDGES_TABLE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
    bi BIGINT, biu BIGINT UNSIGNED,
    d DECIMAL(65,30), f FLOAT, db DOUBLE,
    b1 BIT(1), b64 BIT(64),
    dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), y YEAR,
    vc VARCHAR(100), c CHAR(10), l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT, lt LONGTEXT,
    bin BINARY(4), bin1 BINARY(1), vb VARBINARY(16),
    tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
    e ENUM('small','medium','large'), s SET('a','b','c','d'), j JSON
) DEFAULT CHARSET = utf8mb4";

const MIN: &str = "-128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
    -9223372036854775808, 0,
    -99999999999999999999999999999999999.999999999999999999999999999999, -0e0, -0e0,
    b'0', b'0',
    '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.000000', 1901,
    '', '', '', '', '',
    X'00000000', X'00', X'',
    X'', X'00', X'0000', X'000000',
    'small', '', '[]'";

const MAX: &str = "127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
    9223372036854775807, 18446744073709551615,
    99999999999999999999999999999999999.999999999999999999999999999999,
    3.4028234663852886e38, 1.7976931348623157e308,
    b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
    '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
    'héllo 🎉 ünïcode 中文', 'abc', 'café € ÿ', REPEAT('t', 1000), REPEAT('ü', 40000),
    X'ff00fe00', X'ff', X'00ff0000',
    REPEAT(X'ab', 255), REPEAT(X'00ff', 1000), REPEAT(X'01', 70000), REPEAT(X'02', 100000),
    'large', 'a,b,c,d', '{\"a\": [1, 2.5, \"x\", null, true], \"b\": {\"c\": \"é\"}}'";

const ODD: &str = "-1, 1, -1, 1, -1, 1, -1, 1, -1, 1,
    0.000000000000000000000000000001, 1.401298464324817e-45, 4.9406564584124654e-324,
    b'1', b'1000000000000000000000000000000000000000000000000000000000000001',
    '2024-02-29', '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00.000001', '-00:00:00.000001', 2000,
    'x', 'trail  ', 'Ä', 'line\\nbreak', '{not json}',
    X'01000000', X'00', X'0100',
    X'00', X'0001', X'ff', X'00',
    'medium', 'b', '\"text\"'";

/// NULL in every nullable column.
const NULLS: &str = "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";

/// The key and one int set, the rest NULL.
const ONE_INT: &str = "NULL, NULL, NULL, NULL, NULL, NULL, 42, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";

/// One captured change as `SELECT` saw the row: before the statement (for
/// updates and deletes) and after it (for snapshot rows, inserts, updates).
struct Expected {
    op: Op,
    id: i64,
    before: Option<Vec<MyValue>>,
    after: Option<Vec<MyValue>>,
}

/// The row with key `id`, read as the snapshot reads (binary protocol).
async fn select_row(db: &mut MySqlDb, id: i64) -> Vec<MyValue> {
    let row: mysql_async::Row = db
        .conn
        .exec_first("SELECT * FROM t WHERE id = ?", (id,))
        .await
        .unwrap_or_else(|e| panic!("SELECT row {id}: {e}"))
        .unwrap_or_else(|| panic!("row {id} exists"));
    row.unwrap()
}

/// Runs `sql` on row `id` and records what `SELECT` sees before and after.
async fn change(db: &mut MySqlDb, op: Op, id: i64, sql: &str, out: &mut Vec<Expected>) {
    let before = match op {
        Op::Update | Op::Delete => Some(select_row(db, id).await),
        _ => None,
    };
    db.exec(sql).await;
    let after = match op {
        Op::Insert | Op::Update => Some(select_row(db, id).await),
        _ => None,
    };
    if op == Op::Update && before == after {
        // nothing changed (a row NULL before and after): no event is logged
        return;
    }
    out.push(Expected {
        op,
        id,
        before,
        after,
    });
}

/// What `SELECT` returned, in the source's value conventions (the
/// session runs in UTC, so TIMESTAMP text is the UTC instant).
fn from_select(v: &MyValue, kind: &ValueKind) -> Value {
    let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).expect("the connection speaks utf8mb4");
    let micros = |h: i64, m: i64, s: i64, us: i64| (h * 3600 + m * 60 + s) * MICROS_PER_SECOND + us;
    match (v, kind) {
        (MyValue::NULL, _) => Value::Null,
        (MyValue::Int(i), ValueKind::Int16) => Value::Int16(i16::try_from(*i).expect("int16")),
        (MyValue::Int(i), ValueKind::Int32) => Value::Int32(i32::try_from(*i).expect("int32")),
        (MyValue::Int(i), ValueKind::Int64) => Value::Int64(*i),
        (MyValue::UInt(u), ValueKind::Int16) => Value::Int16(i16::try_from(*u).expect("int16")),
        (MyValue::UInt(u), ValueKind::Int32) => Value::Int32(i32::try_from(*u).expect("int32")),
        (MyValue::UInt(u), ValueKind::Int64) => Value::Int64(i64::try_from(*u).expect("int64")),
        (MyValue::UInt(u), ValueKind::UInt64) => Value::UInt64(*u),
        (MyValue::Int(i), ValueKind::UInt64) => Value::UInt64(u64::try_from(*i).expect("uint64")),
        (MyValue::Float(f), ValueKind::Float32) => Value::Float32(*f),
        (MyValue::Double(d), ValueKind::Float64) => Value::Float64(*d),
        (MyValue::Bytes(b), ValueKind::Decimal { .. }) => {
            Value::Decimal(utf8(b).parse().expect("decimal text"))
        }
        (MyValue::Bytes(b), ValueKind::Bool) => Value::Bool(b.iter().any(|x| *x != 0)),
        (MyValue::Bytes(b), ValueKind::Bytes) => Value::Bytes(b.clone()),
        (MyValue::Bytes(b), ValueKind::Text) => Value::Text(utf8(b)),
        (MyValue::Bytes(b), ValueKind::Json) => Value::Json(utf8(b)),
        (MyValue::Bytes(b), ValueKind::Enum) => Value::Enum(utf8(b)),
        (MyValue::Date(y, m, d, ..), ValueKind::Date) => {
            Value::Date(Date::Days(
                days_from_civil(i64::from(*y), u32::from(*m), u32::from(*d)) as i32,
            ))
        }
        (MyValue::Date(y, m, d, h, mi, s, us), ValueKind::Timestamp | ValueKind::TimestampTz) => {
            let t = Timestamp::Micros(
                days_from_civil(i64::from(*y), u32::from(*m), u32::from(*d)) * MICROS_PER_DAY
                    + micros(i64::from(*h), i64::from(*mi), i64::from(*s), i64::from(*us)),
            );
            if *kind == ValueKind::Timestamp {
                Value::Timestamp(t)
            } else {
                Value::TimestampTz(t)
            }
        }
        (MyValue::Time(neg, days, h, m, s, us), ValueKind::Time) => {
            let t = micros(
                i64::from(*days) * 24 + i64::from(*h),
                i64::from(*m),
                i64::from(*s),
                i64::from(*us),
            );
            Value::Time(Time(if *neg { -t } else { t }))
        }
        (v, kind) => panic!("SELECT gave {v:?} for a {kind:?} column"),
    }
}

/// Compares one image column by column; `{:?}` tells -0.0 from 0.0.
fn check_image(
    what: &str,
    schema: &TableSchema,
    got: Option<&Vec<Value>>,
    want: Option<&Vec<MyValue>>,
) {
    let (Some(got), Some(want)) = (got, want) else {
        assert_eq!(got.is_some(), want.is_some(), "{what}: image present");
        return;
    };
    assert_eq!(got.len(), want.len(), "{what}: columns");
    for ((col, got), want) in schema.columns.iter().zip(got).zip(want) {
        let want = from_select(want, &col.kind);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "{what}, column {} ({})",
            col.name,
            col.type_name
        );
    }
}

fn check_all(events: &[ChangeEvent], expected: &[Expected]) {
    assert_eq!(
        events.iter().map(|e| e.op).collect::<Vec<_>>(),
        expected.iter().map(|e| e.op).collect::<Vec<_>>(),
        "one event per change, in order"
    );
    for (e, x) in events.iter().zip(expected) {
        let what = format!("{:?} of row {}", x.op, x.id);
        assert_eq!(e.key, vec![Value::Int32(x.id as i32)], "{what}: key");
        check_image(
            &format!("{what}, before"),
            &e.schema,
            e.before.as_ref(),
            x.before.as_ref(),
        );
        check_image(
            &format!("{what}, after"),
            &e.schema,
            e.after.as_ref(),
            x.after.as_ref(),
        );
    }
}

/// A running source over `db.t`, the appender it writes to and its stop.
struct Running {
    appender: std::sync::Arc<MemoryAppender>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<headwater_core::Result<()>>,
}

fn start(db: &MySqlDb) -> Running {
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
    Running {
        appender,
        shutdown,
        task,
    }
}

impl Running {
    /// Waits for `n` events, failing at once with the source's error if
    /// it stops first, then stops it.
    async fn stop(mut self, n: usize) -> Vec<ChangeEvent> {
        let events = tokio::select! {
            events = self.appender.wait_for(n, DEADLINE) => events,
            ended = &mut self.task => panic!(
                "the source stopped after {} of {n} events: {:?}",
                self.appender.len(),
                ended.expect("no panic").err().map(|e| e.to_string())
            ),
        };
        self.shutdown.cancel();
        self.task.await.expect("no panic").expect("clean stop");
        events
    }
}

async fn non_key_columns(db: &mut MySqlDb) -> Vec<String> {
    let sql = format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' \
         AND TABLE_NAME = 't' AND COLUMN_NAME <> 'id' ORDER BY ORDINAL_POSITION",
        db.name
    );
    db.rows(&sql)
        .await
        .into_iter()
        .map(|r| r.get::<String, _>(0).expect("a column name"))
        .collect()
}

/// An UPDATE that gives row `id` every value of row `source`.
fn copy_row(columns: &[String], source: i64, id: i64) -> String {
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("a.`{c}` = b.`{c}`"))
        .collect();
    format!(
        "UPDATE t AS a JOIN t AS b ON b.id = {source} SET {} WHERE a.id = {id}",
        set.join(", ")
    )
}

async fn utc_session(db: &mut MySqlDb) {
    db.exec("SET SESSION time_zone = '+00:00'").await;
}

/// Snapshot rows, in key order, as `SELECT` returns them now.
async fn snapshot_expected(db: &mut MySqlDb, ids: &[i64]) -> Vec<Expected> {
    let mut out = Vec::new();
    for &id in ids {
        out.push(Expected {
            op: Op::Read,
            id,
            before: None,
            after: Some(select_row(db, id).await),
        });
    }
    out
}

#[tokio::test]
async fn mysql_every_type_at_its_edges_equals_select_in_snapshot_insert_update_delete() {
    // GIVEN a table of every type, with rows at the minimums, maximums,
    // odd values (zero bytes inside and at the end of BINARY, subnormals),
    // NULL in every nullable column, and only the key and one int set
    let mut db = MySqlDb::create("hw_my_edges").await;
    utc_session(&mut db).await;
    db.exec(EDGES_TABLE).await;
    let rows = [MIN, MAX, ODD, NULLS, ONE_INT];
    for (n, row) in rows.iter().enumerate() {
        db.exec(&format!("INSERT INTO t VALUES ({}, {row})", n + 1))
            .await;
    }
    let mut expected = snapshot_expected(&mut db, &[1, 2, 3, 4, 5]).await;

    // WHEN the source snapshots them, then streams the same rows inserted
    // again, each updated into the next, and all deleted
    let running = start(&db);
    running.appender.wait_for(rows.len(), DEADLINE).await;
    for (n, row) in rows.iter().enumerate() {
        let id = 11 + n as i64;
        let sql = format!("INSERT INTO t VALUES ({id}, {row})");
        change(&mut db, Op::Insert, id, &sql, &mut expected).await;
    }
    let columns = non_key_columns(&mut db).await;
    for n in 0..rows.len() {
        let id = 11 + n as i64;
        let source = (n + 1) % rows.len() + 1;
        let sql = copy_row(&columns, source as i64, id);
        change(&mut db, Op::Update, id, &sql, &mut expected).await;
    }
    for n in 0..rows.len() {
        let id = 11 + n as i64;
        let sql = format!("DELETE FROM t WHERE id = {id}");
        change(&mut db, Op::Delete, id, &sql, &mut expected).await;
    }
    let events = running.stop(expected.len()).await;

    // THEN every change equals what SELECT returned, value for value, and
    // so does the Parquet archive of them
    check_all(&events, &expected);
    check_all(&archived(&events).await, &expected);
    db.drop_db().await;
}

/// `events` written to a Parquet archive and read back, in order.
async fn archived(events: &[ChangeEvent]) -> Vec<ChangeEvent> {
    use futures::StreamExt;
    use headwater_core::{Sink, SinkRecord};
    use headwater_sink::parquet::{
        read_archive, ArchiveFilter, ParquetConfig, ParquetSink, StoreOptions,
    };

    let dir = tempfile::tempdir().expect("archive dir");
    let url = format!("file://{}", dir.path().display());
    let mut sink = ParquetSink::new(&ParquetConfig::new(&url, vec!["*".into()]))
        .await
        .expect("parquet sink");
    let records = events
        .iter()
        .enumerate()
        .map(|(offset, event)| SinkRecord {
            topic: event.topic_name().into(),
            partition: 0,
            offset: offset as u64,
            event: event.clone(),
        })
        .collect();
    sink.write(records).await.expect("archive write");
    sink.flush(true).await.expect("archive flush");
    let mut read: Vec<SinkRecord> =
        read_archive(&url, &StoreOptions::default(), ArchiveFilter::default())
            .await
            .expect("archive readable")
            .map(|r| r.expect("archive record"))
            .collect()
            .await;
    read.sort_by_key(|r| r.offset);
    assert_eq!(read.len(), events.len(), "every change archived");
    read.into_iter().map(|r| r.event).collect()
}

/// splitmix64: reproducible random rows from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The column types of the wide table, in turn.
const WIDE_TYPES: [&str; 10] = [
    "INT",
    "BIGINT UNSIGNED",
    "VARCHAR(20)",
    "DOUBLE",
    "DATE",
    "BINARY(3)",
    "DECIMAL(10,2)",
    "TINYINT",
    "TEXT",
    "DATETIME(3)",
];
const WIDE_COLUMNS: usize = 200;

fn text(rng: &mut Rng) -> String {
    const CHARS: [&str; 6] = ["a", "Z", "é", "🎉", " ", "0"];
    (0..rng.below(20))
        .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize])
        .collect()
}

/// A SQL literal of a random value of the wide table's column `i`.
fn literal(rng: &mut Rng, i: usize) -> String {
    match i % WIDE_TYPES.len() {
        0 => (rng.next() as i32).to_string(),
        1 => rng.next().to_string(),
        2 | 8 => format!("'{}'", text(rng)),
        3 => {
            let f = f64::from_bits(rng.next());
            format!("{:e}", if f.is_finite() { f } else { 1.0 / 3.0 })
        }
        4 => format!(
            "'{:04}-{:02}-{:02}'",
            1000 + rng.below(9000),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        5 => {
            let bytes: Vec<String> = (0..rng.below(4))
                .map(|_| format!("{:02x}", [0, 0, 1, 0xff][rng.below(4) as usize]))
                .collect();
            format!("X'{}'", bytes.concat())
        }
        6 => {
            let cents = rng.below(19_999_999_999) as i64 - 9_999_999_999;
            let sign = if cents < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
        }
        7 => (rng.next() as i8).to_string(),
        _ => format!(
            "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}'",
            1000 + rng.below(9000),
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.below(1000)
        ),
    }
}

/// Every column's value: NULL with a chance picked per row (never, half
/// the time, mostly, always), else a random literal.
fn wide_values(rng: &mut Rng) -> Vec<String> {
    let null_per_mille = [0, 500, 900, 1000][rng.below(4) as usize];
    (0..WIDE_COLUMNS)
        .map(|i| {
            if rng.below(1000) < null_per_mille {
                "NULL".to_owned()
            } else {
                literal(rng, i)
            }
        })
        .collect()
}

fn wide_insert(id: i64, values: &[String]) -> String {
    format!("INSERT INTO t VALUES ({id}, {})", values.join(", "))
}

fn wide_update(id: i64, values: &[String]) -> String {
    let set: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("c{i} = {v}"))
        .collect();
    format!("UPDATE t SET {} WHERE id = {id}", set.join(", "))
}

#[tokio::test]
async fn mysql_200_columns_with_random_nulls_equal_select() {
    let seed = std::env::var("HEADWATER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(22, |d| d.as_nanos() as u64)
        });
    eprintln!("random rows from HEADWATER_TEST_SEED={seed}");
    let mut rng = Rng(seed);

    // GIVEN a table of 200 nullable columns of ten types, with rows NULL
    // in none, half, most or all of them
    let mut db = MySqlDb::create("hw_my_wide").await;
    utc_session(&mut db).await;
    let columns: Vec<String> = (0..WIDE_COLUMNS)
        .map(|i| format!("c{i} {}", WIDE_TYPES[i % WIDE_TYPES.len()]))
        .collect();
    db.exec(&format!(
        "CREATE TABLE t (id INT PRIMARY KEY, {}) DEFAULT CHARSET = utf8mb4",
        columns.join(", ")
    ))
    .await;
    let snapshot_ids: Vec<i64> = (1..=12).collect();
    for &id in &snapshot_ids {
        db.exec(&wide_insert(id, &wide_values(&mut rng))).await;
    }
    let mut expected = snapshot_expected(&mut db, &snapshot_ids).await;

    // WHEN the source snapshots them, then streams inserts, updates to
    // new random NULL patterns, and deletes
    let running = start(&db);
    running
        .appender
        .wait_for(snapshot_ids.len(), DEADLINE)
        .await;
    for id in 101..=112 {
        let sql = wide_insert(id, &wide_values(&mut rng));
        change(&mut db, Op::Insert, id, &sql, &mut expected).await;
    }
    for id in (101..=112).chain(1..=4) {
        let sql = wide_update(id, &wide_values(&mut rng));
        change(&mut db, Op::Update, id, &sql, &mut expected).await;
    }
    for id in [101, 104, 107, 110, 2, 3] {
        let sql = format!("DELETE FROM t WHERE id = {id}");
        change(&mut db, Op::Delete, id, &sql, &mut expected).await;
    }
    let events = running.stop(expected.len()).await;

    // THEN every change equals what SELECT returned, value for value, and
    // so does the Parquet archive of them
    check_all(&events, &expected);
    check_all(&archived(&events).await, &expected);
    db.drop_db().await;
}
