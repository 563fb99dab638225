//! [`PostgresSource`]: prepares the slot, the publication and the snapshot,
//! then streams.

use std::sync::Arc;

use async_trait::async_trait;
use headwater_core::{
    Appender, EventBatch, Finding, Lsn, PgPosition, Position, Source, SourceContext, TableId,
};
use tokio_postgres::Client;
use tracing::Instrument;

use crate::postgres::claim::{self, claim, Claim};
use crate::postgres::config::{BinaryMode, PostgresConfig, SnapshotMode};
use crate::postgres::conn::{sql_connect, ConnParams};
use crate::postgres::decode::Decoder;
use crate::postgres::error::{PgError, PgResult};
use crate::postgres::identity::{mark_publication, PublicationOwner};
use crate::postgres::replication::{quote_ident, ReplicationConn, StartOptions};
use crate::postgres::slot::{self, TableRef};
use crate::postgres::snapshot::copy_table;
use crate::postgres::stream::{StreamSettings, Streamer};
use crate::postgres::types::catalog::{describe, relation_from_catalog, RelInfo};
use crate::postgres::versions::SchemaVersions;

/// A PostgreSQL source: `PostgresSource::new("shop", config)`, then run it
/// as a [`Source`].
pub struct PostgresSource {
    name: Arc<str>,
    config: PostgresConfig,
}

impl PostgresSource {
    pub fn new(name: impl Into<Arc<str>>, config: PostgresConfig) -> Self {
        PostgresSource {
            name: name.into(),
            config,
        }
    }

    /// The slot this source uses: configured, recorded in its state
    /// directory, or the default for its database.
    pub async fn slot(&self) -> PgResult<String> {
        let params = ConnParams::from_url(&self.config.url)?;
        Ok(claim::slot_name(&self.name, &self.config, &params.dbname).await)
    }
}

#[async_trait]
impl Source for PostgresSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> headwater_core::Result<()> {
        let span = tracing::info_span!("pg_source", source = %self.name);
        let shutdown = ctx.shutdown.clone();
        let result = Box::pin(run(&self, ctx).instrument(span)).await;
        // Only a requested shutdown is a clean stop: anything else ending
        // the stream is an error the supervisor restarts and shows.
        match result {
            Ok(()) | Err(PgError::Cancelled) if shutdown.is_cancelled() => Ok(()),
            Ok(()) | Err(PgError::Cancelled) => Err(PgError::HelperEnded {
                task: "stream",
                reason: "it stopped without a shutdown".into(),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn check(&self) -> Vec<Finding> {
        crate::postgres::check::check(&self.name, &self.config).await
    }

    async fn captured_columns(&self) -> Option<Vec<(TableId, Vec<String>)>> {
        crate::postgres::check::captured_columns(&self.config)
            .await
            .ok()
    }
}

async fn describe_tables(
    client: &Client,
    decoder: &mut Decoder,
    tables: &[TableRef],
) -> PgResult<Vec<RelInfo>> {
    let mut infos = Vec::with_capacity(tables.len());
    for table in tables {
        let relation = relation_from_catalog(client, table.oid).await?;
        let info = describe(client, &mut decoder.types, &relation, 0).await?;
        infos.push(decoder.seed(info));
    }
    decoder.versions.persist().await?;
    Ok(infos)
}

async fn run(source: &PostgresSource, ctx: SourceContext) -> PgResult<()> {
    let params = ConnParams::from_url(&source.config.url)?;
    run_as(source, ctx, &params).await.map_err(|e| match e {
        PgError::NoSelect { table, .. } => PgError::NoSelect {
            user: params.user.clone(),
            table,
        },
        other => other,
    })
}

/// Everything the streaming loop starts from.
struct Prepared {
    decoder: Decoder,
    client: Arc<Client>,
    stream: crate::postgres::replication::CopyBoth,
    settings: StreamSettings,
}

async fn run_as(source: &PostgresSource, ctx: SourceContext, params: &ConnParams) -> PgResult<()> {
    // Shutdown during preparation (a long snapshot) stops at once; a
    // snapshot cut short is taken again on the next start.
    let prepared = tokio::select! {
        prepared = prepare(source, &ctx, params) => prepared?,
        _ = ctx.shutdown.cancelled() => return Err(PgError::Cancelled),
    };
    let Prepared {
        decoder,
        client,
        stream,
        settings,
    } = prepared;
    Streamer::run(
        decoder,
        client,
        stream,
        ctx.appender,
        settings,
        ctx.shutdown,
    )
    .await
}

async fn prepare(
    source: &PostgresSource,
    ctx: &SourceContext,
    params: &ConnParams,
) -> PgResult<Prepared> {
    let config = &source.config;
    let client = Arc::new(sql_connect(params).await?);
    let level = slot::wal_level(&client).await?;
    if level != "logical" {
        return Err(PgError::WalLevel { current: level });
    }
    let tables = slot::resolve_tables(&client, &config.tables).await?;
    let appender = ctx.appender.clone();
    let durable = match appender.durable_checkpoint() {
        Some(Position::Postgres(p)) => Some(p.commit_lsn),
        _ => None,
    };
    let Claim {
        identity,
        existing,
        publication: owner,
        manage_publication,
    } = claim(
        &source.name,
        config,
        &client,
        &params.dbname,
        durable.is_some(),
    )
    .await?;
    let (slot_name, publication) = (identity.slot.clone(), identity.publication.clone());
    tracing::info!(slot = %slot_name, %publication, "replication slot and publication");

    // The publication must exist before the slot, so every change the slot
    // decodes can be checked against it.
    let mut added: Vec<TableRef> = Vec::new();
    match owner {
        None => {
            slot::create_publication(&client, &publication, &tables, &identity.comment()).await?
        }
        Some(owner) => {
            let oids = slot::publication_tables(&client, &publication)
                .await?
                .unwrap_or_default();
            let missing = tables.iter().filter(|t| !oids.contains(&t.oid));
            if manage_publication {
                if owner != PublicationOwner::Headwater(identity.source_id.clone()) {
                    mark_publication(&client, &publication, &identity).await?;
                }
                for oid in &oids {
                    if !tables.iter().any(|t| t.oid == *oid) {
                        slot::drop_from_publication(&client, &publication, *oid).await?;
                    }
                }
                added = missing.cloned().collect();
            } else {
                for table in missing {
                    tracing::warn!(%publication, table = %table.id, "the publication was not made by Headwater, which leaves it as it is: this table's changes are not captured until it is added (`ALTER PUBLICATION {publication} ADD TABLE {}`)", table.quoted());
                }
            }
        }
    }

    let mut decoder = Decoder::new(source.name.clone());
    if let Some(dir) = &config.state_dir {
        decoder.versions = SchemaVersions::load(dir).await?;
    }
    let infos = describe_tables(&client, &mut decoder, &tables).await?;
    let mut repl = ReplicationConn::connect(params).await?;
    let version = repl.conn.server_version;
    let (start, start_flush) = match existing {
        None => {
            let export = config.snapshot == SnapshotMode::Initial;
            let created = repl.create_slot(&slot_name, export).await?;
            tracing::info!(slot = %slot_name, consistent_point = %created.consistent_point, "created replication slot");
            if let (true, Some(snapshot)) = (export, &created.snapshot_name) {
                initial_snapshot(
                    source,
                    &client,
                    &tables,
                    &infos,
                    snapshot,
                    created.consistent_point,
                    &appender,
                )
                .await?;
            }
            config.resnapshot.done();
            (created.consistent_point, created.consistent_point)
        }
        Some(info) => {
            let confirmed = info.confirmed_flush.unwrap_or_default();
            for table in &added {
                let info = infos
                    .iter()
                    .find(|i| i.relation.oid == table.oid)
                    .ok_or_else(|| PgError::protocol("snapshot", "a table lost its description"))?;
                add_table(
                    source,
                    &client,
                    &publication,
                    table,
                    info,
                    confirmed,
                    &appender,
                )
                .await?;
            }
            (Lsn(0), confirmed)
        }
    };

    let all_binary = infos.iter().all(|i| i.types.iter().all(|t| t.binary_ok()));
    let binary = match config.binary {
        BinaryMode::Off => false,
        BinaryMode::On => {
            if !all_binary {
                tracing::warn!("binary = \"on\" but a captured column has a type only text mode carries exactly; streaming in text");
            }
            version >= 140000 && all_binary
        }
        BinaryMode::Auto => version >= 140000 && all_binary,
    };
    let streaming = config.streaming && version >= 140000;
    let options = StartOptions {
        proto_version: if streaming { 2 } else { 1 },
        publication,
        binary,
        messages: version >= 140000,
        streaming,
    };
    tracing::info!(start = %start, binary, streaming, resume_after = ?durable, "starting replication");
    let stream = repl.start(&slot_name, start, &options).await?;
    let settings = StreamSettings {
        source: source.name.clone(),
        heartbeat: config.heartbeat.0,
        max_batch_events: config.max_batch_events,
        stream_buffer: usize::try_from(config.stream_buffer.0).unwrap_or(usize::MAX),
        spill_dir: config.spill_dir.clone().unwrap_or_else(std::env::temp_dir),
        resume_after: durable,
        start_flush,
    };
    Ok(Prepared {
        decoder,
        client,
        stream,
        settings,
    })
}

async fn initial_snapshot(
    source: &PostgresSource,
    client: &Client,
    tables: &[TableRef],
    infos: &[RelInfo],
    snapshot: &str,
    consistent_point: Lsn,
    appender: &Arc<dyn Appender>,
) -> PgResult<()> {
    let started = std::time::Instant::now();
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            snapshot.replace('\'', "''")
        ))
        .await
        .map_err(|e| PgError::sql(format!("importing the slot's snapshot {snapshot}"), e))?;
    let position = PgPosition {
        commit_lsn: consistent_point,
        lsn: Lsn(0),
    };
    let mut total = 0;
    for (done, (table, info)) in tables.iter().zip(infos).enumerate() {
        let (rows, _) = copy_table(
            client,
            &source.name,
            table,
            info,
            position,
            appender,
            source.config.max_batch_events,
        )
        .await?;
        total += rows;
        tracing::info!(
            tables_done = done + 1,
            tables = tables.len(),
            rows = total,
            seconds = started.elapsed().as_secs_f64(),
            "initial snapshot progress"
        );
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| PgError::sql("ending the snapshot transaction", e))?;
    // The snapshot is complete once this checkpoint is durable.
    appender
        .append(EventBatch {
            events: Vec::new(),
            checkpoint: Some(Position::Postgres(position)),
        })
        .await?
        .await?;
    tracing::info!(rows = total, tables = tables.len(), consistent_point = %consistent_point, seconds = started.elapsed().as_secs_f64(), "initial snapshot done");
    Ok(())
}

/// Snapshots a table added to the configuration and adds it to the
/// publication, in one transaction that holds writers off (see
/// `snapshot.rs`).
async fn add_table(
    source: &PostgresSource,
    client: &Client,
    publication: &str,
    table: &TableRef,
    info: &RelInfo,
    at: Lsn,
    appender: &Arc<dyn Appender>,
) -> PgResult<()> {
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; LOCK TABLE {t} IN SHARE MODE; ALTER PUBLICATION {p} ADD TABLE {t}",
        t = table.quoted(),
        p = quote_ident(publication)
    );
    client.batch_execute(&begin).await.map_err(|e| {
        PgError::sql(
            format!("adding table {} to publication `{publication}`", table.id),
            e,
        )
    })?;
    let result = async {
        if source.config.snapshot == SnapshotMode::Initial {
            let position = PgPosition {
                commit_lsn: at,
                lsn: Lsn(0),
            };
            let (_, last) = copy_table(
                client,
                &source.name,
                table,
                info,
                position,
                appender,
                source.config.max_batch_events,
            )
            .await?;
            last.await?;
        }
        client.batch_execute("COMMIT").await.map_err(|e| {
            PgError::sql(
                format!("adding table {} to publication `{publication}`", table.id),
                e,
            )
        })
    }
    .await;
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result?;
    tracing::info!(table = %table.id, %publication, "new table snapshotted and added to the publication");
    Ok(())
}
