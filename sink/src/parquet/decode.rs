//! Arrow record batches of an archive file → change events (the inverse of
//! [`super::encode`]). Files come from outside the process: every downcast
//! is checked and a mismatch is an error naming the column, never a panic.

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, FixedSizeBinaryArray,
    ListArray, PrimitiveArray, RecordBatch, StringArray, StructArray,
};
use arrow_schema::DataType;

use headwater_core::value::Array as ValueArray;
use headwater_core::{
    ChangeEvent, Column, Date, Decimal, Header, Interval, Position, SinkRecord, TableId, Time,
    TimeTz, Timestamp, Value, ValueKind,
};

use super::encode::{op_from_code, Image};
use super::schema::{
    col, Layout, DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY,
};
use super::special;

type Res<T> = Result<T, String>;

fn down<'a, T: 'static>(array: &'a dyn Array, what: &str) -> Res<&'a T> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        format!(
            "column `{what}` has type {} where the archive layout expects another",
            array.data_type()
        )
    })
}

fn prim<'a, T: ArrowPrimitiveType>(array: &'a dyn Array, what: &str) -> Res<&'a PrimitiveArray<T>> {
    down::<PrimitiveArray<T>>(array, what)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Res<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("column `{name}` is missing"))
}

fn string_at(array: &StringArray, i: usize) -> Option<&str> {
    array.is_valid(i).then(|| array.value(i))
}

fn micros_to_timestamp(m: i64) -> Timestamp {
    match m {
        TS_POS_INFINITY => Timestamp::PosInfinity,
        TS_NEG_INFINITY => Timestamp::NegInfinity,
        m => Timestamp::Micros(m),
    }
}

/// Decodes every row of an archive batch of `layout`.
pub fn decode(layout: &Layout, topic: &Arc<str>, batch: &RecordBatch) -> Res<Vec<SinkRecord>> {
    let n = batch.num_rows();
    let op = down::<StringArray>(column(batch, col::OP)?, col::OP)?;
    let position = down::<StringArray>(column(batch, col::POSITION)?, col::POSITION)?;
    let commit_ts =
        prim::<TimestampMicrosecondType>(column(batch, col::COMMIT_TS)?, col::COMMIT_TS)?;
    let offset = prim::<Int64Type>(column(batch, col::OFFSET)?, col::OFFSET)?;
    let partition = prim::<Int64Type>(column(batch, col::PARTITION)?, col::PARTITION)?;
    let source = down::<StringArray>(column(batch, col::SOURCE)?, col::SOURCE)?;
    let tx_id = prim::<UInt64Type>(column(batch, col::TX_ID)?, col::TX_ID)?;
    let image = down::<StringArray>(column(batch, col::IMAGE)?, col::IMAGE)?;
    let unchanged = names_lists(column(batch, col::UNCHANGED)?, col::UNCHANGED)?;
    let key = down::<StructArray>(column(batch, col::KEY)?, col::KEY)?;
    let table = down::<StructArray>(column(batch, col::TABLE)?, col::TABLE)?;
    let topic_col = down::<StringArray>(column(batch, col::TOPIC)?, col::TOPIC)?;
    let headers = headers(column(batch, col::HEADERS)?)?;
    let before = down::<StructArray>(column(batch, col::BEFORE)?, col::BEFORE)?;
    let before_unchanged =
        names_lists(column(batch, col::BEFORE_UNCHANGED)?, col::BEFORE_UNCHANGED)?;
    let specials = special::read(batch.column_by_name(col::SPECIAL), n)?;
    let all_columns: Vec<&Column> = layout.table.columns.iter().collect();
    let key_columns: Vec<&Column> = layout
        .key_indexes
        .iter()
        .map(|&i| &layout.table.columns[i])
        .collect();

    let columns = &layout.table.columns;
    let mut table_values = Vec::with_capacity(columns.len());
    let mut before_values = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        table_values.push(decode_values(
            &c.kind,
            column(batch, &c.name)?.as_ref(),
            &c.name,
        )?);
        let child = before
            .columns()
            .get(i)
            .ok_or_else(|| format!("`_before` lacks column `{}`", c.name))?;
        before_values.push(decode_values(&c.kind, child.as_ref(), &c.name)?);
    }
    let mut key_values = Vec::with_capacity(layout.key_indexes.len());
    for (j, &i) in layout.key_indexes.iter().enumerate() {
        let c = &columns[i];
        let child = key
            .columns()
            .get(j)
            .ok_or_else(|| format!("`_key` lacks column `{}`", c.name))?;
        key_values.push(decode_values(&c.kind, child.as_ref(), &c.name)?);
    }
    let table_ns = table
        .column_by_name("namespace")
        .map(|a| down::<StringArray>(a.as_ref(), "_table.namespace"))
        .transpose()?;
    let table_name = table
        .column_by_name("name")
        .map(|a| down::<StringArray>(a.as_ref(), "_table.name"))
        .transpose()?;

    let row_of =
        |values: &[Vec<Value>], i: usize, unchanged: &[String], image| -> Res<Vec<Value>> {
            let mut row: Vec<Value> = values.iter().map(|col| col[i].clone()).collect();
            special::apply(image, &specials[i], &all_columns, &mut row)?;
            for name in unchanged {
                let at = layout
                    .table
                    .column_index(name)
                    .ok_or_else(|| format!("`_unchanged` names `{name}`, which is not a column"))?;
                row[at] = Value::Unchanged;
            }
            Ok(row)
        };

    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let op_code = string_at(op, i).unwrap_or("");
        let op = op_from_code(op_code).ok_or_else(|| format!("unknown `_op` `{op_code}`"))?;
        let pos_text = string_at(position, i).unwrap_or("");
        let position: Position = pos_text.parse().map_err(|e| format!("`_position`: {e}"))?;
        let image_text = string_at(image, i).unwrap_or("");
        let image =
            Image::parse(image_text).ok_or_else(|| format!("unknown `_image` `{image_text}`"))?;
        let row = match image {
            Image::None => None,
            _ => Some(row_of(&table_values, i, &unchanged[i], special::ROW)?),
        };
        let (after, before_row, derived_key) = match (image, row) {
            (Image::After, Some(row)) => {
                let before_row = if before.is_valid(i) {
                    Some(row_of(
                        &before_values,
                        i,
                        &before_unchanged[i],
                        special::BEFORE,
                    )?)
                } else {
                    None
                };
                let k = layout.key_indexes.iter().map(|&j| row[j].clone()).collect();
                (Some(row), before_row, k)
            }
            (Image::Before, Some(row)) => {
                let k = layout.key_indexes.iter().map(|&j| row[j].clone()).collect();
                (None, Some(row), k)
            }
            (Image::Key, Some(row)) => {
                let k = layout.key_indexes.iter().map(|&j| row[j].clone()).collect();
                (None, None, k)
            }
            _ => (None, None, Vec::new()),
        };
        let key = if key.is_valid(i) {
            let mut k: Vec<Value> = key_values.iter().map(|col| col[i].clone()).collect();
            special::apply(special::KEY, &specials[i], &key_columns, &mut k)?;
            k
        } else {
            derived_key
        };
        let event_table = match (table.is_valid(i), table_ns, table_name) {
            (true, Some(ns), Some(name)) => TableId::new(ns.value(i), name.value(i)),
            _ => layout.table.table.clone(),
        };
        let offset_value = offset.value(i);
        let partition_value = partition.value(i);
        let event = ChangeEvent {
            source: string_at(source, i).unwrap_or("").into(),
            table: event_table,
            op,
            key,
            before: before_row,
            after,
            position,
            commit_ts: commit_ts
                .is_valid(i)
                .then(|| micros_to_timestamp(commit_ts.value(i))),
            tx_id: tx_id.is_valid(i).then(|| tx_id.value(i)),
            schema: layout.table.clone(),
            topic: string_at(topic_col, i).map(Arc::from),
            headers: headers[i].clone(),
        };
        out.push(SinkRecord {
            topic: topic.clone(),
            partition: u32::try_from(partition_value)
                .map_err(|_| format!("`_partition` {partition_value} is out of range"))?,
            offset: u64::try_from(offset_value)
                .map_err(|_| format!("`_offset` {offset_value} is negative"))?,
            event,
        });
    }
    Ok(out)
}

fn names_lists(array: &ArrayRef, what: &str) -> Res<Vec<Vec<String>>> {
    let list = down::<ListArray>(array.as_ref(), what)?;
    let values = down::<StringArray>(list.values().as_ref(), what)?;
    let offsets = list.value_offsets();
    (0..list.len())
        .map(|i| {
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            (start..end)
                .map(|j| {
                    string_at(values, j)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("`{what}` holds a NULL name"))
                })
                .collect()
        })
        .collect()
}

fn headers(array: &ArrayRef) -> Res<Vec<Vec<Header>>> {
    let list = down::<ListArray>(array.as_ref(), col::HEADERS)?;
    let items = down::<StructArray>(list.values().as_ref(), col::HEADERS)?;
    let names = items
        .column_by_name("name")
        .ok_or("`_headers` lacks `name`")?;
    let names = down::<StringArray>(names.as_ref(), "_headers.name")?;
    let values = items
        .column_by_name("value")
        .ok_or("`_headers` lacks `value`")?;
    let values = down::<BinaryArray>(values.as_ref(), "_headers.value")?;
    let offsets = list.value_offsets();
    Ok((0..list.len())
        .map(|i| {
            (offsets[i] as usize..offsets[i + 1] as usize)
                .map(|j| Header {
                    name: names.value(j).to_owned(),
                    value: values.value(j).to_vec(),
                })
                .collect()
        })
        .collect())
}

/// One value per slot: `get(i)` for the valid ones, `Null` for the rest.
fn each<A: Array>(array: &A, get: impl Fn(usize) -> Res<Value>) -> Res<Vec<Value>> {
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                Ok(Value::Null)
            } else {
                get(i)
            }
        })
        .collect()
}

/// Decodes one column of `kind` (NULL slots become `Value::Null`).
pub fn decode_values(kind: &ValueKind, array: &dyn Array, what: &str) -> Res<Vec<Value>> {
    match kind {
        ValueKind::Bool => {
            let a = down::<BooleanArray>(array, what)?;
            each(a, |i| Ok(Value::Bool(a.value(i))))
        }
        ValueKind::Int16 => {
            let a = prim::<Int16Type>(array, what)?;
            each(a, |i| Ok(Value::Int16(a.value(i))))
        }
        ValueKind::Int32 => {
            let a = prim::<Int32Type>(array, what)?;
            each(a, |i| Ok(Value::Int32(a.value(i))))
        }
        ValueKind::Int64 => {
            let a = prim::<Int64Type>(array, what)?;
            each(a, |i| Ok(Value::Int64(a.value(i))))
        }
        ValueKind::UInt64 => {
            let a = prim::<UInt64Type>(array, what)?;
            each(a, |i| Ok(Value::UInt64(a.value(i))))
        }
        ValueKind::Float32 => {
            let a = prim::<Float32Type>(array, what)?;
            each(a, |i| Ok(Value::Float32(a.value(i))))
        }
        ValueKind::Float64 => {
            let a = prim::<Float64Type>(array, what)?;
            each(a, |i| Ok(Value::Float64(a.value(i))))
        }
        ValueKind::Decimal { .. } => match array.data_type() {
            DataType::Decimal128(_, s) => {
                let scale = u32::try_from(*s).map_err(|_| format!("`{what}`: negative scale"))?;
                let a = prim::<Decimal128Type>(array, what)?;
                each(a, |i| {
                    Ok(Value::Decimal(Decimal::from_i128(a.value(i), scale)))
                })
            }
            DataType::Decimal256(_, s) => {
                let scale = u32::try_from(*s).map_err(|_| format!("`{what}`: negative scale"))?;
                let a = prim::<Decimal256Type>(array, what)?;
                each(a, |i| {
                    let text = a.value(i).to_string();
                    let (negative, digits) = match text.strip_prefix('-') {
                        Some(d) => (true, d),
                        None => (false, text.as_str()),
                    };
                    Ok(Value::Decimal(Decimal::Finite {
                        negative,
                        digits: digits.into(),
                        scale,
                    }))
                })
            }
            _ => {
                let a = down::<StringArray>(array, what)?;
                each(a, |i| {
                    a.value(i)
                        .parse::<Decimal>()
                        .map(Value::Decimal)
                        .map_err(|e| format!("`{what}`: {e}"))
                })
            }
        },
        ValueKind::Text | ValueKind::Json | ValueKind::Enum => {
            let a = down::<StringArray>(array, what)?;
            each(a, |i| {
                let s = a.value(i).to_owned();
                Ok(match kind {
                    ValueKind::Json => Value::Json(s),
                    ValueKind::Enum => Value::Enum(s),
                    _ => Value::Text(s),
                })
            })
        }
        ValueKind::Bytes => {
            let a = down::<BinaryArray>(array, what)?;
            each(a, |i| Ok(Value::Bytes(a.value(i).to_vec())))
        }
        ValueKind::Uuid => {
            let a = down::<FixedSizeBinaryArray>(array, what)?;
            each(a, |i| {
                <[u8; 16]>::try_from(a.value(i))
                    .map(Value::Uuid)
                    .map_err(|_| format!("`{what}`: a UUID is not 16 bytes"))
            })
        }
        ValueKind::Date => {
            let a = prim::<Date32Type>(array, what)?;
            each(a, |i| {
                Ok(Value::Date(match a.value(i) {
                    DATE_POS_INFINITY => Date::PosInfinity,
                    DATE_NEG_INFINITY => Date::NegInfinity,
                    d => Date::Days(d),
                }))
            })
        }
        ValueKind::Time => {
            let a = prim::<Time64MicrosecondType>(array, what)?;
            each(a, |i| Ok(Value::Time(Time(a.value(i)))))
        }
        ValueKind::Timestamp | ValueKind::TimestampTz => {
            let a = prim::<TimestampMicrosecondType>(array, what)?;
            let tz = matches!(kind, ValueKind::TimestampTz);
            each(a, |i| {
                let t = micros_to_timestamp(a.value(i));
                Ok(if tz {
                    Value::TimestampTz(t)
                } else {
                    Value::Timestamp(t)
                })
            })
        }
        ValueKind::TimeTz => {
            let a = down::<StructArray>(array, what)?;
            let time = a
                .column_by_name("time")
                .ok_or_else(|| format!("`{what}` lacks `time`"))?;
            let time = prim::<Time64MicrosecondType>(time.as_ref(), what)?;
            let off = a
                .column_by_name("offset_seconds")
                .ok_or_else(|| format!("`{what}` lacks `offset_seconds`"))?;
            let off = prim::<Int32Type>(off.as_ref(), what)?;
            each(a, |i| {
                Ok(Value::TimeTz(TimeTz {
                    micros: time.value(i),
                    offset_seconds: off.value(i),
                }))
            })
        }
        ValueKind::Interval => {
            let a = down::<StructArray>(array, what)?;
            let get = |name: &str| {
                a.column_by_name(name)
                    .ok_or_else(|| format!("`{what}` lacks `{name}`"))
            };
            let months = prim::<Int32Type>(get("months")?.as_ref(), what)?;
            let days = prim::<Int32Type>(get("days")?.as_ref(), what)?;
            let micros = prim::<Int64Type>(get("micros")?.as_ref(), what)?;
            each(a, |i| {
                Ok(Value::Interval(Interval {
                    months: months.value(i),
                    days: days.value(i),
                    micros: micros.value(i),
                }))
            })
        }
        ValueKind::Array(inner) => {
            let a = down::<ListArray>(array, what)?;
            let items = decode_values(inner, a.values().as_ref(), what)?;
            let offsets = a.value_offsets();
            each(a, |i| {
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                items
                    .get(start..end)
                    .map(|s| Value::Array(ValueArray::list(s.to_vec())))
                    .ok_or_else(|| format!("`{what}`: list offsets out of range"))
            })
        }
    }
}
