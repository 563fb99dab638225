//! Table schemas stored once, by content hash, so events in the log refer to
//! them by [`SchemaId`] instead of repeating column names in every record.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::checkpoint::atomic_write;
use crate::codec::{decode_schema, encode_schema};
use crate::error::{Error, Result};
use crate::schema::{SchemaId, TableSchema};

/// A directory of schemas, one file per id, each written atomically and
/// fsynced before any event that refers to it is appended. Files verify
/// themselves: the content must hash to the file's id.
#[derive(Debug)]
pub struct SchemaRegistry {
    dir: PathBuf,
    cache: RwLock<HashMap<SchemaId, Arc<TableSchema>>>,
}

impl SchemaRegistry {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating schema directory", &dir, e))?;
        Ok(SchemaRegistry {
            dir,
            cache: RwLock::new(HashMap::new()),
        })
    }

    fn path_of(&self, id: SchemaId) -> PathBuf {
        self.dir.join(format!("{id}.schema"))
    }

    fn cached(&self, id: SchemaId) -> Option<Arc<TableSchema>> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
    }

    fn remember(&self, id: SchemaId, schema: Arc<TableSchema>) {
        self.cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, schema);
    }

    /// Stores `schema` durably if it is new. Blocks on fsync the first time
    /// a schema is seen; a cache hit costs one hash.
    pub fn register(&self, schema: &Arc<TableSchema>) -> Result<SchemaId> {
        let bytes = encode_schema(schema);
        let id = SchemaId(xxhash_rust::xxh3::xxh3_64(&bytes));
        if self.cached(id).is_some() {
            return Ok(id);
        }
        let path = self.path_of(id);
        if !path.exists() {
            atomic_write(&path, &bytes)?;
        }
        self.remember(id, schema.clone());
        Ok(id)
    }

    /// The schema with this id, from memory or disk.
    pub fn get(&self, id: SchemaId) -> Result<Arc<TableSchema>> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let path = self.path_of(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingSchema {
                    id,
                    dir: self.dir.clone(),
                })
            }
            Err(e) => return Err(Error::io("reading schema", path, e)),
        };
        if xxhash_rust::xxh3::xxh3_64(&bytes) != id.0 {
            return Err(Error::decode(
                "table schema",
                format!(
                    "{} does not hash to its name; the file is damaged",
                    path.display()
                ),
            ));
        }
        let schema = Arc::new(decode_schema(&bytes)?);
        self.remember(id, schema.clone());
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, TableId, ValueKind};

    #[test]
    fn register_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(TableSchema {
            table: TableId::new("public", "t"),
            version: 1,
            columns: vec![Column {
                name: "id".into(),
                type_name: "int4".into(),
                kind: ValueKind::Int32,
                nullable: false,
                key_position: Some(0),
            }],
        });
        let id = SchemaRegistry::open(dir.path())
            .unwrap()
            .register(&schema)
            .unwrap();
        assert_eq!(id, schema.id());
        let reopened = SchemaRegistry::open(dir.path()).unwrap();
        assert_eq!(*reopened.get(id).unwrap(), *schema);
        assert!(matches!(
            reopened.get(SchemaId(1)),
            Err(Error::MissingSchema { .. })
        ));
    }
}
