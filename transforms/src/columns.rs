//! `select`, `drop` and `rename`: change which columns a table has.

use std::collections::BTreeMap;

use headwater_core::{ChangeEvent, Result, Transform};

use crate::reshape::{project, ReshapeCache, Reshaped};
use crate::tables::TableMatcher;

pub enum ColumnOp {
    Keep(Vec<String>),
    Remove(Vec<String>),
    Rename(BTreeMap<String, String>),
}

pub struct Columns {
    name: &'static str,
    tables: TableMatcher,
    op: ColumnOp,
    cache: ReshapeCache,
}

impl Columns {
    pub fn new(tables: TableMatcher, op: ColumnOp) -> Self {
        let name = match op {
            ColumnOp::Keep(_) => "select",
            ColumnOp::Remove(_) => "drop",
            ColumnOp::Rename(_) => "rename",
        };
        Columns {
            name,
            tables,
            op,
            cache: ReshapeCache::default(),
        }
    }
}

impl Transform for Columns {
    fn name(&self) -> &str {
        self.name
    }

    fn apply(&self, mut event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if !self.tables.matches(&event.table) {
            out.push(event);
            return Ok(());
        }
        let reshaped = self.cache.get_or_derive(&event.schema, |input| {
            let mut schema = input.clone();
            let mut sources: Vec<usize> = (0..input.columns.len()).collect();
            match &self.op {
                ColumnOp::Keep(keep) => sources.retain(|&i| keep.contains(&input.columns[i].name)),
                ColumnOp::Remove(remove) => {
                    sources.retain(|&i| !remove.contains(&input.columns[i].name))
                }
                ColumnOp::Rename(renames) => {
                    for column in &mut schema.columns {
                        if let Some(new) = renames.get(&column.name) {
                            column.name = new.clone();
                        }
                    }
                }
            }
            schema.columns = sources.iter().map(|&i| schema.columns[i].clone()).collect();
            Ok::<_, headwater_core::Error>(Reshaped {
                schema: std::sync::Arc::new(schema),
                sources,
            })
        })?;
        project(&mut event.before, &reshaped.sources);
        project(&mut event.after, &reshaped.sources);
        event.schema = reshaped.schema.clone();
        out.push(event);
        Ok(())
    }
}
