//! The daemon against both real servers: `/metrics` carries
//! `headwater_source_lag_bytes` for every source (the WAL a PostgreSQL slot
//! holds back, the binlog after a MySQL source's checkpoint), and a MySQL
//! transaction larger than its buffer spills under the data directory,
//! which the daemon creates.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{wait_for, Daemon, TestDb};
use testkit::mysql::MySqlDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_reports_its_lag_and_big_transactions_spill() {
    let pg = TestDb::new("lag_pg").await;
    pg.client()
        .await
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
        )
        .await
        .unwrap();
    let mut my = MySqlDb::create("lag_my").await;
    my.exec("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await;
    my.exec("INSERT INTO items VALUES (1, 'a')").await;

    let (_tmp, dir) = common::temp_dir();
    let port = common::free_port();
    let config = dir.join("headwater.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "{data}"

[api]
listen = "127.0.0.1:{port}"

[sources.pg]
type = "postgres"
url = "{pg_url}"
tables = ["public.items"]
slot = "{slot}"
publication = "{slot}"

[sources.my]
type = "mysql"
url = "{my_url}"
server_id = {server_id}
tables = ["{my_db}.items"]
transaction_buffer = "16KiB"

[sinks.archive]
type = "parquet"
url = "file://{archive}"
topics = ["pg.*", "my.*"]
"#,
            data = dir.join("data").display(),
            pg_url = pg.url(),
            slot = pg.name,
            my_url = testkit::mysql_url(),
            server_id = testkit::mysql::unique_server_id(),
            my_db = my.name,
            archive = dir.join("archive").display(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, port, &dir.join("daemon.log"));

    // The MySQL probe needs a durable checkpoint (after the snapshot), and
    // probes run every 15 s.
    let lag = |m: &std::collections::BTreeMap<String, f64>, source: &str| {
        m.get(&format!(
            "headwater_source_lag_bytes{{source=\"{source}\"}}"
        ))
        .copied()
    };
    wait_for("both sources' lag", Duration::from_secs(60), || async {
        let m = daemon.metrics().await.unwrap_or_default();
        lag(&m, "pg").is_some() && lag(&m, "my").is_some()
    })
    .await;
    let m = daemon.metrics().await.unwrap();
    for source in ["pg", "my"] {
        let bytes = lag(&m, source).unwrap();
        assert!(
            (0.0..64.0 * 1024.0 * 1024.0).contains(&bytes),
            "{source} lag {bytes} bytes: a caught-up source is within a few MiB"
        );
    }

    // A 2,000-row transaction passes through {data_dir}/spill/my, which
    // does not exist yet.
    my.exec("INSERT INTO items SELECT seq, CONCAT('row ', seq) FROM seq_2_to_2001")
        .await;
    wait_for(
        "the big transaction in the log",
        Duration::from_secs(60),
        || async {
            let m = daemon.metrics().await.unwrap_or_default();
            m.get("headwater_log_end_offset").copied().unwrap_or(0.0) >= 2002.0
        },
    )
    .await;
    assert!(dir.join("data").join("spill").join("my").is_dir());
    // The log's own counters are in /metrics too.
    let m = daemon.metrics().await.unwrap();
    assert!(m["headwater_log_appended_records_total"] >= 2002.0, "{m:?}");
    assert_eq!(m["headwater_log_disk_backpressure"], 0.0);

    assert!(daemon.terminate(Duration::from_secs(30)).success());
    pg.cleanup().await;
    my.drop_db().await;
}
