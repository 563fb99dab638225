//! Schema versions that continue across restarts.
//!
//! The last [`TableSchema`] the source assigned to each table is kept in a
//! file in the source's state directory (`state_dir`). A shape identical to
//! the last one keeps its version; a changed shape gets the next; a table
//! seen for the first time gets 1. The file is replaced (atomically,
//! fsynced) before an event carrying a new version is handed to the log, so
//! a crash cannot hand out the same version twice for different shapes.
//! Without a state directory, versions live only as long as the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use headwater_core::codec::{decode_schema, encode_schema};
use headwater_core::{Column, TableId, TableSchema};

use crate::postgres::error::{PgError, PgResult};

const FILE_NAME: &str = "schema_versions";
const MAGIC: &[u8] = b"HWSCHEMAVERSIONS1\n";

#[derive(Default)]
pub struct SchemaVersions {
    path: Option<PathBuf>,
    last: HashMap<TableId, Arc<TableSchema>>,
    /// Versions assigned since the file was last written.
    dirty: bool,
}

fn state_error(path: &Path, reason: impl std::fmt::Display) -> PgError {
    PgError::State {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn decode_file(path: &Path, bytes: &[u8]) -> PgResult<HashMap<TableId, Arc<TableSchema>>> {
    let damaged = |what: &str| state_error(path, format!("the file is damaged ({what})"));
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("unknown header"))?;
    let mut last = HashMap::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| damaged("length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(damaged("truncated schema"));
        }
        let (one, tail) = tail.split_at(len);
        let schema = decode_schema(one).map_err(|e| state_error(path, e))?;
        last.insert(schema.table.clone(), Arc::new(schema));
        rest = tail;
    }
    Ok(last)
}

impl SchemaVersions {
    /// Versions that start at 1 in every process (no state directory).
    pub fn in_memory() -> Self {
        SchemaVersions::default()
    }

    /// Loads the versions kept in `state_dir` (none yet: an empty set).
    pub async fn load(state_dir: &Path) -> PgResult<Self> {
        let path = state_dir.join(FILE_NAME);
        let read = path.clone();
        let bytes = tokio::task::spawn_blocking(move || match std::fs::read(&read) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| state_error(&path, e))?
        .map_err(|e| state_error(&path, format!("cannot read it: {e}")))?;
        let last = match bytes {
            Some(bytes) => decode_file(&path, &bytes)?,
            None => HashMap::new(),
        };
        Ok(SchemaVersions {
            path: Some(path),
            last,
            dirty: false,
        })
    }

    /// The version `schema` (whose own version is ignored) gets: the last
    /// one's when the columns are the same, else the next. Call
    /// [`SchemaVersions::persist`] before using a schema this returned.
    pub fn assign(&mut self, schema: &TableSchema) -> Arc<TableSchema> {
        let next = match self.last.get(&schema.table) {
            Some(last) if same_shape(&last.columns, &schema.columns) => return last.clone(),
            Some(last) => {
                tracing::info!(table = %schema.table, version = last.version + 1, "table schema changed");
                last.version + 1
            }
            None => 1,
        };
        let assigned = Arc::new(TableSchema {
            version: next,
            ..schema.clone()
        });
        self.last.insert(schema.table.clone(), assigned.clone());
        self.dirty = true;
        assigned
    }

    /// Writes the file if versions were assigned since the last write.
    pub async fn persist(&mut self) -> PgResult<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let mut bytes = MAGIC.to_vec();
        let mut tables: Vec<&Arc<TableSchema>> = self.last.values().collect();
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        for schema in tables {
            let encoded = encode_schema(schema);
            let len = u32::try_from(encoded.len())
                .map_err(|_| state_error(&path, "a table schema is larger than 4 GiB"))?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&encoded);
        }
        let target = path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            headwater_core::checkpoint::atomic_write(&target, &bytes).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| state_error(&path, e))?
        .map_err(|e| state_error(&path, e))?;
        self.dirty = false;
        Ok(())
    }
}

/// Same names, kinds and key, in order: what a Relation message defines.
/// Nullability comes from the catalog as it is when the message is
/// decoded, which may already be past later DDL, so it describes a version
/// but does not make one; so do declared type names (exact, from the
/// message's type and modifier), so `varchar(10)` → `varchar(20)` keeps it.
fn same_shape(a: &[Column], b: &[Column]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name == y.name && x.kind == y.kind && x.key_position == y.key_position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_core::ValueKind;

    fn schema(columns: &[&str]) -> TableSchema {
        TableSchema {
            table: TableId::new("public", "t"),
            version: 0,
            columns: columns
                .iter()
                .map(|name| Column {
                    name: (*name).into(),
                    type_name: "int4".into(),
                    kind: ValueKind::Int32,
                    nullable: true,
                    key_position: None,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn versions_continue_after_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut versions = SchemaVersions::load(dir.path()).await.unwrap();
        assert_eq!(versions.assign(&schema(&["a"])).version, 1);
        assert_eq!(versions.assign(&schema(&["a"])).version, 1);
        assert_eq!(versions.assign(&schema(&["a", "b"])).version, 2);
        versions.persist().await.unwrap();

        let mut again = SchemaVersions::load(dir.path()).await.unwrap();
        assert_eq!(again.assign(&schema(&["a", "b"])).version, 2);
        assert_eq!(again.assign(&schema(&["a"])).version, 3);
        // Not persisted: the next load still knows version 2 as the last.
        let mut third = SchemaVersions::load(dir.path()).await.unwrap();
        assert_eq!(third.assign(&schema(&["a", "b"])).version, 2);
    }

    #[tokio::test]
    async fn damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"junk").unwrap();
        let Err(e) = SchemaVersions::load(dir.path()).await else {
            panic!("a damaged file loads");
        };
        assert!(e.to_string().contains("schema_versions"), "{e}");
    }

    #[test]
    fn in_memory_starts_at_one() {
        let mut versions = SchemaVersions::in_memory();
        assert_eq!(versions.assign(&schema(&["a"])).version, 1);
        assert_eq!(versions.assign(&schema(&["b"])).version, 2);
    }

    #[test]
    fn catalog_details_alone_do_not_make_a_version() {
        let mut versions = SchemaVersions::in_memory();
        assert_eq!(versions.assign(&schema(&["a"])).version, 1);
        let mut described_late = schema(&["a"]);
        described_late.columns[0].type_name = "oid 23".into();
        described_late.columns[0].nullable = false;
        assert_eq!(versions.assign(&described_late).version, 1);
        let mut retyped = schema(&["a"]);
        retyped.columns[0].kind = ValueKind::Int64;
        assert_eq!(versions.assign(&retyped).version, 2);
    }
}
