//! Reading an archive back: `headwater replay`.
//!
//! [`read_archive`] lists `{topic}/date=…/hour=…/{partition}-{first}-{last}.parquet`
//! under the URL, keeps the topics matching the globs and the hours
//! overlapping `[since, until)`, and streams the change events back, per
//! topic and partition in offset order. Each file carries its
//! `TableSchema` (key-value metadata), so the events are exactly the ones
//! archived. Rows repeated by overlapping files (a redelivery cut at other
//! offsets) come out once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
// `ParquetObjectReader` is deprecated in parquet 60 in favour of a
// hand-written `AsyncFileReader`; it still works, and replacing it is
// tracked for when parquet ships the replacement's helpers.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStream};
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use headwater_core::config::glob_match;
use headwater_core::time::{days_from_civil, MICROS_PER_DAY};
use headwater_core::{SinkRecord, TableSchema, Timestamp};

use super::decode::decode;
use super::error::ParquetError;
use super::schema::{from_hex, Layout, SCHEMA_METADATA_KEY};
use super::store::{Archive, StoreOptions};

const HOUR_MICROS: i64 = 3_600_000_000;

/// Which part of an archive to read.
#[derive(Clone, Debug, Default)]
pub struct ArchiveFilter {
    /// Topic globs (`shop.*`); empty reads every topic.
    pub topics: Vec<String>,
    /// Events committed at or after this instant (UTC µs)…
    pub since: Option<Timestamp>,
    /// …and before this one. Events without a commit time are judged by
    /// the hour of the file that holds them.
    pub until: Option<Timestamp>,
}

impl ArchiveFilter {
    fn wants_topic(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|g| glob_match(g, topic))
    }

    fn wants_instant(&self, micros: i64) -> bool {
        self.since.is_none_or(|s| micros >= as_micros(s))
            && self.until.is_none_or(|u| micros < as_micros(u))
    }

    fn wants_hour(&self, start: i64) -> bool {
        self.since
            .is_none_or(|s| start.saturating_add(HOUR_MICROS) > as_micros(s))
            && self.until.is_none_or(|u| start < as_micros(u))
    }
}

fn as_micros(t: Timestamp) -> i64 {
    match t {
        Timestamp::Micros(m) => m,
        Timestamp::PosInfinity => i64::MAX,
        Timestamp::NegInfinity => i64::MIN,
    }
}

/// One archive file, from its path.
#[derive(Clone, Debug)]
struct FileRef {
    path: Path,
    size: u64,
    topic: Arc<str>,
    hour_start: i64,
    partition: u32,
    first: u64,
    last: u64,
}

/// Parses `{topic}/date=YYYY-MM-DD/hour=HH/{p}-{first}-{last}.parquet`.
fn parse_path(archive: &Archive, path: &Path, size: u64) -> Option<FileRef> {
    let parts: Vec<String> = path
        .prefix_match(&archive.prefix)?
        .map(|p| p.as_ref().to_owned())
        .collect();
    let [topic, date, hour, name] = parts.as_slice() else {
        return None;
    };
    let topic = percent_decode(topic);
    let date = date.strip_prefix("date=")?;
    let mut ymd = date.rsplitn(3, '-');
    let day: u32 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let year: i64 = ymd.next()?.parse().ok()?;
    let hour: i64 = hour.strip_prefix("hour=")?.parse().ok()?;
    let hour_start = days_from_civil(year, month, day)
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(hour.checked_mul(HOUR_MICROS)?)?;
    let stem = name.strip_suffix(".parquet")?;
    let mut nums = stem.splitn(3, '-');
    let partition = nums.next()?.parse().ok()?;
    let first = nums.next()?.parse().ok()?;
    let last = nums.next()?.parse().ok()?;
    Some(FileRef {
        path: path.clone(),
        size,
        topic: topic.into(),
        hour_start,
        partition,
        first,
        last,
    })
}

/// Object-store path segments percent-encode characters they cannot hold.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the archive at `url` back as change events.
pub async fn read_archive(
    url: &str,
    options: &StoreOptions,
    filter: ArchiveFilter,
) -> Result<BoxStream<'static, Result<SinkRecord, ParquetError>>, ParquetError> {
    let archive = Archive::open(url, options).await?;
    read_from(archive, filter).await
}

/// [`read_archive`] on an [`Archive`] already opened.
pub async fn read_from(
    archive: Archive,
    filter: ArchiveFilter,
) -> Result<BoxStream<'static, Result<SinkRecord, ParquetError>>, ParquetError> {
    let listing: Vec<_> = archive
        .store
        .list(Some(&archive.prefix))
        .try_collect()
        .await
        .map_err(|source| ParquetError::Read {
            store: archive.url.clone(),
            object: archive.prefix.to_string(),
            source,
        })?;
    let mut files: Vec<FileRef> = listing
        .iter()
        .filter_map(|meta| parse_path(&archive, &meta.location, meta.size))
        .filter(|f| filter.wants_topic(&f.topic) && filter.wants_hour(f.hour_start))
        .collect();
    files.sort_by(|a, b| {
        (&a.topic, a.partition, a.first, std::cmp::Reverse(a.last)).cmp(&(
            &b.topic,
            b.partition,
            b.first,
            std::cmp::Reverse(b.last),
        ))
    });
    let state = ReadState {
        archive,
        filter,
        files: files.into(),
        current: None,
        next_offset: HashMap::new(),
        ready: VecDeque::new(),
    };
    Ok(futures::stream::try_unfold(state, |mut st| async move {
        loop {
            if let Some(record) = st.ready.pop_front() {
                return Ok(Some((record, st)));
            }
            if !st.advance().await? {
                return Ok(None);
            }
        }
    })
    .boxed())
}

#[allow(deprecated)]
struct Current {
    file: FileRef,
    layout: Layout,
    batches: ParquetRecordBatchStream<ParquetObjectReader>,
}

struct ReadState {
    archive: Archive,
    filter: ArchiveFilter,
    files: VecDeque<FileRef>,
    current: Option<Current>,
    /// Per (topic, partition): the offset after the last one emitted.
    next_offset: HashMap<(Arc<str>, u32), u64>,
    ready: VecDeque<SinkRecord>,
}

impl ReadState {
    /// Reads the next batch (opening the next file when needed); `false`
    /// at the end of the archive.
    async fn advance(&mut self) -> Result<bool, ParquetError> {
        if let Some(current) = &mut self.current {
            match current.batches.next().await {
                Some(Ok(batch)) => {
                    let records = match decode(&current.layout, &current.file.topic, &batch) {
                        Ok(records) => records,
                        Err(reason) => {
                            let path = current.file.path.clone();
                            return Err(self.corrupt(&path, reason));
                        }
                    };
                    let hour_ok = self.filter.wants_hour(current.file.hour_start);
                    for record in records {
                        let key = (record.topic.clone(), record.partition);
                        let next = self.next_offset.entry(key).or_insert(0);
                        if record.offset < *next {
                            continue;
                        }
                        *next = record.offset + 1;
                        let wanted = match record.event.commit_ts {
                            Some(t) => self.filter.wants_instant(as_micros(t)),
                            None => hour_ok,
                        };
                        if wanted {
                            self.ready.push_back(record);
                        }
                    }
                    return Ok(true);
                }
                Some(Err(source)) => {
                    return Err(ParquetError::Parquet {
                        context: format!("reading {}", current.file.path),
                        source,
                    })
                }
                None => {
                    self.current = None;
                    return Ok(true);
                }
            }
        }
        let Some(file) = self.files.pop_front() else {
            return Ok(false);
        };
        let done = self
            .next_offset
            .get(&(file.topic.clone(), file.partition))
            .is_some_and(|next| file.last < *next);
        if done {
            return Ok(true);
        }
        let archive = self.archive.clone();
        self.current = Some(open(archive, file).await?);
        Ok(true)
    }

    fn corrupt(&self, path: &Path, reason: String) -> ParquetError {
        corrupt(&self.archive, path, reason)
    }
}

fn corrupt(archive: &Archive, path: &Path, reason: String) -> ParquetError {
    ParquetError::Corrupt {
        object: format!("{}/{path}", archive.url.trim_end_matches('/')),
        reason,
    }
}

/// Opens one file: its schema from the metadata, then a batch stream.
#[allow(deprecated)]
async fn open(archive: Archive, file: FileRef) -> Result<Current, ParquetError> {
    let reader = ParquetObjectReader::new(archive.store.clone(), file.path.clone())
        .with_file_size(file.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|source| ParquetError::Parquet {
            context: format!("opening {}", file.path),
            source,
        })?;
    let hex = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == SCHEMA_METADATA_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| {
            corrupt(
                &archive,
                &file.path,
                format!("no `{SCHEMA_METADATA_KEY}` metadata"),
            )
        })?;
    let bytes = from_hex(&hex).ok_or_else(|| {
        corrupt(
            &archive,
            &file.path,
            "the schema metadata is not hex".into(),
        )
    })?;
    let schema: TableSchema = headwater_core::codec::decode_schema(&bytes)
        .map_err(|e| corrupt(&archive, &file.path, e.to_string()))?;
    let layout = Layout::new(Arc::new(schema)).map_err(|e| corrupt(&archive, &file.path, e))?;
    let batches =
        builder
            .with_batch_size(1024)
            .build()
            .map_err(|source| ParquetError::Parquet {
                context: format!("reading {}", file.path),
                source,
            })?;
    Ok(Current {
        file,
        layout,
        batches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("shop.public.t"), "shop.public.t");
        assert_eq!(percent_decode("50%"), "50%");
    }

    #[test]
    fn hour_filter() {
        let f = ArchiveFilter {
            topics: vec![],
            since: Some(Timestamp::Micros(2 * HOUR_MICROS + 5)),
            until: Some(Timestamp::Micros(4 * HOUR_MICROS)),
        };
        assert!(!f.wants_hour(HOUR_MICROS));
        assert!(f.wants_hour(2 * HOUR_MICROS));
        assert!(f.wants_hour(3 * HOUR_MICROS));
        assert!(!f.wants_hour(4 * HOUR_MICROS));
    }
}
