//! Topic templates — `{source}.{namespace}.{table}` by default — the one
//! implementation behind the log's default topic names, the `route`
//! transform and the Kafka sink's `topic`.

use crate::event::ChangeEvent;
use crate::schema::TableId;

/// Debezium's naming, the default topic of every change event.
pub const DEFAULT_TEMPLATE: &str = "{source}.{namespace}.{table}";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Source,
    Namespace,
    Table,
    /// The log topic the record was read from.
    LogTopic,
}

/// A parsed template; rendering writes into a reused string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{template}` has a `{{` without a closing `}}`"))?;
            parts.push(match &after[..close] {
                "source" => Part::Source,
                "namespace" => Part::Namespace,
                "table" => Part::Table,
                "topic" => Part::LogTopic,
                other => {
                    return Err(format!(
                        "`{template}` uses `{{{other}}}`; the placeholders are {{source}}, {{namespace}}, {{table}} and {{topic}}"
                    ))
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err(format!("is empty; the default is \"{DEFAULT_TEMPLATE}\""));
        }
        Ok(TopicTemplate { parts })
    }

    /// The topic name when the template has no placeholder.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether it names `{topic}`, the log topic a sink reads, which is not
    /// known before the event is in the log (in a transform).
    pub fn uses_log_topic(&self) -> bool {
        self.parts.contains(&Part::LogTopic)
    }

    /// Writes the topic of `event` (read from `log_topic`) into `out`.
    pub fn render(&self, log_topic: &str, event: &ChangeEvent, out: &mut String) {
        self.render_parts(&event.source, &event.table, log_topic, out);
    }

    fn render_parts(&self, source: &str, table: &TableId, log_topic: &str, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Source => out.push_str(source),
                Part::Namespace => out.push_str(&table.namespace),
                Part::Table => out.push_str(&table.name),
                Part::LogTopic => out.push_str(log_topic),
            }
        }
    }
}

/// [`DEFAULT_TEMPLATE`] for `source` and `table` (spelled out: it names
/// every event's topic).
pub fn default_topic(source: &str, table: &TableId) -> String {
    format!("{source}.{}.{}", table.namespace, table.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert!(TopicTemplate::parse("{source}.{namespace}.{table}").is_ok());
        assert_eq!(
            TopicTemplate::parse("cdc-all").unwrap().fixed(),
            Some("cdc-all")
        );
        assert!(TopicTemplate::parse("x.{tabel}").is_err());
        assert!(TopicTemplate::parse("x.{table").is_err());
        assert!(TopicTemplate::parse("").is_err());
        assert!(TopicTemplate::parse("{topic}.copy")
            .unwrap()
            .uses_log_topic());
    }

    #[test]
    fn the_default_is_the_default_template() {
        let table = TableId::new("public", "orders");
        let mut rendered = String::new();
        TopicTemplate::parse(DEFAULT_TEMPLATE)
            .unwrap()
            .render_parts("shop", &table, "", &mut rendered);
        assert_eq!(default_topic("shop", &table), rendered);
        assert_eq!(rendered, "shop.public.orders");
    }
}
