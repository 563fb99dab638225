//! Kafka: every change event as a Debezium-compatible JSON message, through
//! an idempotent producer (`acks=all`), offsets reported only after delivery.
//!
//! - [`config`]: `[sinks.NAME]` with `type = "kafka"`.
//! - [`topic`]: the target topic template.
//! - [`encode`] (with [`json`] and [`schema`]): key and Debezium envelope.
//! - [`sink`]: the producer and delivery reports; [`delivery`]: the
//!   contiguous "durable through" per log partition.
//! - [`check`]: broker metadata and topic access for `headwater check`.

pub mod check;
pub mod config;
pub mod delivery;
pub mod encode;
pub mod error;
pub mod json;
mod kind;
pub mod schema;
pub mod sink;
#[doc(hidden)]
pub mod testing;

pub use config::KafkaConfig;
pub use encode::{EncodeOptions, Encoder};
pub use error::KafkaSinkError;
pub use sink::KafkaSink;
