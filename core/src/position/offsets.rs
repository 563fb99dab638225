//! Positions over several partitions: offsets in topics of a log (a Kafka
//! source reads many partitions at once, each in its own order).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{DebeziumField, Scalar, SourcePosition};
use crate::codec::{Reader, Writer};
use crate::error::Result;

/// One partition's offset: the last record read there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionOffset {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
}

/// Offsets in several partitions, at most one per partition, sorted by
/// topic and partition. An event carries its own record's partition; a
/// checkpoint carries every partition read so far.
///
/// The order (by partition, then offset) is total so positions can be
/// sorted and deduplicated, but only [`SourcePosition::is_covered_by`] says
/// whether one was read before another: partitions have no order between
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Offsets(Arc<[PartitionOffset]>);

impl Offsets {
    pub fn new(mut offsets: Vec<PartitionOffset>) -> Self {
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        offsets.dedup_by(|later, earlier| {
            let same = later.topic == earlier.topic && later.partition == earlier.partition;
            if same {
                earlier.offset = earlier.offset.max(later.offset);
            }
            same
        });
        Offsets(offsets.into())
    }

    pub fn of(topic: &str, partition: u32, offset: u64) -> Self {
        Offsets::new(vec![PartitionOffset {
            topic: topic.into(),
            partition,
            offset,
        }])
    }

    pub fn partitions(&self) -> &[PartitionOffset] {
        &self.0
    }

    pub fn get(&self, topic: &str, partition: u32) -> Option<u64> {
        self.0
            .iter()
            .find(|p| &*p.topic == topic && p.partition == partition)
            .map(|p| p.offset)
    }

    /// These offsets with `later`'s on top (a checkpoint moving on).
    pub fn merged(&self, later: &Offsets) -> Offsets {
        Offsets::new(self.0.iter().chain(later.0.iter()).cloned().collect())
    }
}

const PREFIX: &str = "offsets:";

/// `offsets:orders/0=41,orders/1=7`.
impl fmt::Display for Offsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for (i, p) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}/{}={}", p.topic, p.partition, p.offset)?;
        }
        Ok(())
    }
}

const DEBEZIUM_FIELDS: &[DebeziumField] = &[DebeziumField::new("offsets", "string", true)];

impl SourcePosition for Offsets {
    const TAG: u8 = 2;
    const DEBEZIUM_CONNECTOR: &'static str = "headwater";

    fn parse(text: &str) -> Option<Self> {
        let list = text.strip_prefix(PREFIX)?;
        let mut offsets = Vec::new();
        for entry in list.split(',').filter(|e| !e.is_empty()) {
            let (topic_partition, offset) = entry.rsplit_once('=')?;
            let (topic, partition) = topic_partition.rsplit_once('/')?;
            if topic.is_empty() {
                return None;
            }
            offsets.push(PartitionOffset {
                topic: topic.into(),
                partition: partition.parse().ok()?,
                offset: offset.parse().ok()?,
            });
        }
        Some(Offsets::new(offsets))
    }

    /// Every partition of `self` was read up to at least its offset.
    fn is_covered_by(&self, newest: &Self) -> bool {
        self.0.iter().all(|p| {
            newest
                .get(&p.topic, p.partition)
                .is_some_and(|n| p.offset <= n)
        })
    }

    fn encode(&self, w: &mut Writer<'_>) {
        w.var(self.0.len() as u64);
        for p in self.0.iter() {
            w.str(&p.topic);
            w.var(u64::from(p.partition));
            w.var(p.offset);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        // Each entry takes at least three bytes.
        let n = r.count()?;
        let mut offsets = Vec::with_capacity(n / 3);
        for _ in 0..n {
            let topic = Arc::from(r.string()?);
            let partition =
                u32::try_from(r.var()?).map_err(|_| r.fail("a partition number above u32::MAX"))?;
            offsets.push(PartitionOffset {
                topic,
                partition,
                offset: r.var()?,
            });
        }
        Ok(Offsets::new(offsets))
    }

    fn write_sort_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str("ko")?;
        for p in self.0.iter() {
            write!(out, ":{}/{:010}={:020}", p.topic, p.partition, p.offset)?;
        }
        Ok(())
    }

    fn debezium_fields(&self) -> &'static [DebeziumField] {
        DEBEZIUM_FIELDS
    }

    fn write_debezium(&self, _tx_id: Option<u64>, field: &mut dyn FnMut(&str, Scalar<'_>)) {
        field("offsets", Scalar::Str(&self.to_string()));
    }
}
