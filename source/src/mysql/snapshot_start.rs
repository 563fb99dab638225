//! The start of a snapshot: a transaction with a consistent read view and
//! the binlog position (and GTID set) that view corresponds to, so the
//! snapshot's rows and the stream after that position meet without gap or
//! overlap. How the two are pinned together is `snapshot_locking`:
//!
//! - `global`: `FLUSH TABLES WITH READ LOCK` (RELOAD) stops every commit on
//!   the server while the position is read and `START TRANSACTION WITH
//!   CONSISTENT SNAPSHOT` opens the read view; then `UNLOCK TABLES`.
//! - `tables`: without RELOAD. `LOCK TABLES … READ` on the captured tables
//!   only — on a *second* connection, because on the snapshot connection
//!   `START TRANSACTION` would release the table locks and `UNLOCK TABLES`
//!   would commit the snapshot transaction. The lock waits until every
//!   transaction that wrote a captured table has ended (it holds the
//!   table's metadata lock until after its commit) and keeps new writers
//!   out, so while it is held the captured tables do not change: the
//!   position read then and the read view opened then (on the snapshot
//!   connection) agree on them. Transactions on other tables go on and may
//!   land on either side of the position — the stream ignores them. The
//!   lock is released as soon as the read view exists, not held through
//!   the reads as Debezium does.
//! - `none`: MariaDB's snapshot transaction reports the binlog position it
//!   corresponds to (`binlog_snapshot_file` / `binlog_snapshot_position`),
//!   and `BINLOG_GTID_POS` turns that into the GTID state: no lock at all.
//!   MySQL has no such status, so `none` is refused there (a position read
//!   beside the read view can miss a transaction that is in the binlog but
//!   not yet visible).

use headwater_core::TableId;
use tracing::info;

use super::config::{MySqlConfig, SnapshotLocking};
use super::conn::{ident, number, text, Sql};
use super::error::{codes, MySqlError, Result};
use super::gtid::{Gtids, MariaDbGtids, MySqlGtids};
use super::stream::Start;

/// An open snapshot transaction on the connection given to [`begin`], and
/// where streaming continues after it.
#[derive(Debug)]
pub struct Begun {
    pub start: Start,
    /// The method used (`Auto` resolved).
    pub locking: SnapshotLocking,
}

/// Opens the snapshot transaction on `sql` (REPEATABLE READ already set)
/// and returns the position it corresponds to. `tables`: the captured
/// tables (what `tables` locks).
pub async fn begin(cfg: &MySqlConfig, sql: &mut Sql, tables: &[TableId]) -> Result<Begun> {
    // a lock request waiting behind a long transaction makes every later
    // writer wait too: give up early (the source retries with backoff)
    sql.execute(&lock_timeout(cfg)).await?;
    let (start, locking) = match cfg.snapshot_locking {
        SnapshotLocking::Auto if sql.mariadb => (without_lock(sql).await?, SnapshotLocking::None),
        SnapshotLocking::Auto => match global_lock(sql).await {
            Err(e) if access_denied(&e) => {
                info!("mysql: the user may not take the global read lock (no RELOAD); locking the captured tables instead");
                (table_locks(cfg, sql, tables).await?, SnapshotLocking::Tables)
            }
            other => (other?, SnapshotLocking::Global),
        },
        SnapshotLocking::Global => match global_lock(sql).await {
            Err(e) if access_denied(&e) => {
                return Err(denied(sql, &e, "snapshot_locking = \"global\" takes a brief global read lock (FLUSH TABLES WITH READ LOCK), which the user may not take; GRANT RELOAD ON *.* TO the user, or set snapshot_locking = \"tables\" (needs LOCK TABLES) or \"auto\""))
            }
            other => (other?, SnapshotLocking::Global),
        },
        SnapshotLocking::Tables => (table_locks(cfg, sql, tables).await?, SnapshotLocking::Tables),
        SnapshotLocking::None if sql.mariadb => (without_lock(sql).await?, SnapshotLocking::None),
        SnapshotLocking::None => {
            return Err(MySqlError::Config(
                "snapshot_locking = \"none\" needs MariaDB (its snapshot transaction reports its binlog position); on MySQL use \"global\" (RELOAD), \"tables\" (LOCK TABLES) or \"auto\"".into(),
            ))
        }
    };
    // the chunk SELECTs of a long snapshot wait as long as the server allows
    sql.execute("SET SESSION lock_wait_timeout = DEFAULT")
        .await?;
    info!(position = %start.position_text(), locking = ?locking, "mysql: snapshot transaction open");
    Ok(Begun { start, locking })
}

fn lock_timeout(cfg: &MySqlConfig) -> String {
    format!(
        "SET SESSION lock_wait_timeout = {}",
        cfg.snapshot_lock_timeout.0.as_secs().max(1)
    )
}

fn access_denied(e: &MySqlError) -> bool {
    matches!(e, MySqlError::Query { source: mysql_async::Error::Server(s), .. }
        if matches!(s.code, codes::SPECIFIC_ACCESS_DENIED | codes::ACCESS_DENIED | codes::DB_ACCESS_DENIED | codes::TABLE_ACCESS_DENIED))
}

fn denied(sql: &Sql, e: &MySqlError, what: &str) -> MySqlError {
    let detail = match e {
        MySqlError::Query {
            source: mysql_async::Error::Server(s),
            ..
        } => s.message.clone(),
        other => other.to_string(),
    };
    MySqlError::Prerequisite {
        url: sql.url.clone(),
        reason: format!("{what} (server said: {detail})"),
    }
}

/// `FLUSH TABLES WITH READ LOCK`, position, read view, `UNLOCK TABLES`.
async fn global_lock(sql: &mut Sql) -> Result<Start> {
    sql.execute("FLUSH TABLES WITH READ LOCK").await?;
    let position = binlog_position(sql).await;
    let begun = sql
        .execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await;
    sql.execute("UNLOCK TABLES").await?;
    begun?;
    with_gtids(sql, position?).await
}

/// `LOCK TABLES … READ` on a second connection around the position and
/// the read view of `sql`.
async fn table_locks(cfg: &MySqlConfig, sql: &mut Sql, tables: &[TableId]) -> Result<Start> {
    if tables.is_empty() {
        // nothing captured exists yet: nothing to keep consistent
        let start = current_position(sql).await?;
        sql.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await?;
        return Ok(start);
    }
    let mut lock = Sql::connect(&cfg.url).await?;
    lock.execute(&lock_timeout(cfg)).await?;
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{}.{} READ", ident(&t.namespace), ident(&t.name)))
        .collect();
    let statement = format!("LOCK TABLES {}", list.join(", "));
    if let Err(e) = lock.execute(&statement).await {
        if access_denied(&e) {
            return Err(denied(&lock, &e, "snapshot_locking = \"tables\" locks the captured tables for a moment (LOCK TABLES … READ), which the user may not do; GRANT LOCK TABLES ON each captured database (`GRANT LOCK TABLES ON shop.* TO …`), or GRANT RELOAD ON *.* and use \"global\""));
        }
        return Err(e);
    }
    let position = binlog_position(&mut lock).await;
    let begun = match &position {
        Ok(_) => {
            sql.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await
        }
        Err(_) => Ok(()),
    };
    let unlocked = lock.execute("UNLOCK TABLES").await;
    let _ = lock.conn.disconnect().await;
    let position = position?;
    begun?;
    unlocked?;
    with_gtids(sql, position).await
}

/// MariaDB: the snapshot transaction's own binlog position.
async fn without_lock(sql: &mut Sql) -> Result<Start> {
    sql.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let rows = sql
        .text_rows("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await?;
    let status = |name: &str| {
        rows.iter()
            .find(|r| {
                r.first()
                    .and_then(text)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|r| r.get(1).and_then(text))
    };
    let (Some(file), Some(offset)) = (
        status("binlog_snapshot_file").filter(|f| !f.is_empty()),
        status("binlog_snapshot_position").and_then(|p| p.parse::<u64>().ok()),
    ) else {
        return Err(MySqlError::Prerequisite {
            url: sql.url.clone(),
            reason: "the server does not report the binlog position of a snapshot transaction (binlog_snapshot_file); is binary logging on? Or set snapshot_locking = \"global\" or \"tables\"".into(),
        });
    };
    let gtids = gtids_at(sql, &file, offset).await?;
    Ok(Start::at(file, offset, gtids))
}

/// The server's current binlog position and executed GTID set, read
/// together (MySQL: one `SHOW MASTER STATUS` row; MariaDB: the GTID state
/// at that very position).
pub async fn current_position(sql: &mut Sql) -> Result<Start> {
    let position = binlog_position(sql).await?;
    with_gtids(sql, position).await
}

/// A binlog file and offset, with MySQL's executed GTID set from the same
/// row (MariaDB's comes from [`with_gtids`]).
type BinlogPosition = (String, u64, Option<Gtids>);

/// `SHOW MASTER STATUS`: quick, so it is what runs under a lock.
async fn binlog_position(sql: &mut Sql) -> Result<BinlogPosition> {
    let rows = match sql.text_rows("SHOW MASTER STATUS").await {
        Ok(rows) => rows,
        Err(_) => sql.text_rows("SHOW BINARY LOG STATUS").await?,
    };
    let row = rows.first().ok_or_else(|| MySqlError::Prerequisite {
        url: sql.url.clone(),
        reason: "SHOW MASTER STATUS returned nothing: binary logging is off; set log_bin (and binlog_format=ROW) and restart the server".into(),
    })?;
    let file = row.first().and_then(text).unwrap_or_default();
    let offset = row.get(1).and_then(number).unwrap_or(4);
    let gtids = if sql.mariadb {
        None
    } else if mysql_gtid_mode(sql).await {
        // Executed_Gtid_Set, from the same row as the position
        match row.get(4).and_then(text) {
            Some(set) => MySqlGtids::parse(&set.replace('\n', "")).map(Gtids::MySql),
            None => gtids(sql).await?,
        }
    } else {
        None
    };
    Ok((file, offset, gtids))
}

/// The start at `position`; on MariaDB with the GTID state there, read
/// after any lock is released (`BINLOG_GTID_POS` scans the binlog file).
async fn with_gtids(sql: &mut Sql, (file, offset, gtids): BinlogPosition) -> Result<Start> {
    let gtids = if sql.mariadb {
        gtids_at(sql, &file, offset).await?
    } else {
        gtids
    };
    Ok(Start::at(file, offset, gtids))
}

/// MariaDB: the GTID state at a binlog position (`BINLOG_GTID_POS`); the
/// server's current state when it cannot say.
async fn gtids_at(sql: &mut Sql, file: &str, offset: u64) -> Result<Option<Gtids>> {
    let rows = sql
        .rows("SELECT BINLOG_GTID_POS(?, ?)", (file, offset))
        .await?;
    match rows.first().and_then(|r| r.first()).and_then(text) {
        Some(pos) => Ok(MariaDbGtids::parse(&pos).map(Gtids::MariaDb)),
        None => gtids(sql).await,
    }
}

async fn mysql_gtid_mode(sql: &mut Sql) -> bool {
    sql.variable("gtid_mode")
        .await
        .ok()
        .flatten()
        .is_some_and(|m| m.eq_ignore_ascii_case("ON"))
}

/// The executed GTID set (`None` when MySQL runs without GTIDs).
pub async fn gtids(sql: &mut Sql) -> Result<Option<Gtids>> {
    if sql.mariadb {
        let pos = sql.variable("gtid_binlog_pos").await?.unwrap_or_default();
        return Ok(MariaDbGtids::parse(&pos).map(Gtids::MariaDb));
    }
    if !mysql_gtid_mode(sql).await {
        return Ok(None);
    }
    let executed = sql.variable("gtid_executed").await?.unwrap_or_default();
    Ok(MySqlGtids::parse(&executed.replace('\n', "")).map(Gtids::MySql))
}
