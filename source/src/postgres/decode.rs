//! pgoutput messages to [`ChangeEvent`]s: the relation cache (one
//! [`TableSchema`] version per shape seen), tuple decoding, and the event
//! shapes for rows, truncates and logical messages.

use std::collections::HashMap;
use std::sync::Arc;

use headwater_core::{
    ChangeEvent, Column, Header, Lsn, Op, PgPosition, Position, TableId, TableSchema, Timestamp,
    Value, ValueKind,
};
use tokio_postgres::Client;

use crate::postgres::error::{PgError, PgResult};
use crate::postgres::pgoutput::{
    Relation, Tuple, TupleField, TRUNCATE_CASCADE, TRUNCATE_RESTART_IDENTITY,
};
use crate::postgres::types::catalog::{describe, RelInfo};
use crate::postgres::types::{binary, text, PgType, TypeCache};
use crate::postgres::versions::SchemaVersions;

/// The prefix of Headwater's own heartbeat messages, never turned into events.
pub const HEARTBEAT_PREFIX: &str = "headwater_heartbeat";

/// What a change event needs from its transaction.
#[derive(Clone, Debug)]
pub struct TxContext {
    pub commit_lsn: Lsn,
    pub commit_ts: Option<Timestamp>,
    pub xid: Option<u64>,
    pub origin: Option<String>,
}

pub struct Decoder {
    pub source: Arc<str>,
    relations: HashMap<u32, RelInfo>,
    /// Relations described inside a streamed transaction being replayed:
    /// they apply to it only (pgoutput tracks them per streamed xid).
    overlay: Option<HashMap<u32, RelInfo>>,
    /// The version each table's shape gets (kept across restarts when the
    /// source has a state directory).
    pub versions: SchemaVersions,
    pub types: TypeCache,
    message_schema: Arc<TableSchema>,
}

/// `microseconds since 2000-01-01` to a timestamp.
pub fn pg_timestamp(micros: i64) -> Option<Timestamp> {
    binary::timestamp(micros).ok()
}

impl Decoder {
    pub fn new(source: Arc<str>) -> Self {
        let message_schema = Arc::new(TableSchema {
            table: TableId::new("pg_logical", "message"),
            version: 1,
            columns: vec![Column {
                name: "content".into(),
                type_name: "bytea".into(),
                kind: ValueKind::Bytes,
                nullable: false,
                key_position: None,
            }],
        });
        Decoder {
            source,
            relations: HashMap::new(),
            overlay: None,
            versions: SchemaVersions::in_memory(),
            types: TypeCache::default(),
            message_schema,
        }
    }

    pub fn relation(&self, oid: u32) -> Option<&RelInfo> {
        self.overlay
            .as_ref()
            .and_then(|o| o.get(&oid))
            .or_else(|| self.relations.get(&oid))
    }

    pub fn begin_replay(&mut self) {
        self.overlay = Some(HashMap::new());
    }

    pub fn end_replay(&mut self) {
        self.overlay = None;
    }

    /// Every relation known so far (for the binary-mode decision).
    pub fn all_relations(&self) -> impl Iterator<Item = &RelInfo> {
        self.relations.values()
    }

    /// Records a relation's shape; a changed shape gets the next version
    /// (kept durably before any event uses it).
    pub async fn on_relation(&mut self, client: &Client, relation: &Relation) -> PgResult<()> {
        let mut info = describe(client, &mut self.types, relation, 0).await?;
        info.schema = self.versions.assign(&info.schema);
        self.versions.persist().await?;
        match &mut self.overlay {
            Some(overlay) => overlay.insert(relation.oid, info),
            None => self.relations.insert(relation.oid, info),
        };
        Ok(())
    }

    /// Seeds the cache with a relation described from the catalog (before
    /// streaming starts) and returns it with its version; call
    /// `versions.persist()` before using it.
    pub fn seed(&mut self, mut info: RelInfo) -> RelInfo {
        info.schema = self.versions.assign(&info.schema);
        self.relations.insert(info.relation.oid, info.clone());
        info
    }

    fn missing(&self, oid: u32, lsn: Lsn) -> PgError {
        PgError::Decode {
            lsn,
            reason: format!("a change refers to relation {oid} before its Relation message"),
        }
    }

    /// One tuple to a row aligned with the schema's columns.
    pub fn row(info: &RelInfo, fields: Tuple<'_>, lsn: Lsn) -> PgResult<Vec<Value>> {
        if fields.len() != info.types.len() {
            return Err(PgError::Decode {
                lsn,
                reason: format!(
                    "table {} has {} columns but the tuple has {}",
                    info.schema.table,
                    info.types.len(),
                    fields.len()
                ),
            });
        }
        let mut row = Vec::with_capacity(fields.len());
        for (i, (field, ty)) in fields.iter().zip(&info.types).enumerate() {
            let value = match field {
                TupleField::Null => Ok(Value::Null),
                TupleField::Unchanged => Ok(Value::Unchanged),
                TupleField::Binary(_) if *ty == PgType::Other => {
                    return Err(PgError::NeedsTextMode {
                        table: info.schema.table.to_string(),
                        type_name: info.schema.columns[i].type_name.clone(),
                    })
                }
                TupleField::Binary(data) => binary::decode(ty, data),
                TupleField::Text(data) => match std::str::from_utf8(data) {
                    Ok(t) => text::decode(ty, t),
                    Err(_) => Err("not UTF-8".to_owned()),
                },
            };
            row.push(value.map_err(|reason| PgError::Decode {
                lsn,
                reason: format!(
                    "column {}.{} ({}): {reason}",
                    info.schema.table,
                    info.schema.columns[i].name,
                    info.schema.columns[i].type_name
                ),
            })?);
        }
        if row.len() != fields.len() {
            return Err(PgError::Decode {
                lsn,
                reason: format!("a tuple of table {} is malformed", info.schema.table),
            });
        }
        Ok(row)
    }

    fn event(
        &self,
        info: &RelInfo,
        op: Op,
        tx: &TxContext,
        lsn: Lsn,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> ChangeEvent {
        let source_row = after.as_ref().or(before.as_ref());
        let key = match source_row {
            Some(row) => info
                .key_indexes
                .iter()
                .map(|i| match (&after, &before) {
                    // An unchanged TOASTed key in the new row: the old row has it.
                    (Some(a), Some(b)) if a[*i] == Value::Unchanged => b[*i].clone(),
                    _ => row[*i].clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        let mut headers = Vec::new();
        if let Some(origin) = &tx.origin {
            headers.push(Header {
                name: "origin".into(),
                value: origin.as_bytes().to_vec(),
            });
        }
        ChangeEvent {
            source: self.source.clone(),
            table: info.schema.table.clone(),
            op,
            key,
            before,
            after,
            position: Position::Postgres(PgPosition {
                commit_lsn: tx.commit_lsn,
                lsn,
            }),
            commit_ts: tx.commit_ts,
            tx_id: tx.xid,
            schema: info.schema.clone(),
            topic: None,
            headers,
        }
    }

    pub fn insert(
        &self,
        rel: u32,
        new: Tuple<'_>,
        tx: &TxContext,
        lsn: Lsn,
    ) -> PgResult<ChangeEvent> {
        let info = self.relation(rel).ok_or_else(|| self.missing(rel, lsn))?;
        let after = Self::row(info, new, lsn)?;
        Ok(self.event(info, Op::Insert, tx, lsn, None, Some(after)))
    }

    /// An update; `old` is the key (`K`) or full old row (`O`) when sent. A
    /// key-only old tuple leaves the other columns `Unchanged`.
    pub fn update(
        &self,
        rel: u32,
        old: Option<(u8, Tuple<'_>)>,
        new: Tuple<'_>,
        tx: &TxContext,
        lsn: Lsn,
    ) -> PgResult<ChangeEvent> {
        let info = self.relation(rel).ok_or_else(|| self.missing(rel, lsn))?;
        let mut after = Self::row(info, new, lsn)?;
        let before = match old {
            Some((kind, fields)) => Some(self.old_row(info, kind, fields, lsn)?),
            None => None,
        };
        // A full old row (`O`, REPLICA IDENTITY FULL) carries the TOASTed
        // values the new row leaves out: the update did not change them.
        if let (Some((b'O', _)), Some(before)) = (old, &before) {
            for (new, old) in after.iter_mut().zip(before) {
                if *new == Value::Unchanged && *old != Value::Unchanged {
                    *new = old.clone();
                }
            }
        }
        Ok(self.event(info, Op::Update, tx, lsn, before, Some(after)))
    }

    pub fn delete(
        &self,
        rel: u32,
        old: (u8, Tuple<'_>),
        tx: &TxContext,
        lsn: Lsn,
    ) -> PgResult<ChangeEvent> {
        let info = self.relation(rel).ok_or_else(|| self.missing(rel, lsn))?;
        let before = self.old_row(info, old.0, old.1, lsn)?;
        Ok(self.event(info, Op::Delete, tx, lsn, Some(before), None))
    }

    /// A `K` tuple sends NULL for non-key columns: they are not known, so
    /// they become `Unchanged`.
    fn old_row(
        &self,
        info: &RelInfo,
        kind: u8,
        fields: Tuple<'_>,
        lsn: Lsn,
    ) -> PgResult<Vec<Value>> {
        let mut row = Self::row(info, fields, lsn)?;
        if kind == b'K' {
            for (i, col) in info.relation.columns.iter().enumerate() {
                if !col.key && row[i] == Value::Null {
                    row[i] = Value::Unchanged;
                }
            }
        }
        Ok(row)
    }

    pub fn truncate(
        &self,
        options: u8,
        rels: &[u32],
        tx: &TxContext,
        lsn: Lsn,
    ) -> PgResult<Vec<ChangeEvent>> {
        let mut flags = Vec::new();
        if options & TRUNCATE_CASCADE != 0 {
            flags.push("cascade");
        }
        if options & TRUNCATE_RESTART_IDENTITY != 0 {
            flags.push("restart_identity");
        }
        rels.iter()
            .map(|rel| {
                let info = self.relation(*rel).ok_or_else(|| self.missing(*rel, lsn))?;
                let mut event = self.event(info, Op::Truncate, tx, lsn, None, None);
                if !flags.is_empty() {
                    event.headers.push(Header {
                        name: "truncate_options".into(),
                        value: flags.join(",").into_bytes(),
                    });
                }
                Ok(event)
            })
            .collect()
    }

    /// A `pg_logical_emit_message`: table `pg_logical.message`, the payload
    /// as the single `content` column, the prefix as a header.
    pub fn message(
        &self,
        transactional: bool,
        prefix: &str,
        content: &[u8],
        tx: &TxContext,
        lsn: Lsn,
    ) -> ChangeEvent {
        let mut headers = vec![
            Header {
                name: "prefix".into(),
                value: prefix.as_bytes().to_vec(),
            },
            Header {
                name: "transactional".into(),
                value: if transactional {
                    b"true".to_vec()
                } else {
                    b"false".to_vec()
                },
            },
        ];
        if let Some(origin) = &tx.origin {
            headers.push(Header {
                name: "origin".into(),
                value: origin.as_bytes().to_vec(),
            });
        }
        ChangeEvent {
            source: self.source.clone(),
            table: self.message_schema.table.clone(),
            op: Op::Message,
            key: Vec::new(),
            before: None,
            after: Some(vec![Value::Bytes(content.to_vec())]),
            position: Position::Postgres(PgPosition {
                commit_lsn: tx.commit_lsn,
                lsn,
            }),
            commit_ts: tx.commit_ts,
            tx_id: tx.xid,
            schema: self.message_schema.clone(),
            topic: None,
            headers,
        }
    }
}
