//! The binlog lag probe: bytes of binlog after a checkpoint, summed across
//! files, against the server's own file sizes (MariaDB).
#![allow(clippy::unwrap_used)]

use headwater_core::MySqlPosition;
use headwater_source::mysql::conn::Sql;
use headwater_source::mysql::lag::{binary_logs, binlog_lag, LagProbe};
use headwater_source::mysql::MySqlConfig;
use testkit::mysql::{unique_server_id, MySqlDb};
use testkit::mysql_url;

#[tokio::test]
async fn mysql_lag_counts_the_binlog_bytes_after_a_checkpoint_across_files() {
    // GIVEN a checkpoint, then writes, a binlog rotation, more writes
    let mut db = MySqlDb::create("hw_my_lag").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, s TEXT)").await;
    let checkpoint = db.binlog_position().await;
    db.exec("INSERT INTO t VALUES (1, REPEAT('x', 5000))").await;
    let before_rotation = db.binlog_position().await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (2, REPEAT('y', 5000))").await;
    let cfg = MySqlConfig::new(mysql_url(), unique_server_id(), vec![]);
    let mut probe = LagProbe::connect(&cfg).await.unwrap();
    let mut sql = Sql::connect(&cfg.url).await.unwrap();

    // WHEN the probe reads the lag (other tests may write meanwhile: the
    // server's sizes are read just before and just after)
    let files_before = binary_logs(&mut sql).await.unwrap();
    let lag = probe.lag_bytes(&checkpoint).await.unwrap().unwrap();
    let files_after = binary_logs(&mut sql).await.unwrap();

    // THEN it is the rest of the checkpoint's file plus every later file
    let low = binlog_lag(&files_before, &checkpoint).unwrap();
    let high = binlog_lag(&files_after, &checkpoint).unwrap();
    assert!(
        low as i64 <= lag && lag <= high as i64,
        "{low} <= {lag} <= {high}"
    );
    let first_file = files_before
        .iter()
        .find(|(f, _)| **f == *checkpoint.file)
        .unwrap()
        .1;
    assert!(
        first_file >= before_rotation.offset,
        "the rotated file is complete"
    );
    assert!(
        low >= (before_rotation.offset - checkpoint.offset) + 5000,
        "both rows, in two files: {low}"
    );
    // AND a purged (unknown) file gives no number
    let gone = MySqlPosition {
        file: "mysql-bin.000000".into(),
        offset: 4,
        gtid_set: None,
        tx_index: 0,
    };
    assert_eq!(probe.lag_bytes(&gone).await.unwrap(), None);
    db.drop_db().await;
}
