//! Sparse per-segment indexes, kept in memory and written beside a segment
//! when it is sealed.
//!
//! An entry is added for the first batch of a segment and then for the
//! first batch starting at least `index_interval_bytes` after the previous
//! entry. `{base}.index` holds `(offset − base) u32, position u32` pairs;
//! `{base}.timeindex` holds `(max timestamp of all records before the
//! batch) i64, (offset − base) u32`. That timestamp never decreases, so a
//! time lookup is a binary search even when record times are out of order.
//! Both files are rebuilt from the segment if missing or inconsistent.

use std::fs;
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;
use crate::error::{LogError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    /// Largest timestamp of the records before this batch in the segment.
    pub max_ts_before: i64,
}

#[derive(Clone, Debug, Default)]
pub struct SegmentIndex {
    entries: Vec<IndexEntry>,
    bytes_since_entry: u64,
    max_ts: Option<i64>,
}

impl SegmentIndex {
    /// Notes a batch written at `position`; adds an entry when due.
    pub fn on_batch(&mut self, interval: u64, header: &BatchHeader, position: u64) {
        if self.entries.is_empty() || self.bytes_since_entry >= interval {
            self.entries.push(IndexEntry {
                offset: header.base_offset,
                position,
                max_ts_before: self.max_ts.unwrap_or(i64::MIN),
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += u64::from(header.length);
        self.max_ts = Some(self.max_ts.map_or(header.max_ts, |m| m.max(header.max_ts)));
    }

    /// Where to start scanning for `offset`: (batch base offset, position).
    pub fn seek_offset(&self, offset: u64) -> Option<(u64, u64)> {
        let i = self.entries.partition_point(|e| e.offset <= offset);
        i.checked_sub(1)
            .map(|i| (self.entries[i].offset, self.entries[i].position))
    }

    /// Where to start scanning for the first record at or after `ts`.
    pub fn seek_time(&self, ts: i64) -> Option<(u64, u64)> {
        let i = self.entries.partition_point(|e| e.max_ts_before < ts);
        i.checked_sub(1)
            .map(|i| (self.entries[i].offset, self.entries[i].position))
    }

    /// Largest record timestamp in the segment, if it has records.
    pub fn max_ts(&self) -> Option<i64> {
        self.max_ts
    }

    pub fn last_entry(&self) -> Option<IndexEntry> {
        self.entries.last().copied()
    }

    pub fn paths(log_path: &Path) -> (PathBuf, PathBuf) {
        (
            log_path.with_extension("index"),
            log_path.with_extension("timeindex"),
        )
    }

    /// Writes both index files and fsyncs them.
    pub fn write(&self, log_path: &Path, base: u64) -> Result<()> {
        let (offsets, times) = Self::paths(log_path);
        let mut o = Vec::with_capacity(self.entries.len() * 8);
        let mut t = Vec::with_capacity(self.entries.len() * 12 + 8);
        for e in &self.entries {
            o.extend_from_slice(&((e.offset - base) as u32).to_le_bytes());
            o.extend_from_slice(&(e.position as u32).to_le_bytes());
            t.extend_from_slice(&e.max_ts_before.to_le_bytes());
            t.extend_from_slice(&((e.offset - base) as u32).to_le_bytes());
        }
        // The segment's max timestamp closes the time index, for retention.
        t.extend_from_slice(&self.max_ts.unwrap_or(i64::MIN).to_le_bytes());
        for (path, bytes) in [(offsets, o), (times, t)] {
            headwater_core::checkpoint::atomic_write(&path, &bytes)
                .map_err(|e| LogError::core(&path, e))?;
        }
        Ok(())
    }

    /// Loads both index files; `None` when they are missing or do not
    /// agree with each other or with a segment of `size` bytes.
    pub fn load(log_path: &Path, base: u64, size: u64) -> Option<SegmentIndex> {
        let (offsets, times) = Self::paths(log_path);
        let o = fs::read(offsets).ok()?;
        let t = fs::read(times).ok()?;
        if o.len() % 8 != 0 || t.len() < 8 || (t.len() - 8) % 12 != 0 {
            return None;
        }
        if o.len() / 8 != (t.len() - 8) / 12 {
            return None;
        }
        let mut entries = Vec::with_capacity(o.len() / 8);
        for (oc, tc) in o.chunks_exact(8).zip(t.chunks_exact(12)) {
            let rel = u32::from_le_bytes([oc[0], oc[1], oc[2], oc[3]]);
            let pos = u32::from_le_bytes([oc[4], oc[5], oc[6], oc[7]]);
            let mut ts = [0; 8];
            ts.copy_from_slice(&tc[0..8]);
            let trel = u32::from_le_bytes([tc[8], tc[9], tc[10], tc[11]]);
            let entry = IndexEntry {
                offset: base + u64::from(rel),
                position: u64::from(pos),
                max_ts_before: i64::from_le_bytes(ts),
            };
            let ordered = entries.last().is_none_or(|p: &IndexEntry| {
                p.offset < entry.offset
                    && p.position < entry.position
                    && p.max_ts_before <= entry.max_ts_before
            });
            if rel != trel || entry.position >= size || !ordered {
                return None;
            }
            entries.push(entry);
        }
        if entries
            .first()
            .is_some_and(|e| e.position != 0 || e.offset != base)
        {
            return None;
        }
        let mut last = [0; 8];
        last.copy_from_slice(&t[t.len() - 8..]);
        let max_ts = i64::from_le_bytes(last);
        Some(SegmentIndex {
            max_ts: (!entries.is_empty()).then_some(max_ts),
            entries,
            bytes_since_entry: 0,
        })
    }

    pub fn remove_files(log_path: &Path) {
        let (offsets, times) = Self::paths(log_path);
        let _ = fs::remove_file(offsets);
        let _ = fs::remove_file(times);
    }
}
