//! The threads that fsync several partitions' segments at once, so one
//! file-system journal commit covers them all. They live as long as the
//! log: starting threads for every sync round cost more CPU than the
//! fsyncs they ran.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::error::{LogError, Result};

/// At most this many fsyncs run at once.
const MAX_THREADS: usize = 8;

/// A segment file to fsync, and its path for the error message.
#[derive(Clone)]
pub(crate) struct SyncTarget {
    pub file: Arc<File>,
    pub path: PathBuf,
}

impl SyncTarget {
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io("fsyncing segment", &self.path, e))
    }
}

pub(crate) struct SyncPool {
    workers: Vec<Sender<Vec<SyncTarget>>>,
    done_tx: Sender<Result<()>>,
    done: Receiver<Result<()>>,
}

impl SyncPool {
    pub fn new() -> Self {
        let (done_tx, done) = channel();
        SyncPool {
            workers: Vec::new(),
            done_tx,
            done,
        }
    }

    /// fsyncs every target, in parallel when there are several: the
    /// calling thread takes the first share, pool threads the others.
    pub fn sync_all(&mut self, targets: &[SyncTarget]) -> Result<()> {
        if targets.len() <= 1 {
            return targets.iter().try_for_each(SyncTarget::sync);
        }
        let mut shares = targets.chunks(targets.len().div_ceil(MAX_THREADS));
        let own = shares.next().unwrap_or_default();
        let mut sent = 0;
        let mut first_error = None;
        for (i, share) in shares.enumerate() {
            match self.worker(i).and_then(|w| {
                w.send(share.to_vec())
                    .map_err(|_| stopped("an fsync thread stopped"))
            }) {
                Ok(()) => sent += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let own = own.iter().try_for_each(SyncTarget::sync);
        for _ in 0..sent {
            let result = self
                .done
                .recv()
                .unwrap_or_else(|_| Err(stopped("an fsync thread stopped")));
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => own,
        }
    }

    /// The `i`th pool thread, started the first time a round needs it.
    fn worker(&mut self, i: usize) -> Result<&Sender<Vec<SyncTarget>>> {
        while self.workers.len() <= i {
            let (tx, rx) = channel::<Vec<SyncTarget>>();
            let done = self.done_tx.clone();
            std::thread::Builder::new()
                .name("headwater-log-sync".into())
                .spawn(move || {
                    while let Ok(share) = rx.recv() {
                        let result = share.iter().try_for_each(SyncTarget::sync);
                        if done.send(result).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| stopped(&format!("could not start an fsync thread: {e}")))?;
            self.workers.push(tx);
        }
        Ok(&self.workers[i])
    }
}

fn stopped(reason: &str) -> LogError {
    LogError::Poisoned {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(dir: &std::path::Path, n: usize) -> Vec<SyncTarget> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.log"));
                let file = File::create(&path).expect("create");
                SyncTarget {
                    file: Arc::new(file),
                    path,
                }
            })
            .collect()
    }

    #[test]
    fn rounds_of_any_size_reuse_the_same_threads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pool = SyncPool::new();
        for n in [0, 1, 3, 16, 2, 20] {
            pool.sync_all(&targets(dir.path(), n)).expect("sync");
        }
        assert_eq!(pool.workers.len(), MAX_THREADS - 1);
    }
}
