//! Two daemons whose sources share a name (`shop`) but capture different
//! databases of one cluster. Slot names are cluster-wide; with the old
//! default (`headwater_{source}`) the second daemon, finding the slot and
//! nothing in its fresh log, dropped the first one's slot, and with it the
//! changes the first had not consumed yet.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{wait_for, Daemon, TestDb};

fn write_config(dir: &Path, db: &TestDb, port: u16) -> std::path::PathBuf {
    let config = dir.join("headwater.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "{data}"

[api]
listen = "127.0.0.1:{port}"

[sources.shop]
type = "postgres"
url = "{url}"
tables = ["public.items"]

[sinks.archive]
type = "parquet"
url = "file://{archive}"
topics = ["shop.*"]
"#,
            data = dir.join("data").display(),
            url = db.url(),
            archive = dir.join("archive").display(),
        ),
    )
    .unwrap();
    config
}

/// The slots of `db`, with whether a walsender holds them.
async fn slots(db: &TestDb) -> Vec<(String, bool)> {
    db.admin
        .query(
            "SELECT slot_name::text, active FROM pg_replication_slots WHERE database = $1 ORDER BY 1",
            &[&db.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The ops of every change event of `topic` in the daemon's log.
fn ops_in_log(config: &Path, topic: &str) -> Vec<String> {
    common::log_records(config, topic)
        .iter()
        .map(|event| event["op"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// GIVEN daemon A capturing database 1, stopped with changes it has not
/// consumed yet (an insert and a delete)
/// WHEN daemon B, from a fresh data directory, starts a source of the same
/// name on database 2
/// THEN B gets a slot of its own, A's slot is untouched, and A, started
/// again, receives the insert and the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_never_takes_the_slot_of_another_database() {
    let (db1, db2) = (
        TestDb::new("collide_a").await,
        TestDb::new("collide_b").await,
    );
    for db in [&db1, &db2] {
        db.client()
            .await
            .batch_execute(
                "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)",
            )
            .await
            .unwrap();
    }
    let (_tmp_a, dir_a) = common::temp_dir();
    let (_tmp_b, dir_b) = common::temp_dir();
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let config_a = write_config(&dir_a, &db1, port_a);
    let config_b = write_config(&dir_b, &db2, port_b);
    let deadline = Duration::from_secs(60);

    let a = Daemon::start(&config_a, port_a, &dir_a.join("daemon.log"));
    // Streaming after a durable snapshot: a source stopped before its
    // snapshot's checkpoint is durable drops its own slot and starts over.
    let snapshot_done = dir_a.join("data/checkpoints/source.shop.checkpoint");
    wait_for("A streaming after its snapshot", deadline, || async {
        snapshot_done.exists() && slots(&db1).await.iter().any(|(_, active)| *active)
    })
    .await;
    assert!(a.terminate(Duration::from_secs(30)).success());
    wait_for("A's slot released", deadline, || async {
        slots(&db1).await.iter().all(|(_, active)| !active)
    })
    .await;
    let a_slots = slots(&db1).await;
    assert_eq!(a_slots.len(), 1, "{a_slots:?}");
    db1.client()
        .await
        .batch_execute("INSERT INTO items VALUES (3); DELETE FROM items WHERE id = 1")
        .await
        .unwrap();

    let b = Daemon::start(&config_b, port_b, &dir_b.join("daemon.log"));
    wait_for("B streaming", deadline, || async {
        slots(&db2).await.iter().any(|(_, active)| *active)
    })
    .await;
    assert_eq!(slots(&db1).await, a_slots, "B changed A's slot");
    let b_slots = slots(&db2).await;
    assert_ne!(b_slots[0].0, a_slots[0].0, "both use one slot name");

    let a = Daemon::start(&config_a, port_a, &dir_a.join("daemon.log"));
    wait_for("A's changes from while it was down", deadline, || async {
        let m = a.metrics().await.unwrap_or_default();
        m.get("headwater_log_end_offset").copied().unwrap_or(0.0) >= 4.0
    })
    .await;
    assert!(a.terminate(Duration::from_secs(30)).success());
    assert!(b.terminate(Duration::from_secs(30)).success());
    let mut ops = ops_in_log(&config_a, "shop.public.items");
    ops.sort();
    assert_eq!(ops, ["c", "d", "r", "r"], "A lost a change");
    db1.cleanup().await;
    db2.cleanup().await;
}
