//! The chain: every configured step in order.

use std::sync::Arc;

use headwater_core::{ChangeEvent, Result, Transform};

use crate::columns::{ColumnOp, Columns};
use crate::config::TransformConfig;
use crate::error::TransformError;
use crate::filter::Filter;
use crate::mask::Mask;
use crate::outbox::Outbox;
use crate::route::{route_template, Route};
use crate::tables::TableMatcher;

#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Box<dyn Transform>>,
}

impl TransformChain {
    pub fn build(configs: &[TransformConfig]) -> Result<Self, TransformError> {
        let steps = configs
            .iter()
            .enumerate()
            .map(|(index, config)| build_step(index, config))
            .collect::<Result<_, _>>()?;
        Ok(TransformChain { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs `events` through every step, in order.
    pub fn apply(&self, events: Vec<ChangeEvent>) -> Result<Vec<ChangeEvent>> {
        let mut current = events;
        let mut next = Vec::with_capacity(current.len());
        for step in &self.steps {
            for event in current.drain(..) {
                step.apply(event, &mut next)?;
            }
            std::mem::swap(&mut current, &mut next);
        }
        Ok(current)
    }

    /// What each step left out or dead-lettered since the last call:
    /// (transform, source, outcome, count).
    pub fn take_counts(&self) -> Vec<(&str, Arc<str>, &'static str, u64)> {
        self.steps
            .iter()
            .flat_map(|step| {
                step.take_counts()
                    .into_iter()
                    .map(|(source, outcome, n)| (step.name(), source, outcome, n))
            })
            .collect()
    }
}

fn build_step(
    index: usize,
    config: &TransformConfig,
) -> Result<Box<dyn Transform>, TransformError> {
    Ok(match config {
        TransformConfig::Filter {
            tables,
            ops,
            conditions,
        } => Box::new(Filter::new(
            TableMatcher::new(tables),
            ops.clone(),
            conditions.clone(),
        )),
        TransformConfig::Select { tables, columns } => Box::new(Columns::new(
            TableMatcher::new(tables),
            ColumnOp::Keep(columns.clone()),
        )),
        TransformConfig::Drop { tables, columns } => Box::new(Columns::new(
            TableMatcher::new(tables),
            ColumnOp::Remove(columns.clone()),
        )),
        TransformConfig::Rename { tables, columns } => Box::new(Columns::new(
            TableMatcher::new(tables),
            ColumnOp::Rename(columns.clone()),
        )),
        TransformConfig::Mask {
            tables,
            columns,
            method,
            salt,
        } => Box::new(Mask::new(
            TableMatcher::new(tables),
            columns.clone(),
            *method,
            salt.as_ref()
                .map(|s| s.expose().as_bytes().to_vec())
                .unwrap_or_default(),
        )),
        TransformConfig::Outbox(outbox) => {
            Box::new(
                Outbox::new(outbox).map_err(|message| TransformError::Invalid {
                    index,
                    kind: "outbox",
                    message,
                })?,
            )
        }
        TransformConfig::Route { tables, topic } => {
            let template = route_template(topic).map_err(|message| TransformError::Invalid {
                index,
                kind: "route",
                message,
            })?;
            Box::new(Route::new(TableMatcher::new(tables), template))
        }
    })
}
