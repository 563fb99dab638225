//! The GTID set executed so far, in the server's own text form.
//!
//! MariaDB: one `domain-server-sequence` per replication domain, the last
//! transaction of each (`0-1-42,1-2-7`). MySQL: `uuid:interval[:interval]`
//! per server (`3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7`).

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MariaDbGtids(BTreeMap<u32, (u32, u64)>);

impl MariaDbGtids {
    /// Parses `@@gtid_binlog_pos` / a checkpoint's set; empty text is the
    /// empty set.
    pub fn parse(text: &str) -> Option<Self> {
        let mut map = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.splitn(3, '-');
            let domain = it.next()?.parse().ok()?;
            let server = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            map.insert(domain, (server, seq));
        }
        Some(MariaDbGtids(map))
    }

    pub fn add(&mut self, domain: u32, server: u32, seq: u64) {
        self.0.insert(domain, (server, seq));
    }

    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A server UUID and its half-open GTID intervals.
pub type SidIntervals = ([u8; 16], Vec<(u64, u64)>);

/// A MySQL GTID set: per server UUID, sorted disjoint inclusive intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MySqlGtids(BTreeMap<String, Vec<(u64, u64)>>);

impl MySqlGtids {
    pub fn parse(text: &str) -> Option<Self> {
        let mut set = MySqlGtids::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next()?.to_ascii_lowercase();
            for interval in it {
                let (a, b) = match interval.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let n = interval.parse().ok()?;
                        (n, n)
                    }
                };
                set.add_interval(&uuid, a, b);
            }
        }
        Some(set)
    }

    pub fn add(&mut self, sid: &[u8; 16], gno: u64) {
        let uuid = uuid_text(sid);
        self.add_interval(&uuid, gno, gno);
    }

    fn add_interval(&mut self, uuid: &str, start: u64, end: u64) {
        let intervals = self.0.entry(uuid.to_owned()).or_default();
        intervals.push((start, end));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(a, b) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *intervals = merged;
    }

    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(uuid, intervals)| {
                let mut s = uuid.clone();
                for (a, b) in intervals {
                    if a == b {
                        s.push_str(&format!(":{a}"));
                    } else {
                        s.push_str(&format!(":{a}-{b}"));
                    }
                }
                s
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// (uuid bytes, intervals as half-open `[start, end+1)`), for the
    /// COM_BINLOG_DUMP_GTID request.
    pub fn sids(&self) -> Vec<SidIntervals> {
        self.0
            .iter()
            .filter_map(|(uuid, intervals)| {
                let hex: String = uuid.chars().filter(|c| *c != '-').collect();
                let mut sid = [0u8; 16];
                for (i, byte) in sid.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some((sid, intervals.iter().map(|(a, b)| (*a, b + 1)).collect()))
            })
            .collect()
    }
}

pub fn uuid_text(sid: &[u8; 16]) -> String {
    crate::value::uuid_to_string(sid)
}

/// The executed set, whichever flavour the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gtids {
    MariaDb(MariaDbGtids),
    MySql(MySqlGtids),
}

impl Gtids {
    /// Parses either flavour's text: MySQL's names server UUIDs (`:`),
    /// MariaDB's does not.
    pub fn parse(text: &str) -> Option<Self> {
        if text.contains(':') {
            MySqlGtids::parse(text).map(Gtids::MySql)
        } else {
            MariaDbGtids::parse(text).map(Gtids::MariaDb)
        }
    }

    /// Whether every transaction in `self` is in `other` too (MariaDB: per
    /// domain, a sequence number no higher). Sets of different flavours
    /// cover nothing of each other.
    pub fn is_covered_by(&self, other: &Gtids) -> bool {
        match (self, other) {
            (Gtids::MariaDb(a), Gtids::MariaDb(b)) => a.0.iter().all(|(domain, (_, seq))| {
                b.0.get(domain)
                    .is_some_and(|(_, other_seq)| seq <= other_seq)
            }),
            (Gtids::MySql(a), Gtids::MySql(b)) => a.0.iter().all(|(uuid, intervals)| {
                let Some(theirs) = b.0.get(uuid) else {
                    return intervals.is_empty();
                };
                intervals
                    .iter()
                    .all(|(x, y)| theirs.iter().any(|(p, q)| p <= x && y <= q))
            }),
            _ => false,
        }
    }

    pub fn to_text(&self) -> String {
        match self {
            Gtids::MariaDb(g) => g.to_text(),
            Gtids::MySql(g) => g.to_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_keeps_the_last_per_domain() {
        let mut g = MariaDbGtids::parse("0-1-42,1-2-7").unwrap();
        g.add(0, 1, 43);
        g.add(2, 5, 1);
        assert_eq!(g.to_text(), "0-1-43,1-2-7,2-5-1");
        assert_eq!(MariaDbGtids::parse("").unwrap().to_text(), "");
        assert!(MariaDbGtids::parse("x-1").is_none());
    }

    #[test]
    fn mysql_merges_intervals() {
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let mut g = MySqlGtids::parse(&format!("{uuid}:1-5:7")).unwrap();
        let sid = g.sids()[0].0;
        g.add(&sid, 6);
        assert_eq!(g.to_text(), format!("{uuid}:1-7"));
        g.add(&sid, 9);
        assert_eq!(g.to_text(), format!("{uuid}:1-7:9"));
        assert_eq!(g.sids()[0].1, vec![(1, 8), (9, 10)]);
    }

    #[test]
    fn coverage_per_domain_and_per_interval() {
        let set = |t: &str| Gtids::parse(t).unwrap();
        assert!(set("0-1-5").is_covered_by(&set("0-2-7,1-1-1")));
        assert!(!set("0-1-8").is_covered_by(&set("0-1-7")));
        assert!(!set("0-1-1,3-1-1").is_covered_by(&set("0-1-7")));
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let other = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        assert!(set(&format!("{uuid}:1-5")).is_covered_by(&set(&format!("{uuid}:1-7,{other}:1"))));
        assert!(!set(&format!("{uuid}:1-5:9")).is_covered_by(&set(&format!("{uuid}:1-7"))));
        assert!(!set(&format!("{other}:1")).is_covered_by(&set(&format!("{uuid}:1-7"))));
        assert!(!set("0-1-1").is_covered_by(&set(&format!("{uuid}:1-7"))));
    }
}
