//! The daemon: builds the topology from the configuration, runs it, and
//! shuts it down in order — stop sources, make the log durable, drain
//! sinks, commit their offsets.

mod appender;
mod lag;
mod log_writer;
mod pre_append;
mod replay_guard;
mod sink_task;
mod supervisor;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use headwater_core::{CheckpointStore, Error, Result, SchemaRegistry, SourceContext};
use headwater_log::{EventLog, Log};
use headwater_source::SourceConfig;
use headwater_transforms::TransformChain;

pub use appender::{checkpoint_name, topic_name, LogAppender};
pub use headwater_core::topic::dead_letter_topic;
pub use log_writer::LogWriter;
pub use pre_append::{PreAppend, Prepared};
pub use sink_task::{SinkFactory, SinkTask};

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use supervisor::Supervised;

/// How long each shutdown step may take before the daemon gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared state of a running daemon, also served by the HTTP API
/// (which reports the embedded log's own counters; the pipeline itself
/// reaches the log through [`EventLog`]).
pub struct Daemon {
    pub log: Arc<Log>,
    pub schemas: Arc<SchemaRegistry>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Opens the data directory: the log (with recovery), schemas, checkpoints.
pub async fn open_data_dir(
    config: &Config,
) -> Result<(Arc<Log>, Arc<SchemaRegistry>, CheckpointStore)> {
    let dir = config.data_dir.clone();
    let log_config = config.log.clone();
    appender::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io("creating the data directory", &dir, e))?;
        let log = Log::open(&dir.join("log"), log_config)
            .map_err(|e| Error::component(format!("opening the log in {}", dir.display()), e))?;
        let schemas = Arc::new(SchemaRegistry::open(dir.join("schemas"))?);
        let checkpoints = CheckpointStore::open(dir.join("checkpoints"))?;
        Ok((log, schemas, checkpoints))
    })
    .await
}

/// Runs the pipeline until `shutdown` is cancelled, then shuts down in
/// order. Returns an error only when the daemon could not start.
pub async fn run(config: Config, config_file: &Path, shutdown: CancellationToken) -> Result<()> {
    let (log, schemas, checkpoints) = open_data_dir(&config).await?;
    let chain = Arc::new(
        TransformChain::build(&config.transforms)
            .map_err(|e| Error::component("building the transform chain", e))?,
    );
    let daemon = Arc::new(Daemon {
        log: log.clone(),
        schemas: schemas.clone(),
        metrics: Arc::new(Metrics::default()),
        health: Arc::new(Health::default()),
    });
    let api = crate::api::serve(config.api.listen, daemon.clone(), shutdown.clone()).await?;
    tracing::info!(config = %config_file.display(), data_dir = %config.data_dir.display(), api = %config.api.listen,
        sources = config.sources.len(), sinks = config.sinks.len(), "headwater running");

    let event_log: Arc<dyn EventLog> = log.clone();
    let stop_sources = CancellationToken::new();
    let mut sources = JoinSet::new();
    let parts = SourceParts {
        log: event_log.clone(),
        schemas: schemas.clone(),
        chain,
        checkpoints,
        metrics: daemon.metrics.clone(),
        data_dir: config.data_dir.clone(),
        stop: stop_sources.clone(),
    };
    for (name, source_config) in &config.sources {
        let supervised = Supervised {
            component: format!("source.{name}"),
            health: daemon.health.clone(),
            metrics: daemon.metrics.clone(),
            shutdown: stop_sources.clone(),
        };
        let (name, source_config, parts) = (
            Arc::<str>::from(name.as_str()),
            source_config.clone(),
            parts.clone(),
        );
        sources.spawn(supervised.run(move || {
            parts
                .clone()
                .run_source(name.clone(), source_config.clone())
        }));
    }

    for (name, source_config) in &config.sources {
        tokio::spawn(lag::probe_lag(
            name.clone(),
            source_config.clone(),
            parts.checkpoints.clone(),
            daemon.metrics.clone(),
            stop_sources.clone(),
        ));
    }

    let stop_sinks = CancellationToken::new();
    let mut sinks = JoinSet::new();
    for (name, sink_config) in &config.sinks {
        let supervised = Supervised {
            component: format!("sink.{name}"),
            health: daemon.health.clone(),
            metrics: daemon.metrics.clone(),
            shutdown: stop_sinks.clone(),
        };
        let factory = {
            let (name, sink_config) = (name.clone(), sink_config.clone());
            Arc::new(move || {
                let (name, sink_config) = (name.clone(), sink_config.clone());
                Box::pin(async move { sink_config.build(&name).await }) as _
            })
        };
        let task = Arc::new(SinkTask {
            name: name.clone(),
            topics: sink_config.topics().to_vec(),
            log: event_log.clone(),
            schemas: schemas.clone(),
            metrics: daemon.metrics.clone(),
            factory,
            tick: Duration::from_secs(1),
        });
        let stop = stop_sinks.clone();
        sinks.spawn(supervised.run(move || {
            let (task, stop) = (task.clone(), stop.clone());
            async move { task.run_once(&stop).await }
        }));
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down: stopping sources");
    stop_sources.cancel();
    join_all("sources", &mut sources).await;
    tracing::info!("making the log durable");
    match tokio::time::timeout(STEP_TIMEOUT, event_log.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the last appends could not be made durable; sources will resend them")
        }
        Err(_) => tracing::error!("the log did not flush within {STEP_TIMEOUT:?}"),
    }
    tracing::info!("draining sinks and committing their offsets");
    stop_sinks.cancel();
    join_all("sinks", &mut sinks).await;
    let _ = api.await;
    tracing::info!("stopped");
    Ok(())
}

/// What every source attempt is built from.
#[derive(Clone)]
struct SourceParts {
    log: Arc<dyn EventLog>,
    schemas: Arc<SchemaRegistry>,
    chain: Arc<TransformChain>,
    checkpoints: CheckpointStore,
    metrics: Arc<Metrics>,
    data_dir: std::path::PathBuf,
    stop: CancellationToken,
}

impl SourceParts {
    /// One attempt: a fresh source and appender (a failed appender stays
    /// failed), resuming from the durable checkpoint.
    async fn run_source(self, name: Arc<str>, config: SourceConfig) -> Result<()> {
        let source = config.build(&name, &self.data_dir);
        let appender = LogAppender::open(
            name.clone(),
            self.log,
            self.schemas,
            self.chain,
            self.checkpoints,
            self.metrics,
        )
        .await?;
        source
            .run(SourceContext {
                name,
                appender,
                shutdown: self.stop,
            })
            .await
    }
}

async fn join_all(what: &str, set: &mut JoinSet<()>) {
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(STEP_TIMEOUT, all).await.is_err() {
        tracing::error!("{what} did not stop within {STEP_TIMEOUT:?}; abandoning them (at-least-once: nothing uncommitted is lost)");
        set.abort_all();
    }
}
