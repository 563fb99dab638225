//! Table schemas: what each captured table looks like at each position.
//!
//! Rows are always decoded with the TABLE_MAP event that precedes them, so
//! the layout in force at that position is used even when the table has
//! changed since (a backlog with an `ALTER TABLE` in it). With
//! `binlog_row_metadata=FULL` the table map also names the columns and
//! gives signedness, charsets, enum/set labels and the primary key.
//! information_schema adds what the binlog cannot say (the declared type
//! text such as `varchar(255)`, MariaDB's JSON columns) and stands in for
//! missing metadata; it is read at start and again after every DDL.

use std::collections::HashMap;
use std::sync::Arc;

use headwater_core::{Column, TableId, TableSchema};

use super::binlog::table_map::{is_character, ty, ColumnDef, TableMap, BINARY_COLLATION};
use super::conn::{number, text, Sql};
use super::error::{MySqlError, Result};
use super::types::{self, Cell, Charset};

/// What a rows event of one table needs: the schema in force and how to
/// decode each column.
#[derive(Debug)]
pub struct TableState {
    pub schema: Arc<TableSchema>,
    pub cells: Vec<Cell>,
    pub key: Vec<usize>,
}

/// One column as information_schema describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct InfoColumn {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
    pub collation: Option<u16>,
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    pub fsp: Option<u64>,
    pub key_position: Option<u16>,
    pub json: bool,
    pub unsigned: bool,
    pub labels: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableInfo {
    pub columns: Vec<InfoColumn>,
}

impl TableInfo {
    fn by_name(&self, name: &str) -> Option<&InfoColumn> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Collation ids to charset names, from the server.
#[derive(Clone, Debug, Default)]
pub struct Collations {
    charset: HashMap<u16, String>,
    id: HashMap<String, u16>,
}

impl Collations {
    pub async fn load(sql: &mut Sql) -> Result<Self> {
        let rows = sql
            .text_rows(
                "SELECT ID, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLLATIONS",
            )
            .await?;
        let mut c = Collations::default();
        for row in rows {
            let (Some(id), Some(cs), Some(name)) = (
                row.first()
                    .and_then(number)
                    .and_then(|n| u16::try_from(n).ok()),
                row.get(1).and_then(text),
                row.get(2).and_then(text),
            ) else {
                continue;
            };
            c.charset.insert(id, cs);
            c.id.insert(name, id);
        }
        Ok(c)
    }

    /// The charset name of a collation id (`utf8mb4`, `latin1`, …).
    pub fn charset_name(&self, collation: u16) -> Option<&str> {
        self.charset.get(&collation).map(String::as_str)
    }

    pub fn charset(&self, collation: Option<u16>) -> Charset {
        types::charset_of(collation, &|id| self.charset.get(&id).cloned())
    }
}

/// Parses `enum('a','b''c')` / `set(...)` labels.
pub fn parse_labels(column_type: &str) -> Option<Vec<String>> {
    let open = column_type.find('(')?;
    let inner = column_type.get(open + 1..column_type.rfind(')')?)?;
    let mut labels = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => label.push(chars.next()?),
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    Some(labels)
}

/// Reads a table's columns; `None` when the table does not exist (any more).
pub async fn load_info(
    sql: &mut Sql,
    collations: &Collations,
    db: &str,
    table: &str,
) -> Result<Option<TableInfo>> {
    let rows = sql
        .rows(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLLATION_NAME, NUMERIC_PRECISION, \
             NUMERIC_SCALE, DATETIME_PRECISION FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let keys = sql
        .rows(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await?;
    let keys: Vec<String> = keys
        .iter()
        .filter_map(|r| r.first().and_then(text))
        .collect();
    // MariaDB's JSON is LONGTEXT with a json_valid() check named after the column.
    let checks = if sql.mariadb {
        sql.rows(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await?
    } else {
        Vec::new()
    };
    let checks: Vec<String> = checks
        .iter()
        .filter_map(|r| r.first().and_then(text))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let get = |i: usize| row.get(i).and_then(text);
        let name = get(0).unwrap_or_default();
        let data_type = get(1).unwrap_or_default().to_ascii_lowercase();
        let column_type = get(2).unwrap_or_default();
        let lower_name = name.to_ascii_lowercase();
        let json = data_type == "json"
            || checks
                .iter()
                .any(|c| c.contains(&format!("json_valid(`{lower_name}`)")));
        columns.push(InfoColumn {
            key_position: keys
                .iter()
                .position(|k| *k == name)
                .and_then(|p| u16::try_from(p).ok()),
            nullable: get(3).as_deref() == Some("YES"),
            collation: get(4).and_then(|c| collations.id.get(&c).copied()),
            precision: row.get(5).and_then(number),
            scale: row.get(6).and_then(number),
            fsp: row.get(7).and_then(number),
            unsigned: column_type.to_ascii_lowercase().contains("unsigned"),
            labels: if data_type == "enum" || data_type == "set" {
                parse_labels(&column_type)
            } else {
                None
            },
            json,
            name,
            data_type,
            column_type,
        });
    }
    Ok(Some(TableInfo { columns }))
}

/// The binlog column information_schema's description corresponds to.
pub fn info_to_def(table: &TableId, c: &InfoColumn) -> Result<ColumnDef> {
    let small = |n: Option<u64>| n.and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
    let (t, meta) = match c.data_type.as_str() {
        "tinyint" => (ty::TINY, 0),
        "smallint" => (ty::SHORT, 0),
        "mediumint" => (ty::INT24, 0),
        "int" | "integer" => (ty::LONG, 0),
        "bigint" => (ty::LONGLONG, 0),
        "float" => (ty::FLOAT, 4),
        "double" | "real" | "double precision" => (ty::DOUBLE, 8),
        "decimal" | "numeric" => (ty::NEWDECIMAL, (small(c.precision) << 8) | small(c.scale)),
        "bit" => {
            let bits = small(c.precision).max(1);
            (ty::BIT, ((bits % 8) << 8) | (bits / 8))
        }
        "year" => (ty::YEAR, 0),
        "date" => (ty::DATE, 0),
        "time" => (ty::TIME2, small(c.fsp)),
        "datetime" => (ty::DATETIME2, small(c.fsp)),
        "timestamp" => (ty::TIMESTAMP2, small(c.fsp)),
        "char" | "varchar" | "binary" | "varbinary" => (ty::VARCHAR, 255),
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => (ty::BLOB, 4),
        "json" => (ty::JSON, 4),
        "enum" => (ty::ENUM, 1),
        "set" => (ty::SET, 1),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => (ty::GEOMETRY, 4),
        other => {
            return Err(MySqlError::Schema {
                table: table.to_string(),
                reason: format!(
                    "column `{}` has type `{other}`, which the mysql source cannot decode",
                    c.name
                ),
            })
        }
    };
    let collation = if is_character(t) {
        Some(c.collation.unwrap_or(BINARY_COLLATION))
    } else {
        c.collation
    };
    Ok(ColumnDef {
        ty: t,
        meta,
        nullable: c.nullable,
        name: Some(c.name.clone()),
        unsigned: c.unsigned,
        collation,
        labels: c.labels.clone(),
        key_position: c.key_position,
    })
}

/// Type text for a column information_schema no longer describes.
fn render_type(def: &ColumnDef) -> String {
    let base = match def.ty {
        ty::TINY => "tinyint",
        ty::SHORT => "smallint",
        ty::INT24 => "mediumint",
        ty::LONG => "int",
        ty::LONGLONG => "bigint",
        ty::FLOAT => "float",
        ty::DOUBLE => "double",
        ty::NEWDECIMAL => return format!("decimal({},{})", def.meta >> 8, def.meta & 0xff),
        ty::BIT => "bit",
        ty::YEAR => "year",
        ty::DATE => "date",
        ty::TIME | ty::TIME2 => "time",
        ty::DATETIME | ty::DATETIME2 => "datetime",
        ty::TIMESTAMP | ty::TIMESTAMP2 => "timestamp",
        ty::VARCHAR | ty::VAR_STRING => "varchar",
        ty::STRING => "char",
        ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB => "blob",
        ty::JSON => "json",
        ty::ENUM => "enum",
        ty::SET => "set",
        ty::GEOMETRY => "geometry",
        _ => "unknown",
    };
    if def.unsigned {
        format!("{base} unsigned")
    } else {
        base.to_owned()
    }
}

/// Keeps the schema versions of every captured table and builds the
/// decoding state for table maps and snapshots.
#[derive(Default)]
pub struct Schemas {
    pub collations: Collations,
    current: HashMap<TableId, Arc<TableSchema>>,
}

impl Schemas {
    pub fn new(collations: Collations) -> Self {
        Schemas {
            collations,
            current: HashMap::new(),
        }
    }

    /// The schema with these columns: the current one if it is equal,
    /// else a new version.
    fn versioned(&mut self, table: &TableId, columns: Vec<Column>) -> Arc<TableSchema> {
        if let Some(cur) = self.current.get(table) {
            if cur.columns == columns {
                return cur.clone();
            }
        }
        let version = self
            .current
            .get(table)
            .map_or(1, |c| c.version.saturating_add(1));
        let schema = Arc::new(TableSchema {
            table: table.clone(),
            version,
            columns,
        });
        self.current.insert(table.clone(), schema.clone());
        schema
    }

    pub fn current(&self, table: &TableId) -> Option<Arc<TableSchema>> {
        self.current.get(table).cloned()
    }

    fn cell(&self, def: &ColumnDef, info: Option<&InfoColumn>, table: &TableId) -> Result<Cell> {
        let mut charset = self.collations.charset(def.collation);
        if info.is_some_and(|i| i.json)
            && matches!(
                def.ty,
                ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB
            )
        {
            charset = Charset::Json;
        }
        types::plan(def, charset, info.and_then(|i| i.labels.as_deref())).map_err(|e| {
            MySqlError::Schema {
                table: table.to_string(),
                reason: format!("column `{}`: {e}", def.name.as_deref().unwrap_or("?")),
            }
        })
    }

    /// Decoding state for a snapshot, from information_schema alone.
    pub fn from_info(&mut self, table: &TableId, info: &TableInfo) -> Result<TableState> {
        let mut cells = Vec::with_capacity(info.columns.len());
        let mut columns = Vec::with_capacity(info.columns.len());
        for c in &info.columns {
            let def = info_to_def(table, c)?;
            let cell = self.cell(&def, Some(c), table)?;
            columns.push(Column {
                name: c.name.clone(),
                type_name: c.column_type.clone(),
                kind: types::kind(&cell),
                nullable: c.nullable,
                key_position: c.key_position,
            });
            cells.push(cell);
        }
        Ok(self.state(table, columns, cells))
    }

    /// Decoding state for the rows after a table map, enriched by
    /// information_schema where it describes the same columns.
    pub fn from_map(
        &mut self,
        table: &TableId,
        map: &TableMap,
        info: Option<&TableInfo>,
    ) -> Result<TableState> {
        if !map.has_names {
            let n = info.map_or(0, |i| i.columns.len());
            if n != map.columns.len() {
                return Err(MySqlError::Schema {
                    table: table.to_string(),
                    reason: format!(
                        "the binlog's table map has {} columns but information_schema has {n} (the table changed after these rows were written); set binlog_row_metadata=FULL on the server so every event names its columns",
                        map.columns.len()
                    ),
                });
            }
        }
        let map_has_key = map.columns.iter().any(|c| c.key_position.is_some());
        let mut cells = Vec::with_capacity(map.columns.len());
        let mut columns = Vec::with_capacity(map.columns.len());
        for (i, def) in map.columns.iter().enumerate() {
            let info_col = match (&def.name, info) {
                (Some(name), Some(info)) => info.by_name(name),
                (None, Some(info)) => info.columns.get(i),
                _ => None,
            };
            let mut def = def.clone();
            if !map.has_signedness {
                def.unsigned = info_col.is_some_and(|c| c.unsigned);
            }
            if def.collation.is_none() && is_character(def.ty) {
                def.collation = info_col.map(|c| c.collation.unwrap_or(BINARY_COLLATION));
            }
            let cell = self.cell(&def, info_col, table)?;
            let kind = types::kind(&cell);
            let type_name = match info_col {
                Some(c)
                    if info_to_def(table, c)
                        .ok()
                        .and_then(|d| self.cell(&d, Some(c), table).ok())
                        .map(|c| types::kind(&c))
                        == Some(kind.clone()) =>
                {
                    c.column_type.clone()
                }
                _ => render_type(&def),
            };
            columns.push(Column {
                name: def
                    .name
                    .clone()
                    .or_else(|| info_col.map(|c| c.name.clone()))
                    .unwrap_or_else(|| format!("col{i}")),
                type_name,
                kind,
                nullable: def.nullable,
                key_position: if map_has_key {
                    def.key_position
                } else {
                    info_col.and_then(|c| c.key_position)
                },
            });
            cells.push(cell);
        }
        Ok(self.state(table, columns, cells))
    }

    fn state(&mut self, table: &TableId, columns: Vec<Column>, cells: Vec<Cell>) -> TableState {
        let schema = self.versioned(table, columns);
        let key = schema.key_indexes();
        TableState { schema, cells, key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_column(name: &str, data_type: &str, column_type: &str) -> InfoColumn {
        InfoColumn {
            name: name.into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: false,
            collation: None,
            precision: None,
            scale: None,
            fsp: None,
            key_position: None,
            json: false,
            unsigned: column_type.contains("unsigned"),
            labels: None,
        }
    }

    fn minimal_map(types: &[u8]) -> TableMap {
        TableMap {
            table_id: 1,
            database: "d".into(),
            table: "t".into(),
            columns: types
                .iter()
                .map(|t| ColumnDef {
                    ty: *t,
                    meta: 0,
                    nullable: false,
                    name: None,
                    unsigned: false,
                    collation: None,
                    labels: None,
                    key_position: None,
                })
                .collect(),
            has_names: false,
            has_signedness: false,
        }
    }

    #[test]
    fn minimal_metadata_takes_names_and_signedness_from_information_schema() {
        let table = TableId::new("d", "t");
        let mut info = TableInfo {
            columns: vec![
                info_column("id", "bigint", "bigint(20) unsigned"),
                info_column("n", "int", "int(11)"),
            ],
        };
        info.columns[0].key_position = Some(0);
        let mut schemas = Schemas::default();
        let state = schemas
            .from_map(&table, &minimal_map(&[ty::LONGLONG, ty::LONG]), Some(&info))
            .unwrap();
        assert_eq!(state.schema.columns[0].name, "id");
        assert_eq!(
            state.schema.columns[0].kind,
            headwater_core::ValueKind::UInt64
        );
        assert_eq!(state.schema.columns[0].type_name, "bigint(20) unsigned");
        assert_eq!(state.key, vec![0]);
        // the same table from information_schema alone is the same schema
        let snap = schemas.from_info(&table, &info).unwrap();
        assert!(Arc::ptr_eq(&snap.schema, &state.schema));
        // a table map that no longer matches information_schema is refused, naming the fix
        let err = schemas
            .from_map(&table, &minimal_map(&[ty::LONGLONG]), Some(&info))
            .unwrap_err();
        assert!(
            err.to_string().contains("binlog_row_metadata=FULL"),
            "{err}"
        );
    }

    #[test]
    fn binary_is_padded_with_minimal_metadata_too() {
        // without binlog_row_metadata=FULL the table map gives no charset;
        // information_schema's BINARY has no collation, which is `binary`
        let table = TableId::new("d", "t");
        let mut info = TableInfo {
            columns: vec![
                info_column("b", "binary", "binary(4)"),
                info_column("c", "char", "char(4)"),
            ],
        };
        let mut map = minimal_map(&[ty::STRING, ty::STRING]);
        map.columns[0].meta = 4;
        map.columns[1].meta = 4;
        let mut schemas = Schemas::new(Collations::default());
        info.columns[1].collation = Some(8); // latin1_swedish_ci
        let state = schemas.from_map(&table, &map, Some(&info)).unwrap();
        let decode = |cell: &Cell, bytes: &[u8]| {
            types::decode(&mut super::super::binlog::reader::Reader::new(bytes), cell).unwrap()
        };
        assert_eq!(
            decode(&state.cells[0], &[1, 0xff]),
            headwater_core::Value::Bytes(vec![0xff, 0, 0, 0])
        );
        assert_eq!(
            decode(&state.cells[1], &[1, b'a']),
            headwater_core::Value::Text("a".into())
        );
    }

    #[test]
    fn enum_labels() {
        assert_eq!(
            parse_labels("enum('a','b''c','d,e')").unwrap(),
            vec!["a", "b'c", "d,e"]
        );
        assert_eq!(parse_labels("set()").unwrap(), Vec::<String>::new());
    }
}
