//! `route`: choose the topic from a template.

use headwater_core::{ChangeEvent, Result, TopicTemplate, Transform};

use crate::tables::TableMatcher;

pub struct Route {
    tables: TableMatcher,
    template: TopicTemplate,
}

impl Route {
    pub fn new(tables: TableMatcher, template: TopicTemplate) -> Self {
        Route { tables, template }
    }
}

/// The `topic` of a `route` entry: a template without `{topic}` (the log
/// topic is what the route decides).
pub fn route_template(topic: &str) -> std::result::Result<TopicTemplate, String> {
    let template = TopicTemplate::parse(topic)?;
    if template.uses_log_topic() {
        return Err(format!(
            "`{topic}` uses `{{topic}}`, which a route decides rather than knows; use {{source}}, {{namespace}} and {{table}}"
        ));
    }
    Ok(template)
}

impl Transform for Route {
    fn name(&self) -> &str {
        "route"
    }

    fn apply(&self, mut event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if self.tables.matches(&event.table) {
            let mut topic = String::new();
            self.template.render("", &event, &mut topic);
            event.topic = Some(topic.into());
        }
        out.push(event);
        Ok(())
    }
}
