//! Where a change was read in its source's stream.
//!
//! Each source kind owns its position type (`pg`, `mysql`, `offsets`),
//! which implements [`SourcePosition`]: order, text form, binary form,
//! replay coverage, archive sort key and Debezium `source` fields.
//! [`Position`] is the closed set of them, so a position stays inline
//! (no allocation per change) and serializes by kind; a new kind is its
//! module plus one line in [`positions!`]'s invocation below.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::error::Result;

pub mod gtid;
mod mysql;
mod offsets;
mod pg;

pub use mysql::MySqlPosition;
pub use offsets::{Offsets, PartitionOffset};
pub use pg::{Lsn, PgPosition};

/// What a source kind's positions must provide.
pub trait SourcePosition:
    Clone + fmt::Debug + fmt::Display + Ord + std::hash::Hash + Send + Sync + 'static
{
    /// The kind's tag in the log's binary form; never reused.
    const TAG: u8;
    /// The `connector` the Kafka sink's Debezium `source` block names.
    const DEBEZIUM_CONNECTOR: &'static str;

    /// The text form (as `Display` writes it), or `None` when `text` is
    /// not this kind's.
    fn parse(text: &str) -> Option<Self>;

    /// Whether a change at `self` is already in a partition whose newest
    /// record of this source is at `newest` (the replay guard). Not always
    /// `self <= newest`: a kind may know better (GTIDs across a failover,
    /// offsets in several partitions).
    fn is_covered_by(&self, newest: &Self) -> bool;

    fn encode(&self, w: &mut Writer<'_>);
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// Text that sorts in source order (the archive's `_position_order`).
    fn write_sort_key(&self, out: &mut dyn fmt::Write) -> fmt::Result;

    /// This kind's fields at the end of the Debezium `source` block, their
    /// schema…
    fn debezium_fields(&self) -> &'static [DebeziumField];
    /// …and their values, in that order.
    fn write_debezium(&self, tx_id: Option<u64>, field: &mut dyn FnMut(&str, Scalar<'_>));
}

/// A field of the Debezium `source` block: name, Connect type, optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebeziumField {
    pub name: &'static str,
    pub ty: &'static str,
    pub optional: bool,
}

impl DebeziumField {
    pub const fn new(name: &'static str, ty: &'static str, optional: bool) -> Self {
        DebeziumField { name, ty, optional }
    }
}

/// A value of a Debezium `source` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    Str(&'a str),
    Int(u64),
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a position: expected an LSN like `0/16B3748` (PostgreSQL), `file:offset` like `mysql-bin.000003:4711` (MySQL) or `offsets:topic/partition=offset,…`")]
pub struct ParsePositionError(pub(crate) String);

/// Declares [`Position`], one variant per kind, and dispatches every
/// [`SourcePosition`] method to the variant's type.
macro_rules! positions {
    ($($kind:ident($ty:ty)),+ $(,)?) => {
        /// A position in one source's change stream. Totally ordered within
        /// one source; positions of different kinds are never compared in
        /// practice (they order by kind).
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Position {
            $($kind($ty),)+
        }

        $(impl From<$ty> for Position {
            fn from(p: $ty) -> Self {
                Position::$kind(p)
            }
        })+

        impl Position {
            pub fn is_covered_by(&self, newest: &Position) -> bool {
                match (self, newest) {
                    $((Position::$kind(p), Position::$kind(n)) => p.is_covered_by(n),)+
                    #[allow(unreachable_patterns)]
                    _ => false,
                }
            }

            pub fn write_sort_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
                match self {
                    $(Position::$kind(p) => p.write_sort_key(out),)+
                }
            }

            pub fn debezium_connector(&self) -> &'static str {
                match self {
                    $(Position::$kind(_) => <$ty as SourcePosition>::DEBEZIUM_CONNECTOR,)+
                }
            }

            pub fn debezium_fields(&self) -> &'static [DebeziumField] {
                match self {
                    $(Position::$kind(p) => p.debezium_fields(),)+
                }
            }

            pub fn write_debezium(&self, tx_id: Option<u64>, field: &mut dyn FnMut(&str, Scalar<'_>)) {
                match self {
                    $(Position::$kind(p) => p.write_debezium(tx_id, field),)+
                }
            }

            /// Tag, then the kind's own bytes.
            pub(crate) fn encode(&self, w: &mut Writer<'_>) {
                match self {
                    $(Position::$kind(p) => {
                        w.u8(<$ty as SourcePosition>::TAG);
                        p.encode(w);
                    })+
                }
            }

            pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Position> {
                let tag = r.u8()?;
                $(if tag == <$ty as SourcePosition>::TAG {
                    return <$ty as SourcePosition>::decode(r).map(Position::$kind);
                })+
                Err(r.fail(format!("position tag {tag}")))
            }
        }

        impl fmt::Display for Position {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Position::$kind(p) => fmt::Display::fmt(p, f),)+
                }
            }
        }

        /// The first kind whose text form `s` is.
        impl FromStr for Position {
            type Err = ParsePositionError;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                $(if let Some(p) = <$ty as SourcePosition>::parse(s) {
                    return Ok(Position::$kind(p));
                })+
                Err(ParsePositionError(s.to_owned()))
            }
        }
    };
}

// One line per kind. No text form is another kind's (`offsets:…` ends in
// `=offset`, never a MySQL `:offset`), so the order text is tried in does
// not matter.
positions! {
    Postgres(PgPosition),
    MySql(MySqlPosition),
    Offsets(Offsets),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

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

#[cfg(test)]
mod offsets_tests {
    use super::*;

    fn offsets(entries: &[(&str, u32, u64)]) -> Offsets {
        Offsets::new(
            entries
                .iter()
                .map(|(topic, partition, offset)| PartitionOffset {
                    topic: (*topic).into(),
                    partition: *partition,
                    offset: *offset,
                })
                .collect(),
        )
    }

    #[test]
    fn offsets_text_round_trips_and_is_no_mysql_position() {
        let p = Position::Offsets(offsets(&[
            ("orders", 1, 7),
            ("orders", 0, 41),
            ("a:b", 2, 0),
        ]));
        let text = p.to_string();
        assert_eq!(text, "offsets:a:b/2=0,orders/0=41,orders/1=7");
        assert_eq!(text.parse::<Position>().unwrap(), p);
        assert!(MySqlPosition::parse(&text).is_none());
        assert_eq!(
            "offsets:".parse::<Position>().unwrap(),
            Position::Offsets(Offsets::default())
        );
    }

    #[test]
    fn offsets_are_covered_partition_by_partition() {
        let newest = offsets(&[("t", 0, 10), ("t", 1, 5)]);
        assert!(offsets(&[("t", 0, 10)]).is_covered_by(&newest));
        assert!(offsets(&[("t", 1, 4), ("t", 0, 2)]).is_covered_by(&newest));
        assert!(!offsets(&[("t", 1, 6)]).is_covered_by(&newest));
        assert!(!offsets(&[("t", 2, 0)]).is_covered_by(&newest));
        assert_eq!(
            offsets(&[("t", 0, 3)]).merged(&offsets(&[("t", 0, 9), ("u", 0, 1)])),
            offsets(&[("t", 0, 9), ("u", 0, 1)])
        );
    }

    #[test]
    fn every_kind_sorts_by_its_key_as_by_its_order() {
        let texts = [
            "0/5@0/1",
            "0/5@0/2",
            "1/0",
            "b.000009:900",
            "b.000010:4",
            "offsets:t/0=1",
            "offsets:t/0=2",
        ];
        let positions: Vec<Position> = texts.iter().map(|t| t.parse().unwrap()).collect();
        let key = |p: &Position| {
            let mut s = String::new();
            p.write_sort_key(&mut s).unwrap();
            s
        };
        for pair in positions.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
            if std::mem::discriminant(&pair[0]) == std::mem::discriminant(&pair[1]) {
                assert!(
                    key(&pair[0]) < key(&pair[1]),
                    "{} < {}",
                    key(&pair[0]),
                    key(&pair[1])
                );
            }
        }
    }
}

#[cfg(test)]
mod coverage_tests {
    use super::*;

    fn covered(position: &Position, newest: &Position) -> bool {
        position.is_covered_by(newest)
    }

    fn my(file: &str, offset: u64, gtids: Option<&str>, tx_index: u64) -> Position {
        Position::MySql(MySqlPosition {
            file: file.into(),
            offset,
            gtid_set: gtids.map(Into::into),
            tx_index,
        })
    }

    #[test]
    fn covered_by_lsn_by_gtid_and_by_file_and_offset() {
        let pg = |c, l| {
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(c),
                lsn: Lsn(l),
            })
        };
        assert!(covered(&pg(10, 5), &pg(10, 6)));
        assert!(!covered(&pg(10, 7), &pg(10, 6)));

        // one transaction, on any server: by its place in the transaction
        let newest = my("a.000002", 900, Some("0-1-42"), 7);
        assert!(covered(&my("b.000001", 100, Some("0-1-42"), 7), &newest));
        assert!(!covered(&my("b.000001", 100, Some("0-1-42"), 8), &newest));
        // an earlier transaction, whatever its file and offset
        assert!(covered(&my("z.000009", 1, Some("0-1-41"), 99), &newest));
        assert!(!covered(&my("a.000001", 1, Some("0-1-43"), 0), &newest));
        // another domain the log has not seen: not there
        assert!(!covered(
            &my("a.000001", 1, Some("0-1-40,1-1-1"), 0),
            &newest
        ));

        // without GTIDs: by file, offset and place
        let newest = my("a.000002", 900, None, 3);
        assert!(covered(&my("a.000002", 900, None, 3), &newest));
        assert!(covered(&my("a.000001", 5000, None, 0), &newest));
        assert!(!covered(&my("a.000002", 900, None, 4), &newest));
        assert!(!covered(&my("a.000003", 4, None, 0), &newest));
        // a GTID on one side only cannot be compared: kept
        assert!(!covered(&my("a.000001", 4, Some("0-1-1"), 0), &newest));
    }
}
