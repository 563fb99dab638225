//! Messages/s and MB/s from sink records into librdkafka's mock cluster
//! (one in-process broker, 4 partitions), Debezium JSON with schemas, lz4,
//! idempotent producer, `acks=all`, waiting for every delivery report.
//!
//! `HEADWATER_BENCH_EVENTS=1000000 cargo bench -p headwater-sink --bench kafka_throughput`
//! (default 200,000 events; `HEADWATER_BENCH_SCHEMAS=false` sends the
//! payload without its schema part). The mock broker runs in this process and
//! shares its cores, so this is a floor for a real cluster, not a ceiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_core::{Sink, SinkRecord};
use headwater_sink::kafka::{EncodeOptions, Encoder, KafkaConfig, KafkaSink};
use rdkafka::mocking::MockCluster;

#[path = "kafka_encode.rs"]
#[allow(dead_code)]
mod fixture;

const BATCH: usize = 2_000;

fn main() {
    let total: usize = std::env::var("HEADWATER_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(total));
}

async fn run(total: usize) {
    let mock = MockCluster::new(1).expect("a mock cluster");
    mock.create_topic("bench", 4, 1).expect("the topic");
    let mut config = KafkaConfig::new(mock.bootstrap_servers(), vec!["*".into()]);
    config.topic = "bench".into();
    config.schemas = std::env::var("HEADWATER_BENCH_SCHEMAS").map_or(true, |v| v != "false");
    config
        .librdkafka
        .0
        .insert("queue.buffering.max.messages".into(), "500000".into());
    let mut sink = KafkaSink::new(&config).expect("the sink");

    // One batch of distinct events, re-used with new offsets: building 1M
    // events up front would measure the allocator.
    let template = fixture::events(BATCH);
    let mut encoder = Encoder::new(EncodeOptions::from_config(&config));
    let batch_bytes: usize = template
        .iter()
        .map(|e| {
            encoder.encode(e, 0);
            encoder.value().len() + encoder.key().map_or(0, <[u8]>::len)
        })
        .sum();
    let topic: Arc<str> = "log".into();

    let start = Instant::now();
    let mut offset = 0u64;
    while (offset as usize) < total {
        let n = BATCH.min(total - offset as usize);
        let batch: Vec<SinkRecord> = template[..n]
            .iter()
            .enumerate()
            .map(|(i, e)| SinkRecord {
                topic: topic.clone(),
                partition: 0,
                offset: offset + i as u64,
                event: e.clone(),
            })
            .collect();
        sink.write(batch).await.expect("write");
        offset += n as u64;
        sink.flush(false).await.expect("flush");
        let _ = sink.take_progress();
    }
    let handed_over = start.elapsed().as_secs_f64();
    tokio::time::timeout(Duration::from_secs(600), sink.flush(true))
        .await
        .expect("drained in time")
        .expect("drain");
    let elapsed = start.elapsed().as_secs_f64();
    let durable = sink.take_progress().durable.last().map(|d| d.next_offset);
    assert_eq!(durable, Some(total as u64), "every record delivered");
    let bytes = batch_bytes as f64 * total as f64 / BATCH as f64;
    println!(
        "kafka_throughput (schemas: {}): {total} events in {elapsed:.2}s = {:.0} messages/s, {:.1} MB/s of key+value ({:.0} B/message); all handed to librdkafka after {handed_over:.2}s",
        config.schemas,
        total as f64 / elapsed,
        bytes / elapsed / 1e6,
        batch_bytes as f64 / BATCH as f64
    );
}
