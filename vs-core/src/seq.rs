// SPDX-License-Identifier: GPL-2.0
//! A sequence count: lets the gates read a few words the state lock's holder writes, without
//! taking the lock.
//!
//! The writer (always the state lock's holder, so there is one at a time) makes the count odd
//! while it changes anything a reader may look at, and even again after. A reader notes the
//! count, reads, and keeps what it read only if the count was even and has not moved: no write
//! overlapped. Otherwise it takes the lock, as before: a failed read costs a retry, never a
//! wrong answer. Everything read this way is an atomic (the member shadow, the gate view), so
//! a read that overlaps a write is a stale value, not a data race.
//!
//! Ordering, as in the C kernel's `seqcount_t` (and crossbeam's `SeqLock`): the writer's
//! release fence after going odd keeps its data stores after that store; its release store
//! going even keeps them before. The reader's acquire load of the count, and its acquire
//! fence before reading the count again, keep its data loads between the two.

use core::sync::atomic::{fence, AtomicU64, Ordering};

pub struct SeqCount(AtomicU64);

impl Default for SeqCount {
    fn default() -> Self {
        Self::new()
    }
}

impl SeqCount {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Start a write section. Only one writer at a time (the caller's lock sees to it).
    pub fn write_begin(&self) {
        let s = self.0.load(Ordering::Relaxed);
        self.0.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
    }

    /// End the write section [`write_begin`](Self::write_begin) started.
    pub fn write_end(&self) {
        let s = self.0.load(Ordering::Relaxed);
        self.0.store(s.wrapping_add(1), Ordering::Release);
    }

    /// Run `read` (which must only load atomics) and keep its answer if no write section
    /// overlapped it; `None` if one did, or if `read` found nothing.
    pub fn read<T>(&self, read: impl FnOnce() -> Option<T>) -> Option<T> {
        let before = self.0.load(Ordering::Acquire);
        if before & 1 != 0 {
            return None;
        }
        let got = read();
        fence(Ordering::Acquire);
        (self.0.load(Ordering::Relaxed) == before)
            .then_some(got)
            .flatten()
    }
}
