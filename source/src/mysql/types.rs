//! Column values: from the binlog's row format to [`Value`], exactly.
//!
//! A [`Cell`] is the decoding plan for one column, built once per table map
//! from the binlog type, its metadata, signedness, charset and labels, so
//! decoding a row is a straight walk over bytes.
//!
//! Conventions (also in the README):
//! - Integers keep their range: signed `TINYINT`/`SMALLINT` → int16,
//!   `MEDIUMINT`/`INT` → int32, `BIGINT` → int64; unsigned types widen
//!   (`SMALLINT UNSIGNED` → int32, `INT UNSIGNED` → int64,
//!   `BIGINT UNSIGNED` → uint64).
//! - `DECIMAL` is exact (digits and the declared scale).
//! - `DATE`, `DATETIME`, `TIMESTAMP` whose value is the zero date (or has a
//!   zero month or day, which no calendar has) become `Null`.
//! - `DATETIME` → timestamp (wall clock), `TIMESTAMP` → timestamptz (UTC),
//!   `TIME` → time (a duration; may be negative or exceed 24 hours).
//! - `YEAR` → int32 (0 for `0000`). `BIT(1)` → bool, wider `BIT` → bytes
//!   (big-endian, as stored).
//! - Text in utf8/utf8mb3/utf8mb4/ascii/latin1 (MySQL's latin1 is
//!   Windows-1252) → text; the binary charset → bytes; other charsets →
//!   bytes, undecoded. `BINARY(n)` is always `n` bytes: the binlog drops
//!   its trailing zero bytes, and they are put back.
//! - `ENUM` → the label (`""` for the invalid index 0); `SET` → the member
//!   labels joined by `,`.
//! - `JSON` → JSON text (MySQL's binary JSON rendered like MySQL does;
//!   MariaDB's JSON is text already).
//! - Geometry → WKB (MySQL's 4-byte SRID prefix is removed).

use std::fmt::Write as _;

use headwater_core::time::{days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use headwater_core::{Date, Decimal, Time, Timestamp, Value, ValueKind};

use super::binlog::reader::{DecodeError, DecodeResult, Reader};
use super::binlog::table_map::{ty, ColumnDef, BINARY_COLLATION};

/// How a character column's bytes become a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    /// `binary`, or a charset we do not decode: raw bytes.
    Binary,
    /// Text that is a JSON document (MariaDB's `JSON` is `LONGTEXT`).
    Json,
}

/// The charset a collation id belongs to; `names` maps the server's
/// collation ids (information_schema.COLLATIONS) to charset names.
pub fn charset_of(collation: Option<u16>, names: &dyn Fn(u16) -> Option<String>) -> Charset {
    match collation {
        None => Charset::Utf8,
        Some(BINARY_COLLATION) => Charset::Binary,
        Some(id) => match names(id).as_deref().or_else(|| builtin_charset(id)) {
            Some("utf8mb4" | "utf8mb3" | "utf8") => Charset::Utf8,
            Some("latin1" | "ascii") => Charset::Latin1,
            _ => Charset::Binary,
        },
    }
}

/// The common collations, for when the server's table is not at hand.
fn builtin_charset(id: u16) -> Option<&'static str> {
    Some(match id {
        8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
        11 | 65 => "ascii",
        33 | 83 | 192..=215 | 223 => "utf8mb3",
        45 | 46 | 224..=247 | 255..=323 => "utf8mb4",
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Bit {
        bytes: u16,
        bool: bool,
    },
    Year,
    Date,
    Time,
    Time2 {
        fsp: u8,
    },
    DateTime,
    DateTime2 {
        fsp: u8,
    },
    Timestamp,
    Timestamp2 {
        fsp: u8,
    },
    /// VARCHAR/VARBINARY/CHAR/BINARY: `len_bytes` length prefix.
    Str {
        len_bytes: u8,
        charset: Charset,
        /// `BINARY(n)`: the binlog strips trailing zero bytes, which
        /// belong to the value; they are put back up to `n` bytes.
        zero_pad_to: Option<u16>,
    },
    /// BLOB/TEXT: `len_bytes` length prefix.
    Blob {
        len_bytes: u8,
        charset: Charset,
    },
    Json {
        len_bytes: u8,
    },
    Geometry {
        len_bytes: u8,
    },
    Enum {
        bytes: u8,
        labels: Vec<String>,
    },
    Set {
        bytes: u8,
        labels: Vec<String>,
    },
}

fn unsupported(col: &ColumnDef) -> DecodeError {
    DecodeError::new(
        "column type",
        format!("binlog column type {} is not supported", col.ty),
    )
}

/// Builds the decoding plan of a column. `labels` fills in enum/set labels
/// the table map did not carry (from information_schema).
pub fn plan(col: &ColumnDef, charset: Charset, labels: Option<&[String]>) -> DecodeResult<Cell> {
    let meta = col.meta;
    let hi = (meta >> 8) as u8;
    let lo = (meta & 0xff) as u8;
    let small = |n: u16| -> DecodeResult<u8> {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=4).contains(n))
            .ok_or_else(|| DecodeError::new("column metadata", format!("length size {n}")))
    };
    let labels = || -> DecodeResult<Vec<String>> {
        col.labels
            .clone()
            .or_else(|| labels.map(<[String]>::to_vec))
            .ok_or_else(|| {
                DecodeError::new(
                    "enum/set column",
                    "the binlog carries no labels and information_schema has none; set binlog_row_metadata=FULL",
                )
            })
    };
    Ok(match col.ty {
        ty::TINY => Cell::Int {
            bytes: 1,
            unsigned: col.unsigned,
        },
        ty::SHORT => Cell::Int {
            bytes: 2,
            unsigned: col.unsigned,
        },
        ty::INT24 => Cell::Int {
            bytes: 3,
            unsigned: col.unsigned,
        },
        ty::LONG => Cell::Int {
            bytes: 4,
            unsigned: col.unsigned,
        },
        ty::LONGLONG => Cell::Int {
            bytes: 8,
            unsigned: col.unsigned,
        },
        ty::FLOAT => Cell::Float,
        ty::DOUBLE => Cell::Double,
        ty::NEWDECIMAL => {
            if hi == 0 || hi > 65 || lo > 30 || lo > hi {
                return Err(DecodeError::new(
                    "decimal column",
                    format!("precision {hi}, scale {lo}"),
                ));
            }
            Cell::Decimal {
                precision: hi,
                scale: lo,
            }
        }
        ty::BIT => {
            let bits = u16::from(lo) * 8 + u16::from(hi);
            Cell::Bit {
                bytes: bits.div_ceil(8),
                bool: bits == 1,
            }
        }
        ty::YEAR => Cell::Year,
        ty::DATE | ty::NEWDATE => Cell::Date,
        ty::TIME => Cell::Time,
        ty::TIME2 => Cell::Time2 { fsp: fsp(meta)? },
        ty::DATETIME => Cell::DateTime,
        ty::DATETIME2 => Cell::DateTime2 { fsp: fsp(meta)? },
        ty::TIMESTAMP => Cell::Timestamp,
        ty::TIMESTAMP2 => Cell::Timestamp2 { fsp: fsp(meta)? },
        ty::VARCHAR | ty::VAR_STRING => Cell::Str {
            len_bytes: if meta < 256 { 1 } else { 2 },
            charset,
            zero_pad_to: None,
        },
        ty::STRING => Cell::Str {
            len_bytes: if meta < 256 { 1 } else { 2 },
            charset,
            // CHAR's stripped trailing spaces are stripped by SELECT too
            zero_pad_to: (col.collation == Some(BINARY_COLLATION)).then_some(meta),
        },
        ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB => Cell::Blob {
            len_bytes: small(meta)?,
            charset,
        },
        ty::JSON => Cell::Json {
            len_bytes: small(meta)?,
        },
        ty::GEOMETRY => Cell::Geometry {
            len_bytes: small(meta)?,
        },
        ty::ENUM => Cell::Enum {
            bytes: small(meta)?,
            labels: labels()?,
        },
        ty::SET => Cell::Set {
            bytes: u8::try_from(meta)
                .ok()
                .filter(|n| (1..=8).contains(n))
                .ok_or_else(|| DecodeError::new("set column", format!("size {meta}")))?,
            labels: labels()?,
        },
        _ => return Err(unsupported(col)),
    })
}

fn fsp(meta: u16) -> DecodeResult<u8> {
    u8::try_from(meta)
        .ok()
        .filter(|f| *f <= 6)
        .ok_or_else(|| DecodeError::new("temporal column", format!("fractional digits {meta}")))
}

/// The [`ValueKind`] values of a plan take.
pub fn kind(cell: &Cell) -> ValueKind {
    match cell {
        Cell::Int { bytes: 1, .. }
        | Cell::Int {
            bytes: 2,
            unsigned: false,
        } => ValueKind::Int16,
        Cell::Int { bytes: 2 | 3, .. }
        | Cell::Int {
            bytes: 4,
            unsigned: false,
        } => ValueKind::Int32,
        Cell::Int { bytes: 4, .. }
        | Cell::Int {
            unsigned: false, ..
        } => ValueKind::Int64,
        Cell::Int { .. } => ValueKind::UInt64,
        Cell::Float => ValueKind::Float32,
        Cell::Double => ValueKind::Float64,
        Cell::Decimal { precision, scale } => ValueKind::Decimal {
            precision: Some(u32::from(*precision)),
            scale: Some(u32::from(*scale)),
        },
        Cell::Bit { bool: true, .. } => ValueKind::Bool,
        Cell::Bit { .. } => ValueKind::Bytes,
        Cell::Year => ValueKind::Int32,
        Cell::Date => ValueKind::Date,
        Cell::Time | Cell::Time2 { .. } => ValueKind::Time,
        Cell::DateTime | Cell::DateTime2 { .. } => ValueKind::Timestamp,
        Cell::Timestamp | Cell::Timestamp2 { .. } => ValueKind::TimestampTz,
        Cell::Str { charset, .. } | Cell::Blob { charset, .. } => match charset {
            Charset::Utf8 | Charset::Latin1 => ValueKind::Text,
            Charset::Binary => ValueKind::Bytes,
            Charset::Json => ValueKind::Json,
        },
        Cell::Json { .. } => ValueKind::Json,
        Cell::Geometry { .. } => ValueKind::Bytes,
        Cell::Enum { .. } | Cell::Set { .. } => ValueKind::Enum,
    }
}

/// Decodes one non-null value.
pub fn decode(r: &mut Reader<'_>, cell: &Cell) -> DecodeResult<Value> {
    Ok(match cell {
        Cell::Int { bytes, unsigned } => int(
            r.uint_le(usize::from(*bytes), "integer")?,
            *bytes,
            *unsigned,
        ),
        Cell::Float => Value::Float32(f32::from_bits(r.u32("float")?)),
        Cell::Double => Value::Float64(f64::from_bits(r.u64("double")?)),
        Cell::Decimal { precision, scale } => Value::Decimal(decimal(r, *precision, *scale)?),
        Cell::Bit { bytes, bool } => {
            let raw = r.take(usize::from(*bytes), "bit")?;
            if *bool {
                Value::Bool(raw.iter().any(|b| *b != 0))
            } else {
                Value::Bytes(raw.to_vec())
            }
        }
        Cell::Year => {
            let y = r.u8("year")?;
            Value::Int32(if y == 0 { 0 } else { 1900 + i32::from(y) })
        }
        Cell::Date => {
            let v = r.uint_le(3, "date")?;
            date(v >> 9, ((v >> 5) & 15) as u32, (v & 31) as u32)?
        }
        Cell::Time => {
            let v = r.uint_le(3, "time")?;
            let v = if v & 0x80_0000 != 0 {
                v as i64 - 0x100_0000
            } else {
                v as i64
            };
            let (neg, a) = (v < 0, v.abs());
            let micros = ((a / 10000) * 3600 + (a / 100 % 100) * 60 + a % 100) * MICROS_PER_SECOND;
            Value::Time(Time(if neg { -micros } else { micros }))
        }
        Cell::Time2 { fsp } => Value::Time(Time(time2(r, *fsp)?)),
        Cell::DateTime => {
            let v = r.u64("datetime")?;
            let (d, t) = (v / 1_000_000, v % 1_000_000);
            datetime(
                d / 10000,
                (d / 100 % 100) as u32,
                (d % 100) as u32,
                t / 10000,
                t / 100 % 100,
                t % 100,
                0,
            )?
        }
        Cell::DateTime2 { fsp } => {
            let int = r.uint_be(5, "datetime")? as i64 - 0x80_0000_0000;
            let frac = frac(r, *fsp)?;
            if int < 0 {
                return Err(DecodeError::new("datetime", "negative packed value"));
            }
            let ymd = int >> 17;
            let ym = ymd >> 5;
            let hms = int & 0x1_ffff;
            datetime(
                (ym / 13) as u64,
                (ym % 13) as u32,
                (ymd & 31) as u32,
                (hms >> 12) as u64,
                ((hms >> 6) & 63) as u64,
                (hms & 63) as u64,
                frac,
            )?
        }
        Cell::Timestamp => {
            let secs = i64::from(r.u32("timestamp")?);
            timestamp(secs, 0)
        }
        Cell::Timestamp2 { fsp } => {
            let secs = r.uint_be(4, "timestamp")? as i64;
            let frac = frac(r, *fsp)?;
            timestamp(secs, frac)
        }
        Cell::Str {
            len_bytes,
            charset,
            zero_pad_to: Some(width),
        } => padded_binary(r, *len_bytes, *charset, *width)?,
        Cell::Str {
            len_bytes, charset, ..
        }
        | Cell::Blob { len_bytes, charset } => text(length_prefixed(r, *len_bytes)?, *charset)?,
        Cell::Json { len_bytes } => {
            let n = usize::try_from(r.uint_le(usize::from(*len_bytes), "json length")?)
                .unwrap_or(usize::MAX);
            Value::Json(super::binlog::json::to_text(r.take(n, "json")?)?)
        }
        Cell::Geometry { len_bytes } => {
            let n = usize::try_from(r.uint_le(usize::from(*len_bytes), "geometry length")?)
                .unwrap_or(usize::MAX);
            let raw = r.take(n, "geometry")?;
            Value::Bytes(raw.get(4..).unwrap_or_default().to_vec())
        }
        Cell::Enum { bytes, labels } => {
            let i = r.uint_le(usize::from(*bytes), "enum")?;
            enum_label(i, labels)?
        }
        Cell::Set { bytes, labels } => {
            let bits = r.uint_le(usize::from(*bytes), "set")?;
            set_labels(bits, labels)?
        }
    })
}

fn length_prefixed<'a>(r: &mut Reader<'a>, len_bytes: u8) -> DecodeResult<&'a [u8]> {
    let n = r.uint_le(usize::from(len_bytes), "string length")?;
    r.take(usize::try_from(n).unwrap_or(usize::MAX), "string")
}

/// A `BINARY(width)` value, its trailing zero bytes restored.
fn padded_binary(
    r: &mut Reader<'_>,
    len_bytes: u8,
    charset: Charset,
    width: u16,
) -> DecodeResult<Value> {
    let raw = length_prefixed(r, len_bytes)?;
    let width = usize::from(width);
    if raw.len() > width {
        return Err(DecodeError::new(
            "binary column",
            format!("value of {} bytes in a BINARY({width}) column", raw.len()),
        ));
    }
    let mut full = raw.to_vec();
    full.resize(width, 0);
    text(&full, charset)
}

fn int(v: u64, bytes: u8, unsigned: bool) -> Value {
    let shift = 64 - 8 * u32::from(bytes);
    let signed = ((v << shift) as i64) >> shift;
    match (bytes, unsigned) {
        (1 | 2, false) => Value::Int16(signed as i16),
        (1, true) => Value::Int16(v as i16),
        (2 | 3, true) | (3 | 4, false) => {
            Value::Int32(if unsigned { v as i32 } else { signed as i32 })
        }
        (4, true) => Value::Int64(v as i64),
        (_, false) => Value::Int64(signed),
        (_, true) => Value::UInt64(v),
    }
}

pub fn enum_label(i: u64, labels: &[String]) -> DecodeResult<Value> {
    if i == 0 {
        return Ok(Value::Enum(String::new()));
    }
    usize::try_from(i - 1)
        .ok()
        .and_then(|i| labels.get(i))
        .map(|l| Value::Enum(l.clone()))
        .ok_or_else(|| {
            DecodeError::new(
                "enum",
                format!("index {i} beyond the {} labels", labels.len()),
            )
        })
}

pub fn set_labels(bits: u64, labels: &[String]) -> DecodeResult<Value> {
    let mut out = String::new();
    for i in 0..64usize {
        if bits & (1u64 << i) == 0 {
            continue;
        }
        let label = labels.get(i).ok_or_else(|| {
            DecodeError::new("set", format!("bit {i} beyond the {} labels", labels.len()))
        })?;
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(label);
    }
    Ok(Value::Enum(out))
}

pub fn text(raw: &[u8], charset: Charset) -> DecodeResult<Value> {
    Ok(match charset {
        Charset::Binary => Value::Bytes(raw.to_vec()),
        Charset::Utf8 => Value::Text(utf8(raw)?),
        Charset::Json => Value::Json(utf8(raw)?),
        Charset::Latin1 => Value::Text(raw.iter().map(|b| latin1(*b)).collect()),
    })
}

fn utf8(raw: &[u8]) -> DecodeResult<String> {
    String::from_utf8(raw.to_vec()).map_err(|e| DecodeError::new("utf8 text", e.to_string()))
}

/// MySQL's `latin1` is Windows-1252, with the five holes mapped to C1.
fn latin1(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ];
    match b {
        0x80..=0x9f => char::from_u32(u32::from(HIGH[usize::from(b - 0x80)])).unwrap_or('\u{fffd}'),
        _ => char::from(b),
    }
}

/// Fractional seconds of TIME2/DATETIME2/TIMESTAMP2, in microseconds.
fn frac(r: &mut Reader<'_>, fsp: u8) -> DecodeResult<i64> {
    Ok(match fsp {
        1 | 2 => r.uint_be(1, "fractional seconds")? as i64 * 10_000,
        3 | 4 => r.uint_be(2, "fractional seconds")? as i64 * 100,
        5 | 6 => r.uint_be(3, "fractional seconds")? as i64,
        _ => 0,
    })
}

/// TIME2 to signed microseconds (MySQL's `my_time_packed_from_binary`).
fn time2(r: &mut Reader<'_>, fsp: u8) -> DecodeResult<i64> {
    const INT_OFS: i64 = 0x80_0000;
    let packed = match fsp {
        0 => (r.uint_be(3, "time")? as i64 - INT_OFS) << 24,
        1 | 2 => {
            let mut int = r.uint_be(3, "time")? as i64 - INT_OFS;
            let mut f = i64::from(r.u8("time fraction")? as i8);
            if int < 0 && f != 0 {
                int += 1;
                f -= 0x100;
            }
            (int << 24) + f * 10_000
        }
        3 | 4 => {
            let mut int = r.uint_be(3, "time")? as i64 - INT_OFS;
            let mut f = i64::from(r.uint_be(2, "time fraction")? as u16 as i16);
            if int < 0 && f != 0 {
                int += 1;
                f -= 0x10000;
            }
            (int << 24) + f * 100
        }
        _ => r.uint_be(6, "time")? as i64 - 0x8000_0000_0000,
    };
    let neg = packed < 0;
    let a = packed.abs();
    let hms = a >> 24;
    let hour = (hms >> 12) % (1 << 10);
    let minute = (hms >> 6) % (1 << 6);
    let second = hms % (1 << 6);
    let micros = ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + a % (1 << 24);
    Ok(if neg { -micros } else { micros })
}

/// A DATE; the zero date (or a zero month or day) is `Null`.
pub fn date(y: u64, m: u32, d: u32) -> DecodeResult<Value> {
    if m == 0 || d == 0 || m > 12 {
        return Ok(Value::Null);
    }
    if y > 9999 || d > 31 {
        return Err(DecodeError::new("date", "year or day out of range"));
    }
    Ok(Value::Date(Date::Days(
        days_from_civil(y as i64, m, d) as i32
    )))
}

/// A DATETIME (wall clock); the zero date (or a zero month or day) is `Null`.
pub fn datetime(y: u64, m: u32, d: u32, h: u64, mi: u64, s: u64, frac: i64) -> DecodeResult<Value> {
    if m == 0 || d == 0 || m > 12 {
        return Ok(Value::Null);
    }
    if y > 9999 || d > 31 || h > 23 || mi > 59 || s > 59 || !(0..1_000_000).contains(&frac) {
        return Err(DecodeError::new("datetime", "a field is out of range"));
    }
    let days = days_from_civil(y as i64, m, d);
    let secs = (h * 3600 + mi * 60 + s) as i64;
    Ok(Value::Timestamp(Timestamp::Micros(
        days * MICROS_PER_DAY + secs * MICROS_PER_SECOND + frac,
    )))
}

fn timestamp(secs: i64, frac: i64) -> Value {
    if secs == 0 && frac == 0 {
        return Value::Null;
    }
    Value::TimestampTz(Timestamp::Micros(secs * MICROS_PER_SECOND + frac))
}

/// MySQL's binary DECIMAL (`bin2decimal`): groups of nine digits in four
/// big-endian bytes, a shorter leading/trailing group, sign in the top bit.
pub fn decimal(r: &mut Reader<'_>, precision: u8, scale: u8) -> DecodeResult<Decimal> {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let intg = usize::from(precision.saturating_sub(scale));
    let scale_u = usize::from(scale);
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (scale_u / 9, scale_u % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let mut bytes = r.take(size, "decimal")?.to_vec();
    let Some(first) = bytes.first_mut() else {
        return Ok(Decimal::from_i128(0, u32::from(scale)));
    };
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        bytes.iter_mut().for_each(|b| *b ^= 0xff);
    }
    let mut digits = String::with_capacity(usize::from(precision) + 9);
    let mut br = Reader::new(&bytes);
    let mut group = |br: &mut Reader<'_>, n_digits: usize, pad: bool| -> DecodeResult<()> {
        let n_bytes = DIG2BYTES[n_digits];
        if n_bytes == 0 {
            return Ok(());
        }
        let v = br.uint_be(n_bytes, "decimal")?;
        if v >= 10u64.pow(n_digits as u32) {
            return Err(DecodeError::new(
                "decimal",
                format!("a group exceeds {n_digits} digits"),
            ));
        }
        if pad || !digits.is_empty() {
            let _ = write!(digits, "{v:0n_digits$}");
        } else if v != 0 {
            let _ = write!(digits, "{v}");
        }
        Ok(())
    };
    group(&mut br, intg0x, false)?;
    for _ in 0..intg0 {
        group(&mut br, 9, false)?;
    }
    for _ in 0..frac0 {
        group(&mut br, 9, true)?;
    }
    group(&mut br, frac0x, true)?;
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() { "0" } else { trimmed };
    Ok(Decimal::Finite {
        negative: negative && digits != "0",
        digits: digits.into(),
        scale: u32::from(scale),
    })
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
