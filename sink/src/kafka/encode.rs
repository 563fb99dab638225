//! Change events as Debezium JSON messages: key = the primary key, value =
//! the envelope (`before`, `after`, `source`, `op`, `ts_ms`), optionally
//! wrapped with its Kafka Connect schema (`{"schema": …, "payload": …}`).
//!
//! Everything that depends only on the table version (schemas, column names,
//! the constant part of `source`) is rendered once per table version and
//! cached; per event only values are written, into buffers reused across
//! events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use headwater_core::outbox::OutboxEvent;
use headwater_core::position::Scalar;
use headwater_core::{ChangeEvent, Column, Decimal, Op, TableSchema, Timestamp, Value};

use super::config::{DecimalHandling, KafkaConfig};
use super::json::{write_base64, write_i64, write_str, write_u64, write_value, Render};
use super::schema::{
    render_for, write_source_schema, write_struct_schema, Connector, TRANSACTION_SCHEMA,
};

/// `source.version`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), ".headwater");

/// What the encoder needs from the sink's configuration.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {
    pub schemas: bool,
    pub decimal: DecimalHandling,
    /// `source.db` of PostgreSQL events per source name.
    pub databases: BTreeMap<String, String>,
    /// `source.server_id` of MySQL events per source name.
    pub server_ids: BTreeMap<String, u32>,
}

impl EncodeOptions {
    pub fn from_config(c: &KafkaConfig) -> Self {
        EncodeOptions {
            schemas: c.schemas,
            decimal: c.decimal_handling,
            databases: c.databases.clone(),
            server_ids: c.server_ids.clone(),
        }
    }
}

/// Everything about one table version (for one source) that does not
/// change from event to event.
struct Plan {
    schema: Arc<TableSchema>,
    source: Arc<str>,
    connector: Connector,
    renders: Vec<Render>,
    /// `"column":` per column, escaped.
    field_names: Vec<Vec<u8>>,
    key_indexes: Vec<usize>,
    /// `{"schema":…,"payload":` (empty without schemas).
    key_prefix: Vec<u8>,
    value_prefix: Vec<u8>,
    message_prefix: Vec<u8>,
    /// `{"version":…,"connector":…,"name":…,` up to `ts_ms`.
    source_head: Vec<u8>,
    /// `,"db":…,"schema":…,"table":…` (PostgreSQL) or
    /// `,"db":…,"table":…,"server_id":…` (MySQL).
    source_names: Vec<u8>,
}

/// Encodes events into its reused `key` and `value` buffers.
pub struct Encoder {
    options: EncodeOptions,
    plans: HashMap<usize, Arc<Plan>>,
    scratch: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
    has_key: bool,
    /// The last event is an outbox tombstone: no value at all.
    no_value: bool,
    /// The `headwater.special` header of the last event (empty: none).
    special: Vec<u8>,
}

/// The header that carries what the Debezium JSON value cannot: a JSON
/// object per image (`after`, `before`, `key`) of `{name: text}`, where
/// `name` is a column (its own value) or `column[i]` (element `i`,
/// counted from 0, of the column's elements in row-major order). `text`
/// is an array's dimensions as PostgreSQL's `array_dims()` prints them
/// (`[1:2][1:2]`, `[0:1]`: the value holds the elements in row-major
/// order), or the decimal NaN / Infinity / -Infinity that precise mode
/// writes as `null`. Absent when there is nothing to say.
pub const HEADER_SPECIAL: &str = "headwater.special";

/// Plans kept before the cache starts over (schema versions × sources).
const MAX_PLANS: usize = 10_000;

impl Encoder {
    pub fn new(options: EncodeOptions) -> Self {
        Encoder {
            options,
            plans: HashMap::new(),
            scratch: Vec::with_capacity(64),
            key: Vec::with_capacity(256),
            value: Vec::with_capacity(4096),
            has_key: false,
            no_value: false,
            special: Vec::new(),
        }
    }

    /// The last event's `headwater.special` header, when it needs one.
    pub fn special(&self) -> Option<&[u8]> {
        (!self.special.is_empty()).then_some(self.special.as_slice())
    }

    /// The last event's key, `None` for a keyless table, a truncate.
    pub fn key(&self) -> Option<&[u8]> {
        self.has_key.then_some(self.key.as_slice())
    }

    /// The last event's value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The last event's value; `None` for an outbox tombstone.
    pub fn value_or_tombstone(&self) -> Option<&[u8]> {
        (!self.no_value).then_some(self.value.as_slice())
    }

    /// Encodes `event`; `now_ms` is the envelope's `ts_ms` (processing time).
    pub fn encode(&mut self, event: &ChangeEvent, now_ms: i64) {
        self.key.clear();
        self.value.clear();
        self.no_value = false;
        if let Some(outbox) = OutboxEvent::of(event) {
            self.encode_outbox(&outbox);
            return;
        }
        let plan = self.plan(event);
        self.has_key = write_key(&mut self.key, &plan, event, &mut self.scratch);
        if event.op == Op::Message {
            write_message(&mut self.value, &plan, event, now_ms);
        } else {
            write_envelope(&mut self.value, &plan, event, now_ms, &mut self.scratch);
        }
        let precise = self.options.decimal == DecimalHandling::Precise;
        write_special(&mut self.special, &plan, event, precise);
    }

    /// An outbox event as Debezium's outbox router writes it: the
    /// aggregate key as text, the payload bytes as stored, no envelope.
    fn encode_outbox(&mut self, outbox: &OutboxEvent) {
        self.key.extend_from_slice(outbox.key_text().as_bytes());
        self.has_key = true;
        self.special.clear();
        match outbox.payload_bytes() {
            Some(payload) => self.value.extend_from_slice(payload),
            None => self.no_value = true,
        }
    }

    fn plan(&mut self, event: &ChangeEvent) -> Arc<Plan> {
        let id = Arc::as_ptr(&event.schema) as usize;
        let connector = Connector::of(&event.position);
        if let Some(plan) = self.plans.get(&id) {
            if plan.connector == connector && *plan.source == *event.source {
                return plan.clone();
            }
        }
        if self.plans.len() >= MAX_PLANS {
            self.plans.clear();
        }
        let plan = Arc::new(build_plan(&self.options, event, connector));
        self.plans.insert(id, plan.clone());
        plan
    }
}

fn build_plan(options: &EncodeOptions, event: &ChangeEvent, connector: Connector) -> Plan {
    let schema = event.schema.clone();
    let renders: Vec<Render> = schema
        .columns
        .iter()
        .map(|c| render_for(c, connector, options.decimal))
        .collect();
    let field_names = schema
        .columns
        .iter()
        .map(|c| {
            let mut name = Vec::with_capacity(c.name.len() + 3);
            write_str(&mut name, &c.name);
            name.push(b':');
            name
        })
        .collect();
    let key_indexes = schema.key_indexes();
    let table = &schema.table;
    let prefix = format!("{}.{}.{}", event.source, table.namespace, table.name);

    let mut source_head = Vec::new();
    source_head.extend_from_slice(b"{\"version\":");
    write_str(&mut source_head, VERSION);
    source_head.extend_from_slice(b",\"connector\":");
    write_str(&mut source_head, connector.name());
    source_head.extend_from_slice(b",\"name\":");
    write_str(&mut source_head, &event.source);
    source_head.extend_from_slice(b",\"ts_ms\":");

    let mut source_names = Vec::new();
    source_names.extend_from_slice(b",\"db\":");
    match connector {
        Connector::Postgres => {
            let db = options
                .databases
                .get(&*event.source)
                .map_or(&*event.source, String::as_str);
            write_str(&mut source_names, db);
            source_names.extend_from_slice(b",\"schema\":");
            write_str(&mut source_names, &table.namespace);
            source_names.extend_from_slice(b",\"table\":");
            write_str(&mut source_names, &table.name);
        }
        Connector::MySql | Connector::Other(_) => {
            write_str(&mut source_names, &table.namespace);
            source_names.extend_from_slice(b",\"table\":");
            write_str(&mut source_names, &table.name);
            if connector == Connector::MySql {
                source_names.extend_from_slice(b",\"server_id\":");
                let id = options.server_ids.get(&*event.source).copied().unwrap_or(0);
                write_u64(&mut source_names, u64::from(id));
            }
        }
    }
    let position_fields = event.position.debezium_fields();

    let columns: Vec<(&Column, Render)> =
        schema.columns.iter().zip(renders.iter().copied()).collect();
    let (mut key_prefix, mut value_prefix, mut message_prefix) =
        (Vec::new(), Vec::new(), Vec::new());
    if options.schemas {
        let key_columns: Vec<(&Column, Render)> = key_indexes.iter().map(|i| columns[*i]).collect();
        key_prefix.extend_from_slice(b"{\"schema\":");
        write_struct_schema(
            &mut key_prefix,
            &key_columns,
            &format!("{prefix}.Key"),
            false,
            None,
        );
        key_prefix.extend_from_slice(b",\"payload\":");

        let row_name = format!("{prefix}.Value");
        value_prefix.extend_from_slice(b"{\"schema\":{\"type\":\"struct\",\"fields\":[");
        write_struct_schema(&mut value_prefix, &columns, &row_name, true, Some("before"));
        value_prefix.push(b',');
        write_struct_schema(&mut value_prefix, &columns, &row_name, true, Some("after"));
        value_prefix.push(b',');
        write_source_schema(&mut value_prefix, connector, position_fields);
        value_prefix.extend_from_slice(b",{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},");
        value_prefix.extend_from_slice(TRANSACTION_SCHEMA.as_bytes());
        value_prefix.extend_from_slice(b"],\"optional\":false,\"name\":");
        write_str(&mut value_prefix, &format!("{prefix}.Envelope"));
        value_prefix.extend_from_slice(b",\"version\":2},\"payload\":");

        message_prefix.extend_from_slice(b"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},");
        write_source_schema(&mut message_prefix, connector, position_fields);
        message_prefix.extend_from_slice(b",{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"prefix\"},{\"type\":\"bytes\",\"optional\":true,\"field\":\"content\"}],\"optional\":false,\"name\":\"io.debezium.connector.postgresql.Message\",\"field\":\"message\"}],\"optional\":false,\"name\":\"io.debezium.connector.postgresql.MessageValue\"},\"payload\":");
    }
    Plan {
        source: event.source.clone(),
        connector,
        renders,
        field_names,
        key_indexes,
        key_prefix,
        value_prefix,
        message_prefix,
        source_head,
        source_names,
        schema,
    }
}

/// The stand-in text of `value` when the JSON value loses something.
fn stand_in(value: &Value, precise: bool) -> Option<String> {
    match value {
        Value::Decimal(d @ (Decimal::NaN | Decimal::PosInfinity | Decimal::NegInfinity))
            if precise =>
        {
            Some(d.to_string())
        }
        Value::Array(a) if !a.is_list() => Some(a.dims_text()),
        _ => None,
    }
}

/// Fills `out` with the `headwater.special` header of `event` (see
/// [`HEADER_SPECIAL`]), or leaves it empty.
fn write_special(out: &mut Vec<u8>, plan: &Plan, event: &ChangeEvent, precise: bool) {
    out.clear();
    let columns = &plan.schema.columns;
    let key_names: Vec<&str> = plan
        .key_indexes
        .iter()
        .map(|&i| columns[i].name.as_str())
        .collect();
    let all_names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let images = [
        ("after", event.after.as_deref(), all_names.as_slice()),
        ("before", event.before.as_deref(), all_names.as_slice()),
        ("key", Some(event.key.as_slice()), key_names.as_slice()),
    ];
    let mut images_written = 0;
    for (image, row, names) in images {
        let Some(row) = row else { continue };
        let mut entries = 0;
        for (name, value) in names.iter().zip(row) {
            let mut entry = |name: &str, text: String| {
                if entries == 0 {
                    out.push(if images_written == 0 { b'{' } else { b',' });
                    write_str(out, image);
                    out.extend_from_slice(b":{");
                } else {
                    out.push(b',');
                }
                write_str(out, name);
                out.push(b':');
                write_str(out, &text);
                entries += 1;
            };
            if let Some(text) = stand_in(value, precise) {
                entry(name, text);
            }
            if let Value::Array(a) = value {
                for (i, element) in a.elements().iter().enumerate() {
                    if let Some(text) = stand_in(element, precise) {
                        entry(&format!("{name}[{i}]"), text);
                    }
                }
            }
        }
        if entries > 0 {
            out.push(b'}');
            images_written += 1;
        }
    }
    if images_written > 0 {
        out.push(b'}');
    }
}

fn header<'a>(event: &'a ChangeEvent, name: &str) -> Option<&'a [u8]> {
    event
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_slice())
}

/// The key payload `{"id":1}` (wrapped with its schema when enabled);
/// false when the event has no key.
fn write_key(out: &mut Vec<u8>, plan: &Plan, event: &ChangeEvent, scratch: &mut Vec<u8>) -> bool {
    if event.op == Op::Message {
        let prefix = header(event, "prefix").unwrap_or_default();
        out.extend_from_slice(b"{\"prefix\":");
        write_str(out, &String::from_utf8_lossy(prefix));
        out.push(b'}');
        return true;
    }
    if event.key.is_empty() || event.key.len() != plan.key_indexes.len() {
        return false;
    }
    out.extend_from_slice(&plan.key_prefix);
    out.push(b'{');
    for (n, (value, index)) in event.key.iter().zip(&plan.key_indexes).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&plan.field_names[*index]);
        write_value(out, value, plan.renders[*index], scratch);
    }
    out.push(b'}');
    if !plan.key_prefix.is_empty() {
        out.push(b'}');
    }
    true
}

/// How a `before` image is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Image {
    Full,
    /// REPLICA IDENTITY DEFAULT: only the key columns are known and only
    /// they are written (`"before": {"id": 1}`, Debezium's delete shape).
    KeyOnly,
}

fn write_row(out: &mut Vec<u8>, plan: &Plan, row: &[Value], image: Image, scratch: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for (i, value) in row.iter().enumerate().take(plan.field_names.len()) {
        if image == Image::KeyOnly && *value == Value::Unchanged {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&plan.field_names[i]);
        write_value(out, value, plan.renders[i], scratch);
    }
    out.push(b'}');
}

/// A before-image holding only the key (every other column `Unchanged`).
fn is_key_only(plan: &Plan, row: &[Value]) -> bool {
    let mut others = 0;
    for (i, value) in row.iter().enumerate() {
        if plan.schema.columns[i].key_position.is_none() {
            if *value != Value::Unchanged {
                return false;
            }
            others += 1;
        }
    }
    others > 0
}

fn micros_of(ts: Option<Timestamp>) -> Option<i64> {
    match ts {
        Some(Timestamp::Micros(m)) => Some(m),
        _ => None,
    }
}

fn write_source(out: &mut Vec<u8>, plan: &Plan, event: &ChangeEvent, now_ms: i64) {
    let commit_us = micros_of(event.commit_ts).unwrap_or(now_ms.saturating_mul(1000));
    out.extend_from_slice(&plan.source_head);
    write_i64(out, commit_us.div_euclid(1000));
    out.extend_from_slice(if event.op == Op::Read {
        b",\"snapshot\":\"true\""
    } else {
        b",\"snapshot\":\"false\""
    });
    out.extend_from_slice(&plan.source_names);
    out.extend_from_slice(b",\"ts_us\":");
    write_i64(out, commit_us);
    out.extend_from_slice(b",\"ts_ns\":");
    write_i64(out, commit_us.saturating_mul(1000));
    event
        .position
        .write_debezium(event.tx_id, &mut |name, value| {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            match value {
                Scalar::Str(s) => write_str(out, s),
                Scalar::Int(n) => write_u64(out, n),
                Scalar::Null => out.extend_from_slice(b"null"),
            }
        });
    out.push(b'}');
}

fn write_envelope(
    out: &mut Vec<u8>,
    plan: &Plan,
    event: &ChangeEvent,
    now_ms: i64,
    scratch: &mut Vec<u8>,
) {
    out.extend_from_slice(&plan.value_prefix);
    out.extend_from_slice(b"{\"before\":");
    match &event.before {
        Some(row) if is_key_only(plan, row) => {
            if event.op == Op::Update {
                // Debezium sends no before-image for an update under
                // REPLICA IDENTITY DEFAULT.
                out.extend_from_slice(b"null");
            } else {
                write_row(out, plan, row, Image::KeyOnly, scratch);
            }
        }
        Some(row) if event.op != Op::Truncate => write_row(out, plan, row, Image::Full, scratch),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"after\":");
    match &event.after {
        Some(row) if event.op != Op::Truncate => write_row(out, plan, row, Image::Full, scratch),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"source\":");
    write_source(out, plan, event, now_ms);
    out.extend_from_slice(b",\"op\":\"");
    out.extend_from_slice(event.op.code().as_bytes());
    write_tail(out, now_ms);
    out.extend_from_slice(b",\"transaction\":null}");
    if !plan.value_prefix.is_empty() {
        out.push(b'}');
    }
}

fn write_tail(out: &mut Vec<u8>, now_ms: i64) {
    out.extend_from_slice(b"\",\"ts_ms\":");
    write_i64(out, now_ms);
    out.extend_from_slice(b",\"ts_us\":");
    write_i64(out, now_ms.saturating_mul(1000));
    out.extend_from_slice(b",\"ts_ns\":");
    write_i64(out, now_ms.saturating_mul(1_000_000));
}

/// A logical message (`pg_logical_emit_message`), Debezium's `op: "m"`.
fn write_message(out: &mut Vec<u8>, plan: &Plan, event: &ChangeEvent, now_ms: i64) {
    out.extend_from_slice(&plan.message_prefix);
    out.extend_from_slice(b"{\"op\":\"m");
    write_tail(out, now_ms);
    out.extend_from_slice(b",\"source\":");
    write_source(out, plan, event, now_ms);
    out.extend_from_slice(b",\"message\":{\"prefix\":");
    let prefix = header(event, "prefix").unwrap_or_default();
    write_str(out, &String::from_utf8_lossy(prefix));
    out.extend_from_slice(b",\"content\":");
    match event.after.as_deref() {
        Some([Value::Bytes(content)]) => write_base64(out, content),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    if !plan.message_prefix.is_empty() {
        out.push(b'}');
    }
}
