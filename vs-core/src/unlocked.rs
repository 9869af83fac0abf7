// SPDX-License-Identifier: GPL-2.0
//! What the gates can answer without the state lock.
//!
//! Most gate hits change nothing: the task is in a VS for which no rule of that event exists
//! (a web server's `socket()`, an unclassified task's fork), and the gate only needs the
//! task's VSID to tag a socket. Those are answered here from two tables of atomics the lock's
//! holder keeps up to date, validated by the state's [`SeqCount`] (every locked section is a
//! write section): the **member shadow** (`members.rs`: pid -> slot) and the **gate view**,
//! one word per registry slot:
//!
//! - bit 63: valid; bits 32..=42: the events some rule may decide for a task in this VS (a rule
//!   naming it or any VS as the current one); bits 43..=53: the events some rule may decide
//!   for a requester in this VS (a rule naming it or any VS as `req=`); bits 0..=31: its VSID.
//!
//! A gate with a requester (accept, unix accept and receive, pipe read, message receive) also
//! reads the requester's word: the pipe and message gates find its slot in the **object
//! shadow** (the object-tag table's, keyed by [`object_key`]: which VS wrote a pipe or message
//! last), the socket gates in the network view's map of socket tags (the kernel's
//! `net::slot_of_tag`). An untagged object or socket has the root's word, as an unclassified
//! requester (`req=root` rules match both). So a `(pipe-read, *, req=www1)` rule makes only the
//! reads of pipes written in `www1` take the lock, not every pipe read on the host; and a
//! write that leaves a pipe's tag as it was, or the free of an untagged one, takes none. Nor
//! does the write of a VS refused a tag (`tags.rs`) to an untagged pipe, once its CPU knows it
//! (`stay_cache`, `TAG_WRITE`).
//!
//! When a rule does apply but leaves the task where it is (both ends of a pipe in `www1`
//! under `(pipe-read, *, req=www1) -> (keep)`), the **stay cache** of the task's CPU may know
//! it (`stay_cache.rs`): the gate is then counted there, without the lock.
//!
//! A slot's word is filled the first time a locked gate runs in that VS (as the task's VS or
//! as the requester), and every word is cleared when the tree or the rules change
//! (`Vs::publish_gate_view`), so a word is never older than the configuration. Anything else
//! (a rule may apply, a word not filled yet, a write overlapped) returns `None`, and the gate
//! takes the lock as before.

use crate::abi::{vs_event_has_req, VS_EV_EXEC, VS_EV_FORK};
use crate::members::shadow_lookup;
use crate::seq::SeqCount;
use crate::stay_cache::{self, Key};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const VALID: u64 = 1 << 63;
const EVENTS_SHIFT: u32 = 32;
const REQ_EVENTS_SHIFT: u32 = 43;
const EVENTS: u32 = 0x7ff;

/// The gate view's word for a VS `id` whose rules may decide `events` for its tasks and
/// `req_events` for its requesters (bit `1 << event`).
pub fn view_word(id: u32, events: u32, req_events: u32) -> u64 {
    VALID
        | u64::from(req_events & EVENTS) << REQ_EVENTS_SHIFT
        | u64::from(events & EVENTS) << EVENTS_SHIFT
        | u64::from(id)
}

/// A valid word.
#[derive(Clone, Copy)]
struct Word {
    id: u32,
    events: u32,
    req_events: u32,
}

#[inline]
fn parse(w: u64) -> Option<Word> {
    (w & VALID != 0).then_some(Word {
        id: w as u32,
        events: (w >> EVENTS_SHIFT) as u32 & EVENTS,
        req_events: (w >> REQ_EVENTS_SHIFT) as u32 & EVENTS,
    })
}

/// The object-tag table's key for a kernel object at `addr`: its low 48 bits, which tell
/// kernel addresses apart (the upper 16 of a canonical kernel address are all ones) and fit
/// a shadow word beside the slot.
pub fn object_key(addr: u64) -> u64 {
    addr & ((1 << 48) - 1)
}

/// The tables, borrowed for one unlocked read.
pub struct Unlocked<'a> {
    pub seq: &'a SeqCount,
    /// The member shadow (see `members.rs`).
    pub members: &'a [AtomicU64],
    /// The gate view, one word per registry slot.
    pub view: &'a [AtomicU64],
    /// The object-tag table's shadow (`object key << 16 | slot`).
    pub objects: &'a [AtomicU64],
    /// The per-CPU stay caches (see `stay_cache.rs`).
    pub stays: &'a [AtomicU64],
    /// The managed listeners' index shadow (`accept::AcceptTable::shadow`), and the sequence
    /// count of its own that validates reads of it.
    pub listeners: &'a [AtomicU64],
    pub listeners_seq: &'a SeqCount,
}

impl Unlocked<'_> {
    /// The VSID a gate of `event` leaves task `pid` in, on CPU `cpu` (the caller's,
    /// preemption off), when the gate has nothing left to do: no rule of `event` can apply to
    /// the task's VS; or, for an event with a requester, none to the requester's VS (registry
    /// slot `req()`, read inside the same validated read: 0 for none or unknown); or the CPU's
    /// stay cache knows that the rules leave the task where it is (and counted the hit there).
    /// `None`: take the lock.
    #[inline(always)]
    pub fn gate(
        &self,
        pid: u64,
        event: u32,
        cpu: usize,
        req: impl FnOnce() -> usize,
    ) -> Option<u32> {
        let bit = 1u32.checked_shl(event)?;
        let read = self.seq.read(|| {
            let cur_slot = shadow_lookup(self.members, pid).unwrap_or(0);
            let cur = self.word(cur_slot)?;
            if cur.events & bit == 0 {
                return Some((cur.id, None));
            }
            // An event without a requester keys the stay cache by slot 0.
            let req_slot = if vs_event_has_req(event) {
                let slot = req();
                if self.word(slot)?.req_events & bit == 0 {
                    return Some((cur.id, None));
                }
                slot
            } else {
                0
            };
            let key = Key {
                event,
                cur: cur_slot,
                req: req_slot,
            };
            Some((cur.id, Some(key)))
        });
        match read? {
            (id, None) => Some(id),
            // The slots were validated above; the cache's CAS fails if the configuration
            // changed since (see `stay_cache`).
            (id, Some(key)) => stay_cache::hit(self.stays, cpu, key).then_some(id),
        }
    }

    /// Whether some rule of `event` may decide for task `pid` (one names its VS or any VS as
    /// the current one); `None`: not known without the lock.
    #[inline]
    pub fn rule_may_apply(&self, pid: u64, event: u32) -> Option<bool> {
        let bit = 1u32.checked_shl(event)?;
        self.seq.read(|| {
            let cur = self.word(shadow_lookup(self.members, pid).unwrap_or(0))?;
            Some(cur.events & bit != 0)
        })
    }

    #[inline]
    fn word(&self, slot: usize) -> Option<Word> {
        parse(self.view.get(slot)?.load(Relaxed))
    }

    /// Whether the pipe or message gate of `event` has nothing left to do for task `pid` on
    /// CPU `cpu` reading the object with key `obj` ([`object_key`]): [`gate`](Self::gate)
    /// with the VS that wrote the object as the requester. `false`: take the lock.
    #[inline]
    pub fn object_gate(&self, pid: u64, event: u32, obj: u64, cpu: usize) -> bool {
        self.gate(pid, event, cpu, || {
            shadow_lookup(self.objects, obj).unwrap_or(0)
        })
        .is_some()
    }

    /// Whether a write by task `pid` on CPU `cpu` (the caller's, preemption off) to the object
    /// with key `obj` is done without the lock: the object already carries the tag the write
    /// gives it (the writer's VS, or none for a writer in the root); or it is untagged, and
    /// the CPU's stay cache knows the writer's VS is refused a tag (and counted the refusal
    /// there: see `stay_cache`, `TAG_WRITE`). `false`: take the lock.
    #[inline]
    pub fn tag_write(&self, obj: u64, pid: u64, cpu: usize) -> bool {
        let read = self.seq.read(|| {
            let writer = shadow_lookup(self.members, pid).unwrap_or(0);
            match shadow_lookup(self.objects, obj).unwrap_or(0) {
                tag if tag == writer => Some(None),
                0 => Some(Some(writer)),
                _ => None,
            }
        });
        match read {
            Some(None) => true,
            Some(Some(writer)) => {
                let key = Key {
                    event: stay_cache::TAG_WRITE,
                    cur: writer,
                    req: 0,
                };
                stay_cache::hit(self.stays, cpu, key)
            }
            None => false,
        }
    }

    /// Whether the object with key `obj` has no tag (its free has nothing to remove).
    #[inline]
    pub fn untagged(&self, obj: u64) -> bool {
        self.seq
            .read(|| shadow_lookup(self.objects, obj).is_none().then_some(()))
            .is_some()
    }

    /// Whether the listening socket at `addr` is managed by share (its SYNs are admitted by
    /// share: `accept.rs`); `None`: not known without the lock.
    #[inline]
    pub fn listener_managed(&self, addr: u64) -> Option<bool> {
        self.listeners_seq
            .read(|| Some(shadow_lookup(self.listeners, object_key(addr)).is_some()))
    }

    /// Whether task `pid` has no membership entry: in the root, nothing reserved, no nice
    /// value of vs's to give back. Its exit gate then has only its cached CPU time to charge
    /// (to the root).
    #[inline]
    pub fn has_no_entry(&self, pid: u64) -> bool {
        self.seq
            .read(|| shadow_lookup(self.members, pid).is_none().then_some(()))
            .is_some()
    }

    /// Whether the exec gate has nothing to do for task `pid`, which execs under its own pid:
    /// it has no membership entry (it is in the root and stays there) and no exec rule applies
    /// in the root. The caller counts the exec for the root.
    pub fn exec_is_noop(&self, pid: u64) -> bool {
        self.seq
            .read(|| {
                let root = self.word(0)?;
                (root.events & 1 << VS_EV_EXEC == 0 && shadow_lookup(self.members, pid).is_none())
                    .then_some(())
            })
            .is_some()
    }

    /// Whether the fork gate has nothing to do for this fork: neither parent nor child has a
    /// membership entry (no VS but the root, no reservation, no nice value of vs's to pass on)
    /// and no fork rule applies in the root. The caller counts the fork for the root.
    pub fn fork_is_noop(&self, parent: u64, child: u64) -> bool {
        self.seq
            .read(|| {
                let root = self.word(0)?;
                (root.events & 1 << VS_EV_FORK == 0
                    && shadow_lookup(self.members, parent).is_none()
                    && shadow_lookup(self.members, child).is_none())
                .then_some(())
            })
            .is_some()
    }
}
