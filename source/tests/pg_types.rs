//! Every supported type round-trips exactly: through the snapshot (binary
//! COPY) and through the stream, in binary and in text pgoutput.

// Test helpers may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod pg_common;

use headwater_core::time::{days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use headwater_core::value::{Array, Dim};
use headwater_core::{
    ChangeEvent, Date, Decimal, Interval, Op, Time, TimeTz, Timestamp, Value, ValueKind,
};
use headwater_source::postgres::BinaryMode;
use pg_common::{start, wait_for_slot, TestDb};
use testkit::MemoryAppender;

const SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE TABLE alltypes (
  id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 real, f8 double precision,
  n numeric(10,2), nu numeric, t text, vc varchar(5), c char(3), nm name, by bytea,
  j json, jb jsonb, u uuid, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
  iv interval, ip inet, cidr cidr, mac macaddr, m money, arr int4[], tarr text[],
  e mood, dom posint, earr mood[], narr numeric[]
);
CREATE TABLE odd (id int PRIMARY KEY, p point, ts tsvector);
"#;

const ROW1: &str = r#"(ID, true, -32768, 2147483647, -9223372036854775808, 1.5, -0.1,
  12345678.90, '-0.000000000000000000001', 'héllo', 'abc', 'ab', 'nm', '\x00ff',
  '{"a":  1}', '{"a":  1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29',
  '23:59:59.999999', '12:00:00+05:30', '2024-01-01 12:34:56.789012',
  '2024-01-01 12:00:00+02', '1 year 2 months 3 days 04:05:06.789', '192.168.0.1/24',
  '10.0.0.0/8', '08:00:2b:01:02:03', '12.34', '{{1,NULL},{3,4}}', '{"a b",NULL,"\""}',
  'happy', 7, '{sad,happy}', '{1.50,NaN,NULL}')"#;

const ROW2: &str = r#"(ID, false, 0, 0, 0, 'NaN', '-Infinity', 0, 'NaN', '', '', '', '', '\x',
  '[]', '[]', '00000000-0000-0000-0000-000000000000', 'infinity', '00:00:00', '00:00:00-01',
  '-infinity', 'infinity', '-1 days -00:00:00.000001', '::1', '2001:db8::/32',
  'ff:ff:ff:ff:ff:ff', '-0.01', '{}', '{}', 'sad', 1, '{}', '{Infinity,-Infinity}')"#;

fn row(sql: &str, id: i32) -> String {
    sql.replace("ID", &id.to_string())
}

fn days(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d)
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn list(elements: Vec<Value>) -> Value {
    Value::Array(Array::list(elements))
}

/// An array of (length, lower bound) dimensions.
fn shaped(dims: &[(u32, i32)], elements: Vec<Value>) -> Value {
    let dims = dims
        .iter()
        .map(|&(len, lower)| Dim { len, lower })
        .collect();
    Value::Array(Array::new(dims, elements).unwrap())
}

fn expected1(id: i32) -> Vec<Value> {
    use Value::*;
    vec![
        Int32(id),
        Bool(true),
        Int16(-32768),
        Int32(2147483647),
        Int64(i64::MIN),
        Float32(1.5),
        Float64(-0.1),
        dec("12345678.90"),
        dec("-0.000000000000000000001"),
        Text("héllo".into()),
        Text("abc".into()),
        Text("ab ".into()),
        Text("nm".into()),
        Bytes(vec![0, 255]),
        Json(r#"{"a":  1}"#.into()),
        Json(r#"{"a": 1}"#.into()),
        Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ]),
        Date(headwater_core::Date::Days(days(2024, 2, 29) as i32)),
        Time(headwater_core::Time(MICROS_PER_DAY - 1)),
        TimeTz(headwater_core::TimeTz {
            micros: 12 * 3600 * MICROS_PER_SECOND,
            offset_seconds: 19_800,
        }),
        Timestamp(headwater_core::Timestamp::Micros(
            days(2024, 1, 1) * MICROS_PER_DAY
                + (12 * 3600 + 34 * 60 + 56) * MICROS_PER_SECOND
                + 789_012,
        )),
        TimestampTz(headwater_core::Timestamp::Micros(
            days(2024, 1, 1) * MICROS_PER_DAY + 10 * 3600 * MICROS_PER_SECOND,
        )),
        Interval(headwater_core::Interval {
            months: 14,
            days: 3,
            micros: (4 * 3600 + 5 * 60 + 6) * MICROS_PER_SECOND + 789_000,
        }),
        Text("192.168.0.1/24".into()),
        Text("10.0.0.0/8".into()),
        Text("08:00:2b:01:02:03".into()),
        dec("12.34"),
        shaped(&[(2, 1), (2, 1)], vec![Int32(1), Null, Int32(3), Int32(4)]),
        list(vec![Text("a b".into()), Null, Text("\"".into())]),
        Enum("happy".into()),
        Int32(7),
        list(vec![Enum("sad".into()), Enum("happy".into())]),
        list(vec![
            dec("1.50"),
            Decimal(headwater_core::Decimal::NaN),
            Null,
        ]),
    ]
}

fn expected2(id: i32) -> Vec<Value> {
    use Value::*;
    vec![
        Int32(id),
        Bool(false),
        Int16(0),
        Int32(0),
        Int64(0),
        Float32(f32::NAN),
        Float64(f64::NEG_INFINITY),
        dec("0.00"),
        Decimal(headwater_core::Decimal::NaN),
        Text("".into()),
        Text("".into()),
        Text("   ".into()),
        Text("".into()),
        Bytes(vec![]),
        Json("[]".into()),
        Json("[]".into()),
        Uuid([0; 16]),
        Date(headwater_core::Date::PosInfinity),
        Time(headwater_core::Time(0)),
        TimeTz(headwater_core::TimeTz {
            micros: 0,
            offset_seconds: -3600,
        }),
        Timestamp(headwater_core::Timestamp::NegInfinity),
        TimestampTz(headwater_core::Timestamp::PosInfinity),
        Interval(headwater_core::Interval {
            months: 0,
            days: -1,
            micros: -1,
        }),
        Text("::1".into()),
        Text("2001:db8::/32".into()),
        Text("ff:ff:ff:ff:ff:ff".into()),
        dec("-0.01"),
        list(vec![]),
        list(vec![]),
        Enum("sad".into()),
        Int32(1),
        list(vec![]),
        list(vec![
            Decimal(headwater_core::Decimal::PosInfinity),
            Decimal(headwater_core::Decimal::NegInfinity),
        ]),
    ]
}

/// Equality where NaN equals NaN.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float32(x), Value::Float32(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Float64(x), Value::Float64(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => {
            x.dims() == y.dims()
                && x.elements().len() == y.elements().len()
                && x.elements()
                    .iter()
                    .zip(y.elements())
                    .all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn assert_row(event: &ChangeEvent, expected: &[Value], what: &str) {
    let after = event.after.as_ref().expect("a row");
    assert_eq!(after.len(), expected.len(), "{what}: column count");
    for (i, (got, want)) in after.iter().zip(expected).enumerate() {
        assert!(
            same(got, want),
            "{what}: column {} ({}): got {got:?}, want {want:?}",
            event.schema.columns[i].name,
            event.schema.columns[i].type_name
        );
    }
}

async fn round_trip(binary: BinaryMode) {
    let db = TestDb::new("pg_types").await;
    db.exec(SETUP).await;
    db.exec(&format!(
        "INSERT INTO alltypes VALUES {}, {}",
        row(ROW1, 1),
        row(ROW2, 2)
    ))
    .await;
    db.exec("INSERT INTO alltypes (id) VALUES (3)").await;
    db.exec("INSERT INTO odd VALUES (1, '(1,2)', 'a fat cat')")
        .await;
    let mut config = db.config(&["public.alltypes", "public.odd"]);
    config.binary = binary;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec(&format!(
        "INSERT INTO alltypes VALUES {}, {}",
        row(ROW1, 11),
        row(ROW2, 12)
    ))
    .await;
    db.exec("INSERT INTO alltypes (id) VALUES (13)").await;
    db.exec("INSERT INTO odd VALUES (2, '(3,4)', 'b')").await;
    let events = running.wait("snapshot and stream", |e| e.len() >= 8).await;
    let by_id = |table: &str, id: i32| {
        events
            .iter()
            .find(|e| e.table.name.as_ref() == table && e.key == vec![Value::Int32(id)])
            .unwrap_or_else(|| panic!("no event for {table} {id}"))
            .clone()
    };
    for (id, op) in [(1, Op::Read), (11, Op::Insert)] {
        let e = by_id("alltypes", id);
        assert_eq!(e.op, op);
        assert_row(&e, &expected1(id), &format!("{binary:?} {op:?} row 1"));
    }
    for id in [2, 12] {
        assert_row(
            &by_id("alltypes", id),
            &expected2(id),
            &format!("{binary:?} row 2"),
        );
    }
    for id in [3, 13] {
        let e = by_id("alltypes", id);
        let after = e.after.as_ref().unwrap();
        assert!(
            after[1..].iter().all(|v| *v == Value::Null),
            "{binary:?} nulls: {after:?}"
        );
    }
    // Types unknown to Headwater come as text with their type name.
    let odd = by_id("odd", 1);
    assert_eq!(odd.after.as_ref().unwrap()[1], Value::Text("(1,2)".into()));
    assert_eq!(odd.schema.columns[1].type_name, "point");
    assert_eq!(odd.schema.columns[1].kind, ValueKind::Text);
    let odd = by_id("odd", 2);
    assert_eq!(odd.after.as_ref().unwrap()[2], Value::Text("'b'".into()));
    // Kinds in the schema.
    let schema = &by_id("alltypes", 1).schema;
    let kind = |name: &str| {
        schema.columns[schema.column_index(name).unwrap()]
            .kind
            .clone()
    };
    assert_eq!(
        kind("n"),
        ValueKind::Decimal {
            precision: Some(10),
            scale: Some(2)
        }
    );
    assert_eq!(
        kind("nu"),
        ValueKind::Decimal {
            precision: None,
            scale: None
        }
    );
    assert_eq!(kind("e"), ValueKind::Enum);
    assert_eq!(kind("dom"), ValueKind::Int32);
    assert_eq!(kind("arr"), ValueKind::Array(Box::new(ValueKind::Int32)));
    assert_eq!(
        schema.columns[schema.column_index("n").unwrap()].type_name,
        "numeric(10,2)"
    );
    assert_eq!(
        schema.columns[schema.column_index("dom").unwrap()].type_name,
        "posint"
    );
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_types_round_trip_text_mode() {
    round_trip(BinaryMode::Off).await;
}

/// `auto` picks text here (the `odd` table has types only text can
/// carry), so this forces binary for the known-type table alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_types_round_trip_binary_mode() {
    let db = TestDb::new("pg_types_bin").await;
    db.exec(SETUP).await;
    db.exec(&format!("INSERT INTO alltypes VALUES {}", row(ROW1, 1)))
        .await;
    let mut config = db.config(&["public.alltypes"]);
    config.binary = BinaryMode::Auto;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec(&format!(
        "INSERT INTO alltypes VALUES {}, {}",
        row(ROW1, 11),
        row(ROW2, 12)
    ))
    .await;
    let events = running.wait("rows", |e| e.len() >= 3).await;
    assert_row(&events[0], &expected1(1), "binary snapshot");
    assert_row(&events[1], &expected1(11), "binary stream row 1");
    assert_row(&events[2], &expected2(12), "binary stream row 2");
    running.stop().await;
    db.cleanup().await;
}

#[test]
fn expected_values_are_well_formed() {
    assert_eq!(expected1(1).len(), expected2(2).len());
    let _ = (Date::PosInfinity, Time(0), Timestamp::PosInfinity);
    let _ = TimeTz {
        micros: 0,
        offset_seconds: 0,
    };
    let _ = Interval {
        months: 0,
        days: 0,
        micros: 0,
    };
}

const SHAPES: &str = r#"
CREATE TABLE shapes (id int PRIMARY KEY, a int4[], t text[]);
"#;

/// Every array shape, as SQL text and as the value it must decode to.
fn shape_rows() -> Vec<(&'static str, &'static str, Value, Value)> {
    use Value::{Int32, Null};
    let t = |s: &str| Value::Text(s.into());
    vec![
        (
            "'{1,2,3}'",
            "'{a,b}'",
            list(vec![Int32(1), Int32(2), Int32(3)]),
            list(vec![t("a"), t("b")]),
        ),
        (
            "'{{1,2},{3,4}}'",
            r#"'{{a,"b c"},{"\"",NULL}}'"#,
            shaped(
                &[(2, 1), (2, 1)],
                vec![Int32(1), Int32(2), Int32(3), Int32(4)],
            ),
            shaped(&[(2, 1), (2, 1)], vec![t("a"), t("b c"), t("\""), Null]),
        ),
        (
            "'{{{1,2},{3,4}},{{5,6},{7,8}}}'",
            "'{{{x}}}'",
            shaped(&[(2, 1), (2, 1), (2, 1)], (1..=8).map(Int32).collect()),
            shaped(&[(1, 1), (1, 1), (1, 1)], vec![t("x")]),
        ),
        ("'{}'", "'{}'", list(vec![]), list(vec![])),
        (
            "'{NULL,2,NULL}'",
            "'{NULL,\"NULL\"}'",
            list(vec![Null, Int32(2), Null]),
            list(vec![Null, t("NULL")]),
        ),
        (
            "'[0:1]={1,2}'",
            "'[5:5]={x}'",
            shaped(&[(2, 0)], vec![Int32(1), Int32(2)]),
            shaped(&[(1, 5)], vec![t("x")]),
        ),
        (
            "'[-2:-1][3:4]={{1,NULL},{3,4}}'",
            "'[2:3][1:1]={{a},{b}}'",
            shaped(&[(2, -2), (2, 3)], vec![Int32(1), Null, Int32(3), Int32(4)]),
            shaped(&[(2, 2), (1, 1)], vec![t("a"), t("b")]),
        ),
        ("NULL", "NULL", Null, Null),
    ]
}

/// Arrays of 1, 2 and 3 dimensions, empty, with NULLs and with lower
/// bounds other than 1 keep their shape: in the snapshot and in the
/// stream, in text and in binary mode.
async fn shapes_round_trip(binary: BinaryMode) {
    let db = TestDb::new("pg_shapes").await;
    db.exec(SHAPES).await;
    let rows = shape_rows();
    let insert = |offset: usize| {
        let values: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (a, t, _, _))| format!("({}, {a}, {t})", i + offset))
            .collect();
        format!("INSERT INTO shapes VALUES {}", values.join(", "))
    };
    db.exec(&insert(0)).await;
    let mut config = db.config(&["public.shapes"]);
    config.binary = binary;
    let running = start(config, MemoryAppender::new());
    wait_for_slot(&db).await;
    db.exec(&insert(100)).await;
    let events = running
        .wait("snapshot and stream", |e| e.len() >= 2 * rows.len())
        .await;
    for offset in [0, 100] {
        for (i, (a_sql, t_sql, a, t)) in rows.iter().enumerate() {
            let id = (i + offset) as i32;
            let e = events
                .iter()
                .find(|e| e.key == vec![Value::Int32(id)])
                .unwrap_or_else(|| panic!("no event for row {id}"));
            let what = format!("{binary:?} row {id} ({a_sql}, {t_sql})");
            assert_row(e, &[Value::Int32(id), a.clone(), t.clone()], &what);
        }
    }
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_array_shapes_text_mode() {
    shapes_round_trip(BinaryMode::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_array_shapes_binary_mode() {
    shapes_round_trip(BinaryMode::On).await;
}

/// Under REPLICA IDENTITY FULL the old row carries a TOASTed value an
/// update left alone, so the new row has it too; with the default replica
/// identity the new row keeps the unchanged marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_unchanged_toast_is_filled_from_a_full_old_row() {
    let db = TestDb::new("pg_toast_full").await;
    db.exec(
        "CREATE TABLE tf (id int PRIMARY KEY, big text, v int);
         ALTER TABLE tf REPLICA IDENTITY FULL;
         CREATE TABLE td (id int PRIMARY KEY, big text, v int);",
    )
    .await;
    let running = start(
        db.config(&["public.tf", "public.td"]),
        MemoryAppender::new(),
    );
    wait_for_slot(&db).await;
    let big = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)";
    db.exec(&format!(
        "INSERT INTO tf VALUES (1, {big}, 0); INSERT INTO td VALUES (1, {big}, 0);
         UPDATE tf SET v = 1; UPDATE td SET v = 1;"
    ))
    .await;
    let changes = running.wait_changes(4).await;
    let update = |table: &str| {
        changes
            .iter()
            .find(|e| e.op == Op::Update && e.table.name.as_ref() == table)
            .unwrap_or_else(|| panic!("no update of {table}"))
            .clone()
    };
    let insert = changes.iter().find(|e| e.op == Op::Insert).unwrap();
    let value = insert.after.as_ref().unwrap()[1].clone();
    assert!(matches!(&value, Value::Text(t) if t.len() == 12_800));
    let full = update("tf");
    assert_eq!(
        full.after.as_ref().unwrap()[1],
        value,
        "FULL: filled from the old row"
    );
    assert_eq!(full.before.as_ref().unwrap()[1], value);
    assert_eq!(full.after.as_ref().unwrap()[2], Value::Int32(1));
    let default = update("td");
    assert_eq!(default.after.as_ref().unwrap()[1], Value::Unchanged);
    running.stop().await;
    db.cleanup().await;
}
