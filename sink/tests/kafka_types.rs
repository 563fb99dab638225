//! Type rendering per Debezium's documented defaults, checked on the
//! encoder alone (no broker): `decimal.handling.mode` precise / string /
//! double, `time.precision.mode=adaptive`, json / uuid / enum as strings,
//! bytes as base64, intervals as `MicroDuration`, unchanged TOAST values
//! as `__debezium_unavailable_value`; truncate, logical messages and
//! keyless tables.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{json, Value as Json};

use headwater_core::{
    ChangeEvent, Column, Date, Decimal, Interval, Op, TableId, TableSchema, Time, TimeTz,
    Timestamp, Value, ValueKind,
};
use headwater_sink::kafka::config::DecimalHandling;
use headwater_sink::kafka::{EncodeOptions, Encoder};
use testkit::EventBuilder;

fn column(name: &str, type_name: &str, kind: ValueKind, key: Option<u16>) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        kind,
        nullable: key.is_none(),
        key_position: key,
    }
}

fn schema() -> Arc<TableSchema> {
    let d = |p, s| ValueKind::Decimal {
        precision: p,
        scale: s,
    };
    Arc::new(TableSchema {
        table: TableId::new("public", "all_types"),
        version: 1,
        columns: vec![
            column("id", "int8", ValueKind::Int64, Some(0)),
            column("price", "numeric(10,2)", d(Some(10), Some(2)), None),
            column("amount", "numeric", d(None, None), None),
            column("big", "bigint unsigned", ValueKind::UInt64, None),
            column("ratio", "float8", ValueKind::Float64, None),
            column("born", "date", ValueKind::Date, None),
            column("at", "time", ValueKind::Time, None),
            column("at_ms", "time(3)", ValueKind::Time, None),
            column("at_tz", "timetz", ValueKind::TimeTz, None),
            column("ts", "timestamp", ValueKind::Timestamp, None),
            column("ts_ms", "timestamp(3)", ValueKind::Timestamp, None),
            column("tstz", "timestamptz", ValueKind::TimestampTz, None),
            column("span", "interval", ValueKind::Interval, None),
            column("doc", "jsonb", ValueKind::Json, None),
            column("uid", "uuid", ValueKind::Uuid, None),
            column("raw", "bytea", ValueKind::Bytes, None),
            column("mood", "mood", ValueKind::Enum, None),
            column(
                "tags",
                "text[]",
                ValueKind::Array(Box::new(ValueKind::Text)),
                None,
            ),
            column("note", "text", ValueKind::Text, None),
            column("flag", "bool", ValueKind::Bool, None),
        ],
    })
}

fn row() -> Vec<Value> {
    vec![
        Value::Int64(7),
        Value::Decimal(Decimal::from_i128(1234, 2)),
        Value::Decimal(Decimal::from_i128(-129, 1)),
        Value::UInt64(u64::MAX),
        Value::Float64(f64::NAN),
        Value::Date(Date::Days(19_753)),
        Value::Time(Time(45_296_000_001)),
        Value::Time(Time(45_296_789_000)),
        Value::TimeTz(TimeTz {
            micros: 45_296_000_000,
            offset_seconds: 3_600,
        }),
        Value::Timestamp(Timestamp::Micros(1_706_702_400_000_001)),
        Value::Timestamp(Timestamp::Micros(1_706_702_400_123_000)),
        Value::TimestampTz(Timestamp::Micros(1_706_702_400_250_000)),
        Value::Interval(Interval {
            months: 1,
            days: 2,
            micros: 3,
        }),
        Value::Json("{\"a\": [1, 2]}".into()),
        Value::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ]),
        Value::Bytes(b"foobar".to_vec()),
        Value::Enum("happy".into()),
        Value::Array(headwater_core::value::Array::list(vec![
            Value::Text("a".into()),
            Value::Null,
        ])),
        Value::Unchanged,
        Value::Bool(true),
    ]
}

/// An `op` of the `all_types` row; the key is its id, 7.
fn event(op: Op) -> EventBuilder {
    EventBuilder::with_schema(op, &schema())
        .row(row())
        .pg(100, 90)
        .tx_id(1)
}

fn encode(options: EncodeOptions, event: &ChangeEvent) -> (Option<Json>, Json) {
    let mut encoder = Encoder::new(options);
    encoder.encode(event, 1_700_000_000_000);
    let key = encoder.key().map(|k| serde_json::from_slice(k).unwrap());
    (key, serde_json::from_slice(encoder.value()).unwrap())
}

fn options(schemas: bool, decimal: DecimalHandling) -> EncodeOptions {
    EncodeOptions {
        schemas,
        decimal,
        ..EncodeOptions::default()
    }
}

#[test]
fn values_follow_debezium_defaults() {
    let (key, value) = encode(
        options(true, DecimalHandling::Precise),
        &event(Op::Insert).build(),
    );
    assert_eq!(key.unwrap()["payload"], json!({"id": 7}));
    let after = &value["payload"]["after"];
    let want = json!({
        "id": 7,
        "price": "BNI=",                              // 1234, scale 2 in the schema
        "amount": {"scale": 1, "value": "/38="},      // VariableScaleDecimal(-129)
        "big": 18446744073709551615u64,
        "ratio": "NaN",
        "born": 19753,                                // days since the epoch
        "at": 45296000001i64,                         // MicroTime
        "at_ms": 45296789,                            // Time (ms), precision 3
        "at_tz": "11:34:56Z",                         // ZonedTime, in UTC
        "ts": 1706702400000001i64,                    // MicroTimestamp
        "ts_ms": 1706702400123i64,                    // Timestamp (ms)
        "tstz": "2024-01-31T12:00:00.25Z",            // ZonedTimestamp
        "span": 2629800000000i64 + 2 * 86400000000i64 + 3, // MicroDuration
        "doc": "{\"a\": [1, 2]}",
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "raw": "Zm9vYmFy",
        "mood": "happy",
        "tags": ["a", null],
        "note": "__debezium_unavailable_value",       // unchanged TOAST
        "flag": true
    });
    assert_eq!(after, &want);

    let fields = &value["schema"]["fields"][1]["fields"];
    let field = |name: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        field("price")["name"],
        "org.apache.kafka.connect.data.Decimal"
    );
    assert_eq!(field("price")["parameters"]["scale"], "2");
    assert_eq!(
        field("amount")["name"],
        "io.debezium.data.VariableScaleDecimal"
    );
    assert_eq!(field("born")["name"], "io.debezium.time.Date");
    assert_eq!(field("at")["name"], "io.debezium.time.MicroTime");
    assert_eq!(field("at_ms")["name"], "io.debezium.time.Time");
    assert_eq!(field("at_tz")["name"], "io.debezium.time.ZonedTime");
    assert_eq!(field("ts")["name"], "io.debezium.time.MicroTimestamp");
    assert_eq!(field("ts_ms")["name"], "io.debezium.time.Timestamp");
    assert_eq!(field("tstz")["name"], "io.debezium.time.ZonedTimestamp");
    assert_eq!(field("span")["name"], "io.debezium.time.MicroDuration");
    assert_eq!(field("doc")["name"], "io.debezium.data.Json");
    assert_eq!(field("uid")["name"], "io.debezium.data.Uuid");
    assert_eq!(field("tags")["type"], "array");
    assert_eq!(field("tags")["items"]["type"], "string");
    assert_eq!(field("raw")["type"], "bytes");
    assert_eq!(field("id")["optional"], false);
    assert_eq!(field("note")["optional"], true);
}

#[test]
fn decimal_string_and_double_modes() {
    let e = event(Op::Insert).build();
    let (_, v) = encode(options(false, DecimalHandling::String), &e);
    assert_eq!(v["after"]["price"], "12.34");
    assert_eq!(v["after"]["amount"], "-12.9");
    let (_, v) = encode(options(true, DecimalHandling::Double), &e);
    assert_eq!(v["payload"]["after"]["price"], 12.34);
    assert_eq!(v["schema"]["fields"][1]["fields"][1]["type"], "double");
}

#[test]
fn truncate_message_and_keyless_events() {
    // A truncate: no key, no images.
    let t = event(Op::Truncate).no_key().after(None).build();
    let (key, v) = encode(options(false, DecimalHandling::Precise), &t);
    assert!(key.is_none());
    assert_eq!(v["op"], "t");
    assert_eq!(v["before"], Json::Null);
    assert_eq!(v["after"], Json::Null);

    // A logical message: Debezium's `op: "m"` with prefix and content.
    let message_schema = Arc::new(TableSchema {
        table: TableId::new("pg_logical", "message"),
        version: 1,
        columns: vec![column("content", "bytea", ValueKind::Bytes, None)],
    });
    let m = event(Op::Message)
        .schema(&message_schema)
        .no_key()
        .after(vec![Value::Bytes(b"foo".to_vec())])
        .header("prefix", b"audit")
        .build();
    for schemas in [false, true] {
        let (key, v) = encode(options(schemas, DecimalHandling::Precise), &m);
        assert_eq!(key.unwrap(), json!({"prefix": "audit"}));
        let p = v.get("payload").unwrap_or(&v);
        assert_eq!(p["op"], "m");
        assert_eq!(p["message"], json!({"prefix": "audit", "content": "Zm9v"}));
        assert_eq!(p["source"]["lsn"], 90);
    }

    // A table without a key: a null Kafka key.
    let k = event(Op::Insert).no_key().build();
    let (key, _) = encode(options(true, DecimalHandling::Precise), &k);
    assert!(key.is_none());
}

#[test]
fn encoder_reuses_plans_across_table_versions() {
    let mut encoder = Encoder::new(options(true, DecimalHandling::Precise));
    let a = event(Op::Insert).build();
    let mut s = (*schema()).clone();
    s.version = 2;
    s.columns[19].name = "enabled".into();
    let b = event(Op::Insert).schema(&Arc::new(s)).build();
    encoder.encode(&a, 0);
    let va: Json = serde_json::from_slice(encoder.value()).unwrap();
    encoder.encode(&b, 0);
    let vb: Json = serde_json::from_slice(encoder.value()).unwrap();
    encoder.encode(&a, 0);
    let va2: Json = serde_json::from_slice(encoder.value()).unwrap();
    assert_eq!(va["payload"]["after"]["flag"], true);
    assert_eq!(vb["payload"]["after"]["enabled"], true);
    assert_eq!(va, va2);
}

/// What the JSON value loses travels in the `headwater.special` header: an
/// array's dimensions (the value holds its elements in row-major order),
/// and the NaN / ±Infinity that precise mode writes as `null`, in the
/// column, in an array's elements, in `before` and in the key.
#[test]
fn special_header_carries_dimensions_and_decimal_specials() {
    use headwater_core::value::{Array, Dim};
    let ints = ValueKind::Array(Box::new(ValueKind::Int32));
    let nums = ValueKind::Array(Box::new(ValueKind::Decimal {
        precision: None,
        scale: None,
    }));
    let n = ValueKind::Decimal {
        precision: Some(10),
        scale: Some(2),
    };
    let schema = Arc::new(TableSchema {
        table: TableId::new("public", "shapes"),
        version: 1,
        columns: vec![
            column("id", "numeric", n.clone(), Some(0)),
            column("a", "int4[]", ints, None),
            column("ns", "numeric[]", nums, None),
            column("n", "numeric(10,2)", n, None),
        ],
    });
    let dims = vec![Dim { len: 2, lower: 0 }, Dim { len: 1, lower: 1 }];
    let grid = Value::Array(Array::new(dims, vec![Value::Int32(1), Value::Int32(2)]).unwrap());
    let nan = Value::Decimal(Decimal::NaN);
    let list = Value::Array(Array::list(vec![
        Value::Decimal("1.5".parse().unwrap()),
        Value::Decimal(Decimal::NegInfinity),
    ]));
    let after = vec![
        nan.clone(),
        grid,
        list,
        Value::Decimal(Decimal::PosInfinity),
    ];
    let before = vec![nan.clone(), Value::Null, Value::Null, nan.clone()];
    let e = event(Op::Update)
        .schema(&schema)
        .key(vec![nan])
        .after(after)
        .before(before)
        .build();
    let mut encoder = Encoder::new(options(false, DecimalHandling::Precise));
    encoder.encode(&e, 0);
    let value: Json = serde_json::from_slice(encoder.value()).unwrap();
    assert_eq!(value["after"]["a"], json!([1, 2]));
    assert_eq!(value["after"]["n"], Json::Null);
    let special: Json = serde_json::from_slice(encoder.special().unwrap()).unwrap();
    assert_eq!(
        special,
        json!({
            "after": {"id": "NaN", "a": "[0:1][1:1]", "ns[1]": "-Infinity", "n": "Infinity"},
            "before": {"id": "NaN", "n": "NaN"},
            "key": {"id": "NaN"},
        })
    );
    // String mode writes the specials in the value; a plain row has no header.
    let mut encoder = Encoder::new(options(false, DecimalHandling::String));
    encoder.encode(&e, 0);
    let special: Json = serde_json::from_slice(encoder.special().unwrap()).unwrap();
    assert_eq!(special, json!({"after": {"a": "[0:1][1:1]"}}));
    encoder.encode(&event(Op::Insert).build(), 0);
    assert!(encoder.special().is_none());
}
