//! Streamed in-progress transactions (pgoutput protocol 2): their messages
//! are kept per top-level xid until Stream Commit or Abort — in memory up
//! to a limit, then in a spill file — so a huge transaction passes in
//! bounded memory and an aborted one never reaches the log.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bytes::Bytes;
use headwater_core::Lsn;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

use crate::postgres::error::{PgError, PgResult};

/// One buffered pgoutput message: its WAL position, its (sub)transaction
/// and its bytes (still in streamed form, xid included).
pub struct Buffered {
    pub lsn: Lsn,
    pub xid: u32,
    pub data: Bytes,
}

struct Txn {
    memory: Vec<Buffered>,
    memory_bytes: usize,
    spill: Option<(PathBuf, BufWriter<File>)>,
    aborted: HashSet<u32>,
}

pub struct StreamedTxns {
    limit_bytes: usize,
    dir: PathBuf,
    txns: HashMap<u32, Txn>,
}

fn spill_err(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PgError {
    let path = path.display().to_string();
    move |source| PgError::Spill { op, path, source }
}

impl StreamedTxns {
    pub fn new(limit_bytes: usize, dir: PathBuf) -> Self {
        StreamedTxns {
            limit_bytes,
            dir,
            txns: HashMap::new(),
        }
    }

    pub async fn push(&mut self, top_xid: u32, message: Buffered) -> PgResult<()> {
        let txn = self.txns.entry(top_xid).or_insert_with(|| Txn {
            memory: Vec::new(),
            memory_bytes: 0,
            spill: None,
            aborted: HashSet::new(),
        });
        if let Some((path, writer)) = &mut txn.spill {
            return write_record(writer, path, &message).await;
        }
        txn.memory_bytes += message.data.len() + 32;
        txn.memory.push(message);
        if txn.memory_bytes > self.limit_bytes {
            let (path, file) = crate::spill::create(&self.dir, &format!("pg-stream-{top_xid}"))
                .await
                .map_err(|e| PgError::Spill {
                    op: e.op,
                    path: e.path.display().to_string(),
                    source: e.source,
                })?;
            let mut writer = BufWriter::with_capacity(1 << 20, file);
            for m in txn.memory.drain(..) {
                write_record(&mut writer, &path, &m).await?;
            }
            txn.memory_bytes = 0;
            tracing::debug!(xid = top_xid, path = %path.display(), "streamed transaction spills to disk");
            txn.spill = Some((path, writer));
        }
        Ok(())
    }

    /// Stream Abort: the whole transaction, or one subtransaction of it.
    /// (A spill file goes with its descriptor.)
    pub async fn abort(&mut self, top_xid: u32, sub_xid: u32) {
        if top_xid == sub_xid {
            self.txns.remove(&top_xid);
        } else if let Some(txn) = self.txns.get_mut(&top_xid) {
            txn.memory.retain(|m| m.xid != sub_xid);
            txn.aborted.insert(sub_xid);
        }
    }

    /// Stream Commit: hands the transaction's messages over, in order.
    pub async fn take(&mut self, top_xid: u32) -> PgResult<Replay> {
        let Some(txn) = self.txns.remove(&top_xid) else {
            return Ok(Replay::Memory(Vec::new().into_iter()));
        };
        match txn.spill {
            None => Ok(Replay::Memory(txn.memory.into_iter())),
            Some((path, mut writer)) => {
                writer
                    .flush()
                    .await
                    .map_err(spill_err("writing spill file", &path))?;
                let mut file = writer.into_inner();
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(spill_err("rewinding spill file", &path))?;
                Ok(Replay::File {
                    reader: BufReader::with_capacity(1 << 20, file),
                    path,
                    aborted: txn.aborted,
                })
            }
        }
    }

    /// Forgets every open transaction and its spill file (shutdown).
    pub fn clear(&mut self) {
        self.txns.clear();
    }
}

async fn write_record(
    writer: &mut BufWriter<File>,
    path: &std::path::Path,
    m: &Buffered,
) -> PgResult<()> {
    let len = u32::try_from(m.data.len()).map_err(|_| PgError::Spill {
        op: "writing spill file",
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "message over 4 GiB"),
    })?;
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&m.lsn.0.to_be_bytes());
    head[8..12].copy_from_slice(&m.xid.to_be_bytes());
    head[12..].copy_from_slice(&len.to_be_bytes());
    writer
        .write_all(&head)
        .await
        .map_err(spill_err("writing spill file", path))?;
    writer
        .write_all(&m.data)
        .await
        .map_err(spill_err("writing spill file", path))
}

/// A committed streamed transaction's messages, read back one at a time.
pub enum Replay {
    Memory(std::vec::IntoIter<Buffered>),
    File {
        reader: BufReader<File>,
        path: PathBuf,
        aborted: HashSet<u32>,
    },
}

impl Replay {
    pub async fn next(&mut self) -> PgResult<Option<Buffered>> {
        match self {
            Replay::Memory(iter) => Ok(iter.next()),
            Replay::File {
                reader,
                path,
                aborted,
            } => loop {
                let mut head = [0u8; 16];
                match reader.read_exact(&mut head).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(spill_err("reading spill file", path)(e)),
                }
                let lsn = Lsn(u64::from_be_bytes(head[..8].try_into().unwrap_or_default()));
                let xid = u32::from_be_bytes(head[8..12].try_into().unwrap_or_default());
                let len = u32::from_be_bytes(head[12..].try_into().unwrap_or_default()) as usize;
                let mut data = vec![0u8; len];
                reader
                    .read_exact(&mut data)
                    .await
                    .map_err(spill_err("reading spill file", path))?;
                if aborted.contains(&xid) {
                    continue;
                }
                return Ok(Some(Buffered {
                    lsn,
                    xid,
                    data: Bytes::from(data),
                }));
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(lsn: u64, xid: u32) -> Buffered {
        Buffered {
            lsn: Lsn(lsn),
            xid,
            data: Bytes::from(vec![7u8; 100]),
        }
    }

    #[tokio::test]
    async fn spills_and_replays_in_order_without_aborted_subtransactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut txns = StreamedTxns::new(1000, dir.path().to_owned());
        for i in 0..50 {
            txns.push(1, msg(i, if i % 10 == 3 { 2 } else { 1 }))
                .await
                .unwrap();
        }
        txns.abort(1, 2).await;
        let mut replay = txns.take(1).await.unwrap();
        let mut seen = Vec::new();
        while let Some(m) = replay.next().await.unwrap() {
            seen.push(m.lsn.0);
        }
        let expected: Vec<u64> = (0..50).filter(|i| i % 10 != 3).collect();
        assert_eq!(seen, expected);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn whole_abort_drops_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut txns = StreamedTxns::new(1 << 20, dir.path().to_owned());
        txns.push(5, msg(1, 5)).await.unwrap();
        txns.abort(5, 5).await;
        let mut replay = txns.take(5).await.unwrap();
        assert!(replay.next().await.unwrap().is_none());
    }
}
