//! How far behind a source is: the WAL its slot still holds back.

use tokio_postgres::Client;

use crate::postgres::conn::params::ConnParams;
use crate::postgres::conn::sql_connect;
use crate::postgres::error::{PgError, PgResult};
use crate::postgres::PostgresConfig;

/// A SQL connection kept open to read the slot's lag.
pub struct LagProbe {
    client: Client,
    slot: String,
}

impl LagProbe {
    pub async fn connect(source: &str, config: &PostgresConfig) -> PgResult<Self> {
        let params = ConnParams::from_url(&config.url)?;
        let client = sql_connect(&params).await?;
        Ok(LagProbe {
            client,
            slot: crate::postgres::claim::slot_name(source, config, &params.dbname).await,
        })
    }

    /// Bytes of WAL between the server's current position and what the slot
    /// has confirmed; `None` while the slot does not exist yet.
    pub async fn lag_bytes(&self) -> PgResult<Option<i64>> {
        let row = self
            .client
            .query_opt(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await
            .map_err(|e| PgError::sql(format!("reading the lag of slot {}", self.slot), e))?;
        Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
    }
}
