// SPDX-License-Identifier: GPL-2.0
//! The module's global state and its lock.
//!
//! There is one [`State`] per loaded module, published by [`init`] and freed when the
//! [`Published`] guard it returns drops (at module exit). It is reached from ioctls, from the
//! CPU controller's work item and from probe handlers that cannot sleep, so it lives behind
//! the irq-safe spinlock of the C glue, and nothing done under it may sleep or allocate:
//! every table is allocated once, before the state is published. The packet path (`vsq`)
//! does not take it: it reads the view `net.rs` publishes.
//!
//! Lock order: the state lock is the innermost lock of the module; nothing else is taken
//! while it is held (it is taken under the scheduler's runqueue lock by the runtime probe,
//! only when that CPU's charge slots are full (`charge_cache`), and under a listener's queue
//! lock by the accept paths).
//!
//! Every locked section is also a write section of [`SEQ`], the sequence count that
//! validates the gates' unlocked reads of the member shadow and the gate view (`unlocked.rs`):
//! those tables are written only under the lock, and a read that overlapped a locked section
//! is thrown away. The seqcount is not a lock: nothing waits on it.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;

use crate::abi::{VsStats, VS_MAX, VS_MAX_MEMBERS, VS_MAX_RULES};
use crate::accept::{AcceptTable, Listener};
use crate::classify::{Store, Tables, Vs};
use crate::seq::SeqCount;
use crate::unlocked::Unlocked;
use crate::cpu_control::{NiceAction, TaskSample};
use crate::glue;
use crate::members::{Entry, Members};
use crate::rules::{Decision, IndexEntry, Rule};
use crate::share::{PoolCtl, PoolScratch, Scratch};
use crate::tree::Slot;

/// Classified tasks the module can track (7/8 of the table; a power of two as it requires).
const MEMBER_TABLE: usize = VS_MAX_MEMBERS as usize;
/// Blocks of the member table the CPU tick's scan can skip when empty (1,024 positions each).
const MEMBER_BLOCKS: usize = 64;
/// Entries of the rules' decision cache.
const DECISIONS: usize = 64;
/// Positions of the pipe and message tag table: 7/8 of them (28,672) can carry a tag, a
/// quarter of those per VS and 7 kept for each VS (`tags.rs`). 768 KiB with its shadow.
const OBJECT_TABLE: usize = 1 << 15;
/// Listening sockets whose accept queue can be served by share at once.
pub(crate) const ACCEPT_LISTENERS: usize = 256;
/// Positions of their index (`accept.rs`): a power of two whose 7/8 hold them all.
const ACCEPT_INDEX: usize = 512;

/// The kernel's storage for the pure logic: vmalloc'ed arrays, allocated once at load.
pub(crate) struct KStore;

impl Store for KStore {
    type Table<T> = VVec<T>;
}

/// Everything the state lock protects.
pub(crate) struct State {
    pub(crate) vs: Vs<KStore>,
    /// Listeners managed by share (see `accept.rs`).
    pub(crate) accept: AcceptTable<VVec<Listener>, VVec<Entry>, VVec<AtomicU64>>,
    /// Scratch space for republishing the network view (`net::publish`).
    pub(crate) net_scratch: VVec<PoolScratch>,
    /// The CPU tick's buffers, kept between ticks so that a tick neither allocates nor clears
    /// one entry per member (50,000 classified tasks: 1.2 MB a tick). The tick takes them out
    /// under the lock, uses them outside it and puts them back (`cpu.rs`); they only grow.
    pub(crate) tick_samples: KVVec<TaskSample>,
    pub(crate) tick_actions: KVVec<NiceAction>,
    /// The per-CPU root counters (`ROOT_COUNTS`).
    root_counts: VVec<AtomicU64>,
}

impl State {
    /// Republish what the lock-free network paths read; after every change to the VS tree.
    pub(crate) fn publish(&mut self) {
        crate::net::publish(&self.vs, &mut self.net_scratch);
    }
}

struct Global(UnsafeCell<Option<State>>);

// SAFETY: the inner value is only accessed with the state lock held (see `with` and `publish`).
unsafe impl Sync for Global {}

static GLOBAL: Global = Global(UnsafeCell::new(None));

/// Lock-free hints for the gates' fast paths, republished under the lock after every
/// locked section. While nothing is classified and no rule concerns an event, a gate has
/// nothing to do and need not take the lock: this keeps the module's cost near zero for the
/// machine's unclassified work. Exit never takes the fast path (see `gates::vs_rust_on_exit`).
pub(crate) struct Hints {
    /// Classified tasks (membership entries).
    pub(crate) members: AtomicUsize,
    /// Tagged pipes and messages.
    pub(crate) objects: AtomicUsize,
    /// Bit `1 << event` for each event with a rule.
    pub(crate) rule_events: AtomicU32,
    /// Counters of the root VS kept by fast paths when the per-CPU ones are not there
    /// (indexed by [`RootCount`]; see [`root_add`]).
    pub(crate) root: [AtomicU64; 3],
}

pub(crate) static HINTS: Hints = Hints {
    members: AtomicUsize::new(0),
    objects: AtomicUsize::new(0),
    rule_events: AtomicU32::new(0),
    root: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
};

impl Hints {
    /// No task is classified (every task is in the root).
    pub(crate) fn no_members(&self) -> bool {
        self.members.load(Ordering::Acquire) == 0
    }

    /// No pipe or message carries a tag.
    pub(crate) fn no_objects(&self) -> bool {
        self.objects.load(Ordering::Acquire) == 0
    }

    /// Whether a gate for `event` can skip: nothing classified, no rule for the event.
    pub(crate) fn idle(&self, event: u32) -> bool {
        self.no_members() && self.rule_events.load(Ordering::Acquire) & bit(event) == 0
    }
}

/// An event's bit in the masks (none for a number out of range).
fn bit(event: u32) -> u32 {
    1u32.checked_shl(event).unwrap_or(0)
}

/// What the paths without the lock read: the state's own heap buffers of atomics (they do not
/// move with the state), gathered in one block so that a probe reaches every table with one
/// load of [`SHARED`]. Published at load after the tables were filled, withdrawn at unload
/// after the probes that read it are gone (so no reader remains when it is freed).
pub(crate) struct Shared {
    /// The gates' unlocked reader: member shadow, gate view, object shadow, stay caches,
    /// managed listeners.
    unlocked: Unlocked<'static>,
    /// The per-CPU charge slots (`charge_cache`), for the scheduler path.
    charges: &'static [AtomicU64],
    /// What the unlocked paths count for the root VS, per CPU: [`ROOT_WORDS`] words a CPU
    /// (one cache line), so that an unclassified task's fork, exec, exit and CPU time add to
    /// a line of their own CPU's, not to one every CPU writes.
    root_counts: &'static [AtomicU64],
}

const ROOT_WORDS: usize = 8;

/// The published [`Shared`] (null while the module is not initialised).
static SHARED: AtomicPtr<Shared> = AtomicPtr::new(core::ptr::null_mut());

/// What the lock-free paths see while nothing is published: empty tables.
static EMPTY: Shared = Shared {
    unlocked: Unlocked {
        seq: &SEQ,
        members: &[],
        view: &[],
        objects: &[],
        stays: &[],
        listeners: &[],
        listeners_seq: &LISTENERS_SEQ,
    },
    charges: &[],
    root_counts: &[],
};

/// Every locked section is a write section of this count (see `with`), so an unlocked read
/// that overlapped one is thrown away.
static SEQ: SeqCount = SeqCount::new();

/// The sequence count of the managed listeners' index (`accept.rs`): bumped only when a
/// listener is managed or forgotten (under the state lock), so that the admission check's
/// reads, one per SYN, are not thrown away by every other locked section.
pub(crate) static LISTENERS_SEQ: SeqCount = SeqCount::new();

/// The published tables, or empty ones.
#[inline(always)]
fn shared() -> &'static Shared {
    let p = SHARED.load(Ordering::Acquire);
    if p.is_null() {
        return &EMPTY;
    }
    // SAFETY: a non-null `SHARED` points to the `Shared` that `allocate` boxed and published,
    // whose slices point into the published state's heap buffers; `Published::drop` nulls it
    // before freeing either, and runs after every probe that calls this is unregistered and
    // finished. The tables are atomics: shared access from any CPU is sound.
    unsafe { &*p }
}

/// The per-CPU charge slots; empty while the module is not initialised.
#[inline(always)]
pub(crate) fn charge_slots() -> &'static [AtomicU64] {
    shared().charges
}

/// A counter of the root VS that the unlocked paths keep.
#[derive(Clone, Copy)]
pub(crate) enum RootCount {
    CpuNs = 0,
    Forks = 1,
    Execs = 2,
}

/// Add `n` to the root's counter `c` on CPU `cpu` (the caller's, from a probe).
pub(crate) fn root_add(c: RootCount, cpu: usize, n: u64) {
    let word = cpu
        .checked_mul(ROOT_WORDS)
        .and_then(|i| shared().root_counts.get(i + c as usize));
    match word {
        Some(w) => w.fetch_add(n, Ordering::Relaxed),
        // Not loaded, or a CPU id past the table: the shared fallback.
        None => HINTS.root[c as usize].fetch_add(n, Ordering::Relaxed),
    };
}

/// The root's counter `c`: every CPU's part and the fallback's.
pub(crate) fn root_total(c: RootCount) -> u64 {
    let per_cpu = shared().root_counts.chunks(ROOT_WORDS);
    per_cpu
        .filter_map(|w| w.get(c as usize))
        .fold(HINTS.root[c as usize].load(Ordering::Relaxed), |sum, w| {
            sum.wrapping_add(w.load(Ordering::Relaxed))
        })
}

/// What the gates can read without the lock (see `unlocked.rs`).
#[inline(always)]
pub(crate) fn unlocked() -> &'static Unlocked<'static> {
    &shared().unlocked
}

/// Run `f` on the state with the lock held. `ENODEV` when the module is not initialised.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> Result<R>) -> Result<R> {
    let flags = glue::state_lock();
    SEQ.write_begin();
    // SAFETY: the state lock is held, so this is the only reference to the cell's contents.
    let ret = match unsafe { &mut *GLOBAL.0.get() } {
        Some(state) => {
            let ret = f(state);
            state.vs.publish_gate_view();
            // Written only when changed: every gate on every CPU reads these, and a store
            // would take their cache line from all of them.
            publish_hint(&HINTS.members, state.vs.members.len());
            publish_hint(&HINTS.objects, state.vs.objects.len());
            publish_mask(&HINTS.rule_events, state.vs.rules.event_mask());
            publish_hint(&crate::net::LISTENERS, state.accept.len());
            ret
        }
        None => Err(ENODEV),
    };
    SEQ.write_end();
    glue::state_unlock(flags);
    ret
}

/// Store `v` in a hint the gates read, unless it holds it already. While the state is
/// published only the state lock's holder writes hints, so the load cannot miss a store.
fn publish_hint(hint: &AtomicUsize, v: usize) {
    if hint.load(Ordering::Relaxed) != v {
        hint.store(v, Ordering::Release);
    }
}

/// [`publish_hint`] for the rule-event mask.
fn publish_mask(hint: &AtomicU32, v: u32) {
    if hint.load(Ordering::Relaxed) != v {
        hint.store(v, Ordering::Release);
    }
}

/// Replace the published state, returning the old one so that it is dropped (and its memory
/// freed) after the lock is released.
fn publish(new: Option<State>) -> Option<State> {
    let flags = glue::state_lock();
    SEQ.write_begin();
    // SAFETY: the state lock is held, so this is the only reference to the cell's contents.
    let old = core::mem::replace(unsafe { &mut *GLOBAL.0.get() }, new);
    SEQ.write_end();
    glue::state_unlock(flags);
    old
}

/// Allocation flags for memory whose failure the module reports itself (the load's tables:
/// one line from `init`; buffers sized by an ioctl's caller: ENOMEM), so the allocator adds
/// no stack trace to the log.
pub(crate) fn gfp_quiet() -> kernel::alloc::Flags {
    GFP_KERNEL | kernel::alloc::flags::__GFP_NOWARN
}

/// A table of `len` copies of `fill`, allocated once at load.
fn table<T: Clone>(fill: T, len: usize) -> Result<VVec<T>> {
    Ok(VVec::from_elem(fill, len, gfp_quiet())?)
}

/// Zeroed charge slots for every possible CPU.
fn charge_table() -> Result<VVec<AtomicU64>> {
    atomic_table(glue::nr_cpu_ids() * crate::charge_cache::SLOTS_PER_CPU)
}

/// `n` atomics, all 0 (they are not `Clone`, so not a `table`).
fn atomic_table(n: usize) -> Result<VVec<AtomicU64>> {
    let mut v = VVec::with_capacity(n, gfp_quiet())?;
    for _ in 0..n {
        // Capacity was reserved: this does not allocate.
        v.push(AtomicU64::new(0), gfp_quiet())?;
    }
    Ok(v)
}

/// The published state: freed when this drops.
pub(crate) struct Published(*mut Shared);

// SAFETY: the pointer is only used (freed) by `drop`, on whichever thread unloads the module.
unsafe impl Send for Published {}
// SAFETY: no method reads through the pointer; `&Published` gives access to nothing.
unsafe impl Sync for Published {}

/// Allocate and publish the state: the registry with its root VS, empty tables.
pub(crate) fn init() -> Result<Published> {
    allocate().inspect_err(|e| {
        if *e == ENOMEM {
            pr_err!("out of memory for the tables; not loaded\n");
        }
    })
}

fn allocate() -> Result<Published> {
    let vs = Vs::new(Tables::<KStore> {
        slots: table::<Slot>(None, VS_MAX as usize)?,
        members: table(Entry::default(), MEMBER_TABLE)?,
        member_shadow: atomic_table(MEMBER_TABLE)?,
        gate_view: atomic_table(VS_MAX as usize)?,
        member_blocks: atomic_table(MEMBER_BLOCKS)?,
        decisions: table(Decision::EMPTY, DECISIONS)?,
        objects: table(Entry::default(), OBJECT_TABLE)?,
        object_shadow: atomic_table(OBJECT_TABLE)?,
        rules: table(Rule::BLANK, VS_MAX_RULES as usize)?,
        index: table(IndexEntry::default(), VS_MAX_RULES as usize)?,
        stats: table(VsStats::default(), VS_MAX as usize)?,
        ctl: table(PoolCtl::default(), VS_MAX as usize)?,
        scratch: table(Scratch::default(), VS_MAX as usize)?,
        charges: charge_table()?,
        stays: atomic_table(glue::nr_cpu_ids() * crate::stay_cache::WORDS_PER_CPU)?,
    })
    .map_err(crate::error::to_errno)?;
    let mut state = State {
        vs,
        accept: AcceptTable::new(
            table(Listener::default(), ACCEPT_LISTENERS)?,
            Members::with_shadow(
                table(Entry::default(), ACCEPT_INDEX)?,
                Some(atomic_table(ACCEPT_INDEX)?),
                None,
            )
            .ok_or(EINVAL)?,
        )
        .ok_or(EINVAL)?,
        net_scratch: table(PoolScratch::default(), VS_MAX as usize)?,
        tick_samples: KVVec::new(),
        tick_actions: KVVec::new(),
        root_counts: atomic_table(glue::nr_cpu_ids() * ROOT_WORDS)?,
    };
    state.publish();
    // The tables' heap buffers do not move with the state: publish them once it is in place.
    let charges: *const [AtomicU64] = &*state.vs.charges;
    let shadow: *const [AtomicU64] = state.vs.members.shadow().unwrap_or(&[]);
    let view: *const [AtomicU64] = &*state.vs.gate_view;
    let objects: *const [AtomicU64] = state.vs.objects.shadow().unwrap_or(&[]);
    let stays: *const [AtomicU64] = &*state.vs.stays;
    let listeners: *const [AtomicU64] = state.accept.shadow().unwrap_or(&[]);
    let root: *const [AtomicU64] = &*state.root_counts;
    drop(publish(Some(state)));
    // SAFETY: the seven point into heap buffers of the state just published, which stay put
    // until `Published` drops (and withdraws them first); nothing frees them in between.
    let shared = unsafe {
        Shared {
            unlocked: Unlocked {
                seq: &SEQ,
                members: &*shadow,
                view: &*view,
                objects: &*objects,
                stays: &*stays,
                listeners: &*listeners,
                listeners_seq: &LISTENERS_SEQ,
            },
            charges: &*charges,
            root_counts: &*root,
        }
    };
    let shared = match KBox::new(shared, gfp_quiet()) {
        Ok(b) => b,
        Err(e) => {
            drop(publish(None));
            return Err(e.into());
        }
    };
    let shared = KBox::into_raw(shared);
    SHARED.store(shared, Ordering::Release);
    Ok(Published(shared))
}

impl Drop for Published {
    /// Unpublish and free the state. No ioctl, gate or tick can run any more: the guards of
    /// the device, the probes and the controller dropped first (see `VsModule`).
    fn drop(&mut self) {
        SHARED.store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: `self.0` came from `KBox::into_raw` in `allocate` and is freed only here;
        // nothing reads it any more (see `shared`).
        drop(unsafe { KBox::from_raw(self.0) });
        drop(publish(None));
        for h in [&HINTS.members, &HINTS.objects] {
            h.store(0, Ordering::Release);
        }
        HINTS.rule_events.store(0, Ordering::Release);
        for h in &HINTS.root {
            h.store(0, Ordering::Relaxed);
        }
        crate::net::teardown();
        pr_info!("unloaded\n");
    }
}
