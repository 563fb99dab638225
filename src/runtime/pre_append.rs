//! The stage before the log: a source's batch through the transform chain,
//! and every schema it carries stored in the registry.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use headwater_core::{ChangeEvent, EventBatch, Position, Result, SchemaId, SchemaRegistry};
use headwater_log::events::schema_ids;
use headwater_transforms::TransformChain;

use super::appender::{lock, spawn_blocking};
use crate::metrics::{Metrics, TRANSFORM_OUTCOMES};

/// A batch ready for the log: transformed events, each with its stored
/// schema's id.
pub struct Prepared {
    pub events: Vec<ChangeEvent>,
    pub ids: Vec<SchemaId>,
    pub checkpoint: Option<Position>,
}

pub struct PreAppend {
    schemas: Arc<SchemaRegistry>,
    chain: Arc<TransformChain>,
    metrics: Arc<Metrics>,
    /// Schemas this stage has stored already (each is stored once).
    registered: Mutex<HashSet<SchemaId>>,
}

impl PreAppend {
    pub fn new(
        schemas: Arc<SchemaRegistry>,
        chain: Arc<TransformChain>,
        metrics: Arc<Metrics>,
    ) -> Self {
        PreAppend {
            schemas,
            chain,
            metrics,
            registered: Mutex::new(HashSet::new()),
        }
    }

    /// Transforms the batch, then stores the schemas not stored yet
    /// (fsync) before any event that refers to them can reach the log.
    pub async fn prepare(&self, batch: EventBatch) -> Result<Prepared> {
        let events = if self.chain.is_empty() {
            batch.events
        } else {
            let events = self.chain.apply(batch.events)?;
            for (transform, source, outcome, n) in self.chain.take_counts() {
                self.metrics.add(
                    TRANSFORM_OUTCOMES,
                    &[
                        ("transform", transform),
                        ("source", &source),
                        ("outcome", outcome),
                    ],
                    n,
                );
            }
            events
        };
        let ids = self.register_schemas(&events).await?;
        Ok(Prepared {
            events,
            ids,
            checkpoint: batch.checkpoint,
        })
    }

    /// The schema id of every event (computed once per distinct schema
    /// of the batch), after storing the schemas this stage has not
    /// stored yet (each once; fsync).
    async fn register_schemas(&self, events: &[ChangeEvent]) -> Result<Vec<SchemaId>> {
        let ids = schema_ids(events);
        let new: Vec<_> = {
            let registered = lock(&self.registered);
            let mut seen = HashSet::new();
            events
                .iter()
                .zip(&ids)
                .filter(|(_, id)| !registered.contains(*id) && seen.insert(**id))
                .map(|(e, _)| e.schema.clone())
                .collect()
        };
        if !new.is_empty() {
            let schemas = self.schemas.clone();
            let stored = spawn_blocking(move || {
                new.iter()
                    .map(|s| schemas.register(s))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
            lock(&self.registered).extend(stored);
        }
        Ok(ids)
    }
}
