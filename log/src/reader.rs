//! Reading a partition from an offset, and tailing it.
//!
//! A reader sees only durable records (below the high-water mark). When it
//! has read everything, [`Reader::next_batch`] waits on the partition's
//! high-water-mark watch, which the writer moves after each fsync: no
//! polling. File reads run in `spawn_blocking`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::batch::{self, LogRecord};
use crate::error::{LogError, Result};
use crate::segment::SegmentView;
use crate::topic::PartitionShared;

pub struct Reader {
    state: ReadState,
    hwm: watch::Receiver<u64>,
}

impl Reader {
    pub(crate) fn new(part: Arc<PartitionShared>, from: u64, skip_damaged: bool) -> Self {
        Reader {
            hwm: part.watch(),
            state: ReadState {
                part,
                position: from,
                cursor: None,
                skip_damaged,
            },
        }
    }

    /// The offset of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.state.position
    }

    pub fn topic(&self) -> &str {
        &self.state.part.topic
    }

    pub fn partition(&self) -> u32 {
        self.state.part.partition
    }

    /// Up to `max` records from the current position, waiting for appends
    /// when there are none yet. Cancel-safe: dropping the future loses no
    /// position.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        loop {
            let hwm = *self.hwm.borrow_and_update();
            if self.state.position < hwm {
                let records = self.read_blocking(hwm, max).await?;
                if !records.is_empty() || self.state.position < hwm {
                    return Ok(records);
                }
            }
            self.hwm.changed().await.map_err(|_| LogError::Closed)?;
        }
    }

    /// Up to `max` durable records, without waiting for appends: empty at
    /// the high-water mark. File reads run in `spawn_blocking`.
    pub async fn read_available(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        let hwm = *self.hwm.borrow();
        if self.state.position >= hwm {
            return Ok(Vec::new());
        }
        self.read_blocking(hwm, max).await
    }

    /// Up to `max` records below `hwm`, read on a blocking thread.
    async fn read_blocking(&mut self, hwm: u64, max: usize) -> Result<Vec<LogRecord>> {
        let mut state = self.state.detach();
        let (state, result) = tokio::task::spawn_blocking(move || {
            let result = state.read(hwm, max.max(1));
            (state, result)
        })
        .await
        .map_err(|e| LogError::Poisoned {
            reason: format!("a read task failed: {e}"),
        })?;
        self.state = state;
        result
    }

    /// Up to `max` durable records, without waiting: empty at the end.
    /// Blocks on file reads (for tools and benchmarks, not async code).
    pub fn read_now(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        let hwm = *self.hwm.borrow();
        self.state.read(hwm, max.max(1))
    }
}

struct Cursor {
    view: Arc<SegmentView>,
    file: File,
    next_base: Option<u64>,
    /// Where the batch starting at `batch_offset` is in the file.
    file_pos: u64,
    batch_offset: u64,
}

struct ReadState {
    part: Arc<PartitionShared>,
    position: u64,
    cursor: Option<Cursor>,
    skip_damaged: bool,
}

enum Step {
    Continue,
    Done,
}

impl ReadState {
    /// Moves the state out (to a blocking task) leaving a placeholder that
    /// still knows the position, in case the task's future is dropped.
    fn detach(&mut self) -> ReadState {
        ReadState {
            part: self.part.clone(),
            position: self.position,
            cursor: self.cursor.take(),
            skip_damaged: self.skip_damaged,
        }
    }

    fn read(&mut self, hwm: u64, max: usize) -> Result<Vec<LogRecord>> {
        let chunk = (max * 512).clamp(64 << 10, 1 << 20);
        let mut out = Vec::with_capacity(max.min(chunk / 64));
        while out.len() < max && self.position < hwm {
            let stale = self.cursor.as_ref().is_none_or(|c| {
                c.next_base.is_some_and(|next| self.position >= next)
                    || self.position < c.batch_offset
            });
            if stale && !self.seek()? {
                break;
            }
            match self.read_chunk(hwm, max, chunk, &mut out) {
                Ok(Step::Continue) => {}
                Ok(Step::Done) => break,
                Err(error) => self.skip_or_fail(error)?,
            }
        }
        Ok(out)
    }

    /// Opens the segment holding the position; false if there is none.
    fn seek(&mut self) -> Result<bool> {
        let Some((view, next_base)) = self.part.segment_for(self.position) else {
            return Ok(false);
        };
        if self.position < view.base_offset {
            tracing::warn!(
                topic = %self.part.topic,
                partition = self.part.partition,
                from = self.position,
                log_start = view.base_offset,
                "records were deleted by retention before this reader got to them; skipping ahead"
            );
            self.position = view.base_offset;
        }
        let (batch_offset, file_pos) = view
            .index()
            .seek_offset(self.position)
            .unwrap_or((view.base_offset, 0));
        let file =
            File::open(&view.path).map_err(|e| LogError::io("opening segment", &view.path, e))?;
        self.cursor = Some(Cursor {
            view,
            file,
            next_base,
            file_pos,
            batch_offset,
        });
        Ok(true)
    }

    fn read_chunk(
        &mut self,
        hwm: u64,
        max: usize,
        chunk: usize,
        out: &mut Vec<LogRecord>,
    ) -> Result<Step> {
        let Some(c) = self.cursor.as_mut() else {
            return Ok(Step::Done);
        };
        let buf = read_chunk_at(&c.file, chunk, c.file_pos, &c.view)?;
        let n = buf.len();
        if n == 0 {
            // The end of this segment's file.
            match c.next_base {
                Some(next) => {
                    self.position = self.position.max(next);
                    self.cursor = None;
                    return Ok(Step::Continue);
                }
                None => {
                    // It may have been sealed since we looked.
                    if let Some((view, _)) = self.part.segment_for(self.position) {
                        if view.base_offset != c.view.base_offset {
                            c.next_base = Some(view.base_offset);
                            return Ok(Step::Continue);
                        }
                    }
                    return Err(damage(
                        c,
                        "the segment ends before the high-water mark".into(),
                    ));
                }
            }
        }
        let mut bytes = Bytes::from(buf);
        let mut at = 0usize;
        while at < bytes.len() {
            // Past the high-water mark a batch may be half written; and a
            // chunk may end inside the next batch's header.
            if c.batch_offset >= hwm {
                return Ok(Step::Done);
            }
            if at > 0 && bytes.len() - at < batch::HEADER_LEN {
                return Ok(Step::Continue);
            }
            let header = batch::parse_header(&bytes[at..]).map_err(|p| damage(c, p))?;
            if header.base_offset != c.batch_offset {
                let problem = format!(
                    "batch has base offset {}, expected {}",
                    header.base_offset, c.batch_offset
                );
                return Err(damage(c, problem));
            }
            if header.base_offset >= hwm {
                return Ok(Step::Done);
            }
            let len = header.length as usize;
            if at + len > bytes.len() {
                if at > 0 {
                    return Ok(Step::Continue);
                }
                // A batch larger than the chunk: read it whole.
                let mut whole = vec![0u8; len];
                let got = read_at_most(&c.file, &mut whole, c.file_pos, &c.view)?;
                if got < len {
                    return Err(damage(c, format!("torn batch ({got} of {len} bytes)")));
                }
                bytes = Bytes::from(whole);
            }
            let one = bytes.slice(at..at + len);
            batch::check(&one).map_err(|p| damage(c, p))?;
            batch::records(&one, &header, self.position, out, max);
            match out.last() {
                Some(last) if last.offset + 1 < header.next_offset() && out.len() >= max => {
                    self.position = last.offset + 1;
                    return Ok(Step::Done);
                }
                _ => {}
            }
            self.position = self.position.max(header.next_offset());
            c.file_pos += len as u64;
            c.batch_offset = header.next_offset();
            at += len;
            if out.len() >= max || self.position >= hwm {
                return Ok(Step::Done);
            }
        }
        Ok(Step::Continue)
    }

    /// With `skip_damaged_segments`, a damaged sealed segment is left for
    /// the next one; anything else is an error.
    fn skip_or_fail(&mut self, error: LogError) -> Result<()> {
        let next = self.cursor.as_ref().and_then(|c| c.next_base);
        match (&error, next) {
            (LogError::Corrupt { .. }, Some(next)) if self.skip_damaged => {
                tracing::error!(%error, skipped_to = next, "skipping the damaged rest of a segment as configured");
                self.position = self.position.max(next);
                self.cursor = None;
                Ok(())
            }
            _ => Err(error),
        }
    }
}

fn damage(c: &Cursor, problem: String) -> LogError {
    LogError::Corrupt {
        path: c.view.path.clone(),
        offset: c.batch_offset,
        position: c.file_pos,
        problem,
    }
}

/// Reads up to `len` bytes at `pos`. `read_to_end` fills the buffer
/// without zeroing it first, which matters at page-cache speed.
fn read_chunk_at(mut file: &File, len: usize, pos: u64, view: &SegmentView) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    file.seek(SeekFrom::Start(pos))
        .and_then(|_| file.take(len as u64).read_to_end(&mut buf))
        .map_err(|e| LogError::io("reading segment", &view.path, e))?;
    Ok(buf)
}

fn read_at_most(file: &File, buf: &mut [u8], pos: u64, view: &SegmentView) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], pos + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LogError::io("reading segment", &view.path, e)),
        }
    }
    Ok(filled)
}

/// The offset of the first record with a timestamp at or after `ts`, or
/// the high-water mark if there is none. Blocks on file reads.
pub(crate) fn offset_for_timestamp(
    part: &Arc<PartitionShared>,
    ts: i64,
    skip_damaged: bool,
) -> Result<u64> {
    let hwm = part.high_watermark();
    for view in part.segments() {
        let start = {
            let index = view.index();
            if index.max_ts().is_none_or(|m| m < ts) {
                continue;
            }
            index
                .seek_time(ts)
                .map_or(view.base_offset, |(offset, _)| offset)
        };
        let mut state = ReadState {
            part: part.clone(),
            position: start,
            cursor: None,
            skip_damaged,
        };
        loop {
            let records = state.read(hwm, 4096)?;
            if records.is_empty() {
                return Ok(hwm);
            }
            if let Some(found) = records.iter().find(|r| r.timestamp_ms >= ts) {
                return Ok(found.offset);
            }
        }
    }
    Ok(hwm)
}
