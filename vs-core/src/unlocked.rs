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
//!   naming it or any VS as the current one); bits 0..=31: its VSID.
//!
//! A slot's word is filled the first time a locked gate runs in that VS, and every word is
//! cleared when the tree or the rules change (`Vs::publish_gate_view`), so a word is never
//! older than the configuration. Anything else (a rule may apply, a word not filled yet, a
//! write overlapped) returns `None`, and the gate takes the lock as before.

use crate::abi::VS_EV_FORK;
use crate::members::shadow_lookup;
use crate::seq::SeqCount;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

const VALID: u64 = 1 << 63;
const EVENTS_SHIFT: u32 = 32;

/// The gate view's word for a VS `id` whose rules may decide `events` (bit `1 << event`).
pub fn view_word(id: u32, events: u32) -> u64 {
    VALID | u64::from(events & 0x7ff) << EVENTS_SHIFT | u64::from(id)
}

/// `(id, events)` of a valid word.
fn parse(w: u64) -> Option<(u32, u32)> {
    (w & VALID != 0).then_some((w as u32, (w >> EVENTS_SHIFT) as u32 & 0x7ff))
}

/// The tables, borrowed for one unlocked read.
pub struct Unlocked<'a> {
    pub seq: &'a SeqCount,
    /// The member shadow (see `members.rs`).
    pub members: &'a [AtomicU64],
    /// The gate view, one word per registry slot.
    pub view: &'a [AtomicU64],
}

impl Unlocked<'_> {
    /// The VSID a gate of `event` leaves task `pid` in, when no rule of `event` can apply to
    /// it; `None`: take the lock.
    pub fn gate(&self, pid: u64, event: u32) -> Option<u32> {
        let bit = 1u32.checked_shl(event)?;
        self.seq.read(|| {
            let slot = shadow_lookup(self.members, pid).unwrap_or(0);
            let (id, events) = parse(self.view.get(slot)?.load(Relaxed))?;
            (events & bit == 0).then_some(id)
        })
    }

    /// Whether task `pid` has no membership entry: in the root, nothing reserved, no nice
    /// value of vs's to give back. Its exit gate then has only its cached CPU time to charge
    /// (to the root).
    pub fn has_no_entry(&self, pid: u64) -> bool {
        self.seq
            .read(|| shadow_lookup(self.members, pid).is_none().then_some(()))
            .is_some()
    }

    /// Whether the fork gate has nothing to do for this fork: neither parent nor child has a
    /// membership entry (no VS but the root, no reservation, no nice value of vs's to pass on)
    /// and no fork rule applies in the root. The caller counts the fork for the root.
    pub fn fork_is_noop(&self, parent: u64, child: u64) -> bool {
        self.seq
            .read(|| {
                let (_, events) = parse(self.view.first()?.load(Relaxed))?;
                (events & 1 << VS_EV_FORK == 0
                    && shadow_lookup(self.members, parent).is_none()
                    && shadow_lookup(self.members, child).is_none())
                .then_some(())
            })
            .is_some()
    }
}
