//! Every 15 s, how far each source is behind its database, in bytes:
//! the WAL a PostgreSQL slot holds back, or the binlog after a MySQL
//! source's durable checkpoint (`headwater_source_lag_bytes`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use headwater_core::checkpoint::spawn_blocking;
use headwater_core::{CheckpointStore, Position, Result};
use headwater_source::SourceConfig;

use super::checkpoint_name;
use crate::metrics::{Metrics, SOURCE_LAG_BYTES};

const EVERY: Duration = Duration::from_secs(15);

/// The source's durable checkpoint (file reads: on a blocking thread).
async fn checkpoint_of(name: &str, checkpoints: &CheckpointStore) -> Result<Option<Position>> {
    let (store, key) = (checkpoints.clone(), checkpoint_name(name));
    spawn_blocking(move || store.load::<Position>(&key)).await
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
            probe = config.kind().lag_probe(&name).await.ok();
        }
        if let Some(p) = &mut probe {
            let lag = match checkpoint_of(&name, &checkpoints).await {
                Ok(checkpoint) => p.lag_bytes(checkpoint.as_ref()).await,
                Err(e) => Err(e),
            };
            match lag {
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
