//! `headwater check` for a MySQL/MariaDB source: the server settings and
//! privileges change data capture needs, each with what to change.

use headwater_core::config::glob_match;
use headwater_core::{Finding, TableId};

use super::config::MySqlConfig;
use super::conn::{number, text, Sql};

fn is_on(value: Option<&str>) -> bool {
    matches!(
        value.map(str::to_ascii_uppercase).as_deref(),
        Some("1" | "ON")
    )
}

async fn variable(sql: &mut Sql, name: &str) -> Option<String> {
    sql.variable(name).await.ok().flatten()
}

/// The captured tables' column names, in column order.
pub async fn captured_columns(
    cfg: &MySqlConfig,
) -> super::error::Result<Vec<(TableId, Vec<String>)>> {
    let mut sql = Sql::connect(&cfg.url).await?;
    let rows = sql
        .text_rows(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        )
        .await?;
    let mut out: Vec<(TableId, Vec<String>)> = Vec::new();
    for row in &rows {
        let (Some(db), Some(table), Some(column)) = (
            row.first().and_then(text),
            row.get(1).and_then(text),
            row.get(2).and_then(text),
        ) else {
            continue;
        };
        let id = TableId::new(db, table);
        if !cfg.tables.iter().any(|g| glob_match(g, &id.to_string())) {
            continue;
        }
        match out.last_mut() {
            Some((last, columns)) if *last == id => columns.push(column),
            _ => out.push((id, vec![column])),
        }
    }
    Ok(out)
}

pub async fn check(cfg: &MySqlConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut sql = match Sql::connect(&cfg.url).await {
        Ok(sql) => sql,
        Err(e) => return vec![Finding::fail(e.to_string())],
    };
    let url = sql.url.clone();
    findings.push(Finding::ok(format!(
        "connected to {url} ({})",
        if sql.mariadb { "MariaDB" } else { "MySQL" }
    )));
    let log_bin = variable(&mut sql, "log_bin").await;
    findings.push(if is_on(log_bin.as_deref()) {
        Finding::ok("log_bin is on")
    } else {
        Finding::fail(format!("{url}: binary logging is off; set log_bin=mysql-bin (and server_id) in the server's configuration and restart it"))
    });
    let format = variable(&mut sql, "binlog_format")
        .await
        .unwrap_or_default();
    findings.push(if format.eq_ignore_ascii_case("ROW") {
        Finding::ok("binlog_format is ROW")
    } else {
        Finding::fail(format!("{url}: binlog_format is {format}; set binlog_format=ROW (SET GLOBAL binlog_format='ROW' and in the configuration file)"))
    });
    let image = variable(&mut sql, "binlog_row_image")
        .await
        .unwrap_or_default();
    findings.push(if image.eq_ignore_ascii_case("FULL") {
        Finding::ok("binlog_row_image is FULL")
    } else {
        Finding::fail(format!("{url}: binlog_row_image is {image}; set binlog_row_image=FULL so updates and deletes carry whole rows"))
    });
    match variable(&mut sql, "binlog_row_metadata").await {
        Some(m) if m.eq_ignore_ascii_case("FULL") => findings.push(Finding::ok("binlog_row_metadata is FULL")),
        Some(m) => findings.push(Finding::warn(format!(
            "{url}: binlog_row_metadata is {m}; set binlog_row_metadata=FULL so each event names its columns (without it a backlog that spans an ALTER TABLE cannot be decoded)"
        ))),
        None => findings.push(Finding::warn(format!(
            "{url}: the server has no binlog_row_metadata (MySQL < 8.0.1, MariaDB < 10.5); column names come from information_schema, so ALTER TABLE while behind is not safe — upgrade if you can"
        ))),
    }
    let server_id = variable(&mut sql, "server_id")
        .await
        .and_then(|s| s.parse::<u32>().ok());
    if server_id == Some(cfg.server_id) {
        findings.push(Finding::fail(format!(
            "server_id {} is the server's own id; choose another server_id for this source",
            cfg.server_id
        )));
    } else {
        let replicas = match sql.text_rows("SHOW SLAVE HOSTS").await {
            Ok(rows) => Some(rows),
            Err(_) => sql.text_rows("SHOW REPLICAS").await.ok(),
        };
        let taken = replicas
            .iter()
            .flatten()
            .any(|row| row.first().and_then(number) == Some(u64::from(cfg.server_id)));
        findings.push(if taken {
            Finding::warn(format!(
                "a replica with server_id {} is connected to {url}; unless it is this source already running, choose a server_id no other replica uses",
                cfg.server_id
            ))
        } else {
            Finding::ok(format!("server_id {} is not used by another replica", cfg.server_id))
        });
    }
    findings.extend(privileges(&mut sql).await);
    findings
}

async fn privileges(sql: &mut Sql) -> Vec<Finding> {
    let grants = match sql.text_rows("SHOW GRANTS FOR CURRENT_USER()").await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.first().and_then(text))
            .collect::<Vec<_>>()
            .join("\n")
            .to_ascii_uppercase(),
        Err(e) => return vec![Finding::warn(format!("cannot read the user's grants: {e}"))],
    };
    let mariadb = sql.mariadb;
    let all = grants.contains("GRANT ALL PRIVILEGES ON *.*");
    let has = |p: &str| all || grants.contains(p);
    let mut out = Vec::new();
    let mut need = |ok: bool, name: &str, why: &str, fail: bool| {
        out.push(if ok {
            Finding::ok(format!("privilege {name} granted"))
        } else if fail {
            Finding::fail(format!(
                "the user lacks {name} ({why}); GRANT {name} ON *.* TO the user"
            ))
        } else {
            Finding::warn(format!(
                "the user lacks {name} ({why}); GRANT {name} ON *.* TO the user"
            ))
        });
    };
    need(
        has("REPLICATION SLAVE"),
        "REPLICATION SLAVE",
        "needed to read the binlog",
        true,
    );
    need(
        has("REPLICATION CLIENT") || has("BINLOG MONITOR") || has("SUPER"),
        "REPLICATION CLIENT",
        "needed to read the binlog position",
        true,
    );
    need(
        has("SELECT"),
        "SELECT",
        "needed for the snapshot and table schemas",
        true,
    );
    need(
        has("RELOAD"),
        "RELOAD",
        "snapshot_locking = \"global\" takes a brief global read lock with it; without it \"auto\" locks the captured tables instead (LOCK TABLES) on MySQL, and MariaDB needs no lock",
        false,
    );
    if !mariadb && !has("RELOAD") {
        need(
            has("LOCK TABLES"),
            "LOCK TABLES",
            "without RELOAD the snapshot locks the captured tables for a moment instead; GRANT LOCK TABLES ON each captured database also works",
            false,
        );
    }
    out
}
