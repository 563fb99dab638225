//! The record batch: the unit that is written, checksummed and recovered.
//!
//! Layout, integers little-endian, 40-byte header:
//!
//! ```text
//! base_offset u64 | length u32 | crc u32 | magic u8 | flags u8 | reserved u16
//! | count u32 | min_ts i64 | max_ts i64
//! | count × (key_len u32 | value_len u32 | timestamp_ms i64 | key | value)
//! ```
//!
//! `length` is the whole batch, header included. `crc` is CRC32C of the
//! bytes after it (from `magic` to the end). As in Kafka, `base_offset` is
//! outside the CRC so the writer can stamp it on a batch encoded elsewhere;
//! recovery and readers check it against the offset they expect instead.

use bytes::Bytes;

pub const HEADER_LEN: usize = 40;
pub const RECORD_HEADER_LEN: usize = 16;
pub const MAGIC: u8 = 1;
/// Larger lengths are damage, not data: never allocate for them.
pub const MAX_BATCH_LEN: u32 = 1 << 30;
const CRC_FROM: usize = 16;

/// A record to append. Its key picks the partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp_ms: i64,
}

/// A record read back, with its offset. Key and value share the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Bytes,
    pub value: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    pub length: u32,
    pub crc: u32,
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl BatchHeader {
    /// The offset after this batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset.saturating_add(u64::from(self.count))
    }
}

/// Encodes records into a batch with base offset 0 and its CRC set.
pub fn encode<'a>(records: impl IntoIterator<Item = &'a Record> + Clone) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(records, &mut out);
    out
}

/// [`encode`] into a reused buffer (cleared first).
pub fn encode_into<'a>(records: impl IntoIterator<Item = &'a Record> + Clone, out: &mut Vec<u8>) {
    let body: usize = records
        .clone()
        .into_iter()
        .map(|r| RECORD_HEADER_LEN + r.key.len() + r.value.len())
        .sum();
    out.clear();
    out.reserve(HEADER_LEN + body);
    let mut frame = Frame::begin(out);
    for r in records {
        frame.push(out, &r.key, &r.value, r.timestamp_ms);
    }
    frame.finish(out);
}

/// `key_len u32 | value_len u32 | timestamp_ms i64`, little-endian.
pub(crate) fn record_header(key_len: usize, value_len: usize, timestamp_ms: i64) -> [u8; 16] {
    let mut head = [0; RECORD_HEADER_LEN];
    head[0..4].copy_from_slice(&(key_len as u32).to_le_bytes());
    head[4..8].copy_from_slice(&(value_len as u32).to_le_bytes());
    head[8..16].copy_from_slice(&timestamp_ms.to_le_bytes());
    head
}

/// A batch being encoded record by record straight into its buffer; the
/// header is filled in by [`Frame::finish`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    start: usize,
    pub count: u32,
    min_ts: i64,
    max_ts: i64,
}

impl Frame {
    /// Reserves the header at the end of `out`.
    pub fn begin(out: &mut Vec<u8>) -> Frame {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        Frame {
            start,
            count: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    pub fn push(&mut self, out: &mut Vec<u8>, key: &[u8], value: &[u8], timestamp_ms: i64) {
        out.reserve(RECORD_HEADER_LEN + key.len() + value.len());
        out.extend_from_slice(&record_header(key.len(), value.len(), timestamp_ms));
        out.extend_from_slice(key);
        out.extend_from_slice(value);
        self.pushed(timestamp_ms);
    }

    /// Counts a record written into the frame by the caller.
    pub fn pushed(&mut self, timestamp_ms: i64) {
        self.count += 1;
        self.min_ts = self.min_ts.min(timestamp_ms);
        self.max_ts = self.max_ts.max(timestamp_ms);
    }

    /// Bytes of the frame so far, header included.
    pub fn len(&self, out: &[u8]) -> usize {
        out.len() - self.start
    }

    /// Fills in the header (base offset 0) and the CRC.
    pub fn finish(self, out: &mut [u8]) {
        let b = &mut out[self.start..];
        let length = b.len() as u32;
        b[8..12].copy_from_slice(&length.to_le_bytes());
        b[16] = MAGIC;
        b[20..24].copy_from_slice(&self.count.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        let crc = crc32c::crc32c(&b[CRC_FROM..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

pub fn set_base_offset(batch: &mut [u8], base: u64) {
    batch[0..8].copy_from_slice(&base.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses and sanity-checks a header (not the CRC). `buf` must hold at
/// least [`HEADER_LEN`] bytes.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, String> {
    if buf.len() < HEADER_LEN {
        return Err(format!("only {} bytes of a batch header", buf.len()));
    }
    let header = BatchHeader {
        base_offset: u64_at(buf, 0),
        length: u32_at(buf, 8),
        crc: u32_at(buf, 12),
        count: u32_at(buf, 20),
        min_ts: u64_at(buf, 24) as i64,
        max_ts: u64_at(buf, 32) as i64,
    };
    if buf[16] != MAGIC {
        return Err(format!("unknown batch format {}", buf[16]));
    }
    if (header.length as usize) < HEADER_LEN || header.length > MAX_BATCH_LEN {
        return Err(format!("impossible batch length {}", header.length));
    }
    if header.count == 0 {
        return Err("batch with no records".into());
    }
    Ok(header)
}

/// Checks a whole batch: header, CRC and record framing.
pub fn check(batch: &[u8]) -> Result<BatchHeader, String> {
    let header = parse_header(batch)?;
    if batch.len() != header.length as usize {
        return Err(format!(
            "batch says {} bytes, {} present",
            header.length,
            batch.len()
        ));
    }
    let actual = crc32c::crc32c(&batch[CRC_FROM..]);
    if actual != header.crc {
        return Err(format!(
            "CRC32C mismatch (stored {:08x}, computed {actual:08x})",
            header.crc
        ));
    }
    let mut at = HEADER_LEN;
    for _ in 0..header.count {
        let (key, value, _) = record_at(batch, at)?;
        at = value.1;
        let _ = key;
    }
    if at != batch.len() {
        return Err(format!("{} bytes after the last record", batch.len() - at));
    }
    Ok(header)
}

type Span = (usize, usize);

fn record_at(batch: &[u8], at: usize) -> Result<(Span, Span, i64), String> {
    let head_end = at
        .checked_add(RECORD_HEADER_LEN)
        .filter(|&e| e <= batch.len())
        .ok_or("record header runs past the batch")?;
    let key_len = u32_at(batch, at) as usize;
    let value_len = u32_at(batch, at + 4) as usize;
    let ts = u64_at(batch, at + 8) as i64;
    let key_end = head_end
        .checked_add(key_len)
        .filter(|&e| e <= batch.len())
        .ok_or("record key runs past the batch")?;
    let value_end = key_end
        .checked_add(value_len)
        .filter(|&e| e <= batch.len())
        .ok_or("record value runs past the batch")?;
    Ok(((head_end, key_end), (key_end, value_end), ts))
}

/// The records of a batch already [`check`]ed, as slices of `batch`.
pub fn records(
    batch: &Bytes,
    header: &BatchHeader,
    from: u64,
    out: &mut Vec<LogRecord>,
    max: usize,
) {
    let mut at = HEADER_LEN;
    for i in 0..header.count {
        if out.len() >= max {
            return;
        }
        let Ok((key, value, ts)) = record_at(batch, at) else {
            return;
        };
        at = value.1;
        let offset = header.base_offset + u64::from(i);
        if offset >= from {
            out.push(LogRecord {
                offset,
                timestamp_ms: ts,
                key: batch.slice(key.0..key.1),
                value: batch.slice(value.0..value.1),
            });
        }
    }
}

/// The records of a batch already [`check`]ed, as (timestamp, offset).
pub fn timestamps(batch: &[u8], header: &BatchHeader) -> Vec<(i64, u64)> {
    let mut at = HEADER_LEN;
    let mut out = Vec::with_capacity(header.count as usize);
    for i in 0..header.count {
        let Ok((_, value, ts)) = record_at(batch, at) else {
            break;
        };
        at = value.1;
        out.push((ts, header.base_offset + u64::from(i)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, v: &str, ts: i64) -> Record {
        Record {
            key: k.into(),
            value: v.into(),
            timestamp_ms: ts,
        }
    }

    #[test]
    fn round_trip_and_crc() {
        let rs = [rec("a", "one", 5), rec("", "two", 3)];
        let mut b = encode(rs.iter());
        set_base_offset(&mut b, 42);
        let h = check(&b).unwrap();
        assert_eq!((h.base_offset, h.count, h.min_ts, h.max_ts), (42, 2, 3, 5));
        let bytes = Bytes::from(b.clone());
        let mut out = Vec::new();
        records(&bytes, &h, 43, &mut out, 10);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].offset, &out[0].value[..]), (43, &b"two"[..]));
        for i in 16..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x40;
            assert!(check(&bad).is_err(), "flip at {i} not detected");
        }
    }
}
