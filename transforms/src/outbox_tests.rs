use headwater_core::{ChangeEvent, Op, Value, ValueKind};
use testkit::EventBuilder;

use crate::outbox::{DEAD_LETTERED, SKIPPED_UPDATE};
use crate::{TransformChain, TransformConfig};

fn chain(toml_text: &str) -> TransformChain {
    TransformChain::build(&[parse(toml_text).unwrap()]).unwrap()
}

fn parse(toml_text: &str) -> Result<TransformConfig, String> {
    toml::from_str::<TransformConfig>(toml_text).map_err(|e| e.to_string())
}

const OUTBOX: &str = r#"
    type = "outbox"
    tables = ["public.outbox"]
    on_update = "error"
    messages = { prefix = "outbox" }
"#;

fn outbox_row(op: Op, id: i64, route: Value, payload: &str) -> ChangeEvent {
    EventBuilder::new(op, "public.outbox")
        .key_column("id", Value::Int64(id))
        .column_of("aggregatetype", ValueKind::Text, route)
        .column("aggregateid", Value::Text(format!("order-{}", id % 3)))
        .column("type", Value::Text("OrderCreated".into()))
        .column("payload", Value::Json(payload.into()))
        .build()
}

fn message(transactional: bool, content: &str) -> ChangeEvent {
    EventBuilder::new(Op::Message, "pg_logical.message")
        .no_key()
        .column("content", Value::Bytes(content.as_bytes().to_vec()))
        .header("prefix", b"outbox")
        .header(
            "transactional",
            if transactional { b"true" } else { b"false" },
        )
        .build()
}

fn header<'a>(event: &'a ChangeEvent, name: &str) -> Option<&'a [u8]> {
    event
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_slice())
}

#[test]
fn inserts_become_events_deletes_vanish_and_other_tables_pass() {
    let c = chain(OUTBOX);
    let order = EventBuilder::insert("public.orders")
        .key_column("id", Value::Int64(1))
        .build();
    let events = vec![
        outbox_row(Op::Insert, 4, Value::Text("Order".into()), "{}"),
        outbox_row(Op::Delete, 4, Value::Text("Order".into()), "{}"),
        order.clone(),
    ];
    let out = c.apply(events).unwrap();
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0].op, Op::Event);
    assert_eq!(out[0].key, vec![Value::Text("order-1".into())]);
    assert_eq!(out[0].topic.as_deref(), Some("outbox.event.Order"));
    assert_eq!(header(&out[0], "id"), Some(&b"4"[..]));
    assert_eq!(out[1], order);
}

#[test]
fn bad_rows_and_updates_go_to_the_dead_letter_topic_with_the_reason() {
    let c = chain(OUTBOX);
    let out = c
        .apply(vec![
            outbox_row(Op::Insert, 1, Value::Null, "{}"),
            outbox_row(Op::Update, 2, Value::Text("Order".into()), "{}"),
            outbox_row(Op::Insert, 3, Value::Text("Order".into()), "{}"),
        ])
        .unwrap();
    assert_eq!(out.len(), 3);
    for dead in &out[..2] {
        assert_eq!(dead.topic.as_deref(), Some("_dlq.shop"));
        assert_ne!(dead.op, Op::Event, "the row goes as it came");
        assert!(header(dead, "headwater.dlq.reason").is_some());
    }
    let reason = String::from_utf8_lossy(header(&out[0], "headwater.dlq.reason").unwrap());
    assert!(reason.contains("`aggregatetype` is NULL"), "{reason}");
    assert_eq!(out[2].op, Op::Event);
    let counts = c.take_counts();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].0, counts[0].2, counts[0].3),
        ("outbox", DEAD_LETTERED, 2)
    );
    assert!(c.take_counts().is_empty(), "taken once");
}

#[test]
fn updates_are_skipped_and_counted_by_default_or_emitted() {
    let update = || outbox_row(Op::Update, 2, Value::Text("Order".into()), "{}");
    let warn = chain("type = \"outbox\"\ntables = [\"public.outbox\"]");
    assert!(warn.apply(vec![update()]).unwrap().is_empty());
    let counts = warn.take_counts();
    assert_eq!((counts[0].2, counts[0].3), (SKIPPED_UPDATE, 1));
    let emit = chain("type = \"outbox\"\ntables = [\"public.outbox\"]\non_update = \"emit\"");
    assert_eq!(emit.apply(vec![update()]).unwrap()[0].op, Op::Event);
}

#[test]
fn transactional_outbox_messages_become_events_and_others_are_refused() {
    let c = chain(OUTBOX);
    let content = r#"{"id":"e-1","aggregatetype":"Order","aggregateid":"order-1","type":"OrderPaid","payload":{"paid":true}}"#;
    let out = c
        .apply(vec![message(true, content), message(false, content)])
        .unwrap();
    assert_eq!(out[0].op, Op::Event);
    assert_eq!(out[0].key, vec![Value::Text("order-1".into())]);
    assert_eq!(out[0].topic.as_deref(), Some("outbox.event.Order"));
    assert_eq!(header(&out[0], "id"), Some(&b"e-1"[..]));
    assert_eq!(header(&out[0], "type"), Some(&b"OrderPaid"[..]));
    assert_eq!(out[1].topic.as_deref(), Some("_dlq.shop"));
    let reason = String::from_utf8_lossy(header(&out[1], "headwater.dlq.reason").unwrap());
    assert!(reason.contains("non-transactional"), "{reason}");
}

#[test]
fn outbox_config_keys_are_checked() {
    let misspelt =
        parse("type = \"outbox\"\ntables = [\"public.outbox\"]\naggregate_id = \"x\"").unwrap_err();
    assert!(misspelt.contains("aggregate_id"), "{misspelt}");
    let bad_update = parse("type = \"outbox\"\non_update = \"maybe\"").unwrap_err();
    assert!(bad_update.contains("maybe"), "{bad_update}");
    let nothing = parse("type = \"outbox\"").unwrap();
    let mut problems = headwater_core::config::Problems::new();
    nothing.validate(0, &mut problems);
    let text: Vec<_> = problems.iter().collect();
    assert!(text[0].contains("transforms[0].tables"), "{text:?}");
    let twice = parse("type = \"outbox\"\ntables = [\"t.o\"]\nfields = [\"id\"]").unwrap();
    let mut problems = headwater_core::config::Problems::new();
    twice.validate(0, &mut problems);
    assert!(problems.iter().any(|p| p.contains("named twice")));
}
