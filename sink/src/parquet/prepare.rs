//! Which records an archive file can hold: [`prepare`] checks one record
//! against its layout and says why it cannot be archived (the record then
//! goes to the dead-letter topic); what passes is a [`Prepared`] record,
//! which [`super::encode::encode`] cannot fail on.

use arrow_buffer::i256;

use headwater_core::{Date, Decimal, Rejected, SinkRecord, Timestamp, Value, ValueKind};

use super::schema::{
    Layout, DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY,
};

/// What the table columns of a row hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    After,
    Before,
    Key,
    None,
}

impl Image {
    pub fn as_str(self) -> &'static str {
        match self {
            Image::After => "after",
            Image::Before => "before",
            Image::Key => "key",
            Image::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "after" => Image::After,
            "before" => Image::Before,
            "key" => Image::Key,
            "none" => Image::None,
            _ => return None,
        })
    }
}

/// A record that passed [`prepare`], ready for [`encode`].
#[derive(Clone, Debug)]
pub struct Prepared {
    pub record: SinkRecord,
    pub image: Image,
    /// The key is not the key columns of the image: write `_key`.
    pub explicit_key: bool,
    /// A rough size of the row in memory, for the writer's bounds.
    pub approx_bytes: usize,
}

/// Checks that `record` fits `layout`; an error gives the record back with
/// the reason sent to the dead-letter topic.
pub fn prepare(layout: &Layout, record: SinkRecord) -> Result<Prepared, Box<Rejected>> {
    match check(layout, &record) {
        Ok((image, explicit_key)) => {
            let approx_bytes = approx_size(&record);
            Ok(Prepared {
                record,
                image,
                explicit_key,
                approx_bytes,
            })
        }
        Err(reason) => Err(Box::new(Rejected { record, reason })),
    }
}

fn check(layout: &Layout, record: &SinkRecord) -> Result<(Image, bool), String> {
    let event = &record.event;
    let columns = &layout.table.columns;
    if i64::try_from(record.offset).is_err() {
        return Err(format!("offset {} is beyond i64", record.offset));
    }
    if let Some(Timestamp::Micros(m)) = event.commit_ts {
        check_micros(m).map_err(|e| format!("commit_ts: {e}"))?;
    }
    for (what, row) in [("after", &event.after), ("before", &event.before)] {
        if let Some(row) = row {
            if row.len() != columns.len() {
                return Err(format!(
                    "the {what} row has {} values but schema version {} of {} has {} columns",
                    row.len(),
                    layout.table.version,
                    layout.table.table,
                    columns.len()
                ));
            }
            for (c, v) in columns.iter().zip(row) {
                check_value(&c.kind, v, true, layout.max_decimal_precision)
                    .map_err(|e| format!("column `{}` ({what}): {e}", c.name))?;
            }
        }
    }
    let image = match (&event.after, &event.before) {
        (Some(_), _) => Image::After,
        (None, Some(_)) => Image::Before,
        (None, None) if !event.key.is_empty() => Image::Key,
        (None, None) => Image::None,
    };
    let derived: Option<Vec<&Value>> = match (image, &event.after, &event.before) {
        (Image::After, Some(row), _) | (Image::Before, None, Some(row)) => {
            Some(layout.key_indexes.iter().map(|&i| &row[i]).collect())
        }
        _ => None,
    };
    let explicit_key = match derived {
        Some(d) => d.len() != event.key.len() || d.iter().zip(&event.key).any(|(a, b)| *a != b),
        None => false,
    };
    if image == Image::Key || explicit_key {
        if event.key.len() != layout.key_indexes.len() {
            return Err(format!(
                "the event has {} key values but schema version {} of {} has {} key columns",
                event.key.len(),
                layout.table.version,
                layout.table.table,
                layout.key_indexes.len()
            ));
        }
        for (&i, v) in layout.key_indexes.iter().zip(&event.key) {
            let c = &columns[i];
            check_value(&c.kind, v, false, layout.max_decimal_precision)
                .map_err(|e| format!("key column `{}`: {e}", c.name))?;
        }
    }
    Ok((image, explicit_key))
}

fn check_micros(m: i64) -> Result<(), String> {
    if m == TS_POS_INFINITY || m <= TS_NEG_INFINITY {
        return Err(format!(
            "timestamp {m}µs is the value the archive uses for ±infinity"
        ));
    }
    Ok(())
}

/// Checks one value against its column's kind.
fn check_value(
    kind: &ValueKind,
    value: &Value,
    unchanged_ok: bool,
    max_precision: u32,
) -> Result<(), String> {
    let ok = match (kind, value) {
        (_, Value::Null) => true,
        (_, Value::Unchanged) => {
            return if unchanged_ok {
                Ok(())
            } else {
                Err("an unchanged-TOAST marker where the archive cannot record one".into())
            }
        }
        (ValueKind::Bool, Value::Bool(_))
        | (ValueKind::Int16, Value::Int16(_))
        | (ValueKind::Int32, Value::Int32(_))
        | (ValueKind::Int64, Value::Int64(_))
        | (ValueKind::UInt64, Value::UInt64(_))
        | (ValueKind::Float32, Value::Float32(_))
        | (ValueKind::Float64, Value::Float64(_))
        | (ValueKind::Text, Value::Text(_))
        | (ValueKind::Bytes, Value::Bytes(_))
        | (ValueKind::Json, Value::Json(_))
        | (ValueKind::Uuid, Value::Uuid(_))
        | (ValueKind::Time, Value::Time(_))
        | (ValueKind::TimeTz, Value::TimeTz(_))
        | (ValueKind::Interval, Value::Interval(_))
        | (ValueKind::Enum, Value::Enum(_)) => true,
        (ValueKind::Date, Value::Date(d)) => {
            if let Date::Days(days) = d {
                if *days == DATE_POS_INFINITY || *days <= DATE_NEG_INFINITY {
                    return Err(format!(
                        "date {days} days is the value the archive uses for ±infinity"
                    ));
                }
            }
            true
        }
        (ValueKind::Timestamp, Value::Timestamp(t))
        | (ValueKind::TimestampTz, Value::TimestampTz(t)) => {
            if let Timestamp::Micros(m) = t {
                check_micros(*m)?;
            }
            true
        }
        // A decimal the column cannot hold is NULL with its text in
        // `_special`; an array is its elements plus its dimensions there.
        (ValueKind::Decimal { .. }, Value::Decimal(_)) => true,
        (ValueKind::Array(inner), Value::Array(items)) => {
            for item in items.elements() {
                // `_special` describes a column's own value, not its elements'.
                if super::special::stand_in(inner, item, max_precision).is_some() {
                    return Err(format!(
                        "array element {item} needs a stand-in, which the archive keeps only for a whole column"
                    ));
                }
                check_value(inner, item, false, max_precision)
                    .map_err(|e| format!("array element: {e}"))?;
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {} value in a column declared {kind:?}",
            value.kind_name()
        ))
    }
}

/// The unscaled integer of `d` at scale `s`, if it fits `p` digits exactly.
pub fn decimal_unscaled(d: &Decimal, p: u8, s: i8) -> Result<i256, String> {
    let Decimal::Finite {
        negative,
        digits,
        scale,
    } = d
    else {
        return Err(format!(
            "{d} cannot be stored in a DECIMAL({p},{s}) column (Parquet decimals have no NaN or infinity)"
        ));
    };
    let target = u32::try_from(s).map_err(|_| "negative scale".to_string())?;
    let mut text = String::with_capacity(digits.len() + 40);
    if *negative {
        text.push('-');
    }
    if *scale > target {
        let cut = usize::try_from(*scale - target).map_err(|_| "scale too large".to_string())?;
        let keep = digits.len().saturating_sub(cut);
        if digits[keep..].bytes().any(|b| b != b'0') {
            return Err(format!(
                "{d} has more fraction digits than DECIMAL({p},{s}) holds; storing it would round it"
            ));
        }
        text.push_str(if keep == 0 { "0" } else { &digits[..keep] });
    } else {
        text.push_str(digits);
        let pad = usize::try_from(target - *scale).map_err(|_| "scale too large".to_string())?;
        text.extend(std::iter::repeat_n('0', pad));
    }
    let significant = text.trim_start_matches('-').trim_start_matches('0').len();
    if significant > usize::from(p) {
        return Err(format!("{d} has more digits than DECIMAL({p},{s}) holds"));
    }
    i256::from_string(&text).ok_or_else(|| format!("{d} is not a decimal Arrow can hold"))
}

fn approx_size(record: &SinkRecord) -> usize {
    fn value(v: &Value) -> usize {
        16 + match v {
            Value::Text(s) | Value::Json(s) | Value::Enum(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Decimal(Decimal::Finite { digits, .. }) => digits.len(),
            Value::Array(a) => a.elements().iter().map(value).sum(),
            _ => 0,
        }
    }
    let e = &record.event;
    let rows = [&e.after, &e.before];
    64 + e.key.iter().map(value).sum::<usize>()
        + rows
            .iter()
            .filter_map(|r| r.as_ref())
            .flat_map(|r| r.iter())
            .map(value)
            .sum::<usize>()
        + e.headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_rescale_exactly_or_refuse() {
        let d = |t: &str| t.parse::<Decimal>().unwrap();
        assert_eq!(
            decimal_unscaled(&d("1.5"), 10, 2).unwrap(),
            i256::from_i128(150)
        );
        assert_eq!(
            decimal_unscaled(&d("-1.500"), 10, 2).unwrap(),
            i256::from_i128(-150)
        );
        assert_eq!(
            decimal_unscaled(&d("0.000"), 10, 2).unwrap(),
            i256::from_i128(0)
        );
        assert!(decimal_unscaled(&d("1.505"), 10, 2).is_err());
        assert!(decimal_unscaled(&d("123456789.00"), 10, 2).is_err());
        assert!(decimal_unscaled(&Decimal::NaN, 10, 2).is_err());
        assert!(decimal_unscaled(&d("12345678.99"), 10, 2).is_ok());
    }
}
