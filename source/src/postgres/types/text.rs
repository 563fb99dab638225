//! Text (`typoutput`) representations to [`Value`]s, for text-mode
//! pgoutput. The session runs with DateStyle ISO, IntervalStyle iso_8601
//! and TimeZone UTC (see `conn::startup::SESSION_SETTINGS`).

use headwater_core::time::{days_from_civil, MICROS_PER_DAY, MICROS_PER_SECOND};
use headwater_core::value::{parse_dims, Array, Dim};
use headwater_core::{Date, Decimal, Interval, Time, TimeTz, Timestamp, Value};

use super::PgType;

type Result<T> = std::result::Result<T, String>;

pub fn decode(ty: &PgType, text: &str) -> Result<Value> {
    let bad = |what: &str| format!("`{}` is not a valid {what}", clip(text));
    Ok(match ty {
        PgType::Bool => match text {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            _ => return Err(bad("bool")),
        },
        PgType::Int2 => Value::Int16(text.parse().map_err(|_| bad("int2"))?),
        PgType::Int4 => Value::Int32(text.parse().map_err(|_| bad("int4"))?),
        PgType::Int8 | PgType::Oid => Value::Int64(text.parse().map_err(|_| bad("int8"))?),
        PgType::Float4 => Value::Float32(float(text).ok_or_else(|| bad("float4"))?),
        PgType::Float8 => Value::Float64(float(text).ok_or_else(|| bad("float8"))?),
        PgType::Numeric => Value::Decimal(text.parse().map_err(|_| bad("numeric"))?),
        PgType::Money => Value::Decimal(money(text).ok_or_else(|| bad("money"))?),
        PgType::Text | PgType::Other | PgType::Inet | PgType::Cidr => Value::Text(text.into()),
        PgType::MacAddr | PgType::MacAddr8 => Value::Text(text.into()),
        PgType::Enum => Value::Enum(text.into()),
        PgType::Bytea => Value::Bytes(bytea(text).ok_or_else(|| bad("bytea"))?),
        PgType::Json | PgType::Jsonb => Value::Json(text.into()),
        PgType::Uuid => Value::Uuid(uuid(text).ok_or_else(|| bad("uuid"))?),
        PgType::Date => Value::Date(date(text).ok_or_else(|| bad("date"))?),
        PgType::Time => Value::Time(Time(time(text).ok_or_else(|| bad("time"))?)),
        PgType::TimeTz => {
            let (t, offset) = split_offset(text);
            Value::TimeTz(TimeTz {
                micros: time(t).ok_or_else(|| bad("timetz"))?,
                offset_seconds: offset.ok_or_else(|| bad("timetz"))?,
            })
        }
        PgType::Timestamp => Value::Timestamp(timestamp(text).ok_or_else(|| bad("timestamp"))?),
        PgType::TimestampTz => {
            Value::TimestampTz(timestamp(text).ok_or_else(|| bad("timestamptz"))?)
        }
        PgType::Interval => Value::Interval(interval(text).ok_or_else(|| bad("interval"))?),
        PgType::Array(elem) => array(elem, text)?,
    })
}

fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

fn float<F: std::str::FromStr>(text: &str) -> Option<F> {
    match text {
        "Infinity" => "inf".parse().ok(),
        "-Infinity" => "-inf".parse().ok(),
        "NaN" => "NaN".parse().ok(),
        _ => text.parse().ok(),
    }
}

/// `$1,234.56`, `-$1.00`: the digits, with scale 2.
fn money(text: &str) -> Option<Decimal> {
    let negative = text.contains('-') || text.starts_with('(');
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut d: Decimal = cleaned.parse().ok()?;
    let is_zero = cleaned.bytes().all(|b| b == b'0' || b == b'.');
    if let Decimal::Finite { negative: n, .. } = &mut d {
        *n = negative && !is_zero;
    }
    Some(d)
}

fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `YYYY-MM-DD`, with ` BC` for years before 1.
fn date_days(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if bc { 1 - year } else { year };
    Some(days_from_civil(year, month, day))
}

fn date(text: &str) -> Option<Date> {
    Some(match text {
        "infinity" => Date::PosInfinity,
        "-infinity" => Date::NegInfinity,
        _ => Date::Days(i32::try_from(date_days(text)?).ok()?),
    })
}

/// `HH:MM:SS[.ffffff]` to microseconds.
fn time(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s = parts.next().unwrap_or("0");
    Some((h * 3600 + m * 60) * MICROS_PER_SECOND + seconds(s)?)
}

/// `SS[.ffffff]` (possibly negative) to microseconds, exactly.
fn seconds(text: &str) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let micros = whole.checked_mul(MICROS_PER_SECOND)?.checked_add(frac)?;
    Some(if negative { -micros } else { micros })
}

/// Splits `12:00:00+05:30` into the time and the offset in seconds east.
fn split_offset(text: &str) -> (&str, Option<i32>) {
    let Some(at) = text.rfind(['+', '-']) else {
        return (text, None);
    };
    let (t, off) = text.split_at(at);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut parts = off[1..].split(':');
    let mut total = 0i32;
    for unit in [3600, 60, 1] {
        match parts.next() {
            Some(p) => match p.parse::<i32>() {
                Ok(v) => total += v * unit,
                Err(_) => return (text, None),
            },
            None => break,
        }
    }
    (t, Some(sign * total))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]][ BC]`; a zone offset, if any,
/// is applied so a timestamptz comes out in UTC.
fn timestamp(text: &str) -> Option<Timestamp> {
    match text {
        "infinity" => return Some(Timestamp::PosInfinity),
        "-infinity" => return Some(Timestamp::NegInfinity),
        _ => {}
    }
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(t) => (t, " BC"),
        None => (text, ""),
    };
    let (day, clock) = text.split_once(' ')?;
    let days = date_days(&format!("{day}{bc}"))?;
    let (clock, offset) = match clock.rfind(['+', '-']) {
        Some(_) => {
            let (c, o) = split_offset(clock);
            (c, o?)
        }
        None => (clock, 0),
    };
    let micros = days
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(time(clock)?)?
        .checked_sub(i64::from(offset) * MICROS_PER_SECOND)?;
    Some(Timestamp::Micros(micros))
}

/// ISO 8601 intervals as PostgreSQL prints them with IntervalStyle
/// iso_8601: `P1Y2M3DT4H5M6.5S`, `PT0S`, `P-1Y-2M`.
fn interval(text: &str) -> Option<Interval> {
    let body = text.strip_prefix('P')?;
    let (date_part, time_part) = body.split_once('T').unwrap_or((body, ""));
    let mut out = Interval {
        months: 0,
        days: 0,
        micros: 0,
    };
    let mut number = String::new();
    for c in date_part.chars() {
        if c.is_ascii_digit() || c == '-' {
            number.push(c);
            continue;
        }
        let n: i32 = number.parse().ok()?;
        number.clear();
        match c {
            'Y' => out.months = out.months.checked_add(n.checked_mul(12)?)?,
            'M' => out.months = out.months.checked_add(n)?,
            'W' => out.days = out.days.checked_add(n.checked_mul(7)?)?,
            'D' => out.days = out.days.checked_add(n)?,
            _ => return None,
        }
    }
    for c in time_part.chars() {
        if c.is_ascii_digit() || c == '-' || c == '.' {
            number.push(c);
            continue;
        }
        let micros = match c {
            'H' => number
                .parse::<i64>()
                .ok()?
                .checked_mul(3600 * MICROS_PER_SECOND)?,
            'M' => number
                .parse::<i64>()
                .ok()?
                .checked_mul(60 * MICROS_PER_SECOND)?,
            'S' => seconds(&number)?,
            _ => return None,
        };
        number.clear();
        out.micros = out.micros.checked_add(micros)?;
    }
    number.is_empty().then_some(out)
}

/// A text array (`{1,2,NULL}`, `{{a,"b c"},{"\"",NULL}}`,
/// `[0:1]={1,2}`) into an [`Array`]; elements decoded with `elem`.
fn array(elem: &PgType, text: &str) -> Result<Value> {
    let bad = |why: &str| format!("array `{}`: {why}", clip(text));
    // A leading `[0:1]={…}` gives explicit bounds; the elements follow.
    let (bounds, text) = match text.find("={") {
        Some(at) if text.starts_with('[') => (
            Some(parse_dims(&text[..at]).map_err(|e| bad(&e))?),
            &text[at + 1..],
        ),
        _ => (None, text),
    };
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut dims: Vec<usize> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    let mut flat = Vec::new();
    let mut depth = 0usize;
    while pos < bytes.len() {
        match bytes[pos] {
            b'{' => {
                depth += 1;
                if depth > 6 {
                    return Err(bad("more than 6 dimensions"));
                }
                if counts.len() < depth {
                    counts.push(0);
                }
                counts[depth - 1] = 0;
                pos += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Err(bad("unbalanced braces"));
                }
                let n = counts[depth - 1];
                if dims.len() < depth {
                    dims.resize(depth, 0);
                }
                dims[depth - 1] = n;
                depth -= 1;
                if depth > 0 {
                    counts[depth - 1] += 1;
                }
                pos += 1;
            }
            b',' | b' ' => pos += 1,
            b'"' => {
                let mut value = Vec::new();
                pos += 1;
                loop {
                    match bytes.get(pos) {
                        None => return Err(bad("unterminated quote")),
                        Some(b'"') => {
                            pos += 1;
                            break;
                        }
                        Some(b'\\') => {
                            value.push(*bytes.get(pos + 1).ok_or_else(|| bad("dangling escape"))?);
                            pos += 2;
                        }
                        Some(b) => {
                            value.push(*b);
                            pos += 1;
                        }
                    }
                }
                let value = String::from_utf8(value).map_err(|_| bad("not UTF-8"))?;
                flat.push(decode(elem, &value)?);
                *counts
                    .last_mut()
                    .ok_or_else(|| bad("element outside braces"))? += 1;
            }
            _ => {
                let start = pos;
                while pos < bytes.len() && !matches!(bytes[pos], b',' | b'}') {
                    pos += 1;
                }
                let raw = text[start..pos].trim_end();
                flat.push(if raw == "NULL" {
                    Value::Null
                } else {
                    decode(elem, raw)?
                });
                if depth == 0 {
                    return Err(bad("element outside braces"));
                }
                counts[depth - 1] += 1;
            }
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced braces"));
    }
    if flat.is_empty() {
        return Ok(Value::Array(Array::list(Vec::new())));
    }
    let mut dims: Vec<Dim> = dims
        .iter()
        .map(|&n| {
            u32::try_from(n)
                .map(|len| Dim { len, lower: 1 })
                .map_err(|_| bad("a dimension is too long"))
        })
        .collect::<Result<_>>()?;
    if let Some(bounds) = bounds {
        if bounds.iter().map(|b| b.len).ne(dims.iter().map(|d| d.len)) {
            return Err(bad("the bounds do not match the elements"));
        }
        dims = bounds;
    }
    Array::new(dims, flat)
        .map(Value::Array)
        .map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(
            decode(&PgType::Float8, "-Infinity").unwrap(),
            Value::Float64(f64::NEG_INFINITY)
        );
        assert_eq!(
            decode(&PgType::Bytea, "\\x00ff").unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            decode(&PgType::Money, "-$1,234.50").unwrap(),
            Value::Decimal("-1234.50".parse().unwrap())
        );
    }

    #[test]
    fn temporals() {
        assert_eq!(date("1970-01-02"), Some(Date::Days(1)));
        assert_eq!(date("0001-12-31 BC"), Some(Date::Days(-719_163)));
        assert_eq!(
            timestamp("1970-01-01 00:00:01.5+01"),
            Some(Timestamp::Micros(1_500_000 - 3_600_000_000))
        );
        assert_eq!(timestamp("-infinity"), Some(Timestamp::NegInfinity));
        assert_eq!(
            decode(&PgType::TimeTz, "01:00:00-05:30").unwrap(),
            Value::TimeTz(TimeTz {
                micros: 3_600_000_000,
                offset_seconds: -19_800
            })
        );
        assert_eq!(
            interval("P1Y2M3DT4H5M6.5S"),
            Some(Interval {
                months: 14,
                days: 3,
                micros: ((4 * 60 + 5) * 60 + 6) * 1_000_000 + 500_000
            })
        );
        assert_eq!(
            interval("P-1Y-2MT-0.000001S"),
            Some(Interval {
                months: -14,
                days: 0,
                micros: -1
            })
        );
        assert_eq!(seconds("-0.5"), Some(-500_000));
    }

    #[test]
    fn arrays() {
        let v = decode(
            &PgType::Array(Box::new(PgType::Text)),
            r#"{{a,"b c"},{"\"",NULL}}"#,
        )
        .unwrap();
        let two = |lower| vec![Dim { len: 2, lower }, Dim { len: 2, lower: 1 }];
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            v,
            Value::Array(
                Array::new(
                    two(1),
                    vec![text("a"), text("b c"), text("\""), Value::Null]
                )
                .unwrap()
            )
        );
        let ints = PgType::Array(Box::new(PgType::Int4));
        assert_eq!(
            decode(&ints, "{}").unwrap(),
            Value::Array(Array::list(vec![]))
        );
        let shifted = decode(&ints, "[-1:0][1:2]={{1,2},{3,NULL}}").unwrap();
        let elements = vec![
            Value::Int32(1),
            Value::Int32(2),
            Value::Int32(3),
            Value::Null,
        ];
        assert_eq!(
            shifted,
            Value::Array(Array::new(two(-1), elements).unwrap())
        );
        assert!(decode(&ints, "[0:2]={1,2}").is_err());
        assert!(decode(&ints, "{{1,2},{3}}").is_err());
        assert!(decode(&PgType::Array(Box::new(PgType::Int4)), "{1,2").is_err());
    }
}
