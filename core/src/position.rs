//! Where a change was read in its source's stream.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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

/// `n` in upper-case hex, zero-padded to at least `min_digits` (≤ 16).
pub fn hex_upper(n: u64, min_digits: usize, buf: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let min_digits = min_digits.clamp(1, buf.len());
    let mut i = buf.len();
    let mut rest = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(rest & 0xF) as usize];
        rest >>= 4;
        if rest == 0 && buf.len() - i >= min_digits {
            break;
        }
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a position: expected an LSN like `0/16B3748` (PostgreSQL) or `file:offset` like `mysql-bin.000003:4711` (MySQL)")]
pub struct ParsePositionError(String);

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

/// A change in a MySQL/MariaDB binlog: the file and the offset of the event,
/// the GTID set executed up to and including its transaction when the
/// server has GTIDs on, and the change's place in its transaction.
///
/// Equality, order and hash are by place in the binlog (file, offset,
/// index), not the GTID set, which only annotates that place: two
/// positions that compare `Equal` are `==`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MySqlPosition {
    /// Shared (`Arc`): every change of a binlog file carries it.
    pub file: Arc<str>,
    pub offset: u64,
    /// Shared: every change of a transaction carries the same set.
    pub gtid_set: Option<Arc<str>>,
    /// 0, 1, 2… for the changes of one transaction, in binlog order (on
    /// every server that applies it): a replay tells them apart by it. 0
    /// for a checkpoint.
    #[serde(default)]
    pub tx_index: u64,
}

impl MySqlPosition {
    /// Binlog files are numbered `base.000001`, `base.000002`…; compare by
    /// that number so `.999999` → `.1000000` orders correctly.
    fn file_sequence(&self) -> (Option<u64>, &str) {
        let seq = self.file.rsplit_once('.').and_then(|(_, n)| n.parse().ok());
        (seq, &self.file)
    }
}

impl Ord for MySqlPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        self.file_sequence()
            .cmp(&other.file_sequence())
            .then(self.offset.cmp(&other.offset))
            .then(self.tx_index.cmp(&other.tx_index))
    }
}

impl PartialEq for MySqlPosition {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MySqlPosition {}

impl std::hash::Hash for MySqlPosition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.file.hash(state);
        self.offset.hash(state);
        self.tx_index.hash(state);
    }
}

impl PartialOrd for MySqlPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A position in one source's change stream. Totally ordered within one
/// source; positions from different kinds of source are never compared in
/// practice (PostgreSQL sorts first).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Position {
    Postgres(PgPosition),
    MySql(MySqlPosition),
}

/// Text forms: `0/16B3748` (a PostgreSQL commit, change at the commit LSN),
/// `0/16B3748@0/16B3700` (commit LSN `@` change LSN), `mysql-bin.000003:4711`,
/// `mysql-bin.000003:4711#<gtid set>`.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Postgres(p) if p.lsn == p.commit_lsn => write!(f, "{}", p.commit_lsn),
            Position::Postgres(p) => write!(f, "{}@{}", p.commit_lsn, p.lsn),
            Position::MySql(p) => {
                write!(f, "{}:{}", p.file, p.offset)?;
                match &p.gtid_set {
                    Some(gtid) => write!(f, "#{gtid}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((commit, lsn)) = s.split_once('@') {
            return Ok(Position::Postgres(PgPosition {
                commit_lsn: commit.parse()?,
                lsn: lsn.parse()?,
            }));
        }
        if let Ok(lsn) = s.parse::<Lsn>() {
            return Ok(Position::Postgres(PgPosition {
                commit_lsn: lsn,
                lsn,
            }));
        }
        let (file_offset, gtid_set) = match s.split_once('#') {
            Some((fo, g)) => (fo, Some(Arc::from(g))),
            None => (s, None),
        };
        let (file, offset) = file_offset
            .rsplit_once(':')
            .ok_or_else(|| ParsePositionError(s.to_owned()))?;
        let offset = offset
            .parse()
            .map_err(|_| ParsePositionError(s.to_owned()))?;
        if file.is_empty() {
            return Err(ParsePositionError(s.to_owned()));
        }
        Ok(Position::MySql(MySqlPosition {
            file: Arc::from(file),
            offset,
            gtid_set,
            tx_index: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_positions_equal_in_order_are_equal() {
        use std::hash::{BuildHasher, RandomState};
        let at = |gtid: Option<&str>| MySqlPosition {
            file: "mysql-bin.000003".into(),
            offset: 4711,
            gtid_set: gtid.map(Into::into),
            tx_index: 2,
        };
        let (with, without) = (at(Some("0-1-42")), at(None));
        assert_eq!(with.cmp(&without), Ordering::Equal);
        assert_eq!(with, without);
        let state = RandomState::new();
        assert_eq!(state.hash_one(&with), state.hash_one(&without));
        assert_ne!(
            with,
            MySqlPosition {
                tx_index: 3,
                ..at(None)
            }
        );
    }

    #[test]
    fn lsn_text() {
        let lsn: Lsn = "0/16B3748".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16B3748));
        assert_eq!(lsn.to_string(), "0/16B3748");
        assert_eq!(Lsn(0x1_0000_0001).to_string(), "1/1");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert_eq!(Lsn(u64::MAX).to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(format!("{:?}", Some(Lsn(0x16B3748))), "Some(0/16B3748)");
    }

    #[test]
    fn hex_matches_the_formatter() {
        let mut buf = [0; 16];
        for n in [0, 1, 0xF, 0x10, 0xABCDEF, u64::MAX] {
            for width in [0, 1, 8, 16, 40] {
                let expected = format!("{n:0w$X}", w = width.min(16));
                assert_eq!(hex_upper(n, width, &mut buf), expected);
            }
        }
    }

    #[test]
    fn position_text_round_trips() {
        for text in [
            "0/16B3748",
            "0/16B3748@0/16B3700",
            "mysql-bin.000003:4711",
            "mysql-bin.000003:4711#0-1-42",
            "binlog.000001:4#3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5",
        ] {
            let p: Position = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        assert!("nonsense".parse::<Position>().is_err());
    }

    #[test]
    fn ordering_within_a_source() {
        let pg = |c, l| {
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(c),
                lsn: Lsn(l),
            })
        };
        assert!(pg(10, 5) < pg(10, 6));
        assert!(pg(10, 9) < pg(11, 1));
        let my = |f: &str, o| {
            Position::MySql(MySqlPosition {
                file: f.into(),
                offset: o,
                gtid_set: None,
                tx_index: 0,
            })
        };
        assert!(my("b.000009", 900) < my("b.000010", 4));
        assert!(my("b.999999", 900) < my("b.1000000", 4));
        assert!(my("b.000010", 4) < my("b.000010", 5));
    }
}
