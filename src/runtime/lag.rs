//! Every 15 s, how far each source is behind its database, in bytes:
//! the WAL a PostgreSQL slot holds back, or the binlog after a MySQL
//! source's durable checkpoint (`headwater_source_lag_bytes`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use headwater_core::{CheckpointStore, Position};
use headwater_source::{mysql, postgres, SourceConfig};

use super::checkpoint_name;
use crate::metrics::{Metrics, SOURCE_LAG_BYTES};

const EVERY: Duration = Duration::from_secs(15);

enum Probe {
    Postgres(postgres::lag::LagProbe),
    MySql(mysql::lag::LagProbe),
}

impl Probe {
    async fn connect(name: &str, config: &SourceConfig) -> Result<Probe, String> {
        match config {
            SourceConfig::Postgres(pg) => postgres::lag::LagProbe::connect(name, pg)
                .await
                .map(Probe::Postgres)
                .map_err(|e| e.to_string()),
            SourceConfig::Mysql(my) => mysql::lag::LagProbe::connect(my)
                .await
                .map(Probe::MySql)
                .map_err(|e| e.to_string()),
        }
    }

    /// `None`: unknown for now (no checkpoint yet, or its binlog file is
    /// gone).
    async fn lag_bytes(
        &mut self,
        name: &str,
        checkpoints: &CheckpointStore,
    ) -> Result<Option<i64>, String> {
        match self {
            Probe::Postgres(probe) => probe.lag_bytes().await.map_err(|e| e.to_string()),
            Probe::MySql(probe) => {
                let (store, key) = (checkpoints.clone(), checkpoint_name(name));
                let stored = tokio::task::spawn_blocking(move || store.load::<Position>(&key))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                match stored {
                    Some(Position::MySql(at)) => {
                        probe.lag_bytes(&at).await.map_err(|e| e.to_string())
                    }
                    _ => Ok(None),
                }
            }
        }
    }
}

/// Sets the source-lag metric of source `name` every 15 s until `stop`;
/// a failed probe is logged at debug level and reconnected next time.
pub async fn probe_lag(
    name: String,
    config: SourceConfig,
    checkpoints: CheckpointStore,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut probe = None;
    loop {
        if probe.is_none() {
            probe = Probe::connect(&name, &config).await.ok();
        }
        if let Some(p) = &mut probe {
            match p.lag_bytes(&name, &checkpoints).await {
                Ok(Some(bytes)) => {
                    metrics.set(SOURCE_LAG_BYTES, &[("source", &name)], bytes as f64)
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(source = %name, %error, "could not read the source's lag");
                    probe = None;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}
