use std::sync::Arc;

use headwater_core::{ChangeEvent, Op, Value, ValueKind};
use testkit::EventBuilder;

use crate::{TransformChain, TransformConfig};

fn event(table: &str, op: Op, id: i64, email: &str, amount: &str, status: Value) -> ChangeEvent {
    EventBuilder::new(op, &format!("public.{table}"))
        .key_column("id", Value::Int64(id))
        .column("email", Value::Text(email.into()))
        .column("amount", Value::Decimal(amount.parse().unwrap()))
        .column_of("status", ValueKind::Text, status)
        .build()
}

fn chain(toml_text: &str) -> TransformChain {
    #[derive(serde::Deserialize)]
    struct File {
        transforms: Vec<TransformConfig>,
    }
    let file: File = toml::from_str(toml_text).unwrap();
    TransformChain::build(&file.transforms).unwrap()
}

fn paid(id: i64) -> ChangeEvent {
    event(
        "orders",
        Op::Insert,
        id,
        "a@x.org",
        "10.50",
        Value::Text("paid".into()),
    )
}

#[test]
fn filter_by_table_op_and_condition() {
    let c = chain(
        r#"
        [[transforms]]
        type = "filter"
        tables = ["public.ord*"]
        ops = ["insert", "delete"]
        where = [{ column = "amount", op = ">=", value = 10 }, { column = "status", op = "==", value = "paid" }]
        "#,
    );
    let cheap = event(
        "orders",
        Op::Insert,
        2,
        "b",
        "9.99",
        Value::Text("paid".into()),
    );
    let update = event(
        "orders",
        Op::Update,
        3,
        "b",
        "99",
        Value::Text("paid".into()),
    );
    let other = event(
        "customers",
        Op::Insert,
        4,
        "b",
        "99",
        Value::Text("paid".into()),
    );
    let deleted = event(
        "orders",
        Op::Delete,
        5,
        "b",
        "10",
        Value::Text("paid".into()),
    );
    let out = c
        .apply(vec![paid(1), cheap, update, other, deleted])
        .unwrap();
    let ids: Vec<_> = out.iter().map(|e| e.key[0].clone()).collect();
    assert_eq!(ids, vec![Value::Int64(1), Value::Int64(5)]);
}

#[test]
fn filter_null_checks_and_unchanged_toast_is_kept() {
    let c = chain(
        r#"
        [[transforms]]
        type = "filter"
        where = [{ column = "status", op = "is_not_null" }]
        "#,
    );
    let null = event("orders", Op::Insert, 1, "a", "1", Value::Null);
    let unchanged = event("orders", Op::Update, 2, "a", "1", Value::Unchanged);
    let out = c.apply(vec![null, unchanged]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key, vec![Value::Int64(2)]);
}

#[test]
fn select_drop_and_rename_reshape_schema_and_rows() {
    let c = chain(
        r#"
        [[transforms]]
        type = "drop"
        columns = ["email"]
        [[transforms]]
        type = "rename"
        columns = { amount = "total" }
        [[transforms]]
        type = "select"
        tables = ["public.orders"]
        columns = ["id", "total"]
        "#,
    );
    let out = c.apply(vec![paid(1)]).unwrap();
    let e = &out[0];
    let names: Vec<_> = e.schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "total"]);
    assert_eq!(
        e.after.as_ref().unwrap(),
        &vec![Value::Int64(1), Value::Decimal("10.50".parse().unwrap())]
    );
    assert_eq!(e.key, vec![Value::Int64(1)]);
    // The derived schema is cached: a second event shares it.
    let again = c.apply(vec![paid(2)]).unwrap();
    assert!(Arc::ptr_eq(&again[0].schema, &e.schema));
}

#[test]
fn mask_methods() {
    let hash = chain(
        r#"
        [[transforms]]
        type = "mask"
        columns = ["email"]
        salt = "pepper"
        "#,
    );
    let a = hash.apply(vec![paid(1)]).unwrap();
    let b = hash.apply(vec![paid(2)]).unwrap();
    let masked = &a[0].after.as_ref().unwrap()[1];
    assert_eq!(
        masked,
        &b[0].after.as_ref().unwrap()[1],
        "same value, same hash"
    );
    let Value::Text(hex) = masked else {
        panic!("{masked:?}")
    };
    assert_eq!(hex.len(), 64);
    assert!(!hex.contains("a@x.org"));
    assert_eq!(a[0].schema.columns[1].kind, ValueKind::Text);

    let other_salt =
        chain("[[transforms]]\ntype = \"mask\"\ncolumns = [\"email\"]\nsalt = \"salt\"\n");
    let c = other_salt.apply(vec![paid(1)]).unwrap();
    assert_ne!(&c[0].after.as_ref().unwrap()[1], masked);

    let redact =
        chain("[[transforms]]\ntype = \"mask\"\ncolumns = [\"email\"]\nmethod = \"redact\"\n");
    let r = redact.apply(vec![paid(1)]).unwrap();
    assert_eq!(r[0].after.as_ref().unwrap()[1], Value::Text("***".into()));

    let null = chain("[[transforms]]\ntype = \"mask\"\ncolumns = [\"email\"]\nmethod = \"null\"\n");
    let n = null.apply(vec![paid(1)]).unwrap();
    assert_eq!(n[0].after.as_ref().unwrap()[1], Value::Null);
}

#[test]
fn mask_null_on_a_not_null_column_is_an_error() {
    let c = chain("[[transforms]]\ntype = \"mask\"\ncolumns = [\"id\"]\nmethod = \"null\"\n");
    let err = c.apply(vec![paid(1)]).unwrap_err();
    assert!(err.to_string().contains("not nullable"), "{err}");
}

#[test]
fn route_templates_the_topic() {
    let c = chain(
        r#"
        [[transforms]]
        type = "route"
        tables = ["public.orders"]
        topic = "cdc.{source}.{table}"
        "#,
    );
    let other = event("customers", Op::Insert, 1, "a", "1", Value::Null);
    let out = c.apply(vec![paid(1), other]).unwrap();
    assert_eq!(out[0].topic_name(), "cdc.shop.orders");
    assert_eq!(out[1].topic_name(), "shop.public.customers");
}

#[test]
fn validate_reports_each_problem() {
    #[derive(serde::Deserialize)]
    struct File {
        transforms: Vec<TransformConfig>,
    }
    let file: File = toml::from_str(
        r#"
        [[transforms]]
        type = "mask"
        columns = []
        [[transforms]]
        type = "route"
        topic = "{nope}.x"
        [[transforms]]
        type = "route"
        topic = "{topic}.copy"
        [[transforms]]
        type = "filter"
        ops = ["insert"]
        where = [{ column = "a", op = "==" }]
        "#,
    )
    .unwrap();
    let mut problems = headwater_core::config::Problems::new();
    for (i, t) in file.transforms.iter().enumerate() {
        t.validate(i, &mut problems);
    }
    let text: Vec<_> = problems.iter().collect();
    assert_eq!(text.len(), 5, "{text:#?}");
    assert!(
        text.iter()
            .any(|p| p.contains("`{topic}.copy` uses `{topic}`")),
        "{text:#?}"
    );
}

#[test]
fn an_unknown_filter_op_is_refused_with_the_known_ones() {
    let error = toml::from_str::<TransformConfig>(
        r#"
        type = "filter"
        ops = ["upsert"]
        "#,
    )
    .expect_err("upsert is not an operation")
    .to_string();
    assert!(
        error.contains("upsert") && error.contains("`insert`"),
        "{error}"
    );
}
