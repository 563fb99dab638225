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
    /// The outbox event's routing value (`route_by`).
    Route,
}

/// A parsed template; rendering writes into a reused string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicTemplate {
    parts: Vec<Part>,
}

impl TopicTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let parsed = Self::parse_routed(template)?;
        if parsed.parts.contains(&Part::Route) {
            return Err(format!(
                "`{template}` uses `{{route}}`, which only an outbox's `topic` has; the placeholders are {{source}}, {{namespace}}, {{table}} and {{topic}}"
            ));
        }
        Ok(parsed)
    }

    /// [`TopicTemplate::parse`], also accepting `{route}`: an outbox
    /// event's routing value.
    pub fn parse_routed(template: &str) -> Result<Self, String> {
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
                "route" => Part::Route,
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

    /// Writes the topic of an outbox event routed by `route` into `out`.
    pub fn render_routed(&self, source: &str, table: &TableId, route: &str, out: &mut String) {
        self.render_with(source, table, "", route, out);
    }

    fn render_parts(&self, source: &str, table: &TableId, log_topic: &str, out: &mut String) {
        self.render_with(source, table, log_topic, "", out);
    }

    fn render_with(
        &self,
        source: &str,
        table: &TableId,
        log_topic: &str,
        route: &str,
        out: &mut String,
    ) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Source => out.push_str(source),
                Part::Namespace => out.push_str(&table.namespace),
                Part::Table => out.push_str(&table.name),
                Part::LogTopic => out.push_str(log_topic),
                Part::Route => out.push_str(route),
            }
        }
    }
}

/// A topic name the log accepts: characters other than letters, digits,
/// `.`, `_` and `-` become `_` (as Debezium does).
pub fn topic_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether the log takes `name` as a topic: 1 to 200 ASCII letters,
/// digits, `.`, `_` and `-`, not starting with `.`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The dead-letter topic of the source or sink `name`: what it could not
/// deliver, with the reason in the header `headwater.dlq.reason`.
pub fn dead_letter_topic(name: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}{name}")
}

/// Every dead-letter topic's name starts with this; no sink reads them
/// unless it names one.
pub const DEAD_LETTER_PREFIX: &str = "_dlq.";

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
        assert!(TopicTemplate::parse("outbox.{route}").is_err());
    }

    #[test]
    fn an_outbox_template_renders_the_route() {
        let table = TableId::new("public", "outbox");
        let mut rendered = String::new();
        TopicTemplate::parse_routed("outbox.event.{route}.{source}")
            .unwrap()
            .render_routed("shop", &table, "Order", &mut rendered);
        assert_eq!(rendered, "outbox.event.Order.shop");
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
