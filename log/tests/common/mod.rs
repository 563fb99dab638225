#![allow(clippy::unwrap_used)] // tests and their helpers may panic
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use headwater_core::config::{ByteSize, HumanDuration};
use headwater_log::{Log, LogConfig, LogRecord, Record};

pub fn config(partitions: u32) -> LogConfig {
    LogConfig {
        partitions,
        retention: None,
        segment_bytes: ByteSize(4096),
        segment_age: HumanDuration(Duration::from_secs(3600)),
        index_interval_bytes: ByteSize(256),
        ..LogConfig::default()
    }
}

pub fn record(key: &str, value: &str, ts: i64) -> Record {
    Record {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        timestamp_ms: ts,
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Appends one record to `topic` and waits until it is durable.
pub fn append_one(rt: &tokio::runtime::Runtime, log: &Log, topic: &str, record: Record) {
    rt.block_on(async {
        log.append(vec![(topic.to_owned(), record)])
            .await
            .unwrap()
            .durable()
            .await
            .unwrap()
    });
}

/// Everything durable in a partition, from `from`.
pub fn read_all(log: &Log, topic: &str, partition: u32, from: u64) -> Vec<LogRecord> {
    let mut reader = log.reader(topic, partition, from).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = reader.read_now(1000).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

pub fn open(dir: &Path, config: LogConfig) -> Arc<Log> {
    Log::open(dir, config).unwrap()
}
