//! The transactional outbox: a row of an outbox table (or an outbox
//! message) becomes a domain event — routed to a topic by its aggregate
//! type, keyed by its aggregate id, its payload the message.
//!
//! An outbox event is a [`ChangeEvent`] with [`Op::Event`]. Its schema's
//! columns are, in this order: the event id, the aggregate key column(s)
//! (the event's key), the event type, the payload, then the extra fields;
//! `after` holds their values. Sinks find them with [`OutboxEvent`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::event::{ChangeEvent, Header, Op};
use crate::schema::{Column, TableId, TableSchema, ValueKind};
use crate::topic::{is_valid_topic_name, topic_name, TopicTemplate};
use crate::value::Value;

/// Which columns hold what. Every key is optional; the defaults are
/// Debezium's outbox column names.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxColumns {
    /// The event id: header `id`, what consumers deduplicate by.
    #[serde(default = "default_id")]
    pub id: String,
    /// The aggregate key: the message key and partition key. One column,
    /// or several (`key = ["tenant", "aggregateid"]`).
    #[serde(default = "default_key")]
    pub key: KeyColumns,
    /// The column whose value names the topic (`{route}`).
    #[serde(default = "default_route_by")]
    pub route_by: String,
    /// The event's topic; `{route}`, `{source}`, `{namespace}`, `{table}`.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// json, jsonb, text or bytes: the message value.
    #[serde(default = "default_payload")]
    pub payload: String,
    /// The event type: header `type`.
    #[serde(default = "default_type")]
    pub type_column: String,
    /// More columns sent as headers of the same name.
    #[serde(default)]
    pub headers: Vec<String>,
    /// More columns kept next to the payload (in the archive).
    #[serde(default)]
    pub fields: Vec<String>,
    /// A NULL or empty payload becomes a tombstone for the key.
    #[serde(default)]
    pub tombstone_on_empty_payload: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum KeyColumns {
    One(String),
    Many(Vec<String>),
}

impl KeyColumns {
    pub fn names(&self) -> &[String] {
        match self {
            KeyColumns::One(name) => std::slice::from_ref(name),
            KeyColumns::Many(names) => names,
        }
    }
}

fn default_id() -> String {
    "id".into()
}
fn default_key() -> KeyColumns {
    KeyColumns::One("aggregateid".into())
}
fn default_route_by() -> String {
    "aggregatetype".into()
}
fn default_topic() -> String {
    "outbox.event.{route}".into()
}
fn default_payload() -> String {
    "payload".into()
}
fn default_type() -> String {
    "type".into()
}

impl Default for OutboxColumns {
    fn default() -> Self {
        OutboxColumns {
            id: default_id(),
            key: default_key(),
            route_by: default_route_by(),
            topic: default_topic(),
            payload: default_payload(),
            type_column: default_type(),
            headers: Vec::new(),
            fields: Vec::new(),
            tombstone_on_empty_payload: false,
        }
    }
}

/// The outbox columns, checked, with the topic template parsed.
#[derive(Clone, Debug)]
pub struct OutboxShape {
    columns: OutboxColumns,
    topic: TopicTemplate,
}

impl OutboxShape {
    /// Fails with what to fix when the topic template is bad or one column
    /// is given two of the roles kept in the event (id, key, type,
    /// payload, fields).
    pub fn new(columns: OutboxColumns) -> Result<Self, String> {
        let topic =
            TopicTemplate::parse_routed(&columns.topic).map_err(|e| format!("topic {e}"))?;
        if topic.uses_log_topic() {
            return Err(format!(
                "topic `{}` uses `{{topic}}`; an outbox decides the topic, use {{route}}, {{source}}, {{namespace}} and {{table}}",
                columns.topic
            ));
        }
        if columns.key.names().is_empty() {
            return Err("key names no column".into());
        }
        let mut kept: Vec<&str> = Vec::new();
        for name in Self::kept_names(&columns) {
            if kept.contains(&name) {
                return Err(format!(
                    "column `{name}` is named twice among id, key, type_column, payload and fields; each is its own column of the event"
                ));
            }
            kept.push(name);
        }
        Ok(OutboxShape { columns, topic })
    }

    fn kept_names(columns: &OutboxColumns) -> impl Iterator<Item = &str> {
        std::iter::once(columns.id.as_str())
            .chain(columns.key.names().iter().map(String::as_str))
            .chain([columns.type_column.as_str(), columns.payload.as_str()])
            .chain(columns.fields.iter().map(String::as_str))
    }

    pub fn columns(&self) -> &OutboxColumns {
        &self.columns
    }

    /// Every column an outbox table must have, each once.
    pub fn required_columns(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Self::kept_names(&self.columns)
            .chain(std::iter::once(self.columns.route_by.as_str()))
            .chain(self.columns.headers.iter().map(String::as_str))
            .collect();
        let mut seen = Vec::with_capacity(names.len());
        names.retain(|n| {
            let new = !seen.contains(n);
            seen.push(*n);
            new
        });
        names
    }

    /// Where each role's column is in `schema`, or which one it lacks.
    pub fn layout(&self, schema: &TableSchema) -> Result<OutboxLayout, String> {
        let find = |name: &str, role: &str| {
            schema.column_index(name).ok_or_else(|| {
                format!(
                    "table {} has no column `{name}` (the outbox's {role}); name its column with `{role} = \"...\"`",
                    schema.table
                )
            })
        };
        let c = &self.columns;
        let id = find(&c.id, "id")?;
        let key = c
            .key
            .names()
            .iter()
            .map(|n| find(n, "key"))
            .collect::<Result<Vec<_>, _>>()?;
        let route = find(&c.route_by, "route_by")?;
        let kind = find(&c.type_column, "type_column")?;
        let payload = find(&c.payload, "payload")?;
        let payload_kind = &schema.columns[payload].kind;
        if !matches!(
            payload_kind,
            ValueKind::Json | ValueKind::Text | ValueKind::Bytes
        ) {
            return Err(format!(
                "table {}: the outbox payload column `{}` is {}; it must be json, jsonb, text or bytes",
                schema.table, c.payload, schema.columns[payload].type_name
            ));
        }
        let headers = c
            .headers
            .iter()
            .map(|n| find(n, "headers").map(|i| (n.clone(), i)))
            .collect::<Result<Vec<_>, _>>()?;
        let fields = c
            .fields
            .iter()
            .map(|n| find(n, "fields"))
            .collect::<Result<Vec<_>, _>>()?;

        let kept: Vec<usize> = std::iter::once(id)
            .chain(key.iter().copied())
            .chain([kind, payload])
            .chain(fields.iter().copied())
            .collect();
        let columns = kept
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let mut column = schema.columns[i].clone();
                column.key_position = (1..=key.len()).contains(&n).then(|| (n - 1) as u16);
                column
            })
            .collect();
        let needed = kept
            .iter()
            .chain(std::iter::once(&route))
            .chain(headers.iter().map(|(_, i)| i))
            .max()
            .map_or(0, |i| i + 1);
        Ok(OutboxLayout {
            kept,
            key_len: key.len(),
            route,
            headers,
            needed,
            topics: Mutex::new(HashMap::new()),
            schema: Arc::new(TableSchema {
                table: schema.table.clone(),
                version: schema.version,
                columns,
            }),
        })
    }

    /// The shape of an outbox message's JSON object: every configured name
    /// a field of it; ids, keys, the route, the type and headers as text,
    /// the payload and extra fields as JSON.
    pub fn message_schema(&self, table: TableId) -> TableSchema {
        let column = |name: &str, kind: ValueKind| Column {
            name: name.to_owned(),
            type_name: match kind {
                ValueKind::Json => "json".into(),
                _ => "text".into(),
            },
            kind,
            nullable: true,
            key_position: None,
        };
        let c = &self.columns;
        let mut columns = vec![column(&c.id, ValueKind::Text)];
        columns.extend(c.key.names().iter().map(|n| column(n, ValueKind::Text)));
        columns.push(column(&c.type_column, ValueKind::Text));
        columns.push(column(&c.payload, ValueKind::Json));
        columns.extend(c.fields.iter().map(|n| column(n, ValueKind::Json)));
        for name in std::iter::once(&c.route_by).chain(&c.headers) {
            if !columns.iter().any(|col| &col.name == name) {
                columns.push(column(name, ValueKind::Text));
            }
        }
        TableSchema {
            table,
            version: 1,
            columns,
        }
    }

    /// The topic of an event routed by `route`, or why it cannot have one.
    fn topic(&self, source: &str, table: &TableId, route: &str) -> Result<String, String> {
        let mut rendered = String::new();
        self.topic
            .render_routed(source, table, route, &mut rendered);
        let topic = topic_name(&rendered);
        if is_valid_topic_name(&topic) {
            Ok(topic)
        } else {
            Err(format!(
                "the route `{route}` (column `{}`) makes the topic `{topic}`, which is not a valid topic name (1 to 200 characters, not starting with `.`)",
                self.columns.route_by
            ))
        }
    }
}

/// An [`OutboxShape`] resolved against one table schema: where each role's
/// column is, and the event's schema.
#[derive(Debug)]
pub struct OutboxLayout {
    /// Source column of each event column: id, key…, type, payload, fields….
    kept: Vec<usize>,
    key_len: usize,
    route: usize,
    headers: Vec<(String, usize)>,
    /// Values a row needs: one past the last column used.
    needed: usize,
    schema: Arc<TableSchema>,
    topics: Mutex<HashMap<String, RoutedTopic>>,
}

impl OutboxLayout {
    /// The event that the outbox row `row` of `from` (a change of the outbox
    /// table, or a message) becomes, or why it cannot become one. The
    /// event's values are moved out of `row`, which is left as it was when
    /// this fails.
    pub fn event(
        &self,
        shape: &OutboxShape,
        from: &ChangeEvent,
        row: &mut [Value],
    ) -> Result<ChangeEvent, String> {
        let c = shape.columns();
        if row.len() < self.needed {
            return Err(format!(
                "the row has {} values; the outbox's columns need {}",
                row.len(),
                self.needed
            ));
        }
        let present = |i: usize, role: &str, name: &str| match &row[i] {
            Value::Null => Err(format!("the outbox {role} `{name}` is NULL")),
            Value::Unchanged => Err(format!(
                "the outbox {role} `{name}` was not sent (an unchanged TOAST value)"
            )),
            _ => Ok(()),
        };
        present(self.route, "route_by", &c.route_by)?;
        present(self.kept[0], "id", &c.id)?;
        for (n, &i) in self.kept[1..=self.key_len].iter().enumerate() {
            present(i, "key", &c.key.names()[n])?;
        }
        let topic = self.topic(shape, from, &row[self.route])?;
        let payload = &row[self.kept[self.key_len + 2]];
        if let Value::Json(json) = payload {
            serde_json::from_str::<serde::de::IgnoredAny>(json).map_err(|e| {
                format!("the outbox payload `{}` is not valid JSON: {e}", c.payload)
            })?;
        }
        if matches!(payload, Value::Unchanged) {
            return Err(format!(
                "the outbox payload `{}` was not sent (an unchanged TOAST value; an outbox row is read on insert, so this is an update: set on_update = \"warn\")",
                c.payload
            ));
        }
        let empty = match payload {
            Value::Null => true,
            Value::Text(s) | Value::Json(s) => s.is_empty(),
            Value::Bytes(b) => b.is_empty(),
            _ => false,
        };

        // Nothing fails from here on.
        let mut headers = Vec::with_capacity(2 + self.headers.len());
        headers.push(Header {
            name: "id".into(),
            value: text(&row[self.kept[0]]).into_owned().into_bytes(),
        });
        let kind = &row[self.kept[self.key_len + 1]];
        if !kind.is_null() {
            headers.push(Header {
                name: "type".into(),
                value: text(kind).into_owned().into_bytes(),
            });
        }
        for (name, i) in &self.headers {
            match &row[*i] {
                Value::Null | Value::Unchanged => {}
                v => headers.push(Header {
                    name: name.clone(),
                    value: text(v).into_owned().into_bytes(),
                }),
            }
        }
        let key = self.kept[1..=self.key_len]
            .iter()
            .map(|&i| row[i].clone())
            .collect();
        let after = if empty && c.tombstone_on_empty_payload {
            None
        } else {
            Some(
                self.kept
                    .iter()
                    .map(|&i| std::mem::replace(&mut row[i], Value::Null))
                    .collect(),
            )
        };
        Ok(ChangeEvent {
            source: from.source.clone(),
            table: from.table.clone(),
            op: Op::Event,
            key,
            before: None,
            after,
            position: from.position.clone(),
            commit_ts: from.commit_ts,
            tx_id: from.tx_id,
            schema: self.schema.clone(),
            topic: Some(topic),
            headers,
        })
    }

    /// The topic of an event of `from` routed by `route`, from the cache
    /// when this route (of this source) was seen before.
    fn topic(
        &self,
        shape: &OutboxShape,
        from: &ChangeEvent,
        route: &Value,
    ) -> Result<Arc<str>, String> {
        let route = text(route);
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((source, topic)) = topics.get(route.as_ref()) {
            if *source == from.source {
                return Ok(topic.clone());
            }
        }
        let topic: Arc<str> = shape.topic(&from.source, &from.table, &route)?.into();
        if topics.len() >= MAX_CACHED_TOPICS {
            topics.clear();
        }
        topics.insert(route.into_owned(), (from.source.clone(), topic.clone()));
        Ok(topic)
    }
}

/// A route's topic, and the source it was rendered for.
type RoutedTopic = (Arc<str>, Arc<str>);

/// Routes whose topic a layout keeps before its cache starts over.
const MAX_CACHED_TOPICS: usize = 10_000;

/// A value as header or route text, borrowed when it is text already.
fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Text(s) | Value::Enum(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The row an outbox message's content (a JSON object) gives, one value
/// per column of [`OutboxShape::message_schema`]: text columns take a
/// string as it is and any other JSON as its text, JSON columns the JSON
/// exactly as written. A field the object lacks is an error.
pub fn message_row(schema: &TableSchema, content: &[u8]) -> Result<Vec<Value>, String> {
    use serde_json::value::RawValue;
    let object: std::collections::HashMap<String, &RawValue> = serde_json::from_slice(content)
        .map_err(|e| format!("the outbox message is not a JSON object: {e}"))?;
    schema
        .columns
        .iter()
        .map(|c| {
            let raw = object
                .get(&c.name)
                .ok_or_else(|| format!("the outbox message has no field `{}`", c.name))?
                .get();
            Ok(match c.kind {
                ValueKind::Json => Value::Json(raw.to_owned()),
                _ if raw == "null" => Value::Null,
                _ => match serde_json::from_str::<String>(raw) {
                    Ok(text) => Value::Text(text),
                    Err(_) => Value::Text(raw.to_owned()),
                },
            })
        })
        .collect()
}

/// An outbox event's parts, as sinks read them.
pub struct OutboxEvent<'a> {
    event: &'a ChangeEvent,
    key_len: usize,
}

impl<'a> OutboxEvent<'a> {
    /// `None` unless `event` is an outbox event.
    pub fn of(event: &'a ChangeEvent) -> Option<Self> {
        (event.op == Op::Event).then_some(OutboxEvent {
            event,
            key_len: event.key.len(),
        })
    }

    fn column(&self, i: usize) -> Option<&'a Value> {
        self.event.after.as_ref().and_then(|row| row.get(i))
    }

    /// The event id (also header `id`).
    pub fn id(&self) -> Option<&'a Value> {
        self.column(0)
    }

    /// The payload; `None` for a tombstone.
    pub fn payload(&self) -> Option<&'a Value> {
        self.column(self.key_len + 2)
    }

    /// Whether this event deletes its key (an empty payload, with
    /// `tombstone_on_empty_payload`).
    pub fn is_tombstone(&self) -> bool {
        self.event.after.is_none()
    }

    /// The message key: the aggregate key as text; a composite key as a
    /// JSON object of its columns' text.
    pub fn key_text(&self) -> String {
        match self.event.key.as_slice() {
            [one] => one.to_string(),
            many => {
                // In key order (a JSON map would sort the names).
                let names = self.event.schema.columns.iter().skip(1);
                let members: Vec<String> = names
                    .zip(many)
                    .map(|(c, v)| {
                        format!("{}:{}", json_string(&c.name), json_string(&v.to_string()))
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }

    /// The payload's bytes as stored: JSON and text as their UTF-8, bytes
    /// as they are.
    pub fn payload_bytes(&self) -> Option<&'a [u8]> {
        match self.payload()? {
            Value::Json(s) | Value::Text(s) => Some(s.as_bytes()),
            Value::Bytes(b) => Some(b),
            Value::Null => None,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
