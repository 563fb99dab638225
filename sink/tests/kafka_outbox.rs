//! Outbox events as Debezium's outbox router writes them: the aggregate
//! key as text, the payload bytes as stored with no envelope, a null value
//! for a tombstone.
#![allow(clippy::unwrap_used)]

use headwater_core::outbox::{OutboxColumns, OutboxShape};
use headwater_core::{ChangeEvent, Op, Value, ValueKind};
use headwater_sink::kafka::{EncodeOptions, Encoder, KafkaConfig};
use testkit::EventBuilder;

fn outbox_event(payload: Value, tombstone_on_empty: bool) -> ChangeEvent {
    let kind = match payload {
        Value::Text(_) => ValueKind::Text,
        _ => ValueKind::Json,
    };
    let row = EventBuilder::insert("public.outbox")
        .key_column("id", Value::Int64(7))
        .column("aggregatetype", Value::Text("Order".into()))
        .column("aggregateid", Value::Text("order-42".into()))
        .column("type", Value::Text("OrderPaid".into()))
        .column_of("payload", kind, payload)
        .build();
    let shape = OutboxShape::new(OutboxColumns {
        tombstone_on_empty_payload: tombstone_on_empty,
        ..OutboxColumns::default()
    })
    .unwrap();
    let mut values = row.after.clone().unwrap();
    shape
        .layout(&row.schema)
        .unwrap()
        .event(&shape, &row, &mut values)
        .unwrap()
}

fn encoder() -> Encoder {
    Encoder::new(EncodeOptions::from_config(&KafkaConfig::new(
        "127.0.0.1:9092",
        vec!["*".into()],
    )))
}

#[test]
fn an_outbox_event_is_its_payload_keyed_by_the_aggregate() {
    let event = outbox_event(Value::Json(r#"{"total": "12.50"}"#.into()), false);
    assert_eq!(event.op, Op::Event);
    let mut encoder = encoder();
    encoder.encode(&event, 0);
    assert_eq!(encoder.key(), Some(&b"order-42"[..]));
    assert_eq!(
        encoder.value_or_tombstone(),
        Some(&br#"{"total": "12.50"}"#[..])
    );
    assert_eq!(encoder.special(), None);
}

#[test]
fn an_empty_payload_is_a_tombstone_only_when_asked() {
    let mut encoder = encoder();
    encoder.encode(&outbox_event(Value::Text(String::new()), true), 0);
    assert_eq!(encoder.key(), Some(&b"order-42"[..]));
    assert_eq!(encoder.value_or_tombstone(), None);
    encoder.encode(&outbox_event(Value::Text(String::new()), false), 0);
    assert_eq!(encoder.value_or_tombstone(), Some(&b""[..]));
    // A NULL has no bytes to send: Kafka gets a null value either way.
    encoder.encode(&outbox_event(Value::Null, false), 0);
    assert_eq!(encoder.value_or_tombstone(), None);
}
