//! Connection loss: the source ends with an error to retry, and started
//! again (as the daemon's supervisor does) resumes without loss or
//! duplicates; a user without RELOAD still gets a consistent
//! snapshot on MariaDB (MariaDB).

use std::time::Duration;

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{Op, Severity, Source, SourceContext, Value};
use headwater_source::mysql::{MySqlConfig, MySqlSource};
use mysql_async::prelude::Queryable;
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::{mysql_url, unique_name, MemoryAppender};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn mysql_reconnects_after_connection_loss_without_loss_or_duplicates() {
    // GIVEN a replication user without RELOAD, and a table with rows
    let mut db = MySqlDb::create("hw_my_reconn").await;
    let user = unique_name("hwu").chars().take(30).collect::<String>();
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await;
    db.exec(&format!(
        "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
    ))
    .await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    db.exec("INSERT INTO t VALUES (0), (1), (2)").await;
    let url = url::Url::parse(&mysql_url()).expect("url");
    let source_url = format!(
        "mysql://{user}:pw@{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(3306)
    );
    let cfg = MySqlConfig::new(
        source_url,
        unique_server_id(),
        vec![format!("{}.t", db.name)],
    );

    let findings = MySqlSource::new(cfg.clone()).check().await;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Warn && f.message.contains("RELOAD")),
        "{findings:#?}"
    );

    let appender = MemoryAppender::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(supervise(cfg, appender.clone(), shutdown.clone()));
    appender.wait_for(3, DEADLINE).await;
    for i in 3..10 {
        db.exec(&format!("INSERT INTO t VALUES ({i})")).await;
    }
    appender.wait_for(10, DEADLINE).await;

    // AND an idle stream stays connected (the server's heartbeats keep it alive)
    let mut probe = db.another().await;
    let before = dump_thread(&mut probe, &user).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        dump_thread(&mut probe, &user).await,
        before,
        "no reconnect while idle"
    );
    assert_eq!(before.len(), 1);

    // WHEN every connection of the source is killed, twice, while rows keep coming
    for round in 0..2 {
        let mut probe = db.another().await;
        testkit::wait_until_async("the source to reconnect", DEADLINE, async || {
            let dumping: Vec<u64> = probe
                .exec(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Binlog Dump'",
                    (user.as_str(),),
                )
                .await
                .expect("processlist");
            !dumping.is_empty()
        })
        .await;
        let ids: Vec<u64> = probe
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?",
                (user.as_str(),),
            )
            .await
            .expect("processlist");
        for id in ids {
            let _ = db.conn.query_drop(format!("KILL {id}")).await;
        }
        for i in 0..10 {
            db.exec(&format!("INSERT INTO t VALUES ({})", 10 + round * 10 + i))
                .await;
        }
    }

    // THEN it reconnects and every row arrives exactly once
    let events = appender.wait_for(30, DEADLINE).await;
    shutdown.cancel();
    let retried = task.await.expect("no panic").expect("clean stop");
    // The source does not reconnect by itself: each loss ends it with an
    // error to retry, so the supervisor's backoff is the one policy.
    assert!(
        retried >= 2,
        "ended with a Retry error {retried} times for 2 connection losses"
    );
    assert!(events[..3].iter().all(|e| e.op == Op::Read));
    let ids: Vec<Value> = events.iter().map(|e| e.key[0].clone()).collect();
    assert_eq!(ids, (0..30).map(Value::Int32).collect::<Vec<_>>());
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
    db.drop_db().await;
}

/// Runs the source as the daemon's supervisor does (src/runtime/supervisor.rs):
/// a fresh one on the same log after each error to retry, until shutdown.
/// Returns how many times it ended with an error to retry.
async fn supervise(
    cfg: MySqlConfig,
    appender: std::sync::Arc<MemoryAppender>,
    shutdown: CancellationToken,
) -> headwater_core::Result<u32> {
    let mut retried = 0;
    loop {
        let ctx = SourceContext {
            name: "my".into(),
            appender: appender.clone(),
            shutdown: shutdown.clone(),
        };
        match Box::new(MySqlSource::new(cfg.clone())).run(ctx).await {
            Err(e) if e.kind() == ErrorKind::Retry => {
                retried += 1;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    () = shutdown.cancelled() => return Ok(retried),
                }
            }
            other => return other.map(|()| retried),
        }
    }
}

async fn dump_thread(conn: &mut mysql_async::Conn, user: &str) -> Vec<u64> {
    conn.exec(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Binlog Dump'",
        (user,),
    )
    .await
    .expect("processlist")
}
