//! The `_special` column: stand-ins for values the archive's column types
//! cannot hold as they are, so such a row is archived, never rejected.
//!
//! Each entry is `{image, column, value}`:
//! - `image` says which columns it is about: `row` (the table columns),
//!   `before` (`_before`), `key` (`_key`);
//! - a decimal column (Parquet DECIMAL) holding NaN, Infinity, -Infinity,
//!   or a value with more digits than the column declares, is NULL and its
//!   entry's `value` is the exact text (`NaN`, `Infinity`, `-Infinity`,
//!   `123.456`);
//! - an array column holds the elements in row-major order as one list;
//!   when the array is not one-dimensional with lower bound 1 (nor empty)
//!   its entry's `value` is the dimensions as PostgreSQL's `array_dims()`
//!   prints them (`[1:2][1:2]`, `[0:1]`).
//!
//! A row with nothing special has an empty list.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, StructBuilder};
use arrow_array::{Array as _, ArrayRef, ListArray, StringArray, StructArray};
use arrow_schema::{ArrowError, DataType, Field, Fields};

use headwater_core::value::{parse_dims, Array};
use headwater_core::{Column, Decimal, Value, ValueKind};

use super::encode::decimal_unscaled;
use super::schema::decimal_shape;

/// Which image an entry is about.
pub const ROW: &str = "row";
pub const BEFORE: &str = "before";
pub const KEY: &str = "key";

/// One stand-in: `column` of `image` is `value` (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub image: &'static str,
    pub column: String,
    pub value: String,
}

pub fn entry_fields() -> Fields {
    Fields::from(vec![
        Field::new("image", DataType::Utf8, false),
        Field::new("column", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ])
}

pub fn special_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(entry_fields()),
        false,
    )))
}

/// The stand-in text of `value` in a column of `kind`, when it needs one.
pub fn stand_in(kind: &ValueKind, value: &Value, max_precision: u32) -> Option<String> {
    match (kind, value) {
        (ValueKind::Decimal { precision, scale }, Value::Decimal(d)) => {
            let (p, s) = decimal_shape(*precision, *scale, max_precision)?;
            decimal_unscaled(d, p, s).is_err().then(|| d.to_string())
        }
        (ValueKind::Array(_), Value::Array(a)) if !a.is_list() => Some(a.dims_text()),
        _ => None,
    }
}

/// The entries of one image of a row: `(column, value)` pairs.
pub fn entries<'a>(
    image: &'static str,
    values: impl Iterator<Item = (&'a Column, &'a Value)>,
    max_precision: u32,
    out: &mut Vec<Entry>,
) {
    for (c, v) in values {
        if let Some(value) = stand_in(&c.kind, v, max_precision) {
            out.push(Entry {
                image,
                column: c.name.clone(),
                value,
            });
        }
    }
}

/// The `_special` column from each row's entries.
pub fn build(rows: &[Vec<Entry>]) -> Result<ArrayRef, ArrowError> {
    let fields = entry_fields();
    let mut builder = ListBuilder::new(StructBuilder::new(
        fields.clone(),
        vec![
            Box::new(StringBuilder::new()),
            Box::new(StringBuilder::new()),
            Box::new(StringBuilder::new()),
        ],
    ))
    .with_field(Arc::new(Field::new(
        "item",
        DataType::Struct(fields),
        false,
    )));
    let missing = || ArrowError::InvalidArgumentError("`_special` field builder".into());
    for entries in rows {
        for e in entries {
            let s = builder.values();
            for (i, text) in [e.image, e.column.as_str(), e.value.as_str()]
                .into_iter()
                .enumerate()
            {
                s.field_builder::<StringBuilder>(i)
                    .ok_or_else(missing)?
                    .append_value(text);
            }
            s.append(true);
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

/// Reads `_special` back: per row, `(image, column, value)`. A file
/// written before the column existed has none.
pub fn read(array: Option<&ArrayRef>, rows: usize) -> Result<Vec<Vec<Entry>>, String> {
    let Some(array) = array else {
        return Ok(vec![Vec::new(); rows]);
    };
    let bad = || format!("column `_special` has type {}", array.data_type());
    let list = array.as_any().downcast_ref::<ListArray>().ok_or_else(bad)?;
    let items = list
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(bad)?;
    let text = |name: &str| -> Result<&StringArray, String> {
        items
            .column_by_name(name)
            .and_then(|a| a.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| format!("`_special` lacks a text field `{name}`"))
    };
    let (image, column, value) = (text("image")?, text("column")?, text("value")?);
    let offsets = list.value_offsets();
    (0..list.len())
        .map(|i| {
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            (start..end)
                .map(|j| {
                    let image = match image.value(j) {
                        ROW => ROW,
                        BEFORE => BEFORE,
                        KEY => KEY,
                        other => return Err(format!("`_special` has an unknown image `{other}`")),
                    };
                    Ok(Entry {
                        image,
                        column: column.value(j).to_owned(),
                        value: value.value(j).to_owned(),
                    })
                })
                .collect()
        })
        .collect()
}

/// Puts the values `entries` stand for back into `row`, whose columns are
/// `columns` (all the table's, or the key's).
pub fn apply(
    image: &str,
    entries: &[Entry],
    columns: &[&Column],
    row: &mut [Value],
) -> Result<(), String> {
    for e in entries.iter().filter(|e| e.image == image) {
        let at = columns
            .iter()
            .position(|c| c.name == e.column)
            .ok_or_else(|| {
                format!(
                    "`_special` names `{}` in `{image}`, which is not a column there",
                    e.column
                )
            })?;
        let slot = &mut row[at];
        *slot = match (&columns[at].kind, std::mem::replace(slot, Value::Null)) {
            (ValueKind::Decimal { .. }, Value::Null) => Value::Decimal(
                e.value
                    .parse::<Decimal>()
                    .map_err(|err| format!("`_special` of `{}`: {err}", e.column))?,
            ),
            (ValueKind::Array(_), Value::Array(list)) => {
                let dims = parse_dims(&e.value)
                    .map_err(|err| format!("`_special` of `{}`: {err}", e.column))?;
                Value::Array(
                    Array::new(dims, list.into_elements())
                        .map_err(|err| format!("`_special` of `{}`: {err}", e.column))?,
                )
            }
            (_, other) => {
                return Err(format!(
                    "`_special` has `{}` for column `{}`, which holds a {} value",
                    e.value,
                    e.column,
                    other.kind_name()
                ))
            }
        };
    }
    Ok(())
}
