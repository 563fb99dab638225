//! Binary (`typsend`) representations to [`Value`]s: binary pgoutput and
//! binary COPY both use them.

use std::net::{Ipv4Addr, Ipv6Addr};

use headwater_core::value::{Array, Dim};
use headwater_core::{Date, Decimal, Interval, Time, TimeTz, Timestamp, Value};

use super::PgType;

/// Days between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// At most this many array elements (PostgreSQL's own MaxArraySize).
const MAX_ARRAY_ELEMENTS: usize = 134_217_727;

type Result<T> = std::result::Result<T, String>;

fn fixed<const N: usize>(data: &[u8], what: &str) -> Result<[u8; N]> {
    data.try_into()
        .map_err(|_| format!("{what} needs {N} bytes, got {}", data.len()))
}

fn utf8(data: &[u8], what: &str) -> Result<String> {
    std::str::from_utf8(data)
        .map(str::to_owned)
        .map_err(|_| format!("{what} is not UTF-8"))
}

pub fn decode(ty: &PgType, data: &[u8]) -> Result<Value> {
    Ok(match ty {
        PgType::Bool => Value::Bool(fixed::<1>(data, "bool")?[0] != 0),
        PgType::Int2 => Value::Int16(i16::from_be_bytes(fixed(data, "int2")?)),
        PgType::Int4 => Value::Int32(i32::from_be_bytes(fixed(data, "int4")?)),
        PgType::Int8 => Value::Int64(i64::from_be_bytes(fixed(data, "int8")?)),
        PgType::Oid => Value::Int64(i64::from(u32::from_be_bytes(fixed(data, "oid")?))),
        PgType::Float4 => Value::Float32(f32::from_be_bytes(fixed(data, "float4")?)),
        PgType::Float8 => Value::Float64(f64::from_be_bytes(fixed(data, "float8")?)),
        PgType::Numeric => Value::Decimal(numeric(data)?),
        PgType::Money => Value::Decimal(Decimal::from_i128(
            i128::from(i64::from_be_bytes(fixed(data, "money")?)),
            2,
        )),
        PgType::Text | PgType::Other => Value::Text(utf8(data, "text")?),
        PgType::Enum => Value::Enum(utf8(data, "enum label")?),
        PgType::Bytea => Value::Bytes(data.to_vec()),
        PgType::Json => Value::Json(utf8(data, "json")?),
        PgType::Jsonb => match data.split_first() {
            Some((1, rest)) => Value::Json(utf8(rest, "jsonb")?),
            _ => return Err("jsonb has an unknown version byte".into()),
        },
        PgType::Uuid => Value::Uuid(fixed(data, "uuid")?),
        PgType::Date => Value::Date(date(i32::from_be_bytes(fixed(data, "date")?))),
        PgType::Time => Value::Time(Time(i64::from_be_bytes(fixed(data, "time")?))),
        PgType::TimeTz => {
            let raw: [u8; 12] = fixed(data, "timetz")?;
            let (micros, zone) = raw.split_at(8);
            let zone = i32::from_be_bytes(fixed(zone, "timetz zone")?);
            Value::TimeTz(TimeTz {
                micros: i64::from_be_bytes(fixed(micros, "timetz")?),
                // PostgreSQL stores seconds west of Greenwich.
                offset_seconds: zone.checked_neg().ok_or("timetz zone out of range")?,
            })
        }
        PgType::Timestamp => {
            Value::Timestamp(timestamp(i64::from_be_bytes(fixed(data, "timestamp")?))?)
        }
        PgType::TimestampTz => {
            Value::TimestampTz(timestamp(i64::from_be_bytes(fixed(data, "timestamptz")?))?)
        }
        PgType::Interval => {
            let raw: [u8; 16] = fixed(data, "interval")?;
            Value::Interval(Interval {
                micros: i64::from_be_bytes(fixed(&raw[0..8], "interval")?),
                days: i32::from_be_bytes(fixed(&raw[8..12], "interval")?),
                months: i32::from_be_bytes(fixed(&raw[12..16], "interval")?),
            })
        }
        PgType::Inet | PgType::Cidr => Value::Text(inet(data)?),
        PgType::MacAddr => Value::Text(mac(&fixed::<6>(data, "macaddr")?)),
        PgType::MacAddr8 => Value::Text(mac(&fixed::<8>(data, "macaddr8")?)),
        PgType::Array(elem) => array(elem, data)?,
    })
}

pub fn date(days: i32) -> Date {
    match days {
        i32::MAX => Date::PosInfinity,
        i32::MIN => Date::NegInfinity,
        d => match d.checked_add(PG_EPOCH_DAYS) {
            Some(d) => Date::Days(d),
            None => Date::PosInfinity,
        },
    }
}

pub fn timestamp(micros: i64) -> Result<Timestamp> {
    Ok(match micros {
        i64::MAX => Timestamp::PosInfinity,
        i64::MIN => Timestamp::NegInfinity,
        m => Timestamp::Micros(
            m.checked_add(PG_EPOCH_MICROS)
                .ok_or("timestamp out of range")?,
        ),
    })
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// inet/cidr: family, bits, is_cidr, address length, address.
fn inet(data: &[u8]) -> Result<String> {
    let [family, bits, is_cidr, len, rest @ ..] = data else {
        return Err("inet is too short".into());
    };
    if usize::from(*len) != rest.len() {
        return Err("inet address length does not match".into());
    }
    let (addr, max) = match family {
        2 => (
            Ipv4Addr::from(fixed::<4>(rest, "inet address")?).to_string(),
            32,
        ),
        3 => (
            Ipv6Addr::from(fixed::<16>(rest, "inet address")?).to_string(),
            128,
        ),
        other => return Err(format!("inet family {other} is unknown")),
    };
    Ok(if *is_cidr != 0 || *bits != max {
        format!("{addr}/{bits}")
    } else {
        addr
    })
}

/// numeric: ndigits, weight, sign, dscale, then base-10000 digits.
pub fn numeric(data: &[u8]) -> Result<Decimal> {
    if data.len() < 8 {
        return Err("numeric is too short".into());
    }
    // Sent as int16 but read back by PostgreSQL as uint16: the largest
    // values (131072 digits before the point) have more than 32767 groups.
    let ndigits = u16::from_be_bytes([data[0], data[1]]);
    let weight = i16::from_be_bytes([data[2], data[3]]);
    let sign = u16::from_be_bytes([data[4], data[5]]);
    let dscale = u16::from_be_bytes([data[6], data[7]]);
    match sign {
        0xC000 => return Ok(Decimal::NaN),
        0xD000 => return Ok(Decimal::PosInfinity),
        0xF000 => return Ok(Decimal::NegInfinity),
        0x0000 | 0x4000 => {}
        other => return Err(format!("numeric sign {other:#x} is unknown")),
    }
    let ndigits = usize::from(ndigits);
    let groups = &data[8..];
    if groups.len() != ndigits * 2 {
        return Err("numeric digit count does not match its length".into());
    }
    let weight = i32::from(weight);
    let dscale = usize::from(dscale);
    let mut heap = Vec::new();
    let group_at = |k: i64| -> u16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| groups.get(k * 2..k * 2 + 2))
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .unwrap_or(0)
    };
    for pair in groups.chunks_exact(2) {
        let group = i16::from_be_bytes([pair[0], pair[1]]);
        if !(0..10_000).contains(&group) {
            return Err(format!("numeric digit group {group} is out of range"));
        }
    }
    // Group k of the sent ones stands for 10000^(weight - k): the integer
    // part has weight + 1 groups, the fraction `dscale` digits.
    let int_groups = usize::try_from(weight + 1).unwrap_or(0);
    let total = int_groups * 4 + dscale;
    // Digits on the stack when they fit: one allocation per value, for
    // the result.
    let mut stack = [0u8; 64];
    let buf: &mut [u8] = if total <= stack.len() {
        &mut stack[..total]
    } else {
        heap.resize(total, 0);
        &mut heap
    };
    let mut at = 0;
    for p in 0..int_groups {
        let group = group_at(p as i64);
        for divisor in [1000u16, 100, 10, 1] {
            buf[at] = b'0' + (group / divisor % 10) as u8;
            at += 1;
        }
    }
    for j in 0..dscale {
        let k = i64::from(weight) + 1 + (j / 4) as i64;
        let divisor = [1000u16, 100, 10, 1][j % 4];
        buf[at] = b'0' + (group_at(k) / divisor % 10) as u8;
        at += 1;
    }
    let start = buf.iter().position(|d| *d != b'0').unwrap_or(buf.len());
    let digits = std::str::from_utf8(&buf[start..]).map_err(|e| e.to_string())?;
    let digits = if digits.is_empty() { "0" } else { digits };
    Ok(Decimal::Finite {
        negative: sign == 0x4000 && digits != "0",
        digits: digits.into(),
        scale: dscale as u32,
    })
}

fn read_i32(data: &mut &[u8], what: &str) -> Result<i32> {
    let (head, rest) = data
        .split_first_chunk::<4>()
        .ok_or_else(|| format!("array ends inside {what}"))?;
    *data = rest;
    Ok(i32::from_be_bytes(*head))
}

/// array: ndim, has-null flag, element OID, (size, lower bound) per
/// dimension, then each element as length + bytes (-1 for NULL).
fn array(elem: &PgType, data: &[u8]) -> Result<Value> {
    let mut rest = data;
    let ndim = read_i32(&mut rest, "dimension count")?;
    let _has_null = read_i32(&mut rest, "null flag")?;
    let _elem_oid = read_i32(&mut rest, "element type")?;
    if !(0..=6).contains(&ndim) {
        return Err(format!("array has {ndim} dimensions"));
    }
    let mut dims = Vec::new();
    let mut total: usize = 1;
    for _ in 0..ndim {
        let size = read_i32(&mut rest, "dimension size")?;
        let lower = read_i32(&mut rest, "lower bound")?;
        let len = u32::try_from(size).map_err(|_| "negative array dimension")?;
        total = usize::try_from(len)
            .ok()
            .and_then(|len| total.checked_mul(len))
            .filter(|t| *t <= MAX_ARRAY_ELEMENTS)
            .ok_or("array is too large")?;
        dims.push(Dim { len, lower });
    }
    if ndim == 0 {
        return Ok(Value::Array(Array::list(Vec::new())));
    }
    // Each element takes at least its 4-byte length word.
    if rest.len() < total.saturating_mul(4) {
        return Err("array is shorter than its dimensions say".into());
    }
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = read_i32(&mut rest, "element length")?;
        if len < 0 {
            flat.push(Value::Null);
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return Err("array ends inside an element".into());
        }
        let (value, tail) = rest.split_at(len);
        flat.push(decode(elem, value)?);
        rest = tail;
    }
    Ok(Value::Array(Array::new(dims, flat)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(ndigits.to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let d = numeric(&num(3, 1, 0, 3, &[1, 2345, 6780])).unwrap();
        assert_eq!(d.to_string(), "12345.678");
        // -0.0001 = [1], weight -1, dscale 4
        assert_eq!(
            numeric(&num(1, -1, 0x4000, 4, &[1])).unwrap().to_string(),
            "-0.0001"
        );
        // 0.00000001 = [1], weight -2 (1e-8), dscale 8
        assert_eq!(
            numeric(&num(1, -2, 0, 8, &[1])).unwrap().to_string(),
            "0.00000001"
        );
        // 1e8 = [1], weight 2, dscale 0
        assert_eq!(
            numeric(&num(1, 2, 0, 0, &[1])).unwrap().to_string(),
            "100000000"
        );
        // 0.00 = no digits, dscale 2
        assert_eq!(numeric(&num(0, 0, 0, 2, &[])).unwrap().to_string(), "0.00");
        assert_eq!(numeric(&num(0, 0, 0xC000, 0, &[])).unwrap(), Decimal::NaN);
        assert_eq!(
            numeric(&num(0, 0, 0xF000, 0, &[])).unwrap(),
            Decimal::NegInfinity
        );
        assert!(numeric(&num(2, 0, 0, 0, &[1])).is_err());
        // The largest numeric: 32768 groups of 9999 before the point, so
        // its digit count does not fit an i16.
        let groups = vec![9999i16; 32768];
        let d = numeric(&num(i16::MIN, 32767, 0, 0, &groups)).unwrap();
        assert_eq!(d.to_string(), "9".repeat(131_072));
    }

    #[test]
    fn temporals() {
        assert_eq!(date(0), Date::Days(PG_EPOCH_DAYS));
        assert_eq!(date(i32::MAX), Date::PosInfinity);
        assert_eq!(timestamp(i64::MIN).unwrap(), Timestamp::NegInfinity);
        assert_eq!(timestamp(0).unwrap(), Timestamp::Micros(PG_EPOCH_MICROS));
    }

    #[test]
    fn inet_forms() {
        assert_eq!(inet(&[2, 32, 0, 4, 10, 0, 0, 1]).unwrap(), "10.0.0.1");
        assert_eq!(inet(&[2, 24, 1, 4, 10, 0, 0, 0]).unwrap(), "10.0.0.0/24");
        assert!(inet(&[2, 32, 0, 5, 10, 0, 0, 1]).is_err());
    }

    #[test]
    fn two_dimensional_array_with_null() {
        let mut data = Vec::new();
        for v in [2i32, 1, 23, 2, 1, 2, 2] {
            data.extend(v.to_be_bytes());
        }
        for v in [Some(1i32), None, Some(3), Some(4)] {
            match v {
                Some(v) => {
                    data.extend(4i32.to_be_bytes());
                    data.extend(v.to_be_bytes());
                }
                None => data.extend((-1i32).to_be_bytes()),
            }
        }
        let v = decode(&PgType::Array(Box::new(PgType::Int4)), &data).unwrap();
        let dims = vec![Dim { len: 2, lower: 1 }, Dim { len: 2, lower: 2 }];
        let elements = vec![
            Value::Int32(1),
            Value::Null,
            Value::Int32(3),
            Value::Int32(4),
        ];
        assert_eq!(v, Value::Array(Array::new(dims, elements).unwrap()));
        assert!(decode(&PgType::Array(Box::new(PgType::Int4)), &data[..30]).is_err());
    }
}
