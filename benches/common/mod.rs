//! What the PostgreSQL benchmarks share.
#![allow(dead_code, clippy::unwrap_used)]

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

pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Restarts VmHWM from the current RSS, so each phase reports its own peak.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// User + system CPU seconds of this process.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|u| u.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}
