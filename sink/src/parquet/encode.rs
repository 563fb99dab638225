//! Change events → Arrow record batches, in the layout of [`super::schema`].
//!
//! [`prepare`] (in [`super::prepare`]) checks one record against its
//! layout; [`encode`] turns prepared records into a `RecordBatch` and
//! cannot fail on data that passed [`prepare`].

use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder};
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, ListArray, PrimitiveArray,
    RecordBatch, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType, Fields};

use headwater_core::{Date, Op, Position, Timestamp, Value, ValueKind};

pub use super::prepare::{decimal_unscaled, prepare, Image, Prepared};
use super::schema::{
    self, Layout, DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY,
};

fn invalid(what: impl Into<String>) -> ArrowError {
    ArrowError::InvalidArgumentError(what.into())
}

/// Builds one record batch from prepared records of `layout`.
pub fn encode(layout: &Layout, rows: &[Prepared]) -> Result<RecordBatch, ArrowError> {
    let n_cols = layout.table.columns.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(layout.arrow.fields().len());
    let events = || rows.iter().map(|r| &r.record.event);

    arrays.push(Arc::new(StringArray::from_iter_values(
        events().map(|e| e.op.code()),
    )));
    arrays.push(Arc::new(positions(rows, |p, out| write!(out, "{p}"))?));
    arrays.push(Arc::new(positions(rows, Position::write_sort_key)?));
    arrays.push(Arc::new(
        PrimitiveArray::<TimestampMicrosecondType>::from_iter(
            events().map(|e| e.commit_ts.map(timestamp_micros)),
        )
        .with_timezone("UTC"),
    ));
    arrays.push(Arc::new(PrimitiveArray::<Int64Type>::from_iter_values(
        rows.iter().map(|r| r.record.offset as i64),
    )));
    arrays.push(Arc::new(PrimitiveArray::<Int64Type>::from_iter_values(
        rows.iter().map(|r| i64::from(r.record.partition)),
    )));
    arrays.push(Arc::new(StringArray::from_iter_values(
        events().map(|e| &*e.source),
    )));
    arrays.push(Arc::new(PrimitiveArray::<UInt64Type>::from_iter(
        events().map(|e| e.tx_id),
    )));
    arrays.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.image.as_str()),
    )));

    // The image each row's table columns hold.
    let images: Vec<Option<Vec<&Value>>> = rows.iter().map(|r| table_image(layout, r)).collect();
    arrays.push(unchanged_list(
        images
            .iter()
            .map(|img| unchanged_names(layout, img.as_deref())),
    ));

    // _key: only where the key is not derived from the image.
    let key_rows: Vec<Option<&[Value]>> = rows
        .iter()
        .map(|r| r.explicit_key.then_some(r.record.event.key.as_slice()))
        .collect();
    arrays.push(struct_of_rows(
        &layout.key_fields,
        &layout
            .key_indexes
            .iter()
            .map(|&i| &layout.table.columns[i].kind)
            .collect::<Vec<_>>(),
        &key_rows,
    )?);

    arrays.push(table_id_array(rows, layout)?);
    arrays.push(Arc::new(StringArray::from_iter(
        events().map(|e| e.topic.as_deref()),
    )));
    arrays.push(headers_array(rows)?);

    for i in 0..n_cols {
        let column = &layout.table.columns[i];
        let field = layout.arrow.field(layout.first_table_column() + i);
        let values: Vec<Option<&Value>> = images
            .iter()
            .map(|img| img.as_ref().map(|row| row[i]))
            .collect();
        arrays.push(encode_values(&column.kind, field.data_type(), &values)?);
    }

    // _before: an update's before-image.
    let before_rows: Vec<Option<&[Value]>> = rows
        .iter()
        .map(|r| match (r.image, &r.record.event.before) {
            (Image::After, Some(before)) => Some(before.as_slice()),
            _ => None,
        })
        .collect();
    let kinds: Vec<&ValueKind> = layout.table.columns.iter().map(|c| &c.kind).collect();
    arrays.push(struct_of_rows(&layout.before_fields, &kinds, &before_rows)?);
    arrays.push(unchanged_list(before_rows.iter().map(|row| {
        let refs: Option<Vec<&Value>> = row.map(|r| r.iter().collect());
        unchanged_names(layout, refs.as_deref())
    })));
    arrays.push(special_column(layout, &images, &before_rows, &key_rows)?);

    RecordBatch::try_new(layout.arrow.clone(), arrays)
}

/// `_special`: the stand-ins of every image of each row.
fn special_column(
    layout: &Layout,
    images: &[Option<Vec<&Value>>],
    before_rows: &[Option<&[Value]>],
    key_rows: &[Option<&[Value]>],
) -> Result<ArrayRef, ArrowError> {
    use super::special::{self, entries};
    let columns = &layout.table.columns;
    let max = layout.max_decimal_precision;
    let per_row: Vec<Vec<special::Entry>> = images
        .iter()
        .zip(before_rows.iter().zip(key_rows))
        .map(|(image, (before, key))| {
            let mut out = Vec::new();
            if let Some(row) = image {
                entries(
                    special::ROW,
                    columns.iter().zip(row.iter().copied()),
                    max,
                    &mut out,
                );
            }
            if let Some(row) = before {
                entries(
                    special::BEFORE,
                    columns.iter().zip(row.iter()),
                    max,
                    &mut out,
                );
            }
            if let Some(key) = key {
                let key_columns = layout.key_indexes.iter().map(|&i| &columns[i]);
                entries(special::KEY, key_columns.zip(key.iter()), max, &mut out);
            }
            out
        })
        .collect();
    special::build(&per_row)
}

/// The values the table columns hold for one row (`None`: all NULL).
fn table_image<'a>(layout: &Layout, row: &'a Prepared) -> Option<Vec<&'a Value>> {
    let e = &row.record.event;
    match row.image {
        Image::After => e.after.as_ref().map(|r| r.iter().collect()),
        Image::Before => e.before.as_ref().map(|r| r.iter().collect()),
        Image::Key => {
            static NULL: Value = Value::Null;
            let mut out = vec![&NULL; layout.table.columns.len()];
            for (&i, v) in layout.key_indexes.iter().zip(&e.key) {
                out[i] = v;
            }
            Some(out)
        }
        Image::None => None,
    }
}

fn unchanged_names<'a>(layout: &'a Layout, row: Option<&[&Value]>) -> Vec<&'a str> {
    match row {
        None => Vec::new(),
        Some(row) => layout
            .table
            .columns
            .iter()
            .zip(row)
            .filter(|(_, v)| matches!(v, Value::Unchanged))
            .map(|(c, _)| c.name.as_str())
            .collect(),
    }
}

fn unchanged_list<'a>(rows: impl Iterator<Item = Vec<&'a str>>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
        arrow_schema::Field::new("item", DataType::Utf8, false),
    ));
    for names in rows {
        for name in names {
            builder.values().append_value(name);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

fn table_id_array(rows: &[Prepared], layout: &Layout) -> Result<ArrayRef, ArrowError> {
    let differs: Vec<bool> = rows
        .iter()
        .map(|r| r.record.event.table != layout.table.table)
        .collect();
    let ns = StringArray::from_iter_values(rows.iter().zip(&differs).map(|(r, d)| {
        if *d {
            &*r.record.event.table.namespace
        } else {
            ""
        }
    }));
    let name = StringArray::from_iter_values(rows.iter().zip(&differs).map(|(r, d)| {
        if *d {
            &*r.record.event.table.name
        } else {
            ""
        }
    }));
    let nulls = NullBuffer::from(differs);
    Ok(Arc::new(StructArray::try_new(
        schema::table_id_fields(),
        vec![Arc::new(ns), Arc::new(name)],
        Some(nulls),
    )?))
}

fn headers_array(rows: &[Prepared]) -> Result<ArrayRef, ArrowError> {
    let mut builder = ListBuilder::new(StructBuilder::new(
        schema::header_fields(),
        vec![
            Box::new(StringBuilder::new()),
            Box::new(BinaryBuilder::new()),
        ],
    ))
    .with_field(Arc::new(arrow_schema::Field::new(
        "item",
        DataType::Struct(schema::header_fields()),
        false,
    )));
    for r in rows {
        for h in &r.record.event.headers {
            let s = builder.values();
            s.field_builder::<StringBuilder>(0)
                .ok_or_else(|| invalid("header name builder"))?
                .append_value(&h.name);
            s.field_builder::<BinaryBuilder>(1)
                .ok_or_else(|| invalid("header value builder"))?
                .append_value(&h.value);
            s.append(true);
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

/// A struct column with one child per `(field, kind)`, from whole rows
/// (`None`: the struct is NULL in that row).
fn struct_of_rows(
    fields: &Fields,
    kinds: &[&ValueKind],
    rows: &[Option<&[Value]>],
) -> Result<ArrayRef, ArrowError> {
    let mut children = Vec::with_capacity(fields.len());
    for (i, (field, kind)) in fields.iter().zip(kinds).enumerate() {
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.map(|r| &r[i])).collect();
        children.push(encode_values(kind, field.data_type(), &values)?);
    }
    let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
    if fields.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(
            rows.len(),
            Some(nulls),
        )));
    }
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        children,
        Some(nulls),
    )?))
}

pub fn timestamp_micros(t: Timestamp) -> i64 {
    match t {
        Timestamp::Micros(m) => m,
        Timestamp::PosInfinity => TS_POS_INFINITY,
        Timestamp::NegInfinity => TS_NEG_INFINITY,
    }
}

fn prim<T, F>(values: &[Option<&Value>], get: F) -> Result<PrimitiveArray<T>, ArrowError>
where
    T: arrow_array::ArrowPrimitiveType,
    F: Fn(&Value) -> Option<T::Native>,
{
    values
        .iter()
        .map(|v| match v {
            None | Some(Value::Null | Value::Unchanged) => Ok(None),
            Some(v) => get(v)
                .map(Some)
                .ok_or_else(|| invalid(format!("unexpected {} value", v.kind_name()))),
        })
        .collect()
}

fn text_of(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) | Value::Json(s) | Value::Enum(s) => Some(s),
        _ => None,
    }
}

fn is_present(v: &Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null | Value::Unchanged))
}

/// Encodes one column's values (`None`, `Null`, `Unchanged`: NULL).
pub fn encode_values(
    kind: &ValueKind,
    data_type: &DataType,
    values: &[Option<&Value>],
) -> Result<ArrayRef, ArrowError> {
    Ok(match kind {
        ValueKind::Bool => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Some(Value::Bool(b)) => Ok(Some(*b)),
                    v if !is_present(v) => Ok(None),
                    _ => Err(invalid("unexpected value in a bool column")),
                })
                .collect::<Result<BooleanArray, _>>()?,
        ),
        ValueKind::Int16 => Arc::new(prim::<Int16Type, _>(values, |v| match v {
            Value::Int16(i) => Some(*i),
            _ => None,
        })?),
        ValueKind::Int32 => Arc::new(prim::<Int32Type, _>(values, |v| match v {
            Value::Int32(i) => Some(*i),
            _ => None,
        })?),
        ValueKind::Int64 => Arc::new(prim::<Int64Type, _>(values, |v| match v {
            Value::Int64(i) => Some(*i),
            _ => None,
        })?),
        ValueKind::UInt64 => Arc::new(prim::<UInt64Type, _>(values, |v| match v {
            Value::UInt64(i) => Some(*i),
            _ => None,
        })?),
        ValueKind::Float32 => Arc::new(prim::<Float32Type, _>(values, |v| match v {
            Value::Float32(f) => Some(*f),
            _ => None,
        })?),
        ValueKind::Float64 => Arc::new(prim::<Float64Type, _>(values, |v| match v {
            Value::Float64(f) => Some(*f),
            _ => None,
        })?),
        ValueKind::Decimal { .. } => match data_type {
            // A decimal that does not fit is NULL (its text is in `_special`).
            DataType::Decimal128(p, s) => {
                let array: PrimitiveArray<Decimal128Type> = values
                    .iter()
                    .map(|v| match v {
                        Some(Value::Decimal(d)) => decimal_unscaled(d, *p, *s).ok()?.to_i128(),
                        _ => None,
                    })
                    .collect();
                Arc::new(array.with_precision_and_scale(*p, *s)?)
            }
            DataType::Decimal256(p, s) => {
                let array: PrimitiveArray<Decimal256Type> = values
                    .iter()
                    .map(|v| match v {
                        Some(Value::Decimal(d)) => decimal_unscaled(d, *p, *s).ok(),
                        _ => None,
                    })
                    .collect();
                Arc::new(array.with_precision_and_scale(*p, *s)?)
            }
            _ => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                Some(Value::Decimal(d)) => Some(d.to_string()),
                _ => None,
            }))),
        },
        ValueKind::Text | ValueKind::Json | ValueKind::Enum => Arc::new(StringArray::from_iter(
            values.iter().map(|v| v.and_then(text_of)),
        )),
        ValueKind::Bytes => Arc::new(BinaryArray::from_iter(values.iter().map(|v| match v {
            Some(Value::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        }))),
        ValueKind::Uuid => {
            let zero = [0u8; 16];
            let nulls = NullBuffer::from(
                values
                    .iter()
                    .map(|v| matches!(v, Some(Value::Uuid(_))))
                    .collect::<Vec<_>>(),
            );
            let data: Vec<&[u8]> = values
                .iter()
                .map(|v| match v {
                    Some(Value::Uuid(u)) => u.as_slice(),
                    _ => zero.as_slice(),
                })
                .collect();
            let array = FixedSizeBinaryArray::try_from_iter(data.into_iter())?;
            let (size, buffer, _) = array.into_parts();
            Arc::new(FixedSizeBinaryArray::try_new(size, buffer, Some(nulls))?)
        }
        ValueKind::Date => Arc::new(prim::<Date32Type, _>(values, |v| match v {
            Value::Date(Date::Days(d)) => Some(*d),
            Value::Date(Date::PosInfinity) => Some(DATE_POS_INFINITY),
            Value::Date(Date::NegInfinity) => Some(DATE_NEG_INFINITY),
            _ => None,
        })?),
        ValueKind::Time => Arc::new(prim::<Time64MicrosecondType, _>(values, |v| match v {
            Value::Time(t) => Some(t.0),
            _ => None,
        })?),
        ValueKind::Timestamp | ValueKind::TimestampTz => {
            let array = prim::<TimestampMicrosecondType, _>(values, |v| match v {
                Value::Timestamp(t) | Value::TimestampTz(t) => Some(timestamp_micros(*t)),
                _ => None,
            })?;
            match kind {
                ValueKind::TimestampTz => Arc::new(array.with_timezone("UTC")),
                _ => Arc::new(array),
            }
        }
        ValueKind::TimeTz => {
            let nulls = NullBuffer::from(values.iter().map(is_present).collect::<Vec<_>>());
            let (micros, offsets): (Vec<i64>, Vec<i32>) = values
                .iter()
                .map(|v| match v {
                    Some(Value::TimeTz(t)) => (t.micros, t.offset_seconds),
                    _ => (0, 0),
                })
                .unzip();
            Arc::new(StructArray::try_new(
                schema::timetz_fields(),
                vec![
                    Arc::new(PrimitiveArray::<Time64MicrosecondType>::from(micros)),
                    Arc::new(PrimitiveArray::<Int32Type>::from(offsets)),
                ],
                Some(nulls),
            )?)
        }
        ValueKind::Interval => {
            let nulls = NullBuffer::from(values.iter().map(is_present).collect::<Vec<_>>());
            let mut months = Vec::with_capacity(values.len());
            let mut days = Vec::with_capacity(values.len());
            let mut micros = Vec::with_capacity(values.len());
            for v in values {
                let (m, d, us) = match v {
                    Some(Value::Interval(i)) => (i.months, i.days, i.micros),
                    _ => (0, 0, 0),
                };
                months.push(m);
                days.push(d);
                micros.push(us);
            }
            Arc::new(StructArray::try_new(
                schema::interval_fields(),
                vec![
                    Arc::new(PrimitiveArray::<Int32Type>::from(months)),
                    Arc::new(PrimitiveArray::<Int32Type>::from(days)),
                    Arc::new(PrimitiveArray::<Int64Type>::from(micros)),
                ],
                Some(nulls),
            )?)
        }
        ValueKind::Array(inner) => {
            let DataType::List(item) = data_type else {
                return Err(invalid("array column without a list type"));
            };
            let mut lengths = Vec::with_capacity(values.len());
            let mut children: Vec<Option<&Value>> = Vec::new();
            for v in values {
                match v {
                    Some(Value::Array(a)) => {
                        lengths.push(a.elements().len());
                        children.extend(a.elements().iter().map(Some));
                    }
                    _ => lengths.push(0),
                }
            }
            let child = encode_values(inner, item.data_type(), &children)?;
            let nulls = NullBuffer::from(
                values
                    .iter()
                    .map(|v| matches!(v, Some(Value::Array(_))))
                    .collect::<Vec<_>>(),
            );
            Arc::new(ListArray::try_new(
                item.clone(),
                OffsetBuffer::from_lengths(lengths),
                child,
                Some(nulls),
            )?)
        }
    })
}

/// The position as text that sorts in source order (see the schema table).
pub fn position_order(position: &Position) -> String {
    let mut out = String::with_capacity(40);
    // Writing to a String cannot fail.
    let _ = position.write_sort_key(&mut out);
    out
}

/// One text per row, written straight into the array (positions are
/// formatted for every archived row).
fn positions(
    rows: &[Prepared],
    write: impl Fn(&Position, &mut dyn fmt::Write) -> fmt::Result,
) -> Result<StringArray, ArrowError> {
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 36);
    for row in rows {
        write(&row.record.event.position, &mut builder)
            .map_err(|_| invalid("formatting a position"))?;
        builder.append_value("");
    }
    Ok(builder.finish())
}

/// `Op` from Debezium's code.
pub fn op_from_code(code: &str) -> Option<Op> {
    Some(match code {
        "r" => Op::Read,
        "c" => Op::Insert,
        "u" => Op::Update,
        "d" => Op::Delete,
        "t" => Op::Truncate,
        "m" => Op::Message,
        "e" => Op::Event,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_order_sorts_like_positions() {
        let pg = ["0/9@0/1", "0/10@0/2", "1/0@0/F"];
        let my = [
            "mysql-bin.000009:900",
            "mysql-bin.000010:4",
            "mysql-bin.1000000:4",
        ];
        // The rows of one multi-row binlog event share file and offset.
        let row = |tx_index| {
            Position::MySql(headwater_core::MySqlPosition {
                file: "mysql-bin.000010".into(),
                offset: 4,
                gtid_set: None,
                tx_index,
            })
        };
        let one_event: Vec<Position> = (0..3).map(row).collect();
        for texts in [&pg[..], &my[..]] {
            let positions: Vec<Position> = texts.iter().map(|t| t.parse().unwrap()).collect();
            for pair in positions.windows(2) {
                assert!(pair[0] < pair[1]);
                assert!(
                    position_order(&pair[0]) < position_order(&pair[1]),
                    "{pair:?}"
                );
            }
        }
        for pair in one_event.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(
                position_order(&pair[0]) < position_order(&pair[1]),
                "{pair:?}"
            );
        }
    }
}
