//! The MySQL source against a real MariaDB (dev/services.sh): streaming,
//! before/after images, DDL mid-stream, resume, rotation, purged binlogs,
//! a checkpoint's server.

use std::sync::Arc;
use std::time::Duration;

use headwater_core::error::{Classify, ErrorKind};
use headwater_core::{ChangeEvent, Op, Position, Source, SourceContext, Value, ValueKind};
use headwater_source::mysql::server_identity::{ServerFile, ServerIdentity};
use headwater_source::mysql::{MySqlConfig, MySqlSource, ResumeBy};
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::{mysql_url, MemoryAppender};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<headwater_core::Result<()>>,
}

fn config(db: &str) -> MySqlConfig {
    MySqlConfig::new(mysql_url(), unique_server_id(), vec![format!("{db}.*")])
}

fn start(config: MySqlConfig, appender: Arc<MemoryAppender>) -> Running {
    let shutdown = CancellationToken::new();
    let ctx = SourceContext {
        name: "my".into(),
        appender,
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(Box::new(MySqlSource::new(config)).run(ctx));
    Running { shutdown, task }
}

impl Running {
    /// The error the source stops with, which it must do promptly.
    async fn failure(self) -> headwater_core::Error {
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("fails promptly")
            .expect("no panic")
            .expect_err("the source fails")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("source stops on shutdown")
            .expect("source task does not panic");
        result.expect("source ends cleanly");
    }
}

/// Waits until the source has a checkpoint (snapshot done / stream up).
async fn wait_checkpoint(appender: &MemoryAppender) {
    testkit::wait_until_async("a checkpoint", DEADLINE, || async {
        appender.checkpoint().is_some()
    })
    .await;
}

fn col(e: &ChangeEvent, name: &str, after: bool) -> Value {
    let i = e
        .schema
        .column_index(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let row = if after {
        e.after.as_ref()
    } else {
        e.before.as_ref()
    };
    row.expect("row image")[i].clone()
}

#[tokio::test]
async fn mysql_updates_carry_before_and_after_images() {
    // GIVEN a table and a running source
    let mut db = MySqlDb::create("hw_my_upd").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), n BIGINT UNSIGNED)")
        .await;
    let appender = MemoryAppender::new();
    let source = start(config(&db.name), appender.clone());
    wait_checkpoint(&appender).await;

    // WHEN a row is inserted, updated and deleted, in separate transactions
    db.exec("INSERT INTO t VALUES (1, 'one', 18446744073709551615)")
        .await;
    db.exec("UPDATE t SET name = 'uno' WHERE id = 1").await;
    db.exec("DELETE FROM t WHERE id = 1").await;

    // THEN three events with the images and keys
    let events = appender.wait_for(3, DEADLINE).await;
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(ops, vec![Op::Insert, Op::Update, Op::Delete]);
    for e in &events {
        assert_eq!(e.key, vec![Value::Int32(1)]);
        assert_eq!(&*e.table.namespace, db.name.as_str());
        assert!(matches!(e.position, Position::MySql(_)));
        assert!(e.tx_id.is_some());
    }
    assert_eq!(col(&events[0], "n", true), Value::UInt64(u64::MAX));
    assert!(events[0].before.is_none());
    assert_eq!(col(&events[1], "name", false), Value::Text("one".into()));
    assert_eq!(col(&events[1], "name", true), Value::Text("uno".into()));
    assert_eq!(col(&events[2], "name", false), Value::Text("uno".into()));
    assert!(events[2].after.is_none());
    let schema = &events[0].schema;
    assert_eq!(schema.columns[0].key_position, Some(0));
    assert_eq!(schema.columns[1].type_name, "varchar(20)");
    assert_eq!(schema.columns[2].kind, ValueKind::UInt64);

    // AND a multi-row transaction arrives whole, in one append
    db.exec("START TRANSACTION").await;
    db.exec("INSERT INTO t VALUES (2, 'a', 1), (3, 'b', 2)")
        .await;
    db.exec("UPDATE t SET n = n + 1").await;
    db.exec("COMMIT").await;
    let events = appender.wait_for(4, DEADLINE).await;
    assert_eq!(
        events.len(),
        7,
        "the first event seen brings the whole transaction"
    );
    assert_eq!(
        events[3..].iter().map(|e| e.op).collect::<Vec<_>>(),
        vec![Op::Insert, Op::Insert, Op::Update, Op::Update]
    );

    source.stop().await;
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_alter_table_mid_stream_decodes_with_the_schema_in_force() {
    // GIVEN a source that captured the table and stopped
    let mut db = MySqlDb::create("hw_my_ddl").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10))")
        .await;
    let first = MemoryAppender::new();
    let source = start(config(&db.name), first.clone());
    wait_checkpoint(&first).await;
    source.stop().await;
    let checkpoint = first.checkpoint().expect("checkpoint");

    // WHEN a backlog with DDL between the rows is written while it is down
    db.exec("INSERT INTO t VALUES (1, 'x')").await;
    db.exec("ALTER TABLE t ADD COLUMN b INT, DROP COLUMN a")
        .await;
    db.exec("INSERT INTO t VALUES (2, 5)").await;
    db.exec("ALTER TABLE t MODIFY b BIGINT UNSIGNED").await;
    db.exec("INSERT INTO t VALUES (3, 18446744073709551615)")
        .await;
    db.exec("TRUNCATE TABLE t").await;
    db.exec("ALTER TABLE t ADD COLUMN c ENUM('p','q') NOT NULL DEFAULT 'q' FIRST")
        .await;
    db.exec("INSERT INTO t (id, b, c) VALUES (4, 7, 'p')").await;
    db.exec("RENAME TABLE t TO t_old").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, z TEXT CHARACTER SET latin1)")
        .await;
    db.exec("INSERT INTO t VALUES (5, 'zé')").await;
    db.exec("INSERT INTO t_old (id, b, c) VALUES (6, 8, 'q')")
        .await;

    // THEN the restarted source decodes each row with the layout it was written with
    let appender = MemoryAppender::with_checkpoint(checkpoint);
    let source = start(config(&db.name), appender.clone());
    let events = appender.wait_for(7, DEADLINE).await;
    source.stop().await;
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(
        ops,
        vec![
            Op::Insert,
            Op::Insert,
            Op::Insert,
            Op::Truncate,
            Op::Insert,
            Op::Insert,
            Op::Insert
        ]
    );
    let names = |e: &ChangeEvent| {
        e.schema
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&events[0]), vec!["id", "a"]);
    assert_eq!(col(&events[0], "a", true), Value::Text("x".into()));
    assert_eq!(names(&events[1]), vec!["id", "b"]);
    assert_eq!(col(&events[1], "b", true), Value::Int32(5));
    assert_eq!(col(&events[2], "b", true), Value::UInt64(u64::MAX));
    assert_eq!(events[2].schema.columns[1].kind, ValueKind::UInt64);
    assert_eq!(names(&events[4]), vec!["c", "id", "b"]);
    assert_eq!(col(&events[4], "c", true), Value::Enum("p".into()));
    assert_eq!(events[4].key, vec![Value::Int32(4)]);
    // RENAME, then a new table under the old name
    assert_eq!(names(&events[5]), vec!["id", "z"]);
    assert_eq!(col(&events[5], "z", true), Value::Text("zé".into()));
    assert_eq!(&*events[6].table.name, "t_old");
    assert_eq!(col(&events[6], "c", true), Value::Enum("q".into()));
    let versions: Vec<u32> = [0, 1, 2, 4]
        .iter()
        .map(|i| events[*i].schema.version)
        .collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions rise: {versions:?}"
    );
    db.drop_db().await;
}

async fn resume_without_loss_or_duplicates(resume_by: ResumeBy) {
    let mut db = MySqlDb::create("hw_my_resume").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    let appender = MemoryAppender::new();
    let mut cfg = config(&db.name);
    cfg.resume_by = resume_by;
    let source = start(cfg.clone(), appender.clone());
    wait_checkpoint(&appender).await;
    for i in 0..20 {
        db.exec(&format!("INSERT INTO t VALUES ({i}, {i})")).await;
    }
    appender.wait_for(20, DEADLINE).await;
    // stop, write while down, restart on the same log
    source.stop().await;
    for i in 20..40 {
        db.exec(&format!("INSERT INTO t VALUES ({i}, {i})")).await;
    }
    let source = start(cfg.clone(), appender.clone());
    for i in 40..60 {
        db.exec(&format!("INSERT INTO t VALUES ({i}, {i})")).await;
    }
    let events = appender.wait_for(60, DEADLINE).await;
    // a restart with nothing new appends nothing
    source.stop().await;
    let source = start(cfg, appender.clone());
    db.exec("INSERT INTO t VALUES (60, 60)").await;
    appender.wait_for(61, DEADLINE).await;
    source.stop().await;
    let events_after = appender.events();
    let ids: Vec<Value> = events_after.iter().map(|e| e.key[0].clone()).collect();
    let want: Vec<Value> = (0..61).map(Value::Int32).collect();
    assert_eq!(ids, want, "every row exactly once, in order");
    assert_eq!(events.len(), 60);
    if resume_by == ResumeBy::Gtid {
        let Some(Position::MySql(p)) = appender.checkpoint() else {
            panic!("mysql checkpoint")
        };
        assert!(
            p.gtid_set.is_some_and(|g| !g.is_empty()),
            "MariaDB checkpoints carry the GTID set"
        );
    }
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_resume_by_gtid_without_loss_or_duplicates() {
    resume_without_loss_or_duplicates(ResumeBy::Gtid).await;
}

#[tokio::test]
async fn mysql_resume_by_position_without_loss_or_duplicates() {
    resume_without_loss_or_duplicates(ResumeBy::Position).await;
}

#[tokio::test]
async fn mysql_binlog_rotation_mid_stream() {
    let mut db = MySqlDb::create("hw_my_rotate").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let appender = MemoryAppender::new();
    let mut cfg = config(&db.name);
    cfg.resume_by = ResumeBy::Position;
    let source = start(cfg.clone(), appender.clone());
    wait_checkpoint(&appender).await;
    db.exec("INSERT INTO t VALUES (1)").await;
    appender.wait_for(1, DEADLINE).await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (2)").await;
    let events = appender.wait_for(2, DEADLINE).await;
    let file = |e: &ChangeEvent| match &e.position {
        Position::MySql(p) => p.file.clone(),
        other => panic!("{other:?}"),
    };
    assert_ne!(
        file(&events[0]),
        file(&events[1]),
        "the second row is in the next file"
    );
    source.stop().await;
    // restart after the rotation, from a checkpoint in the new file
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (3)").await;
    let source = start(cfg, appender.clone());
    let events = appender.wait_for(3, DEADLINE).await;
    source.stop().await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].key, vec![Value::Int32(3)]);
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_purged_binlog_is_a_clear_operator_error() {
    let db = MySqlDb::create("hw_my_purged").await;
    let mut cfg = config(&db.name);
    cfg.resume_by = ResumeBy::Position;
    let gone: Position = "mysql-bin.999999:4".parse().expect("position");
    let appender = MemoryAppender::with_checkpoint(gone);
    let err = start(cfg, appender).failure().await;
    assert_eq!(err.kind(), ErrorKind::WaitForOperator);
    let text = err.to_string();
    assert!(
        text.contains("snapshot") && text.contains("mysql-bin.999999:4"),
        "{text}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_a_binlog_position_is_not_resumed_on_another_server() {
    let mut db = MySqlDb::create("hw_my_moved").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let state = tempfile::tempdir().expect("state dir");
    let server_file = ServerFile::new(state.path());
    let appender = MemoryAppender::new();
    let mut cfg = config(&db.name);
    cfg.state_dir = Some(state.path().to_owned());
    let source = start(cfg.clone(), appender.clone());
    wait_checkpoint(&appender).await;
    source.stop().await;
    let this_server = server_file
        .load()
        .await
        .expect("readable")
        .expect("the snapshot records its server");

    // As far as the checkpoint knows, `url` now reaches another server.
    let elsewhere = ServerIdentity {
        server: "server_id=77 binlog=/elsewhere/mysql-bin".into(),
    };
    server_file.save(&elsewhere).await.expect("write");
    cfg.resume_by = ResumeBy::Position;
    let err = start(cfg.clone(), appender.clone()).failure().await;
    assert_eq!(err.kind(), ErrorKind::WaitForOperator);
    let text = err.to_string();
    for part in [&elsewhere.server, &this_server.server, "resume_by"] {
        assert!(text.contains(part), "{part} in {text}");
    }

    // By GTID set the move is a failover: it goes on, recording the server.
    cfg.resume_by = ResumeBy::Gtid;
    let source = start(cfg, appender.clone());
    db.exec("INSERT INTO t VALUES (1)").await;
    appender.wait_for(1, DEADLINE).await;
    source.stop().await;
    assert_eq!(
        server_file.load().await.expect("readable"),
        Some(this_server)
    );
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_check_passes_on_the_dev_server() {
    let cfg = MySqlConfig::new(mysql_url(), unique_server_id(), vec!["x.*".into()]);
    let findings = MySqlSource::new(cfg).check().await;
    let fails: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == headwater_core::Severity::Fail)
        .collect();
    assert!(fails.is_empty(), "{findings:#?}");
    assert!(findings
        .iter()
        .any(|f| f.message.contains("binlog_format is ROW")));
    let cfg = MySqlConfig::new(mysql_url(), 1, vec!["x.*".into()]);
    let findings = MySqlSource::new(cfg).check().await;
    assert!(
        findings
            .iter()
            .any(|f| f.severity == headwater_core::Severity::Fail
                && f.message.contains("server_id 1"))
    );
}
