//! Change events into an [`AppendBatch`], encoded the way every reader of
//! the log decodes them (`headwater_core::codec`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use headwater_core::codec::{encode_event_with_schema_id, encode_key};
use headwater_core::{ChangeEvent, SchemaId, TableSchema, Timestamp};

use crate::append_batch::{AppendBatch, BatchTopic};
use crate::error::{LogError, Result};

/// Each event's schema id, hashing each distinct schema of `events` once.
pub fn schema_ids(events: &[ChangeEvent]) -> Vec<SchemaId> {
    let mut known: Vec<(&Arc<TableSchema>, SchemaId)> = Vec::new();
    events
        .iter()
        .map(
            |e| match known.iter().find(|(s, _)| Arc::ptr_eq(s, &e.schema)) {
                Some((_, id)) => *id,
                None => {
                    let id = e.schema.id();
                    known.push((&e.schema, id));
                    id
                }
            },
        )
        .collect()
}

/// Pushes `events` (with their `ids`, from [`schema_ids`]) to `batch`:
/// key and value encoded in place, timestamped with the commit time (or
/// now), each to the topic `topic_of` names — called once per distinct
/// table (and route) of the events, not once per event.
pub fn push_events(
    batch: &mut AppendBatch,
    events: &[ChangeEvent],
    ids: &[SchemaId],
    topic_of: impl Fn(&ChangeEvent) -> String,
) -> Result<()> {
    if events.len() != ids.len() {
        return Err(LogError::BadRecord {
            topic: String::new(),
            reason: format!(
                "{} events came with {} schema ids; compute them with schema_ids",
                events.len(),
                ids.len()
            ),
        });
    }
    let mut topics: Vec<(&ChangeEvent, BatchTopic)> = Vec::new();
    for (event, &id) in events.iter().zip(ids) {
        let same = |k: &&ChangeEvent| {
            k.table == event.table && k.topic == event.topic && k.source == event.source
        };
        let topic = match topics.iter().find(|(k, _)| same(k)) {
            Some((_, topic)) => *topic,
            None => {
                let topic = batch.topic(&topic_of(event))?;
                topics.push((event, topic));
                topic
            }
        };
        let timestamp_ms = match event.commit_ts {
            Some(Timestamp::Micros(micros)) => micros.div_euclid(1000),
            _ => now_ms(),
        };
        batch.push_with_to(
            topic,
            timestamp_ms,
            |key| encode_key(&event.key, key),
            |value| encode_event_with_schema_id(event, id, value),
        )?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
