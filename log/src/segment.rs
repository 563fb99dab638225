//! Segment files. The one segment being appended to is a
//! [`WritableSegment`], owned by the writer thread; sealed segments are
//! [`ReadOnlySegment`]s and never change again. Readers see either through
//! a shared [`SegmentView`].

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::batch::{self, BatchHeader};
use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::scan::{scan, ScanEnd};
use crate::sync_pool::SyncTarget;

/// What readers need to find records in a segment.
#[derive(Debug)]
pub struct SegmentView {
    pub base_offset: u64,
    pub path: PathBuf,
    index: RwLock<SegmentIndex>,
    size: AtomicU64,
}

impl SegmentView {
    fn new(base_offset: u64, path: PathBuf, index: SegmentIndex, size: u64) -> Self {
        SegmentView {
            base_offset,
            path,
            index: RwLock::new(index),
            size: AtomicU64::new(size),
        }
    }

    pub fn index(&self) -> RwLockReadGuard<'_, SegmentIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
}

pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The base offset a segment file name encodes.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

pub struct WritableSegment {
    view: Arc<SegmentView>,
    /// Shared with the log's fsync threads.
    file: Arc<File>,
    /// Bytes written and staged; `view.size` counts only the written ones.
    size: u64,
    next_offset: u64,
    /// When the segment was started (wall clock, ms since the epoch): its
    /// age survives reopening, see [`started_ms`].
    started_ms: i64,
    interval: u64,
}

fn system_ms(time: SystemTime) -> Option<i64> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

fn now_ms() -> i64 {
    system_ms(SystemTime::now()).unwrap_or(0)
}

/// When a reopened segment was started: the file's creation (birth) time,
/// which the file system records once and never changes; where the file
/// system or kernel does not report one, the newest timestamp of its first
/// batch (a record time, so at worst the segment rolls at the first append
/// after the restart); an empty segment starts now. Never later than now.
fn started_ms(birth: Option<SystemTime>, first_batch_max_ts: Option<i64>, now_ms: i64) -> i64 {
    birth
        .and_then(system_ms)
        .or(first_batch_max_ts)
        .map_or(now_ms, |ms| ms.min(now_ms))
}

impl WritableSegment {
    /// Creates an empty segment; the caller fsyncs the directory.
    pub fn create(dir: &Path, base: u64, interval: u64) -> Result<Self> {
        let path = segment_path(dir, base);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io("creating segment", &path, e))?;
        Ok(WritableSegment {
            view: Arc::new(SegmentView::new(base, path, SegmentIndex::default(), 0)),
            file: Arc::new(file),
            size: 0,
            next_offset: base,
            started_ms: now_ms(),
            interval,
        })
    }

    /// Reopens the last segment of a partition: checks every batch and, if
    /// `truncate`, cuts a torn or damaged tail (fsynced). Returns the
    /// segment and what was cut, if anything.
    pub fn recover(
        path: &Path,
        base: u64,
        interval: u64,
        truncate: bool,
    ) -> Result<(Self, Option<(ScanEnd, u64)>)> {
        let mut index = SegmentIndex::default();
        let mut first_max_ts = None;
        let end = scan(path, 0, base, |h, pos, _| {
            first_max_ts.get_or_insert(h.max_ts);
            index.on_batch(interval, h, pos);
        })?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| LogError::io("opening segment", path, e))?;
        let metadata = file
            .metadata()
            .map_err(|e| LogError::io("reading size of", path, e))?;
        let len = metadata.len();
        let started_ms = started_ms(metadata.created().ok(), first_max_ts, now_ms());
        let mut cut = None;
        if end.position < len {
            if truncate {
                file.set_len(end.position)
                    .map_err(|e| LogError::io("truncating damaged tail of", path, e))?;
                file.sync_all()
                    .map_err(|e| LogError::io("fsyncing", path, e))?;
            }
            cut = Some((end.clone(), len - end.position));
        } else {
            // What survived a crash may sit only in the page cache.
            file.sync_data()
                .map_err(|e| LogError::io("fsyncing", path, e))?;
        }
        let view = SegmentView::new(base, path.to_owned(), index, end.position);
        let segment = WritableSegment {
            view: Arc::new(view),
            file: Arc::new(file),
            size: end.position,
            next_offset: end.next_offset,
            started_ms,
            interval,
        };
        Ok((segment, cut))
    }

    pub fn view(&self) -> &Arc<SegmentView> {
        &self.view
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Time since the segment was started (zero if the clock went back).
    pub fn age(&self) -> Duration {
        let ms = now_ms().saturating_sub(self.started_ms).max(0);
        Duration::from_millis(ms.unsigned_abs())
    }

    /// Stamps the next offset on an encoded batch and indexes it, to be
    /// written by [`WritableSegment::write`] right after the batches staged
    /// before it. Not durable until [`WritableSegment::sync`].
    pub fn stage(&mut self, bytes: &mut [u8]) -> Result<BatchHeader> {
        batch::set_base_offset(bytes, self.next_offset);
        let header = batch::parse_header(bytes).map_err(|problem| LogError::Corrupt {
            path: self.view.path.clone(),
            offset: self.next_offset,
            position: self.size,
            problem: format!("refusing to write a malformed batch: {problem}"),
        })?;
        if header.length as usize != bytes.len() {
            return Err(LogError::Corrupt {
                path: self.view.path.clone(),
                offset: self.next_offset,
                position: self.size,
                problem: format!(
                    "refusing to write a malformed batch: it says {} bytes, {} present",
                    header.length,
                    bytes.len()
                ),
            });
        }
        self.view
            .index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .on_batch(self.interval, &header, self.size);
        self.size += bytes.len() as u64;
        self.next_offset = header.next_offset();
        Ok(header)
    }

    /// Writes the staged batches, in order, with as few `writev` calls as
    /// the kernel allows (usually one).
    pub fn write(&mut self, batches: &[Vec<u8>]) -> Result<()> {
        const MAX_IOVECS: usize = 1024;
        let mut slices: Vec<IoSlice<'_>> = batches.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = rest.len().min(MAX_IOVECS);
            match (&*self.file).write_vectored(&rest[..n]) {
                Ok(0) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "the file system accepted no bytes",
                    );
                    return Err(LogError::io("appending to segment", &self.view.path, e));
                }
                Ok(written) => IoSlice::advance_slices(&mut rest, written),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LogError::io("appending to segment", &self.view.path, e)),
            }
        }
        let written: u64 = batches.iter().map(|b| b.len() as u64).sum();
        self.view.size.fetch_add(written, Ordering::AcqRel);
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        self.sync_target().sync()
    }

    pub fn sync_target(&self) -> SyncTarget {
        SyncTarget {
            file: self.file.clone(),
            path: self.view.path.clone(),
        }
    }

    /// Makes the segment durable and writes its indexes, before the next
    /// segment is created: a sealed segment never has a torn tail.
    pub fn prepare_seal(&self) -> Result<()> {
        self.sync()?;
        self.view
            .index()
            .write(&self.view.path, self.view.base_offset)
    }

    /// Freezes the segment after [`WritableSegment::prepare_seal`].
    pub fn into_read_only(self) -> ReadOnlySegment {
        let max_ts = self.view.index().max_ts();
        ReadOnlySegment {
            view: self.view,
            end_offset: self.next_offset,
            size: self.size,
            max_ts,
        }
    }
}

/// A read-only look at a partition's last segment (for `headwater log`
/// commands while the daemon may be writing): checks batches, cuts nothing.
pub fn scan_view(path: &Path, base: u64, interval: u64) -> Result<(Arc<SegmentView>, ScanEnd)> {
    let mut index = SegmentIndex::default();
    let end = scan(path, 0, base, |h, pos, _| index.on_batch(interval, h, pos))?;
    let view = SegmentView::new(base, path.to_owned(), index, end.position);
    Ok((Arc::new(view), end))
}

pub struct ReadOnlySegment {
    pub view: Arc<SegmentView>,
    pub end_offset: u64,
    pub size: u64,
    pub max_ts: Option<i64>,
}

impl ReadOnlySegment {
    /// Opens a sealed segment. Its last batches are checked (all of it when
    /// the indexes must be rebuilt); damage is an error unless `skip`.
    pub fn open(path: &Path, base: u64, interval: u64, skip: bool) -> Result<Self> {
        let size = std::fs::metadata(path)
            .map_err(|e| LogError::io("reading size of", path, e))?
            .len();
        let (index, end) = match SegmentIndex::load(path, base, size) {
            Some(index) => {
                let (offset, position) = index
                    .last_entry()
                    .map_or((base, 0), |e| (e.offset, e.position));
                let end = scan(path, position, offset, |_, _, _| {})?;
                (index, end)
            }
            None => {
                let mut index = SegmentIndex::default();
                let end = scan(path, 0, base, |h, pos, _| index.on_batch(interval, h, pos))?;
                if end.damage.is_none() {
                    index.write(path, base)?;
                }
                (index, end)
            }
        };
        if let Some(problem) = &end.damage {
            let error = LogError::Corrupt {
                path: path.to_owned(),
                offset: end.next_offset,
                position: end.position,
                problem: problem.clone(),
            };
            if !skip {
                return Err(error);
            }
            tracing::error!(%error, "skipping the damaged rest of a sealed segment as configured");
        }
        let max_ts = index.max_ts();
        Ok(ReadOnlySegment {
            view: Arc::new(SegmentView::new(base, path.to_owned(), index, size)),
            end_offset: end.next_offset,
            size,
            max_ts,
        })
    }

    pub fn remove_files(&self) -> Result<()> {
        std::fs::remove_file(&self.view.path)
            .map_err(|e| LogError::io("deleting segment", &self.view.path, e))?;
        SegmentIndex::remove_files(&self.view.path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_segment_starts_at_its_birth_time_else_its_first_batch() {
        let birth = UNIX_EPOCH + Duration::from_millis(1_000);
        assert_eq!(started_ms(Some(birth), Some(500), 9_000), 1_000);
        assert_eq!(started_ms(None, Some(500), 9_000), 500);
        assert_eq!(started_ms(None, None, 9_000), 9_000);
        // Never in the future: a skewed clock must not stop rolling.
        assert_eq!(started_ms(None, Some(20_000), 9_000), 9_000);
        assert_eq!(started_ms(Some(birth), None, 800), 800);
    }
}
