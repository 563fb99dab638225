//! The closed set of values a column can hold.

use serde::{Deserialize, Serialize};

use crate::decimal::Decimal;
use crate::time::{Date, Interval, Time, TimeTz, Timestamp};

/// One column's value, with the source type's fidelity kept.
///
/// `Null` and `Unchanged` are different things: `Unchanged` is PostgreSQL's
/// marker for a TOASTed value an UPDATE did not touch (the source does not
/// send it), so a consumer must keep what it had; `Null` is a real SQL NULL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Unchanged,
    Bool(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    /// MySQL's `BIGINT UNSIGNED` (and smaller unsigned types that overflow
    /// their signed width) — 18446744073709551615 must survive.
    UInt64(u64),
    Float32(f32),
    Float64(f64),
    Decimal(Decimal),
    Text(String),
    Bytes(Vec<u8>),
    /// JSON as the text the source produced, never re-serialised.
    Json(String),
    Uuid([u8; 16]),
    Date(Date),
    Time(Time),
    TimeTz(TimeTz),
    /// Wall-clock timestamp without a time zone.
    Timestamp(Timestamp),
    /// An instant, UTC.
    TimestampTz(Timestamp),
    Interval(Interval),
    /// Elements in order; a multi-dimensional array nests arrays.
    Array(Vec<Value>),
    /// The label of an enum (or the members of a MySQL SET, comma-separated).
    Enum(String),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unchanged => "unchanged",
            Value::Bool(_) => "bool",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::UInt64(_) => "uint64",
            Value::Float32(_) => "float32",
            Value::Float64(_) => "float64",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Uuid(_) => "uuid",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::TimeTz(_) => "timetz",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Interval(_) => "interval",
            Value::Array(_) => "array",
            Value::Enum(_) => "enum",
        }
    }
}

/// Canonical UUID text (`8-4-4-4-12` lowercase hex).
pub fn uuid_to_string(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// The value as text, the way a database prints it: decimals exactly,
/// timestamps in ISO 8601 (`Z` for `timestamptz`), bytes as `\x` hex,
/// arrays as `{a,b}`. Used for display, masking and comparisons.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Unchanged => f.write_str("(unchanged)"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int16(i) => write!(f, "{i}"),
            Value::Int32(i) => write!(f, "{i}"),
            Value::Int64(i) => write!(f, "{i}"),
            Value::UInt64(i) => write!(f, "{i}"),
            Value::Float32(x) => write!(f, "{x}"),
            Value::Float64(x) => write!(f, "{x}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Text(s) | Value::Json(s) | Value::Enum(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Value::Uuid(u) => f.write_str(&uuid_to_string(u)),
            Value::Date(d) => write!(f, "{d}"),
            Value::Time(t) => write!(f, "{t}"),
            Value::TimeTz(t) => write!(f, "{t}"),
            Value::Timestamp(t) => write!(f, "{t}"),
            Value::TimestampTz(t @ crate::time::Timestamp::Micros(_)) => write!(f, "{t}Z"),
            Value::TimestampTz(t) => write!(f, "{t}"),
            Value::Interval(i) => write!(f, "{i}"),
            Value::Array(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text() {
        let bytes = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        assert_eq!(
            uuid_to_string(&bytes),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }

    #[test]
    fn unchanged_is_not_null() {
        assert_ne!(Value::Unchanged, Value::Null);
        assert!(!Value::Unchanged.is_null());
    }
}
