// SPDX-License-Identifier: GPL-2.0
//! Task membership: which VS each classified task belongs to.
//!
//! The unit is the task (a thread): the accept gate must be able to move the one thread of a
//! threaded server that accepted a request. Tasks of the root VS have no entry; absence means
//! VS 0, so a machine's thousands of unclassified tasks cost nothing and the table only grows
//! with the classified ones.
//!
//! An open-addressing hash table keyed by global pid, with linear probing and backward-shift
//! deletion (no tombstones, so lookups never degrade), over caller-provided storage whose length
//! is a power of two. It refuses to fill beyond 7/8, which keeps probe sequences short. Nothing
//! here allocates: safe under a spinlock and in probe handlers.
//!
//! The membership table also keeps a **shadow**: one `AtomicU64` per position, `pid << 16 |
//! slot` (0: free), written with every change of an entry's pid or slot. The gates read it
//! without the state lock ([`shadow_lookup`]), under the seqcount the lock holder bumps
//! (`seq.rs`): a lookup that overlapped a change is thrown away.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One classified task (or, in an object table, one tagged kernel object keyed by address).
/// `pid == 0` marks a free entry (pid 0 is the idle task, never a member; no object is at 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub pid: u64,
    /// Registry slot of the task's VS.
    pub slot: u16,
    /// Registry slot + 1 of a process-count reservation this task holds for a fork in progress
    /// (0: none). See `tree::Registry::reserve`.
    pub pending: u16,
    /// CPU control (see `cpu_control::Vs::cpu_tick`): `NICE_*` flags, the nice value the task had
    /// before vs first changed it, and the one vs last gave it.
    pub nice_flags: u8,
    pub orig_nice: i8,
    pub set_nice: i8,
}

/// vs has changed the task's nice value: `orig_nice` is to be given back.
pub const NICE_MANAGED: u8 = 1;
/// The task's nice was changed by someone else since: vs leaves it alone until it moves.
pub const NICE_USER: u8 = 2;

/// The table is at 7/8 of its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// `V`: the storage of the shadow and of the block counts (the object-tag table, keyed by
/// `unlocked::object_key`, has a shadow for the pipe and message gates but no block counts:
/// no tick scans it).
pub struct Members<S, V = &'static [AtomicU64]> {
    entries: S,
    len: usize,
    shadow: Option<V>,
    /// Entries per block of positions (a block is `1 << block_shift` positions), so that a
    /// scan of positions ([`Members::at_positions`], the CPU tick's) skips the empty ones:
    /// with few classified tasks in a 65,536-position table it reads a few blocks, not every
    /// position. Written under the caller's lock; atomics only because `V` is shared storage.
    blocks: Option<V>,
    block_shift: u32,
}

/// A pid's shadow word; the slot in the low 16 bits.
fn shadow_word(e: &Entry) -> u64 {
    if e.pid == 0 {
        0
    } else {
        e.pid << 16 | u64::from(e.slot)
    }
}

/// The slot of `pid`'s entry read from a shadow (`None`: no entry), without the lock: the
/// answer is only good if the caller's seqcount read shows no change overlapped it. Bounded
/// even on a torn table (one pass at most).
#[inline]
pub fn shadow_lookup(shadow: &[AtomicU64], pid: u64) -> Option<usize> {
    let len = shadow.len();
    if pid == 0 || !len.is_power_of_two() || pid >> 48 != 0 {
        return None;
    }
    let mask = len - 1;
    let mut i = hash(pid, mask);
    for _ in 0..len {
        let w = shadow[i].load(Relaxed);
        if w == 0 {
            return None;
        }
        if w >> 16 == pid {
            return Some((w & 0xffff) as usize);
        }
        i = (i + 1) & mask;
    }
    None
}

#[inline]
fn hash(pid: u64, mask: usize) -> usize {
    // Fibonacci hashing, taking the high bits: consecutive pids and aligned addresses both
    // spread over the table.
    let h = pid.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) as usize ^ (h >> 48) as usize) & mask
}

impl<S: core::ops::DerefMut<Target = [Entry]>> Members<S> {
    /// Take `entries` (a power-of-two length; every element is cleared); no shadow, no block
    /// counts.
    pub fn new(entries: S) -> Option<Self> {
        Self::with_shadow(entries, None, None)
    }
}

impl<S, V> Members<S, V>
where
    S: core::ops::DerefMut<Target = [Entry]>,
    V: core::ops::Deref<Target = [AtomicU64]>,
{
    /// Take `entries` (a power-of-two length), a `shadow` of the same length and `blocks`
    /// counts (a power of two, at most one per position); all are cleared.
    pub fn with_shadow(mut entries: S, shadow: Option<V>, blocks: Option<V>) -> Option<Self> {
        let n = entries.len();
        if !n.is_power_of_two()
            || shadow.as_ref().is_some_and(|s| s.len() != n)
            || blocks
                .as_ref()
                .is_some_and(|b| !b.len().is_power_of_two() || b.len() > n)
        {
            return None;
        }
        for e in entries.iter_mut() {
            *e = Entry::default();
        }
        for w in shadow.iter().chain(blocks.iter()).flat_map(|s| s.iter()) {
            w.store(0, Relaxed);
        }
        // Without counts, one block of every position.
        let block_shift = blocks.as_ref().map_or(n.trailing_zeros(), |b| {
            n.trailing_zeros() - b.len().trailing_zeros()
        });
        Some(Self {
            entries,
            len: 0,
            shadow,
            blocks,
            block_shift,
        })
    }

    /// Write the entry at position `i`, and its shadow and block count.
    fn put(&mut self, i: usize, e: Entry) {
        let (was, is) = (self.entries[i].pid != 0, e.pid != 0);
        self.entries[i] = e;
        self.reflect(i);
        if let Some(n) = self
            .blocks
            .as_ref()
            .and_then(|b| b.get(i >> self.block_shift))
        {
            match (was, is) {
                (false, true) => n.store(n.load(Relaxed).saturating_add(1), Relaxed),
                (true, false) => n.store(n.load(Relaxed).saturating_sub(1), Relaxed),
                _ => {}
            }
        }
    }

    /// Bring the shadow of position `i` up to date.
    fn reflect(&self, i: usize) {
        if let Some(s) = &self.shadow {
            s[i].store(shadow_word(&self.entries[i]), Relaxed);
        }
    }

    /// Set the slot of `pid`'s entry, if it has one: the one way to change a slot, so that the
    /// shadow follows.
    pub fn set_slot(&mut self, pid: u64, slot: u16) -> bool {
        if pid == 0 {
            return false;
        }
        let i = self.probe(pid);
        if self.entries[i].pid != pid {
            return false;
        }
        self.entries[i].slot = slot;
        self.reflect(i);
        true
    }

    /// The shadow (for the gates' unlocked reads), if this table keeps one.
    pub fn shadow(&self) -> Option<&[AtomicU64]> {
        self.shadow.as_deref()
    }

    /// Whether the shadow says what the entries say (for tests).
    pub fn shadow_agrees(&self) -> bool {
        self.shadow.as_ref().is_none_or(|s| {
            self.entries
                .iter()
                .zip(s.iter())
                .all(|(e, w)| w.load(Relaxed) == shadow_word(e))
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most entries the table accepts.
    pub fn limit(&self) -> usize {
        self.entries.len() / 8 * 7
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Index of `pid`'s entry, or of the free entry where it would go.
    fn probe(&self, pid: u64) -> usize {
        let mask = self.mask();
        let mut i = hash(pid, mask);
        // The table is never full, so a free entry ends every probe sequence.
        loop {
            let e = &self.entries[i];
            if e.pid == pid || e.pid == 0 {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, pid: u64) -> Option<&Entry> {
        if pid == 0 {
            return None;
        }
        let e = &self.entries[self.probe(pid)];
        (e.pid == pid).then_some(e)
    }

    pub fn get_mut(&mut self, pid: u64) -> Option<&mut Entry> {
        if pid == 0 {
            return None;
        }
        let i = self.probe(pid);
        let e = &mut self.entries[i];
        (e.pid == pid).then_some(e)
    }

    /// The entry for `pid`, created (slot 0, nothing pending) if absent.
    pub fn entry(&mut self, pid: u64) -> Result<&mut Entry, Full> {
        if pid == 0 {
            return Err(Full);
        }
        let i = self.probe(pid);
        if self.entries[i].pid == 0 {
            if self.len >= self.limit() {
                return Err(Full);
            }
            self.put(
                i,
                Entry {
                    pid,
                    ..Entry::default()
                },
            );
            self.len += 1;
        }
        Ok(&mut self.entries[i])
    }

    /// Remove `pid`'s entry, returning it.
    pub fn remove(&mut self, pid: u64) -> Option<Entry> {
        if pid == 0 {
            return None;
        }
        let mask = self.mask();
        let mut hole = self.probe(pid);
        let old = self.entries[hole];
        if old.pid != pid {
            return None;
        }
        // Backward-shift: move later members of the probe run into the hole when their home
        // position does not lie cyclically in (hole, j].
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e.pid == 0 {
                break;
            }
            let home = hash(e.pid, mask);
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.put(hole, e);
                hole = j;
            }
        }
        self.put(hole, Entry::default());
        self.len -= 1;
        Some(old)
    }

    /// Remove every entry for which `keep` is false, in one pass over the positions: O(table)
    /// where removing them one lookup at a time from the start would be O(table x removed).
    /// A removal shifts later entries of its probe run back, possibly into the position just
    /// looked at (which is therefore looked at again), never into an earlier one that could
    /// still need removing: every entry before the current position was kept. `keep` may see
    /// an entry more than once. Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.entries.len() {
            let e = self.entries[i];
            if e.pid != 0 && !keep(&e) {
                self.remove(e.pid);
                removed += 1;
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Drop the entry of `pid` if it holds nothing: in the root VS, with no reservation and
    /// no nice value to give back.
    pub fn tidy(&mut self, pid: u64) {
        if matches!(self.get(pid), Some(e) if e.slot == 0 && e.pending == 0 && e.nice_flags & NICE_MANAGED == 0)
        {
            self.remove(pid);
        }
    }

    /// How many entries the table can hold at most (its positions, used or free).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The entries at table positions `range` (clipped to the table), in position order.
    pub fn at_positions(
        &self,
        range: core::ops::Range<usize>,
    ) -> impl Iterator<Item = &Entry> + '_ {
        let end = range.end.min(self.entries.len());
        let start = range.start.min(end);
        let shift = self.block_shift;
        let blocks = (start >> shift)
            ..end
                .saturating_sub(1)
                .checked_shr(shift)
                .map_or(0, |b| b + 1);
        let counts = self.blocks.as_deref().unwrap_or(&[]);
        blocks
            .filter(move |&b| counts.get(b).is_none_or(|n| n.load(Relaxed) != 0))
            .flat_map(move |b| {
                let lo = (b << shift).max(start);
                let hi = ((b + 1) << shift).min(end);
                self.entries[lo.min(hi)..hi].iter()
            })
            .filter(|e| e.pid != 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().filter(|e| e.pid != 0)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> + '_ {
        self.entries.iter_mut().filter(|e| e.pid != 0)
    }
}
