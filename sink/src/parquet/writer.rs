//! One open Parquet file per (topic, partition), and when it rolls.
//!
//! A file holds the rows of one table-schema version, in offset order, for
//! one hour of commit time. It is closed and uploaded when it reaches
//! `max_rows` or `max_bytes`, when its first row is `max_age` old, when the
//! next record has another schema version or commit hour, or when every
//! open file together passes `max_buffered_bytes`.
//!
//! Why one open file per partition, rolled on schema change, rather than
//! one open file per schema version: versions only move forward within a
//! partition (an `ALTER TABLE` takes effect for every later change), so a
//! schema change closes one file once and the new version's file grows as
//! usual — no stream of tiny files. Keeping several versions open would
//! hold memory for files that never grow again.
//!
//! Rows are buffered as prepared records and encoded into the Arrow writer
//! in chunks on a blocking thread (encoding and zstd are CPU work); the
//! writer closes a row group at `row_group_bytes`, so memory per open file
//! is the compressed file so far plus at most one row group and one chunk.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use headwater_core::time::{civil_from_days, MICROS_PER_DAY};
use headwater_core::Timestamp;

use super::config::{Compression, ParquetConfig};
use super::encode::{self, Prepared};
use super::error::ParquetError;
use super::schema::{col, Layout};

/// Rows encoded into the Arrow writer at a time.
const CHUNK_ROWS: usize = 8192;
/// …or this many bytes of buffered records.
const CHUNK_BYTES: usize = 8 << 20;

/// The file-rolling and memory limits, from [`ParquetConfig`].
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_rows: u64,
    pub max_bytes: usize,
    pub max_age: std::time::Duration,
    pub row_group_bytes: usize,
    pub max_buffered_bytes: usize,
    pub multipart_threshold: usize,
    pub compression: Compression,
    /// Declared decimals wider than this are exact text.
    pub max_decimal_precision: u32,
}

impl Limits {
    pub fn from_config(c: &ParquetConfig) -> Self {
        let size = |b: u64| usize::try_from(b).unwrap_or(usize::MAX);
        Limits {
            max_rows: c.max_rows,
            max_bytes: size(c.max_bytes.0),
            max_age: c.max_age.0,
            row_group_bytes: size(c.row_group_bytes.0),
            max_buffered_bytes: size(c.max_buffered_bytes.0),
            multipart_threshold: size(c.multipart_threshold.0),
            compression: c.compression,
            max_decimal_precision: c.wide_decimals.max_precision(),
        }
    }

    fn properties(&self, layout: &Layout) -> WriterProperties {
        let compression = match self.compression {
            Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::default()),
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::None => ParquetCompression::UNCOMPRESSED,
        };
        let mut metadata: Vec<KeyValue> = layout
            .metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        metadata.sort_by(|a, b| a.key.cmp(&b.key));
        let mut builder = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_bytes(Some(self.row_group_bytes))
            .set_key_value_metadata(Some(metadata));
        // A dictionary only costs CPU on columns that hold a new value in
        // (nearly) every row: positions, offsets and the table's key.
        let keys = layout
            .key_indexes
            .iter()
            .map(|&i| layout.table.columns[i].name.as_str());
        let unique = [col::POSITION, col::POSITION_ORDER, col::OFFSET]
            .into_iter()
            .map(|name| vec![name.to_owned()])
            .chain(keys.clone().map(|name| vec![name.to_owned()]))
            .chain(keys.map(|name| vec![col::KEY.to_owned(), name.to_owned()]));
        for path in unique {
            builder = builder.set_column_dictionary_enabled(ColumnPath::new(path), false);
        }
        builder.build()
    }
}

/// The `date=…/hour=…` partition of a file, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
}

impl Bucket {
    /// The bucket of a commit time; `None` for no or an infinite time.
    pub fn of(commit_ts: Option<Timestamp>) -> Option<Bucket> {
        match commit_ts {
            Some(Timestamp::Micros(m)) => Some(Self::of_micros(m)),
            _ => None,
        }
    }

    pub fn of_micros(micros: i64) -> Bucket {
        let (year, month, day) = civil_from_days(micros.div_euclid(MICROS_PER_DAY));
        let hour = (micros.rem_euclid(MICROS_PER_DAY) / 3_600_000_000) as u32;
        Bucket {
            year,
            month,
            day,
            hour,
        }
    }

    /// The current hour: the bucket of a file whose first record has no
    /// commit time (snapshot rows from some sources).
    pub fn now() -> Bucket {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self::of_micros(micros)
    }

    pub fn date_part(&self) -> String {
        format!("date={:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    pub fn hour_part(&self) -> String {
        format!("hour={:02}", self.hour)
    }
}

/// The file name for rows `first..=last` of `partition`.
pub fn file_name(partition: u32, first: u64, last: u64) -> String {
    format!("{partition}-{first}-{last}.parquet")
}

/// A file being written.
pub struct OpenFile {
    pub layout: Arc<Layout>,
    /// In a mutex only so the sink stays `Sync` (the Arrow writer is not);
    /// it is reached through `&mut self`, never locked across an await.
    writer: Mutex<Option<WriterState>>,
    /// Bytes of the encoded file plus the open row group, after the last
    /// encode.
    encoded_size: usize,
    pending: Vec<Prepared>,
    pending_bytes: usize,
    /// Bytes of the chunk being encoded, if one is.
    encoding_bytes: usize,
    pub first_offset: u64,
    pub last_offset: u64,
    pub rows: u64,
    pub opened: Instant,
    pub bucket: Bucket,
}

type Writer = ArrowWriter<Vec<u8>>;
type Encoded = (Writer, Result<(), ParquetError>);

/// The Arrow writer, idle or encoding a chunk on a blocking thread: the
/// sink goes on decoding the next chunk meanwhile (two cores at work).
enum WriterState {
    Idle(Box<Writer>),
    Encoding(tokio::task::JoinHandle<Encoded>),
}

/// A closed file, ready to upload.
pub struct Finished {
    pub bytes: Bytes,
    pub first_offset: u64,
    pub last_offset: u64,
    pub rows: u64,
    pub bucket: Bucket,
}

impl OpenFile {
    pub fn new(
        layout: Arc<Layout>,
        first: &Prepared,
        limits: &Limits,
    ) -> Result<Self, ParquetError> {
        let writer = ArrowWriter::try_new(
            Vec::with_capacity(64 << 10),
            layout.arrow.clone(),
            Some(limits.properties(&layout)),
        )
        .map_err(|source| ParquetError::Parquet {
            context: format!("opening a file for {}", layout.table.table),
            source,
        })?;
        Ok(OpenFile {
            layout,
            writer: Mutex::new(Some(WriterState::Idle(Box::new(writer)))),
            encoded_size: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            encoding_bytes: 0,
            first_offset: first.record.offset,
            last_offset: first.record.offset,
            rows: 0,
            opened: Instant::now(),
            bucket: Bucket::of(first.record.event.commit_ts).unwrap_or_else(Bucket::now),
        })
    }

    /// Why `next` cannot join this file, if it cannot.
    pub fn roll_before(&self, next: &Prepared) -> Option<&'static str> {
        if !Arc::ptr_eq(&next.record.event.schema, &self.layout.table)
            && *next.record.event.schema != *self.layout.table
        {
            return Some("schema change");
        }
        match Bucket::of(next.record.event.commit_ts) {
            Some(b) if b != self.bucket => Some("commit hour"),
            _ => None,
        }
    }

    /// Why this file should be closed now, if it should.
    pub fn full(&self, limits: &Limits) -> Option<&'static str> {
        if self.rows >= limits.max_rows {
            Some("rows")
        } else if self.size() >= limits.max_bytes {
            Some("bytes")
        } else {
            None
        }
    }

    pub fn aged(&self, limits: &Limits) -> bool {
        self.opened.elapsed() >= limits.max_age
    }

    /// Bytes this file holds in memory: the encoded file so far, the open
    /// row group, and the records not yet encoded.
    pub fn size(&self) -> usize {
        self.encoded_size + self.pending_bytes + self.encoding_bytes
    }

    /// Adds a row; encodes a chunk when enough are buffered.
    pub async fn push(&mut self, row: Prepared, topic: &str) -> Result<(), ParquetError> {
        self.last_offset = row.record.offset;
        self.rows += 1;
        self.pending_bytes += row.approx_bytes;
        self.pending.push(row);
        if self.pending.len() >= CHUNK_ROWS || self.pending_bytes >= CHUNK_BYTES {
            self.encode_pending(topic).await?;
        }
        Ok(())
    }

    /// Starts encoding the buffered rows, after the previous chunk is done.
    async fn encode_pending(&mut self, topic: &str) -> Result<(), ParquetError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let partition = self.pending[0].record.partition;
        let mut writer = self.idle_writer(topic, partition).await?;
        let rows = std::mem::take(&mut self.pending);
        self.encoding_bytes = std::mem::take(&mut self.pending_bytes);
        let layout = self.layout.clone();
        let encoding = tokio::task::spawn_blocking(move || {
            let result = encode::encode(&layout, &rows)
                .map_err(|source| ParquetError::Arrow {
                    context: format!("encoding rows of {}", layout.table.table),
                    source,
                })
                .and_then(|batch| {
                    writer
                        .write(&batch)
                        .map_err(|source| ParquetError::Parquet {
                            context: format!("writing rows of {}", layout.table.table),
                            source,
                        })
                });
            (writer, result)
        });
        *self.writer_slot() = Some(WriterState::Encoding(encoding));
        Ok(())
    }

    /// The writer, once the chunk it is encoding (if any) is written.
    async fn idle_writer(&mut self, topic: &str, partition: u32) -> Result<Writer, ParquetError> {
        let lost = || ParquetError::Task {
            topic: topic.to_owned(),
            partition,
            reason: "the file's writer was lost by an earlier failure".into(),
        };
        let (writer, result) = match self.writer_slot().take().ok_or_else(lost)? {
            WriterState::Idle(writer) => (*writer, Ok(())),
            WriterState::Encoding(encoding) => encoding.await.map_err(|e| ParquetError::Task {
                topic: topic.to_owned(),
                partition,
                reason: e.to_string(),
            })?,
        };
        result?;
        self.encoding_bytes = 0;
        self.encoded_size = writer.bytes_written() + writer.memory_size();
        Ok(writer)
    }

    fn writer_slot(&mut self) -> &mut Option<WriterState> {
        self.writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes what is left and writes the footer.
    pub async fn finish(mut self, topic: &str, partition: u32) -> Result<Finished, ParquetError> {
        self.encode_pending(topic).await?;
        let writer = self.idle_writer(topic, partition).await?;
        let table = self.layout.table.table.clone();
        let bytes = tokio::task::spawn_blocking(move || writer.into_inner())
            .await
            .map_err(|e| ParquetError::Task {
                topic: topic.to_owned(),
                partition,
                reason: e.to_string(),
            })?
            .map_err(|source| ParquetError::Parquet {
                context: format!("closing a file of {table}"),
                source,
            })?;
        Ok(Finished {
            bytes: Bytes::from(bytes),
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            rows: self.rows,
            bucket: self.bucket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_utc_hours() {
        // 2024-03-01T13:45:00Z
        let micros = 1_709_300_700_000_000;
        let b = Bucket::of_micros(micros);
        assert_eq!(b.date_part(), "date=2024-03-01");
        assert_eq!(b.hour_part(), "hour=13");
        assert_eq!(Bucket::of_micros(-1).date_part(), "date=1969-12-31");
        assert_eq!(Bucket::of(Some(Timestamp::PosInfinity)), None);
        assert_eq!(file_name(3, 10, 99), "3-10-99.parquet");
    }
}
