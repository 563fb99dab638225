//! Transforms: pure, synchronous, one event in, zero or more out.

use std::sync::Arc;

use crate::error::Result;
use crate::event::ChangeEvent;

/// A step of the transform chain. The chain runs inside the source task,
/// before the append, so what a transform emits is what becomes durable.
/// A transform does no I/O and keeps no state that a restart would need.
pub trait Transform: Send + Sync {
    /// The name shown in logs and metrics (`mask`, `filter`…).
    fn name(&self) -> &str;

    /// Pushes the events that replace `event` onto `out` (none to drop it).
    fn apply(&self, event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()>;

    /// Events this transform left out or dead-lettered since the last call,
    /// as (source, outcome, count), for the metrics.
    fn take_counts(&self) -> Vec<(Arc<str>, &'static str, u64)> {
        Vec::new()
    }
}
