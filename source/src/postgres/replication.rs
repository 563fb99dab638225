//! Walsender commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT,
//! START_REPLICATION) and the CopyBoth stream of XLogData and keepalives.

use bytes::{Buf, BufMut, Bytes};
use headwater_core::Lsn;

use crate::postgres::conn::framing::parse_error;
use crate::postgres::conn::{startup, ConnParams, Connection};
use crate::postgres::error::{PgError, PgResult, ServerError};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[derive(Clone, Debug)]
pub struct SystemId {
    pub systemid: String,
    pub timeline: u32,
    pub xlogpos: Lsn,
}

#[derive(Clone, Debug)]
pub struct CreatedSlot {
    pub consistent_point: Lsn,
    pub snapshot_name: Option<String>,
}

/// What START_REPLICATION asks of pgoutput.
#[derive(Clone, Debug)]
pub struct StartOptions {
    pub proto_version: u32,
    pub publication: String,
    pub binary: bool,
    pub messages: bool,
    pub streaming: bool,
}

pub struct ReplicationConn {
    pub conn: Connection,
}

fn lsn_of(text: Option<&Option<String>>, what: &'static str) -> PgResult<Lsn> {
    text.and_then(|t| t.as_deref())
        .ok_or_else(|| PgError::protocol(what, "missing LSN column"))?
        .parse()
        .map_err(|e| PgError::protocol(what, format!("{e}")))
}

/// Maps the server's refusals of replication commands to the errors that
/// tell the operator what to do.
pub fn replication_error(slot: &str, context: String, error: ServerError) -> PgError {
    if error.code == "55006" {
        let pid = error
            .message
            .rsplit(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        return PgError::SlotActive {
            slot: slot.to_owned(),
            pid,
        };
    }
    let invalidated = error.message.contains("invalidated")
        || error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("invalidated"));
    if invalidated {
        return PgError::SlotInvalidated {
            slot: slot.to_owned(),
            confirmed_flush: None,
        };
    }
    if error.code == "42501" && error.message.contains("replication") {
        return PgError::Server { context, error };
    }
    PgError::Server { context, error }
}

impl ReplicationConn {
    pub async fn connect(params: &ConnParams) -> PgResult<Self> {
        Ok(ReplicationConn {
            conn: startup::connect(params, true).await?,
        })
    }

    pub async fn identify_system(&mut self) -> PgResult<SystemId> {
        let rows = self.conn.simple_query("IDENTIFY_SYSTEM").await?;
        let row = rows
            .first()
            .ok_or_else(|| PgError::protocol("IDENTIFY_SYSTEM", "no row"))?;
        Ok(SystemId {
            systemid: row.first().cloned().flatten().unwrap_or_default(),
            timeline: row
                .get(1)
                .cloned()
                .flatten()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            xlogpos: lsn_of(row.get(2), "IDENTIFY_SYSTEM")?,
        })
    }

    /// Creates a pgoutput slot; with `export`, the snapshot it exports stays
    /// valid until the next command on this connection.
    pub async fn create_slot(&mut self, slot: &str, export: bool) -> PgResult<CreatedSlot> {
        let snapshot = if export { "export" } else { "nothing" };
        let sql = if self.conn.server_version >= 150000 {
            format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT '{snapshot}')",
                quote_ident(slot)
            )
        } else {
            let kw = if export {
                "EXPORT_SNAPSHOT"
            } else {
                "NOEXPORT_SNAPSHOT"
            };
            format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {kw}",
                quote_ident(slot)
            )
        };
        let rows = self.conn.simple_query(&sql).await.map_err(|e| match e {
            PgError::Server { context, error } => replication_error(slot, context, error),
            other => other,
        })?;
        let row = rows
            .first()
            .ok_or_else(|| PgError::protocol("CREATE_REPLICATION_SLOT", "no row"))?;
        Ok(CreatedSlot {
            consistent_point: lsn_of(row.get(1), "CREATE_REPLICATION_SLOT")?,
            snapshot_name: row.get(2).cloned().flatten(),
        })
    }

    /// START_REPLICATION; the connection becomes a CopyBoth stream.
    pub async fn start(
        mut self,
        slot: &str,
        start: Lsn,
        options: &StartOptions,
    ) -> PgResult<CopyBoth> {
        let mut opts = vec![
            format!("proto_version '{}'", options.proto_version),
            format!(
                "publication_names {}",
                quote_literal(&quote_ident(&options.publication))
            ),
        ];
        if options.binary {
            opts.push("binary 'true'".into());
        }
        if options.messages {
            opts.push("messages 'true'".into());
        }
        if options.streaming {
            opts.push("streaming 'true'".into());
        }
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {start} ({})",
            quote_ident(slot),
            opts.join(", ")
        );
        postgres_protocol::message::frontend::query(&sql, &mut self.conn.write_buf)
            .map_err(|e| PgError::protocol("START_REPLICATION", e.to_string()))?;
        self.conn.flush("START_REPLICATION").await?;
        loop {
            let frame = self.conn.read_frame("START_REPLICATION").await?;
            match frame.tag {
                b'W' => return Ok(CopyBoth { conn: self.conn }),
                b'E' => {
                    return Err(replication_error(
                        slot,
                        format!("START_REPLICATION of slot `{slot}` at {start}"),
                        parse_error(frame.body),
                    ))
                }
                b'N' | b'S' => {}
                other => {
                    return Err(PgError::protocol(
                        "START_REPLICATION",
                        format!("unexpected message type {:?}", char::from(other)),
                    ))
                }
            }
        }
    }
}

#[derive(Debug)]
pub enum ReplMessage {
    XLogData {
        wal_start: Lsn,
        wal_end: Lsn,
        data: Bytes,
    },
    Keepalive {
        wal_end: Lsn,
        reply_requested: bool,
    },
}

/// The replication stream.
pub struct CopyBoth {
    pub conn: Connection,
}

impl CopyBoth {
    /// The next XLogData or keepalive; `None` when the server ended the
    /// stream. Cancel-safe.
    pub async fn recv(&mut self) -> PgResult<Option<ReplMessage>> {
        loop {
            let frame = self.conn.read_frame("streaming").await?;
            match frame.tag {
                b'd' => return parse_copy_data(frame.body).map(Some),
                b'c' => return Ok(None),
                b'E' => {
                    return Err(PgError::Server {
                        context: "the replication stream".into(),
                        error: parse_error(frame.body),
                    })
                }
                _ => {}
            }
        }
    }

    /// The next message if it is already buffered, without waiting.
    pub fn try_recv(&mut self) -> PgResult<Option<ReplMessage>> {
        loop {
            let frame = match self.conn.try_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.conn.lost("streaming", e)),
            };
            match frame.tag {
                b'd' => return parse_copy_data(frame.body).map(Some),
                b'c' => {
                    return Err(self.conn.lost(
                        "streaming",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server ended the replication stream",
                        ),
                    ))
                }
                b'E' => {
                    return Err(PgError::Server {
                        context: "the replication stream".into(),
                        error: parse_error(frame.body),
                    })
                }
                _ => {}
            }
        }
    }

    /// Sends a standby status update: everything up to `flushed` is safe.
    pub async fn send_status(&mut self, flushed: Lsn, reply: bool) -> PgResult<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
            - PG_EPOCH_OFFSET_MICROS;
        let buf = &mut self.conn.write_buf;
        buf.put_u8(b'd');
        buf.put_i32(4 + 1 + 8 * 4 + 1);
        buf.put_u8(b'r');
        buf.put_u64(flushed.0);
        buf.put_u64(flushed.0);
        buf.put_u64(flushed.0);
        buf.put_i64(now);
        buf.put_u8(u8::from(reply));
        self.conn.flush("sending a standby status update").await
    }

    pub async fn close(self) {
        self.conn.terminate().await;
    }
}

fn parse_copy_data(mut body: Bytes) -> PgResult<ReplMessage> {
    let short = || PgError::protocol("streaming", "short CopyData message");
    if !body.has_remaining() {
        return Err(short());
    }
    match body.get_u8() {
        b'w' => {
            if body.remaining() < 24 {
                return Err(short());
            }
            let wal_start = Lsn(body.get_u64());
            let wal_end = Lsn(body.get_u64());
            let _clock = body.get_i64();
            Ok(ReplMessage::XLogData {
                wal_start,
                wal_end,
                data: body,
            })
        }
        b'k' => {
            if body.remaining() < 17 {
                return Err(short());
            }
            let wal_end = Lsn(body.get_u64());
            let _clock = body.get_i64();
            Ok(ReplMessage::Keepalive {
                wal_end,
                reply_requested: body.get_u8() == 1,
            })
        }
        other => Err(PgError::protocol(
            "streaming",
            format!("unknown CopyData kind {:?}", char::from(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_active_names_pid() {
        let e = replication_error(
            "s1",
            "x".into(),
            ServerError {
                code: "55006".into(),
                message: "replication slot \"s1\" is active for PID 4711".into(),
                detail: None,
                hint: None,
            },
        );
        assert!(matches!(e, PgError::SlotActive { pid: 4711, .. }), "{e}");
    }

    #[test]
    fn copy_data_kinds() {
        let mut k = vec![b'k'];
        k.extend_from_slice(&7u64.to_be_bytes());
        k.extend_from_slice(&0i64.to_be_bytes());
        k.push(1);
        assert!(matches!(
            parse_copy_data(Bytes::from(k)).unwrap(),
            ReplMessage::Keepalive {
                wal_end: Lsn(7),
                reply_requested: true
            }
        ));
        assert!(parse_copy_data(Bytes::from_static(b"w\0\0")).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
