use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::position::{Lsn, MySqlPosition, Offsets, PartitionOffset, PgPosition};

fn schema() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        table: TableId::new("public", "orders"),
        version: 3,
        columns: vec![
            Column {
                name: "id".into(),
                type_name: "int8".into(),
                kind: ValueKind::Int64,
                nullable: false,
                key_position: Some(0),
            },
            Column {
                name: "amount".into(),
                type_name: "numeric".into(),
                kind: ValueKind::Decimal {
                    precision: None,
                    scale: None,
                },
                nullable: true,
                key_position: None,
            },
            Column {
                name: "tags".into(),
                type_name: "_text".into(),
                // Arrays of arrays: random values of any nesting read back
                // as written (a scalar array column reads nested lists from
                // older builds as dimensions, see the test below).
                kind: ValueKind::Array(Box::new(ValueKind::Array(Box::new(ValueKind::Text)))),
                nullable: true,
                key_position: None,
            },
        ],
    })
}

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        Just(Decimal::NaN),
        Just(Decimal::PosInfinity),
        Just(Decimal::NegInfinity),
        (any::<bool>(), "[1-9][0-9]{0,40}", 0_u32..60).prop_map(|(n, d, s)| Decimal::Finite {
            negative: n,
            digits: d.into(),
            scale: s
        }),
        // 1,000-digit decimals.
        "[1-9][0-9]{999}".prop_map(|d| Decimal::Finite {
            negative: true,
            digits: d.into(),
            scale: 500
        }),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just(Timestamp::NegInfinity),
        Just(Timestamp::PosInfinity),
        Just(Timestamp::Micros(i64::MIN)),
        Just(Timestamp::Micros(i64::MAX)),
        any::<i64>().prop_map(Timestamp::Micros),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Unchanged),
        any::<bool>().prop_map(Value::Bool),
        any::<i16>().prop_map(Value::Int16),
        any::<i32>().prop_map(Value::Int32),
        any::<i64>().prop_map(Value::Int64),
        any::<u64>().prop_map(Value::UInt64),
        any::<f32>().prop_map(Value::Float32),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0)
        ]
        .prop_map(Value::Float64),
        decimal().prop_map(Value::Decimal),
        prop_oneof![
            Just(String::new()),
            any::<String>(),
            Just("żółć 日本 🦀".to_owned())
        ]
        .prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
        any::<String>().prop_map(Value::Json),
        any::<[u8; 16]>().prop_map(Value::Uuid),
        prop_oneof![
            Just(Date::NegInfinity),
            Just(Date::PosInfinity),
            any::<i32>().prop_map(Date::Days)
        ]
        .prop_map(Value::Date),
        any::<i64>().prop_map(|t| Value::Time(Time(t))),
        (any::<i64>(), any::<i32>()).prop_map(|(micros, offset_seconds)| Value::TimeTz(TimeTz {
            micros,
            offset_seconds
        })),
        timestamp().prop_map(Value::Timestamp),
        timestamp().prop_map(Value::TimestampTz),
        (any::<i32>(), any::<i32>(), any::<i64>()).prop_map(|(months, days, micros)| {
            Value::Interval(Interval {
                months,
                days,
                micros,
            })
        }),
        any::<String>().prop_map(Value::Enum),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    // Lists, arrays of 1 to 3 dimensions with any lower bounds, arrays of
    // arrays, with nulls inside.
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8)
                .prop_map(|v| Value::Array(Array::list(v))),
            (proptest::collection::vec((1u32..3, -5i32..5), 1..4), inner).prop_map(
                |(shape, item)| {
                    let dims: Vec<Dim> = shape
                        .iter()
                        .map(|&(len, lower)| Dim { len, lower })
                        .collect();
                    let n = shape.iter().map(|&(len, _)| len as usize).product();
                    Value::Array(Array::new(dims, vec![item; n]).unwrap())
                }
            ),
        ]
    })
}

fn position() -> impl Strategy<Value = Position> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(c, l)| Position::Postgres(PgPosition {
            commit_lsn: Lsn(c),
            lsn: Lsn(l)
        })),
        (
            "[a-z-]{1,12}\\.[0-9]{6}",
            any::<u64>(),
            proptest::option::of("[0-9a-f:-]{1,40}"),
            prop_oneof![Just(0u64), any::<u64>()]
        )
            .prop_map(|(file, offset, gtid_set, tx_index)| Position::MySql(
                MySqlPosition {
                    file: file.into(),
                    offset,
                    gtid_set: gtid_set.map(Into::into),
                    tx_index
                }
            )),
        proptest::collection::vec(("[a-z.]{1,12}", any::<u32>(), any::<u64>()), 0..4).prop_map(
            |entries| Position::Offsets(Offsets::new(
                entries
                    .into_iter()
                    .map(|(topic, partition, offset)| PartitionOffset {
                        topic: topic.into(),
                        partition,
                        offset
                    })
                    .collect()
            ))
        ),
    ]
}

fn event() -> impl Strategy<Value = ChangeEvent> {
    let row = || proptest::collection::vec(value(), 0..6);
    (
        (
            "[a-z]{1,8}",
            prop_oneof![
                Just(Op::Read),
                Just(Op::Insert),
                Just(Op::Update),
                Just(Op::Delete),
                Just(Op::Truncate),
                Just(Op::Message),
                Just(Op::Event)
            ],
            row(),
            proptest::option::of(row()),
            proptest::option::of(row()),
        ),
        (
            position(),
            proptest::option::of(timestamp()),
            proptest::option::of(any::<u64>()),
            proptest::option::of("[a-z.]{1,20}"),
            any::<bool>(),
            proptest::collection::vec(
                (
                    "[a-z_]{1,10}",
                    proptest::collection::vec(any::<u8>(), 0..16),
                ),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (source, op, key, before, after),
                (position, commit_ts, tx_id, topic, other_table, headers),
            )| {
                let schema = schema();
                ChangeEvent {
                    source: source.into(),
                    table: if other_table {
                        TableId::new("outbox", "Order")
                    } else {
                        schema.table.clone()
                    },
                    op,
                    key,
                    before,
                    after,
                    position,
                    commit_ts,
                    tx_id,
                    schema,
                    topic: topic.map(Into::into),
                    headers: headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                }
            },
        )
}

/// Debug text compares NaN with NaN and tells -0.0 from 0.0, which is the
/// equality the log must keep.
fn same(a: &ChangeEvent, b: &ChangeEvent) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_event_round_trips(event in event()) {
        let mut bytes = Vec::new();
        encode_event(&event, &mut bytes);
        let schema = event.schema.clone();
        let back = decode_event(&bytes, |id| {
            assert_eq!(id, schema.id());
            Ok(schema.clone())
        }).unwrap();
        prop_assert!(same(&event, &back), "{event:?}\n!=\n{back:?}");
    }

    #[test]
    fn damaged_bytes_never_panic(event in event(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut bytes = Vec::new();
        encode_event(&event, &mut bytes);
        let schema = event.schema.clone();
        let at = cut.index(bytes.len());
        let _ = decode_event(&bytes[..at], |_| Ok(schema.clone()));
        bytes[at] ^= flip | 1;
        let _ = decode_event(&bytes, |_| Ok(schema.clone()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let schema = schema();
        let _ = decode_event(&bytes, |_| Ok(schema.clone()));
        let _ = decode_schema(&bytes);
    }
}

#[test]
fn schema_round_trips_and_id_is_stable() {
    let s = schema();
    let back = decode_schema(&encode_schema(&s)).unwrap();
    assert_eq!(*s, back);
    assert_eq!(s.id(), back.id());
    let mut changed = (*s).clone();
    changed.columns[1].name = "total".into();
    assert_ne!(s.id(), changed.id());
}

#[test]
fn empty_string_and_null_stay_apart() {
    let schema = schema();
    let event = ChangeEvent {
        source: "shop".into(),
        table: schema.table.clone(),
        op: Op::Insert,
        key: vec![Value::Int64(1)],
        before: None,
        after: Some(vec![
            Value::Text(String::new()),
            Value::Null,
            Value::Unchanged,
        ]),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(9),
            lsn: Lsn(8),
        }),
        commit_ts: None,
        tx_id: None,
        schema: schema.clone(),
        topic: None,
        headers: vec![],
    };
    let mut bytes = Vec::new();
    encode_event(&event, &mut bytes);
    let back = decode_event(&bytes, |_| Ok(schema.clone())).unwrap();
    assert_eq!(back.after, event.after);
}

#[test]
fn newer_format_is_refused_with_advice() {
    let err = peek_schema_id(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert!(err.to_string().contains("upgrade"), "{err}");
}

/// A record written before tag 22 existed (a list of text and NULL, tag 20)
/// still reads, and a plain list still encodes to those bytes: an array
/// key keeps its partition.
#[test]
fn plain_lists_keep_their_version_1_bytes() {
    let list = Value::Array(Array::list(vec![Value::Text("a".into()), Value::Null]));
    let v1 = [1u8, 20, 2, 10, 1, b'a', 0];
    let mut bytes = Vec::new();
    encode_key(std::slice::from_ref(&list), &mut bytes);
    assert_eq!(bytes, v1);
    let mut r = Reader {
        buf: &v1,
        what: "test",
    };
    assert_eq!(r.row(0).unwrap(), vec![list]);
}

#[test]
fn shaped_arrays_round_trip_and_bad_shapes_are_refused() {
    let dims = vec![Dim { len: 2, lower: 0 }, Dim { len: 1, lower: -3 }];
    let a = Value::Array(Array::new(dims, vec![Value::Int32(1), Value::Null]).unwrap());
    let mut bytes = Vec::new();
    encode_key(std::slice::from_ref(&a), &mut bytes);
    assert_eq!(bytes[1], 22);
    let mut r = Reader {
        buf: &bytes,
        what: "test",
    };
    assert_eq!(r.row(0).unwrap(), vec![a]);
    // Dimensions of 2 × 1 with three elements.
    let bad = [1u8, 22, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0, 3, 0, 0, 0];
    let mut r = Reader {
        buf: &bad,
        what: "test",
    };
    assert!(r.row(0).is_err());
}

/// A two-dimensional array written by a build before dimensions were kept
/// (nested lists, tag 20 in tag 20) reads as the 2 × 2 array it was, in a
/// scalar array column.
#[test]
fn nested_lists_of_older_builds_read_as_dimensions() {
    let mut s = (*schema()).clone();
    s.columns[2].kind = ValueKind::Array(Box::new(ValueKind::Text));
    let schema = Arc::new(s);
    let t = |x: &str| Value::Text(x.into());
    let nested = Value::Array(Array::list(vec![
        Value::Array(Array::list(vec![t("a"), t("b")])),
        Value::Array(Array::list(vec![t("c"), Value::Null])),
    ]));
    let event = ChangeEvent {
        source: "shop".into(),
        table: schema.table.clone(),
        op: Op::Insert,
        key: vec![Value::Int64(1)],
        before: None,
        after: Some(vec![Value::Int64(1), Value::Null, nested]),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(9),
            lsn: Lsn(8),
        }),
        commit_ts: None,
        tx_id: None,
        schema: schema.clone(),
        topic: None,
        headers: vec![],
    };
    let mut bytes = Vec::new();
    encode_event(&event, &mut bytes);
    let back = decode_event(&bytes, |_| Ok(schema.clone())).unwrap();
    let dims = vec![Dim { len: 2, lower: 1 }, Dim { len: 2, lower: 1 }];
    let grid = Array::new(dims, vec![t("a"), t("b"), t("c"), Value::Null]).unwrap();
    assert_eq!(back.after.unwrap()[2], Value::Array(grid));
}
