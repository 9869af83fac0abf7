// SPDX-License-Identifier: GPL-2.0
//! Per-CPU object-gate decisions that leave the reader where it is, answered and counted
//! without the lock.
//!
//! Under `(pipe-read, *, req=www1) -> (keep)` (or `-> (req)`, or `-> (www1)`), a task of
//! `www1` that reads a pipe written in `www1` stays where it is, and the rule counts a hit.
//! The unlocked reader (`unlocked.rs`) cannot answer that read, since a rule does apply, so
//! every such read took the state lock to count one hit: a pipe round trip inside one VS
//! cost 1.28x the module-absent time. This cache remembers, per CPU, that for an event, a
//! reader's VS slot and a writer's VS slot the rules leave the reader where it is, and which
//! rule decided; the next such read adds to the entry's count with one CAS, and the counts
//! are folded into the rules' hit counts under the lock.
//!
//! The same entries keep a second kind of count: the **refused tag writes** of a VS that may
//! take no more object tags (`tags.rs`). Such a VS's every write to an untagged pipe is
//! refused and counted; without the cache each took the state lock, so a tenant at its quota
//! writing from many CPUs would serialise them on it, and every other VS's locked gates with
//! them. An entry of the pseudo-event [`TAG_WRITE`] for the writer's slot says that VS is
//! refused: the entry is filled when a write is refused, and forgotten ([`forget`],
//! [`forget_event`]) as soon as the VS may take a tag again, so it never says so of a VS that
//! has room.
//!
//! Layout: [`WAYS`] entries per CPU, each two `AtomicU64`: the **key word** (bit 63 valid,
//! bits 59..=62 the event, 47..=58 the reader's slot, 35..=46 the writer's, 0..=34 the hits
//! not yet folded) and the **counter word**, whose count the hits are ([`Counter`]). An entry
//! is direct-mapped by its key.
//!
//! Who writes what:
//! - the owner CPU's locked gate fills an entry ([`fill`]), counter word first: only with the
//!   lock held, so the folders (which hold it too) see both words agree;
//! - the owner CPU's unlocked gate adds one hit ([`hit`]) with a CAS on the key word, which
//!   fails if the word changed since it was read;
//! - a fold from any CPU under the lock takes the counts out ([`fold`], a `fetch_and`), or
//!   the whole entry ([`clear`], [`forget`], [`forget_event`], a `swap(0)`) when the tree or
//!   the rules changed, or what a [`TAG_WRITE`] entry says is no longer so: every
//!   locked section that changes them ends with a clear (`Vs::publish_gate_view`), as it
//!   clears the gate view. So an entry never outlives the configuration it was filled under,
//!   and a hit whose CAS succeeded was counted before that clear took the count out: to the
//!   rule that decided it, never twice, never lost.
//!
//! No ABA: an entry emptied by a clear is refilled only by its owner CPU, which cannot be
//! between the load and the CAS of its own [`hit`] (the gates run with preemption off).
//!
//! Ordering: `Relaxed`. The counts are sums; the slots in a key were validated by the
//! reader's seqcount read before [`hit`] is tried.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Entries per CPU (a power of two): the (event, reader VS, writer VS) triples a CPU keeps.
pub const WAYS: usize = 8;
/// The pseudo-event of a refused tag write, above every rule event (`VS_EV_MAX`): key
/// `{ TAG_WRITE, writer's slot, 0 }`, counter [`Counter::TagsRefused`].
pub const TAG_WRITE: u32 = EVENT_MASK as u32;
/// Words per CPU: a key word and a counter word per entry.
pub const WORDS_PER_CPU: usize = 2 * WAYS;

const VALID: u64 = 1 << 63;
const EVENT_SHIFT: u32 = 59;
const CUR_SHIFT: u32 = 47;
const REQ_SHIFT: u32 = 35;
const SLOT_MASK: u64 = (1 << 12) - 1;
const EVENT_MASK: u64 = (1 << 4) - 1;
const COUNT_MASK: u64 = (1 << REQ_SHIFT) - 1;

/// The counter word: 0 for none, a rule id, or this bit with a VS slot.
const TAGS_REFUSED: u64 = 1 << 32;

/// Whose count an entry's hits are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// No rule matched: nothing to count.
    None,
    /// The hits of the rule with this id.
    Rule(u32),
    /// The `tags_refused` of the VS in this slot.
    TagsRefused(usize),
}

impl Counter {
    fn word(self) -> u64 {
        match self {
            Counter::None => 0,
            Counter::Rule(id) => u64::from(id),
            Counter::TagsRefused(slot) => TAGS_REFUSED | slot as u64 & SLOT_MASK,
        }
    }

    fn of(w: u64) -> Counter {
        match w {
            0 => Counter::None,
            w if w & TAGS_REFUSED != 0 => Counter::TagsRefused((w & SLOT_MASK) as usize),
            w => Counter::Rule(w as u32),
        }
    }
}

/// What an entry is for: an event, the reader's VS slot and the writer's (0: untagged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub event: u32,
    pub cur: usize,
    pub req: usize,
}

impl Key {
    /// The key word with no hits; `None` if a field does not fit (such reads always lock).
    #[inline(always)]
    fn word(self) -> Option<u64> {
        let (e, c, r) = (u64::from(self.event), self.cur as u64, self.req as u64);
        (e <= EVENT_MASK && c <= SLOT_MASK && r <= SLOT_MASK)
            .then_some(VALID | e << EVENT_SHIFT | c << CUR_SHIFT | r << REQ_SHIFT)
    }

    /// The entry of `cpu` this key maps to: (key word, counter word).
    #[inline(always)]
    fn entry(self, table: &[AtomicU64], cpu: usize) -> Option<(&AtomicU64, &AtomicU64)> {
        let h = (self.cur as u32).wrapping_mul(0x9E37_79B9)
            ^ (self.req as u32).wrapping_mul(0x85EB_CA6B)
            ^ self.event.wrapping_mul(0x27D4_EB2F);
        let way = (h >> 16) as usize & (WAYS - 1);
        let at = cpu.checked_mul(WORDS_PER_CPU)?.checked_add(2 * way)?;
        Some((table.get(at)?, table.get(at + 1)?))
    }
}

/// Count one hit for `key` on `cpu` (the calling CPU, preemption off) if its entry holds it.
/// `false`: not cached (or the count is full); take the lock.
// Inlined: it is the whole of a cached pipe read's work after the lookups.
#[inline(always)]
pub fn hit(table: &[AtomicU64], cpu: usize, key: Key) -> bool {
    let (Some(want), Some((word, _))) = (key.word(), key.entry(table, cpu)) else {
        return false;
    };
    let mut cur = word.load(Relaxed);
    // A failed CAS means a fold took the count out meanwhile (the key is still there) or a
    // clear emptied the entry: look again, a few times.
    for _ in 0..4 {
        if cur & !COUNT_MASK != want || cur & COUNT_MASK == COUNT_MASK {
            return false;
        }
        match word.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
            Ok(_) => return true,
            Err(v) => cur = v,
        }
    }
    false
}

/// Remember on `cpu` that the rules leave a reader of `key` where it is, its hits counted to
/// `counter` (or, for [`TAG_WRITE`], that the writer's VS is at its quota). With the lock
/// held, on the owner CPU. The entry it replaces is folded through `f(counter, hits)`.
pub fn fill(
    table: &[AtomicU64],
    cpu: usize,
    key: Key,
    counter: Counter,
    mut f: impl FnMut(Counter, u64),
) {
    let (Some(want), Some((word, id))) = (key.word(), key.entry(table, cpu)) else {
        return;
    };
    let old = word.swap(0, Relaxed);
    take(old, id, &mut f);
    id.store(counter.word(), Relaxed);
    word.store(want, Relaxed);
}

/// The hits in key word `old` of an entry whose counter word is `id`, through `f`.
fn take(old: u64, id: &AtomicU64, f: &mut impl FnMut(Counter, u64)) {
    let n = old & COUNT_MASK;
    let counter = Counter::of(id.load(Relaxed));
    if old & VALID != 0 && n != 0 && counter != Counter::None {
        f(counter, n);
    }
}

/// Empty `key`'s entry on every CPU, calling `f(counter, hits)` for the hits it held: what it
/// said is no longer so. With the lock held.
pub fn forget(table: &[AtomicU64], key: Key, mut f: impl FnMut(Counter, u64)) {
    let Some(want) = key.word() else {
        return;
    };
    for cpu in 0..table.len() / WORDS_PER_CPU {
        if let Some((word, id)) = key.entry(table, cpu) {
            if word.load(Relaxed) & !COUNT_MASK == want {
                let old = word.swap(0, Relaxed);
                take(old, id, &mut f);
            }
        }
    }
}

/// Empty every entry of `event` on every CPU, calling `f(counter, hits)` for the hits each
/// held: what they said is no longer so. With the lock held.
pub fn forget_event(table: &[AtomicU64], event: u32, mut f: impl FnMut(Counter, u64)) {
    for e in table.chunks_exact(2) {
        let w = e[0].load(Relaxed);
        if w & VALID != 0 && (w >> EVENT_SHIFT) & EVENT_MASK == u64::from(event) {
            let old = e[0].swap(0, Relaxed);
            take(old, &e[1], &mut f);
        }
    }
}

/// Take every entry's hits out, calling `f(counter, hits)`; the entries stay. With the lock
/// held (before the counts are read).
pub fn fold(table: &[AtomicU64], mut f: impl FnMut(Counter, u64)) {
    for e in table.chunks_exact(2) {
        if e[0].load(Relaxed) & COUNT_MASK != 0 {
            let old = e[0].fetch_and(!COUNT_MASK, Relaxed);
            take(old, &e[1], &mut f);
        }
    }
}

/// Empty every entry, calling `f(counter, hits)` for the hits it held. With the lock held,
/// when the tree or the rules changed.
pub fn clear(table: &[AtomicU64], mut f: impl FnMut(Counter, u64)) {
    for e in table.chunks_exact(2) {
        if e[0].load(Relaxed) != 0 {
            let old = e[0].swap(0, Relaxed);
            take(old, &e[1], &mut f);
        }
    }
}
