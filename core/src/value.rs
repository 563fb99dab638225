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
    /// An array of any number of dimensions, with its lower bounds.
    Array(Array),
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
            Value::Array(a) => write!(f, "{a}"),
        }
    }
}

/// Arrays have at most this many dimensions (PostgreSQL's limit is 6).
pub const MAX_ARRAY_DIMS: usize = 32;

/// One dimension of an [`Array`]: its length and the index of its first
/// element (PostgreSQL's lower bound, 1 unless the array says otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dim {
    pub len: u32,
    pub lower: i32,
}

/// An array as PostgreSQL has it: dimensions (outermost first) and the
/// elements in row-major order, so `{{1,2},{3,4}}` is dims `[2, 2]` and
/// elements `1,2,3,4`. An empty array has no dimensions. Elements may
/// themselves be arrays (an array of arrays, for sources that have them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Array {
    dims: Vec<Dim>,
    elements: Vec<Value>,
}

impl Array {
    /// A one-dimensional array indexed from 1 (or the empty array).
    pub fn list(elements: Vec<Value>) -> Self {
        let dims = match u32::try_from(elements.len()) {
            Ok(0) => Vec::new(),
            Ok(len) => vec![Dim { len, lower: 1 }],
            // More than 4 billion elements cannot come from any source;
            // keep the elements, describe them as one long dimension.
            Err(_) => vec![Dim {
                len: u32::MAX,
                lower: 1,
            }],
        };
        Array { dims, elements }
    }

    /// An array of `dims`; the element count must be the product of the
    /// lengths, and no upper bound may pass `i32::MAX`. An array without
    /// elements is the empty array, whatever `dims` say.
    pub fn new(dims: Vec<Dim>, elements: Vec<Value>) -> Result<Self, String> {
        if dims.len() > MAX_ARRAY_DIMS {
            return Err(format!(
                "an array has {} dimensions, more than {MAX_ARRAY_DIMS}",
                dims.len()
            ));
        }
        let mut total: usize = 1;
        for d in &dims {
            if i64::from(d.lower) + i64::from(d.len) - 1 > i64::from(i32::MAX) {
                return Err(format!(
                    "an array dimension starting at {} with {} elements ends past {}",
                    d.lower,
                    d.len,
                    i32::MAX
                ));
            }
            total = usize::try_from(d.len)
                .ok()
                .and_then(|len| total.checked_mul(len))
                .ok_or("an array's dimensions multiply past usize")?;
        }
        if dims.is_empty() || total == 0 {
            if !elements.is_empty() {
                return Err(format!(
                    "an array without dimensions has {} elements",
                    elements.len()
                ));
            }
            return Ok(Array {
                dims: Vec::new(),
                elements,
            });
        }
        if total != elements.len() {
            return Err(format!(
                "an array of dimensions {} needs {total} elements, it has {}",
                dims_text(&dims),
                elements.len()
            ));
        }
        Ok(Array { dims, elements })
    }

    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    /// The elements in row-major order.
    pub fn elements(&self) -> &[Value] {
        &self.elements
    }

    pub fn into_elements(self) -> Vec<Value> {
        self.elements
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Empty, or one dimension indexed from 1: what a plain list holds
    /// without any shape beside it.
    pub fn is_list(&self) -> bool {
        match self.dims.as_slice() {
            [] => true,
            [d] => d.lower == 1,
            _ => false,
        }
    }

    /// The dimensions as PostgreSQL's `array_dims()` prints them
    /// (`[0:1][1:2]`; empty for the empty array).
    pub fn dims_text(&self) -> String {
        dims_text(&self.dims)
    }
}

impl Array {
    /// An array of nested lists of equal lengths (`{{1,2},{3,4}}` as
    /// builds before dimensions were kept wrote a multi-dimensional
    /// array) as one array of those dimensions; anything else unchanged.
    pub fn from_nested_lists(self) -> Array {
        let mut dims = Vec::new();
        let mut level: Vec<&Value> = self.elements.iter().collect();
        let mut len = self.elements.len();
        loop {
            let Ok(n) = u32::try_from(len) else {
                return self;
            };
            dims.push(Dim { len: n, lower: 1 });
            let lists: Option<Vec<&Array>> = level
                .iter()
                .map(|v| match v {
                    Value::Array(a) if a.is_list() && !a.is_empty() => Some(a),
                    _ => None,
                })
                .collect();
            let Some(lists) = lists.filter(|l| !l.is_empty()) else {
                break;
            };
            len = lists[0].elements.len();
            if lists.iter().any(|a| a.elements.len() != len) || dims.len() >= MAX_ARRAY_DIMS {
                return self;
            }
            level = lists.iter().flat_map(|a| a.elements.iter()).collect();
        }
        if dims.len() < 2 || !self.is_list() {
            return self;
        }
        let elements = level.into_iter().cloned().collect();
        Array::new(dims, elements).unwrap_or(self)
    }
}

fn dims_text(dims: &[Dim]) -> String {
    let mut out = String::new();
    for d in dims {
        let upper = i64::from(d.lower) + i64::from(d.len) - 1;
        out.push_str(&format!("[{}:{upper}]", d.lower));
    }
    out
}

/// Parses `array_dims()` text (`[0:1][1:2]`, `[3]` for `[1:3]`).
pub fn parse_dims(text: &str) -> Result<Vec<Dim>, String> {
    let fail = |why: &str| format!("array dimensions `{text}`: {why}");
    let mut dims = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(|| fail("expected `[`"))?;
        let close = inner.find(']').ok_or_else(|| fail("expected `]`"))?;
        let (lower, upper) = match inner[..close].split_once(':') {
            Some((l, u)) => (l.trim(), u.trim()),
            None => ("1", inner[..close].trim()),
        };
        let lower: i32 = lower
            .parse()
            .map_err(|_| fail("a bound is not an integer"))?;
        let upper: i32 = upper
            .parse()
            .map_err(|_| fail("a bound is not an integer"))?;
        let len = i64::from(upper) - i64::from(lower) + 1;
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| fail("an upper bound is below its lower bound"))?;
        dims.push(Dim { len, lower });
        rest = &inner[close + 1..];
    }
    Ok(dims)
}

/// PostgreSQL's text form: `{{1,2},{3,4}}`, `[0:1]={1,2}` when a lower
/// bound is not 1.
impl std::fmt::Display for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dims.iter().any(|d| d.lower != 1) {
            write!(f, "{}=", self.dims_text())?;
        }
        if self.dims.is_empty() {
            return f.write_str("{}");
        }
        fn level(
            f: &mut std::fmt::Formatter<'_>,
            dims: &[Dim],
            elements: &mut std::slice::Iter<'_, Value>,
        ) -> std::fmt::Result {
            f.write_str("{")?;
            let Some((d, inner)) = dims.split_first() else {
                return f.write_str("}");
            };
            for i in 0..d.len {
                if i > 0 {
                    f.write_str(",")?;
                }
                if inner.is_empty() {
                    if let Some(e) = elements.next() {
                        write!(f, "{e}")?;
                    }
                } else {
                    level(f, inner, elements)?;
                }
            }
            f.write_str("}")
        }
        level(f, &self.dims, &mut self.elements.iter())
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
    fn arrays_keep_dimensions_and_bounds() {
        let ints = |n: i32| (1..=n).map(Value::Int32).collect::<Vec<_>>();
        let two = Array::new(
            vec![Dim { len: 2, lower: 1 }, Dim { len: 2, lower: 1 }],
            ints(4),
        )
        .unwrap();
        assert_eq!(two.to_string(), "{{1,2},{3,4}}");
        assert!(!two.is_list());
        let shifted = Array::new(vec![Dim { len: 2, lower: 0 }], ints(2)).unwrap();
        assert_eq!(shifted.to_string(), "[0:1]={1,2}");
        assert_eq!(shifted.dims_text(), "[0:1]");
        assert_eq!(parse_dims("[0:1]").unwrap(), shifted.dims());
        assert_eq!(parse_dims(&two.dims_text()).unwrap(), two.dims());
        assert_eq!(Array::list(Vec::new()).to_string(), "{}");
        assert!(Array::list(ints(3)).is_list());
        assert!(Array::new(vec![Dim { len: 3, lower: 1 }], ints(2)).is_err());
        assert!(Array::new(
            vec![Dim {
                len: 2,
                lower: i32::MAX
            }],
            ints(2)
        )
        .is_err());
        assert!(parse_dims("[2:1]").is_err());
        // Nested lists from builds before dimensions were kept.
        let nested = |rows: Vec<Vec<i32>>| {
            Array::list(
                rows.into_iter()
                    .map(|r| Value::Array(Array::list(r.into_iter().map(Value::Int32).collect())))
                    .collect(),
            )
        };
        assert_eq!(
            nested(vec![vec![1, 2], vec![3, 4]]).from_nested_lists(),
            two
        );
        let jagged = nested(vec![vec![1, 2], vec![3]]);
        assert_eq!(jagged.clone().from_nested_lists(), jagged);
        assert_eq!(
            Array::list(ints(3)).from_nested_lists(),
            Array::list(ints(3))
        );
    }

    #[test]
    fn unchanged_is_not_null() {
        assert_ne!(Value::Unchanged, Value::Null);
        assert!(!Value::Unchanged.is_null());
    }
}
