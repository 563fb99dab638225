//! `route`: choose the topic from a template.

use headwater_core::{ChangeEvent, Result, Transform};

use crate::tables::TableMatcher;

pub struct Route {
    tables: TableMatcher,
    template: String,
}

impl Route {
    pub fn new(tables: TableMatcher, template: String) -> Self {
        Route { tables, template }
    }
}

impl Transform for Route {
    fn name(&self) -> &str {
        "route"
    }

    fn apply(&self, mut event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if self.tables.matches(&event.table) {
            let topic = self
                .template
                .replace("{source}", &event.source)
                .replace("{namespace}", &event.table.namespace)
                .replace("{table}", &event.table.name);
            event.topic = Some(topic.into());
        }
        out.push(event);
        Ok(())
    }
}
