//! Shared by the `kafka_*` tests: a mock cluster, a sink on it, records to
//! feed it, and a consumer that reads back what arrived.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Offset, TopicPartitionList};

use headwater_core::{ChangeEvent, Progress, Sink, SinkRecord};
use headwater_sink::kafka::{KafkaConfig, KafkaSink};

pub type Mock = MockCluster<'static, DefaultProducerContext>;

/// A mock cluster of `brokers` brokers with `topic` created on it.
pub fn cluster(brokers: i32, topic: &str, partitions: i32) -> Mock {
    let mock = MockCluster::new(brokers).unwrap();
    mock.create_topic(topic, partitions, brokers.min(3))
        .unwrap();
    mock
}

/// A sink config that sends every log topic to `target`.
pub fn config(mock: &Mock, target: &str) -> KafkaConfig {
    let mut c = KafkaConfig::new(mock.bootstrap_servers(), vec!["*".into()]);
    c.topic = target.into();
    c.linger = headwater_core::config::HumanDuration(Duration::from_millis(5));
    c
}

pub fn sink(config: &KafkaConfig) -> KafkaSink {
    KafkaSink::new(config).unwrap()
}

/// Records of log topic `topic`, partition 0, from `first` on.
pub fn records(topic: &str, first: u64, events: Vec<ChangeEvent>) -> Vec<SinkRecord> {
    let topic: Arc<str> = topic.into();
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| SinkRecord {
            topic: topic.clone(),
            partition: 0,
            offset: first + i as u64,
            event,
        })
        .collect()
}

/// Drains the sink and returns its progress.
pub async fn drain(sink: &mut KafkaSink) -> Progress {
    tokio::time::timeout(Duration::from_secs(60), sink.flush(true))
        .await
        .expect("drain within 60s")
        .unwrap();
    sink.take_progress()
}

/// One message as a consumer sees it.
#[derive(Clone, Debug)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<serde_json::Value>,
    pub value: Option<serde_json::Value>,
    pub headers: BTreeMap<String, String>,
}

impl Received {
    /// The log offset the sink put in the headers.
    pub fn log_offset(&self) -> u64 {
        self.headers["headwater.offset"].parse().unwrap()
    }

    /// The Debezium payload (inside `{"schema", "payload"}` when present).
    pub fn payload(&self) -> &serde_json::Value {
        let v = self.value.as_ref().expect("not a tombstone");
        v.get("payload").unwrap_or(v)
    }
}

/// Reads `topic` from the beginning until `count` messages arrived.
pub fn consume(mock: &Mock, topic: &str, partitions: i32, count: usize) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived in {topic}",
            out.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        let json = |b: Option<&[u8]>| b.map(|b| serde_json::from_slice(b).unwrap());
        let mut headers = BTreeMap::new();
        if let Some(h) = message.headers() {
            for header in h.iter() {
                let value = header
                    .value
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                headers.insert(header.key.to_owned(), value.unwrap_or_default());
            }
        }
        out.push(Received {
            partition: message.partition(),
            offset: message.offset(),
            key: json(message.key()),
            value: json(message.payload()),
            headers,
        });
    }
    // Nothing more than expected (a short grace period for stragglers).
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            panic!(
                "an unexpected extra message at {}:{}",
                m.partition(),
                m.offset()
            );
        }
    }
    out
}

/// Reads whatever `topic` holds (no exact count known in advance).
pub fn consume_all(mock: &Mock, topic: &str, partitions: i32, at_least: usize) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", format!("reader-all-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(message) => {
                let message = message.unwrap();
                let mut headers = BTreeMap::new();
                if let Some(h) = message.headers() {
                    for header in h.iter() {
                        let value = header
                            .value
                            .map(|v| String::from_utf8_lossy(v).into_owned());
                        headers.insert(header.key.to_owned(), value.unwrap_or_default());
                    }
                }
                out.push(Received {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(|b| serde_json::from_slice(b).unwrap()),
                    value: message
                        .payload()
                        .map(|b| serde_json::from_slice(b).unwrap()),
                    headers,
                });
                quiet_since = Instant::now();
            }
            None if out.len() >= at_least && quiet_since.elapsed() > Duration::from_millis(500) => {
                return out
            }
            None => assert!(
                Instant::now() < deadline,
                "only {} of at least {at_least} messages arrived in {topic}",
                out.len()
            ),
        }
    }
}
