//! The initial snapshot: every table read with binary COPY inside one
//! transaction snapshot (the slot's exported one, so it meets the stream
//! at the slot's consistent point with no gap and no overlap), as `Read`
//! events in batches.
//!
//! A crash during the snapshot restarts it cleanly: the snapshot's last
//! batch carries the consistent point as checkpoint, so on restart a slot
//! whose source has no durable checkpoint is dropped and created again and
//! every table is read anew (rows already appended appear twice in the log:
//! at-least-once).
//!
//! A table added to the configuration later is read in a transaction that
//! first locks it against writes (`SHARE` mode), adds it to the publication,
//! copies it, waits until its rows are durable in the log, and only then
//! commits: changes after the commit are streamed, nothing before is lost,
//! and a crash before the commit leaves it out of the publication so the
//! next start reads it again.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use headwater_core::{Appender, ChangeEvent, Durable, EventBatch, Op, PgPosition, Position, Value};
use tokio_postgres::Client;

use crate::postgres::error::{PgError, PgResult};
use crate::postgres::replication::quote_ident;
use crate::postgres::slot::TableRef;
use crate::postgres::types::binary;
use crate::postgres::types::catalog::RelInfo;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Parses one binary-COPY tuple from the front of `buf`: `Ok(None)` when
/// more bytes are needed, `Ok(Some(None))` at the trailer.
fn take_tuple(
    buf: &mut BytesMut,
    columns: usize,
) -> Result<Option<Option<Vec<Option<bytes::Bytes>>>>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let count = i16::from_be_bytes([buf[0], buf[1]]);
    if count == -1 {
        buf.advance(2);
        return Ok(Some(None));
    }
    if usize::try_from(count).ok() != Some(columns) {
        return Err(format!("COPY row has {count} fields, expected {columns}"));
    }
    // Check the whole tuple is here before consuming anything.
    let mut at = 2usize;
    for _ in 0..columns {
        let Some(len) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len > 0 {
            at += len as usize;
        }
        if at > buf.len() {
            return Ok(None);
        }
    }
    let mut tuple = buf.split_to(at).freeze();
    tuple.advance(2);
    let mut fields = Vec::with_capacity(columns);
    for _ in 0..columns {
        let len = tuple.get_i32();
        if len < 0 {
            fields.push(None);
        } else {
            fields.push(Some(tuple.split_to(len as usize)));
        }
    }
    Ok(Some(Some(fields)))
}

fn skip_header(buf: &mut BytesMut) -> Result<bool, String> {
    if buf.len() < SIGNATURE.len() + 8 {
        return Ok(false);
    }
    if &buf[..SIGNATURE.len()] != SIGNATURE {
        return Err("COPY output does not start with the binary signature".into());
    }
    let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
    let total = SIGNATURE.len() + 8 + ext;
    if buf.len() < total {
        return Ok(false);
    }
    buf.advance(total);
    Ok(true)
}

/// Copies one table as `Read` events at `position`, `batch_rows` per batch;
/// returns the row count and the durability of the last batch.
pub async fn copy_table(
    client: &Client,
    source: &Arc<str>,
    table: &TableRef,
    info: &RelInfo,
    position: PgPosition,
    appender: &Arc<dyn Appender>,
    batch_rows: usize,
) -> PgResult<(u64, Durable)> {
    let columns: Vec<String> = info
        .schema
        .columns
        .iter()
        .zip(&info.types)
        .map(|(c, t)| {
            if t.binary_ok() {
                quote_ident(&c.name)
            } else {
                format!("{}::text", quote_ident(&c.name))
            }
        })
        .collect();
    let sql = format!(
        "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
        if columns.is_empty() {
            "".to_owned()
        } else {
            columns.join(", ")
        },
        table.quoted()
    );
    let failed = |e| PgError::sql(format!("copying table {}", table.id), e);
    let stream = client.copy_out(&sql).await.map_err(|e| {
        if e.code().map(|c| c.code()) == Some("42501") {
            PgError::NoSelect {
                user: "the configured role".into(),
                table: table.quoted(),
            }
        } else {
            failed(e)
        }
    })?;
    futures::pin_mut!(stream);
    let decode_err = |reason: String| PgError::Decode {
        lsn: position.commit_lsn,
        reason: format!("snapshot of {}: {reason}", table.id),
    };
    let mut buf = BytesMut::new();
    let mut header_done = false;
    let mut events = Vec::with_capacity(batch_rows.min(65_536));
    let mut rows = 0u64;
    // A long table reports its progress at a steady interval.
    let mut last_report = std::time::Instant::now();
    let mut last = Durable::ready();
    let ncols = info.types.len();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.map_err(failed)?);
        if !header_done {
            header_done = skip_header(&mut buf).map_err(decode_err)?;
            if !header_done {
                continue;
            }
        }
        while let Some(tuple) = take_tuple(&mut buf, ncols).map_err(decode_err)? {
            let Some(fields) = tuple else { break };
            let mut row = Vec::with_capacity(ncols);
            for (i, field) in fields.iter().enumerate() {
                row.push(match field {
                    None => Value::Null,
                    Some(data) => binary::decode(&info.types[i], data).map_err(|reason| {
                        decode_err(format!("column {}: {reason}", info.schema.columns[i].name))
                    })?,
                });
            }
            events.push(ChangeEvent {
                source: source.clone(),
                table: info.schema.table.clone(),
                op: Op::Read,
                key: info.key_indexes.iter().map(|i| row[*i].clone()).collect(),
                before: None,
                after: Some(row),
                position: Position::Postgres(position),
                commit_ts: None,
                tx_id: None,
                schema: info.schema.clone(),
                topic: None,
                headers: Vec::new(),
            });
            rows += 1;
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = std::time::Instant::now();
                tracing::info!(table = %table.id, rows, "snapshot of table in progress");
            }
            if events.len() >= batch_rows {
                let batch =
                    std::mem::replace(&mut events, Vec::with_capacity(batch_rows.min(65_536)));
                last = appender
                    .append(EventBatch {
                        events: batch,
                        checkpoint: None,
                    })
                    .await?;
            }
        }
    }
    if !events.is_empty() {
        last = appender
            .append(EventBatch {
                events,
                checkpoint: None,
            })
            .await?;
    }
    tracing::info!(table = %table.id, rows, "snapshot of table done");
    Ok((rows, last))
}

/// How often a long table copy logs how far it got.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_across_chunk_boundaries() {
        let mut data = BytesMut::new();
        data.extend_from_slice(SIGNATURE);
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(&2i16.to_be_bytes());
        data.extend_from_slice(&4i32.to_be_bytes());
        data.extend_from_slice(&7i32.to_be_bytes());
        data.extend_from_slice(&(-1i32).to_be_bytes());
        data.extend_from_slice(&(-1i16).to_be_bytes());
        let full = data.clone();
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            let header = skip_header(&mut buf).unwrap();
            if !header {
                continue;
            }
            if let Some(Some(fields)) = take_tuple(&mut buf, 2).unwrap() {
                assert_eq!(fields.len(), 2);
                assert!(fields[1].is_none());
            }
        }
        let mut buf = full;
        assert!(skip_header(&mut buf).unwrap());
        assert!(take_tuple(&mut buf, 2).unwrap().unwrap().is_some());
        assert!(take_tuple(&mut buf, 2).unwrap().unwrap().is_none());
        assert!(take_tuple(&mut BytesMut::from(&b"\x00\x05"[..]), 2).is_err());
    }
}
