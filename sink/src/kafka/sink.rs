//! The Kafka sink: records in, Debezium messages out through an idempotent
//! producer, offsets reported only from delivery reports.
//!
//! # Delivery
//! - `write` encodes each record and hands it to librdkafka (which batches,
//!   compresses and retries retriable errors itself, in order, until
//!   `delivery_timeout`); it waits only when librdkafka's queue is full.
//! - The delivery callback counts down each record's messages (value, and a
//!   tombstone after a delete); [`Tracker`] turns that into a contiguous
//!   "durable through" per log partition.
//! - A message the broker refuses for good (too large, invalid) makes its
//!   record `rejected` (dead-lettered by the runtime). Any other failure
//!   blocks its partition and the next `write`/`flush` returns the error:
//!   `Retry` (broker down, timeout), `WaitForOperator` (authorization, a
//!   missing topic). The runtime then builds a new sink and re-feeds from
//!   the committed offsets; the idempotent producer keeps each producer's
//!   own retries free of duplicates and in order.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use headwater_core::error::Classify;
use headwater_core::{Error, Finding, Op, Progress, Result, Sink, SinkRecord};

use super::config::KafkaConfig;
use super::delivery::{Shared, Ticket};
use super::encode::{EncodeOptions, Encoder};
use super::error::{classify, Failure, KafkaSinkError};
use headwater_core::TopicTemplate;

/// Header names the sink adds to every message.
pub const HEADER_TOPIC: &str = "headwater.topic";
pub const HEADER_PARTITION: &str = "headwater.partition";
pub const HEADER_OFFSET: &str = "headwater.offset";
pub const HEADER_POSITION: &str = "headwater.position";

/// librdkafka's callbacks: delivery reports and client errors.
pub struct Context {
    shared: Shared,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::Fatal) {
            self.shared.lock().fail(KafkaSinkError::Fatal {
                reason: format!("{error}: {reason}"),
            });
            self.shared.notify().notify_waiters();
        } else if classify(&error) == Failure::Unauthorized {
            // SASL or TLS refused: nothing will be delivered until fixed.
            self.shared.lock().fail(KafkaSinkError::Authentication {
                source: Box::new(error),
            });
            self.shared.notify().notify_waiters();
        } else {
            // Broker down, transport errors: librdkafka reconnects and
            // retries; a message that times out is reported as failed.
            tracing::warn!(error = %error, reason, "kafka sink: client error");
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let ticket = Ticket(opaque);
        {
            let mut tracker = self.shared.lock();
            match result {
                Ok(_) => tracker.delivered(ticket),
                Err((error, message)) => {
                    tracker.failed(ticket, message.topic(), error.clone());
                }
            }
        }
        self.shared.notify().notify_waiters();
    }
}

pub struct KafkaSink {
    /// `None` only inside `drop`.
    producer: Option<Arc<ThreadedProducer<Context>>>,
    shared: Shared,
    encoder: Encoder,
    template: TopicTemplate,
    tombstones: bool,
    target: String,
    brokers: String,
    fixed_topic: Option<String>,
}

impl KafkaSink {
    /// Creates the producer (librdkafka connects in the background).
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaSinkError> {
        let template =
            TopicTemplate::parse(&config.topic).map_err(|reason| KafkaSinkError::Config {
                key: "topic",
                reason,
            })?;
        let mut client = ClientConfig::new();
        for (k, v) in config.client_properties() {
            client.set(k, v);
        }
        let shared = Shared::default();
        let context = Context {
            shared: shared.clone(),
        };
        let producer: ThreadedProducer<Context> =
            client
                .create_with_context(context)
                .map_err(|source| KafkaSinkError::Client {
                    brokers: config.brokers.clone(),
                    source: Box::new(source),
                })?;
        Ok(KafkaSink {
            producer: Some(Arc::new(producer)),
            shared,
            encoder: Encoder::new(EncodeOptions::from_config(config)),
            fixed_topic: template.fixed().map(str::to_owned),
            template,
            tombstones: config.tombstones,
            target: String::new(),
            brokers: config.brokers.clone(),
        })
    }

    fn producer(&self) -> &ThreadedProducer<Context> {
        self.producer
            .as_deref()
            .expect("the producer is only taken in drop")
    }

    /// The first failure, then the same error again on every later call:
    /// a failed sink stays failed until the runtime replaces it.
    fn failure(&self) -> Result<()> {
        let first = self.shared.lock().take_failure();
        if let Some(e) = first {
            // Nothing queued may be delivered after a failure: a new sink
            // re-feeds from the committed offsets.
            self.producer()
                .purge(rdkafka::producer::PurgeConfig::default().queue());
            self.shared.lock().set_failed(e.kind(), e.to_string());
            return Err(Error::component("kafka sink", e));
        }
        match self.shared.lock().failed_before() {
            Some((kind, message)) => Err(Error::Component {
                context: "kafka sink (failed earlier)".into(),
                kind,
                source: message.into(),
            }),
            None => Ok(()),
        }
    }

    /// Hands one message to librdkafka, waiting while its queue is full.
    /// A synchronous refusal is reported to the tracker like a failed
    /// delivery.
    async fn send(
        &self,
        ticket: Ticket,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<()> {
        let mut message = BaseRecord::with_opaque_to(&self.target, ticket.0).headers(headers);
        if let Some(key) = key {
            message = message.key(key);
        }
        if let Some(payload) = payload {
            message = message.payload(payload);
        }
        loop {
            match self.producer().send(message) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    message = back;
                    if self.shared.lock().has_failure() {
                        return self.failure();
                    }
                    let notified = self.shared.notify().notified();
                    let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
                }
                Err((error, _)) => {
                    self.shared.lock().failed(ticket, &self.target, error);
                    return Ok(());
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn headers_of(record: &SinkRecord) -> OwnedHeaders {
    let event = &record.event;
    let position = event.position.to_string();
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let mut headers = OwnedHeaders::new_with_capacity(4 + event.headers.len());
    for (key, value) in [
        (HEADER_TOPIC, record.topic.as_bytes()),
        (HEADER_PARTITION, partition.as_bytes()),
        (HEADER_OFFSET, offset.as_bytes()),
        (HEADER_POSITION, position.as_bytes()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    for h in &event.headers {
        headers = headers.insert(Header {
            key: &h.name,
            value: Some(&h.value),
        });
    }
    headers
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: Vec<SinkRecord>) -> Result<()> {
        self.failure()?;
        let now = now_ms();
        for record in batch {
            self.template
                .render(&record.topic, &record.event, &mut self.target);
            self.encoder.encode(&record.event, now);
            let mut headers = headers_of(&record);
            if let Some(special) = self.encoder.special() {
                headers = headers.insert(Header {
                    key: super::encode::HEADER_SPECIAL,
                    value: Some(special),
                });
            }
            let tombstone =
                self.tombstones && record.event.op == Op::Delete && self.encoder.key().is_some();
            let ticket = self
                .shared
                .lock()
                .begin(record, if tombstone { 2 } else { 1 });
            let key = self.encoder.key();
            if tombstone {
                self.send(ticket, key, Some(self.encoder.value()), headers.clone())
                    .await?;
                self.send(ticket, key, None, headers).await?;
            } else {
                self.send(ticket, key, self.encoder.value_or_tombstone(), headers)
                    .await?;
            }
        }
        self.failure()
    }

    async fn flush(&mut self, drain: bool) -> Result<()> {
        self.failure()?;
        if !drain {
            return Ok(());
        }
        loop {
            let notified = self.shared.notify().notified();
            {
                let tracker = self.shared.lock();
                if tracker.has_failure() {
                    break;
                }
                if tracker.outstanding() == 0 {
                    return Ok(());
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
        self.failure()
    }

    fn take_progress(&mut self) -> Progress {
        self.shared.lock().take_progress()
    }

    async fn check(&self) -> Vec<Finding> {
        let producer = self.producer.clone();
        let Some(producer) = producer else {
            return Vec::new();
        };
        let brokers = self.brokers.clone();
        let fixed = self.fixed_topic.clone();
        let probe = tokio::task::spawn_blocking(move || {
            super::check::probe(producer.client(), &brokers, fixed.as_deref())
        });
        match probe.await {
            Ok(findings) => findings,
            Err(e) => vec![Finding::fail(format!(
                "kafka sink: the broker probe did not finish: {e}"
            ))],
        }
    }
}

/// Dropping the producer purges what is queued and waits up to 500ms for
/// librdkafka to settle: do that off the async workers when there are any.
impl Drop for KafkaSink {
    fn drop(&mut self) {
        let Some(producer) = self.producer.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(producer));
        }
    }
}
