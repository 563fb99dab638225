//! What the PostgreSQL benchmarks share.

use std::time::Duration;

/// Waits until `slot` has a streaming walsender (active, with a confirmed
/// position): only then is the slot really there — its row appears while
/// CREATE_REPLICATION_SLOT still waits for its consistent point. Panics if
/// `source` (the task that creates it) ends first.
pub async fn wait_until_streaming<T>(
    admin: &tokio_postgres::Client,
    slot: &str,
    source: &tokio::task::JoinHandle<T>,
) {
    loop {
        let streaming: bool = admin
            .query_one(
                "SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL",
                &[&slot],
            )
            .await
            .expect("reading pg_replication_slots")
            .get(0);
        if streaming {
            return;
        }
        assert!(
            !source.is_finished(),
            "the source on slot {slot} stopped (HEADWATER_LOG=info shows why)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
