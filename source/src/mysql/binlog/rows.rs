//! WRITE/UPDATE/DELETE_ROWS events (v1 and v2): the row images, decoded
//! with the column plans of the table map in force.

use headwater_core::Value;

use super::reader::{bit, DecodeError, DecodeResult, Reader};
use super::RowsKind;
use crate::mysql::types::{self, Cell};

/// One changed row: `before` for updates and deletes, `after` for writes and
/// updates; one value per table column (`Unchanged` for a column the row
/// image left out, which only happens without `binlog_row_image=FULL`).
#[derive(Clone, Debug, PartialEq)]
pub struct RowChange {
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
}

/// Decodes every row of a rows event body against `cells` (one plan per
/// table column).
pub fn decode_rows(kind: RowsKind, body: &[u8], cells: &[Cell]) -> DecodeResult<Vec<RowChange>> {
    let mut r = Reader::new(body);
    // A count of columns, not of bytes: a row NULL in most of its columns
    // holds far fewer bytes than columns, so the count is checked against
    // the table map (which bounds everything read after it), never
    // against the bytes left.
    let count = r.lenenc("rows column count")?;
    let width = cells.len();
    if usize::try_from(count).ok() != Some(width) {
        return Err(DecodeError::new(
            "rows event",
            format!("has {count} columns but its table map has {width}"),
        ));
    }
    let present = r.take(width.div_ceil(8), "rows column bitmap")?;
    let present_after = if kind == RowsKind::Update {
        r.take(width.div_ceil(8), "rows update column bitmap")?
    } else {
        present
    };
    let mut out = Vec::new();
    while !r.is_empty() {
        let before = r.position();
        let change = match kind {
            RowsKind::Write => RowChange {
                before: None,
                after: Some(row(&mut r, cells, present)?),
            },
            RowsKind::Delete => RowChange {
                before: Some(row(&mut r, cells, present)?),
                after: None,
            },
            RowsKind::Update => RowChange {
                before: Some(row(&mut r, cells, present)?),
                after: Some(row(&mut r, cells, present_after)?),
            },
        };
        if r.position() == before {
            // a row of no columns would loop forever over the leftover bytes
            return Err(DecodeError::new(
                "rows event",
                format!("{} bytes after rows that hold no column", r.remaining()),
            ));
        }
        out.push(change);
    }
    Ok(out)
}

fn row(r: &mut Reader<'_>, cells: &[Cell], present: &[u8]) -> DecodeResult<Vec<Value>> {
    let n_present = (0..cells.len()).filter(|i| bit(present, *i)).count();
    let nulls = r.take(n_present.div_ceil(8), "row null bitmap")?;
    let mut values = Vec::with_capacity(cells.len());
    let mut k = 0;
    for (i, cell) in cells.iter().enumerate() {
        if !bit(present, i) {
            values.push(Value::Unchanged);
            continue;
        }
        let is_null = bit(nulls, k);
        k += 1;
        values.push(if is_null {
            Value::Null
        } else {
            types::decode(r, cell)?
        });
    }
    Ok(values)
}
