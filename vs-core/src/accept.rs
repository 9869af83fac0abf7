// SPDX-License-Identifier: GPL-2.0
//! The accept gate's second job: serve a listener's queue by share, and admit by share.
//!
//! A listener is *managed* once a task in a VS that an accept rule applies to accepts on it
//! (until it is closed). On a managed listener:
//!
//! - **Order.** The connection handed to `accept()` is the first queued one of the requester
//!   VS that is most behind its weighted fair share of the listener's accepts. This is
//!   start-time fair queueing over accepts: each requester has a finish tag; a requester that
//!   (re)appears in the queue starts at the listener's virtual time (no credit is banked
//!   while away); serving it advances its tag by `STRIDE / weight`. The requester with the
//!   smallest next finish tag goes first, ties to the one queued first, and FIFO holds within
//!   one requester. Since every weight is at least [`MIN_WEIGHT_PPM`], every queued requester
//!   is served within a bounded number of accepts: nobody starves.
//! - **Admission.** One requester may hold at most its share of the listener's backlog
//!   (at least one connection) in the queue ([`admit`]), so a flooding VS cannot fill the
//!   queue and lock the others out.
//!
//! Weights are the requesters' CPU shares as fractions of the machine (parts per million):
//! the accepted connection is served by a task that the accept gate moves into the requester's
//! VS, so the CPU share is what the requester is entitled to of the server's work.
//! Untagged requesters count as the root.
//!
//! Storage: a fixed table of listeners (the caller allocates it), each remembering up to
//! [`REQUESTERS`] requesters, and an index from a listener's address to its place in the
//! table: a membership-style hash table (`members.rs`) whose shadow the admission check reads
//! without the state lock, since it runs for every SYN and handshake-completing ACK of every
//! listener on the host once one listener is managed. The shadow has a sequence count of its
//! own, which only [`AcceptTable::manage`] and [`AcceptTable::forget`] bump: a SYN's read is
//! not thrown away because some other gate held the state lock meanwhile. Nothing allocates:
//! this runs in the accept path.

use crate::members::{Entry, Members};
use crate::seq::SeqCount;
use crate::unlocked::object_key;
use core::sync::atomic::AtomicU64;

/// Requesters remembered per listener; a further one competes with no memory of its past.
pub const REQUESTERS: usize = 16;
/// Smallest weight (0.1 % of the machine): bounds how long any requester can wait.
pub const MIN_WEIGHT_PPM: u32 = 1000;
/// Virtual time one accept costs a requester with the whole machine.
const STRIDE: u64 = 1_000_000_000;
/// Tags are rebased before they could overflow.
const REBASE_AT: u64 = 1 << 62;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Requester {
    /// Registry slot + 1 (0: free entry).
    slot1: u16,
    /// It had a connection queued at the last pick.
    present: bool,
    /// Virtual time at which its last accept finished.
    finish: u64,
}

/// One managed listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listener {
    /// The listening socket's address (0: free entry).
    key: u64,
    /// Start tag of the last accept served.
    vtime: u64,
    reqs: [Requester; REQUESTERS],
}

fn step(weight_ppm: u32) -> u64 {
    STRIDE / u64::from(weight_ppm.clamp(MIN_WEIGHT_PPM, 1_000_000))
}

impl Listener {
    fn find(&self, slot: usize) -> Option<usize> {
        self.reqs
            .iter()
            .position(|r| usize::from(r.slot1) == slot + 1)
    }

    /// An entry for `slot`: its own, else a free one, else the absent one furthest behind.
    fn claim(&mut self, slot: usize) -> Option<usize> {
        if let Some(i) = self.find(slot) {
            return Some(i);
        }
        let i = self.reqs.iter().position(|r| r.slot1 == 0).or_else(|| {
            (0..REQUESTERS)
                .filter(|&i| !self.reqs[i].present)
                .min_by_key(|&i| self.reqs[i].finish)
        })?;
        self.reqs[i] = Requester {
            slot1: u16::try_from(slot + 1).ok()?,
            present: false,
            finish: self.vtime,
        };
        Some(i)
    }

    /// Which queued connection to hand out next. `queued[i]` is the requester slot of the
    /// i-th connection in queue order, `weight(slot)` that requester's weight (ppm of the
    /// machine). Returns the index to serve and records the accept; `None` when empty.
    pub fn pick(&mut self, queued: &[u16], weight: impl Fn(usize) -> u32) -> Option<usize> {
        // Requesters that (re)appear, absent at the last pick, start now: no credit for time
        // away. Those that stayed queued keep their tags.
        let mut seen = [false; REQUESTERS];
        for &s in queued {
            if let Some(i) = self.claim(usize::from(s)) {
                let r = &mut self.reqs[i];
                if !r.present && !seen[i] {
                    r.finish = r.finish.max(self.vtime);
                }
                seen[i] = true;
            }
        }
        for (r, &seen) in self.reqs.iter_mut().zip(seen.iter()) {
            r.present = seen;
        }
        let mut best: Option<(u64, usize, u64)> = None; // (finish, index, start)
        for (i, &s) in queued.iter().enumerate() {
            if queued[..i].contains(&s) {
                continue; // FIFO within a requester: only its first connection competes
            }
            let start = self
                .find(usize::from(s))
                .map_or(self.vtime, |j| self.reqs[j].finish);
            let finish = start.saturating_add(step(weight(usize::from(s))));
            if best.is_none_or(|(f, _, _)| finish < f) {
                best = Some((finish, i, start));
            }
        }
        let (finish, i, start) = best?;
        if let Some(j) = self.find(usize::from(queued[i])) {
            self.reqs[j].finish = finish;
        }
        self.vtime = self.vtime.max(start);
        if self.vtime >= REBASE_AT {
            let base = self.vtime / 2;
            self.vtime -= base;
            for r in self.reqs.iter_mut() {
                r.finish = r.finish.saturating_sub(base);
            }
        }
        Some(i)
    }

    /// Forget requester `slot` (its VS is gone; the slot may be reused).
    fn forget(&mut self, slot: usize) {
        if let Some(i) = self.find(slot) {
            self.reqs[i] = Requester::default();
        }
    }
}

/// May a requester that holds `held` connections in a queue of `backlog` queue one more?
/// Its part of the backlog is its weight (ppm of the machine), at least one connection.
pub fn admit(held: u32, backlog: u32, weight_ppm: u32) -> bool {
    let part = u64::from(backlog) * u64::from(weight_ppm.min(1_000_000)) / 1_000_000;
    u64::from(held) < part.max(1)
}

/// The managed listeners.
pub struct AcceptTable<S, E, V = &'static [AtomicU64]> {
    listeners: S,
    /// Where each managed listener is in `listeners`: [`object_key`] of its address -> its
    /// position (as the entry's slot), with a shadow for unlocked reads.
    index: Members<E, V>,
    len: usize,
}

impl<S, E, V> AcceptTable<S, E, V>
where
    S: core::ops::DerefMut<Target = [Listener]>,
    E: core::ops::DerefMut<Target = [Entry]>,
    V: core::ops::Deref<Target = [AtomicU64]>,
{
    /// Take `listeners` (cleared): at most that many listeners can be managed at once; and an
    /// empty `index` that can hold as many (`None` if it cannot, or if there are more than its
    /// entries can number).
    pub fn new(mut listeners: S, index: Members<E, V>) -> Option<Self> {
        if index.limit() < listeners.len() || listeners.len() > usize::from(u16::MAX) {
            return None;
        }
        for l in listeners.iter_mut() {
            *l = Listener::default();
        }
        Some(Self {
            listeners,
            index,
            len: 0,
        })
    }

    /// The index's shadow (`object_key` of a managed listener's address << 16 | position),
    /// for [`crate::unlocked::Unlocked::listener_managed`]; `None` if it has none.
    pub fn shadow(&self) -> Option<&[AtomicU64]> {
        self.index.shadow()
    }

    /// Whether the index and the listeners agree: each managed listener is indexed at its
    /// position, and nothing else is (tests).
    pub fn index_agrees(&self) -> bool {
        self.index.len() == self.len
            && self.listeners.iter().enumerate().all(|(i, l)| {
                l.key == 0
                    || self
                        .index
                        .get(object_key(l.key))
                        .is_some_and(|e| usize::from(e.slot) == i)
            })
    }

    /// Managed listeners.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position of the listener at `key`, if managed.
    fn position(&self, key: u64) -> Option<usize> {
        if key == 0 || self.len == 0 {
            return None;
        }
        let i = usize::from(self.index.get(object_key(key))?.slot);
        (self.listeners.get(i)?.key == key).then_some(i)
    }

    /// The listener at `key`, if managed.
    pub fn get(&mut self, key: u64) -> Option<&mut Listener> {
        let i = self.position(key)?;
        self.listeners.get_mut(i)
    }

    /// The listener at `key`, managed from now on; `None` if the table is full. `seq` is the
    /// index shadow's sequence count (see the module comment).
    pub fn manage(&mut self, key: u64, seq: &SeqCount) -> Option<&mut Listener> {
        if key == 0 {
            return None;
        }
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                // Once per listener: a scan for a free position is fine here.
                let i = self.listeners.iter().position(|l| l.key == 0)?;
                let k = object_key(key);
                seq.write_begin();
                let indexed = self.index.entry(k).is_ok() && self.index.set_slot(k, i as u16);
                seq.write_end();
                if !indexed {
                    return None;
                }
                self.listeners[i] = Listener {
                    key,
                    ..Listener::default()
                };
                self.len += 1;
                i
            }
        };
        self.listeners.get_mut(i)
    }

    /// The listener at `key` was closed. `seq` as for [`manage`](Self::manage).
    pub fn forget(&mut self, key: u64, seq: &SeqCount) {
        if let Some(i) = self.position(key) {
            seq.write_begin();
            self.index.remove(object_key(key));
            seq.write_end();
            self.listeners[i] = Listener::default();
            self.len -= 1;
        }
    }

    /// VS slot `slot` was destroyed: no listener remembers it.
    pub fn forget_requester(&mut self, slot: usize) {
        for l in self.listeners.iter_mut().filter(|l| l.key != 0) {
            l.forget(slot);
        }
    }
}
