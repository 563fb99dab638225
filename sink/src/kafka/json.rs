//! Values as Debezium's JSON converter writes them, straight into a byte
//! buffer: no intermediate `serde_json::Value`, no allocation per field.
//!
//! Defaults followed (Debezium `decimal.handling.mode=precise`,
//! `time.precision.mode=adaptive`, `binary.handling.mode=bytes`):
//! decimals as base64 two's-complement unscaled bytes; `date` as days since
//! the epoch; `time` as µs (`MicroTime`) or ms (`Time`, precision ≤ 3);
//! `timestamp` as epoch µs (`MicroTimestamp`) or ms (`Timestamp`);
//! `timestamptz` as an ISO-8601 UTC string (`ZonedTimestamp`); `timetz` as
//! `HH:MM:SS[.ffffff]Z` (`ZonedTime`); `interval` as µs (`MicroDuration`,
//! a month counted as 30.4375 days); json, uuid, enum as strings; bytes as
//! base64; an unchanged TOAST value as `__debezium_unavailable_value`;
//! arrays as the list of their elements in row-major order. What this
//! loses (an array's dimensions, NaN / ±Infinity written as `null` in
//! precise mode) travels in the `headwater.special` header
//! ([`super::encode::HEADER_SPECIAL`]).

use serde::Serializer as _;

use headwater_core::time::{civil_from_days, MICROS_PER_DAY};
use headwater_core::{Date, Decimal, Interval, TimeTz, Timestamp, Value};

use super::config::DecimalHandling;

/// Debezium's `unavailable.value.placeholder` default.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// How one column's values render; decided once per table schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Render {
    pub decimal: DecimalHandling,
    /// The column declares no scale: `VariableScaleDecimal` in precise mode.
    pub variable_scale: bool,
    /// `time`/`timestamp` with precision ≤ 3: milliseconds.
    pub millis: bool,
}

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_str(s);
}

pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_i64(n);
}

pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_u64(n);
}

fn write_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_f64(x);
    } else if x.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if x > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

fn write_f32(out: &mut Vec<u8>, x: f32) {
    if x.is_finite() {
        let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_f32(x);
    } else {
        write_f64(out, f64::from(x));
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as a JSON string.
pub fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len().div_ceil(3) * 4 + 2);
    out.push(b'"');
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.push(B64[((n >> shift) & 63) as usize]);
        }
    }
    match chunks.remainder() {
        [a] => {
            let n = u32::from(*a) << 16;
            out.extend_from_slice(&[B64[(n >> 18) as usize], B64[((n >> 12) & 63) as usize]]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = (u32::from(*a) << 16) | (u32::from(*b) << 8);
            out.extend_from_slice(&[
                B64[(n >> 18) as usize],
                B64[((n >> 12) & 63) as usize],
                B64[((n >> 6) & 63) as usize],
            ]);
            out.push(b'=');
        }
        _ => {}
    }
    out.push(b'"');
}

/// The unscaled value of a finite decimal as Java's
/// `BigInteger.toByteArray()`: minimal big-endian two's complement.
pub fn unscaled_bytes(negative: bool, digits: &str, scratch: &mut Vec<u8>) {
    scratch.clear();
    if digits.len() <= 38 {
        if let Ok(magnitude) = digits.parse::<u128>() {
            // ≤ 10^38 - 1 < 2^127: fits an i128.
            let v = magnitude as i128;
            let v = if negative { -v } else { v };
            scratch.extend_from_slice(&v.to_be_bytes());
            minimise(scratch);
            return;
        }
    }
    // Arbitrary length: base 10 → base 256, one digit at a time.
    scratch.push(0);
    for d in digits.bytes() {
        let mut carry = u32::from(d.wrapping_sub(b'0'));
        for byte in scratch.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            scratch.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    scratch.insert(0, 0);
    if negative {
        for byte in scratch.iter_mut() {
            *byte = !*byte;
        }
        for byte in scratch.iter_mut().rev() {
            let (v, overflow) = byte.overflowing_add(1);
            *byte = v;
            if !overflow {
                break;
            }
        }
    }
    minimise(scratch);
}

fn minimise(bytes: &mut Vec<u8>) {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes.drain(..start);
}

fn write_decimal(out: &mut Vec<u8>, d: &Decimal, render: Render, scratch: &mut Vec<u8>) {
    use std::io::Write as _;
    match (render.decimal, d) {
        (
            DecimalHandling::Precise,
            Decimal::Finite {
                negative,
                digits,
                scale,
            },
        ) => {
            unscaled_bytes(*negative, digits, scratch);
            if render.variable_scale {
                out.extend_from_slice(b"{\"scale\":");
                write_u64(out, u64::from(*scale));
                out.extend_from_slice(b",\"value\":");
                write_base64(out, scratch);
                out.push(b'}');
            } else {
                write_base64(out, scratch);
            }
        }
        // Debezium has no precise form for NaN / ±Infinity: `null`, and
        // the value in the `headwater.special` header.
        (DecimalHandling::Precise, _) => out.extend_from_slice(b"null"),
        (DecimalHandling::String, d) => {
            out.push(b'"');
            let _ = write!(out, "{d}");
            out.push(b'"');
        }
        (DecimalHandling::Double, Decimal::Finite { .. }) => {
            let _ = write!(out, "{d}");
        }
        (DecimalHandling::Double, Decimal::NaN) => out.extend_from_slice(b"\"NaN\""),
        (DecimalHandling::Double, Decimal::PosInfinity) => out.extend_from_slice(b"\"Infinity\""),
        (DecimalHandling::Double, Decimal::NegInfinity) => out.extend_from_slice(b"\"-Infinity\""),
    }
}

fn two_digits(out: &mut Vec<u8>, n: u64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `HH:MM:SS` then `.fraction` without trailing zeros (Java's ISO form).
fn write_time_of_day(out: &mut Vec<u8>, micros: u64) {
    let secs = micros / 1_000_000;
    two_digits(out, secs / 3600);
    out.push(b':');
    two_digits(out, secs / 60 % 60);
    out.push(b':');
    two_digits(out, secs % 60);
    let mut frac = micros % 1_000_000;
    if frac != 0 {
        out.push(b'.');
        let mut width = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            width -= 1;
        }
        let mut digits = [b'0'; 6];
        for i in (0..width).rev() {
            digits[i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        out.extend_from_slice(&digits[..width]);
    }
}

/// ISO-8601 UTC instant: `2024-01-31T12:00:00.5Z` (year 0 = 1 BC, negative
/// years with a `-`, as Java prints them).
pub fn write_zoned_timestamp(out: &mut Vec<u8>, ts: Timestamp) {
    let micros = match ts {
        Timestamp::Micros(m) => m,
        Timestamp::PosInfinity => return out.extend_from_slice(b"\"infinity\""),
        Timestamp::NegInfinity => return out.extend_from_slice(b"\"-infinity\""),
    };
    let (y, m, d) = civil_from_days(micros.div_euclid(MICROS_PER_DAY));
    out.push(b'"');
    if y < 0 {
        out.push(b'-');
    }
    let y = y.unsigned_abs();
    if y > 9999 {
        out.push(b'+');
        write_u64(out, y);
    } else {
        two_digits(out, y / 100);
        two_digits(out, y % 100);
    }
    out.push(b'-');
    two_digits(out, u64::from(m));
    out.push(b'-');
    two_digits(out, u64::from(d));
    out.push(b'T');
    write_time_of_day(out, micros.rem_euclid(MICROS_PER_DAY).unsigned_abs());
    out.extend_from_slice(b"Z\"");
}

fn write_zoned_time(out: &mut Vec<u8>, t: TimeTz) {
    let utc = (t.micros - i64::from(t.offset_seconds) * 1_000_000).rem_euclid(MICROS_PER_DAY);
    out.push(b'"');
    write_time_of_day(out, utc.unsigned_abs());
    out.extend_from_slice(b"Z\"");
}

/// Debezium's `MicroDuration`: a month is 30.4375 days (365.25 / 12).
pub fn micro_duration(i: Interval) -> i64 {
    const MICROS_PER_MONTH: i128 = 2_629_800_000_000;
    let total = i128::from(i.months) * MICROS_PER_MONTH
        + i128::from(i.days) * i128::from(MICROS_PER_DAY)
        + i128::from(i.micros);
    i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
}

/// Writes one value. `Unchanged` is Debezium's placeholder (base64 of it
/// for bytes).
pub fn write_value(out: &mut Vec<u8>, value: &Value, render: Render, scratch: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Unchanged => {
            out.push(b'"');
            out.extend_from_slice(UNAVAILABLE.as_bytes());
            out.push(b'"');
        }
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int16(i) => write_i64(out, i64::from(*i)),
        Value::Int32(i) => write_i64(out, i64::from(*i)),
        Value::Int64(i) => write_i64(out, *i),
        Value::UInt64(u) => write_u64(out, *u),
        Value::Float32(x) => write_f32(out, *x),
        Value::Float64(x) => write_f64(out, *x),
        Value::Decimal(d) => write_decimal(out, d, render, scratch),
        Value::Text(s) | Value::Json(s) | Value::Enum(s) => write_str(out, s),
        Value::Bytes(b) => write_base64(out, b),
        Value::Uuid(u) => {
            out.push(b'"');
            for (i, b) in u.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push(b'-');
                }
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
            }
            out.push(b'"');
        }
        Value::Date(Date::Days(d)) => write_i64(out, i64::from(*d)),
        Value::Date(Date::PosInfinity) => write_i64(out, i64::from(i32::MAX)),
        Value::Date(Date::NegInfinity) => write_i64(out, i64::from(i32::MIN)),
        Value::Time(t) if render.millis => write_i64(out, t.0.div_euclid(1000)),
        Value::Time(t) => write_i64(out, t.0),
        Value::TimeTz(t) => write_zoned_time(out, *t),
        Value::Timestamp(Timestamp::Micros(m)) if render.millis => {
            write_i64(out, m.div_euclid(1000))
        }
        Value::Timestamp(Timestamp::Micros(m)) => write_i64(out, *m),
        Value::Timestamp(Timestamp::PosInfinity) => write_i64(out, i64::MAX),
        Value::Timestamp(Timestamp::NegInfinity) => write_i64(out, i64::MIN),
        Value::TimestampTz(ts) => write_zoned_timestamp(out, *ts),
        Value::Interval(i) => write_i64(out, micro_duration(*i)),
        // The elements in row-major order; the dimensions of an array that
        // is not a plain list travel in the `headwater.special` header.
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.elements().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, render, scratch);
            }
            out.push(b']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_base64(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(b64(b""), "\"\"");
        assert_eq!(b64(b"f"), "\"Zg==\"");
        assert_eq!(b64(b"fo"), "\"Zm8=\"");
        assert_eq!(b64(b"foo"), "\"Zm9v\"");
        assert_eq!(b64(b"foobar"), "\"Zm9vYmFy\"");
    }

    fn bytes_of(negative: bool, digits: &str) -> Vec<u8> {
        let mut s = Vec::new();
        unscaled_bytes(negative, digits, &mut s);
        s
    }

    #[test]
    fn unscaled_bytes_match_java_big_integer() {
        assert_eq!(bytes_of(false, "0"), [0]);
        assert_eq!(bytes_of(false, "127"), [0x7f]);
        assert_eq!(bytes_of(false, "128"), [0x00, 0x80]);
        assert_eq!(bytes_of(true, "128"), [0x80]);
        assert_eq!(bytes_of(true, "129"), [0xff, 0x7f]);
        assert_eq!(bytes_of(false, "12345"), [0x30, 0x39]);
        // The slow path agrees with the i128 one.
        let big = "123456789012345678901234567890123456789012";
        let mut slow = Vec::new();
        unscaled_bytes(true, big, &mut slow);
        assert_eq!(slow.first(), Some(&0xfe));
        for (neg, digits) in [(false, "99999999999999999999"), (true, "4294967296")] {
            let fast = bytes_of(neg, digits);
            let padded = format!("{:0>40}", digits);
            assert_eq!(bytes_of(neg, &padded), fast);
        }
    }

    #[test]
    fn temporal_forms() {
        let mut out = Vec::new();
        write_zoned_timestamp(&mut out, Timestamp::Micros(1_706_702_400_500_000));
        assert_eq!(out, b"\"2024-01-31T12:00:00.5Z\"");
        out.clear();
        write_zoned_time(
            &mut out,
            TimeTz {
                micros: 3_600_000_000,
                offset_seconds: 7_200,
            },
        );
        assert_eq!(out, b"\"23:00:00Z\"");
        let iv = Interval {
            months: 1,
            days: 1,
            micros: 1,
        };
        assert_eq!(micro_duration(iv), 2_629_800_000_000 + 86_400_000_000 + 1);
    }
}
