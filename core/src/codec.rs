//! The versioned binary form of a [`ChangeEvent`] in the log, and of a
//! [`TableSchema`] in the schema registry.
//!
//! An event does not carry its schema, only the schema's [`SchemaId`]; the
//! schema is stored once in the [`crate::SchemaRegistry`]. Every length read
//! back is checked, so damaged or hostile bytes give an error, never a panic
//! or an unbounded allocation.
//!
//! Event layout, version 1 (integers little-endian, `var` = LEB128):
//!
//! ```text
//! u8 format (=1) | u64 schema id | u8 flags | str source | u8 op
//! | position | [i64-ish commit_ts] | [var tx_id] | [str topic]
//! | [str namespace, str name] | row key | [row before] | [row after]
//! | var header count, (str name, bytes value)*
//! ```
//! Bracketed fields are present when their bit in `flags` is set.
//!
//! Values are a tag byte and the value. Version 1 was extended, without a
//! new format number, by tag 22: an array that is not a plain list (more
//! than one dimension, or a lower bound other than 1) is `22 | var ndims |
//! (var length, i32 lower bound)* | row of elements`. A plain list keeps
//! tag 20 (`20 | row of elements`), so every record written before reads
//! the same, and a key holding an array keeps its bytes (and partition).
//! Builds before tag 22 wrote a multi-dimensional array as nested lists;
//! [`decode_event`] reads those, in a column whose kind is an array of
//! scalars, as the array of those dimensions.

use std::sync::Arc;

use crate::decimal::Decimal;
use crate::error::{Error, Result};
use crate::event::{ChangeEvent, Header, Op};
use crate::position::Position;
use crate::schema::{Column, SchemaId, TableId, TableSchema, ValueKind};
use crate::time::{Date, Interval, Time, TimeTz, Timestamp};
use crate::value::{Array, Dim, Value};

pub const EVENT_FORMAT: u8 = 1;
pub const SCHEMA_FORMAT: u8 = 1;

/// Arrays of arrays nest at most this deep.
const MAX_DEPTH: usize = 32;

const F_COMMIT_TS: u8 = 1;
const F_TX_ID: u8 = 1 << 1;
const F_TOPIC: u8 = 1 << 2;
const F_TABLE: u8 = 1 << 3;
const F_BEFORE: u8 = 1 << 4;
const F_AFTER: u8 = 1 << 5;

// ---------------------------------------------------------------- writing

/// Writes the binary form; public for the position kinds' own fields.
pub struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn len(&mut self, n: usize) {
        self.var(n as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn timestamp(&mut self, t: &Timestamp) {
        match t {
            Timestamp::Micros(m) => {
                self.u8(0);
                self.i64(*m);
            }
            Timestamp::NegInfinity => self.u8(1),
            Timestamp::PosInfinity => self.u8(2),
        }
    }

    fn row(&mut self, row: &[Value]) {
        self.len(row.len());
        for v in row {
            self.value(v);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.u8(0),
            Value::Unchanged => self.u8(1),
            Value::Bool(b) => {
                self.u8(2);
                self.u8(u8::from(*b));
            }
            Value::Int16(i) => {
                self.u8(3);
                self.i16(*i);
            }
            Value::Int32(i) => {
                self.u8(4);
                self.i32(*i);
            }
            Value::Int64(i) => {
                self.u8(5);
                self.i64(*i);
            }
            Value::UInt64(i) => {
                self.u8(6);
                self.u64(*i);
            }
            Value::Float32(f) => {
                self.u8(7);
                self.0.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Float64(f) => {
                self.u8(8);
                self.u64(f.to_bits());
            }
            Value::Decimal(d) => {
                self.u8(9);
                match d {
                    Decimal::Finite {
                        negative,
                        digits,
                        scale,
                    } => {
                        self.u8(if *negative { 1 } else { 0 });
                        self.var(u64::from(*scale));
                        self.str(digits);
                    }
                    Decimal::NaN => self.u8(2),
                    Decimal::PosInfinity => self.u8(3),
                    Decimal::NegInfinity => self.u8(4),
                }
            }
            Value::Text(s) => {
                self.u8(10);
                self.str(s);
            }
            Value::Bytes(b) => {
                self.u8(11);
                self.bytes(b);
            }
            Value::Json(s) => {
                self.u8(12);
                self.str(s);
            }
            Value::Uuid(u) => {
                self.u8(13);
                self.0.extend_from_slice(u);
            }
            Value::Date(d) => {
                self.u8(14);
                match d {
                    Date::Days(days) => {
                        self.u8(0);
                        self.i32(*days);
                    }
                    Date::NegInfinity => self.u8(1),
                    Date::PosInfinity => self.u8(2),
                }
            }
            Value::Time(t) => {
                self.u8(15);
                self.i64(t.0);
            }
            Value::TimeTz(t) => {
                self.u8(16);
                self.i64(t.micros);
                self.i32(t.offset_seconds);
            }
            Value::Timestamp(t) => {
                self.u8(17);
                self.timestamp(t);
            }
            Value::TimestampTz(t) => {
                self.u8(18);
                self.timestamp(t);
            }
            Value::Interval(i) => {
                self.u8(19);
                self.i32(i.months);
                self.i32(i.days);
                self.i64(i.micros);
            }
            Value::Array(a) if a.is_list() => {
                self.u8(20);
                self.row(a.elements());
            }
            Value::Array(a) => {
                self.u8(22);
                self.len(a.dims().len());
                for d in a.dims() {
                    self.var(u64::from(d.len));
                    self.i32(d.lower);
                }
                self.row(a.elements());
            }
            Value::Enum(s) => {
                self.u8(21);
                self.str(s);
            }
        }
    }

    fn kind(&mut self, k: &ValueKind) {
        let tag = match k {
            ValueKind::Bool => 2,
            ValueKind::Int16 => 3,
            ValueKind::Int32 => 4,
            ValueKind::Int64 => 5,
            ValueKind::UInt64 => 6,
            ValueKind::Float32 => 7,
            ValueKind::Float64 => 8,
            ValueKind::Decimal { precision, scale } => {
                self.u8(9);
                self.var(precision.map_or(0, |p| u64::from(p) + 1));
                self.var(scale.map_or(0, |s| u64::from(s) + 1));
                return;
            }
            ValueKind::Text => 10,
            ValueKind::Bytes => 11,
            ValueKind::Json => 12,
            ValueKind::Uuid => 13,
            ValueKind::Date => 14,
            ValueKind::Time => 15,
            ValueKind::TimeTz => 16,
            ValueKind::Timestamp => 17,
            ValueKind::TimestampTz => 18,
            ValueKind::Interval => 19,
            ValueKind::Array(inner) => {
                self.u8(20);
                self.kind(inner);
                return;
            }
            ValueKind::Enum => 21,
        };
        self.u8(tag);
    }
}

/// Appends the encoded event to `out`.
pub fn encode_event(event: &ChangeEvent, out: &mut Vec<u8>) {
    encode_event_with_schema_id(event, event.schema.id(), out);
}

/// [`encode_event`] with the schema's id already known: computing it
/// encodes and hashes the schema, which a hot loop should do once per
/// schema, not once per event.
pub fn encode_event_with_schema_id(event: &ChangeEvent, schema_id: SchemaId, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.u8(EVENT_FORMAT);
    w.u64(schema_id.0);
    let mut flags = 0;
    if event.commit_ts.is_some() {
        flags |= F_COMMIT_TS;
    }
    if event.tx_id.is_some() {
        flags |= F_TX_ID;
    }
    if event.topic.is_some() {
        flags |= F_TOPIC;
    }
    if event.table != event.schema.table {
        flags |= F_TABLE;
    }
    if event.before.is_some() {
        flags |= F_BEFORE;
    }
    if event.after.is_some() {
        flags |= F_AFTER;
    }
    w.u8(flags);
    w.str(&event.source);
    w.u8(op_code(event.op));
    event.position.encode(&mut w);
    if let Some(ts) = &event.commit_ts {
        w.timestamp(ts);
    }
    if let Some(tx) = event.tx_id {
        w.var(tx);
    }
    if let Some(topic) = &event.topic {
        w.str(topic);
    }
    if flags & F_TABLE != 0 {
        w.str(&event.table.namespace);
        w.str(&event.table.name);
    }
    w.row(&event.key);
    if let Some(before) = &event.before {
        w.row(before);
    }
    if let Some(after) = &event.after {
        w.row(after);
    }
    w.len(event.headers.len());
    for h in &event.headers {
        w.str(&h.name);
        w.bytes(&h.value);
    }
}

/// The log record key for an event's key values. Equal values give equal
/// bytes in every release, so a row always lands in the same partition.
pub fn encode_key(key: &[Value], out: &mut Vec<u8>) {
    Writer(out).row(key);
}

/// The versioned binary form of a schema; its hash is the [`SchemaId`].
pub fn encode_schema(schema: &TableSchema) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + schema.columns.len() * 32);
    let mut w = Writer(&mut out);
    w.u8(SCHEMA_FORMAT);
    w.str(&schema.table.namespace);
    w.str(&schema.table.name);
    w.var(u64::from(schema.version));
    w.len(schema.columns.len());
    for c in &schema.columns {
        w.str(&c.name);
        w.str(&c.type_name);
        w.kind(&c.kind);
        w.u8(u8::from(c.nullable));
        w.var(c.key_position.map_or(0, |p| u64::from(p) + 1));
    }
    out
}

fn op_code(op: Op) -> u8 {
    match op {
        Op::Read => 0,
        Op::Insert => 1,
        Op::Update => 2,
        Op::Delete => 3,
        Op::Truncate => 4,
        Op::Message => 5,
        Op::Event => 6,
    }
}

// ---------------------------------------------------------------- reading

/// Reads the binary form back; public for the position kinds' own fields.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn fail(&self, reason: impl Into<String>) -> Error {
        Error::decode(self.what, reason)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(self.fail(format!(
                "needs {n} more bytes, {} left (truncated record)",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.fail(format!("boolean byte {b}"))),
        }
    }
    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn var(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.fail("varint longer than 10 bytes"))
    }
    fn u32_var(&mut self) -> Result<u32> {
        let v = self.var()?;
        u32::try_from(v).map_err(|_| self.fail(format!("{v} does not fit 32 bits")))
    }
    /// A length that must fit in what is left, so a corrupt length cannot
    /// ask for a huge allocation.
    /// A count of items that follow, each at least a byte: bounded by the
    /// bytes left.
    pub fn count(&mut self) -> Result<usize> {
        self.len()
    }

    fn len(&mut self) -> Result<usize> {
        let n = self.var()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(self.fail(format!(
                "length {n} exceeds the {} bytes left",
                self.buf.len()
            ))),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| self.fail(format!("text is not UTF-8: {e}")))
    }
    fn opt_plus_one(&mut self) -> Result<Option<u32>> {
        Ok(match self.u32_var()? {
            0 => None,
            n => Some(n - 1),
        })
    }

    fn timestamp(&mut self) -> Result<Timestamp> {
        match self.u8()? {
            0 => Ok(Timestamp::Micros(self.i64()?)),
            1 => Ok(Timestamp::NegInfinity),
            2 => Ok(Timestamp::PosInfinity),
            t => Err(self.fail(format!("timestamp tag {t}"))),
        }
    }

    fn op(&mut self) -> Result<Op> {
        Ok(match self.u8()? {
            0 => Op::Read,
            1 => Op::Insert,
            2 => Op::Update,
            3 => Op::Delete,
            4 => Op::Truncate,
            5 => Op::Message,
            6 => Op::Event,
            t => return Err(self.fail(format!("unknown op {t}"))),
        })
    }

    fn row(&mut self, depth: usize) -> Result<Vec<Value>> {
        // Every value takes at least one byte: bound the count by what is left.
        let n = self.len()?;
        let mut row = Vec::with_capacity(n);
        for _ in 0..n {
            row.push(self.value(depth)?);
        }
        Ok(row)
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        Ok(match self.u8()? {
            0 => Value::Null,
            1 => Value::Unchanged,
            2 => Value::Bool(self.bool()?),
            3 => Value::Int16(self.i16()?),
            4 => Value::Int32(self.i32()?),
            5 => Value::Int64(self.i64()?),
            6 => Value::UInt64(self.u64()?),
            7 => Value::Float32(f32::from_bits(u32::from_le_bytes(self.array()?))),
            8 => Value::Float64(f64::from_bits(self.u64()?)),
            9 => Value::Decimal(match self.u8()? {
                sign @ (0 | 1) => {
                    let scale = self.u32_var()?;
                    let digits = self.string()?;
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(self.fail("decimal digits are not all ASCII digits"));
                    }
                    Decimal::Finite {
                        negative: sign == 1,
                        digits: digits.into_boxed_str(),
                        scale,
                    }
                }
                2 => Decimal::NaN,
                3 => Decimal::PosInfinity,
                4 => Decimal::NegInfinity,
                t => return Err(self.fail(format!("decimal tag {t}"))),
            }),
            10 => Value::Text(self.string()?),
            11 => Value::Bytes(self.bytes()?.to_vec()),
            12 => Value::Json(self.string()?),
            13 => Value::Uuid(self.array()?),
            14 => Value::Date(match self.u8()? {
                0 => Date::Days(self.i32()?),
                1 => Date::NegInfinity,
                2 => Date::PosInfinity,
                t => return Err(self.fail(format!("date tag {t}"))),
            }),
            15 => Value::Time(Time(self.i64()?)),
            16 => Value::TimeTz(TimeTz {
                micros: self.i64()?,
                offset_seconds: self.i32()?,
            }),
            17 => Value::Timestamp(self.timestamp()?),
            18 => Value::TimestampTz(self.timestamp()?),
            19 => Value::Interval(Interval {
                months: self.i32()?,
                days: self.i32()?,
                micros: self.i64()?,
            }),
            20 => {
                if depth >= MAX_DEPTH {
                    return Err(self.fail(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                Value::Array(Array::list(self.row(depth + 1)?))
            }
            21 => Value::Enum(self.string()?),
            22 => {
                if depth >= MAX_DEPTH {
                    return Err(self.fail(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                // Each dimension takes at least 2 bytes: bounded by what is left.
                let n = self.len()?;
                let mut dims = Vec::with_capacity(n.min(crate::value::MAX_ARRAY_DIMS));
                for _ in 0..n {
                    dims.push(Dim {
                        len: self.u32_var()?,
                        lower: self.i32()?,
                    });
                }
                let elements = self.row(depth + 1)?;
                Value::Array(Array::new(dims, elements).map_err(|e| self.fail(e))?)
            }
            t => return Err(self.fail(format!("unknown value tag {t}"))),
        })
    }

    fn kind(&mut self, depth: usize) -> Result<ValueKind> {
        Ok(match self.u8()? {
            2 => ValueKind::Bool,
            3 => ValueKind::Int16,
            4 => ValueKind::Int32,
            5 => ValueKind::Int64,
            6 => ValueKind::UInt64,
            7 => ValueKind::Float32,
            8 => ValueKind::Float64,
            9 => ValueKind::Decimal {
                precision: self.opt_plus_one()?,
                scale: self.opt_plus_one()?,
            },
            10 => ValueKind::Text,
            11 => ValueKind::Bytes,
            12 => ValueKind::Json,
            13 => ValueKind::Uuid,
            14 => ValueKind::Date,
            15 => ValueKind::Time,
            16 => ValueKind::TimeTz,
            17 => ValueKind::Timestamp,
            18 => ValueKind::TimestampTz,
            19 => ValueKind::Interval,
            20 if depth < MAX_DEPTH => ValueKind::Array(Box::new(self.kind(depth + 1)?)),
            21 => ValueKind::Enum,
            t => return Err(self.fail(format!("unknown column kind tag {t}"))),
        })
    }
}

/// The schema id an encoded event refers to, without decoding the rest.
pub fn peek_schema_id(bytes: &[u8]) -> Result<SchemaId> {
    let mut r = Reader {
        buf: bytes,
        what: "change event",
    };
    check_format(&mut r, EVENT_FORMAT)?;
    Ok(SchemaId(r.u64()?))
}

/// Who wrote an encoded event and where it comes from: its source's name,
/// its op and its source position, without its schema or rows.
pub fn peek_origin(bytes: &[u8]) -> Result<(String, Op, Position)> {
    let mut r = Reader {
        buf: bytes,
        what: "change event",
    };
    check_format(&mut r, EVENT_FORMAT)?;
    r.u64()?;
    r.u8()?;
    let source = r.string()?;
    let op = r.op()?;
    Ok((source, op, Position::decode(&mut r)?))
}

fn check_format(r: &mut Reader<'_>, expected: u8) -> Result<()> {
    let format = r.u8()?;
    if format != expected {
        return Err(r.fail(format!(
            "format version {format}, this build reads {expected}; upgrade Headwater to read this log"
        )));
    }
    Ok(())
}

/// Decodes an event, looking its schema up with `schema_of`.
pub fn decode_event(
    bytes: &[u8],
    schema_of: impl FnOnce(SchemaId) -> Result<Arc<TableSchema>>,
) -> Result<ChangeEvent> {
    let mut r = Reader {
        buf: bytes,
        what: "change event",
    };
    check_format(&mut r, EVENT_FORMAT)?;
    let schema = schema_of(SchemaId(r.u64()?))?;
    let flags = r.u8()?;
    let source: Arc<str> = r.string()?.into();
    let op = r.op()?;
    let position = Position::decode(&mut r)?;
    let commit_ts = if flags & F_COMMIT_TS != 0 {
        Some(r.timestamp()?)
    } else {
        None
    };
    let tx_id = if flags & F_TX_ID != 0 {
        Some(r.var()?)
    } else {
        None
    };
    let topic = if flags & F_TOPIC != 0 {
        Some(r.string()?.into())
    } else {
        None
    };
    let table = if flags & F_TABLE != 0 {
        TableId::new(r.string()?, r.string()?)
    } else {
        schema.table.clone()
    };
    let key = r.row(0)?;
    let before = if flags & F_BEFORE != 0 {
        Some(r.row(0)?)
    } else {
        None
    };
    let after = if flags & F_AFTER != 0 {
        Some(r.row(0)?)
    } else {
        None
    };
    let (mut key, mut before, mut after) = (key, before, after);
    upgrade_nested_arrays(&schema, &mut key, &mut before, &mut after);
    let n = r.len()?;
    let mut headers = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        headers.push(Header {
            name: r.string()?,
            value: r.bytes()?.to_vec(),
        });
    }
    if !r.buf.is_empty() {
        return Err(r.fail(format!("{} bytes left after the event", r.buf.len())));
    }
    Ok(ChangeEvent {
        source,
        table,
        op,
        key,
        before,
        after,
        position,
        commit_ts,
        tx_id,
        schema,
        topic,
        headers,
    })
}

/// Builds before arrays kept their dimensions wrote a multi-dimensional
/// array of a scalar column as nested lists (tag 20 inside tag 20): read
/// them as the array they were. Arrays of arrays (an `Array(Array(_))`
/// column) are left as they are.
fn upgrade_nested_arrays(
    schema: &TableSchema,
    key: &mut [Value],
    before: &mut Option<Vec<Value>>,
    after: &mut Option<Vec<Value>>,
) {
    let scalar_array = |kind: &ValueKind| matches!(kind, ValueKind::Array(inner) if !matches!(**inner, ValueKind::Array(_)));
    let upgrade = |v: &mut Value| {
        if let Value::Array(a) = v {
            if a.is_list() && a.elements().iter().any(|e| matches!(e, Value::Array(_))) {
                *a = std::mem::replace(a, Array::list(Vec::new())).from_nested_lists();
            }
        }
    };
    for row in [before.as_mut(), after.as_mut()].into_iter().flatten() {
        for (c, v) in schema.columns.iter().zip(row.iter_mut()) {
            if scalar_array(&c.kind) {
                upgrade(v);
            }
        }
    }
    for c in &schema.columns {
        if let (Some(p), true) = (c.key_position, scalar_array(&c.kind)) {
            if let Some(v) = key.get_mut(usize::from(p)) {
                upgrade(v);
            }
        }
    }
}

pub fn decode_schema(bytes: &[u8]) -> Result<TableSchema> {
    let mut r = Reader {
        buf: bytes,
        what: "table schema",
    };
    check_format(&mut r, SCHEMA_FORMAT)?;
    let table = TableId::new(r.string()?, r.string()?);
    let version = r.u32_var()?;
    let n = r.len()?;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let type_name = r.string()?;
        let kind = r.kind(0)?;
        let nullable = r.bool()?;
        let key_position = match r.var()? {
            0 => None,
            p => Some(u16::try_from(p - 1).map_err(|_| r.fail("key position over 65535"))?),
        };
        columns.push(Column {
            name,
            type_name,
            kind,
            nullable,
            key_position,
        });
    }
    if !r.buf.is_empty() {
        return Err(r.fail(format!("{} bytes left after the schema", r.buf.len())));
    }
    Ok(TableSchema {
        table,
        version,
        columns,
    })
}

#[cfg(test)]
mod tests;
