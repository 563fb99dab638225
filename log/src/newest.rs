//! The newest record a source wrote to a partition: where a restarted
//! source's replay is already in the log.

use std::sync::Arc;

use headwater_core::codec::peek_origin;
use headwater_core::Position;

use crate::error::Result;
use crate::reader::Reader;
use crate::topic::PartitionShared;

/// How far back a partition is searched for a source's newest record when
/// other sources wrote after it (topics shared through `route`).
const SEARCH_RECORDS: u64 = 4096;

/// The position of the newest record `source` wrote to the partition, if
/// one is among its last [`SEARCH_RECORDS`]. Blocks on file reads.
pub(crate) fn newest_of(
    part: &Arc<PartitionShared>,
    skip_damaged: bool,
    source: &str,
) -> Result<Option<Position>> {
    let (start, end) = (part.log_start(), part.high_watermark());
    let floor = start.max(end.saturating_sub(SEARCH_RECORDS));
    let mut to = end;
    while to > floor {
        let from = floor.max(to.saturating_sub(256));
        let mut reader = Reader::new(part.clone(), from, skip_damaged);
        let mut records = Vec::new();
        while reader.position() < to {
            let read = reader.read_now((to - reader.position()) as usize)?;
            if read.is_empty() {
                break;
            }
            records.extend(read.into_iter().filter(|r| r.offset < to));
        }
        // Records that are no change event (a dead-letter topic's) belong
        // to no source.
        let mine = records
            .iter()
            .rev()
            .find_map(|r| match peek_origin(&r.value) {
                Ok((writer, _, position)) if writer == source => Some(position),
                _ => None,
            });
        if mine.is_some() {
            return Ok(mine);
        }
        to = from;
    }
    Ok(None)
}
