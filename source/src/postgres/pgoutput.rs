//! The pgoutput logical replication protocol (versions 1 and 2): bytes of
//! one XLogData payload to a [`LogicalMessage`] that borrows its values
//! from them (no copy, no reference count per column). Every length is
//! checked; malformed input is an error, never a panic.

use bytes::Buf;

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

type Result<T> = std::result::Result<T, DecodeError>;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TupleField<'a> {
    Null,
    /// An unchanged TOASTed value the server did not send.
    Unchanged,
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// The columns of one tuple: checked when its message is decoded, then
/// read in place (no vector per row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuple<'a> {
    count: usize,
    data: &'a [u8],
}

impl<'a> Tuple<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> TupleIter<'a> {
        TupleIter {
            left: self.count,
            data: self.data,
        }
    }
}

pub struct TupleIter<'a> {
    left: usize,
    data: &'a [u8],
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = TupleField<'a>;

    fn next(&mut self) -> Option<TupleField<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when decoded; were a field malformed, the tuple would
        // just end early (and be reported short by its consumer).
        match field(&mut self.data) {
            Ok(field) => Some(field),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// One tuple column from the front of `buf`.
fn field<'a>(buf: &mut &'a [u8]) -> Result<TupleField<'a>> {
    let (&kind, rest) = buf
        .split_first()
        .ok_or_else(|| DecodeError("message ends inside tuple column kind".into()))?;
    *buf = rest;
    match kind {
        b'n' => Ok(TupleField::Null),
        b'u' => Ok(TupleField::Unchanged),
        b't' | b'b' => {
            let (len, rest) = buf.split_first_chunk::<4>().ok_or_else(|| {
                DecodeError(format!(
                    "message ends inside column length (needs 4 bytes, has {})",
                    buf.len()
                ))
            })?;
            let len = i32::from_be_bytes(*len);
            let len = usize::try_from(len)
                .map_err(|_| DecodeError(format!("negative column length {len}")))?;
            if rest.len() < len {
                return Err(DecodeError(format!(
                    "message ends inside column value (needs {len} bytes, has {})",
                    rest.len()
                )));
            }
            let (data, rest) = rest.split_at(len);
            *buf = rest;
            Ok(if kind == b't' {
                TupleField::Text(data)
            } else {
                TupleField::Binary(data)
            })
        }
        other => Err(DecodeError(format!(
            "unknown tuple column kind {other:#04x}"
        ))),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RelationColumn {
    /// Part of the replica identity (key).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub oid: u32,
    pub namespace: String,
    pub name: String,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelationColumn>,
}

/// Truncate options.
pub const TRUNCATE_CASCADE: u8 = 1;
pub const TRUNCATE_RESTART_IDENTITY: u8 = 2;

#[derive(Clone, Debug, PartialEq)]
pub enum LogicalMessage<'a> {
    Begin {
        final_lsn: u64,
        commit_ts: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_ts: i64,
    },
    Origin {
        commit_lsn: u64,
        name: String,
    },
    Relation(Relation),
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        rel: u32,
        new: Tuple<'a>,
    },
    Update {
        rel: u32,
        /// `K` (key only) or `O` (full old row), when sent.
        old: Option<(u8, Tuple<'a>)>,
        new: Tuple<'a>,
    },
    Delete {
        rel: u32,
        old: (u8, Tuple<'a>),
    },
    Truncate {
        options: u8,
        rels: Vec<u32>,
    },
    Message {
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: &'a [u8],
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_ts: i64,
    },
    StreamAbort {
        xid: u32,
        subxid: u32,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn need(&self, n: usize, what: &str) -> Result<()> {
        if self.buf.remaining() < n {
            Err(DecodeError(format!(
                "message ends inside {what} (needs {n} bytes, has {})",
                self.buf.remaining()
            )))
        } else {
            Ok(())
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }
    fn i16(&mut self, what: &str) -> Result<i16> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        self.need(8, what)?;
        Ok(self.buf.get_u64())
    }
    fn i64(&mut self, what: &str) -> Result<i64> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let end = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| DecodeError(format!("{what} is not NUL-terminated")))?;
        let text = std::str::from_utf8(&self.buf[..end])
            .map_err(|_| DecodeError(format!("{what} is not UTF-8")))?
            .to_owned();
        self.buf.advance(end + 1);
        Ok(text)
    }
    fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        self.need(len, what)?;
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }
    fn tuple(&mut self) -> Result<Tuple<'a>> {
        let count = self.i16("tuple column count")?;
        let count = usize::try_from(count)
            .map_err(|_| DecodeError(format!("negative tuple column count {count}")))?;
        // Each column takes at least one byte.
        self.need(count, "tuple data")?;
        let start = self.buf;
        for _ in 0..count {
            field(&mut self.buf)?;
        }
        let used = start.len() - self.buf.len();
        Ok(Tuple {
            count,
            data: &start[..used],
        })
    }
}

/// Decodes one pgoutput message. `in_stream`: between Stream Start and
/// Stream Stop, where data messages carry their transaction's xid.
/// Returns the xid of a streamed data message alongside.
pub fn decode(data: &[u8], in_stream: bool) -> Result<(LogicalMessage<'_>, Option<u32>)> {
    let mut r = Reader { buf: data };
    let tag = r.u8("message type")?;
    let xid = if in_stream && matches!(tag, b'R' | b'Y' | b'I' | b'U' | b'D' | b'T' | b'M') {
        Some(r.u32("streamed xid")?)
    } else {
        None
    };
    let message = match tag {
        b'B' => LogicalMessage::Begin {
            final_lsn: r.u64("begin LSN")?,
            commit_ts: r.i64("begin timestamp")?,
            xid: r.u32("begin xid")?,
        },
        b'C' => LogicalMessage::Commit {
            flags: r.u8("commit flags")?,
            commit_lsn: r.u64("commit LSN")?,
            end_lsn: r.u64("commit end LSN")?,
            commit_ts: r.i64("commit timestamp")?,
        },
        b'O' => LogicalMessage::Origin {
            commit_lsn: r.u64("origin LSN")?,
            name: r.string("origin name")?,
        },
        b'R' => {
            let oid = r.u32("relation oid")?;
            let namespace = r.string("relation namespace")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let count = r.i16("relation column count")?;
            let count = usize::try_from(count)
                .map_err(|_| DecodeError(format!("negative column count {count}")))?;
            r.need(count, "relation columns")?;
            let mut columns = Vec::with_capacity(count);
            for _ in 0..count {
                columns.push(RelationColumn {
                    key: r.u8("column flags")? & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.u32("column type")?,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            LogicalMessage::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'Y' => LogicalMessage::Type {
            oid: r.u32("type oid")?,
            namespace: r.string("type namespace")?,
            name: r.string("type name")?,
        },
        b'I' => {
            let rel = r.u32("relation oid")?;
            match r.u8("insert tuple kind")? {
                b'N' => LogicalMessage::Insert {
                    rel,
                    new: r.tuple()?,
                },
                other => return Err(DecodeError(format!("insert with tuple kind {other:#04x}"))),
            }
        }
        b'U' => {
            let rel = r.u32("relation oid")?;
            let mut old = None;
            let mut kind = r.u8("update tuple kind")?;
            if kind == b'K' || kind == b'O' {
                old = Some((kind, r.tuple()?));
                kind = r.u8("update tuple kind")?;
            }
            if kind != b'N' {
                return Err(DecodeError(format!("update with tuple kind {kind:#04x}")));
            }
            LogicalMessage::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.u32("relation oid")?;
            let kind = r.u8("delete tuple kind")?;
            if kind != b'K' && kind != b'O' {
                return Err(DecodeError(format!("delete with tuple kind {kind:#04x}")));
            }
            LogicalMessage::Delete {
                rel,
                old: (kind, r.tuple()?),
            }
        }
        b'T' => {
            let count = r.i32("truncate relation count")?;
            let count = usize::try_from(count)
                .map_err(|_| DecodeError(format!("negative relation count {count}")))?;
            let options = r.u8("truncate options")?;
            r.need(count.saturating_mul(4), "truncate relations")?;
            let rels = (0..count)
                .map(|_| r.u32("truncate relation"))
                .collect::<Result<_>>()?;
            LogicalMessage::Truncate { options, rels }
        }
        b'M' => {
            let flags = r.u8("message flags")?;
            let lsn = r.u64("message LSN")?;
            let prefix = r.string("message prefix")?;
            let len = r.i32("message length")?;
            let len = usize::try_from(len)
                .map_err(|_| DecodeError(format!("negative message length {len}")))?;
            LogicalMessage::Message {
                transactional: flags & 1 == 1,
                lsn,
                prefix,
                content: r.bytes(len, "message content")?,
            }
        }
        b'S' => LogicalMessage::StreamStart {
            xid: r.u32("stream xid")?,
            first_segment: r.u8("stream first segment")? == 1,
        },
        b'E' => LogicalMessage::StreamStop,
        b'c' => LogicalMessage::StreamCommit {
            xid: r.u32("stream commit xid")?,
            flags: r.u8("stream commit flags")?,
            commit_lsn: r.u64("stream commit LSN")?,
            end_lsn: r.u64("stream commit end LSN")?,
            commit_ts: r.i64("stream commit timestamp")?,
        },
        b'A' => LogicalMessage::StreamAbort {
            xid: r.u32("stream abort xid")?,
            subxid: r.u32("stream abort subxid")?,
        },
        other => {
            return Err(DecodeError(format!(
                "unknown pgoutput message type {other:#04x}"
            )))
        }
    };
    Ok((message, xid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tuple(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (fields.len() as i16).to_be_bytes().to_vec();
        for f in fields {
            match f {
                None => out.push(b'n'),
                Some(v) => {
                    out.push(b't');
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
            }
        }
        out
    }

    #[test]
    fn origin_names_where_the_transaction_came_from() {
        let mut msg = vec![b'O'];
        msg.extend_from_slice(&0x1_6B37_4D48u64.to_be_bytes());
        msg.extend_from_slice(b"upstream_a\0");
        let (m, xid) = decode(&msg, false).unwrap();
        assert_eq!(xid, None);
        let LogicalMessage::Origin { commit_lsn, name } = m else {
            panic!("not an origin: {m:?}");
        };
        assert_eq!(commit_lsn, 0x1_6B37_4D48);
        assert_eq!(name, "upstream_a");
        assert!(decode(b"O\0\0\0\0\0\0\0\x01no-terminator", false).is_err());
    }

    #[test]
    fn insert_and_streamed_insert() {
        let mut msg = vec![b'I'];
        msg.extend_from_slice(&16384u32.to_be_bytes());
        msg.push(b'N');
        msg.extend(tuple(&[Some(b"42"), None]));
        let (m, xid) = decode(&msg, false).unwrap();
        assert_eq!(xid, None);
        let LogicalMessage::Insert { rel, new } = m else {
            panic!("not an insert: {m:?}");
        };
        assert_eq!(rel, 16384);
        assert_eq!(new.len(), 2);
        assert_eq!(
            new.iter().collect::<Vec<_>>(),
            [TupleField::Text(b"42"), TupleField::Null]
        );
        let mut streamed = vec![b'I'];
        streamed.extend_from_slice(&77u32.to_be_bytes());
        streamed.extend_from_slice(&msg[1..]);
        let (_, xid) = decode(&streamed, true).unwrap();
        assert_eq!(xid, Some(77));
    }

    #[test]
    fn update_with_old_tuple_and_truncate() {
        let mut msg = vec![b'U'];
        msg.extend_from_slice(&1u32.to_be_bytes());
        msg.push(b'O');
        msg.extend(tuple(&[Some(b"1")]));
        msg.push(b'N');
        msg.extend(tuple(&[Some(b"2")]));
        let (m, _) = decode(&msg, false).unwrap();
        assert!(matches!(
            m,
            LogicalMessage::Update {
                old: Some((b'O', _)),
                ..
            }
        ));
        let mut t = vec![b'T'];
        t.extend_from_slice(&2i32.to_be_bytes());
        t.push(TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY);
        t.extend_from_slice(&5u32.to_be_bytes());
        t.extend_from_slice(&6u32.to_be_bytes());
        assert_eq!(
            decode(&t, false).unwrap().0,
            LogicalMessage::Truncate {
                options: 3,
                rels: vec![5, 6]
            }
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(decode(b"B\0\0", false).is_err());
        assert!(decode(b"", false).is_err());
        assert!(decode(b"I\0\0\0\x01N\xff\xff", false).is_err());
        assert!(decode(b"Z", false).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256), stream in any::<bool>()) {
            let _ = decode(&data, stream);
        }

        #[test]
        fn arbitrary_tails_never_panic(tag in prop::sample::select(b"BCORYIUDTMSEcA".to_vec()), tail in proptest::collection::vec(any::<u8>(), 0..128), stream in any::<bool>()) {
            let mut data = vec![tag];
            data.extend(tail);
            let _ = decode(&data, stream);
        }
    }
}
