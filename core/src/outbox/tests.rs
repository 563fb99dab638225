use super::*;
use crate::position::{Lsn, PgPosition, Position};

fn column(name: &str, kind: ValueKind, type_name: &str, key: Option<u16>) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        kind,
        nullable: true,
        key_position: key,
    }
}

fn outbox_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        table: TableId::new("public", "outbox"),
        version: 3,
        columns: vec![
            column("id", ValueKind::Uuid, "uuid", Some(0)),
            column("aggregatetype", ValueKind::Text, "text", None),
            column("aggregateid", ValueKind::Text, "text", None),
            column("type", ValueKind::Text, "text", None),
            column("payload", ValueKind::Json, "jsonb", None),
            column("tenant", ValueKind::Int32, "int4", None),
        ],
    })
}

fn row(route: Value, payload: Value) -> Vec<Value> {
    vec![
        Value::Uuid([7; 16]),
        route,
        Value::Text("order-42".into()),
        Value::Text("OrderCreated".into()),
        payload,
        Value::Int32(3),
    ]
}

fn insert(row: Vec<Value>) -> ChangeEvent {
    let schema = outbox_schema();
    ChangeEvent {
        source: "shop".into(),
        table: schema.table.clone(),
        op: Op::Insert,
        key: vec![row[0].clone()],
        before: None,
        after: Some(row),
        position: Position::Postgres(PgPosition {
            commit_lsn: Lsn(100),
            lsn: Lsn(90),
        }),
        commit_ts: None,
        tx_id: Some(9),
        schema,
        topic: None,
        headers: Vec::new(),
    }
}

fn shape(edit: impl FnOnce(&mut OutboxColumns)) -> OutboxShape {
    let mut columns = OutboxColumns::default();
    edit(&mut columns);
    OutboxShape::new(columns).unwrap()
}

fn build(shape: &OutboxShape, event: &ChangeEvent) -> Result<ChangeEvent, String> {
    let layout = shape.layout(&event.schema)?;
    let mut row = event.after.clone().unwrap();
    layout.event(shape, event, &mut row)
}

fn header<'a>(event: &'a ChangeEvent, name: &str) -> Option<&'a str> {
    event
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| std::str::from_utf8(&h.value).unwrap())
}

#[test]
fn a_row_becomes_an_event_keyed_and_routed_by_its_aggregate() {
    let shape = shape(|c| {
        c.headers = vec!["tenant".into()];
        c.topic = "{source}.events.{route}".into();
    });
    let from = insert(row(
        Value::Text("Order".into()),
        Value::Json(r#"{"total": 12.50}"#.into()),
    ));
    let event = build(&shape, &from).unwrap();
    assert_eq!(event.op, Op::Event);
    assert_eq!(event.key, vec![Value::Text("order-42".into())]);
    assert_eq!(event.topic.as_deref(), Some("shop.events.Order"));
    assert_eq!(
        header(&event, "id"),
        Some("07070707-0707-0707-0707-070707070707")
    );
    assert_eq!(header(&event, "type"), Some("OrderCreated"));
    assert_eq!(header(&event, "tenant"), Some("3"));
    assert_eq!(event.position, from.position);
    let names: Vec<&str> = event
        .schema
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["id", "aggregateid", "type", "payload"]);
    assert_eq!(event.schema.key_indexes(), vec![1]);
    let outbox = OutboxEvent::of(&event).unwrap();
    assert_eq!(outbox.key_text(), "order-42");
    assert_eq!(outbox.payload_bytes(), Some(&br#"{"total": 12.50}"#[..]));
    assert!(!outbox.is_tombstone());
}

#[test]
fn a_row_that_cannot_be_an_event_says_why() {
    let shape = shape(|_| {});
    let null_route = build(&shape, &insert(row(Value::Null, Value::Json("{}".into()))));
    assert!(
        null_route
            .unwrap_err()
            .contains("route_by `aggregatetype` is NULL"),
        "a NULL route"
    );
    let bad_json = build(
        &shape,
        &insert(row(
            Value::Text("Order".into()),
            Value::Json("{oops".into()),
        )),
    )
    .unwrap_err();
    assert!(bad_json.contains("not valid JSON"), "{bad_json}");
    let missing = shape.layout(&TableSchema {
        columns: outbox_schema().columns[..4].to_vec(),
        ..(*outbox_schema()).clone()
    });
    let missing = missing.unwrap_err();
    assert!(
        missing.contains("public.outbox") && missing.contains("`payload`"),
        "{missing}"
    );
    let int_payload = self::shape(|c| c.payload = "tenant".into())
        .layout(&outbox_schema())
        .unwrap_err();
    assert!(int_payload.contains("int4"), "{int_payload}");
    let bad_topic = build(
        &shape,
        &insert(row(Value::Text("x".repeat(300)), Value::Json("{}".into()))),
    )
    .unwrap_err();
    assert!(bad_topic.contains("not a valid topic name"), "{bad_topic}");
}

#[test]
fn a_route_with_other_characters_names_a_sanitized_topic() {
    let event = build(
        &shape(|_| {}),
        &insert(row(
            Value::Text("Order Line/Item".into()),
            Value::Json("{}".into()),
        )),
    )
    .unwrap();
    assert_eq!(event.topic.as_deref(), Some("outbox.event.Order_Line_Item"));
}

#[test]
fn an_empty_payload_is_a_tombstone_when_asked() {
    let from = insert(row(Value::Text("Order".into()), Value::Null));
    let kept = build(&shape(|_| {}), &from).unwrap();
    assert!(!OutboxEvent::of(&kept).unwrap().is_tombstone());
    assert_eq!(OutboxEvent::of(&kept).unwrap().payload_bytes(), None);
    let tombstone = build(&shape(|c| c.tombstone_on_empty_payload = true), &from).unwrap();
    let outbox = OutboxEvent::of(&tombstone).unwrap();
    assert!(outbox.is_tombstone());
    assert_eq!(outbox.key_text(), "order-42");
}

#[test]
fn a_composite_key_is_a_json_object_of_its_columns() {
    let shape = shape(|c| c.key = KeyColumns::Many(vec!["tenant".into(), "aggregateid".into()]));
    let event = build(
        &shape,
        &insert(row(Value::Text("Order".into()), Value::Json("{}".into()))),
    )
    .unwrap();
    assert_eq!(
        OutboxEvent::of(&event).unwrap().key_text(),
        r#"{"tenant":"3","aggregateid":"order-42"}"#
    );
}

#[test]
fn a_column_in_two_kept_roles_is_refused() {
    let mut columns = OutboxColumns {
        fields: vec!["payload".into()],
        ..OutboxColumns::default()
    };
    assert!(OutboxShape::new(columns.clone())
        .unwrap_err()
        .contains("`payload` is named twice"));
    columns.fields.clear();
    columns.topic = "{topic}.x".into();
    assert!(OutboxShape::new(columns).is_err());
}

#[test]
fn a_message_is_read_as_a_row_keeping_the_payload_as_written() {
    let shape = shape(|c| c.fields = vec!["meta".into()]);
    let schema = shape.message_schema(TableId::new("pg_logical", "message"));
    let content = br#"{"id": 17, "aggregatetype": "Order", "aggregateid": "order-1",
        "type": "OrderPaid", "payload": {"b": 1,  "a": [2]}, "meta": null}"#;
    let row = message_row(&schema, content).unwrap();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "aggregateid",
            "type",
            "payload",
            "meta",
            "aggregatetype"
        ]
    );
    assert_eq!(row[0], Value::Text("17".into()));
    assert_eq!(row[1], Value::Text("order-1".into()));
    assert_eq!(row[3], Value::Json(r#"{"b": 1,  "a": [2]}"#.into()));
    assert_eq!(row[4], Value::Json("null".into()));
    assert_eq!(row[5], Value::Text("Order".into()));
    let missing = message_row(&schema, br#"{"id": 1}"#).unwrap_err();
    assert!(missing.contains("no field `aggregateid`"), "{missing}");
    assert!(message_row(&schema, b"[1]").is_err());
}
