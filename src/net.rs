// SPDX-License-Identifier: GPL-2.0
//! The network half: what the transmit path and the accept path read without the state lock,
//! the per-VS network counters, and the Rust entry points of `src/vs_net.c` (the `vsq` qdisc
//! and the accept-queue probes).
//!
//! **Published view.** The qdisc runs on every CPU's transmit path, so it must not take the
//! state lock. After every change to the VS tree (create, destroy, set) the ioctl that made it
//! republishes, under the state lock, what packets and accepts need: a hash map from VSID to
//! registry slot, each slot's net pool and the pools' and VSs' weights. Readers use a sequence
//! counter (retry while a republish is in progress; a reader that cannot get a stable view
//! within a few tries takes the root), so they never block and never see a torn entry: every
//! word is an atomic.
//!
//! **Counters.** `tx_*`, `accepts`, `accepts_refused` per slot, atomics added to lock-free. A
//! slot's generation changes when its VS is created or destroyed; a packet remembers the
//! generation it was queued under and is not counted to a different VS that reuses the slot.
//!
//! Lock order: a listener's `rskq_lock` (taken by the C glue) may be held when the accept
//! entry points take the state lock; the state lock stays innermost.

use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;

use crate::abi::{VsStats, VS_ATTR_CPU, VS_ATTR_NET, VS_EV_ACCEPT, VS_MAX};
use crate::accept;
use crate::classify::Vs;
use crate::drr::{Drr, DrrClass};
use crate::share::{self, PoolScratch};
use crate::state::{self, KStore, HINTS};

const SLOTS: usize = VS_MAX as usize;
/// Open-addressing map VSID -> slot: twice the VSs, so probes stay short.
const MAP: usize = 2 * SLOTS;
/// A reader gives up on a stable view after this many tries and takes the root.
const READ_TRIES: u32 = 8;

struct Published {
    seq: AtomicU32,
    /// VSID + 1 (0: empty) and the slot it is in.
    keys: [AtomicU32; MAP],
    vals: [AtomicU32; MAP],
    /// Per slot: its net pool, and the machine fractions (ppm) of its net and CPU pools.
    net_pool: [AtomicU32; SLOTS],
    net_ppm: [AtomicU32; SLOTS],
    cpu_ppm: [AtomicU32; SLOTS],
}

struct Counters {
    gen: [AtomicU32; SLOTS],
    tx_packets: [AtomicU64; SLOTS],
    tx_bytes: [AtomicU64; SLOTS],
    tx_drops: [AtomicU64; SLOTS],
    accepts: [AtomicU64; SLOTS],
    accepts_refused: [AtomicU64; SLOTS],
}

static PUB: Published = Published {
    seq: AtomicU32::new(0),
    keys: [const { AtomicU32::new(0) }; MAP],
    vals: [const { AtomicU32::new(0) }; MAP],
    net_pool: [const { AtomicU32::new(0) }; SLOTS],
    net_ppm: [const { AtomicU32::new(1_000_000) }; SLOTS],
    cpu_ppm: [const { AtomicU32::new(1_000_000) }; SLOTS],
};

static COUNT: Counters = Counters {
    gen: [const { AtomicU32::new(0) }; SLOTS],
    tx_packets: [const { AtomicU64::new(0) }; SLOTS],
    tx_bytes: [const { AtomicU64::new(0) }; SLOTS],
    tx_drops: [const { AtomicU64::new(0) }; SLOTS],
    accepts: [const { AtomicU64::new(0) }; SLOTS],
    accepts_refused: [const { AtomicU64::new(0) }; SLOTS],
};

/// Accepts on a listener that could not be managed because the table was full (the
/// `accept_unmanaged` parameter).
pub(crate) static ACCEPT_UNMANAGED: AtomicU64 = AtomicU64::new(0);
/// Managed listeners: while 0, the listener probes return at once.
pub(crate) static LISTENERS: AtomicUsize = AtomicUsize::new(0);

fn hash(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9) >> 19) as usize % MAP
}

/// Republish the view of `vs` (state lock held: one writer at a time). O(slots × depth), with
/// `scratch` as long as the registry's capacity.
pub(crate) fn publish(vs: &Vs<KStore>, scratch: &mut [PoolScratch]) {
    let p = &PUB;
    let s = p.seq.load(Ordering::Relaxed);
    p.seq.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    for k in p.keys.iter() {
        k.store(0, Ordering::Relaxed);
    }
    for slot in 0..vs.reg.high().min(SLOTS) {
        let Some(n) = vs.reg.node(slot) else { continue };
        let key = n.id.wrapping_add(1);
        let mut i = hash(key);
        // The map has twice as many entries as VSs: a free one is always found.
        for _ in 0..MAP {
            if p.keys[i].load(Ordering::Relaxed) == 0 {
                p.vals[i].store(slot as u32, Ordering::Relaxed);
                p.keys[i].store(key, Ordering::Relaxed);
                break;
            }
            i = (i + 1) % MAP;
        }
    }
    share::pool_own_ppm_all(&vs.reg, VS_ATTR_NET as usize, scratch, |slot, pool, ppm| {
        if slot < SLOTS {
            p.net_pool[slot].store(pool as u32, Ordering::Relaxed);
            p.net_ppm[slot].store(ppm, Ordering::Relaxed);
        }
    });
    share::pool_own_ppm_all(&vs.reg, VS_ATTR_CPU as usize, scratch, |slot, _, ppm| {
        if slot < SLOTS {
            p.cpu_ppm[slot].store(ppm, Ordering::Relaxed);
        }
    });
    p.seq.store(s.wrapping_add(2), Ordering::Release);
}

/// Read a consistent value from the published view, or `None` if none could be had.
fn read<R>(f: impl Fn(&Published) -> R) -> Option<R> {
    for _ in 0..READ_TRIES {
        let s = PUB.seq.load(Ordering::Acquire);
        if s & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        let r = f(&PUB);
        fence(Ordering::Acquire);
        if PUB.seq.load(Ordering::Relaxed) == s {
            return Some(r);
        }
    }
    None
}

/// The slot of VS `vsid` (a socket's tag), without the state lock; 0 (root) if unknown.
pub(crate) fn slot_of_tag(vsid: u32) -> usize {
    if vsid == 0 {
        return 0;
    }
    let key = vsid.wrapping_add(1);
    read(|p| {
        let mut i = hash(key);
        for _ in 0..MAP {
            match p.keys[i].load(Ordering::Relaxed) {
                0 => return 0,
                k if k == key => return p.vals[i].load(Ordering::Relaxed) as usize % SLOTS,
                _ => i = (i + 1) % MAP,
            }
        }
        0
    })
    .unwrap_or(0)
}

/// A VS was created in, or destroyed from, `slot`: its network counters start again, and
/// packets queued under the old VS are no longer counted to the slot.
pub(crate) fn reset_slot(slot: usize) {
    let c = &COUNT;
    if slot >= SLOTS {
        return;
    }
    c.gen[slot].fetch_add(1, Ordering::AcqRel);
    for a in [
        &c.tx_packets[slot],
        &c.tx_bytes[slot],
        &c.tx_drops[slot],
        &c.accepts[slot],
        &c.accepts_refused[slot],
    ] {
        a.store(0, Ordering::Relaxed);
    }
}

/// Add the lock-free network counters of `slot` to `stats`.
pub(crate) fn add_counters(slot: usize, stats: &mut VsStats) {
    let c = &COUNT;
    if slot >= SLOTS {
        return;
    }
    stats.tx_packets += c.tx_packets[slot].load(Ordering::Relaxed);
    stats.tx_bytes += c.tx_bytes[slot].load(Ordering::Relaxed);
    stats.tx_drops += c.tx_drops[slot].load(Ordering::Relaxed);
    stats.accepts += c.accepts[slot].load(Ordering::Relaxed);
    stats.accepts_refused += c.accepts_refused[slot].load(Ordering::Relaxed);
}

/// Module unload: the next load starts from zero.
pub(crate) fn teardown() {
    for slot in 0..SLOTS {
        reset_slot(slot);
    }
    LISTENERS.store(0, Ordering::Release);
}

// --- the accept path (src/vs_net.c) ---

/// The registry slot of a requester tag (a VSID, 0 for none), for the accept-queue scan.
#[no_mangle]
extern "C" fn vs_rust_slot_of_tag(vsid: u32) -> u16 {
    slot_of_tag(vsid) as u16
}

/// `accept()` by task `pid`: whether its listener's queue may be served by share, which is the
/// case when an accept rule applies to the acceptor's VS. Without the lock: most acceptors are
/// in a VS no accept rule names (a web server's workers); [`vs_rust_accept_pick`] checks again
/// under it.
#[no_mangle]
extern "C" fn vs_rust_accept_may_manage(pid: i32) -> bool {
    if HINTS.rule_events.load(Ordering::Acquire) & (1 << VS_EV_ACCEPT) == 0 {
        return false;
    }
    let key = u64::try_from(pid).unwrap_or(0);
    state::unlocked().rule_may_apply(key, VS_EV_ACCEPT) != Some(false)
}

fn cpu_weight(slot: usize) -> u32 {
    PUB.cpu_ppm
        .get(slot)
        .map_or(accept::MIN_WEIGHT_PPM, |w| w.load(Ordering::Relaxed))
}

/// `accept()` on `listener` by task `pid`, whose queue holds connections of the requester
/// slots at `slots` (`n` of them, in queue order): if an accept rule applies to the acceptor's
/// VS, manage the listener (from now on, until it closes) and return the index of the
/// connection to hand out next; -1 to leave the queue as it is. One locked section for both.
///
/// # Safety
///
/// `slots` points to `n` readable `u16`s for the duration of the call (or `n` is 0).
#[no_mangle]
unsafe extern "C" fn vs_rust_accept_pick(
    pid: i32,
    listener: usize,
    slots: *const u16,
    n: u32,
) -> i32 {
    let queued = if slots.is_null() || n == 0 {
        &[][..]
    } else {
        // SAFETY: the caller guarantees `n` readable elements at `slots`.
        unsafe { core::slice::from_raw_parts(slots, n as usize) }
    };
    let key = u64::try_from(pid).unwrap_or(0);
    state::with(|s| {
        // A listener that stopped listening (see `vs_rust_accept_forget`) is not managed.
        if !s.vs.rule_may_apply(key, VS_EV_ACCEPT) || !crate::glue::listening(listener) {
            return Ok(-1);
        }
        let Some(l) = s.accept.manage(listener as u64, &state::LISTENERS_SEQ) else {
            ACCEPT_UNMANAGED.fetch_add(1, Ordering::Relaxed);
            return Ok(-1);
        };
        if queued.is_empty() {
            // Emptied since the caller looked: nothing to order, and nobody left the queue.
            return Ok(-1);
        }
        Ok(l.pick(queued, cpu_weight).map_or(-1, |i| i as i32))
    })
    .unwrap_or(-1)
}

/// Whether `listener` is managed (the admission check applies to it). Asked for every SYN
/// and handshake-completing ACK of every IPv4 listener while one is managed: answered from
/// the index's shadow, and under the lock only when a listener was managed or forgotten
/// during the read.
#[no_mangle]
extern "C" fn vs_rust_accept_managed(listener: usize) -> bool {
    if LISTENERS.load(Ordering::Acquire) == 0 {
        return false;
    }
    state::unlocked()
        .listener_managed(listener as u64)
        .unwrap_or_else(|| {
            state::with(|s| Ok(s.accept.get(listener as u64).is_some())).unwrap_or(false)
        })
}

/// May requester `slot`, which holds `held` of the connections queued on a managed listener
/// with room for `backlog`, queue one more? Counts the refusal.
#[no_mangle]
extern "C" fn vs_rust_accept_admit(slot: u32, held: u32, backlog: u32) -> bool {
    let slot = slot as usize % SLOTS;
    let ok = accept::admit(held, backlog, cpu_weight(slot));
    if !ok {
        COUNT.accepts_refused[slot].fetch_add(1, Ordering::Relaxed);
    }
    ok
}

/// A connection from requester `slot` was accepted (any listener).
#[no_mangle]
extern "C" fn vs_rust_count_accept(slot: u32) {
    if let Some(c) = COUNT.accepts.get(slot as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `accept_listeners` parameter: listeners managed now.
#[no_mangle]
extern "C" fn vs_rust_accept_listeners() -> usize {
    LISTENERS.load(Ordering::Relaxed)
}

/// The `accept_unmanaged` parameter.
#[no_mangle]
extern "C" fn vs_rust_accept_unmanaged() -> u64 {
    ACCEPT_UNMANAGED.load(Ordering::Relaxed)
}

/// `listener` is closing: it is no longer managed. Under the lock, which orders it with the
/// check in [`vs_rust_accept_pick`]: the listener's state is no longer `TCP_LISTEN` when this
/// runs, so an `accept()` that raced with it in another thread (the accept hook runs before
/// the socket lock) either managed the listener before, and this forgets it, or finds it
/// closed and does not. So it takes the lock even when no listener is managed (a pick may be
/// about to manage this one): closing a listener is rare.
#[no_mangle]
extern "C" fn vs_rust_accept_forget(listener: usize) {
    let _ = state::with(|s| {
        s.accept.forget(listener as u64, &state::LISTENERS_SEQ);
        Ok(())
    });
}

// --- the vsq qdisc (src/vs_net.c) ---

/// What the qdisc needs to know of a packet's VS. Shared with C (`struct vs_vsq_class`).
#[repr(C)]
pub(crate) struct VsqClass {
    /// The VS's slot and its generation (for counting), the net pool (the DRR class) and the
    /// pool's machine fraction, ppm (its quantum's scale).
    slot: u32,
    gen: u32,
    pool: u32,
    pool_ppm: u32,
}

/// Classify a packet by its tag (`vsid`: the socket's, else the packet's mark; 0 if none) and
/// its DSCP (`dscp`: a global VSID when 1..63, 0 if none). Lock-free.
///
/// # Safety
///
/// `out` is valid for writes.
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_classify(vsid: u32, dscp: u32, out: *mut VsqClass) {
    let mut slot = slot_of_tag(vsid);
    if slot == 0 && (1..=63).contains(&dscp) {
        slot = slot_of_tag(dscp);
    }
    let (pool, ppm) = read(|p| {
        let pool = p.net_pool[slot].load(Ordering::Relaxed) as usize % SLOTS;
        (pool, p.net_ppm[slot].load(Ordering::Relaxed))
    })
    .unwrap_or((0, 1_000_000));
    let c = VsqClass {
        slot: slot as u32,
        gen: COUNT.gen[slot].load(Ordering::Acquire),
        pool: pool as u32,
        pool_ppm: ppm,
    };
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is valid for writes.
        unsafe { out.write(c) };
    }
}

/// Count a packet of VS `slot` (queued under generation `gen`) as sent or dropped.
#[no_mangle]
extern "C" fn vs_rust_vsq_count(slot: u32, gen: u32, bytes: u32, dropped: bool) {
    let slot = slot as usize;
    let c = &COUNT;
    if slot >= SLOTS || c.gen[slot].load(Ordering::Acquire) != gen {
        return;
    }
    if dropped {
        c.tx_drops[slot].fetch_add(1, Ordering::Relaxed);
    } else {
        c.tx_packets[slot].fetch_add(1, Ordering::Relaxed);
        c.tx_bytes[slot].fetch_add(u64::from(bytes), Ordering::Relaxed);
    }
}

/// The DRR state of one vsq instance: one class per registry slot (net pool).
pub(crate) type VsqDrr = Drr<KVVec<DrrClass>>;

/// A new vsq instance's scheduler (qdisc init: process context); null if out of memory.
#[no_mangle]
extern "C" fn vs_rust_vsq_new() -> *mut VsqDrr {
    let Ok(classes) = KVVec::from_elem(DrrClass::default(), SLOTS, GFP_KERNEL) else {
        return core::ptr::null_mut();
    };
    match KBox::new(Drr::new(classes), GFP_KERNEL) {
        Ok(b) => KBox::into_raw(b),
        Err(_) => core::ptr::null_mut(),
    }
}

/// Free a scheduler made by [`vs_rust_vsq_new`].
///
/// # Safety
///
/// `drr` came from `vs_rust_vsq_new` and is not used after this.
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_free(drr: *mut VsqDrr) {
    if !drr.is_null() {
        // SAFETY: per the contract, `drr` is an owned KBox pointer.
        drop(unsafe { KBox::from_raw(drr) });
    }
}

extern "C" {
    /// Length of the head packet of pool `pool`'s queue in vsq instance `q`, -1 if empty.
    fn vs_vsq_head_len(q: *mut core::ffi::c_void, pool: u32) -> i64;
}

/// A packet was queued on `pool`, whose quantum is `quantum` bytes.
///
/// # Safety
///
/// `drr` is a live scheduler; the qdisc lock is held (as for every call below).
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_enqueued(drr: *mut VsqDrr, pool: u32, quantum: u32) {
    // SAFETY: per the contract, `drr` is live and its qdisc lock serialises us.
    if let Some(d) = unsafe { drr.as_mut() } {
        d.enqueued(pool as usize, quantum);
    }
}

/// The pool whose head packet goes next (charged for it), or -1 if nothing is queued.
///
/// # Safety
///
/// As for [`vs_rust_vsq_enqueued`]; `q` is the qdisc's private data, passed back to
/// `vs_vsq_head_len`.
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_pick(drr: *mut VsqDrr, q: *mut core::ffi::c_void) -> i32 {
    // SAFETY: per the contract.
    let Some(d) = (unsafe { drr.as_mut() }) else {
        return -1;
    };
    d.pick(|pool| {
        // SAFETY: `q` is the live private data of the qdisc whose lock is held.
        let len = unsafe { vs_vsq_head_len(q, pool as u32) };
        u32::try_from(len).ok()
    })
    .map_or(-1, |p| p as i32)
}

/// The packet picked from `pool` was dequeued; `empty`: the pool's queue is now empty.
///
/// # Safety
///
/// As for [`vs_rust_vsq_enqueued`].
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_dequeued(drr: *mut VsqDrr, pool: u32, empty: bool) {
    // SAFETY: per the contract.
    if let Some(d) = unsafe { drr.as_mut() } {
        d.dequeued(pool as usize, empty);
    }
}

/// Every queue of the instance was purged.
///
/// # Safety
///
/// As for [`vs_rust_vsq_enqueued`].
#[no_mangle]
unsafe extern "C" fn vs_rust_vsq_reset(drr: *mut VsqDrr) {
    // SAFETY: per the contract.
    if let Some(d) = unsafe { drr.as_mut() } {
        d.reset();
    }
}
