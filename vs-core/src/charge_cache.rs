// SPDX-License-Identifier: GPL-2.0
//! Per-CPU CPU-time charges, added without a lock and folded into the VS counters later.
//!
//! The scheduler reports a task's runtime on every context switch and tick, under that CPU's
//! runqueue lock. Taking the state lock there would serialise every CPU of the machine on one
//! spinlock; instead each CPU adds the time to a small open-addressed table of its own, and
//! the time is charged to the task's VS under the state lock when it matters:
//! - before the task changes VS (so time run before a move is the old VS's: a daemon that a
//!   gate moves per request is charged to each requester for exactly its part);
//! - when the task exits (so a reused pid does not inherit it);
//! - at every CPU controller tick and before counters are read (so nothing is older than one
//!   tick).
//!
//! Layout: [`SLOTS_PER_CPU`] slots per CPU, each one `AtomicU64` packing the pid (high [`PID_BITS`])
//! and the nanoseconds not yet charged (low [`NS_BITS`]); 0 is an empty slot. Only the CPU
//! that owns a slot fills it (the scheduler path runs with preemption off), with a CAS so that
//! a fold from another CPU (a `swap(0)`) never loses or duplicates time. When a task's slots
//! are all taken, or its pid does not fit, [`add`] says so and the caller charges under the
//! lock, as before: correct, only slower.
//!
//! Ordering: `Relaxed` everywhere. The counters are sums; nothing else is published through
//! these words.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Slots per CPU (a power of two): the distinct tasks a CPU runs within one controller period
/// before further ones fall back to the lock.
pub const SLOTS_PER_CPU: usize = 64;
/// Slots a pid may occupy, starting at its hash: bounds the work of [`add`] and [`take`].
const PROBE: usize = 4;
/// Linux pids are below `PID_MAX_LIMIT` (4 Mi on 64-bit): 22 bits.
pub const PID_BITS: u32 = 22;
pub const NS_BITS: u32 = 64 - PID_BITS;
const NS_MASK: u64 = (1 << NS_BITS) - 1;

fn pack(pid: u64, ns: u64) -> u64 {
    pid << NS_BITS | ns
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> NS_BITS, v & NS_MASK)
}

/// Whether `pid` fits a slot (pid 0 is the idle task, never charged here).
fn cacheable(pid: u64) -> bool {
    pid != 0 && pid >> PID_BITS == 0
}

/// Empty `slot`, calling `f(pid, ns)` for the charge it held.
fn empty(slot: &AtomicU64, f: &mut impl FnMut(u64, u64)) {
    let (pid, ns) = unpack(slot.swap(0, Relaxed));
    if ns != 0 {
        f(pid, ns);
    }
}

/// The first slot `pid` may use within a CPU's slots.
fn home(pid: u64) -> usize {
    // Fibonacci hashing: consecutive pids (forked in a row) spread over the table.
    (pid.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % SLOTS_PER_CPU
}

/// The slots of `cpu`, if `slots` has them.
fn of_cpu(slots: &[AtomicU64], cpu: usize) -> Option<&[AtomicU64]> {
    let start = cpu.checked_mul(SLOTS_PER_CPU)?;
    slots.get(start..start.checked_add(SLOTS_PER_CPU)?)
}

/// Add `ns` of runtime of task `pid` on `cpu` (the calling CPU, preemption off). `false`: not
/// recorded (no room, pid or total too large, no slots for `cpu`); charge it under the lock.
pub fn add(slots: &[AtomicU64], cpu: usize, pid: u64, ns: u64) -> bool {
    if ns == 0 {
        return true;
    }
    if !cacheable(pid) || ns > NS_MASK {
        return false;
    }
    let Some(mine) = of_cpu(slots, cpu) else {
        return false;
    };
    let h = home(pid);
    for k in 0..PROBE {
        let slot = &mine[(h + k) % SLOTS_PER_CPU];
        let mut cur = slot.load(Relaxed);
        loop {
            let (p, sum) = unpack(cur);
            let new = if cur == 0 {
                pack(pid, ns)
            } else if p == pid && sum + ns <= NS_MASK {
                cur + ns
            } else {
                break;
            };
            // Fails only when a fold emptied the slot meanwhile: look again.
            match slot.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }
    false
}

/// Take every CPU's pending time of `pid` out of the cache, calling `f(pid, ns)` for each.
///
/// Folds ([`take`], [`drain`]) under one lock: a slot holding `pid` keeps it until this swap,
/// because only a fold empties a slot and the owner refills only empty ones. A `take` that
/// runs beside a locked fold (the kernel's exit of an unclassified task does) can find the
/// slot emptied and refilled for another task between its load and its swap: `f` gets the
/// pid the swap returned, so such time is charged to the task it belongs to, never lost.
pub fn take(slots: &[AtomicU64], pid: u64, mut f: impl FnMut(u64, u64)) {
    if !cacheable(pid) {
        return;
    }
    let h = home(pid);
    for mine in slots.chunks_exact(SLOTS_PER_CPU) {
        for k in 0..PROBE {
            let slot = &mine[(h + k) % SLOTS_PER_CPU];
            let cur = slot.load(Relaxed);
            if cur != 0 && unpack(cur).0 == pid {
                // The owner may have added since the load: the swap takes that too.
                empty(slot, &mut f);
            }
        }
    }
}

/// Empty every slot, calling `f(pid, ns)` for each pending charge (serialised with [`take`]).
pub fn drain(slots: &[AtomicU64], mut f: impl FnMut(u64, u64)) {
    for slot in slots {
        if slot.load(Relaxed) != 0 {
            empty(slot, &mut f);
        }
    }
}
