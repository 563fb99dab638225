//! A bounds-checked cursor over binlog bytes: every read either succeeds or
//! returns a [`DecodeError`]; nothing here can panic on hostile input.

use std::fmt;

/// Why bytes could not be decoded; names what was being read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub what: &'static str,
    pub reason: String,
}

impl DecodeError {
    pub fn new(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError {
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.reason)
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> DecodeResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| {
                DecodeError::new(
                    what,
                    format!(
                        "needs {n} bytes at offset {}, only {} left",
                        self.pos,
                        self.remaining()
                    ),
                )
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> DecodeResult<()> {
        self.take(n, what).map(|_| ())
    }

    pub fn u8(&mut self, what: &'static str) -> DecodeResult<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// Little-endian unsigned integer of `n` (1..=8) bytes.
    pub fn uint_le(&mut self, n: usize, what: &'static str) -> DecodeResult<u64> {
        let bytes = self.take(n, what)?;
        Ok(le(bytes))
    }

    /// Big-endian unsigned integer of `n` (1..=8) bytes.
    pub fn uint_be(&mut self, n: usize, what: &'static str) -> DecodeResult<u64> {
        let bytes = self.take(n, what)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    pub fn u16(&mut self, what: &'static str) -> DecodeResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> DecodeResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> DecodeResult<u64> {
        self.uint_le(8, what)
    }

    /// MySQL's length-encoded integer.
    pub fn lenenc(&mut self, what: &'static str) -> DecodeResult<u64> {
        match self.u8(what)? {
            n @ 0..=0xfa => Ok(u64::from(n)),
            0xfc => self.uint_le(2, what),
            0xfd => self.uint_le(3, what),
            0xfe => self.uint_le(8, what),
            other => Err(DecodeError::new(
                what,
                format!("0x{other:02x} does not start a length-encoded integer"),
            )),
        }
    }

    /// A length as `usize`, refused when it exceeds what is left (so a
    /// corrupt length can never make us allocate). Only for counts of
    /// things that take at least a byte each: a rows event's column count
    /// is not one (a NULL column takes one bit).
    pub fn lenenc_len(&mut self, what: &'static str) -> DecodeResult<usize> {
        let n = self.lenenc(what)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.remaining())
            .ok_or_else(|| {
                DecodeError::new(
                    what,
                    format!("length {n} exceeds the {} bytes left", self.remaining()),
                )
            })
    }

    pub fn lenenc_bytes(&mut self, what: &'static str) -> DecodeResult<&'a [u8]> {
        let n = self.lenenc_len(what)?;
        self.take(n, what)
    }
}

/// Little-endian integer of up to 8 bytes.
pub fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Bit `i` of a little-endian-in-bytes bitmap (MySQL's column bitmaps).
pub fn bit(bitmap: &[u8], i: usize) -> bool {
    bitmap
        .get(i / 8)
        .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
}

/// CRC-32 (IEEE, as binlog checksums use), bitwise: for the rare event the
/// framing could not check itself.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_check_value() {
        assert_eq!(super::crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
    }

    use super::*;

    #[test]
    fn lenenc_forms() {
        let mut r = Reader::new(&[0x05, 0xfc, 0x34, 0x12, 0xfd, 1, 2, 3]);
        assert_eq!(r.lenenc("x").unwrap(), 5);
        assert_eq!(r.lenenc("x").unwrap(), 0x1234);
        assert_eq!(r.lenenc("x").unwrap(), 0x030201);
        assert!(r.lenenc("x").is_err());
    }

    #[test]
    fn short_input_is_an_error() {
        let mut r = Reader::new(&[1, 2]);
        assert!(r.u32("x").is_err());
        assert!(Reader::new(&[0xfe, 1]).lenenc("x").is_err());
        assert!(Reader::new(&[3, 1]).lenenc_bytes("x").is_err());
    }
}
