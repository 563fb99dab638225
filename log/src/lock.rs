//! One writer per log directory: an exclusive lock on `{dir}/LOCK`, held
//! while the log is open, so two daemons (or a daemon and `headwater replay
//! --to-log`) never append to one log. The operating system drops the lock
//! with the process, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{LogError, Result};

const FILE: &str = "LOCK";

#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LogError::io("opening the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(LogError::Locked {
                    dir: dir.to_owned(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(LogError::io("locking", &path, e));
            }
        }
        // The holder's PID, for the error another process gets.
        let pid = format!("PID {}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| LogError::io("writing the lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_the_first_release_frees_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first lock");
        let err = DirLock::acquire(dir.path()).expect_err("the directory is locked");
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id()))
                && text.contains(&dir.path().display().to_string()),
            "{text}"
        );
        drop(first);
        DirLock::acquire(dir.path()).expect("free again");
    }
}
