//! Walking the batches of a segment file from a known position, checking
//! each one: used by recovery, by sealed-segment checks and by `verify`.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{LogError, Result};

/// Where a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// Byte position after the last good batch.
    pub position: u64,
    /// Offset after the last good batch.
    pub next_offset: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub damage: Option<String>,
}

/// Checks every batch from `position` (where a batch with `offset` must
/// start) to the end of the file, calling `on_batch(header, position,
/// bytes)` for each good one. Stops at the first damaged or torn batch.
pub fn scan(
    path: &Path,
    position: u64,
    offset: u64,
    mut on_batch: impl FnMut(&BatchHeader, u64, &[u8]),
) -> Result<ScanEnd> {
    let mut file = File::open(path).map_err(|e| LogError::io("opening segment", path, e))?;
    file.seek(SeekFrom::Start(position))
        .map_err(|e| LogError::io("seeking in segment", path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut end = ScanEnd {
        position,
        next_offset: offset,
        damage: None,
    };
    let mut buf = vec![0u8; HEADER_LEN];
    loop {
        buf.resize(HEADER_LEN, 0);
        match read_full(&mut reader, &mut buf) {
            Ok(0) => return Ok(end),
            Ok(n) if n < HEADER_LEN => {
                end.damage = Some(format!("torn batch header ({n} of {HEADER_LEN} bytes)"));
                return Ok(end);
            }
            Ok(_) => {}
            Err(e) => return Err(LogError::io("reading segment", path, e)),
        }
        let header = match batch::parse_header(&buf) {
            Ok(h) => h,
            Err(problem) => {
                end.damage = Some(problem);
                return Ok(end);
            }
        };
        if header.base_offset != end.next_offset {
            end.damage = Some(format!(
                "batch has base offset {}, expected {}",
                header.base_offset, end.next_offset
            ));
            return Ok(end);
        }
        let len = header.length as usize;
        buf.resize(len, 0);
        match read_full(&mut reader, &mut buf[HEADER_LEN..]) {
            Ok(n) if n < len - HEADER_LEN => {
                end.damage = Some(format!("torn batch ({} of {len} bytes)", HEADER_LEN + n));
                return Ok(end);
            }
            Ok(_) => {}
            Err(e) => return Err(LogError::io("reading segment", path, e)),
        }
        if let Err(problem) = batch::check(&buf) {
            end.damage = Some(problem);
            return Ok(end);
        }
        on_batch(&header, end.position, &buf);
        end.position += len as u64;
        end.next_offset = header.next_offset();
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
