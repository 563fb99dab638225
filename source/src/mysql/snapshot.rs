//! The consistent initial snapshot.
//!
//! A consistent-snapshot transaction is opened together with the binlog
//! position it corresponds to ([`super::snapshot_start`]: a brief global
//! read lock, brief table locks, or MariaDB's own snapshot position), and
//! every captured table is read inside it in primary-key-ordered chunks.
//! The rows are `Read` events at the recorded position; streaming then
//! starts from exactly there, so snapshot and stream meet without gap or
//! overlap.

use futures::stream::FuturesOrdered;
use futures::StreamExt;
use headwater_core::time::MICROS_PER_SECOND;
use headwater_core::{
    ChangeEvent, Decimal, EventBatch, Op, Position, SourceContext, TableId, Time, Value, ValueKind,
};
use mysql_async::Value as MyValue;
use tracing::info;

use super::config::MySqlConfig;
use super::conn::{ident, text, Sql};
use super::error::{MySqlError, Result};
use super::schema::{load_info, Schemas, TableState};
use super::snapshot_start::begin;
use super::stream::Start;
use super::types::{self, Cell};

/// The captured tables that exist now.
pub async fn captured_tables(cfg: &MySqlConfig, sql: &mut Sql) -> Result<Vec<TableId>> {
    let rows = sql
        .text_rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.first().and_then(text)?, r.get(1).and_then(text)?)))
        .filter(|(d, t)| cfg.captures(d, t))
        .map(|(d, t)| TableId::new(d, t))
        .collect())
}

/// ER_TABLE_DEF_CHANGED: the table is newer than the snapshot transaction.
fn created_after_the_snapshot(e: &MySqlError) -> bool {
    matches!(e, MySqlError::Query { source: mysql_async::Error::Server(s), .. } if s.code == 1412)
}

/// Takes the snapshot; returns where streaming starts.
pub async fn snapshot(
    cfg: &MySqlConfig,
    ctx: &SourceContext,
    schemas: &mut Schemas,
) -> Result<Start> {
    let mut sql = Sql::connect(&cfg.url).await?;
    sql.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    sql.execute("SET time_zone = '+00:00'").await?;
    sql.execute("SET character_set_results = NULL").await?;
    let locked = captured_tables(cfg, &mut sql).await?;
    let start = begin(cfg, &mut sql, &locked).await?.start;
    // Listed again now the snapshot has begun: a table created between the
    // first listing and the start position has rows only the snapshot can
    // read. (One created after the start fails to read with 1412 and is
    // left to the stream, which has all of it.)
    let tables = captured_tables(cfg, &mut sql).await?;
    info!(position = %start.position_text(), tables = tables.len(), "mysql: snapshot started");
    let position = Position::MySql(start.position.clone());
    let mut durables = FuturesOrdered::new();
    for table in &tables {
        let Some(info) =
            load_info(&mut sql, &schemas.collations, &table.namespace, &table.name).await?
        else {
            continue;
        };
        let state = schemas.from_info(table, &info)?;
        // Key values come back as raw bytes (character_set_results = NULL);
        // handed back as hex they are re-read in their own charset, so
        // keyset comparisons follow the column's collation.
        let marks: Vec<String> = state
            .key
            .iter()
            .map(|i| {
                let column = info.columns.get(*i);
                let binary = column.is_some_and(|c| {
                    c.collation.is_none()
                        && matches!(
                            c.data_type.as_str(),
                            "binary"
                                | "varbinary"
                                | "tinyblob"
                                | "blob"
                                | "mediumblob"
                                | "longblob"
                        )
                });
                match column
                    .and_then(|c| c.collation)
                    .and_then(|c| schemas.collations.charset_name(c))
                {
                    Some(cs) if cs != "binary" => format!("CONVERT(UNHEX(?) USING {cs})"),
                    Some(_) => "UNHEX(?)".to_owned(),
                    None if binary => "UNHEX(?)".to_owned(),
                    None => "?".to_owned(),
                }
            })
            .collect();
        let mut after: Option<Vec<MyValue>> = None;
        let mut rows_read: u64 = 0;
        loop {
            if ctx.shutdown.is_cancelled() {
                return Err(MySqlError::Shutdown);
            }
            let (query, params) = chunk_query(
                table,
                &state,
                &marks,
                cfg.snapshot_chunk_size,
                after.as_deref(),
            );
            let rows = match sql.rows(&query, params).await {
                Err(e) if created_after_the_snapshot(&e) => {
                    info!(table = %table, "mysql: table created after the snapshot began; its rows come from the binlog");
                    break;
                }
                rows => rows?,
            };
            let n = rows.len();
            let mut events = Vec::with_capacity(n);
            for row in &rows {
                let values = convert_row(table, &state, row)?;
                let key = state
                    .key
                    .iter()
                    .map(|i| values.get(*i).cloned().unwrap_or(Value::Null))
                    .collect();
                events.push(ChangeEvent {
                    source: ctx.name.clone(),
                    table: table.clone(),
                    op: Op::Read,
                    key,
                    before: None,
                    after: Some(values),
                    position: position.clone(),
                    commit_ts: None,
                    tx_id: None,
                    schema: state.schema.clone(),
                    topic: None,
                    headers: Vec::new(),
                });
            }
            rows_read += n as u64;
            if !events.is_empty() {
                let durable = ctx
                    .appender
                    .append(EventBatch {
                        events,
                        checkpoint: None,
                    })
                    .await
                    .map_err(MySqlError::Append)?;
                durables.push_back(durable);
            }
            if state.key.is_empty() || n < cfg.snapshot_chunk_size as usize {
                break;
            }
            let next: Option<Vec<MyValue>> = rows.last().map(|r| {
                state
                    .key
                    .iter()
                    .zip(&marks)
                    .map(|(i, mark)| match r.get(*i) {
                        // raw bytes travel as hex, so no charset conversion can touch them
                        Some(MyValue::Bytes(b)) if mark.contains("UNHEX") => {
                            MyValue::Bytes(hex(b).into_bytes())
                        }
                        Some(v) => v.clone(),
                        None => MyValue::NULL,
                    })
                    .collect()
            });
            if next == after {
                return Err(MySqlError::Schema {
                    table: table.to_string(),
                    reason: "snapshot chunking made no progress (the key order and the key comparison disagree); report this with the table's key definition".into(),
                });
            }
            after = next;
        }
        info!(table = %table, rows = rows_read, "mysql: snapshot of table done");
    }
    sql.execute("COMMIT").await?;
    let durable = ctx
        .appender
        .append(EventBatch {
            events: Vec::new(),
            checkpoint: Some(position),
        })
        .await
        .map_err(MySqlError::Append)?;
    durables.push_back(durable);
    while let Some(done) = durables.next().await {
        done.map_err(MySqlError::Append)?;
    }
    info!(position = %start.position_text(), "mysql: snapshot complete");
    Ok(start)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// One chunk's SELECT: the whole table when it has no key, else the next
/// `limit` rows after `after` in key order.
fn chunk_query(
    table: &TableId,
    state: &TableState,
    marks: &[String],
    limit: u32,
    after: Option<&[MyValue]>,
) -> (String, mysql_async::Params) {
    let cols: Vec<String> = state
        .schema
        .columns
        .iter()
        .map(|c| ident(&c.name))
        .collect();
    let from = format!("{}.{}", ident(&table.namespace), ident(&table.name));
    let mut query = format!("SELECT {} FROM {from}", cols.join(", "));
    if state.key.is_empty() {
        return (query, mysql_async::Params::Empty);
    }
    let key: Vec<String> = state.key.iter().map(|i| cols[*i].clone()).collect();
    let mut params = mysql_async::Params::Empty;
    if let Some(after) = after {
        let marks = marks.join(", ");
        query.push_str(&format!(" WHERE ({}) > ({marks})", key.join(", ")));
        params = mysql_async::Params::Positional(after.to_vec());
    }
    query.push_str(&format!(" ORDER BY {} LIMIT {limit}", key.join(", ")));
    (query, params)
}

fn convert_row(table: &TableId, state: &TableState, row: &[MyValue]) -> Result<Vec<Value>> {
    state
        .cells
        .iter()
        .zip(row)
        .zip(&state.schema.columns)
        .map(|((cell, v), column)| {
            convert(v, cell, &column.kind).ok_or_else(|| MySqlError::Schema {
                table: table.to_string(),
                reason: format!(
                    "snapshot: column `{}` ({}) came back as an unexpected kind of value",
                    column.name, column.type_name
                ),
            })
        })
        .collect()
}

/// A value read by the snapshot (binary protocol) to the same [`Value`] the
/// binlog decoder gives for it.
pub fn convert(v: &MyValue, cell: &Cell, kind: &ValueKind) -> Option<Value> {
    Some(match (v, cell) {
        (MyValue::NULL, _) => Value::Null,
        (MyValue::Int(_) | MyValue::UInt(_), Cell::Int { .. } | Cell::Year) => {
            let (i, u) = match v {
                MyValue::Int(i) => (*i, *i as u64),
                MyValue::UInt(u) => (*u as i64, *u),
                _ => return None,
            };
            match kind {
                ValueKind::Int16 => Value::Int16(i16::try_from(i).ok()?),
                ValueKind::Int32 => Value::Int32(i32::try_from(i).ok()?),
                ValueKind::Int64 => Value::Int64(i),
                ValueKind::UInt64 => Value::UInt64(u),
                _ => return None,
            }
        }
        (MyValue::Float(f), Cell::Float) => Value::Float32(*f),
        (MyValue::Double(d), Cell::Double) => Value::Float64(*d),
        (MyValue::Double(d), Cell::Float) => Value::Float32(*d as f32),
        (MyValue::Bytes(b), Cell::Decimal { .. }) => {
            Value::Decimal(std::str::from_utf8(b).ok()?.parse::<Decimal>().ok()?)
        }
        (MyValue::Bytes(b), Cell::Bit { bool, .. }) => {
            if *bool {
                Value::Bool(b.iter().any(|x| *x != 0))
            } else {
                Value::Bytes(b.clone())
            }
        }
        (MyValue::Bytes(b), Cell::Str { charset, .. } | Cell::Blob { charset, .. }) => {
            types::text(b, *charset).ok()?
        }
        (MyValue::Bytes(b), Cell::Json { .. }) => Value::Json(String::from_utf8(b.clone()).ok()?),
        (MyValue::Bytes(b), Cell::Geometry { .. }) => {
            Value::Bytes(b.get(4..).unwrap_or_default().to_vec())
        }
        (MyValue::Bytes(b), Cell::Enum { .. } | Cell::Set { .. }) => {
            Value::Enum(String::from_utf8_lossy(b).into_owned())
        }
        (MyValue::Date(y, m, d, ..), Cell::Date) => {
            types::date(u64::from(*y), u32::from(*m), u32::from(*d)).ok()?
        }
        (
            MyValue::Date(y, m, d, h, mi, s, us),
            Cell::DateTime | Cell::DateTime2 { .. } | Cell::Timestamp | Cell::Timestamp2 { .. },
        ) => {
            let v = types::datetime(
                u64::from(*y),
                u32::from(*m),
                u32::from(*d),
                u64::from(*h),
                u64::from(*mi),
                u64::from(*s),
                i64::from(*us),
            )
            .ok()?;
            match (v, cell) {
                (Value::Timestamp(t), Cell::Timestamp | Cell::Timestamp2 { .. }) => {
                    Value::TimestampTz(t)
                }
                (v, _) => v,
            }
        }
        (MyValue::Time(neg, days, h, m, s, us), Cell::Time | Cell::Time2 { .. }) => {
            let secs =
                ((i64::from(*days) * 24 + i64::from(*h)) * 60 + i64::from(*m)) * 60 + i64::from(*s);
            let micros = secs * MICROS_PER_SECOND + i64::from(*us);
            Value::Time(Time(if *neg { -micros } else { micros }))
        }
        _ => return None,
    })
}
