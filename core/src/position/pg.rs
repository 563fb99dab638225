//! PostgreSQL positions: WAL locations.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{hex_upper, DebeziumField, ParsePositionError, Scalar, SourcePosition};
use crate::codec::{Reader, Writer};
use crate::error::Result;

/// A PostgreSQL write-ahead-log location; text form `XXXXXXXX/XXXXXXXX`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Lsn(pub u64);

/// As PostgreSQL prints it (`0/16B3748`), also where a position is logged
/// with `?`: a decimal `Lsn(272702408)` means nothing to an operator.
impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Lsn {
    // By hand rather than `{:X}/{:X}`: archives format a position per row.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hi = [0; 16];
        let mut lo = [0; 16];
        f.write_str(hex_upper(self.0 >> 32, 1, &mut hi))?;
        f.write_str("/")?;
        f.write_str(hex_upper(self.0 & 0xFFFF_FFFF, 1, &mut lo))
    }
}

impl FromStr for Lsn {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParsePositionError(s.to_owned());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// A change in PostgreSQL: its transaction's commit LSN, then the change's
/// own LSN within the transaction. Ordering is by commit (the order
/// transactions became visible), then by change.
///
/// Snapshot rows carry the slot's consistent point as `commit_lsn` and
/// `Lsn(0)` as `lsn`: they sort before everything streamed after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PgPosition {
    pub commit_lsn: Lsn,
    pub lsn: Lsn,
}

/// `0/16B3748` (a commit, the change at the commit LSN), or
/// `0/16B3748@0/16B3700` (commit LSN `@` change LSN).
impl fmt::Display for PgPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lsn == self.commit_lsn {
            write!(f, "{}", self.commit_lsn)
        } else {
            write!(f, "{}@{}", self.commit_lsn, self.lsn)
        }
    }
}

const DEBEZIUM_FIELDS: &[DebeziumField] = &[
    DebeziumField::new("sequence", "string", true),
    DebeziumField::new("txId", "int64", true),
    DebeziumField::new("lsn", "int64", true),
    DebeziumField::new("xmin", "int64", true),
];

impl SourcePosition for PgPosition {
    const TAG: u8 = 0;
    const DEBEZIUM_CONNECTOR: &'static str = "postgresql";

    fn parse(text: &str) -> Option<Self> {
        if let Some((commit, lsn)) = text.split_once('@') {
            return Some(PgPosition {
                commit_lsn: commit.parse().ok()?,
                lsn: lsn.parse().ok()?,
            });
        }
        let lsn = text.parse().ok()?;
        Some(PgPosition {
            commit_lsn: lsn,
            lsn,
        })
    }

    /// A partition holds a source's records in commit order.
    fn is_covered_by(&self, newest: &Self) -> bool {
        self <= newest
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.commit_lsn.0);
        w.u64(self.lsn.0);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(PgPosition {
            commit_lsn: Lsn(r.u64()?),
            lsn: Lsn(r.u64()?),
        })
    }

    fn write_sort_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let (mut commit, mut lsn) = ([0; 16], [0; 16]);
        out.write_str("pg:")?;
        out.write_str(hex_upper(self.commit_lsn.0, 16, &mut commit))?;
        out.write_str(":")?;
        out.write_str(hex_upper(self.lsn.0, 16, &mut lsn))
    }

    fn debezium_fields(&self) -> &'static [DebeziumField] {
        DEBEZIUM_FIELDS
    }

    fn write_debezium(&self, tx_id: Option<u64>, field: &mut dyn FnMut(&str, Scalar<'_>)) {
        // Snapshot rows carry LSN 0: report the consistent point.
        let lsn = if self.lsn.0 == 0 {
            self.commit_lsn
        } else {
            self.lsn
        };
        // `["<commit lsn>","<lsn>"]` as text, as Debezium writes it.
        let mut buf = [0u8; 48];
        let mut at = 0;
        for part in [
            &b"[\""[..],
            digits(self.commit_lsn.0, &mut [0; 20]),
            b"\",\"",
            digits(lsn.0, &mut [0; 20]),
            b"\"]",
        ] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        let sequence = std::str::from_utf8(&buf[..at]).unwrap_or_default();
        field("sequence", Scalar::Str(sequence));
        field("txId", tx_id.map_or(Scalar::Null, Scalar::Int));
        field("lsn", Scalar::Int(lsn.0));
        field("xmin", Scalar::Null);
    }
}

/// `n` in decimal, in the tail of `buf`.
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
