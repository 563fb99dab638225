//! Durable small state — source positions, sink offsets — written so that a
//! crash at any instant leaves either the old or the new version, never a
//! mix, and so that damage is detected instead of silently read as "start
//! from the beginning".
//!
//! The functions here block on fsync: call them from `spawn_blocking` or a
//! dedicated thread, never directly on the async runtime.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

const MAGIC: &str = "headwater-checkpoint v1";

/// A directory of named checkpoints, one file each.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Opens (creating if needed) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io("creating checkpoint directory", &dir, e))?;
        Ok(CheckpointStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.checkpoint"))
    }

    /// Writes `value` under `name` atomically and durably.
    pub fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let body = serde_json::to_string(value)
            .map_err(|e| Error::decode("checkpoint value", e.to_string()))?;
        let sum = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        let text = format!("{MAGIC} xxh3={sum:016x}\n{body}\n");
        atomic_write(&self.path_of(name), text.as_bytes())
    }

    /// Reads the checkpoint `name`: `None` if it was never written; an error
    /// naming the file if it exists but cannot be trusted.
    pub fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.path_of(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::CorruptCheckpoint {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        let corrupt = |reason: String| Error::CorruptCheckpoint {
            path: path.clone(),
            reason,
        };
        let (header, body) = text
            .split_once('\n')
            .ok_or_else(|| corrupt("no header line".into()))?;
        let expected = header
            .strip_prefix(MAGIC)
            .and_then(|rest| rest.trim().strip_prefix("xxh3="))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| corrupt(format!("header `{header}` is not `{MAGIC} xxh3=…`")))?;
        let body = body.strip_suffix('\n').unwrap_or(body);
        let actual = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        if actual != expected {
            return Err(corrupt(format!(
                "checksum mismatch: header says {expected:016x}, content hashes to {actual:016x}"
            )));
        }
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| corrupt(format!("content does not parse: {e}")))
    }

    /// [`CheckpointStore::load`] from `dir`, on a blocking thread (for
    /// async callers: it reads a file).
    pub async fn load_in<T: DeserializeOwned + Send + 'static>(
        dir: PathBuf,
        name: &'static str,
    ) -> Result<Option<T>> {
        spawn_blocking(move || CheckpointStore::open(dir)?.load(name)).await
    }

    /// [`CheckpointStore::save`] into `dir`, on a blocking thread.
    pub async fn save_in<T: Serialize + Send + 'static>(
        dir: PathBuf,
        name: &'static str,
        value: T,
    ) -> Result<()> {
        spawn_blocking(move || CheckpointStore::open(dir)?.save(name, &value)).await
    }

    /// Removes a checkpoint (a component reset on the operator's request).
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path_of(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing checkpoint", path, e)),
        }
    }
}

/// Runs blocking file work off the async workers.
pub async fn spawn_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Component {
            context: "a blocking task".into(),
            kind: crate::error::ErrorKind::Stop,
            source: e.to_string().into(),
        })?
}

/// Replaces `path` with `bytes`: write a temporary file beside it, fsync it,
/// rename it over the target, fsync the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("writing", &tmp, e))?;
    file.sync_all()
        .map_err(|e| Error::io("fsyncing", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsyncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Classify;
    use crate::ErrorKind;

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        assert_eq!(store.load::<Vec<u64>>("sink.a").unwrap(), None);
        store.save("sink.a", &vec![1_u64, 2, 3]).unwrap();
        store.save("sink.a", &vec![4_u64]).unwrap();
        assert_eq!(store.load::<Vec<u64>>("sink.a").unwrap(), Some(vec![4]));
        assert!(!store
            .path_of("sink.a")
            .with_extension("checkpoint.tmp")
            .exists());
    }

    #[test]
    fn corruption_is_loud_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        store.save("src", &42_u64).unwrap();
        let path = store.path_of("src");
        let text = fs::read_to_string(&path).unwrap().replace("42", "43");
        fs::write(&path, text).unwrap();
        let err = store.load::<u64>("src").unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains("checksum"), "{err}");
        assert_eq!(err.kind(), ErrorKind::WaitForOperator);

        fs::write(&path, b"").unwrap();
        assert!(store.load::<u64>("src").is_err());
        fs::write(&path, b"\xff\xfe garbage").unwrap();
        assert!(store.load::<u64>("src").is_err());
    }
}
