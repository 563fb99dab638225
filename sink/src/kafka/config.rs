//! `[sinks.NAME]` with `type = "kafka"`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use headwater_core::config::{HumanDuration, Problems};

use headwater_core::TopicTemplate;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// Log topic globs this sink reads (`shop.*`).
    pub topics: Vec<String>,
    /// Target topic per event: `{source}`, `{namespace}`, `{table}` and
    /// `{topic}` (the log topic, which the `route` transform may have set).
    #[serde(default = "default_topic_template")]
    pub topic: String,
    /// Debezium's JSON converter with `schemas.enable=true` (its default):
    /// key and value are `{"schema": …, "payload": …}`. `false` sends the
    /// payload alone.
    #[serde(default = "default_true")]
    pub schemas: bool,
    /// A tombstone (same key, null value) after every delete, for log
    /// compaction (Debezium's `tombstones.on.delete`, default on).
    #[serde(default = "default_true")]
    pub tombstones: bool,
    /// Debezium's `decimal.handling.mode`.
    #[serde(default)]
    pub decimal_handling: DecimalHandling,
    #[serde(default)]
    pub compression: Compression,
    /// librdkafka `linger.ms`: how long a batch may wait to fill.
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
    /// librdkafka `batch.size`: bytes per partition batch.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u32,
    /// librdkafka `message.timeout.ms`: how long a message may wait for
    /// its delivery (broker down included) before the sink fails and the
    /// runtime retries it from the committed offsets.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
    /// The Debezium `source.db` of PostgreSQL events, per source name
    /// (the event does not carry the database name); default: the source
    /// name. MySQL events use their database (the table's namespace).
    #[serde(default)]
    pub databases: BTreeMap<String, String>,
    /// The Debezium `source.server_id` of MySQL events, per source name.
    #[serde(default)]
    pub server_ids: BTreeMap<String, u32>,
    /// Any other librdkafka property (TLS, SASL/SCRAM, …); values may come
    /// from `${VAR}`. Never printed: values of keys that look secret are
    /// redacted in Debug output.
    #[serde(default)]
    pub librdkafka: Librdkafka,
}

/// Debezium's `decimal.handling.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecimalHandling {
    /// Unscaled two's-complement bytes, base64 in JSON, scale in the schema
    /// (`org.apache.kafka.connect.data.Decimal`); a column without a declared
    /// scale uses `io.debezium.data.VariableScaleDecimal`.
    #[default]
    Precise,
    /// The exact decimal text, as a JSON string.
    String,
    /// A JSON number (consumers read it as a double).
    Double,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// librdkafka properties passed through as they are. Values may be TOML
/// strings, integers, floats or booleans.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Librdkafka(pub BTreeMap<String, String>);

/// Keys whose values never print.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "oauthbearer.config",
        "key.pem",
        "token",
    ]
    .iter()
    .any(|s| key.contains(s))
}

impl fmt::Debug for Librdkafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.0 {
            if is_secret_key(k) {
                map.entry(k, &"***");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl<'de> Deserialize<'de> for Librdkafka {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        let raw = BTreeMap::<String, Raw>::deserialize(d)?;
        Ok(Librdkafka(
            raw.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Raw::Text(s) => s,
                        Raw::Int(i) => i.to_string(),
                        Raw::Float(x) => x.to_string(),
                        Raw::Bool(b) => b.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// Properties the sink sets itself: the pass-through table may not change
/// them, because delivery tracking depends on them.
const RESERVED: [&str; 5] = [
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "bootstrap.servers",
    "max.in.flight.requests.per.connection",
];

fn default_topic_template() -> String {
    headwater_core::topic::DEFAULT_TEMPLATE.into()
}
const fn default_true() -> bool {
    true
}
fn default_linger() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(20))
}
const fn default_batch_bytes() -> u32 {
    1 << 20
}
fn default_delivery_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(120))
}

impl KafkaConfig {
    /// A config with every default, for `brokers` and `topics` (tests).
    pub fn new(brokers: impl Into<String>, topics: Vec<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topics,
            topic: default_topic_template(),
            schemas: true,
            tombstones: true,
            decimal_handling: DecimalHandling::default(),
            compression: Compression::default(),
            linger: default_linger(),
            batch_bytes: default_batch_bytes(),
            delivery_timeout: default_delivery_timeout(),
            databases: BTreeMap::new(),
            server_ids: BTreeMap::new(),
            librdkafka: Librdkafka::default(),
        }
    }

    pub fn validate(&self, key: &str, problems: &mut Problems) {
        if self.brokers.trim().is_empty() {
            problems.add(
                format!("{key}.brokers"),
                "is empty; list at least one broker (\"localhost:9092\")",
            );
        }
        if self.topics.is_empty() {
            problems.add(
                format!("{key}.topics"),
                "lists no topic; name at least one (`shop.*`)",
            );
        }
        if let Err(e) = TopicTemplate::parse(&self.topic) {
            problems.add(format!("{key}.topic"), e);
        }
        if self.batch_bytes == 0 {
            problems.add(format!("{key}.batch_bytes"), "must be more than zero");
        }
        if self.delivery_timeout.0.as_millis() < 1_000 {
            problems.add(
                format!("{key}.delivery_timeout"),
                "must be at least 1s (\"2m\")",
            );
        }
        for name in self.librdkafka.0.keys() {
            if RESERVED.contains(&name.as_str()) {
                problems.add(
                    format!("{key}.librdkafka.\"{name}\""),
                    "is set by the sink itself (idempotent producer, acks=all, `brokers`); remove it",
                );
            }
        }
    }

    /// The librdkafka properties of the producer: ours, then the
    /// pass-through table (which validation keeps off ours).
    pub fn client_properties(&self) -> Vec<(String, String)> {
        let ms = |d: &HumanDuration| d.0.as_millis().to_string();
        let mut props: Vec<(String, String)> = vec![
            ("bootstrap.servers".into(), self.brokers.clone()),
            ("enable.idempotence".into(), "true".into()),
            ("acks".into(), "all".into()),
            ("compression.type".into(), self.compression.as_str().into()),
            ("linger.ms".into(), ms(&self.linger)),
            ("batch.size".into(), self.batch_bytes.to_string()),
            ("message.timeout.ms".into(), ms(&self.delivery_timeout)),
            // Java's default partitioner: the same key lands on the same
            // partition as with Debezium / Kafka Connect.
            ("partitioner".into(), "murmur2_random".into()),
        ];
        for (k, v) in &self.librdkafka.0 {
            if RESERVED.contains(&k.as_str()) {
                continue;
            }
            props.retain(|(ours, _)| ours != k);
            props.push((k.clone(), v.clone()));
        }
        props
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_pass_through() {
        let c: KafkaConfig = toml::from_str(
            r#"
            brokers = "localhost:9092"
            topics = ["shop.*"]
            compression = "zstd"
            [librdkafka]
            "security.protocol" = "SASL_SSL"
            "sasl.password" = "hunter2"
            "queue.buffering.max.messages" = 200000
            "#,
        )
        .expect("parses");
        assert!(c.schemas && c.tombstones);
        assert_eq!(c.topic, "{source}.{namespace}.{table}");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SASL_SSL"));
        let props = c.client_properties();
        let get = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
        assert_eq!(get("enable.idempotence"), Some("true"));
        assert_eq!(get("acks"), Some("all"));
        assert_eq!(get("compression.type"), Some("zstd"));
        assert_eq!(get("queue.buffering.max.messages"), Some("200000"));
        let mut problems = Problems::new();
        c.validate("sinks.k", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_sink_entry_of_type_kafka() {
        let c: crate::SinkConfig = toml::from_str(
            r#"
            type = "kafka"
            brokers = "localhost:9092"
            topics = ["shop.*"]
            topic = "cdc.{table}"
            databases = { shop = "shopdb" }
            "#,
        )
        .expect("parses");
        assert_eq!(c.type_name(), "kafka");
        assert_eq!(c.topics(), ["shop.*"]);
        let mut problems = Problems::new();
        c.validate("events", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let unknown = toml::from_str::<crate::SinkConfig>(
            "type = \"kafka\"\nbrokers = \"b:9092\"\ntopics = [\"*\"]\nlinger_ms = 5",
        );
        assert!(unknown.unwrap_err().to_string().contains("linger_ms"));
    }

    #[test]
    fn validation_reports_everything() {
        let mut c = KafkaConfig::new("", vec![]);
        c.topic = "{source}.{nope}".into();
        c.librdkafka.0.insert("acks".into(), "1".into());
        let mut problems = Problems::new();
        c.validate("sinks.k", &mut problems);
        let all: Vec<_> = problems.iter().collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.iter().any(|p| p.contains("{nope}")));
    }
}
