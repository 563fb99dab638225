//! `outbox`: rows of outbox tables, and outbox messages, into domain
//! events (`Op::Event`), routed and keyed by their aggregate. A row or
//! message that cannot become an event goes to the source's dead-letter
//! topic with the reason; nothing is dropped silently.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Deserializer};

use headwater_core::kind::deserialize_split;
use headwater_core::outbox::{message_row, OutboxColumns, OutboxLayout, OutboxShape};
use headwater_core::topic::dead_letter_topic;
use headwater_core::{ChangeEvent, Header, Op, Result, TableId, TableSchema, Transform, Value};

use crate::tables::TableMatcher;

/// `[[transforms]] type = "outbox"`: its own keys, then the outbox columns
/// ([`OutboxColumns`]) at the same level.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    pub tables: Vec<String>,
    pub on_update: OnUpdate,
    pub messages: Option<MessagesConfig>,
    pub columns: OutboxColumns,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnKeys {
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    on_update: OnUpdate,
    messages: Option<MessagesConfig>,
}

impl<'de> Deserialize<'de> for OutboxConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (own, columns): (OwnKeys, OutboxColumns) =
            deserialize_split(d, &["tables", "on_update", "messages"])?;
        Ok(OutboxConfig {
            tables: own.tables,
            on_update: own.on_update,
            messages: own.messages,
            columns,
        })
    }
}

/// What an update of an outbox row does: outbox rows are written once, so
/// an update is usually a mistake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUpdate {
    /// Skipped, with a warning and a metric (Debezium's default).
    #[default]
    Warn,
    /// To the dead-letter topic.
    Error,
    /// An event from the row after the update.
    Emit,
}

/// `messages = { prefix = "outbox" }`: PostgreSQL logical messages with
/// this prefix are outbox events too.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    pub prefix: String,
}

/// How an event left the outbox transform, when not as an event.
pub const SKIPPED_UPDATE: &str = "skipped_update";
pub const DEAD_LETTERED: &str = "dead_lettered";

/// The prefix of outbox messages, and the shape of their JSON.
struct Messages {
    prefix: String,
    schema: TableSchema,
    layout: OutboxLayout,
}

pub struct Outbox {
    tables: TableMatcher,
    shape: OutboxShape,
    on_update: OnUpdate,
    messages: Option<Messages>,
    /// Per table schema seen, by its address.
    layouts: Mutex<HashMap<usize, CachedLayout>>,
    counts: Mutex<BTreeMap<(Arc<str>, &'static str), u64>>,
}

/// A schema's layout, or why it has none; holding the schema keeps its
/// address from being reused by another while cached.
type CachedLayout = (Arc<TableSchema>, std::result::Result<OutboxLayout, String>);

/// Table schemas whose layout is kept before the cache starts over.
const MAX_LAYOUTS: usize = 1_000;

impl Outbox {
    pub fn new(config: &OutboxConfig) -> std::result::Result<Self, String> {
        let shape = OutboxShape::new(config.columns.clone())?;
        let messages = match &config.messages {
            Some(m) => {
                let schema = shape.message_schema(TableId::new("pg_logical", "message"));
                let layout = shape.layout(&schema)?;
                Some(Messages {
                    prefix: m.prefix.clone(),
                    schema,
                    layout,
                })
            }
            None => None,
        };
        Ok(Outbox {
            tables: TableMatcher::new(&config.tables),
            shape,
            on_update: config.on_update,
            messages,
            layouts: Mutex::new(HashMap::new()),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    fn count(&self, source: &Arc<str>, outcome: &'static str) {
        *lock(&self.counts)
            .entry((source.clone(), outcome))
            .or_default() += 1;
    }

    fn dead_letter(&self, mut event: ChangeEvent, reason: String) -> ChangeEvent {
        tracing::warn!(source = %event.source, table = %event.table, position = %event.position,
            reason = %reason, "outbox: not an event; sent to the dead-letter topic");
        self.count(&event.source, DEAD_LETTERED);
        event.topic = Some(dead_letter_topic(&event.source).into());
        for (name, value) in [
            ("headwater.dlq.reason", reason),
            ("headwater.dlq.transform", "outbox".to_owned()),
        ] {
            event.headers.push(Header {
                name: name.into(),
                value: value.into_bytes(),
            });
        }
        event
    }

    /// The event `event` (a change of an outbox table) becomes, or the
    /// event as it came, to the dead-letter topic.
    fn row_event(&self, mut event: ChangeEvent) -> ChangeEvent {
        let mut row = event.after.take().unwrap_or_default();
        let built = {
            let id = Arc::as_ptr(&event.schema) as usize;
            let mut layouts = lock(&self.layouts);
            if layouts.len() >= MAX_LAYOUTS && !layouts.contains_key(&id) {
                layouts.clear();
            }
            let (_, layout) = layouts
                .entry(id)
                .or_insert_with(|| (event.schema.clone(), self.shape.layout(&event.schema)));
            match layout {
                Ok(layout) => layout.event(&self.shape, &event, &mut row),
                Err(reason) => Err(reason.clone()),
            }
        };
        match built {
            Ok(built) => built,
            Err(reason) => {
                event.after = Some(row);
                self.dead_letter(event, reason)
            }
        }
    }

    fn message_event(
        &self,
        messages: &Messages,
        event: &ChangeEvent,
    ) -> std::result::Result<ChangeEvent, String> {
        if header(event, "transactional") != Some(b"true") {
            return Err(
                "a non-transactional outbox message is not atomic with the business write it reports; emit it with pg_logical_emit_message(true, ...)".into(),
            );
        }
        let content = match event.after.as_deref() {
            Some([Value::Bytes(content)]) => content.as_slice(),
            _ => return Err("the message has no content".into()),
        };
        let mut row = message_row(&messages.schema, content)?;
        messages.layout.event(&self.shape, event, &mut row)
    }
}

fn header<'a>(event: &'a ChangeEvent, name: &str) -> Option<&'a [u8]> {
    event
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_slice())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transform for Outbox {
    fn name(&self) -> &str {
        "outbox"
    }

    fn apply(&self, event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        if event.op == Op::Message {
            if let Some(messages) = &self.messages {
                if header(&event, "prefix") == Some(messages.prefix.as_bytes()) {
                    out.push(match self.message_event(messages, &event) {
                        Ok(e) => e,
                        Err(reason) => self.dead_letter(event, reason),
                    });
                    return Ok(());
                }
            }
            out.push(event);
            return Ok(());
        }
        if !self.tables.matches(&event.table) {
            out.push(event);
            return Ok(());
        }
        match event.op {
            Op::Insert | Op::Read => out.push(self.row_event(event)),
            Op::Update => match self.on_update {
                OnUpdate::Emit => out.push(self.row_event(event)),
                OnUpdate::Error => out.push(self.dead_letter(
                    event,
                    "an update of an outbox row (on_update = \"error\"); outbox rows are written once".into(),
                )),
                OnUpdate::Warn => {
                    tracing::warn!(source = %event.source, table = %event.table, position = %event.position,
                        "outbox: an update of an outbox row is skipped (on_update = \"warn\")");
                    self.count(&event.source, SKIPPED_UPDATE);
                }
            },
            // Deleting published rows keeps the table small; not an event.
            Op::Delete | Op::Truncate => {}
            Op::Message | Op::Event => out.push(event),
        }
        Ok(())
    }

    fn take_counts(&self) -> Vec<(Arc<str>, &'static str, u64)> {
        std::mem::take(&mut *lock(&self.counts))
            .into_iter()
            .map(|((source, outcome), n)| (source, outcome, n))
            .collect()
    }
}
