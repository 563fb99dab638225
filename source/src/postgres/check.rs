//! `headwater check` for a PostgreSQL source: every prerequisite probed,
//! each problem said with its fix.

use headwater_core::{Finding, TableId};
use tokio_postgres::Client;

use crate::postgres::config::PostgresConfig;
use crate::postgres::conn::{sql_connect, ConnParams};
use crate::postgres::error::PgError;
use crate::postgres::slot;

/// Retained WAL above this is worth a warning.
const RETAINED_WARN_BYTES: i64 = 1 << 30;

pub async fn check(name: &str, config: &PostgresConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    let params = match ConnParams::from_url(&config.url) {
        Ok(p) => p,
        Err(e) => return vec![Finding::fail(e.to_string())],
    };
    let client = match sql_connect(&params).await {
        Ok(c) => {
            findings.push(Finding::ok(format!(
                "connected to {} as `{}`",
                params.target(),
                params.user
            )));
            c
        }
        Err(e) => {
            findings.push(Finding::fail(e.to_string()));
            return findings;
        }
    };
    if let Err(e) = probe(&client, name, config, &params, &mut findings).await {
        findings.push(Finding::fail(e.to_string()));
    }
    findings
}

/// The captured tables' column names, in column order.
pub async fn captured_columns(
    config: &PostgresConfig,
) -> Result<Vec<(TableId, Vec<String>)>, PgError> {
    let client = sql_connect(&ConnParams::from_url(&config.url)?).await?;
    let mut out = Vec::new();
    for table in slot::resolve_tables(&client, &config.tables).await? {
        let rows = client
            .query(
                "SELECT attname::text FROM pg_attribute \
                 WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&table.oid],
            )
            .await
            .map_err(|e| PgError::sql(format!("reading the columns of {}", table.id), e))?;
        out.push((table.id, rows.iter().map(|r| r.get(0)).collect()));
    }
    Ok(out)
}

async fn probe(
    client: &Client,
    name: &str,
    config: &PostgresConfig,
    params: &ConnParams,
    findings: &mut Vec<Finding>,
) -> Result<(), PgError> {
    let user = params.user.as_str();
    let level = slot::wal_level(client).await?;
    findings.push(if level == "logical" {
        Finding::ok("wal_level is logical")
    } else {
        Finding::fail(PgError::WalLevel { current: level }.to_string())
    });

    let replication: bool = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| PgError::sql("reading role attributes", e))?
        .get(0);
    findings.push(if replication {
        Finding::ok(format!("role `{user}` may replicate"))
    } else {
        Finding::fail(PgError::NoReplication { user: user.into() }.to_string())
    });

    let mut tables = Vec::new();
    for pattern in &config.tables {
        match slot::resolve_tables(client, std::slice::from_ref(pattern)).await {
            Ok(found) => tables.extend(found),
            Err(e @ PgError::NoTable { .. }) => findings.push(Finding::fail(e.to_string())),
            Err(e) => return Err(e),
        }
    }
    for table in &tables {
        let row = client
            .query_one(
                "SELECT c.relreplident::text, \
                 EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), \
                 has_table_privilege(c.oid, 'SELECT') FROM pg_class c WHERE c.oid = $1",
                &[&table.oid],
            )
            .await
            .map_err(|e| PgError::sql(format!("reading table {}", table.id), e))?;
        let ident: String = row.get(0);
        let has_pk: bool = row.get(1);
        let select: bool = row.get(2);
        let t = &table.id;
        if !select {
            findings.push(Finding::fail(
                PgError::NoSelect {
                    user: user.into(),
                    table: table.quoted(),
                }
                .to_string(),
            ));
        }
        findings.push(match (ident.as_str(), has_pk) {
            ("n", _) => Finding::warn(format!("table {t} has REPLICA IDENTITY NOTHING: its UPDATEs and DELETEs fail while it is published; run `ALTER TABLE {} REPLICA IDENTITY DEFAULT` (with a primary key) or `FULL`", table.quoted())),
            ("d", false) => Finding::warn(format!("table {t} has no primary key: its UPDATEs and DELETEs fail while it is published and events have no key; add a primary key or run `ALTER TABLE {} REPLICA IDENTITY FULL`", table.quoted())),
            ("f", _) => Finding::ok(format!("table {t}: REPLICA IDENTITY FULL (before-images of whole rows)")),
            _ => Finding::ok(format!("table {t}: replica identity by key")),
        });
    }

    let slot_name = crate::postgres::claim::slot_name(name, config, &params.dbname).await;
    match slot::slot_info(client, &slot_name).await? {
        None => findings.push(Finding::ok(format!(
            "slot `{slot_name}` does not exist yet; it is created on start"
        ))),
        Some(info) => {
            let retained = info.retained_bytes.unwrap_or(0);
            if let Err(e) = slot::usable(&slot_name, &info) {
                findings.push(match e {
                    PgError::SlotActive { .. } => Finding::warn(e.to_string()),
                    _ => Finding::fail(e.to_string()),
                });
            } else if info.plugin.as_deref() != Some("pgoutput") {
                findings.push(Finding::fail(format!(
                    "slot `{slot_name}` uses plugin {:?}, not pgoutput; drop it or configure another `slot`",
                    info.plugin
                )));
            } else if retained > RETAINED_WARN_BYTES {
                findings.push(Finding::warn(format!(
                    "slot `{slot_name}` holds {} MiB of WAL (wal_status {}); start the source so it catches up, or drop the slot if it is abandoned",
                    retained >> 20,
                    info.wal_status.as_deref().unwrap_or("?")
                )));
            } else {
                findings.push(Finding::ok(format!(
                    "slot `{slot_name}` is ready at {} and holds {} KiB of WAL",
                    info.confirmed_flush.unwrap_or_default(),
                    retained >> 10
                )));
            }
        }
    }
    let publication = config.publication_name(name);
    findings.push(match slot::publication_tables(client, &publication).await? {
        None => Finding::ok(format!("publication `{publication}` does not exist yet; it is created on start")),
        Some(oids) => {
            let missing = tables.iter().filter(|t| !oids.contains(&t.oid)).count();
            if missing == 0 {
                Finding::ok(format!("publication `{publication}` covers every table"))
            } else {
                Finding::ok(format!("publication `{publication}` lacks {missing} configured table(s); they are snapshotted and added on start"))
            }
        }
    });
    Ok(())
}
