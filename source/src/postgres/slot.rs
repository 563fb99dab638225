//! The replication slot and the publication, and the tables the config's
//! globs name.

use headwater_core::config::glob_match;
use headwater_core::{Lsn, TableId};
use tokio_postgres::Client;

use crate::postgres::error::{PgError, PgResult};
use crate::postgres::replication::quote_ident;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    pub oid: u32,
    pub id: TableId,
}

impl TableRef {
    /// `"schema"."table"`, for SQL.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.id.namespace),
            quote_ident(&self.id.name)
        )
    }
}

#[derive(Clone, Debug)]
pub struct SlotInfo {
    pub active_pid: Option<i32>,
    pub wal_status: Option<String>,
    pub confirmed_flush: Option<Lsn>,
    pub restart_lsn: Option<Lsn>,
    pub plugin: Option<String>,
    pub database: Option<String>,
    /// Bytes of WAL the slot keeps from being removed.
    pub retained_bytes: Option<i64>,
}

fn lsn(text: Option<String>) -> Option<Lsn> {
    text.and_then(|t| t.parse().ok())
}

pub async fn wal_level(client: &Client) -> PgResult<String> {
    let row = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|e| PgError::sql("reading wal_level", e))?;
    Ok(row.get(0))
}

pub async fn slot_info(client: &Client, slot: &str) -> PgResult<Option<SlotInfo>> {
    let row = client
        .query_opt(
            "SELECT active_pid, wal_status, confirmed_flush_lsn::text, restart_lsn::text, \
             plugin::text, database::text, \
             (pg_current_wal_lsn() - restart_lsn)::int8 \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| PgError::sql(format!("reading replication slot `{slot}`"), e))?;
    Ok(row.map(|r| SlotInfo {
        active_pid: r.get(0),
        wal_status: r.get(1),
        confirmed_flush: lsn(r.get(2)),
        restart_lsn: lsn(r.get(3)),
        plugin: r.get(4),
        database: r.get(5),
        retained_bytes: r.get(6),
    }))
}

/// Fails when the slot cannot be used: active elsewhere or invalidated.
pub fn usable(slot: &str, info: &SlotInfo) -> PgResult<()> {
    if info.wal_status.as_deref() == Some("lost") {
        return Err(PgError::SlotInvalidated {
            slot: slot.to_owned(),
            confirmed_flush: info.confirmed_flush,
        });
    }
    if let Some(pid) = info.active_pid {
        return Err(PgError::SlotActive {
            slot: slot.to_owned(),
            pid,
        });
    }
    Ok(())
}

pub async fn drop_slot(client: &Client, slot: &str) -> PgResult<()> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| PgError::sql(format!("dropping replication slot `{slot}`"), e))?;
    Ok(())
}

/// Every ordinary or partitioned table matching one of `patterns`
/// (`schema.table` globs), in pattern order; a pattern matching nothing is
/// an error.
pub async fn resolve_tables(client: &Client, patterns: &[String]) -> PgResult<Vec<TableRef>> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 2, 3",
            &[],
        )
        .await
        .map_err(|e| PgError::sql("listing tables", e))?;
    let all: Vec<TableRef> = rows
        .iter()
        .map(|r| TableRef {
            oid: r.get(0),
            id: TableId::new(r.get::<_, String>(1), r.get::<_, String>(2)),
        })
        .collect();
    let mut out: Vec<TableRef> = Vec::new();
    for pattern in patterns {
        let mut matched = false;
        for table in &all {
            if glob_match(pattern, &table.id.to_string()) {
                matched = true;
                if !out.contains(table) {
                    out.push(table.clone());
                }
            }
        }
        if !matched {
            return Err(PgError::NoTable {
                pattern: pattern.clone(),
            });
        }
    }
    Ok(out)
}

/// The tables in the publication, or `None` when it does not exist.
pub async fn publication_tables(client: &Client, publication: &str) -> PgResult<Option<Vec<u32>>> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| PgError::sql(format!("reading publication `{publication}`"), e))?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT (quote_ident(schemaname) || '.' || quote_ident(tablename))::regclass::oid \
             FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| PgError::sql(format!("reading publication `{publication}`"), e))?;
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

/// Creates the publication with `comment` (who owns it) in one
/// transaction, so no publication of ours is ever left unmarked.
pub async fn create_publication(
    client: &Client,
    publication: &str,
    tables: &[TableRef],
    comment: &str,
) -> PgResult<()> {
    let list: Vec<String> = tables.iter().map(TableRef::quoted).collect();
    let sql = format!(
        "CREATE PUBLICATION {p} FOR TABLE {} WITH (publish_via_partition_root = true); \
         COMMENT ON PUBLICATION {p} IS '{}'",
        list.join(", "),
        comment.replace('\'', "''"),
        p = quote_ident(publication),
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| PgError::sql(format!("creating publication `{publication}`"), e))?;
    tracing::info!(%publication, tables = tables.len(), "created publication");
    Ok(())
}

pub async fn drop_from_publication(
    client: &Client,
    publication: &str,
    table_oid: u32,
) -> PgResult<()> {
    let name: String = client
        .query_one("SELECT $1::oid::regclass::text", &[&table_oid])
        .await
        .map_err(|e| PgError::sql("naming a table", e))?
        .get(0);
    client
        .batch_execute(&format!(
            "ALTER PUBLICATION {} DROP TABLE {name}",
            quote_ident(publication)
        ))
        .await
        .map_err(|e| {
            PgError::sql(
                format!("removing {name} from publication `{publication}`"),
                e,
            )
        })?;
    tracing::info!(%publication, table = %name, "table left the configuration: removed from the publication");
    Ok(())
}
