//! Transforms that change a table's columns (select, drop, rename, mask)
//! derive a new schema once per input schema and reuse it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use headwater_core::{SchemaId, TableSchema};

/// A derived schema and, for each of its columns, the input column it
/// takes its value from.
pub struct Reshaped {
    pub schema: Arc<TableSchema>,
    pub sources: Vec<usize>,
}

#[derive(Default)]
pub struct ReshapeCache(Mutex<HashMap<SchemaId, Arc<Reshaped>>>);

impl ReshapeCache {
    pub fn get_or_derive<E>(
        &self,
        input: &Arc<TableSchema>,
        derive: impl FnOnce(&TableSchema) -> Result<Reshaped, E>,
    ) -> Result<Arc<Reshaped>, E> {
        let id = input.id();
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(&id) {
            return Ok(hit.clone());
        }
        let derived = Arc::new(derive(input)?);
        cache.insert(id, derived.clone());
        Ok(derived)
    }
}

/// Rebuilds a row from the input row by `sources`.
pub fn project<T: Clone>(row: &mut Option<Vec<T>>, sources: &[usize]) {
    if let Some(values) = row {
        *values = sources
            .iter()
            .filter_map(|&i| values.get(i).cloned())
            .collect();
    }
}
