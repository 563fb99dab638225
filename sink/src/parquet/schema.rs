//! One Arrow schema per table schema version.
//!
//! # Column layout of an archive file
//!
//! Metadata columns come first, then one column per table column (named as
//! in the table), then the update before-image.
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `_op` | Utf8 | Debezium's code: `r` snapshot read, `c` insert, `u` update, `d` delete, `t` truncate, `m` message |
//! | `_position` | Utf8 | the source position's text form (`0/16B3748@0/16B3700`, `mysql-bin.000003:4711#gtid`) |
//! | `_position_order` | Utf8 | the position as fixed-width text that sorts in source order (`ORDER BY _position_order` replays a source's changes in commit order): PostgreSQL `pg:{commit LSN}:{LSN}` as 16 hex digits each, MySQL `my:{binlog file number}:{offset}:{index in the transaction}` as 20 decimal digits each (archives from before the index was added lack the last part, which sorts them right before it) |
//! | `_commit_ts` | Timestamp(µs, UTC), nullable | commit time in the source |
//! | `_offset` | Int64 | offset in the log partition (order of changes within a partition, so per key) |
//! | `_partition` | Int64 | the log partition |
//! | `_source` | Utf8 | the configured source name |
//! | `_tx_id` | UInt64, nullable | source transaction id |
//! | `_image` | Utf8 | what the table columns hold: `after` (insert, update, read), `before` (a delete with its before-image), `key` (a delete with only the key: key columns set, others NULL), `none` (truncate) |
//! | `_unchanged` | List<Utf8> | names of table columns whose value is PostgreSQL's *unchanged TOAST* marker: the column is NULL in this row but the value did **not** become NULL — keep the previous one. Empty for most rows. |
//! | `_key` | Struct of the key columns, nullable | the event's key when it is not simply the key columns of the row (a primary-key update reports the old key); NULL otherwise |
//! | `_table` | Struct{namespace, name}, nullable | the event's table when it differs from the schema's (NULL otherwise) |
//! | `_topic` | Utf8, nullable | the topic set by the `route` transform (NULL: the default topic) |
//! | `_headers` | List<Struct{name Utf8, value Binary}> | event headers |
//! | *table columns* | see below, all nullable | the row (`_image` says which) |
//! | `_before` | Struct of every table column, nullable | an update's before-image when the source sent one |
//! | `_before_unchanged` | List<Utf8> | as `_unchanged`, for `_before` |
//! | `_special` | List<Struct{image Utf8, column Utf8, value Utf8}> | stand-ins for values a column's type cannot hold as they are (see [`super::special`]); `image` is `row` (the table columns), `before` (`_before`) or `key` (`_key`). Empty for most rows. |
//!
//! # Value kinds
//!
//! | `ValueKind` | Arrow | Parquet (DuckDB) | notes |
//! |---|---|---|---|
//! | Bool | Boolean | BOOLEAN | |
//! | Int16 | Int16 | INT32 (INT_16) → SMALLINT | |
//! | Int32 | Int32 | INT32 → INTEGER | |
//! | Int64 | Int64 | INT64 → BIGINT | |
//! | UInt64 | UInt64 | INT64 (UINT_64) → UBIGINT | 18446744073709551615 survives |
//! | Float32 | Float32 | FLOAT → FLOAT | NaN, ±inf kept |
//! | Float64 | Float64 | DOUBLE → DOUBLE | NaN, ±inf kept |
//! | Decimal, precision p ≤ 38 declared | Decimal128(p, s) | DECIMAL(p, s) | exact; a value with fewer fraction digits is padded to scale s; NaN, ±Infinity, or a value with more digits than declared is NULL here and its exact text is in `_special` |
//! | Decimal, 38 < p ≤ 76 declared | Decimal256(p, s) | FIXED_LEN_BYTE_ARRAY DECIMAL(p, s) → DOUBLE in DuckDB (its decimals stop at 38 digits) | as above; Spark, Trino and Snowflake refuse decimals over 38 digits, so `wide_decimals = "text"` stores these as exact text instead |
//! | Decimal, undeclared (unconstrained `numeric`) or p > 76 | Utf8 | VARCHAR | the exact text (`-12.340`, `NaN`, `Infinity`); cast in SQL |
//! | Text | Utf8 | VARCHAR | |
//! | Bytes | Binary | BLOB | |
//! | Json | Utf8 (`arrow.json` extension) | BYTE_ARRAY (JSON) → JSON / VARCHAR | the source's text, byte for byte |
//! | Uuid | FixedSizeBinary(16) (`arrow.uuid` extension) | FIXED_LEN_BYTE_ARRAY(16) (UUID) → UUID | |
//! | Date | Date32 | DATE | `infinity` = i32::MAX days, `-infinity` = -i32::MAX (DuckDB's own sentinels, shown as `infinity`) |
//! | Time | Time64(µs) | TIME (µs) | MySQL `TIME` durations below 0 or above 24h are stored as they are (exact, but DuckDB shows them wrapped) |
//! | TimeTz | Struct{time Time64(µs), offset_seconds Int32} | STRUCT | offset in seconds east of UTC |
//! | Timestamp | Timestamp(µs, no zone) | TIMESTAMP (µs) | ±infinity = ±i64::MAX (DuckDB's sentinels) |
//! | TimestampTz | Timestamp(µs, "UTC") | TIMESTAMP (µs, UTC) → TIMESTAMPTZ | as above |
//! | Interval | Struct{months Int32, days Int32, micros Int64} | STRUCT | Parquet's INTERVAL has only milliseconds, so it is not used |
//! | Array(k) | List(k's type) | LIST | the elements in row-major order, NULL elements kept; an array of two or more dimensions or with a lower bound other than 1 has its dimensions in `_special` (so one column holds arrays of any dimensions over time) |
//! | Enum | Utf8 | VARCHAR | the label (MySQL SET: comma-separated members) |
//!
//! `Null` is a NULL in its column; `Unchanged` is a NULL too **and** the
//! column's name in `_unchanged` (or `_before_unchanged`), so the two never
//! mix up. `Unchanged` inside an array or a key cannot be represented and
//! the record is rejected (PostgreSQL never sends one there). A value the
//! source accepted is otherwise never rejected: see [`super::special`] and
//! the sink's README.
//!
//! The `TableSchema` itself travels in the file's key-value metadata
//! (`headwater.schema`, hex of `headwater_core::codec::encode_schema`), so a
//! reader rebuilds the exact events without the log's schema registry.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::extension::{Json, Uuid};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

use headwater_core::{TableSchema, ValueKind};

/// Key-value metadata key holding the encoded [`TableSchema`] (hex).
pub const SCHEMA_METADATA_KEY: &str = "headwater.schema";
/// Key-value metadata key holding the format version of this layout.
pub const FORMAT_METADATA_KEY: &str = "headwater.format";
/// 2: `_special` added (version 1 files read as having no entries).
pub const FORMAT_VERSION: &str = "2";

/// Metadata column names, in file order before the table columns.
pub mod col {
    pub const OP: &str = "_op";
    pub const POSITION: &str = "_position";
    pub const POSITION_ORDER: &str = "_position_order";
    pub const COMMIT_TS: &str = "_commit_ts";
    pub const OFFSET: &str = "_offset";
    pub const PARTITION: &str = "_partition";
    pub const SOURCE: &str = "_source";
    pub const TX_ID: &str = "_tx_id";
    pub const IMAGE: &str = "_image";
    pub const UNCHANGED: &str = "_unchanged";
    pub const KEY: &str = "_key";
    pub const TABLE: &str = "_table";
    pub const TOPIC: &str = "_topic";
    pub const HEADERS: &str = "_headers";
    pub const BEFORE: &str = "_before";
    pub const BEFORE_UNCHANGED: &str = "_before_unchanged";
    pub const SPECIAL: &str = "_special";

    pub const ALL: [&str; 17] = [
        OP,
        POSITION,
        POSITION_ORDER,
        COMMIT_TS,
        OFFSET,
        PARTITION,
        SOURCE,
        TX_ID,
        IMAGE,
        UNCHANGED,
        KEY,
        TABLE,
        TOPIC,
        HEADERS,
        BEFORE,
        BEFORE_UNCHANGED,
        SPECIAL,
    ];
}

/// Number of metadata columns before the table columns.
pub const LEADING_METADATA: usize = 14;

/// `Date::PosInfinity` in a Date32 column (DuckDB's `infinity`).
pub const DATE_POS_INFINITY: i32 = i32::MAX;
/// `Date::NegInfinity` in a Date32 column (DuckDB's `-infinity`).
pub const DATE_NEG_INFINITY: i32 = -i32::MAX;
/// `Timestamp::PosInfinity` in a timestamp column (DuckDB's `infinity`).
pub const TS_POS_INFINITY: i64 = i64::MAX;
/// `Timestamp::NegInfinity` in a timestamp column (DuckDB's `-infinity`).
pub const TS_NEG_INFINITY: i64 = -i64::MAX;

/// Largest decimal precision Arrow holds exactly (Decimal256).
pub const MAX_DECIMAL_PRECISION: u32 = 76;

/// A table schema version with its Arrow form, shared by every file and
/// batch of that version.
#[derive(Debug)]
pub struct Layout {
    pub table: Arc<TableSchema>,
    pub arrow: SchemaRef,
    /// Table column indexes of the key, in key order.
    pub key_indexes: Vec<usize>,
    /// The struct fields of `_before` (one per table column).
    pub before_fields: Fields,
    /// The struct fields of `_key` (one per key column).
    pub key_fields: Fields,
    /// Parquet key-value metadata to write in every file.
    pub metadata: HashMap<String, String>,
    /// Declared decimals up to this precision are Arrow decimals; wider
    /// ones are exact text.
    pub max_decimal_precision: u32,
}

impl Layout {
    /// Builds the layout, or says why this table cannot be archived (a
    /// column whose name collides with a metadata column).
    pub fn new(table: Arc<TableSchema>) -> Result<Self, String> {
        Self::with_max_decimal_precision(table, MAX_DECIMAL_PRECISION)
    }

    /// As [`Layout::new`], with declared decimals wider than `max` digits
    /// kept as exact text (38 for Spark, Trino and Snowflake).
    pub fn with_max_decimal_precision(table: Arc<TableSchema>, max: u32) -> Result<Self, String> {
        let max = max.min(MAX_DECIMAL_PRECISION);
        for c in &table.columns {
            if col::ALL.contains(&c.name.as_str()) {
                return Err(format!(
                    "table {} has a column named `{}`, which the archive uses for its own metadata; rename the column with the `rename` transform",
                    table.table, c.name
                ));
            }
        }
        let table_fields: Vec<Field> = table
            .columns
            .iter()
            .map(|c| {
                with_extension(
                    Field::new(&c.name, arrow_type_max(&c.kind, max), true),
                    &c.kind,
                )
            })
            .collect();
        let key_indexes = table.key_indexes();
        let key_fields: Fields = key_indexes
            .iter()
            .map(|&i| table_fields[i].clone())
            .collect();
        let before_fields: Fields = table_fields.iter().cloned().collect();

        let mut fields = Vec::with_capacity(LEADING_METADATA + table_fields.len() + 2);
        fields.push(Field::new(col::OP, DataType::Utf8, false));
        fields.push(Field::new(col::POSITION, DataType::Utf8, false));
        fields.push(Field::new(col::POSITION_ORDER, DataType::Utf8, false));
        fields.push(Field::new(col::COMMIT_TS, timestamp_type(true), true));
        fields.push(Field::new(col::OFFSET, DataType::Int64, false));
        fields.push(Field::new(col::PARTITION, DataType::Int64, false));
        fields.push(Field::new(col::SOURCE, DataType::Utf8, false));
        fields.push(Field::new(col::TX_ID, DataType::UInt64, true));
        fields.push(Field::new(col::IMAGE, DataType::Utf8, false));
        fields.push(Field::new(col::UNCHANGED, names_list_type(), false));
        fields.push(Field::new(
            col::KEY,
            DataType::Struct(key_fields.clone()),
            true,
        ));
        fields.push(Field::new(
            col::TABLE,
            DataType::Struct(table_id_fields()),
            true,
        ));
        fields.push(Field::new(col::TOPIC, DataType::Utf8, true));
        fields.push(Field::new(col::HEADERS, headers_type(), false));
        fields.extend(table_fields);
        fields.push(Field::new(
            col::BEFORE,
            DataType::Struct(before_fields.clone()),
            true,
        ));
        fields.push(Field::new(col::BEFORE_UNCHANGED, names_list_type(), false));
        fields.push(Field::new(
            col::SPECIAL,
            super::special::special_type(),
            false,
        ));

        let mut metadata = HashMap::new();
        metadata.insert(
            SCHEMA_METADATA_KEY.to_owned(),
            to_hex(&headwater_core::codec::encode_schema(&table)),
        );
        metadata.insert(FORMAT_METADATA_KEY.to_owned(), FORMAT_VERSION.to_owned());
        metadata.insert("headwater.table".to_owned(), table.table.to_string());
        metadata.insert(
            "headwater.schema_version".to_owned(),
            table.version.to_string(),
        );
        let arrow = Arc::new(Schema::new_with_metadata(fields, metadata.clone()));
        Ok(Layout {
            table,
            arrow,
            key_indexes,
            before_fields,
            key_fields,
            metadata,
            max_decimal_precision: max,
        })
    }

    /// Index of the first table column in the Arrow schema.
    pub fn first_table_column(&self) -> usize {
        LEADING_METADATA
    }
}

/// Marks UUID and JSON columns with Arrow's canonical extension types, so
/// the Parquet writer gives them Parquet's UUID and JSON logical types.
fn with_extension(field: Field, kind: &ValueKind) -> Field {
    match kind {
        ValueKind::Uuid => field.with_extension_type(Uuid),
        ValueKind::Json => field.with_extension_type(Json::default()),
        _ => field,
    }
}

/// The Arrow type of a column of `kind` (see the module table).
pub fn arrow_type(kind: &ValueKind) -> DataType {
    arrow_type_max(kind, MAX_DECIMAL_PRECISION)
}

/// [`arrow_type`] with decimals wider than `max` digits as text.
pub fn arrow_type_max(kind: &ValueKind, max: u32) -> DataType {
    match kind {
        ValueKind::Bool => DataType::Boolean,
        ValueKind::Int16 => DataType::Int16,
        ValueKind::Int32 => DataType::Int32,
        ValueKind::Int64 => DataType::Int64,
        ValueKind::UInt64 => DataType::UInt64,
        ValueKind::Float32 => DataType::Float32,
        ValueKind::Float64 => DataType::Float64,
        ValueKind::Decimal { precision, scale } => match decimal_shape(*precision, *scale, max) {
            Some((p, s)) if p <= 38 => DataType::Decimal128(p, s),
            Some((p, s)) => DataType::Decimal256(p, s),
            None => DataType::Utf8,
        },
        ValueKind::Text | ValueKind::Json | ValueKind::Enum => DataType::Utf8,
        ValueKind::Bytes => DataType::Binary,
        ValueKind::Uuid => DataType::FixedSizeBinary(16),
        ValueKind::Date => DataType::Date32,
        ValueKind::Time => DataType::Time64(TimeUnit::Microsecond),
        ValueKind::TimeTz => DataType::Struct(timetz_fields()),
        ValueKind::Timestamp => timestamp_type(false),
        ValueKind::TimestampTz => timestamp_type(true),
        ValueKind::Interval => DataType::Struct(interval_fields()),
        // The elements in row-major order; `_special` has the dimensions
        // of an array that is not a plain list.
        ValueKind::Array(inner) => DataType::List(list_item(inner, max)),
    }
}

/// The list element field for arrays of `kind`.
pub fn list_item(kind: &ValueKind, max_decimal_precision: u32) -> FieldRef {
    let field = Field::new("item", arrow_type_max(kind, max_decimal_precision), true);
    Arc::new(with_extension(field, kind))
}

/// Declared (precision, scale) as Arrow wants them, when the column can be
/// an exact Arrow decimal; `None` keeps it as text.
pub fn decimal_shape(precision: Option<u32>, scale: Option<u32>, max: u32) -> Option<(u8, i8)> {
    let p = precision?;
    let s = scale.unwrap_or(0);
    if p == 0 || p > max.min(MAX_DECIMAL_PRECISION) || s > p {
        return None;
    }
    Some((u8::try_from(p).ok()?, i8::try_from(s).ok()?))
}

pub fn timestamp_type(utc: bool) -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| "UTC".into()))
}

pub fn names_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, false)))
}

pub fn headers_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(header_fields()),
        false,
    )))
}

pub fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Binary, false),
    ])
}

pub fn table_id_fields() -> Fields {
    Fields::from(vec![
        Field::new("namespace", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
    ])
}

pub fn timetz_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", DataType::Time64(TimeUnit::Microsecond), false),
        Field::new("offset_seconds", DataType::Int32, false),
    ])
}

pub fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("micros", DataType::Int64, false),
    ])
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_core::{Column, TableId};

    fn column(name: &str, kind: ValueKind, key: Option<u16>) -> Column {
        Column {
            name: name.into(),
            type_name: "x".into(),
            kind,
            nullable: true,
            key_position: key,
        }
    }

    #[test]
    fn decimals_pick_exact_types() {
        let d = |p, s| {
            arrow_type(&ValueKind::Decimal {
                precision: p,
                scale: s,
            })
        };
        assert_eq!(d(Some(10), Some(2)), DataType::Decimal128(10, 2));
        assert_eq!(d(Some(50), Some(5)), DataType::Decimal256(50, 5));
        assert_eq!(d(None, None), DataType::Utf8);
        assert_eq!(d(Some(100), Some(2)), DataType::Utf8);
        assert_eq!(d(Some(5), None), DataType::Decimal128(5, 0));
        let narrow = |p| {
            arrow_type_max(
                &ValueKind::Decimal {
                    precision: Some(p),
                    scale: Some(2),
                },
                38,
            )
        };
        assert_eq!(narrow(38), DataType::Decimal128(38, 2));
        assert_eq!(narrow(39), DataType::Utf8);
    }

    #[test]
    fn layout_puts_metadata_first_and_keeps_the_schema() {
        let schema = Arc::new(TableSchema {
            table: TableId::new("public", "t"),
            version: 3,
            columns: vec![
                column("id", ValueKind::Int64, Some(0)),
                column("u", ValueKind::Uuid, None),
            ],
        });
        let layout = Layout::new(schema.clone()).unwrap();
        assert_eq!(layout.arrow.field(0).name(), "_op");
        assert_eq!(layout.arrow.field(LEADING_METADATA).name(), "id");
        assert_eq!(layout.key_fields.len(), 1);
        let hex = &layout.metadata[SCHEMA_METADATA_KEY];
        let back = headwater_core::codec::decode_schema(&from_hex(hex).unwrap()).unwrap();
        assert_eq!(back, *schema);
    }

    #[test]
    fn colliding_column_names_are_refused() {
        let schema = Arc::new(TableSchema {
            table: TableId::new("public", "t"),
            version: 1,
            columns: vec![column("_op", ValueKind::Text, None)],
        });
        assert!(Layout::new(schema).unwrap_err().contains("`_op`"));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = vec![0, 1, 0xab, 0xff];
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert!(from_hex("abc").is_none());
    }
}
