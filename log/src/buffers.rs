//! Encode buffers handed back by the writer for the next appends. Batches
//! of a few hundred KiB would otherwise be fresh `mmap`s: page faults to
//! fill them and an `munmap` to free them, per append.

use std::sync::Mutex;

const KEEP: usize = 32;
const MAX_BYTES: usize = 8 << 20;

#[derive(Debug, Default)]
pub struct BufferPool(Mutex<Vec<Vec<u8>>>);

impl BufferPool {
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    pub fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() > MAX_BYTES {
            return;
        }
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEEP {
            pool.push(buffer);
        }
    }
}
