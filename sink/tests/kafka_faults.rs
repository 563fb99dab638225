//! Faults: the broker goes down and comes back mid-stream, deliveries time
//! out, the sink is dropped and rebuilt mid-stream, the broker refuses a
//! message for good or refuses our authorization.
//!
//! Runs against librdkafka's mock cluster (`rdkafka::mocking`), an
//! in-process broker whose brokers can be taken down and whose requests
//! can be made to fail. It does NOT cover: real broker storage (a broker
//! crash that loses acknowledged data), ACLs and SASL/TLS handshakes (an
//! authorization failure is injected as a Produce error code), transactions,
//! multi-broker ISR / `min.insync.replicas` and leader election under
//! `acks=all`, network partitions between brokers, or quotas/throttling.
#![allow(clippy::unwrap_used)]

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{ChangeEvent, Op, Sink, SinkRecord, Value};
use headwater_sink::kafka::testing::{customer, event};
use kafka_support::*;

const KEYS: u64 = 25;

/// Record `n` updates row `n % KEYS`; its email carries `n`, so the order
/// per key can be checked on the consumer side.
fn update(n: u64) -> ChangeEvent {
    let mut e = event(n);
    let id = (n % KEYS) as i32;
    e.op = Op::Update;
    e.key = vec![Value::Int32(id)];
    e.after = Some(customer(id, "Anne", "Kretchmar", &n.to_string()));
    e
}

fn updates(topic: &str, range: std::ops::Range<u64>) -> Vec<SinkRecord> {
    records(topic, range.start, range.map(update).collect())
}

/// Per key, the record numbers in arrival order.
fn per_key(got: &[Received]) -> BTreeMap<i64, Vec<u64>> {
    let mut keys: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for m in got {
        let after = &m.payload()["after"];
        let n: u64 = after["email"].as_str().unwrap().parse().unwrap();
        keys.entry(after["id"].as_i64().unwrap())
            .or_default()
            .push(n);
        assert_eq!(m.log_offset(), n, "the offset header is the record's");
    }
    keys
}

/// At-least-once with order per key: once duplicates (re-feeds) are
/// dropped, each key's records arrive in increasing order, and all of
/// `0..total` arrived.
fn assert_complete_and_ordered(got: &[Received], total: u64) {
    let mut seen = BTreeSet::new();
    for (key, ns) in per_key(got) {
        let mut last = None;
        for n in ns {
            if seen.insert(n) {
                assert!(last < Some(n), "key {key}: {n} arrived after {last:?}");
                last = Some(n);
            }
        }
    }
    let missing: Vec<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
}

#[tokio::test]
async fn broker_down_and_up_mid_stream_loses_nothing_and_keeps_key_order() {
    let topic = testkit::unique_name("broker_down");
    let mock = cluster(1, &topic, 3);
    let mut sink = sink(&config(&mock, &topic));

    // GIVEN a first half delivered
    sink.write(updates("log", 0..500)).await.unwrap();
    assert_eq!(drain(&mut sink).await.durable[0].next_offset, 500);

    // WHEN the broker goes down while the second half is written
    mock.broker_down(1).unwrap();
    sink.write(updates("log", 500..1000)).await.unwrap();
    // The outage lasts this long (a duration, not a wait for a condition).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sink.flush(false).await.unwrap();
    let during = sink.take_progress();
    assert!(
        during.durable.is_empty(),
        "nothing is delivered while the only broker is down: {during:?}"
    );
    mock.broker_up(1).unwrap();

    // THEN everything is delivered once (idempotent producer), in order
    let progress = drain(&mut sink).await;
    assert_eq!(progress.durable.last().unwrap().next_offset, 1000);
    let got = consume(&mock, &topic, 3, 1000);
    assert_complete_and_ordered(&got, 1000);
}

#[tokio::test]
async fn delivery_timeout_is_retryable_and_a_new_sink_refeeds_without_gap() {
    let topic = testkit::unique_name("timeout");
    let mock = cluster(1, &topic, 2);
    let mut config = config(&mock, &topic);
    config.delivery_timeout = headwater_core::config::HumanDuration(Duration::from_millis(1500));
    let mut sink = sink(&config);

    // GIVEN 0..100 delivered
    sink.write(updates("log", 0..100)).await.unwrap();
    let durable = drain(&mut sink).await.durable[0].next_offset;
    assert_eq!(durable, 100);

    // WHEN the broker stays down longer than the delivery timeout
    mock.broker_down(1).unwrap();
    sink.write(updates("log", 100..200)).await.unwrap();
    let err = sink.flush(true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retry, "{err}");
    assert!(err.to_string().contains("log/0@"), "{err}");
    assert!(
        sink.take_progress()
            .durable
            .iter()
            .all(|d| d.next_offset == 100),
        "nothing past the failure is reported"
    );
    let again = sink.write(updates("log", 200..201)).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Retry, "a failed sink stays failed");
    drop(sink);
    mock.broker_up(1).unwrap();

    // THEN a new sink, fed again from the last durable offset, delivers
    // everything: at-least-once, no gap.
    let mut sink = kafka_support::sink(&config);
    sink.write(updates("log", durable..300)).await.unwrap();
    assert_eq!(drain(&mut sink).await.durable[0].next_offset, 300);
    let got = consume_all(&mock, &topic, 2, 300);
    assert_complete_and_ordered(&got, 300);
}

#[tokio::test]
async fn sink_dropped_mid_stream_and_refed_from_last_durable_offset() {
    let topic = testkit::unique_name("restart");
    let mock = cluster(1, &topic, 3);
    let config = config(&mock, &topic);
    let mut sink = sink(&config);

    // GIVEN batches written without waiting, progress taken as it comes
    let mut durable = 0;
    for start in (0..600).step_by(50) {
        sink.write(updates("log", start..start + 50)).await.unwrap();
        sink.flush(false).await.unwrap();
        if let Some(d) = sink.take_progress().durable.last() {
            assert!(d.next_offset >= durable, "never backwards");
            durable = d.next_offset;
        }
    }
    // WHEN the sink is dropped with records in flight
    drop(sink);
    assert!(durable <= 600);

    // THEN a new sink fed from the last durable offset leaves no gap
    let mut sink = kafka_support::sink(&config);
    for start in (durable..1000).step_by(100) {
        let end = (start + 100).min(1000);
        sink.write(updates("log", start..end)).await.unwrap();
    }
    assert_eq!(drain(&mut sink).await.durable[0].next_offset, 1000);
    let got = consume_all(&mock, &topic, 3, 1000);
    assert_complete_and_ordered(&got, 1000);
}

#[tokio::test]
async fn a_message_too_large_is_rejected_and_the_rest_delivered() {
    let topic = testkit::unique_name("too_large");
    let mock = cluster(1, &topic, 1);
    let mut config = config(&mock, &topic);
    config
        .librdkafka
        .0
        .insert("message.max.bytes".into(), "20000".into());
    let mut sink = sink(&config);

    let mut batch = updates("log", 0..10);
    let huge = "x".repeat(50_000);
    batch[4].event.after = Some(customer(4, "Anne", "Kretchmar", &huge));
    sink.write(batch).await.unwrap();
    let progress = drain(&mut sink).await;

    assert_eq!(
        progress.durable[0].next_offset, 10,
        "a rejection counts as delivered"
    );
    assert_eq!(progress.rejected.len(), 1);
    assert_eq!(progress.rejected[0].record.offset, 4);
    assert!(
        progress.rejected[0].reason.contains(&topic),
        "{}",
        progress.rejected[0].reason
    );
    let got = consume(&mock, &topic, 1, 9);
    assert!(got.iter().all(|m| m.log_offset() != 4));
}

#[tokio::test]
async fn an_authorization_failure_waits_for_an_operator() {
    let topic = testkit::unique_name("denied");
    let mock = cluster(1, &topic, 1);
    let mut sink = sink(&config(&mock, &topic));
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );

    sink.write(updates("log", 0..5)).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), sink.flush(true))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WaitForOperator, "{err}");
    assert!(err.to_string().contains("not authorized"), "{err}");
    assert!(sink.take_progress().durable.is_empty());
}
