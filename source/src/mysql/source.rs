//! [`MySqlSource`]: one attempt (snapshot or resume, then stream) behind
//! the [`Source`] trait; the supervisor restarts it after an error.

use std::sync::Arc;

use async_trait::async_trait;
use headwater_core::{Finding, MySqlPosition, Position, Source, SourceContext, TableId};
use tracing::{debug, info, Instrument};

use super::config::{MySqlConfig, SnapshotMode};
use super::conn::Sql;
use super::error::{MySqlError, Result};
use super::gtid::{Gtids, MariaDbGtids, MySqlGtids};
use super::schema::{Collations, Schemas};
use super::server_identity::{verdict, ServerFile, ServerIdentity, Verdict};
use super::snapshot::snapshot;
use super::snapshot_start::current_position;
use super::stream::{Start, Streamer};
use super::txbuf::TxBufferStats;

/// Captures the configured tables of one MySQL or MariaDB server.
///
/// ```no_run
/// # use headwater_source::mysql::{MySqlConfig, MySqlSource};
/// let config = MySqlConfig::new("mysql://repl:secret@localhost:3306", 5401, vec!["shop.*".into()]);
/// let source = MySqlSource::new(config);
/// // Box::new(source).run(ctx).await
/// ```
pub struct MySqlSource {
    config: MySqlConfig,
    stats: Arc<TxBufferStats>,
}

impl MySqlSource {
    pub fn new(config: MySqlConfig) -> Self {
        MySqlSource {
            config,
            stats: Arc::default(),
        }
    }

    pub fn config(&self) -> &MySqlConfig {
        &self.config
    }

    /// Counters of the transaction buffer (memory high-water mark, spills),
    /// readable while the source runs.
    pub fn transaction_stats(&self) -> Arc<TxBufferStats> {
        self.stats.clone()
    }
}

/// Where a restarted source goes on from: the last durable checkpoint.
fn start_from_checkpoint(position: &MySqlPosition, mariadb: bool) -> Start {
    let gtids = position.gtid_set.as_deref().and_then(|g| {
        if mariadb {
            MariaDbGtids::parse(g).map(Gtids::MariaDb)
        } else {
            MySqlGtids::parse(g).map(Gtids::MySql)
        }
    });
    Start {
        position: position.clone(),
        gtids,
    }
}

impl MySqlSource {
    /// One connection's worth of work: find the start (the log's durable
    /// checkpoint, else a snapshot or the current position), stream.
    /// Returns Ok on shutdown. A lost connection is an error: the
    /// supervisor starts the source again, which resumes from what this
    /// attempt made durable (the stream waits for its appends before it
    /// returns an error).
    async fn run_once(&self, ctx: &SourceContext) -> Result<()> {
        let resume = match ctx.appender.durable_checkpoint() {
            Some(Position::MySql(p)) => Some(p),
            Some(other) => {
                return Err(MySqlError::Config(format!(
                    "the log's checkpoint for this source is `{other}`, not a MySQL binlog position; was the source's type changed? Rename the source to start afresh"
                )))
            }
            None => None,
        };
        let mut sql = Sql::connect(&self.config.url).await?;
        let server = ServerIdentity::of(&mut sql).await?;
        let recorded = match self.server_file() {
            Some(file) => file.load().await?,
            None => None,
        };
        let collations = Collations::load(&mut sql).await?;
        let mut schemas = Schemas::new(collations);
        let start = match resume {
            Some(position) => {
                let start = start_from_checkpoint(&position, sql.mariadb);
                self.claim_server(&ctx.name, recorded.as_ref(), &server, &start)?;
                info!(resume = %start.position_text(), "mysql: resuming from the log's checkpoint");
                start
            }
            None => match self.config.snapshot {
                SnapshotMode::Initial => snapshot(&self.config, ctx, &mut schemas).await?,
                SnapshotMode::Never => current_position(&mut sql).await?,
            },
        };
        if let (Some(file), true) = (self.server_file(), recorded.as_ref() != Some(&server)) {
            file.save(&server).await?;
        }
        let mut streamer = Streamer::new(
            &self.config,
            ctx,
            sql,
            &mut schemas,
            &start,
            self.stats.clone(),
        );
        streamer.run(&start).await
    }
}

impl MySqlSource {
    fn server_file(&self) -> Option<ServerFile> {
        self.config.state_dir.as_deref().map(ServerFile::new)
    }

    /// Refuses to resume a binlog position on a server other than the one
    /// it was taken on (see [`super::server_identity`]).
    fn claim_server(
        &self,
        source: &str,
        recorded: Option<&ServerIdentity>,
        found: &ServerIdentity,
        start: &Start,
    ) -> Result<()> {
        let by_gtid = start.by_gtid(self.config.resume_by);
        match (verdict(recorded, found, by_gtid), recorded) {
            (Verdict::Same, _) | (_, None) => Ok(()),
            (Verdict::FailedOver, Some(from)) => {
                info!(%source, %from, to = %found, "mysql: the server changed; resuming by GTID set");
                Ok(())
            }
            (Verdict::Moved, Some(recorded)) => Err(MySqlError::ServerMoved {
                position: format!("{}:{}", start.position.file, start.position.offset),
                recorded: recorded.server.clone(),
                found: found.server.clone(),
                url: self.config.url.to_string(),
                state_file: self
                    .server_file()
                    .map(|f| f.path().display().to_string())
                    .unwrap_or_default(),
            }),
        }
    }
}

#[async_trait]
impl Source for MySqlSource {
    async fn run(self: Box<Self>, ctx: SourceContext) -> headwater_core::Result<()> {
        let span = tracing::info_span!("source", name = %ctx.name, kind = "mysql");
        self.run_attempt(ctx).instrument(span).await
    }

    async fn check(&self) -> Vec<Finding> {
        super::check::check(&self.config).await
    }

    async fn captured_columns(&self) -> Option<Vec<(TableId, Vec<String>)>> {
        super::check::captured_columns(&self.config).await.ok()
    }
}

impl MySqlSource {
    /// One attempt; reconnecting is the supervisor's (one backoff policy
    /// for every source).
    async fn run_attempt(&self, ctx: SourceContext) -> headwater_core::Result<()> {
        let result = self.run_once(&ctx).await;
        if ctx.shutdown.is_cancelled() {
            if let Err(e) = &result {
                debug!(source = %ctx.name, error = %e, "mysql: ended while shutting down");
            }
            return Ok(());
        }
        result.map_err(|e| headwater_core::Error::component(format!("source {}", ctx.name), e))
    }
}
