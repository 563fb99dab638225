//! Encode buffers handed back by the writer for the next appends. Batches
//! of a few hundred KiB would otherwise be fresh `mmap`s: page faults to
//! fill them and an `munmap` to free them, per append.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const KEEP: usize = 32;
const MAX_BYTES: usize = 8 << 20;

#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    /// The length of the last batch handed back: new buffers start with
    /// that capacity instead of growing (and copying) record by record.
    last_len: AtomicUsize,
}

impl BufferPool {
    pub fn take(&self) -> Vec<u8> {
        let buffer = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let want = self.last_len.load(Ordering::Relaxed);
        match buffer {
            Some(mut buffer) => {
                buffer.clear();
                buffer.reserve(want);
                buffer
            }
            None => Vec::with_capacity(want),
        }
    }

    pub fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() > MAX_BYTES {
            return;
        }
        self.last_len.store(buffer.len(), Ordering::Relaxed);
        let mut pool = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEEP {
            pool.push(buffer);
        }
    }
}
