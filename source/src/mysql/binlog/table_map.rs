//! TABLE_MAP_EVENT: the layout of the table the next rows events refer to,
//! with the optional metadata `binlog_row_metadata=FULL` adds (column names,
//! signedness, charsets, enum/set labels, primary key).

use super::reader::{bit, DecodeError, DecodeResult, Reader};

/// Binlog column types (`enum_field_types`).
pub mod ty {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// The collation id of the `binary` character set.
pub const BINARY_COLLATION: u16 = 63;

/// One column as the binlog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// The type as it is stored in rows (for CHAR/ENUM/SET the real type
    /// from the metadata, not `STRING`).
    pub ty: u8,
    /// Type-specific metadata, normalised: length bytes, precision/scale,
    /// fractional digits, max length (see [`super::super::types`]).
    pub meta: u16,
    pub nullable: bool,
    pub name: Option<String>,
    pub unsigned: bool,
    /// Collation id for character columns, when the server sent it.
    pub collation: Option<u16>,
    /// Enum or set labels, when the server sent them.
    pub labels: Option<Vec<String>>,
    pub key_position: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub database: String,
    pub table: String,
    pub columns: Vec<ColumnDef>,
    /// Whether optional metadata named the columns (`binlog_row_metadata=FULL`).
    pub has_names: bool,
    /// Whether the signedness of numeric columns is known.
    pub has_signedness: bool,
}

fn name_text(bytes: &[u8], what: &'static str) -> DecodeResult<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::new(what, "identifier is not UTF-8"))
}

pub fn is_numeric(ty: u8) -> bool {
    matches!(
        ty,
        ty::TINY
            | ty::SHORT
            | ty::INT24
            | ty::LONG
            | ty::LONGLONG
            | ty::NEWDECIMAL
            | ty::DECIMAL
            | ty::FLOAT
            | ty::DOUBLE
    )
}

pub fn is_character(ty: u8) -> bool {
    matches!(
        ty,
        ty::STRING
            | ty::VAR_STRING
            | ty::VARCHAR
            | ty::BLOB
            | ty::TINY_BLOB
            | ty::MEDIUM_BLOB
            | ty::LONG_BLOB
    )
}

/// Decodes a TABLE_MAP_EVENT body (after the common header, checksum
/// removed). `table_id_len` is 6 (or 4 for very old servers).
pub fn decode_table_map(data: &[u8], table_id_len: usize) -> DecodeResult<TableMap> {
    let mut r = Reader::new(data);
    let table_id = r.uint_le(table_id_len, "table map table id")?;
    r.skip(2, "table map flags")?;
    let db_len = usize::from(r.u8("table map database length")?);
    let database = name_text(r.take(db_len, "table map database")?, "table map database")?;
    r.skip(1, "table map database terminator")?;
    let table_len = usize::from(r.u8("table map table length")?);
    let table = name_text(r.take(table_len, "table map table")?, "table map table")?;
    r.skip(1, "table map table terminator")?;
    let count = r.lenenc_len("table map column count")?;
    let types = r.take(count, "table map column types")?;
    let meta_block = r.lenenc_bytes("table map metadata")?;
    let nulls = r.take(count.div_ceil(8), "table map null bitmap")?;

    let mut meta_r = Reader::new(meta_block);
    let mut columns = Vec::with_capacity(count);
    for (i, &raw) in types.iter().enumerate() {
        let (ty, meta) = read_meta(&mut meta_r, raw)?;
        columns.push(ColumnDef {
            ty,
            meta,
            nullable: bit(nulls, i),
            name: None,
            unsigned: false,
            collation: None,
            labels: None,
            key_position: None,
        });
    }
    let mut map = TableMap {
        table_id,
        database,
        table,
        columns,
        has_names: false,
        has_signedness: false,
    };
    read_optional_metadata(&mut r, &mut map)?;
    Ok(map)
}

/// Reads one column's metadata from the TABLE_MAP metadata block; returns
/// the real type and normalised metadata.
fn read_meta(r: &mut Reader<'_>, raw: u8) -> DecodeResult<(u8, u16)> {
    const W: &str = "table map column metadata";
    Ok(match raw {
        ty::FLOAT
        | ty::DOUBLE
        | ty::BLOB
        | ty::TINY_BLOB
        | ty::MEDIUM_BLOB
        | ty::LONG_BLOB
        | ty::GEOMETRY
        | ty::JSON
        | ty::TIME2
        | ty::DATETIME2
        | ty::TIMESTAMP2 => (raw, u16::from(r.u8(W)?)),
        ty::VARCHAR | ty::VAR_STRING => (raw, r.u16(W)?),
        // precision, scale / bits-in-last-byte, bytes: kept as (hi, lo)
        ty::NEWDECIMAL | ty::BIT => {
            let a = r.u8(W)?;
            let b = r.u8(W)?;
            (raw, (u16::from(a) << 8) | u16::from(b))
        }
        ty::STRING | ty::ENUM | ty::SET => {
            let b0 = r.u8(W)?;
            let b1 = r.u8(W)?;
            if raw == ty::STRING && (b0 & 0x30) != 0x30 {
                // CHAR longer than 255 bytes: two length bits live in b0.
                let len = u16::from(b1) | (u16::from((b0 & 0x30) ^ 0x30) << 4);
                (b0 | 0x30, len)
            } else if b0 == ty::ENUM || b0 == ty::SET {
                (b0, u16::from(b1))
            } else {
                (raw, u16::from(b1))
            }
        }
        _ => (raw, 0),
    })
}

/// Optional metadata field types (MySQL 8 `Table_map_log_event::Optional_metadata_field_type`).
mod opt {
    pub const SIGNEDNESS: u8 = 1;
    pub const DEFAULT_CHARSET: u8 = 2;
    pub const COLUMN_CHARSET: u8 = 3;
    pub const COLUMN_NAME: u8 = 4;
    pub const SET_STR_VALUE: u8 = 5;
    pub const ENUM_STR_VALUE: u8 = 6;
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
}

fn read_optional_metadata(r: &mut Reader<'_>, map: &mut TableMap) -> DecodeResult<()> {
    const W: &str = "table map optional metadata";
    let char_cols: Vec<usize> = indexes(map, |c| is_character(c.ty));
    let enum_set_cols: Vec<usize> = indexes(map, |c| c.ty == ty::ENUM || c.ty == ty::SET);
    while !r.is_empty() {
        let field = r.u8(W)?;
        let value = r.lenenc_bytes(W)?;
        let mut v = Reader::new(value);
        match field {
            opt::SIGNEDNESS => {
                let numeric: Vec<usize> = indexes(map, |c| is_numeric(c.ty));
                for (n, &i) in numeric.iter().enumerate() {
                    let byte = value.get(n / 8).copied().unwrap_or(0);
                    map.columns[i].unsigned = byte & (0x80 >> (n % 8)) != 0;
                }
                map.has_signedness = true;
            }
            opt::DEFAULT_CHARSET | opt::ENUM_AND_SET_DEFAULT_CHARSET => {
                let cols = if field == opt::DEFAULT_CHARSET {
                    &char_cols
                } else {
                    &enum_set_cols
                };
                let default = collation(v.lenenc(W)?)?;
                for &i in cols {
                    map.columns[i].collation = Some(default);
                }
                while !v.is_empty() {
                    let n = usize::try_from(v.lenenc(W)?).unwrap_or(usize::MAX);
                    let c = collation(v.lenenc(W)?)?;
                    let i = *cols.get(n).ok_or_else(|| {
                        DecodeError::new(
                            W,
                            format!("charset for character column {n}, which does not exist"),
                        )
                    })?;
                    map.columns[i].collation = Some(c);
                }
            }
            opt::COLUMN_CHARSET | opt::ENUM_AND_SET_COLUMN_CHARSET => {
                let cols = if field == opt::COLUMN_CHARSET {
                    &char_cols
                } else {
                    &enum_set_cols
                };
                for &i in cols {
                    if v.is_empty() {
                        break;
                    }
                    map.columns[i].collation = Some(collation(v.lenenc(W)?)?);
                }
            }
            opt::COLUMN_NAME => {
                for column in &mut map.columns {
                    column.name = Some(name_text(v.lenenc_bytes(W)?, W)?);
                }
                map.has_names = true;
            }
            opt::SET_STR_VALUE | opt::ENUM_STR_VALUE => {
                let want = if field == opt::SET_STR_VALUE {
                    ty::SET
                } else {
                    ty::ENUM
                };
                for i in indexes(map, |c| c.ty == want) {
                    let n = v.lenenc_len(W)?;
                    let mut labels = Vec::with_capacity(n.min(value.len()));
                    for _ in 0..n {
                        labels.push(String::from_utf8_lossy(v.lenenc_bytes(W)?).into_owned());
                    }
                    map.columns[i].labels = Some(labels);
                }
            }
            opt::SIMPLE_PRIMARY_KEY | opt::PRIMARY_KEY_WITH_PREFIX => {
                let mut k: u16 = 0;
                while !v.is_empty() {
                    let i = usize::try_from(v.lenenc(W)?).unwrap_or(usize::MAX);
                    if field == opt::PRIMARY_KEY_WITH_PREFIX {
                        v.lenenc(W)?;
                    }
                    let column = map.columns.get_mut(i).ok_or_else(|| {
                        DecodeError::new(
                            W,
                            format!("primary key names column {i}, which does not exist"),
                        )
                    })?;
                    column.key_position = Some(k);
                    k = k.saturating_add(1);
                }
            }
            // geometry types, column visibility and future fields: not needed
            _ => {}
        }
    }
    Ok(())
}

fn collation(id: u64) -> DecodeResult<u16> {
    u16::try_from(id).map_err(|_| {
        DecodeError::new(
            "table map optional metadata",
            format!("collation id {id} out of range"),
        )
    })
}

fn indexes(map: &TableMap, pred: impl Fn(&ColumnDef) -> bool) -> Vec<usize> {
    map.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| pred(c))
        .map(|(i, _)| i)
        .collect()
}
