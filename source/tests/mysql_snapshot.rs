//! Snapshot + stream under concurrent writers yields exactly the table's
//! history, with each snapshot locking mode (MariaDB).

use std::collections::BTreeMap;
use std::time::Duration;

use headwater_core::{Op, Source, SourceContext, TableId, Value};
use headwater_source::mysql::conn::Sql;
use headwater_source::mysql::snapshot_start::begin;
use headwater_source::mysql::{MySqlConfig, MySqlError, MySqlSource, SnapshotLocking};
use mysql_async::prelude::Queryable;
use testkit::mysql::{exec, unique_server_id, url_for, MySqlDb, MySqlUser};
use testkit::{mysql_url, MemoryAppender};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test]
async fn mysql_snapshot_auto_locking_under_concurrent_writers_yields_the_table_history() {
    // MariaDB: auto = the snapshot transaction's own position, no lock
    history_under_concurrent_writers(SnapshotLocking::Auto, false).await;
}

#[tokio::test]
async fn mysql_snapshot_global_lock_under_concurrent_writers_yields_the_table_history() {
    history_under_concurrent_writers(SnapshotLocking::Global, false).await;
}

#[tokio::test]
async fn mysql_snapshot_table_locks_without_reload_under_concurrent_writers_yield_the_table_history(
) {
    history_under_concurrent_writers(SnapshotLocking::Tables, true).await;
}

#[tokio::test]
async fn mysql_snapshot_locking_modes_name_the_missing_grant() {
    // GIVEN a user with neither RELOAD nor LOCK TABLES
    let mut db = MySqlDb::create("hw_my_snaplock").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let user = MySqlUser::create(
        &mut db,
        &["SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.*"],
    )
    .await;
    let tables = vec![TableId::new(db.name.as_str(), "t")];
    let mut cfg = MySqlConfig::new(url_for(&user), unique_server_id(), vec![]);
    for (locking, grant) in [
        (SnapshotLocking::Global, "RELOAD"),
        (SnapshotLocking::Tables, "LOCK TABLES"),
    ] {
        // WHEN a snapshot is begun with that mode
        cfg.snapshot_locking = locking;
        let mut sql = Sql::connect(&cfg.url).await.expect("connect");
        let err = begin(&cfg, &mut sql, &tables)
            .await
            .expect_err("no privilege for the lock");
        // THEN the error names the grant to add
        assert!(
            matches!(&err, MySqlError::Prerequisite { reason, .. } if reason.contains(&format!("GRANT {grant}"))),
            "{locking:?}: {err}"
        );
    }
    // AND with LOCK TABLES on the database, table locks work and auto on MariaDB takes no lock
    db.exec(&format!(
        "GRANT LOCK TABLES ON `{}`.* TO {}",
        db.name,
        user.account()
    ))
    .await;
    for (locking, used) in [
        (SnapshotLocking::Tables, SnapshotLocking::Tables),
        (SnapshotLocking::Auto, SnapshotLocking::None),
        (SnapshotLocking::None, SnapshotLocking::None),
    ] {
        cfg.snapshot_locking = locking;
        let mut sql = Sql::connect(&cfg.url).await.expect("connect");
        let begun = begin(&cfg, &mut sql, &tables).await.expect("begun");
        assert_eq!(begun.locking, used);
        assert!(
            begun.start.gtids.is_some(),
            "MariaDB always has a GTID state"
        );
    }
    user.drop_user(&mut db).await;
    db.drop_db().await;
}

/// A table of 3000 rows, writers inserting, updating and deleting while the
/// source snapshots it in small chunks, then streams: replaying every event
/// gives exactly the table, no row read twice, no change missing.
async fn history_under_concurrent_writers(locking: SnapshotLocking, without_reload: bool) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
    // GIVEN a table of 3000 rows
    let mut db = MySqlDb::create("hw_my_snap").await;
    let user = if without_reload {
        // a replication user without RELOAD, allowed to lock its tables
        let grants = [
            "SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.*".to_owned(),
            format!("LOCK TABLES ON `{}`.*", db.name),
        ];
        let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
        Some(MySqlUser::create(&mut db, &grants).await)
    } else {
        None
    };
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL)")
        .await;
    db.exec("CREATE TABLE t2 (a INT, b INT, PRIMARY KEY (a, b))")
        .await;
    db.exec("CREATE TABLE nokey (x INT)").await;
    db.exec("CREATE TABLE names (n VARCHAR(10) CHARACTER SET latin1 PRIMARY KEY)")
        .await;
    let names: Vec<String> = (0..250)
        .map(|i| format!("{}{i:03}", ["ä", "é", "Ö", "€", "ñ", "a", "z", "ß"][i % 8]))
        .collect();
    let quoted: Vec<String> = names.iter().map(|n| format!("('{n}')")).collect();
    db.exec(&format!("INSERT INTO names VALUES {}", quoted.join(",")))
        .await;
    let values: Vec<String> = (0..3000).map(|i| format!("({i}, {i})")).collect();
    db.exec(&format!("INSERT INTO t VALUES {}", values.join(",")))
        .await;
    db.exec("INSERT INTO t2 VALUES (1, 1), (1, 2), (2, 1)")
        .await;
    db.exec("INSERT INTO nokey VALUES (1), (1)").await;

    // WHEN writers insert, update and delete while the source snapshots in small chunks
    let appender = MemoryAppender::new();
    // the writer keeps going until the snapshot is over, so they overlap
    let writer = {
        let mut conn = db.another().await;
        let appender = appender.clone();
        tokio::spawn(async move {
            let mut round = 0;
            while round < 150 || (appender.checkpoint().is_none() && round < 5000) {
                let id = (round * 17) % 3000;
                exec(
                    &mut conn,
                    &format!("UPDATE t SET v = v + 1 WHERE id = {id}"),
                )
                .await;
                exec(
                    &mut conn,
                    &format!("DELETE FROM t WHERE id = {}", (round * 31 + 7) % 3000),
                )
                .await;
                exec(
                    &mut conn,
                    &format!("INSERT INTO t VALUES ({}, {round})", 10_000 + round),
                )
                .await;
                exec(&mut conn, "START TRANSACTION").await;
                exec(
                    &mut conn,
                    &format!(
                        "UPDATE t SET v = v * 2 WHERE id BETWEEN {id} AND {}",
                        id + 5
                    ),
                )
                .await;
                exec(&mut conn, "COMMIT").await;
                round += 1;
            }
            round
        })
    };
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        name: "my".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    };
    let url = user.as_ref().map_or_else(mysql_url, url_for);
    let mut cfg = MySqlConfig::new(url, unique_server_id(), vec![format!("{}.*", db.name)]);
    cfg.snapshot_chunk_size = 97;
    cfg.snapshot_locking = locking;
    let task = tokio::spawn(Box::new(MySqlSource::new(cfg)).run(ctx));
    let rounds = writer.await.expect("writer");
    assert!(rounds < 5000, "the snapshot finished while writes went on");

    // THEN once the source has caught up with the server…
    let target = db.binlog_position().await;
    testkit::mysql::wait_for_checkpoint(&*appender, &target, DEADLINE).await;
    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");

    // …replaying its events gives exactly the table, with no row read twice
    let events = appender.events();
    let mut replay: BTreeMap<i32, i32> = BTreeMap::new();
    let mut reads = std::collections::HashSet::new();
    let mut snapshot_over = false;
    let int = |v: &Value| match v {
        Value::Int32(i) => *i,
        other => panic!("{other:?}"),
    };
    for e in events.iter().filter(|e| &*e.table.name == "t") {
        match e.op {
            Op::Read => {
                assert!(!snapshot_over, "snapshot rows come before streamed changes");
                assert!(reads.insert(int(&e.key[0])), "row {:?} read twice", e.key);
                let row = e.after.as_ref().expect("row");
                replay.insert(int(&row[0]), int(&row[1]));
            }
            Op::Insert | Op::Update => {
                snapshot_over = true;
                let row = e.after.as_ref().expect("row");
                if let Some(before) = &e.before {
                    assert!(
                        replay.contains_key(&int(&before[0])),
                        "update of a row the history has"
                    );
                }
                replay.insert(int(&row[0]), int(&row[1]));
            }
            Op::Delete => {
                snapshot_over = true;
                assert!(
                    replay.remove(&int(&e.key[0])).is_some(),
                    "delete of a row the history has"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(snapshot_over, "changes were streamed after the snapshot");
    let table: Vec<(i32, i32)> = db
        .conn
        .query("SELECT id, v FROM t ORDER BY id")
        .await
        .expect("select");
    assert_eq!(replay.into_iter().collect::<Vec<_>>(), table);
    let t2 = events.iter().filter(|e| &*e.table.name == "t2").count();
    let nokey = events.iter().filter(|e| &*e.table.name == "nokey").count();
    assert_eq!(
        (t2, nokey),
        (3, 2),
        "composite-key and keyless tables are snapshotted too"
    );
    if let Some(user) = user {
        user.drop_user(&mut db).await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_snapshot_table_lock_gives_up_behind_a_long_transaction_and_is_retried() {
    use headwater_core::error::{Classify, ErrorKind};
    // GIVEN a transaction that wrote a captured table and stays open
    let (db, mut writer) = table_with_an_open_writer("hw_my_snapwait").await;
    let tables = vec![TableId::new(db.name.as_str(), "t")];
    let mut cfg = MySqlConfig::new(mysql_url(), unique_server_id(), vec![]);
    cfg.snapshot_locking = SnapshotLocking::Tables;
    cfg.snapshot_lock_timeout = headwater_core::config::HumanDuration(Duration::from_secs(1));

    // WHEN a snapshot with table locks begins
    let mut sql = Sql::connect(&cfg.url).await.expect("connect");
    let err = begin(&cfg, &mut sql, &tables)
        .await
        .expect_err("the lock waits behind the open transaction");

    // THEN it gives up after snapshot_lock_timeout, and the source retries
    assert!(err.to_string().contains("LOCK TABLES"), "{err}");
    assert!(err.to_string().contains("Lock wait timeout"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Retry);
    // AND once the transaction ended the lock is granted
    exec(&mut writer, "COMMIT").await;
    let mut sql = Sql::connect(&cfg.url).await.expect("connect");
    let begun = begin(&cfg, &mut sql, &tables).await.expect("begun");
    assert_eq!(begun.locking, SnapshotLocking::Tables);
    drop(writer);
    db.drop_db().await;
}

/// GIVEN a source whose table locks wait behind an open write transaction
/// WHEN a captured table is created and filled while it waits (after the
/// source listed the tables, before its start position)
/// THEN the new table's rows are read by the snapshot: they are before the
/// position the stream starts from, so nothing else would deliver them.
#[tokio::test]
async fn mysql_table_created_while_the_snapshot_waits_for_its_locks_is_read() {
    let (mut db, mut writer) = table_with_an_open_writer("hw_my_late").await;
    let appender = MemoryAppender::new();
    let shutdown = CancellationToken::new();
    let mut cfg = MySqlConfig::new(
        mysql_url(),
        unique_server_id(),
        vec![format!("{}.*", db.name)],
    );
    cfg.snapshot_locking = SnapshotLocking::Tables;
    cfg.snapshot_lock_timeout = headwater_core::config::HumanDuration(DEADLINE);
    let task = tokio::spawn(Box::new(MySqlSource::new(cfg)).run(SourceContext {
        name: "my".into(),
        appender: appender.clone(),
        shutdown: shutdown.clone(),
    }));
    let watcher = tokio::sync::Mutex::new(db.another().await);
    testkit::wait_until_async("the source's LOCK TABLES to wait", DEADLINE, || async {
        let waiting: Option<i64> = watcher
            .lock()
            .await
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'LOCK TABLES%' AND STATE LIKE 'Waiting%'",
            )
            .await
            .expect("processlist");
        waiting.unwrap_or(0) > 0
    })
    .await;

    db.exec("CREATE TABLE late (id INT PRIMARY KEY)").await;
    db.exec("INSERT INTO late VALUES (1), (2), (3)").await;
    exec(&mut writer, "COMMIT").await;
    let target = db.binlog_position().await;
    testkit::mysql::wait_for_checkpoint(&*appender, &target, DEADLINE).await;
    shutdown.cancel();
    task.await.expect("no panic").expect("clean stop");

    let late: Vec<(Op, Value)> = appender
        .events()
        .iter()
        .filter(|e| &*e.table.name == "late")
        .map(|e| (e.op, e.key[0].clone()))
        .collect();
    let reads: Vec<(Op, Value)> = (1..=3).map(|i| (Op::Read, Value::Int32(i))).collect();
    assert_eq!(late, reads);
    drop(writer);
    db.drop_db().await;
}

/// A database with table `t`, and a connection whose transaction wrote
/// `t` and stays open (so `LOCK TABLES t READ` waits behind it).
async fn table_with_an_open_writer(prefix: &str) -> (MySqlDb, mysql_async::Conn) {
    let mut db = MySqlDb::create(prefix).await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut writer = db.another().await;
    exec(&mut writer, "START TRANSACTION").await;
    exec(&mut writer, "INSERT INTO t VALUES (1)").await;
    (db, writer)
}
