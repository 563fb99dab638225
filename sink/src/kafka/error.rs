//! The Kafka sink's errors, each with the policy the supervisor applies.

use headwater_core::error::{Classify, ErrorKind};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// The producer could not be created from the configuration.
    #[error("kafka sink: cannot create the producer for brokers `{brokers}`: {source}; check `brokers` and the `librdkafka` table")]
    Client {
        brokers: String,
        #[source]
        source: Box<KafkaError>,
    },

    /// The configuration is wrong (caught by `validate` first).
    #[error("kafka sink: `{key}`: {reason}")]
    Config { key: &'static str, reason: String },

    /// A delivery failed for a reason that may pass (broker down, timeout,
    /// leader change): the runtime re-feeds from the committed offsets.
    #[error("kafka sink: delivery to topic `{target}` of log record {topic}/{partition}@{offset} failed: {source}; nothing after the last reported offset is delivered — the sink retries after a backoff; check that the brokers are reachable")]
    Delivery {
        target: String,
        topic: String,
        partition: u32,
        offset: u64,
        #[source]
        source: Box<KafkaError>,
    },

    /// The brokers refused our credentials or permissions.
    #[error("kafka sink: not authorized to write topic `{target}` (log record {topic}/{partition}@{offset}): {source}; grant the sink's principal WRITE and DESCRIBE on the topic and IDEMPOTENT_WRITE on the cluster, or fix the SASL/TLS settings in the `librdkafka` table")]
    Unauthorized {
        target: String,
        topic: String,
        partition: u32,
        offset: u64,
        #[source]
        source: Box<KafkaError>,
    },

    /// The brokers refused the connection's authentication (SASL, TLS).
    #[error("kafka sink: the brokers refused authentication: {source}; fix the SASL/TLS settings in the sink's `librdkafka` table (security.protocol, sasl.mechanisms, sasl.username, sasl.password, ssl.*)")]
    Authentication {
        #[source]
        source: Box<KafkaError>,
    },

    /// The target topic does not exist and the cluster will not create it.
    #[error("kafka sink: topic `{target}` does not exist (log record {topic}/{partition}@{offset}); create it, enable auto.create.topics.enable on the brokers, or change the sink's `topic` template")]
    UnknownTopic {
        target: String,
        topic: String,
        partition: u32,
        offset: u64,
    },

    /// librdkafka reported a fatal error (the idempotent producer lost its
    /// guarantees); a new producer starts from the committed offsets.
    #[error("kafka sink: fatal producer error: {reason}; the sink restarts its producer from the committed offsets")]
    Fatal { reason: String },
}

impl Classify for KafkaSinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            KafkaSinkError::Client { .. }
            | KafkaSinkError::Config { .. }
            | KafkaSinkError::Unauthorized { .. }
            | KafkaSinkError::Authentication { .. }
            | KafkaSinkError::UnknownTopic { .. } => ErrorKind::WaitForOperator,
            KafkaSinkError::Delivery { .. } | KafkaSinkError::Fatal { .. } => ErrorKind::Retry,
        }
    }
}

/// What a failed delivery means for the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Refused for good (too large, invalid): dead-letter it.
    Permanent,
    /// Needs a person (ACLs, SASL): stop the sink.
    Unauthorized,
    UnknownTopic,
    /// Anything else: retry from the committed offsets.
    Transient,
}

pub fn classify(error: &KafkaError) -> Failure {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::MessageBatchTooLarge
            | C::InvalidRequiredAcks
            | C::PolicyViolation,
        ) => Failure::Permanent,
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication,
        ) => Failure::Unauthorized,
        Some(C::UnknownTopic | C::UnknownTopicOrPartition | C::InvalidTopic) => {
            Failure::UnknownTopic
        }
        _ => Failure::Transient,
    }
}
