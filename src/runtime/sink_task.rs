//! One sink fed from the log: a reader per subscribed topic partition,
//! from the sink's committed offsets, into the sink; offsets committed
//! only from the sink's delivery reports.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use headwater_core::codec::{decode_event, encode_event, encode_key};
use headwater_core::config::glob_match;
use headwater_core::topic::{dead_letter_topic, DEAD_LETTER_PREFIX};
use headwater_core::{Error, Header, Progress, Result, SchemaRegistry, Sink, SinkRecord};
use headwater_log::events::now_ms;
use headwater_log::{EventLog, LogReader, LogRecord};

use crate::metrics::{
    Metrics, LOG_END_OFFSET, SINK_COMMITTED_OFFSET, SINK_EVENTS, SINK_LAG_RECORDS,
    SINK_LAG_SECONDS, SINK_REJECTED,
};

pub type SinkFactory = Arc<dyn Fn() -> BoxFuture<'static, Result<Box<dyn Sink>>> + Send + Sync>;

/// Records read per partition per batch.
const READ_BATCH: usize = 2_000;

/// The shortest time between two settles outside the tick.
const MIN_SETTLE: Duration = Duration::from_millis(200);

pub struct SinkTask {
    pub name: String,
    pub topics: Vec<String>,
    pub log: Arc<dyn EventLog>,
    pub schemas: Arc<SchemaRegistry>,
    pub metrics: Arc<Metrics>,
    pub factory: SinkFactory,
    /// How often the sink may finish time-driven work and report progress.
    pub tick: Duration,
}

struct ReadBatch {
    topic: Arc<str>,
    partition: u32,
    records: Result<Vec<LogRecord>>,
}

/// First offset, last offset and timestamp of each batch handed to the
/// sink and not committed yet, per partition: the sink's lag in seconds.
#[derive(Default)]
struct Lag(BTreeMap<(Arc<str>, u32), VecDeque<BatchSpan>>);

/// First offset, last offset, first record's timestamp (ms).
type BatchSpan = (u64, u64, i64);

fn log_error(context: String) -> impl FnOnce(headwater_log::LogError) -> Error {
    move |e| Error::component(context, e)
}

impl SinkTask {
    fn wants(&self, topic: &str) -> bool {
        !topic.starts_with(DEAD_LETTER_PREFIX) && self.topics.iter().any(|g| glob_match(g, topic))
    }

    /// One attempt: feed the sink from the committed offsets until shutdown
    /// (then drain it) or an error (then the supervisor starts over, with a
    /// new sink, from the committed offsets).
    pub async fn run_once(&self, shutdown: &CancellationToken) -> Result<()> {
        let mut sink = (self.factory)().await?;
        let readers = CancellationToken::new();
        let _stop_readers = readers.clone().drop_guard();
        let (tx, mut rx) = mpsc::channel::<ReadBatch>(16);
        let mut subscribed = HashSet::new();
        let mut lag = Lag::default();
        self.subscribe(&mut subscribed, &tx, &readers).await?;
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut settled = Instant::now();
        loop {
            // The tick comes before the records: a sink slower than its
            // readers always has records waiting, and must still commit
            // what it delivered while it catches up.
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    sink.flush(false).await?;
                    self.settle(&mut *sink, &mut lag).await?;
                    settled = Instant::now();
                    self.subscribe(&mut subscribed, &tx, &readers).await?;
                    self.report_lag(&subscribed, &lag).await;
                }
                Some(batch) = rx.recv() => {
                    self.deliver(&mut *sink, batch, &mut lag).await?;
                    // What a write finished (a file uploaded, delivery
                    // reports in) is committed soon, not only on the tick,
                    // at most every MIN_SETTLE (each commit is an fsync).
                    if settled.elapsed() >= MIN_SETTLE.min(self.tick) {
                        self.settle(&mut *sink, &mut lag).await?;
                        settled = Instant::now();
                    }
                }
            }
        }
        readers.cancel();
        while let Ok(batch) = rx.try_recv() {
            self.deliver(&mut *sink, batch, &mut lag).await?;
        }
        sink.flush(true).await?;
        self.settle(&mut *sink, &mut lag).await?;
        self.report_lag(&subscribed, &lag).await;
        Ok(())
    }

    /// Starts a reader for every partition of every matching topic not
    /// read yet (topics appear when a source first appends to them).
    async fn subscribe(
        &self,
        subscribed: &mut HashSet<(Arc<str>, u32)>,
        tx: &mpsc::Sender<ReadBatch>,
        stop: &CancellationToken,
    ) -> Result<()> {
        let topics = self.log.topics().await.map_err(log_error(format!(
            "sink `{}` listing the log's topics",
            self.name
        )))?;
        for topic in topics {
            if !self.wants(&topic.name) {
                continue;
            }
            let name: Arc<str> = topic.name.as_str().into();
            if (0..topic.partitions).all(|p| subscribed.contains(&(name.clone(), p))) {
                continue;
            }
            self.log
                .register_consumer(&self.name, &topic.name)
                .await
                .map_err(log_error(format!(
                    "sink `{}` subscribing to {}",
                    self.name, topic.name
                )))?;
            for partition in 0..topic.partitions {
                if !subscribed.insert((name.clone(), partition)) {
                    continue;
                }
                let reading = || format!("sink `{}` reading {}/{partition}", self.name, topic.name);
                let start = self
                    .log
                    .offsets(&topic.name, partition)
                    .await
                    .map_err(log_error(reading()))?
                    .log_start;
                let committed = self
                    .log
                    .committed_offset(&self.name, &topic.name, partition)
                    .await
                    .map_err(log_error(reading()))?;
                let from = match committed {
                    Some(committed) if committed >= start => committed,
                    Some(committed) => {
                        tracing::warn!(sink = %self.name, topic = %topic.name, partition, committed, start,
                            "retention deleted records this sink had not delivered (allow_uncommitted_deletes); continuing from the oldest kept");
                        start
                    }
                    None => start,
                };
                tracing::info!(sink = %self.name, topic = %topic.name, partition, from, "reading");
                let reader = self
                    .log
                    .reader(&topic.name, partition, from)
                    .await
                    .map_err(log_error(reading()))?;
                tokio::spawn(read_partition(
                    reader,
                    name.clone(),
                    tx.clone(),
                    stop.clone(),
                ));
            }
        }
        Ok(())
    }

    async fn deliver(&self, sink: &mut dyn Sink, batch: ReadBatch, lag: &mut Lag) -> Result<()> {
        let records = batch.records?;
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        lag.0
            .entry((batch.topic.clone(), batch.partition))
            .or_default()
            .push_back((first.offset, last.offset, first.timestamp_ms));
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let event = decode_event(&r.value, |id| self.schemas.get(id)).map_err(|e| {
                Error::decode(
                    "a log record",
                    format!(
                        "{}/{} offset {}: {e}; run `headwater log verify`",
                        batch.topic, batch.partition, r.offset
                    ),
                )
            })?;
            out.push(SinkRecord {
                topic: batch.topic.clone(),
                partition: batch.partition,
                offset: r.offset,
                event,
            });
        }
        self.metrics.add(
            SINK_EVENTS,
            &[("sink", &self.name), ("topic", &batch.topic)],
            out.len() as u64,
        );
        sink.write(out).await
    }

    /// Sends rejected records to the dead-letter topic (durably), then
    /// commits what the sink reported delivered.
    async fn settle(&self, sink: &mut dyn Sink, lag: &mut Lag) -> Result<()> {
        let Progress { durable, rejected } = sink.take_progress();
        if !rejected.is_empty() {
            let dlq = dead_letter_topic(&self.name);
            let now_ms = now_ms();
            let writing = || log_error(format!("sink `{}` writing to {dlq}", self.name));
            let mut records = self.log.batch();
            for r in &rejected {
                tracing::warn!(sink = %self.name, topic = %r.record.topic, partition = r.record.partition,
                    offset = r.record.offset, reason = %r.reason, topic_dlq = %dlq, "record rejected; sent to the dead-letter topic");
                let mut event = r.record.event.clone();
                for (name, value) in [
                    ("headwater.dlq.reason", r.reason.clone()),
                    ("headwater.dlq.topic", r.record.topic.to_string()),
                    ("headwater.dlq.partition", r.record.partition.to_string()),
                    ("headwater.dlq.offset", r.record.offset.to_string()),
                ] {
                    event.headers.push(Header {
                        name: name.into(),
                        value: value.into_bytes(),
                    });
                }
                let mut key = Vec::new();
                encode_key(&event.key, &mut key);
                let mut value = Vec::new();
                encode_event(&event, &mut value);
                records
                    .push(&dlq, &key, &value, now_ms)
                    .map_err(writing())?;
            }
            self.log
                .append(records)
                .await
                .map_err(writing())?
                .durable()
                .await
                .map_err(writing())?;
            self.metrics.add(
                SINK_REJECTED,
                &[("sink", &self.name)],
                rejected.len() as u64,
            );
        }
        for d in durable {
            let committing = || {
                log_error(format!(
                    "sink `{}` committing {}/{}",
                    self.name, d.topic, d.partition
                ))
            };
            let committed = self
                .log
                .committed_offset(&self.name, &d.topic, d.partition)
                .await
                .map_err(committing())?
                .unwrap_or(0);
            if d.next_offset <= committed {
                continue;
            }
            self.log
                .commit_offset(&self.name, &d.topic, d.partition, d.next_offset)
                .await
                .map_err(committing())?;
            if let Some(batches) = lag.0.get_mut(&(d.topic.clone(), d.partition)) {
                while batches
                    .front()
                    .is_some_and(|&(_, last, _)| last < d.next_offset)
                {
                    batches.pop_front();
                }
            }
        }
        Ok(())
    }

    /// Lag is a metric: a log that cannot tell its offsets right now
    /// leaves the gauges as they were.
    async fn report_lag(&self, subscribed: &HashSet<(Arc<str>, u32)>, lag: &Lag) {
        let now_ms = now_ms();
        for (topic, partition) in subscribed {
            let p = partition.to_string();
            let labels = [
                ("sink", self.name.as_str()),
                ("topic", topic),
                ("partition", p.as_str()),
            ];
            let (Ok(offsets), Ok(committed)) = (
                self.log.offsets(topic, *partition).await,
                self.log
                    .committed_offset(&self.name, topic, *partition)
                    .await,
            ) else {
                continue;
            };
            let (end, committed) = (offsets.high_watermark, committed.unwrap_or(0));
            self.metrics.set(LOG_END_OFFSET, &labels[1..], end as f64);
            self.metrics
                .set(SINK_COMMITTED_OFFSET, &labels, committed as f64);
            self.metrics.set(
                SINK_LAG_RECORDS,
                &labels,
                end.saturating_sub(committed) as f64,
            );
            let oldest = lag
                .0
                .get(&(topic.clone(), *partition))
                .and_then(|b| b.front());
            let seconds = oldest.map_or(0.0, |&(_, _, ts)| (now_ms - ts).max(0) as f64 / 1000.0);
            self.metrics.set(SINK_LAG_SECONDS, &labels, seconds);
        }
    }
}

async fn read_partition(
    mut reader: Box<dyn LogReader>,
    topic: Arc<str>,
    tx: mpsc::Sender<ReadBatch>,
    stop: CancellationToken,
) {
    let partition = reader.partition();
    loop {
        let records = tokio::select! {
            () = stop.cancelled() => return,
            records = reader.next_batch(READ_BATCH) => records,
        };
        let failed = records.is_err();
        let records = records.map_err(|e| {
            Error::component(
                format!("reading {topic}/{partition} at {}", reader.position()),
                e,
            )
        });
        let batch = ReadBatch {
            topic: topic.clone(),
            partition,
            records,
        };
        tokio::select! {
            () = stop.cancelled() => return,
            sent = tx.send(batch) => if sent.is_err() || failed { return },
        }
    }
}
