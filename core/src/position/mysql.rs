//! MySQL/MariaDB positions: places in the binlog, annotated with GTIDs.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::gtid::Gtids;
use super::{DebeziumField, Scalar, SourcePosition};
use crate::codec::{Reader, Writer};
use crate::error::Result;

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
    fn file_number(&self) -> Option<u64> {
        self.file.rsplit_once('.').and_then(|(_, n)| n.parse().ok())
    }
}

impl Ord for MySqlPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.file_number(), &self.file)
            .cmp(&(other.file_number(), &other.file))
            .then(self.offset.cmp(&other.offset))
            .then(self.tx_index.cmp(&other.tx_index))
    }
}

impl PartialOrd for MySqlPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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

/// `mysql-bin.000003:4711`, or `mysql-bin.000003:4711#<gtid set>`.
impl fmt::Display for MySqlPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)?;
        match &self.gtid_set {
            Some(gtid) => write!(f, "#{gtid}"),
            None => Ok(()),
        }
    }
}

const DEBEZIUM_FIELDS: &[DebeziumField] = &[
    DebeziumField::new("sequence", "string", true),
    DebeziumField::new("gtid", "string", true),
    DebeziumField::new("file", "string", false),
    DebeziumField::new("pos", "int64", false),
    DebeziumField::new("row", "int32", false),
    DebeziumField::new("thread", "int64", true),
    DebeziumField::new("query", "string", true),
];

const HAS_GTIDS: u8 = 1;
const HAS_TX_INDEX: u8 = 2;

impl SourcePosition for MySqlPosition {
    const TAG: u8 = 1;
    const DEBEZIUM_CONNECTOR: &'static str = "mysql";

    fn parse(text: &str) -> Option<Self> {
        let (file_offset, gtid_set) = match text.split_once('#') {
            Some((fo, g)) => (fo, Some(Arc::from(g))),
            None => (text, None),
        };
        let (file, offset) = file_offset.rsplit_once(':')?;
        if file.is_empty() {
            return None;
        }
        Some(MySqlPosition {
            file: Arc::from(file),
            offset: offset.parse().ok()?,
            gtid_set,
            tx_index: 0,
        })
    }

    /// By GTIDs, which survive a failover to another server (file and
    /// offset are only comparable on one server); within one transaction by
    /// the change's place in it. Without GTIDs, by place in the binlog; a
    /// GTID on one side only cannot be compared: not covered.
    fn is_covered_by(&self, newest: &Self) -> bool {
        match (&self.gtid_set, &newest.gtid_set) {
            (Some(mine), Some(theirs)) => match (Gtids::parse(mine), Gtids::parse(theirs)) {
                (Some(mine), Some(theirs)) if mine == theirs => self.tx_index <= newest.tx_index,
                (Some(mine), Some(theirs)) => mine.is_covered_by(&theirs),
                _ => false,
            },
            (None, None) => self <= newest,
            _ => false,
        }
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.str(&self.file);
        w.var(self.offset);
        let mut flags = 0;
        if self.gtid_set.is_some() {
            flags |= HAS_GTIDS;
        }
        if self.tx_index > 0 {
            flags |= HAS_TX_INDEX;
        }
        w.u8(flags);
        if let Some(g) = &self.gtid_set {
            w.str(g);
        }
        if self.tx_index > 0 {
            w.var(self.tx_index);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let file = Arc::from(r.string()?);
        let offset = r.var()?;
        let flags = r.u8()?;
        if flags & !(HAS_GTIDS | HAS_TX_INDEX) != 0 {
            return Err(r.fail(format!("mysql position flags {flags}")));
        }
        let gtid_set = if flags & HAS_GTIDS != 0 {
            Some(Arc::from(r.string()?))
        } else {
            None
        };
        let tx_index = if flags & HAS_TX_INDEX != 0 {
            r.var()?
        } else {
            0
        };
        Ok(MySqlPosition {
            file,
            offset,
            gtid_set,
            tx_index,
        })
    }

    fn write_sort_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(
            out,
            "my:{:020}:{:020}:{:020}",
            self.file_number().unwrap_or(0),
            self.offset,
            self.tx_index
        )
    }

    fn debezium_fields(&self) -> &'static [DebeziumField] {
        DEBEZIUM_FIELDS
    }

    fn write_debezium(&self, _tx_id: Option<u64>, field: &mut dyn FnMut(&str, Scalar<'_>)) {
        field("sequence", Scalar::Null);
        field(
            "gtid",
            self.gtid_set.as_deref().map_or(Scalar::Null, Scalar::Str),
        );
        field("file", Scalar::Str(&self.file));
        field("pos", Scalar::Int(self.offset));
        field("row", Scalar::Int(0));
        field("thread", Scalar::Null);
        field("query", Scalar::Null);
    }
}
