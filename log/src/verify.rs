//! `headwater log verify`: check every batch of every segment, read-only.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::scan::scan;
use crate::segment::{parse_segment_name, segment_path};
use crate::topic::topics_dir;

/// Damage found in one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    /// Byte position of the first bad batch.
    pub position: u64,
    /// Offset the bad batch should start at.
    pub offset: u64,
    pub problem: String,
    /// Bytes from the damage to the end of the file.
    pub bytes_after: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub partitions: u64,
    pub segments: u64,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub damage: Vec<Damage>,
}

/// CRC-checks every batch under the log directory `dir` and checks that
/// segments chain (each starts where the previous ended).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let root = topics_dir(dir);
    for topic in sorted_dirs(&root)? {
        for partition in sorted_dirs(&topic)? {
            report.partitions += 1;
            verify_partition(&partition, &mut report)?;
        }
    }
    Ok(report)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry.path().is_dir() {
                    out.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LogError::io("listing", dir, e)),
    }
    out.sort();
    Ok(out)
}

fn verify_partition(dir: &Path, report: &mut VerifyReport) -> Result<()> {
    let mut bases: Vec<u64> = fs::read_dir(dir)
        .map_err(|e| LogError::io("listing", dir, e))?
        .flatten()
        .filter_map(|e| parse_segment_name(&e.file_name().to_string_lossy()))
        .collect();
    bases.sort_unstable();
    let mut expected: Option<u64> = None;
    for base in bases {
        let path = segment_path(dir, base);
        if let Some(expected) = expected.filter(|&e| e != base) {
            report.damage.push(Damage {
                path: path.clone(),
                position: 0,
                offset: expected,
                problem: format!(
                    "the segment starts at offset {base}, but the previous one ends at {expected}"
                ),
                bytes_after: 0,
            });
        }
        report.segments += 1;
        let (mut batches, mut records) = (0u64, 0u64);
        let end = scan(&path, 0, base, |h, _, _| {
            batches += 1;
            records += u64::from(h.count);
        })?;
        report.batches += batches;
        report.records += records;
        report.bytes += end.position;
        if let Some(problem) = end.damage.clone() {
            let len = fs::metadata(&path).map_or(end.position, |m| m.len());
            report.damage.push(Damage {
                path,
                position: end.position,
                offset: end.next_offset,
                problem,
                bytes_after: len - end.position,
            });
        }
        // After damage the next segment's start cannot be checked.
        expected = end.damage.is_none().then_some(end.next_offset);
    }
    Ok(())
}
