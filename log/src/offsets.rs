//! Consumer offsets: for each consumer (a sink) and topic, the next offset
//! to read in every partition, in one checkpoint file
//! `{dir}/consumers/{consumer}/{topic}.checkpoint` replaced atomically
//! (write, fsync, rename, fsync dir). Commits only move forward.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use headwater_core::CheckpointStore;

use crate::error::{LogError, Result};

type Key = (String, String);

#[derive(Debug)]
pub struct ConsumerOffsets {
    dir: PathBuf,
    /// `None` for a partition the consumer has not committed yet.
    map: RwLock<HashMap<Key, Vec<Option<u64>>>>,
    /// Serialises read-modify-write of the files.
    write: Mutex<()>,
}

impl ConsumerOffsets {
    /// Loads every committed offset; a damaged file is an error naming it
    /// (never silently "start from zero").
    pub fn load(dir: PathBuf) -> Result<Self> {
        let mut map = HashMap::new();
        let consumers = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::empty(dir));
            }
            Err(e) => return Err(LogError::io("listing consumers", &dir, e)),
        };
        for consumer in consumers {
            let consumer = consumer.map_err(|e| LogError::io("listing consumers", &dir, e))?;
            if !consumer.path().is_dir() {
                continue;
            }
            let name = consumer.file_name().to_string_lossy().into_owned();
            let store = Self::store(&dir, &name)?;
            let files = fs::read_dir(store.dir())
                .map_err(|e| LogError::io("listing consumer offsets", store.dir(), e))?;
            for file in files {
                let file =
                    file.map_err(|e| LogError::io("listing consumer offsets", store.dir(), e))?;
                let file_name = file.file_name().to_string_lossy().into_owned();
                let Some(topic) = file_name.strip_suffix(".checkpoint") else {
                    continue;
                };
                let offsets: Option<Vec<Option<u64>>> = store
                    .load(topic)
                    .map_err(|e| LogError::core(store.path_of(topic), e))?;
                if let Some(offsets) = offsets {
                    map.insert((name.clone(), topic.to_owned()), offsets);
                }
            }
        }
        Ok(ConsumerOffsets {
            dir,
            map: RwLock::new(map),
            write: Mutex::new(()),
        })
    }

    pub fn empty(dir: PathBuf) -> Self {
        ConsumerOffsets {
            dir,
            map: RwLock::new(HashMap::new()),
            write: Mutex::new(()),
        }
    }

    fn store(dir: &Path, consumer: &str) -> Result<CheckpointStore> {
        let path = dir.join(consumer);
        CheckpointStore::open(&path).map_err(|e| LogError::core(path, e))
    }

    pub fn committed(&self, consumer: &str, topic: &str, partition: u32) -> Option<u64> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(consumer.to_owned(), topic.to_owned()))
            .and_then(|v| v.get(partition as usize).copied().flatten())
    }

    /// The lowest offset any consumer of `topic` has committed in
    /// `partition` (0 for a consumer that has not committed it yet);
    /// `None` when the topic has no consumers.
    pub fn min_committed(&self, topic: &str, partition: u32) -> Option<u64> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|((_, t), _)| t == topic)
            .map(|(_, v)| v.get(partition as usize).copied().flatten().unwrap_or(0))
            .min()
    }

    /// Sets offsets, durably. `update` gets the current offsets (one slot
    /// per partition) and returns whether anything changed. Blocks on fsync.
    pub fn update(
        &self,
        consumer: &str,
        topic: &str,
        partitions: u32,
        update: impl FnOnce(&mut Vec<Option<u64>>) -> Result<bool>,
    ) -> Result<()> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let key = (consumer.to_owned(), topic.to_owned());
        let mut offsets = {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            map.get(&key).cloned()
        };
        let new = offsets.is_none();
        let current = offsets.get_or_insert_with(Vec::new);
        current.resize(partitions as usize, None);
        if !update(current)? && !new {
            return Ok(());
        }
        let store = Self::store(&self.dir, consumer)?;
        store
            .save(topic, current)
            .map_err(|e| LogError::core(store.path_of(topic), e))?;
        let current = current.clone();
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, current);
        Ok(())
    }
}
