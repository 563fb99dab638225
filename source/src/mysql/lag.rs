//! How far behind a source is: the bytes of binlog between its last
//! durable checkpoint and the server's current end, summed across files
//! (the MySQL counterpart of the PostgreSQL source's WAL lag).

use headwater_core::MySqlPosition;

use super::config::MySqlConfig;
use super::conn::{number, text, Sql};
use super::error::Result;

/// A SQL connection kept open to read the binlog's size. Needs REPLICATION
/// CLIENT (MariaDB: BINLOG MONITOR), as the source does.
pub struct LagProbe {
    sql: Sql,
}

impl LagProbe {
    pub async fn connect(config: &MySqlConfig) -> Result<Self> {
        Ok(LagProbe {
            sql: Sql::connect(&config.url).await?,
        })
    }

    /// Bytes of binlog after `checkpoint` (the source's durable position):
    /// the rest of its file plus every later file, up to the server's
    /// current position. `None` when the checkpoint's file is no longer on
    /// the server (purged: the lag is unknown, and the source needs a new
    /// snapshot).
    pub async fn lag_bytes(&mut self, checkpoint: &MySqlPosition) -> Result<Option<i64>> {
        let files = binary_logs(&mut self.sql).await?;
        Ok(binlog_lag(&files, checkpoint).map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
    }
}

/// `SHOW BINARY LOGS`: each binlog file and its size, oldest first (the
/// last file's size is the server's current position).
pub async fn binary_logs(sql: &mut Sql) -> Result<Vec<(String, u64)>> {
    let rows = sql.text_rows("SHOW BINARY LOGS").await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.first().and_then(text)?, r.get(1).and_then(number)?)))
        .collect())
}

/// The bytes of `files` (name, size; oldest first) after `checkpoint`;
/// `None` when its file is not among them.
pub fn binlog_lag(files: &[(String, u64)], checkpoint: &MySqlPosition) -> Option<u64> {
    let at = files
        .iter()
        .position(|(name, _)| **name == *checkpoint.file)?;
    let rest_of_file = files[at].1.saturating_sub(checkpoint.offset);
    Some(rest_of_file + files[at + 1..].iter().map(|(_, size)| size).sum::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, offset: u64) -> MySqlPosition {
        MySqlPosition {
            file: file.into(),
            offset,
            gtid_set: None,
            tx_index: 0,
        }
    }

    #[test]
    fn sums_the_rest_of_the_file_and_every_later_one() {
        let files = vec![
            ("b.000001".to_owned(), 1000),
            ("b.000002".to_owned(), 500),
            ("b.000003".to_owned(), 300),
        ];
        assert_eq!(binlog_lag(&files, &at("b.000003", 300)), Some(0));
        assert_eq!(binlog_lag(&files, &at("b.000003", 100)), Some(200));
        assert_eq!(binlog_lag(&files, &at("b.000002", 400)), Some(100 + 300));
        assert_eq!(
            binlog_lag(&files, &at("b.000001", 4)),
            Some(996 + 500 + 300)
        );
        // a checkpoint past the end (file rewritten) counts as caught up
        assert_eq!(binlog_lag(&files, &at("b.000003", 999)), Some(0));
        // purged: unknown
        assert_eq!(binlog_lag(&files, &at("b.000000", 4)), None);
    }
}
