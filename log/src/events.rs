//! Change events into a [`LogBatch`], encoded the way every reader of
//! the log decodes them (`headwater_core::codec`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use headwater_core::codec::{encode_event_with_schema_id, encode_key};
use headwater_core::{ChangeEvent, SchemaId, TableSchema, Timestamp};

use crate::append_batch::BatchTopic;
use crate::error::{LogError, Result};
use crate::event_log::LogBatch;
use crate::topic::partition_for;

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
    batch: &mut dyn LogBatch,
    events: &[ChangeEvent],
    ids: &[SchemaId],
    topic_of: impl Fn(&ChangeEvent) -> String,
) -> Result<()> {
    push_events_keeping(
        batch,
        events,
        ids,
        topic_of,
        None::<fn(&str, u32, &ChangeEvent) -> bool>,
    )
}

/// [`push_events`], pushing only the events `keep(topic, partition, event)`
/// accepts (each event's key is encoded once more to find its partition);
/// returns how many were left out.
pub fn push_events_where(
    batch: &mut dyn LogBatch,
    events: &[ChangeEvent],
    ids: &[SchemaId],
    topic_of: impl Fn(&ChangeEvent) -> String,
    keep: impl FnMut(&str, u32, &ChangeEvent) -> bool,
) -> Result<usize> {
    let before = batch.len();
    push_events_keeping(batch, events, ids, topic_of, Some(keep))?;
    Ok(events.len() - (batch.len() - before))
}

fn push_events_keeping(
    batch: &mut dyn LogBatch,
    events: &[ChangeEvent],
    ids: &[SchemaId],
    topic_of: impl Fn(&ChangeEvent) -> String,
    mut keep: Option<impl FnMut(&str, u32, &ChangeEvent) -> bool>,
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
    let mut topics: Vec<(&ChangeEvent, BatchTopic, String)> = Vec::new();
    let mut key = Vec::new();
    for (event, &id) in events.iter().zip(ids) {
        let same = |k: &&ChangeEvent| {
            k.table == event.table && k.topic == event.topic && k.source == event.source
        };
        let (topic, name) = match topics.iter().find(|(k, _, _)| same(k)) {
            Some((_, topic, name)) => (*topic, name.as_str()),
            None => {
                let name = topic_of(event);
                let topic = batch.topic(&name)?;
                topics.push((event, topic, name));
                let (_, topic, name) = &topics[topics.len() - 1];
                (*topic, name.as_str())
            }
        };
        if let Some(keep) = &mut keep {
            key.clear();
            encode_key(&event.key, &mut key);
            let partition = partition_for(&key, batch.partitions(topic)?);
            if !keep(name, partition, event) {
                continue;
            }
        }
        let timestamp_ms = match event.commit_ts {
            Some(Timestamp::Micros(micros)) => micros.div_euclid(1000),
            _ => now_ms(),
        };
        batch.push_encoded(
            topic,
            timestamp_ms,
            &mut |key| encode_key(&event.key, key),
            &mut |value| encode_event_with_schema_id(event, id, value),
        )?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, as record timestamps hold them.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
