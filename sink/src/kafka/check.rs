//! `headwater check` for a Kafka sink: broker metadata and topic access.

use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::types::RDKafkaRespErr;

use headwater_core::Finding;

use super::error::{classify, Failure};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches cluster metadata (blocking; run it off the async runtime).
pub fn probe<C: ClientContext>(
    client: &Client<C>,
    brokers: &str,
    fixed_topic: Option<&str>,
) -> Vec<Finding> {
    let metadata = match client.fetch_metadata(None, METADATA_TIMEOUT) {
        Ok(m) => m,
        Err(e) => {
            let fix = match classify(&e) {
                Failure::Unauthorized => {
                    "check the SASL/TLS settings in the sink's `librdkafka` table"
                }
                _ => "check `brokers` and that the brokers are reachable from this host",
            };
            return vec![Finding::fail(format!(
                "kafka sink: no metadata from `{brokers}` within {}s: {e}; {fix}",
                METADATA_TIMEOUT.as_secs()
            ))];
        }
    };
    let mut findings = Vec::new();
    let list: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}={}:{}", b.id(), b.host(), b.port()))
        .collect();
    findings.push(Finding::ok(format!(
        "kafka sink: connected to `{brokers}`: {} broker(s) [{}], {} topic(s) visible",
        list.len(),
        list.join(", "),
        metadata.topics().len()
    )));
    let denied: Vec<&str> = metadata
        .topics()
        .iter()
        .filter(|t| {
            t.error().is_some_and(|e| {
                matches!(
                    RDKafkaErrorCode::from(e),
                    RDKafkaErrorCode::TopicAuthorizationFailed
                )
            })
        })
        .map(|t| t.name())
        .collect();
    if !denied.is_empty() {
        findings.push(Finding::warn(format!(
            "kafka sink: not authorized to describe topic(s) {}; grant the sink's principal DESCRIBE and WRITE on the topics it writes",
            denied.join(", ")
        )));
    }
    if let Some(topic) = fixed_topic {
        match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() => findings.push(Finding::ok(format!(
                "kafka sink: topic `{topic}` exists with {} partition(s)",
                t.partitions().len()
            ))),
            Some(t) => findings.push(Finding::fail(format!(
                "kafka sink: topic `{topic}`: {}; grant the sink's principal WRITE and DESCRIBE on it",
                RDKafkaErrorCode::from(t.error().unwrap_or(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN))
            ))),
            None => findings.push(Finding::warn(format!(
                "kafka sink: topic `{topic}` does not exist; create it or enable auto.create.topics.enable on the brokers"
            ))),
        }
    } else {
        findings.push(Finding::ok(
            "kafka sink: target topics come from the `topic` template; they must exist or the brokers must create them (auto.create.topics.enable)",
        ));
    }
    findings
}
