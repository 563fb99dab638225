//! Encode buffers handed back by the writer for the next appends. Batches
//! of a few hundred KiB would otherwise be fresh `mmap`s: page faults to
//! fill them and an `munmap` to free them, per append.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Capacity kept in the pool at most (about what may be in flight).
const KEEP_BYTES: usize = 8 << 20;
/// Larger buffers are freed, not kept.
const MAX_BYTES: usize = 8 << 20;

#[derive(Debug, Default)]
pub struct BufferPool {
    /// The buffers, and the sum of their capacities.
    free: Mutex<(Vec<Vec<u8>>, usize)>,
    /// The length of the last batch handed back: new buffers start with
    /// that capacity instead of growing (and copying) record by record.
    last_len: AtomicUsize,
    /// Records in the last append, likewise for its per-record vectors.
    last_records: AtomicUsize,
}

impl BufferPool {
    pub fn last_records(&self) -> usize {
        self.last_records.load(Ordering::Relaxed)
    }

    pub fn set_last_records(&self, records: usize) {
        self.last_records
            .store(records.min(1 << 20), Ordering::Relaxed);
    }

    pub fn take(&self) -> Vec<u8> {
        let buffer = {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            let buffer = free.0.pop();
            free.1 -= buffer.as_ref().map_or(0, Vec::capacity);
            buffer
        };
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
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.1 + buffer.capacity() <= KEEP_BYTES {
            free.1 += buffer.capacity();
            free.0.push(buffer);
        }
    }
}
