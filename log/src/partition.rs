//! One partition on disk: opening (with recovery), appending, rolling and
//! retention. Everything here blocks: it runs on the writer thread, or at
//! open.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::buffers::BufferPool;
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::segment::{
    parse_segment_name, scan_view, segment_path, ReadOnlySegment, SegmentView, WritableSegment,
};
use crate::sync_pool::SyncTarget;
use crate::topic::PartitionShared;

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    headwater_core::checkpoint::sync_dir(dir).map_err(|e| LogError::core(dir, e))
}

/// Segment base offsets in `dir`, ascending; removes leftovers (index files
/// without a segment, temporary files) when `tidy`.
fn list_segments(dir: &Path, tidy: bool) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    let mut others = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bases),
        Err(e) => return Err(LogError::io("listing partition", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing partition", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match parse_segment_name(&name) {
            Some(base) => bases.push(base),
            None => others.push(entry.path()),
        }
    }
    bases.sort_unstable();
    if tidy {
        for path in others {
            let stem_has_log = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|base| bases.contains(&base));
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "tmp" || (matches!(ext, "index" | "timeindex") && !stem_has_log) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(bases)
}

/// Opens every sealed segment of a partition, checking the chain of offsets.
fn open_sealed(dir: &Path, bases: &[u64], config: &LogConfig) -> Result<VecDeque<ReadOnlySegment>> {
    let interval = config.index_interval_bytes.0;
    let skip = config.skip_damaged_segments;
    let mut sealed = VecDeque::with_capacity(bases.len());
    for pair in bases.windows(2) {
        let path = segment_path(dir, pair[0]);
        let segment = ReadOnlySegment::open(&path, pair[0], interval, skip)?;
        if segment.end_offset != pair[1] {
            let error = LogError::Corrupt {
                path: path.clone(),
                offset: segment.end_offset,
                position: segment.size,
                problem: format!(
                    "the segment ends at offset {} but the next one starts at {}",
                    segment.end_offset, pair[1]
                ),
            };
            if !skip || segment.end_offset > pair[1] {
                return Err(error);
            }
            tracing::error!(%error, "skipping the gap as configured");
        }
        sealed.push_back(segment);
    }
    Ok(sealed)
}

/// The writer's side of a partition.
pub struct PartitionWriter {
    pub shared: Arc<PartitionShared>,
    dir: PathBuf,
    sealed: VecDeque<ReadOnlySegment>,
    active: WritableSegment,
    /// Batches staged since the last write, in offset order.
    staged: Vec<Vec<u8>>,
    /// Written (or staged) since the last fsync.
    pub dirty: bool,
}

impl PartitionWriter {
    /// Opens (creating if needed) and recovers a partition: the last
    /// segment's torn or damaged tail is cut; sealed segments must be whole.
    pub fn open(topic: Arc<str>, partition: u32, dir: &Path, config: &LogConfig) -> Result<Self> {
        fs::create_dir_all(dir)
            .map_err(|e| LogError::io("creating partition directory", dir, e))?;
        let bases = list_segments(dir, true)?;
        let interval = config.index_interval_bytes.0;
        let sealed = open_sealed(dir, &bases, config)?;
        let active = match bases.last() {
            Some(&base) => {
                let path = segment_path(dir, base);
                let (active, cut) = WritableSegment::recover(&path, base, interval, true)?;
                if let Some((end, bytes)) = cut {
                    tracing::warn!(
                        segment = %path.display(),
                        position = end.position,
                        next_offset = end.next_offset,
                        bytes_cut = bytes,
                        problem = end.damage.as_deref().unwrap_or("trailing bytes"),
                        "recovery cut a torn or damaged tail from the last segment; \
                         nothing after it had been acknowledged as durable"
                    );
                }
                if let Some(last) = sealed.back() {
                    if last.end_offset > base {
                        return Err(LogError::Corrupt {
                            path,
                            offset: base,
                            position: 0,
                            problem: format!(
                                "the segment starts at offset {base}, inside the previous one (which ends at {})",
                                last.end_offset
                            ),
                        });
                    }
                }
                active
            }
            None => {
                let active = WritableSegment::create(dir, 0, interval)?;
                sync_dir(dir)?;
                active
            }
        };
        let mut views: Vec<Arc<SegmentView>> = sealed.iter().map(|s| s.view.clone()).collect();
        views.push(active.view().clone());
        let end = active.next_offset();
        Ok(PartitionWriter {
            shared: Arc::new(PartitionShared::new(topic, partition, views, end)),
            dir: dir.to_owned(),
            sealed,
            active,
            staged: Vec::new(),
            dirty: false,
        })
    }

    /// Stages one encoded batch to be written by
    /// [`PartitionWriter::write_staged`], rolling first (after writing what
    /// is staged) if the segment is full or old. Returns the batch's base
    /// offset.
    pub fn append(
        &mut self,
        mut batch: Vec<u8>,
        config: &LogConfig,
        pool: &BufferPool,
    ) -> Result<u64> {
        let full = self.active.size() + batch.len() as u64 > config.segment_bytes.0;
        if !self.active.is_empty() && (full || self.active.age() >= config.segment_age.0) {
            self.roll(config, pool)?;
        }
        let header = match self.active.stage(&mut batch) {
            Ok(header) => header,
            Err(error) => {
                pool.give_back(batch);
                return Err(error);
            }
        };
        self.staged.push(batch);
        self.shared.set_log_end(header.next_offset());
        self.dirty = true;
        Ok(header.base_offset)
    }

    /// Writes the staged batches and hands their buffers back.
    pub fn write_staged(&mut self, pool: &BufferPool) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let result = self.active.write(&self.staged);
        for buffer in self.staged.drain(..) {
            pool.give_back(buffer);
        }
        result
    }

    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Seals the active segment (fsynced, indexes written) and starts a new
    /// one at the next offset.
    pub fn roll(&mut self, config: &LogConfig, pool: &BufferPool) -> Result<()> {
        self.write_staged(pool)?;
        self.active.prepare_seal()?;
        let next = WritableSegment::create(
            &self.dir,
            self.active.next_offset(),
            config.index_interval_bytes.0,
        )?;
        sync_dir(&self.dir)?;
        tracing::debug!(
            topic = %self.shared.topic,
            partition = self.shared.partition,
            base_offset = next.next_offset(),
            "rolled to a new segment"
        );
        self.shared.push_segment(next.view().clone());
        let old = std::mem::replace(&mut self.active, next);
        self.sealed.push_back(old.into_read_only());
        Ok(())
    }

    /// fsyncs the active segment (sealed ones already are).
    pub fn sync_target(&self) -> SyncTarget {
        self.active.sync_target()
    }

    pub fn log_end(&self) -> u64 {
        self.active.next_offset()
    }

    pub fn disk_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.size).sum::<u64>() + self.active.size()
    }

    /// Deletes the oldest sealed segments that retention allows: older than
    /// the age limit (by their newest record) or beyond the size limit, and
    /// — unless `config.allow_uncommitted_deletes` — wholly below `committed`
    /// (the lowest offset any consumer of the topic has committed). Returns
    /// the bytes freed.
    pub fn apply_retention(
        &mut self,
        config: &LogConfig,
        committed: Option<u64>,
        now_ms: i64,
    ) -> Result<u64> {
        let mut freed = 0;
        let mut total = self.disk_bytes();
        while let Some(oldest) = self.sealed.front() {
            let too_old = config.retention.is_some_and(|age| {
                let age_ms = i64::try_from(age.0.as_millis()).unwrap_or(i64::MAX);
                oldest
                    .max_ts
                    .is_none_or(|ts| now_ms.saturating_sub(ts) > age_ms)
            });
            let too_big = config.retention_bytes.is_some_and(|cap| total > cap.0);
            let consumed = committed.is_none_or(|c| c >= oldest.end_offset);
            if !(too_old || too_big) {
                break;
            }
            if !consumed && !config.allow_uncommitted_deletes {
                tracing::debug!(
                    topic = %self.shared.topic,
                    partition = self.shared.partition,
                    segment_end = oldest.end_offset,
                    committed = ?committed,
                    "retention is waiting for consumers to commit past a segment"
                );
                break;
            }
            self.shared.remove_first_segment();
            oldest.remove_files()?;
            tracing::info!(
                topic = %self.shared.topic,
                partition = self.shared.partition,
                base_offset = oldest.view.base_offset,
                end_offset = oldest.end_offset,
                bytes = oldest.size,
                uncommitted = !consumed,
                "retention deleted a segment"
            );
            freed += oldest.size;
            total -= oldest.size;
            self.sealed.pop_front();
        }
        Ok(freed)
    }
}

/// A partition opened read-only: nothing is created, cut or deleted.
pub fn open_read_only(
    topic: Arc<str>,
    partition: u32,
    dir: &Path,
    config: &LogConfig,
) -> Result<Arc<PartitionShared>> {
    let bases = list_segments(dir, false)?;
    let sealed = open_sealed(dir, &bases, config)?;
    let mut views: Vec<Arc<SegmentView>> = sealed.iter().map(|s| s.view.clone()).collect();
    let mut end = 0;
    if let Some(&base) = bases.last() {
        let path = segment_path(dir, base);
        let (view, scan) = scan_view(&path, base, config.index_interval_bytes.0)?;
        if let Some(problem) = &scan.damage {
            tracing::warn!(
                segment = %path.display(),
                position = scan.position,
                next_offset = scan.next_offset,
                problem = %problem,
                "the last segment has a torn or damaged tail; records from there on are not shown \
                 (normal for a batch being written while the daemon runs; otherwise the daemon cuts such a tail when it next opens the log)"
            );
        }
        views.push(view);
        end = scan.next_offset;
    }
    Ok(Arc::new(PartitionShared::new(topic, partition, views, end)))
}
