//! Backend message framing on our own connection: read whole frames
//! (cancel-safe, so a `select!` may drop a read), write frontend messages,
//! run simple queries.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::stream::PgStream;
use crate::postgres::error::{PgError, PgResult, ServerError};

/// Largest backend message accepted (PostgreSQL's own limit is 1 GB).
const MAX_FRAME: usize = 1 << 30;
/// Reads ask for at least this much room: a busy stream is read in few,
/// large reads.
const READ_CHUNK: usize = 512 * 1024;

/// One backend message: its type byte and body (length word removed).
#[derive(Debug, Clone)]
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

pub struct Connection {
    stream: PgStream,
    read_buf: BytesMut,
    pub write_buf: BytesMut,
    /// `host:port/db`, for messages.
    pub target: String,
    /// `server_version_num`-style number from the `server_version` parameter.
    pub server_version: u32,
    /// Bytes read from the socket so far (the reader paces itself by it).
    pub received: u64,
}

impl Connection {
    pub fn new(stream: PgStream, target: String) -> Self {
        Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(1024),
            target,
            server_version: 0,
            received: 0,
        }
    }

    pub fn lost(&self, context: &'static str, source: io::Error) -> PgError {
        PgError::ConnectionLost {
            target: self.target.clone(),
            context,
            source,
        }
    }

    /// Whether this runs over a unix-domain socket.
    pub fn is_unix(&self) -> bool {
        self.stream.is_unix()
    }

    /// A whole frame already buffered, if any.
    pub fn try_frame(&mut self) -> io::Result<Option<Frame>> {
        if self.read_buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([
            self.read_buf[1],
            self.read_buf[2],
            self.read_buf[3],
            self.read_buf[4],
        ]) as usize;
        if !(4..=MAX_FRAME).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("backend message length {len} is out of range"),
            ));
        }
        let total = len + 1;
        if self.read_buf.len() < total {
            self.read_buf.reserve(total - self.read_buf.len());
            return Ok(None);
        }
        let tag = self.read_buf[0];
        let mut frame = self.read_buf.split_to(total);
        frame.advance(5);
        Ok(Some(Frame {
            tag,
            body: frame.freeze(),
        }))
    }

    /// Reads the next frame. Cancel-safe: bytes read stay buffered.
    pub async fn read_frame(&mut self, context: &'static str) -> PgResult<Frame> {
        loop {
            match self.try_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(self.lost(context, e)),
            }
            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                self.read_buf.reserve(READ_CHUNK);
            }
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => {
                    return Err(self.lost(
                        context,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "server closed the connection",
                        ),
                    ))
                }
                Ok(n) => self.received += n as u64,
                Err(e) => return Err(self.lost(context, e)),
            }
        }
    }

    /// Sends everything in `write_buf`.
    pub async fn flush(&mut self, context: &'static str) -> PgResult<()> {
        let result = async {
            self.stream.write_all(&self.write_buf).await?;
            self.stream.flush().await
        }
        .await;
        self.write_buf.clear();
        result.map_err(|e| self.lost(context, e))
    }

    /// Runs one simple-protocol statement; returns the rows as text.
    pub async fn simple_query(&mut self, sql: &str) -> PgResult<Vec<Vec<Option<String>>>> {
        postgres_protocol::message::frontend::query(sql, &mut self.write_buf)
            .map_err(|e| PgError::protocol("sending a query", e.to_string()))?;
        self.flush("sending a query").await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.read_frame("reading a query result").await?;
            match frame.tag {
                b'D' => rows.push(parse_data_row(frame.body)?),
                b'E' => error = Some(parse_error(frame.body)),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(error) => Err(PgError::Server {
                context: first_words(sql),
                error,
            }),
            None => Ok(rows),
        }
    }

    pub async fn terminate(mut self) {
        postgres_protocol::message::frontend::terminate(&mut self.write_buf);
        let _ = self.flush("closing").await;
        let _ = self.stream.shutdown().await;
    }
}

/// The statement's first words, for error context (never values).
pub fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

fn cstr(buf: &mut Bytes) -> Option<String> {
    let end = buf.iter().position(|b| *b == 0)?;
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.advance(end + 1);
    Some(text)
}

/// The fields of an `ErrorResponse` or `NoticeResponse`.
pub fn parse_error(mut body: Bytes) -> ServerError {
    let mut error = ServerError {
        code: String::new(),
        message: String::new(),
        detail: None,
        hint: None,
    };
    while body.has_remaining() {
        let kind = body.get_u8();
        if kind == 0 {
            break;
        }
        let Some(value) = cstr(&mut body) else { break };
        match kind {
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    error
}

fn parse_data_row(mut body: Bytes) -> PgResult<Vec<Option<String>>> {
    let bad = || PgError::protocol("reading a query result", "truncated DataRow");
    if body.remaining() < 2 {
        return Err(bad());
    }
    let count = body.get_i16();
    let mut row = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count {
        if body.remaining() < 4 {
            return Err(bad());
        }
        let len = body.get_i32();
        if len < 0 {
            row.push(None);
            continue;
        }
        let len = len as usize;
        if body.remaining() < len {
            return Err(bad());
        }
        row.push(Some(
            String::from_utf8_lossy(&body.split_to(len)).into_owned(),
        ));
    }
    Ok(row)
}

/// `list of cstrings` ending in an empty one (SASL mechanisms).
pub fn parse_cstr_list(mut body: Bytes) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(s) = cstr(&mut body) {
        if s.is_empty() {
            break;
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_fields() {
        let body = Bytes::from_static(b"SERROR\0C55006\0Mslot busy\0Hstop it\0\0");
        let e = parse_error(body);
        assert_eq!(e.code, "55006");
        assert_eq!(e.message, "slot busy");
        assert_eq!(e.hint.as_deref(), Some("stop it"));
    }

    #[test]
    fn data_rows() {
        let body = Bytes::from_static(b"\x00\x02\x00\x00\x00\x02ab\xff\xff\xff\xff");
        assert_eq!(
            parse_data_row(body).unwrap(),
            vec![Some("ab".to_owned()), None]
        );
        assert!(parse_data_row(Bytes::from_static(b"\x00\x01\x00\x00\x00\x09ab")).is_err());
    }
}
