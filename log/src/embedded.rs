//! The embedded [`Log`] as an [`EventLog`]: its batches, receipts and
//! readers behind the trait, file reads moved off the runtime's threads.

use std::any::Any;

use async_trait::async_trait;
use headwater_core::Position;

use crate::append_batch::{AppendBatch, BatchTopic};
use crate::batch::LogRecord;
use crate::error::{LogError, Result};
use crate::event_log::{EventLog, LogBatch, LogReader, PartitionOffsets, Receipt};
use crate::log::{Log, TopicInfo};
use crate::newest::newest_of;
use crate::reader::Reader;

#[async_trait]
impl EventLog for Log {
    fn batch(&self) -> Box<dyn LogBatch> {
        Box::new(Log::batch(self))
    }

    async fn append(&self, batch: Box<dyn LogBatch>) -> Result<Receipt> {
        let batch = batch
            .into_any()
            .downcast::<AppendBatch>()
            .map_err(|_| LogError::ForeignBatch)?;
        let receipt = self.append_batch(*batch).await?;
        Ok(Receipt::new(receipt.len(), receipt.durable_batches()))
    }

    async fn flush(&self) -> Result<()> {
        Log::flush(self).await
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        Ok(Log::topics(self))
    }

    async fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets> {
        let part = self.shared().partition(topic, partition)?;
        Ok(PartitionOffsets {
            log_start: part.log_start(),
            high_watermark: part.high_watermark(),
        })
    }

    async fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn LogReader>> {
        Ok(Box::new(Log::reader(self, topic, partition, from)?))
    }

    async fn offset_for_timestamp(&self, topic: &str, partition: u32, ts_ms: i64) -> Result<u64> {
        let part = self.shared().partition(topic, partition)?;
        let skip = self.config().skip_damaged_segments;
        blocking(move || crate::reader::offset_for_timestamp(&part, ts_ms, skip)).await
    }

    async fn newest_of_source(
        &self,
        topic: &str,
        partition: u32,
        source: &str,
    ) -> Result<Option<Position>> {
        let part = self.shared().partition(topic, partition)?;
        let skip = self.config().skip_damaged_segments;
        let source = source.to_owned();
        blocking(move || newest_of(&part, skip, &source)).await
    }

    async fn register_consumer(&self, consumer: &str, topic: &str) -> Result<()> {
        Log::register_consumer(self, consumer, topic).await
    }

    async fn committed_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<u64>> {
        Ok(Log::committed_offset(self, consumer, topic, partition))
    }

    async fn commit_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
        next_offset: u64,
    ) -> Result<()> {
        Log::commit_offset(self, consumer, topic, partition, next_offset).await
    }
}

impl LogBatch for AppendBatch {
    fn len(&self) -> usize {
        AppendBatch::len(self)
    }

    fn topic(&mut self, topic: &str) -> Result<BatchTopic> {
        AppendBatch::topic(self, topic)
    }

    fn partitions(&self, topic: BatchTopic) -> Result<u32> {
        AppendBatch::partitions(self, topic)
    }

    fn push(&mut self, topic: &str, key: &[u8], value: &[u8], timestamp_ms: i64) -> Result<()> {
        AppendBatch::push(self, topic, key, value, timestamp_ms)
    }

    fn push_encoded(
        &mut self,
        topic: BatchTopic,
        timestamp_ms: i64,
        key: &mut dyn FnMut(&mut Vec<u8>),
        value: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Result<()> {
        self.push_with_to(topic, timestamp_ms, key, value)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

#[async_trait]
impl LogReader for Reader {
    fn topic(&self) -> &str {
        Reader::topic(self)
    }

    fn partition(&self) -> u32 {
        Reader::partition(self)
    }

    fn position(&self) -> u64 {
        Reader::position(self)
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        Reader::next_batch(self, max).await
    }

    async fn read_available(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        Reader::read_available(self, max).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Poisoned {
            reason: format!("a blocking log task failed: {e}"),
        })?
}
