//! The open transaction's row events, kept undecoded until its commit: in
//! memory up to `transaction_buffer` bytes, then in a spill file, so a
//! transaction of any size passes in bounded memory (the idea of the
//! PostgreSQL source's streamed-transaction spill). A rolled-back
//! transaction is never decoded.
//!
//! The spill file is unlinked as soon as it is created: it lives only as
//! long as its descriptor, so no crash leaves one behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

use super::binlog::RowsKind;
use super::error::{MySqlError, Result};
use super::schema::TableState;

/// Bytes counted for one buffered event besides its body.
const OVERHEAD: usize = 64;
/// Record header in the spill file: table index, kind (with
/// [`CHECKSUMMED`]), offset, timestamp, body length.
const HEAD: usize = 4 + 1 + 8 + 4 + 4;
/// Set in a record's kind byte when the event's checksum was verified.
const CHECKSUMMED: u8 = 0x80;

/// One rows event of the open transaction.
pub struct RowsEvent {
    pub table: Arc<TableState>,
    pub kind: RowsKind,
    /// Start of the event in the binlog file.
    pub offset: u64,
    pub timestamp: u32,
    /// Whether its CRC32 was verified on receipt (for a decode error).
    pub checksummed: bool,
    pub body: Vec<u8>,
}

/// Counters a test or a metric can read while the source runs.
#[derive(Debug, Default)]
pub struct TxBufferStats {
    /// Most bytes one transaction ever held in memory.
    pub high_water_bytes: AtomicU64,
    /// Transactions that spilled to disk, and the bytes read back from
    /// there at their commits (a rolled-back transaction is never read).
    pub spilled_transactions: AtomicU64,
    pub spilled_bytes: AtomicU64,
}

struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    records: u64,
}

pub struct TxBuffer {
    limit: usize,
    dir: PathBuf,
    stats: Arc<TxBufferStats>,
    /// Tables of this transaction (spill records name them by index).
    tables: Vec<Arc<TableState>>,
    memory: Vec<RowsEvent>,
    memory_bytes: usize,
    spill: Option<Spill>,
}

fn spill_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MySqlError {
    let path = path.display().to_string();
    move |source| MySqlError::Spill { op, path, source }
}

impl TxBuffer {
    pub fn new(limit: usize, dir: PathBuf, stats: Arc<TxBufferStats>) -> Self {
        TxBuffer {
            limit,
            dir,
            stats,
            tables: Vec::new(),
            memory: Vec::new(),
            memory_bytes: 0,
            spill: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.spill.is_none()
    }

    /// Adds a rows event; past the memory limit it (and what memory held)
    /// goes to the spill file, so memory never holds more than the limit.
    pub async fn push(&mut self, event: RowsEvent) -> Result<()> {
        let index = match self
            .tables
            .iter()
            .rposition(|t| Arc::ptr_eq(t, &event.table))
        {
            Some(i) => i,
            None => {
                self.tables.push(event.table.clone());
                self.tables.len() - 1
            }
        };
        let size = event.body.len() + OVERHEAD;
        if self.spill.is_none() && self.memory_bytes + size > self.limit {
            self.start_spill().await?;
        }
        if let Some(spill) = &mut self.spill {
            return write_record(spill, index, &event).await;
        }
        self.memory_bytes += size;
        self.stats
            .high_water_bytes
            .fetch_max(self.memory_bytes as u64, Ordering::Relaxed);
        self.memory.push(event);
        Ok(())
    }

    async fn start_spill(&mut self) -> Result<()> {
        let (path, file) = crate::spill::create(&self.dir, "mysql-tx")
            .await
            .map_err(|e| MySqlError::Spill {
                op: e.op,
                path: e.path.display().to_string(),
                source: e.source,
            })?;
        tracing::debug!(path = %path.display(), "mysql: transaction larger than transaction_buffer; spilling to disk");
        self.stats
            .spilled_transactions
            .fetch_add(1, Ordering::Relaxed);
        let mut spill = Spill {
            path,
            writer: BufWriter::with_capacity(1 << 20, file),
            records: 0,
        };
        for event in self.memory.drain(..) {
            let index = self
                .tables
                .iter()
                .position(|t| Arc::ptr_eq(t, &event.table))
                .unwrap_or_default();
            write_record(&mut spill, index, &event).await?;
        }
        self.memory_bytes = 0;
        self.spill = Some(spill);
        Ok(())
    }

    /// The transaction's events for its commit, in order; the buffer is
    /// empty again afterwards.
    pub async fn take(&mut self) -> Result<Replay> {
        let tables = std::mem::take(&mut self.tables);
        self.memory_bytes = 0;
        let memory = std::mem::take(&mut self.memory);
        match self.spill.take() {
            None => Ok(Replay::Memory(memory.into_iter())),
            Some(Spill {
                path,
                mut writer,
                records,
            }) => {
                writer
                    .flush()
                    .await
                    .map_err(spill_error("writing the spill file", &path))?;
                let mut file = writer.into_inner();
                file.rewind()
                    .await
                    .map_err(spill_error("rewinding the spill file", &path))?;
                Ok(Replay::File {
                    reader: BufReader::with_capacity(1 << 20, file),
                    path,
                    tables,
                    left: records,
                })
            }
        }
    }

    /// Forgets the transaction (rollback).
    pub fn clear(&mut self) {
        self.tables.clear();
        self.memory.clear();
        self.memory_bytes = 0;
        self.spill = None;
    }
}

async fn write_record(spill: &mut Spill, index: usize, event: &RowsEvent) -> Result<()> {
    let too_big = |what: &str| MySqlError::Spill {
        op: "writing the spill file",
        path: spill.path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned()),
    };
    let index = u32::try_from(index).map_err(|_| too_big("over 4G tables"))?;
    let len = u32::try_from(event.body.len()).map_err(|_| too_big("event over 4 GiB"))?;
    let kind = match event.kind {
        RowsKind::Write => 0u8,
        RowsKind::Update => 1,
        RowsKind::Delete => 2,
    };
    let mut head = [0u8; HEAD];
    head[..4].copy_from_slice(&index.to_le_bytes());
    head[4] = if event.checksummed {
        kind | CHECKSUMMED
    } else {
        kind
    };
    head[5..13].copy_from_slice(&event.offset.to_le_bytes());
    head[13..17].copy_from_slice(&event.timestamp.to_le_bytes());
    head[17..].copy_from_slice(&len.to_le_bytes());
    let path = spill.path.clone();
    spill
        .writer
        .write_all(&head)
        .await
        .map_err(spill_error("writing the spill file", &path))?;
    spill
        .writer
        .write_all(&event.body)
        .await
        .map_err(spill_error("writing the spill file", &path))?;
    spill.records += 1;
    Ok(())
}

/// A committed transaction's rows events, one at a time.
pub enum Replay {
    Memory(std::vec::IntoIter<RowsEvent>),
    File {
        reader: BufReader<File>,
        path: PathBuf,
        tables: Vec<Arc<TableState>>,
        left: u64,
    },
}

impl Replay {
    pub async fn next(&mut self, stats: &TxBufferStats) -> Result<Option<RowsEvent>> {
        match self {
            Replay::Memory(events) => Ok(events.next()),
            Replay::File {
                reader,
                path,
                tables,
                left,
            } => {
                if *left == 0 {
                    return Ok(None);
                }
                let mut head = [0u8; HEAD];
                reader
                    .read_exact(&mut head)
                    .await
                    .map_err(spill_error("reading the spill file", path))?;
                let word = |at: usize| {
                    u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]])
                };
                let index = word(0) as usize;
                let checksummed = head[4] & CHECKSUMMED != 0;
                let kind = match head[4] & !CHECKSUMMED {
                    0 => RowsKind::Write,
                    1 => RowsKind::Update,
                    _ => RowsKind::Delete,
                };
                let mut offset = [0u8; 8];
                offset.copy_from_slice(&head[5..13]);
                let timestamp = word(13);
                let len = word(17) as usize;
                // A row event is at most max_allowed_packet (1 GiB); more
                // means the file is damaged, not a reason to allocate it.
                if len > 1 << 30 {
                    return Err(MySqlError::Spill {
                        op: "reading the spill file",
                        path: path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("a record claims {len} bytes; the spill file is damaged"),
                        ),
                    });
                }
                let mut body = vec![0u8; len];
                reader
                    .read_exact(&mut body)
                    .await
                    .map_err(spill_error("reading the spill file", path))?;
                stats
                    .spilled_bytes
                    .fetch_add((HEAD + len) as u64, Ordering::Relaxed);
                let table = tables
                    .get(index)
                    .cloned()
                    .ok_or_else(|| MySqlError::Spill {
                        op: "reading the spill file",
                        path: path.display().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("record names table {index} of {}", tables.len()),
                        ),
                    })?;
                *left -= 1;
                Ok(Some(RowsEvent {
                    table,
                    kind,
                    offset: u64::from_le_bytes(offset),
                    timestamp,
                    checksummed,
                    body,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_core::{TableId, TableSchema};

    fn table(name: &str) -> Arc<TableState> {
        Arc::new(TableState {
            schema: Arc::new(TableSchema {
                table: TableId::new("db", name),
                version: 1,
                columns: Vec::new(),
            }),
            cells: Vec::new(),
            key: Vec::new(),
        })
    }

    fn event(table: &Arc<TableState>, i: u64) -> RowsEvent {
        RowsEvent {
            table: table.clone(),
            kind: [RowsKind::Write, RowsKind::Update, RowsKind::Delete][(i % 3) as usize],
            offset: 1000 + i,
            timestamp: 7,
            checksummed: i.is_multiple_of(2),
            body: vec![i as u8; 100 + (i as usize % 50)],
        }
    }

    async fn replay_all(
        buffer: &mut TxBuffer,
        stats: &TxBufferStats,
    ) -> Vec<(String, u64, RowsKind, bool, Vec<u8>)> {
        let mut replay = buffer.take().await.unwrap();
        let mut out = Vec::new();
        while let Some(e) = replay.next(stats).await.unwrap() {
            out.push((
                e.table.schema.table.name.to_string(),
                e.offset,
                e.kind,
                e.checksummed,
                e.body,
            ));
        }
        out
    }

    #[tokio::test]
    async fn spills_past_the_limit_and_replays_in_order_leaving_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(TxBufferStats::default());
        let mut buffer = TxBuffer::new(1000, dir.path().to_owned(), stats.clone());
        let (a, b) = (table("a"), table("b"));
        let mut expected = Vec::new();
        for i in 0..200 {
            let t = if i % 7 == 0 { &b } else { &a };
            let e = event(t, i);
            expected.push((
                t.schema.table.name.to_string(),
                e.offset,
                e.kind,
                e.checksummed,
                e.body.clone(),
            ));
            buffer.push(e).await.unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked at once"
        );
        assert_eq!(replay_all(&mut buffer, &stats).await, expected);
        assert!(stats.high_water_bytes.load(Ordering::Relaxed) <= 1000);
        assert_eq!(stats.spilled_transactions.load(Ordering::Relaxed), 1);
        // the buffer is reusable, and a small transaction stays in memory
        buffer.push(event(&a, 1)).await.unwrap();
        assert_eq!(replay_all(&mut buffer, &stats).await.len(), 1);
        assert_eq!(stats.spilled_transactions.load(Ordering::Relaxed), 1);
        assert!(buffer.is_empty());
    }

    #[tokio::test]
    async fn an_event_larger_than_the_limit_goes_straight_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(TxBufferStats::default());
        let mut buffer = TxBuffer::new(10, dir.path().to_owned(), stats.clone());
        buffer.push(event(&table("a"), 3)).await.unwrap();
        assert_eq!(stats.high_water_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(replay_all(&mut buffer, &stats).await.len(), 1);
    }

    #[tokio::test]
    async fn rollback_forgets_everything() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(TxBufferStats::default());
        let mut buffer = TxBuffer::new(150, dir.path().to_owned(), stats.clone());
        for i in 0..5 {
            buffer.push(event(&table("a"), i)).await.unwrap();
        }
        buffer.clear();
        assert!(buffer.is_empty());
        assert!(replay_all(&mut buffer, &stats).await.is_empty());
    }
}
