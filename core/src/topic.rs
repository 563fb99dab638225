//! The target topic template: `{source}.{namespace}.{table}` by default.

use headwater_core::ChangeEvent;

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
            return Err("is empty; the default is \"{source}.{namespace}.{table}\"".into());
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

    /// Writes the topic of `event` (read from `log_topic`) into `out`.
    pub fn render(&self, log_topic: &str, event: &ChangeEvent, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Source => out.push_str(&event.source),
                Part::Namespace => out.push_str(&event.table.namespace),
                Part::Table => out.push_str(&event.table.name),
                Part::LogTopic => out.push_str(log_topic),
            }
        }
    }
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
    }
}
