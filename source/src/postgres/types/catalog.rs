//! Type and table facts from the catalog: domains to their base type,
//! enums, arrays of either; and a relation's [`TableSchema`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use headwater_core::{Column, TableId, TableSchema};
use tokio_postgres::Client;

use super::PgType;
use crate::postgres::error::{PgError, PgResult};
use crate::postgres::pgoutput::{Relation, RelationColumn};

/// A table as decoding needs it: the schema version in force, each
/// column's decoder type, and where the key is.
#[derive(Clone, Debug)]
pub struct RelInfo {
    pub schema: Arc<TableSchema>,
    pub types: Vec<PgType>,
    pub key_indexes: Vec<usize>,
    pub relation: Relation,
}

#[derive(Default, Debug)]
pub struct TypeCache {
    types: HashMap<u32, PgType>,
}

impl TypeCache {
    pub fn get(&self, oid: u32) -> PgType {
        PgType::builtin(oid)
            .or_else(|| self.types.get(&oid).cloned())
            .unwrap_or(PgType::Other)
    }

    /// Looks up every OID not yet known (domains and arrays may need
    /// several rounds).
    pub async fn resolve(&mut self, client: &Client, oids: &[u32]) -> PgResult<()> {
        let mut pending: HashSet<u32> = oids
            .iter()
            .copied()
            .filter(|o| PgType::builtin(*o).is_none() && !self.types.contains_key(o))
            .collect();
        // (oid, typtype, base, elem, category)
        let mut facts: HashMap<u32, (i8, u32, u32, i8)> = HashMap::new();
        for _round in 0..8 {
            if pending.is_empty() {
                break;
            }
            let list: Vec<u32> = pending.drain().collect();
            let rows = client
                .query(
                    "SELECT oid, typtype, typbasetype, typelem, typcategory FROM pg_type WHERE oid = ANY($1)",
                    &[&list],
                )
                .await
                .map_err(|e| PgError::sql("reading pg_type", e))?;
            for row in rows {
                let oid: u32 = row.get(0);
                let fact = (row.get(1), row.get(2), row.get(3), row.get(4));
                for next in [fact.1, fact.2] {
                    if next != 0
                        && PgType::builtin(next).is_none()
                        && !facts.contains_key(&next)
                        && !self.types.contains_key(&next)
                    {
                        pending.insert(next);
                    }
                }
                facts.insert(oid, fact);
            }
        }
        for oid in oids {
            let ty = build(*oid, &facts, &self.types, 0);
            self.types.insert(*oid, ty);
        }
        Ok(())
    }
}

fn build(
    oid: u32,
    facts: &HashMap<u32, (i8, u32, u32, i8)>,
    known: &HashMap<u32, PgType>,
    depth: u8,
) -> PgType {
    if let Some(ty) = PgType::builtin(oid).or_else(|| known.get(&oid).cloned()) {
        return ty;
    }
    if depth > 8 {
        return PgType::Other;
    }
    match facts.get(&oid) {
        Some((t, _, _, _)) if *t == b'e' as i8 => PgType::Enum,
        Some((t, base, _, _)) if *t == b'd' as i8 => build(*base, facts, known, depth + 1),
        Some((_, _, elem, cat)) if *cat == b'A' as i8 && *elem != 0 => {
            match build(*elem, facts, known, depth + 1) {
                PgType::Other => PgType::Other,
                inner => PgType::Array(Box::new(inner)),
            }
        }
        _ => PgType::Other,
    }
}

/// Nullability, declared type name and primary-key order of each live
/// column of a table, from the catalog as it is now.
struct CatalogColumns {
    by_name: HashMap<String, bool>,
    primary_key: Vec<String>,
}

/// Each column's declared type (`character varying(20)`), from the type
/// and modifier the Relation message sent: what the catalog says now may
/// be a later `ALTER … TYPE` than the changes being decoded.
async fn type_names(client: &Client, relation: &Relation) -> PgResult<Vec<String>> {
    let (oids, modifiers): (Vec<u32>, Vec<i32>) = relation
        .columns
        .iter()
        .map(|c| (c.type_oid, c.type_modifier))
        .unzip();
    let rows = client
        .query(
            "SELECT format_type(t.o, t.m) FROM unnest($1::oid[], $2::int4[]) \
             WITH ORDINALITY AS t(o, m, n) ORDER BY t.n",
            &[&oids, &modifiers],
        )
        .await
        .map_err(|e| PgError::sql("naming column types (format_type)", e))?;
    Ok(rows
        .iter()
        .zip(&oids)
        .map(|(r, oid)| {
            r.get::<_, Option<String>>(0)
                .unwrap_or_else(|| format!("oid {oid}"))
        })
        .collect())
}

async fn catalog_columns(client: &Client, oid: u32) -> PgResult<CatalogColumns> {
    let rows = client
        .query(
            "SELECT attname::text, NOT attnotnull \
             FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::sql("reading pg_attribute", e))?;
    let by_name = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get(1)))
        .collect();
    let pk = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::sql("reading the primary key", e))?;
    Ok(CatalogColumns {
        by_name,
        primary_key: pk.iter().map(|r| r.get(0)).collect(),
    })
}

/// The relation as pgoutput would describe it, from the catalog (for the
/// snapshot, before any Relation message arrives).
pub async fn relation_from_catalog(client: &Client, oid: u32) -> PgResult<Relation> {
    let head = client
        .query_one(
            "SELECT n.nspname::text, c.relname::text, c.relreplident::\"char\" FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::sql(format!("reading table {oid} from pg_class"), e))?;
    let cols = client
        .query(
            "SELECT attname::text, atttypid, atttypmod FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(|e| PgError::sql("reading pg_attribute", e))?;
    let ident: i8 = head.get(2);
    Ok(Relation {
        oid,
        namespace: head.get(0),
        name: head.get(1),
        replica_identity: ident as u8,
        columns: cols
            .iter()
            .map(|r| RelationColumn {
                key: false,
                name: r.get(0),
                type_oid: r.get(1),
                type_modifier: r.get(2),
            })
            .collect(),
    })
}

/// Builds the schema for a relation: types resolved, names and
/// nullability from the catalog where the column still exists, key =
/// primary key when the table has one, else the replica identity columns.
pub async fn describe(
    client: &Client,
    types: &mut TypeCache,
    relation: &Relation,
    version: u32,
) -> PgResult<RelInfo> {
    let oids: Vec<u32> = relation.columns.iter().map(|c| c.type_oid).collect();
    types.resolve(client, &oids).await?;
    let catalog = catalog_columns(client, relation.oid).await?;
    let type_names = type_names(client, relation).await?;
    let pk_present = !catalog.primary_key.is_empty()
        && catalog
            .primary_key
            .iter()
            .all(|k| relation.columns.iter().any(|c| &c.name == k));
    let key_order: Vec<String> = if pk_present {
        catalog.primary_key.clone()
    } else {
        relation
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| c.name.clone())
            .collect()
    };
    let mut columns = Vec::with_capacity(relation.columns.len());
    let mut pg_types = Vec::with_capacity(relation.columns.len());
    for (col, type_name) in relation.columns.iter().zip(type_names) {
        let ty = types.get(col.type_oid);
        let nullable = catalog.by_name.get(&col.name).is_none_or(|n| *n);
        columns.push(Column {
            name: col.name.clone(),
            type_name,
            kind: ty.kind(col.type_modifier),
            nullable,
            key_position: key_order
                .iter()
                .position(|k| k == &col.name)
                .and_then(|p| u16::try_from(p).ok()),
        });
        pg_types.push(ty);
    }
    let schema = TableSchema {
        table: TableId::new(relation.namespace.as_str(), relation.name.as_str()),
        version,
        columns,
    };
    let key_indexes = schema.key_indexes();
    Ok(RelInfo {
        schema: Arc::new(schema),
        types: pg_types,
        key_indexes,
        relation: relation.clone(),
    })
}
