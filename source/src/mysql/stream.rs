//! The binlog stream: events in, whole transactions out.
//!
//! A transaction's row events are gathered, undecoded, until its XID (or
//! COMMIT, or the end of a standalone DDL) — in memory up to
//! `transaction_buffer`, then in a spill file ([`super::txbuf`]) — and
//! then decoded and appended; consecutive small transactions are coalesced
//! into one batch while more events are already waiting. A transaction of
//! more than `max_batch_events` rows is appended in several batches; only
//! a batch that ends at a commit carries a checkpoint (the position after
//! that commit, with the GTID set executed so far), so a restart goes back
//! to the last commit whole in the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use headwater_core::{
    ChangeEvent, MySqlPosition, Op, Position, SourceContext, TableId, Timestamp, Value,
};
use mysql_async::binlog::events::Event as RawEvent;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use tracing::{debug, info};

use super::binlog::reader::{crc32, DecodeError};
use super::binlog::rows::decode_rows;
use super::binlog::table_map::TableMap;
use super::binlog::{code, decode_event, Event, RowsKind};
use super::config::{MySqlConfig, ResumeBy};
use super::conn::{opts, Sql};
use super::ddl;
use super::error::{codes, Integrity, MySqlError, Result};
use super::gtid::Gtids;
use super::schema::{load_info, Schemas, TableInfo, TableState};
use super::txbuf::{RowsEvent, TxBuffer, TxBufferStats};
use crate::driver::{self, Batcher, Kind, Reader};

/// Where to start and what has been executed up to there.
#[derive(Clone, Debug)]
pub struct Start {
    pub position: MySqlPosition,
    pub gtids: Option<Gtids>,
}

impl Start {
    /// Whether the stream starts from the GTID set rather than file:offset.
    pub fn by_gtid(&self, resume_by: ResumeBy) -> bool {
        resume_by == ResumeBy::Gtid && self.gtids.as_ref().is_some_and(|g| !g.to_text().is_empty())
    }

    /// At `file:offset`, with the GTID set executed there (if GTIDs are on).
    pub fn at(file: String, offset: u64, gtids: Option<Gtids>) -> Start {
        Start {
            position: MySqlPosition {
                file: file.into(),
                offset,
                gtid_set: gtids.as_ref().map(|g| g.to_text().into()),
                tx_index: 0,
            },
            gtids,
        }
    }
}

enum PendingGtid {
    MariaDb { domain: u32, server: u32, seq: u64 },
    MySql { sid: [u8; 16], gno: u64 },
}

pub struct Streamer<'a> {
    cfg: &'a MySqlConfig,
    ctx: &'a SourceContext,
    sql: Sql,
    schemas: &'a mut Schemas,
    info: HashMap<TableId, Option<Arc<TableInfo>>>,
    tables: HashMap<u64, Option<(TableMap, Arc<TableState>)>>,
    file: Arc<str>,
    post_header_lens: Vec<u8>,
    gtids: Option<Gtids>,
    /// The open transaction's row events, undecoded.
    tx_rows: TxBuffer,
    /// Its already-built events (TRUNCATE).
    tx_events: Vec<ChangeEvent>,
    stats: Arc<TxBufferStats>,
    tx_gtid: Option<PendingGtid>,
    tx_open: bool,
    tx_id: Option<u64>,
    /// Rows of the committing transaction, decoded, on their way to the
    /// batch.
    pending: Vec<ChangeEvent>,
    skip_until: Option<MySqlPosition>,
    /// Where the stream started, for an error before its first event.
    start_text: String,
    seen_any: bool,
}

/// Events read ahead of decoding.
const READ_AHEAD: usize = 64;
/// How long complete transactions wait for more to share their batch.
const LINGER: Duration = Duration::from_millis(5);
/// A batch of only a checkpoint (transactions of tables not captured) is
/// appended at most this often.
const CHECKPOINT_ONLY_EVERY: Duration = Duration::from_secs(1);

pub(crate) type ReadItem = std::result::Result<RawEvent, ReadError>;

pub(crate) enum ReadError {
    Driver(mysql_async::Error),
    Checksum {
        found: u32,
        computed: u32,
        end: u64,
    },
    /// Nothing, not even a heartbeat, arrived for this long.
    Stalled {
        seconds: u64,
    },
    /// The server ended the stream.
    Ended,
}

/// Reads events off the binlog connection, verifying CRC32 checksums, until
/// the stream ends, fails, stalls, or the receiver is gone.
async fn read_events(
    mut stream: mysql_async::BinlogStream,
    tx: tokio::sync::mpsc::Sender<ReadItem>,
    stall: Duration,
) {
    loop {
        let item = match tokio::time::timeout(stall, stream.next()).await {
            Ok(Some(Ok(event))) => verify_checksum(&event).map(|()| event),
            Ok(Some(Err(e))) => Err(ReadError::Driver(e)),
            Ok(None) => Err(ReadError::Ended),
            Err(_) => Err(ReadError::Stalled {
                seconds: stall.as_secs(),
            }),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// `data` without its last four bytes when they are the event's CRC32.
fn strip_crc<'d>(
    header: &mysql_async::binlog::events::BinlogEventHeader,
    data: &'d [u8],
) -> &'d [u8] {
    let Some(split) = data.len().checked_sub(4) else {
        return data;
    };
    let (body, crc) = data.split_at(split);
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(&header.timestamp().to_le_bytes());
    head.push(header.event_type_raw());
    head.extend_from_slice(&header.server_id().to_le_bytes());
    head.extend_from_slice(&header.event_size().to_le_bytes());
    head.extend_from_slice(&header.log_pos().to_le_bytes());
    head.extend_from_slice(&header.flags_raw().to_le_bytes());
    if crc32(&[&head, body]).to_le_bytes() == crc {
        body
    } else {
        data
    }
}

/// The event's CRC32, when it carries one that [`verify_checksum`] checks.
fn crc32_of(event: &RawEvent) -> Option<u32> {
    use mysql_async::binlog::BinlogChecksumAlg;
    if event.header().event_type_raw() == code::FORMAT_DESCRIPTION {
        return None;
    }
    let Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)) = event.footer().get_checksum_alg()
    else {
        return None;
    };
    event.checksum().map(u32::from_le_bytes)
}

/// What a decode error of this event can say about the binlog: every
/// event that reaches decoding has passed [`verify_checksum`].
fn integrity(event: &RawEvent) -> Integrity {
    if crc32_of(event).is_some() {
        Integrity::ChecksumVerified
    } else {
        Integrity::NoChecksum
    }
}

fn verify_checksum(event: &RawEvent) -> std::result::Result<(), ReadError> {
    use mysql_async::binlog::BinlogChecksumAlg;
    let header = event.header();
    let Some(found) = crc32_of(event) else {
        return Ok(());
    };
    let computed = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
    if found != computed {
        return Err(ReadError::Checksum {
            found,
            computed,
            end: u64::from(header.log_pos()),
        });
    }
    Ok(())
}

impl<'a> Streamer<'a> {
    pub fn new(
        cfg: &'a MySqlConfig,
        ctx: &'a SourceContext,
        sql: Sql,
        schemas: &'a mut Schemas,
        start: &Start,
        stats: Arc<TxBufferStats>,
    ) -> Self {
        let spill_dir = cfg.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let limit = usize::try_from(cfg.transaction_buffer.0).unwrap_or(usize::MAX);
        Streamer {
            cfg,
            ctx,
            sql,
            schemas,
            info: HashMap::new(),
            tables: HashMap::new(),
            file: start.position.file.clone(),
            post_header_lens: Vec::new(),
            gtids: start.gtids.clone(),
            tx_rows: TxBuffer::new(limit, spill_dir, stats.clone()),
            tx_events: Vec::new(),
            stats,
            tx_gtid: None,
            tx_open: false,
            tx_id: None,
            pending: Vec::new(),
            skip_until: Some(start.position.clone()),
            start_text: start.position_text(),
            seen_any: false,
        }
    }

    fn here(&self, offset: u64) -> String {
        format!("{}:{offset}", self.file)
    }

    /// Streams from `start` until shutdown (Ok) or an error. Before an
    /// error it lets what was appended become durable, so a restart
    /// resumes after it.
    pub async fn run(&mut self, start: &Start) -> Result<()> {
        let mut conn = mysql_async::Conn::new(opts(&self.cfg.url)?)
            .await
            .map_err(|source| MySqlError::Connect {
                url: self.sql.url.clone(),
                source,
            })?;
        let url = self.sql.url.clone();
        let heartbeat_ns = u64::try_from(self.cfg.heartbeat.0.as_nanos()).unwrap_or(u64::MAX);
        let mut setup = vec![format!("SET @master_heartbeat_period = {heartbeat_ns}")];
        let gtid_text = start.gtids.as_ref().map(Gtids::to_text);
        let by_gtid = start.by_gtid(self.cfg.resume_by);
        if self.sql.mariadb {
            setup.push("SET @mariadb_slave_capability = 4".into());
            if let (true, Some(g)) = (by_gtid, &gtid_text) {
                setup.push(format!(
                    "SET @slave_connect_state = '{}'",
                    g.replace('\'', "")
                ));
                setup.push("SET @slave_gtid_strict_mode = 0".into());
                setup.push("SET @slave_gtid_ignore_duplicates = 0".into());
            }
        }
        for stmt in &setup {
            conn.query_drop(stmt.as_str())
                .await
                .map_err(|e| MySqlError::query(format!("`{stmt}`"), &url, e))?;
        }
        let file = start.position.file.clone();
        let mut request = BinlogStreamRequest::new(self.cfg.server_id)
            .with_filename(file.as_bytes())
            .with_pos(start.position.offset);
        let mysql_sids = match (&start.gtids, by_gtid && !self.sql.mariadb) {
            (Some(Gtids::MySql(set)), true) => Some(set.sids()),
            _ => None,
        };
        if let Some(sids) = &mysql_sids {
            request = request
                .with_gtid()
                .with_gtid_set(sids.iter().map(|(uuid, intervals)| {
                    let mut sid = mysql_async::Sid::new(*uuid);
                    for (a, b) in intervals {
                        sid = sid.with_interval(mysql_async::GnoInterval::new(*a, *b));
                    }
                    sid
                }));
        }
        info!(position = %start.position_text(), by_gtid, "mysql: starting binlog stream");
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| self.stream_error(e, &start.position_text()))?;
        // Reading, framing and checksumming run on their own task, a few
        // events ahead of decoding: the two overlap on separate cores.
        let stall = self.cfg.heartbeat.0 * 3 + Duration::from_secs(5);
        let reader = Reader::spawn(
            &self.ctx.name,
            READ_AHEAD,
            tracing::info_span!("mysql_reader"),
            |tx, _stop| read_events(stream, tx, stall),
        );
        let settings = driver::Settings {
            source: self.ctx.name.clone(),
            max_batch_events: self.cfg.max_batch_events,
            linger: LINGER,
            tick: self.cfg.heartbeat.0,
            checkpoint_only_every: CHECKPOINT_ONLY_EVERY,
        };
        let (appender, shutdown) = (self.ctx.appender.clone(), self.ctx.shutdown.clone());
        driver::run(self, reader, (), appender, settings, shutdown).await
    }

    /// The error a read ended with.
    fn read_error(&self, error: ReadError) -> MySqlError {
        match error {
            ReadError::Checksum {
                found,
                computed,
                end,
            } => MySqlError::Checksum {
                position: self.here(end),
                found,
                computed,
            },
            ReadError::Driver(e) => {
                let at = if self.seen_any {
                    self.here(0)
                } else {
                    self.start_text.clone()
                };
                self.stream_error(e, &at)
            }
            ReadError::Stalled { seconds } => MySqlError::Stalled {
                url: self.sql.url.clone(),
                position: self.here(0),
                seconds,
            },
            ReadError::Ended => MySqlError::Stalled {
                url: self.sql.url.clone(),
                position: self.here(0),
                seconds: 0,
            },
        }
    }

    fn stream_error(&self, e: mysql_async::Error, position: &str) -> MySqlError {
        if let mysql_async::Error::Server(s) = &e {
            if s.code == codes::FATAL_READING_BINLOG {
                return MySqlError::PurgedBinlog {
                    position: position.to_owned(),
                    message: s.message.clone(),
                };
            }
        }
        MySqlError::Stream {
            url: self.sql.url.clone(),
            position: position.to_owned(),
            source: e,
        }
    }

    async fn on_event(&mut self, raw: &RawEvent, batch: &mut Batcher<()>) -> Result<()> {
        let header = raw.header();
        let type_code = header.event_type_raw();
        let end = u64::from(header.log_pos());
        let start = end.saturating_sub(u64::from(header.event_size()));
        // The artificial ROTATE that opens a dump comes before any format
        // description, so the framing has not stripped its CRC32 yet.
        let data = raw.data();
        let data = if type_code == code::ROTATE && self.post_header_lens.is_empty() {
            strip_crc(&header, data)
        } else {
            data
        };
        let integrity = integrity(raw);
        let event = decode_event(type_code, data, &self.post_header_lens).map_err(|source| {
            let table = self.table_of_undecoded(type_code, data);
            self.decode_error(type_code, table, start, integrity, source)
        })?;
        match event {
            Event::FormatDescription {
                post_header_lens,
                server_version,
            } => {
                debug!(server_version, position = %self.here(start), "mysql: format description");
                self.post_header_lens = post_header_lens;
            }
            Event::Rotate { file, position } => {
                debug!(file, position, "mysql: rotate");
                self.file = file.into();
            }
            Event::MariaDbGtid {
                domain,
                seq,
                standalone,
            } => {
                self.tx_gtid = Some(PendingGtid::MariaDb {
                    domain,
                    server: header.server_id(),
                    seq,
                });
                self.tx_id = Some(seq);
                self.tx_open = !standalone;
            }
            Event::MySqlGtid { sid, gno } => {
                self.tx_gtid = Some(PendingGtid::MySql { sid, gno });
                self.tx_id = Some(gno);
            }
            Event::Query { database, sql } => {
                let first = ddl::first_word(&sql);
                match first.as_str() {
                    "begin" | "xa" | "savepoint" => self.tx_open = true,
                    "commit" => self.commit(end, batch).await?,
                    "rollback" => self.rollback(),
                    _ if self.tx_open => {}
                    _ => {
                        self.on_ddl(&database, &sql, start, header.timestamp())
                            .await?;
                        self.commit(end, batch).await?;
                    }
                }
            }
            Event::Xid { .. } => self.commit(end, batch).await?,
            Event::TableMap(map) => self.on_table_map(map).await?,
            Event::Rows {
                kind,
                table_id,
                body,
            } => {
                self.on_rows(kind, table_id, body, start, header.timestamp(), integrity)
                    .await?;
            }
            Event::Annotate | Event::Heartbeat | Event::Other(_) => {}
        }
        Ok(())
    }

    fn decode_error(
        &self,
        type_code: u8,
        table: String,
        start: u64,
        integrity: Integrity,
        source: DecodeError,
    ) -> MySqlError {
        MySqlError::Decode {
            event: format!("{} (type {type_code})", event_name(type_code)),
            table,
            file: self.file.to_string(),
            offset: start,
            integrity,
            source,
        }
    }

    /// The table an event that did not decode is about, as far as its
    /// first bytes and the table maps seen so far tell.
    fn table_of_undecoded(&self, type_code: u8, data: &[u8]) -> String {
        let is_rows = matches!(
            type_code,
            code::WRITE_ROWS_V1..=code::DELETE_ROWS_V1 | code::WRITE_ROWS_V2..=code::DELETE_ROWS_V2
        );
        if !is_rows {
            return "no known table".into();
        }
        let id = data.get(..6).map(super::binlog::reader::le);
        match id.and_then(|id| self.tables.get(&id)) {
            Some(Some((map, _))) => format!("table {}.{}", map.database, map.table),
            _ => "a table not known (its table id did not match a table map)".into(),
        }
    }

    async fn table_info(&mut self, table: &TableId) -> Result<Option<Arc<TableInfo>>> {
        if let Some(info) = self.info.get(table) {
            return Ok(info.clone());
        }
        let info = load_info(
            &mut self.sql,
            &self.schemas.collations,
            &table.namespace,
            &table.name,
        )
        .await?
        .map(Arc::new);
        self.info.insert(table.clone(), info.clone());
        Ok(info)
    }

    async fn on_table_map(&mut self, map: TableMap) -> Result<()> {
        if !self.cfg.captures(&map.database, &map.table) {
            self.tables.insert(map.table_id, None);
            return Ok(());
        }
        if let Some(Some((known, _))) = self.tables.get(&map.table_id) {
            if *known == map {
                return Ok(());
            }
        }
        let table = TableId::new(map.database.as_str(), map.table.as_str());
        let info = self.table_info(&table).await?;
        let state = self.schemas.from_map(&table, &map, info.as_deref())?;
        debug!(table = %table, version = state.schema.version, "mysql: table map");
        self.tables
            .insert(map.table_id, Some((map, Arc::new(state))));
        Ok(())
    }

    /// Keeps a captured table's rows event, undecoded, for the commit.
    async fn on_rows(
        &mut self,
        kind: RowsKind,
        table_id: u64,
        body: &[u8],
        start: u64,
        ts: u32,
        integrity: Integrity,
    ) -> Result<()> {
        let state = match self.tables.get(&table_id) {
            Some(Some((_, state))) => state.clone(),
            Some(None) => return Ok(()),
            None => {
                return Err(MySqlError::Decode {
                    event: rows_name(kind).into(),
                    table: format!("table id {table_id}"),
                    file: self.file.to_string(),
                    offset: start,
                    integrity,
                    source: DecodeError::new(
                        "rows event",
                        format!("table id {table_id} has no preceding table map"),
                    ),
                })
            }
        };
        self.tx_rows
            .push(RowsEvent {
                table: state,
                kind,
                offset: start,
                timestamp: ts,
                checksummed: integrity == Integrity::ChecksumVerified,
                body: body.to_vec(),
            })
            .await
    }

    /// Decodes a committed rows event into `pending`, numbering its rows
    /// in the transaction from `next_index` on.
    fn decode_rows_event(
        &mut self,
        event: RowsEvent,
        tx_id: Option<u64>,
        gtid_set: &Option<Arc<str>>,
        next_index: &mut u64,
    ) -> Result<()> {
        let state = event.table;
        let rows =
            decode_rows(event.kind, &event.body, &state.cells).map_err(|e| MySqlError::Decode {
                event: rows_name(event.kind).into(),
                table: format!("table {}", state.schema.table),
                file: self.file.to_string(),
                offset: event.offset,
                integrity: if event.checksummed {
                    Integrity::ChecksumVerified
                } else {
                    Integrity::NoChecksum
                },
                source: e,
            })?;
        let op = match event.kind {
            RowsKind::Write => Op::Insert,
            RowsKind::Update => Op::Update,
            RowsKind::Delete => Op::Delete,
        };
        let commit_ts = Some(Timestamp::Micros(i64::from(event.timestamp) * 1_000_000));
        self.pending.reserve(rows.len());
        for row in rows {
            let image = row.after.as_ref().or(row.before.as_ref());
            let key = image
                .map(|values| {
                    state
                        .key
                        .iter()
                        .map(|i| values.get(*i).cloned().unwrap_or(Value::Null))
                        .collect()
                })
                .unwrap_or_default();
            self.pending.push(ChangeEvent {
                source: self.ctx.name.clone(),
                table: state.schema.table.clone(),
                op,
                key,
                before: row.before,
                after: row.after,
                position: Position::MySql(MySqlPosition {
                    file: self.file.clone(),
                    offset: event.offset,
                    gtid_set: gtid_set.clone(),
                    tx_index: *next_index,
                }),
                commit_ts,
                tx_id,
                schema: state.schema.clone(),
                topic: None,
                headers: Vec::new(),
            });
            *next_index += 1;
        }
        Ok(())
    }

    async fn on_ddl(&mut self, database: &str, sql: &str, start: u64, ts: u32) -> Result<()> {
        info!(database, position = %self.here(start), "mysql: DDL; refreshing table schemas");
        self.info.clear();
        self.tables.clear();
        let Some((db, name)) = ddl::truncated_table(sql, database) else {
            return Ok(());
        };
        if !self.cfg.captures(&db, &name) {
            return Ok(());
        }
        let table = TableId::new(db.as_str(), name.as_str());
        let schema = match self.schemas.current(&table) {
            Some(schema) => schema,
            None => match self.table_info(&table).await? {
                Some(info) => self.schemas.from_info(&table, &info)?.schema,
                None => return Ok(()),
            },
        };
        self.tx_events.push(ChangeEvent {
            source: self.ctx.name.clone(),
            table,
            op: Op::Truncate,
            key: Vec::new(),
            before: None,
            after: None,
            position: Position::MySql(MySqlPosition {
                file: self.file.clone(),
                offset: start,
                gtid_set: None,
                tx_index: 0,
            }),
            commit_ts: Some(Timestamp::Micros(i64::from(ts) * 1_000_000)),
            tx_id: self.tx_id,
            schema,
            topic: None,
            headers: Vec::new(),
        });
        Ok(())
    }

    fn rollback(&mut self) {
        self.tx_rows.clear();
        self.tx_events.clear();
        self.tx_gtid = None;
        self.tx_open = false;
        self.tx_id = None;
    }

    /// The transaction ends at `end`: its events join `pending` (decoded
    /// now; appended in parts of `max_batch_events` when it is large), or
    /// are dropped when the log already has it.
    async fn commit(&mut self, end: u64, batch: &mut Batcher<()>) -> Result<()> {
        match (self.tx_gtid.take(), &mut self.gtids) {
            (
                Some(PendingGtid::MariaDb {
                    domain,
                    server,
                    seq,
                }),
                Some(Gtids::MariaDb(set)),
            ) => set.add(domain, server, seq),
            (Some(PendingGtid::MySql { sid, gno }), Some(Gtids::MySql(set))) => set.add(&sid, gno),
            _ => {}
        }
        let checkpoint = MySqlPosition {
            file: self.file.clone(),
            offset: end,
            gtid_set: self.gtids.as_ref().map(|g| g.to_text().into()),
            tx_index: 0,
        };
        let tx_id = self.tx_id.take();
        self.tx_open = false;
        let mut events = std::mem::take(&mut self.tx_events);
        let mut replay = self.tx_rows.take().await?;
        let already = self.skip_until.as_ref().is_some_and(|s| checkpoint <= *s);
        if !already {
            self.skip_until = None;
            let mut next_index = 0;
            while let Some(event) = replay.next(&self.stats).await? {
                self.decode_rows_event(event, tx_id, &checkpoint.gtid_set, &mut next_index)?;
                for event in self.pending.drain(..) {
                    if batch.add(event) {
                        batch.send_full().await?;
                    }
                }
            }
            for event in &mut events {
                if let Position::MySql(p) = &mut event.position {
                    p.gtid_set.clone_from(&checkpoint.gtid_set);
                    p.tx_index = next_index;
                    next_index += 1;
                }
            }
            for event in events {
                batch.push(event).await?;
            }
        }
        batch.commit(Position::MySql(checkpoint), ());
        Ok(())
    }
}

impl Kind for Streamer<'_> {
    type Input = ReadItem;
    type Ack = ();
    type Error = MySqlError;

    async fn handle(&mut self, input: ReadItem, batch: &mut Batcher<()>) -> Result<()> {
        let event = input.map_err(|e| self.read_error(e))?;
        self.seen_any = true;
        self.on_event(&event, batch).await
    }

    fn stopped(&mut self) {
        self.tx_rows.clear();
    }
}

/// The `Log_event_type` name of the events a decode error can be about.
fn event_name(type_code: u8) -> &'static str {
    match type_code {
        code::QUERY => "QUERY",
        code::ROTATE => "ROTATE",
        code::FORMAT_DESCRIPTION => "FORMAT_DESCRIPTION",
        code::XID => "XID",
        code::TABLE_MAP => "TABLE_MAP",
        code::WRITE_ROWS_V1 => "WRITE_ROWS_V1",
        code::UPDATE_ROWS_V1 => "UPDATE_ROWS_V1",
        code::DELETE_ROWS_V1 => "DELETE_ROWS_V1",
        code::WRITE_ROWS_V2 => "WRITE_ROWS_V2",
        code::UPDATE_ROWS_V2 => "UPDATE_ROWS_V2",
        code::DELETE_ROWS_V2 => "DELETE_ROWS_V2",
        code::GTID => "GTID",
        code::PARTIAL_UPDATE_ROWS => "PARTIAL_UPDATE_ROWS",
        code::MARIADB_GTID => "MARIADB_GTID",
        _ => "event",
    }
}

fn rows_name(kind: RowsKind) -> &'static str {
    match kind {
        RowsKind::Write => "WRITE_ROWS",
        RowsKind::Update => "UPDATE_ROWS",
        RowsKind::Delete => "DELETE_ROWS",
    }
}

impl Start {
    pub fn position_text(&self) -> String {
        let mut s = format!("{}:{}", self.position.file, self.position.offset);
        if let Some(g) = &self.gtids {
            s.push_str(&format!(" (gtid {})", g.to_text()));
        }
        s
    }
}
