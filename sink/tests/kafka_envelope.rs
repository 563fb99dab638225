//! Every message arrives with the right key, headers and Debezium envelope:
//! the expected JSON is written from the shape of the example messages in
//! Debezium's PostgreSQL and MySQL connector documentation (the `customers`
//! table of its tutorial), for create, update, delete (+ tombstone) and
//! snapshot read events.
//!
//! Runs against librdkafka's mock cluster (`rdkafka::mocking`), an
//! in-process broker. It does NOT cover: real broker storage and fsync,
//! ACLs and SASL/TLS handshakes, transactions, multi-broker ISR /
//! `min.insync.replicas` behaviour, log compaction of tombstones, or
//! consumers of other languages decoding the messages.
#![allow(clippy::unwrap_used)]

mod kafka_support;

use serde_json::{json, Value as Json};

use headwater_core::{ChangeEvent, Op, Sink, Timestamp, Value};
use headwater_sink::kafka::testing::{customer, customers_schema};
use kafka_support::*;
use testkit::EventBuilder;

const PG_SERVER: &str = "PostgreSQL_server";
const MY_SERVER: &str = "mysql-server-1";
/// Debezium's examples use this commit time (ms).
const PG_TS_MS: i64 = 1_559_033_904_863;
const MY_TS_MS: i64 = 1_465_491_411_815;

fn pg_event(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> ChangeEvent {
    EventBuilder::with_schema(op, &customers_schema("public"))
        .source(PG_SERVER)
        .before(before)
        .after(after)
        .pg(24_023_128, 24_023_119)
        .commit_ts(Timestamp::Micros(PG_TS_MS * 1000))
        .tx_id(555)
        .build()
}

fn my_event(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> ChangeEvent {
    EventBuilder::with_schema(op, &customers_schema("inventory"))
        .source(MY_SERVER)
        .before(before)
        .after(after)
        .mysql("mysql-bin.000003", 154)
        .commit_ts(Timestamp::Micros(MY_TS_MS * 1000))
        .build()
}

fn anne(id: i32) -> Vec<Value> {
    customer(id, "Anne", "Kretchmar", "annek@noanswer.org")
}
fn anne_marie(id: i32) -> Vec<Value> {
    customer(id, "Anne Marie", "Kretchmar", "annek@noanswer.org")
}

/// The payload with the processing-time fields (`ts_ms`, `ts_us`, `ts_ns`)
/// and `source.version` checked and removed.
fn stable(payload: &Json) -> Json {
    let mut p = payload.clone();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let obj = p.as_object_mut().unwrap();
    let ts = obj.remove("ts_ms").unwrap().as_i64().unwrap();
    assert!((now_ms - ts).abs() < 120_000, "ts_ms is processing time");
    assert_eq!(obj.remove("ts_us").unwrap().as_i64(), Some(ts * 1000));
    assert_eq!(obj.remove("ts_ns").unwrap().as_i64(), Some(ts * 1_000_000));
    let source = obj.get_mut("source").unwrap().as_object_mut().unwrap();
    assert!(source.remove("version").unwrap().is_string());
    p
}

fn pg_source(snapshot: &str) -> Json {
    json!({
        "connector": "postgresql",
        "name": PG_SERVER,
        "ts_ms": PG_TS_MS,
        "ts_us": PG_TS_MS * 1000,
        "ts_ns": PG_TS_MS * 1_000_000,
        "snapshot": snapshot,
        "db": "postgres",
        // Debezium: [last committed LSN, this LSN]; Headwater: [this
        // transaction's commit LSN, this LSN] — both order the events.
        "sequence": "[\"24023128\",\"24023119\"]",
        "schema": "public",
        "table": "customers",
        "txId": 555,
        "lsn": 24023119,
        "xmin": null
    })
}

fn my_source(snapshot: &str) -> Json {
    json!({
        "connector": "mysql",
        "name": MY_SERVER,
        "ts_ms": MY_TS_MS,
        "ts_us": MY_TS_MS * 1000,
        "ts_ns": MY_TS_MS * 1_000_000,
        "snapshot": snapshot,
        "db": "inventory",
        "sequence": null,
        "table": "customers",
        "server_id": 223344,
        "gtid": null,
        "file": "mysql-bin.000003",
        "pos": 154,
        "row": 0,
        // Debezium reports the MySQL thread id; the binlog event Headwater
        // keeps does not carry it.
        "thread": null,
        "query": null
    })
}

fn envelope(before: Json, after: Json, source: Json, op: &str) -> Json {
    json!({"before": before, "after": after, "source": source, "op": op, "transaction": null})
}

fn anne_json(id: i32, first: &str) -> Json {
    json!({"id": id, "first_name": first, "last_name": "Kretchmar", "email": "annek@noanswer.org"})
}

#[tokio::test]
async fn postgres_events_match_debezium_examples() {
    let topic = testkit::unique_name("pg_envelope");
    let mock = cluster(1, &topic, 1);
    let mut config = config(&mock, &topic);
    config.databases.insert(PG_SERVER.into(), "postgres".into());
    let mut sink = sink(&config);

    // GIVEN Debezium's four example events (REPLICA IDENTITY DEFAULT: an
    // update has no before-image, a delete's before-image is the key).
    let key_only = vec![
        Value::Int32(1),
        Value::Unchanged,
        Value::Unchanged,
        Value::Unchanged,
    ];
    let events = vec![
        pg_event(Op::Read, None, Some(anne(1))),
        pg_event(Op::Insert, None, Some(anne(1))),
        pg_event(Op::Update, Some(key_only.clone()), Some(anne_marie(1))),
        pg_event(Op::Delete, Some(key_only), None),
    ];
    // WHEN they go through the sink
    sink.write(records("log.pg", 40, events)).await.unwrap();
    let progress = drain(&mut sink).await;
    assert_eq!(progress.durable.len(), 1);
    assert_eq!(progress.durable[0].next_offset, 44);
    assert!(progress.rejected.is_empty());

    // THEN five messages arrive (the delete is followed by a tombstone)
    let got = consume(&mock, &topic, 1, 5);
    let key = json!({
        "schema": {
            "type": "struct",
            "name": "PostgreSQL_server.public.customers.Key",
            "optional": false,
            "fields": [{"type": "int32", "optional": false, "field": "id"}]
        },
        "payload": {"id": 1}
    });
    for m in &got {
        assert_eq!(m.key.as_ref(), Some(&key));
    }
    let expected = [
        envelope(Json::Null, anne_json(1, "Anne"), pg_source("true"), "r"),
        envelope(Json::Null, anne_json(1, "Anne"), pg_source("false"), "c"),
        envelope(
            Json::Null,
            anne_json(1, "Anne Marie"),
            pg_source("false"),
            "u",
        ),
        envelope(json!({"id": 1}), Json::Null, pg_source("false"), "d"),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&stable(got[i].payload()), want, "message {i}");
        assert_eq!(got[i].log_offset(), 40 + i as u64);
        assert_eq!(got[i].headers["headwater.topic"], "log.pg");
        assert_eq!(got[i].headers["headwater.partition"], "0");
        assert_eq!(got[i].headers["headwater.position"], "0/16E9058@0/16E904F");
    }
    assert!(got[4].value.is_none(), "a tombstone follows the delete");
    assert_eq!(got[4].log_offset(), 43);

    // The value's schema part is Debezium's envelope schema.
    let schema = &got[0].value.as_ref().unwrap()["schema"];
    assert_eq!(
        schema["name"],
        "PostgreSQL_server.public.customers.Envelope"
    );
    let fields: Vec<&str> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "before",
            "after",
            "source",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns",
            "transaction"
        ]
    );
    let after = &schema["fields"][1];
    assert_eq!(after["name"], "PostgreSQL_server.public.customers.Value");
    assert_eq!(after["optional"], true);
    assert_eq!(
        after["fields"][0],
        json!({"type": "int32", "optional": false, "field": "id"})
    );
    assert_eq!(
        after["fields"][1],
        json!({"type": "string", "optional": false, "field": "first_name"})
    );
    assert_eq!(
        schema["fields"][2]["name"],
        "io.debezium.connector.postgresql.Source"
    );
}

#[tokio::test]
async fn mysql_events_match_debezium_examples_without_schemas() {
    let topic = testkit::unique_name("my_envelope");
    let mock = cluster(1, &topic, 1);
    let mut config = config(&mock, &topic);
    config.schemas = false;
    config.server_ids.insert(MY_SERVER.into(), 223344);
    let mut sink = sink(&config);

    // GIVEN MySQL's full row images
    let events = vec![
        my_event(Op::Read, None, Some(anne(1004))),
        my_event(Op::Insert, None, Some(anne(1004))),
        my_event(Op::Update, Some(anne(1004)), Some(anne_marie(1004))),
        my_event(Op::Delete, Some(anne_marie(1004)), None),
    ];
    sink.write(records("log.my", 0, events)).await.unwrap();
    let progress = drain(&mut sink).await;
    assert_eq!(progress.durable[0].next_offset, 4);

    let got = consume(&mock, &topic, 1, 5);
    for m in &got {
        assert_eq!(
            m.key,
            Some(json!({"id": 1004})),
            "schemas off: the bare key"
        );
        assert_eq!(m.headers["headwater.position"], "mysql-bin.000003:154");
    }
    let expected = [
        envelope(Json::Null, anne_json(1004, "Anne"), my_source("true"), "r"),
        envelope(Json::Null, anne_json(1004, "Anne"), my_source("false"), "c"),
        envelope(
            anne_json(1004, "Anne"),
            anne_json(1004, "Anne Marie"),
            my_source("false"),
            "u",
        ),
        envelope(
            anne_json(1004, "Anne Marie"),
            Json::Null,
            my_source("false"),
            "d",
        ),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert!(got[i].value.as_ref().unwrap().get("schema").is_none());
        assert_eq!(&stable(got[i].payload()), want, "message {i}");
    }
    assert!(got[4].value.is_none(), "tombstone");
}

#[tokio::test]
async fn topic_template_headers_and_no_tombstones() {
    let target_a = testkit::unique_name("tpl");
    let mock = cluster(
        1,
        &format!("{target_a}.PostgreSQL_server.public.customers"),
        1,
    );
    let mut config = config(
        &mock,
        &format!("{target_a}.{{source}}.{{namespace}}.{{table}}"),
    );
    config.tombstones = false;
    let mut sink = sink(&config);

    let mut event = pg_event(Op::Delete, Some(anne(1)), None);
    event.headers.push(headwater_core::Header {
        name: "origin".into(),
        value: b"eu-west".to_vec(),
    });
    sink.write(records("log.any", 7, vec![event]))
        .await
        .unwrap();
    drain(&mut sink).await;

    let got = consume(
        &mock,
        &format!("{target_a}.PostgreSQL_server.public.customers"),
        1,
        1,
    );
    assert_eq!(
        got[0].headers["origin"], "eu-west",
        "event headers pass through"
    );
    assert_eq!(got[0].log_offset(), 7);
    assert_eq!(got[0].payload()["op"], "d");
}

#[tokio::test]
async fn check_reports_broker_metadata() {
    let topic = testkit::unique_name("check");
    let mock = cluster(3, &topic, 2);
    let sink = sink(&config(&mock, &topic));
    let findings = sink.check().await;
    assert!(
        findings
            .iter()
            .all(|f| f.severity == headwater_core::Severity::Ok),
        "{findings:?}"
    );
    assert!(findings[0].message.contains("3 broker(s)"), "{findings:?}");
    assert!(
        findings[1].message.contains("2 partition(s)"),
        "{findings:?}"
    );
}

#[tokio::test]
async fn check_names_unreachable_brokers() {
    let config = headwater_sink::kafka::KafkaConfig::new("127.0.0.1:9", vec!["*".into()]);
    let sink = sink(&config);
    let findings = sink.check().await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].severity, headwater_core::Severity::Fail);
    assert!(findings[0].message.contains("127.0.0.1:9"), "{findings:?}");
    assert!(findings[0].message.contains("reachable"), "{findings:?}");
}
