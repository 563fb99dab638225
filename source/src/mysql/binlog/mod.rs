//! Binlog event bodies. `mysql_async` frames the stream (packets, the
//! common header, the checksum footer); everything inside an event is
//! decoded here, by code that returns an error on any malformed input and
//! never panics (see the fuzz tests).

pub mod json;
pub mod reader;
pub mod rows;
pub mod table_map;

use reader::{DecodeError, DecodeResult, Reader};

/// Event type codes (MySQL `Log_event_type`, MariaDB extensions ≥ 160).
pub mod code {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS_V2: u8 = 30;
    pub const UPDATE_ROWS_V2: u8 = 31;
    pub const DELETE_ROWS_V2: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 171;
}

/// MariaDB GTID event flags.
pub const MARIADB_FL_STANDALONE: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsKind {
    Write,
    Update,
    Delete,
}

/// One decoded binlog event (the body; the header is `mysql_async`'s).
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    FormatDescription {
        server_version: String,
        /// Post-header length of each event type, indexed by type code − 1.
        post_header_lens: Vec<u8>,
    },
    /// The stream moves to `file` at `position` (`fake`: sent at the start
    /// of a dump, not written in the file).
    Rotate {
        file: String,
        position: u64,
    },
    Query {
        database: String,
        sql: String,
    },
    Xid {
        xid: u64,
    },
    /// MySQL: server UUID and transaction number.
    MySqlGtid {
        sid: [u8; 16],
        gno: u64,
    },
    /// MariaDB: domain, sequence number (server id is in the header) and
    /// whether the group is a standalone statement (DDL) with no COMMIT.
    MariaDbGtid {
        domain: u32,
        seq: u64,
        standalone: bool,
    },
    TableMap(table_map::TableMap),
    Rows {
        kind: RowsKind,
        table_id: u64,
        /// The rows part (after the post-header and v2 extra data).
        body: &'a [u8],
    },
    /// MariaDB ANNOTATE_ROWS / MySQL ROWS_QUERY: the statement text.
    Annotate,
    Heartbeat,
    /// Anything else: skipped (INTVAR, RAND, USER_VAR, PREVIOUS_GTIDS, …).
    Other(u8),
}

pub fn decode_event<'a>(
    type_code: u8,
    data: &'a [u8],
    post_header_lens: &[u8],
) -> DecodeResult<Event<'a>> {
    let post_header = |code: u8, default: usize| -> usize {
        post_header_lens
            .get(usize::from(code).wrapping_sub(1))
            .map_or(default, |n| usize::from(*n))
    };
    let mut r = Reader::new(data);
    Ok(match type_code {
        code::FORMAT_DESCRIPTION => {
            r.skip(2, "format description version")?;
            let version = r.take(50, "format description server version")?;
            let end = version
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(version.len());
            r.skip(4, "format description timestamp")?;
            r.skip(1, "format description header length")?;
            Event::FormatDescription {
                server_version: String::from_utf8_lossy(&version[..end]).into_owned(),
                post_header_lens: r.rest().to_vec(),
            }
        }
        code::ROTATE => {
            let position = r.u64("rotate position")?;
            let file = String::from_utf8(r.rest().to_vec())
                .map_err(|_| DecodeError::new("rotate", "file name is not UTF-8"))?;
            Event::Rotate { file, position }
        }
        code::QUERY => {
            r.skip(8, "query thread id and exec time")?;
            let db_len = usize::from(r.u8("query database length")?);
            r.skip(2, "query error code")?;
            let status_len = usize::from(r.u16("query status length")?);
            r.skip(
                post_header(code::QUERY, 13).saturating_sub(13),
                "query post header",
            )?;
            r.skip(status_len, "query status variables")?;
            let db = r.take(db_len, "query database")?;
            r.skip(1, "query database terminator")?;
            Event::Query {
                database: String::from_utf8_lossy(db).into_owned(),
                sql: String::from_utf8_lossy(r.rest()).into_owned(),
            }
        }
        code::XID => Event::Xid { xid: r.u64("xid")? },
        code::GTID => {
            r.skip(1, "gtid flags")?;
            let mut sid = [0u8; 16];
            sid.copy_from_slice(r.take(16, "gtid sid")?);
            Event::MySqlGtid {
                sid,
                gno: r.u64("gtid gno")?,
            }
        }
        code::MARIADB_GTID => {
            let seq = r.u64("mariadb gtid sequence")?;
            let domain = r.u32("mariadb gtid domain")?;
            let flags = r.u8("mariadb gtid flags")?;
            Event::MariaDbGtid {
                domain,
                seq,
                standalone: flags & MARIADB_FL_STANDALONE != 0,
            }
        }
        code::TABLE_MAP => {
            let id_len = if post_header(code::TABLE_MAP, 8) == 6 {
                4
            } else {
                6
            };
            Event::TableMap(table_map::decode_table_map(data, id_len)?)
        }
        code::WRITE_ROWS_V1..=code::DELETE_ROWS_V1 | code::WRITE_ROWS_V2..=code::DELETE_ROWS_V2 => {
            let v2 = type_code >= code::WRITE_ROWS_V2;
            let kind = match type_code {
                code::WRITE_ROWS_V1 | code::WRITE_ROWS_V2 => RowsKind::Write,
                code::UPDATE_ROWS_V1 | code::UPDATE_ROWS_V2 => RowsKind::Update,
                _ => RowsKind::Delete,
            };
            let id_len = if post_header(type_code, if v2 { 10 } else { 8 }) == 6 {
                4
            } else {
                6
            };
            let table_id = r.uint_le(id_len, "rows table id")?;
            r.skip(2, "rows flags")?;
            if v2 {
                let extra = usize::from(r.u16("rows extra data length")?);
                r.skip(extra.saturating_sub(2), "rows extra data")?;
            }
            Event::Rows {
                kind,
                table_id,
                body: r.rest(),
            }
        }
        code::PARTIAL_UPDATE_ROWS => return Err(DecodeError::new(
            "PARTIAL_UPDATE_ROWS_EVENT",
            "partial JSON updates are not supported; set binlog_row_value_options='' on the server",
        )),
        code::MARIADB_WRITE_ROWS_COMPRESSED_V1..=code::MARIADB_DELETE_ROWS_COMPRESSED_V1
        | code::MARIADB_QUERY_COMPRESSED => return Err(DecodeError::new(
            "compressed binlog event",
            "compressed binlog events are not supported; set log_bin_compress=OFF on the server",
        )),
        code::MARIADB_ANNOTATE_ROWS | code::ROWS_QUERY => Event::Annotate,
        code::HEARTBEAT | code::HEARTBEAT_V2 => Event::Heartbeat,
        other => Event::Other(other),
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
