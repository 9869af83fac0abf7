// SPDX-License-Identifier: GPL-2.0
//! Classification: what each gate does to task membership, counts and limits.
//!
//! [`Vs`] puts the VS tree, the membership table, the object-tag table and the rule table
//! together, and has one method per gate. The kernel calls these from its probes (under the
//! state lock) and the host tests drive them directly, so the accounting rules (a fork is
//! reserved then committed or released, exit frees everything, exec re-keys a thread that took
//! over its leader's pid) are checked without a kernel.
//!
//! A task that was never classified has no membership entry and is in the root VS. The CPU
//! controller's tick over the same state is in `cpu_control.rs`.

use crate::abi::{
    vs_event_has_req, VsAttrs, VsRule, VsStats, VS_EV_EXEC, VS_EV_FORK, VS_GLOBAL_MAX,
    VS_GLOBAL_MIN, VS_NAME_LEN, VS_ROOT,
};
use crate::charge_cache;
use crate::members::{Entry, Members, NICE_MANAGED, NICE_USER};
use crate::rules::{Decision, Exe, IndexEntry, Rule, RuleTable, Verdict};
use crate::share::{self, PoolCtl, Scratch};
use crate::stay_cache::{self, Counter, Key};
use crate::tree::{Error, Registry, Result, Slot};
use crate::unlocked::view_word;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The storage a [`Vs`] runs on: one kind of owned slice (kernel: `VVec`, host: `Vec`).
pub trait Store {
    type Table<T>: core::ops::DerefMut<Target = [T]>;
}

/// Every table a [`Vs`] runs on, allocated once by its user. Their lengths are the limits:
/// `slots` holds the most VSs, and the per-VS tables (`stats`, `ctl`, `scratch`) are at least
/// as long; `members` and `objects` are powers of two (see [`Members`]).
pub struct Tables<S: Store> {
    pub slots: S::Table<Slot>,
    /// Classified tasks.
    pub members: S::Table<Entry>,
    /// The members' shadow for unlocked reads (`members.rs`): as long as `members`, or empty
    /// (no shadow; the gates then always lock).
    pub member_shadow: S::Table<AtomicU64>,
    /// The gate view (`unlocked.rs`): one word per slot, or empty.
    pub gate_view: S::Table<AtomicU64>,
    /// Entry counts per block of member-table positions, for the CPU tick's scan (a power of
    /// two, at most `members`' length; or empty).
    pub member_blocks: S::Table<AtomicU64>,
    /// The rules' decision cache (a power of two; or empty: no cache).
    pub decisions: S::Table<Decision>,
    /// Tags on kernel objects (pipes, messages).
    pub objects: S::Table<Entry>,
    /// The object tags' shadow for unlocked reads: as long as `objects`, or empty.
    pub object_shadow: S::Table<AtomicU64>,
    pub rules: S::Table<Rule>,
    pub index: S::Table<IndexEntry>,
    pub stats: S::Table<VsStats>,
    pub ctl: S::Table<PoolCtl>,
    pub scratch: S::Table<Scratch>,
    /// Per-CPU runtime not yet charged: [`charge_cache::SLOTS_PER_CPU`] per possible CPU (or
    /// none: every charge then takes the lock).
    pub charges: S::Table<AtomicU64>,
    /// Per-CPU object-gate decisions that leave the reader where it is:
    /// [`stay_cache::WORDS_PER_CPU`] per possible CPU (or none: such reads take the lock).
    pub stays: S::Table<AtomicU64>,
}

/// Everything the gates need, behind one lock in the kernel.
pub struct Vs<S: Store> {
    pub reg: Registry<S::Table<Slot>>,
    pub members: Members<S::Table<Entry>, S::Table<AtomicU64>>,
    /// Tags on kernel objects (pipes, messages): address -> slot of the VS that wrote them.
    pub objects: Members<S::Table<Entry>, S::Table<AtomicU64>>,
    pub rules: RuleTable<S::Table<Rule>, S::Table<IndexEntry>, S::Table<Decision>>,
    /// Counters per registry slot; reset when a slot is (re)used.
    pub(crate) stats: S::Table<VsStats>,
    /// Slot + 1 of each global VSID (0: none), so a DSCP value maps to a VS in O(1).
    global: [u16; VS_GLOBAL_MAX as usize + 1],
    /// CPU controller state per slot, and its scratch space (see `cpu_control`).
    pub(crate) ctl: S::Table<PoolCtl>,
    pub(crate) scratch: S::Table<Scratch>,
    /// The tree generation `ctl[..].pool` was cached for (see `cpu_control`).
    pub(crate) pools_gen: u64,
    /// Read and filled without the lock by the scheduler path (see `charge_cache`); folded
    /// into `stats` under it.
    pub charges: S::Table<AtomicU64>,
    /// What the unlocked gates read besides the member shadow (see `unlocked.rs`), and the
    /// tree and rule generations its words were filled under.
    pub gate_view: S::Table<AtomicU64>,
    view_gen: (u64, u64),
    /// Read and counted without the lock by the object gates (see `stay_cache`); emptied with
    /// the gate view, their hits folded into the rules' (and refused tag writes into the VSs'
    /// `tags_refused`).
    pub stays: S::Table<AtomicU64>,
    /// Tag-table positions kept for VSs below their floor, and whether some CPU refuses a VS
    /// a tag for lack of room beyond them (see `tags.rs`).
    pub(crate) tag_reserve: usize,
    pub(crate) room_refused: bool,
}

/// The outcome of [`Vs::fork_check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkCheck {
    Allow,
    /// The target VS (or an ancestor) is at its process limit: the fork must fail.
    Deny,
}

impl<S: Store> Vs<S> {
    /// Assemble from `t`; `NoSpace` if a per-VS table is shorter than `t.slots`.
    pub fn new(t: Tables<S>) -> Result<Self> {
        let Tables {
            slots,
            members,
            member_shadow,
            gate_view,
            member_blocks,
            decisions,
            objects,
            object_shadow,
            rules,
            index,
            mut stats,
            mut ctl,
            scratch,
            charges,
            stays,
        } = t;
        let n = slots.len();
        if stats.len() < n || ctl.len() < n || scratch.len() < n {
            return Err(Error::NoSpace);
        }
        if !gate_view.is_empty() && gate_view.len() < n {
            return Err(Error::NoSpace);
        }
        for w in gate_view.iter() {
            w.store(0, Relaxed);
        }
        let shadow = (!member_shadow.is_empty()).then_some(member_shadow);
        let object_shadow = (!object_shadow.is_empty()).then_some(object_shadow);
        let blocks = (!member_blocks.is_empty()).then_some(member_blocks);
        if charges.len() % charge_cache::SLOTS_PER_CPU != 0 {
            return Err(Error::Invalid);
        }
        if stays.len() % stay_cache::WORDS_PER_CPU != 0 {
            return Err(Error::Invalid);
        }
        for c in charges.iter().chain(stays.iter()) {
            c.store(0, Relaxed);
        }
        for s in stats.iter_mut() {
            *s = VsStats::default();
        }
        for c in ctl.iter_mut() {
            *c = PoolCtl::default();
        }
        Ok(Self {
            reg: Registry::new(slots)?,
            members: Members::with_shadow(members, shadow, blocks).ok_or(Error::Invalid)?,
            objects: Members::with_shadow(objects, object_shadow, None).ok_or(Error::Invalid)?,
            rules: RuleTable::with_cache(rules, index, decisions),
            stats,
            global: [0; VS_GLOBAL_MAX as usize + 1],
            ctl,
            scratch,
            // Not a generation the registry has had: the first tick caches the pools.
            pools_gen: u64::MAX,
            charges,
            gate_view,
            view_gen: (0, 0),
            stays,
            tag_reserve: 0,
            room_refused: false,
        })
    }

    /// Create a VS (see [`Registry::create`]) with fresh counters.
    pub fn create(
        &mut self,
        name: &[u8; VS_NAME_LEN],
        parent: u32,
        id: u32,
        attrs: &VsAttrs,
    ) -> Result<u32> {
        let id = self.reg.create(name, parent, id, attrs)?;
        let slot = self.reg.find(id).ok_or(Error::NotFound)?;
        self.stats[slot] = VsStats::default();
        self.ctl[slot] = PoolCtl::default();
        self.tags_created();
        if (VS_GLOBAL_MIN..=VS_GLOBAL_MAX).contains(&id) {
            self.global[id as usize] = slot as u16 + 1;
        }
        Ok(id)
    }

    /// Destroy a VS: refused while a rule names it, besides [`Registry::destroy`]'s reasons.
    pub fn destroy(&mut self, id: u32) -> Result<()> {
        let slot = self.reg.find(id);
        if slot.is_some() && self.rules.references(id) {
            return Err(Error::Busy);
        }
        let held = slot.and_then(|slot| self.reg.node(slot)).map(|n| n.nr_tags);
        self.reg.destroy(id)?;
        if (VS_GLOBAL_MIN..=VS_GLOBAL_MAX).contains(&id) {
            self.global[id as usize] = 0;
        }
        let (Some(slot), Some(held)) = (slot, held) else {
            return Ok(());
        };
        // Pipe/message tags of the VS would now point at a dead (or reused) slot. One pass
        // over the table, and none for a VS without tags: this runs under the state lock.
        if held != 0 {
            let reg = &self.reg;
            self.objects
                .retain(|e| reg.node(usize::from(e.slot)).is_some());
        }
        self.tags_destroyed(slot, held);
        Ok(())
    }

    /// Add rules atomically (see [`RuleTable::add`]).
    pub fn add_rules(&mut self, batch: &[VsRule]) -> Result<u32> {
        let reg = &self.reg;
        self.rules.add(batch, |id| reg.find(id))
    }

    /// The counters of the VS in `slot`, with the live process count, the subtree's CPU
    /// time and the CPU controller's view of its pool.
    pub fn stats(&self, slot: usize) -> VsStats {
        let mut s = self.stats.get(slot).copied().unwrap_or_default();
        s.nr_procs = self.reg.node(slot).map_or(0, |n| u64::from(n.nr_members));
        // Descendants as of the last CPU tick (summing them here would cost O(VSs) per VS).
        s.cpu_subtree_ns = s.cpu_time_ns + self.ctl.get(slot).map_or(0, |c| c.below_ns);
        let pool = share::pool_of(&self.reg, slot);
        if let Some(c) = self.ctl.get(pool) {
            s.cpu_target_ppm = c.target_ppm;
            s.cpu_used_ppm = c.used_ppm;
            s.cpu_nice = if pool == 0 { 0 } else { i32::from(c.nice) };
        }
        s
    }

    /// Mutable counters of `slot`; `None` for an out-of-range slot.
    pub(crate) fn counters(&mut self, slot: usize) -> Option<&mut VsStats> {
        self.stats.get_mut(slot)
    }

    /// The slot of the VS task `pid` belongs to.
    pub fn slot_of(&self, pid: u64) -> usize {
        self.members.get(pid).map_or(0, |e| usize::from(e.slot))
    }

    /// The VSID task `pid` belongs to.
    pub fn id_of(&self, pid: u64) -> u32 {
        self.reg.node(self.slot_of(pid)).map_or(VS_ROOT, |n| n.id)
    }

    /// The slot of the VS with global id `id` (a DSCP value), if it exists.
    pub fn global_slot(&self, id: u32) -> Option<usize> {
        let s = *self.global.get(id as usize)?;
        (s != 0).then(|| usize::from(s) - 1)
    }

    /// The slot of VS `id` (global ids in O(1), others by scan).
    pub fn slot_of_id(&self, id: u32) -> Option<usize> {
        if id == VS_ROOT {
            return Some(0);
        }
        self.global_slot(id).or_else(|| self.reg.find(id))
    }

    /// Where the rules send a task in `cur` at `event`: `None` to stay.
    fn decide(
        &mut self,
        event: u32,
        cur: usize,
        req: Option<usize>,
        exe: Exe<'_>,
    ) -> Option<usize> {
        self.decide_by(event, cur, req, exe)?.1
    }

    /// The rule that decides for a task in `cur` at `event` (`None`: none matches), and where
    /// it sends the task (`None`: to stay).
    fn decide_by(
        &mut self,
        event: u32,
        cur: usize,
        req: Option<usize>,
        exe: Exe<'_>,
    ) -> Option<(u32, Option<usize>)> {
        let cur_id = self.reg.node(cur)?.id;
        // An event with a requester always has one for matching: an unknown requester is
        // unclassified work, which is the root's, so `req=root` rules match it (a `-> (req)`
        // verdict still leaves the task where it is: nobody to be charged to).
        let req_id = vs_event_has_req(event)
            .then(|| req.and_then(|s| self.reg.node(s)).map_or(VS_ROOT, |n| n.id));
        let (rule, verdict) = self
            .rules
            .classify(event, cur_id, req_id, exe.path, exe.file)?;
        let to = match verdict {
            Verdict::Slot(s) => Some(s),
            Verdict::Req => req,
            Verdict::Keep => None,
        };
        Some((rule, to))
    }

    /// Bind task `pid` to `to`, moving its counts; no limit check (gates cannot refuse).
    /// `Err(NoSpace)` when the membership table is full (the task stays where it was).
    fn move_task(&mut self, pid: u64, to: usize) -> Result<()> {
        let from = self.slot_of(pid);
        if from == to {
            return Ok(());
        }
        // What it ran before the move is the old VS's.
        self.fold_task(pid);
        if to != 0 {
            self.members.entry(pid).map_err(|_| Error::NoSpace)?;
            self.members.set_slot(pid, to as u16);
            self.reg.join(to)?;
        } else {
            self.members.set_slot(pid, 0);
        }
        // A task whose user reniced it is left alone only until it moves (README, "Nice
        // policy"): from here on its nice is its own again, recorded at the next tick.
        if let Some(e) = self.members.get_mut(pid) {
            if e.nice_flags & NICE_USER != 0 {
                e.nice_flags = 0;
            }
        }
        if from != 0 {
            self.reg.leave(from)?;
        }
        self.members.tidy(pid);
        if let Some(c) = self.counters(from) {
            c.reclass_out += 1;
        }
        if let Some(c) = self.counters(to) {
            c.reclass_in += 1;
        }
        Ok(())
    }

    /// Explicit binding (`vsctl addprocess`): unlike a gate, it respects process limits.
    pub fn add_process(&mut self, pid: u64, slot: usize) -> Result<()> {
        if self.reg.node(slot).is_none() {
            return Err(Error::NotFound);
        }
        if self.slot_of(pid) != slot && slot != 0 && !self.reg.has_room(slot) {
            return Err(Error::Again);
        }
        self.move_task(pid, slot)
    }

    /// The optional probe groups this configuration needs armed (see `arming`).
    pub fn armed_gates(&self) -> u32 {
        crate::arming::wanted(self.rules.event_mask(), self.reg.any_limit())
    }

    /// Give back a reservation `pid` holds, if any.
    fn drop_pending(&mut self, pid: u64) {
        let Some(e) = self.members.get_mut(pid) else {
            return;
        };
        let pending = e.pending;
        e.pending = 0;
        if pending != 0 {
            let _ = self.reg.unreserve(usize::from(pending) - 1);
        }
        self.members.tidy(pid);
    }

    /// Fork gate, before the fork (syscall entry): decide the child's VS and reserve room in
    /// it. A child headed for the root needs no reservation.
    pub fn fork_check(&mut self, pid: u64) -> ForkCheck {
        // One lookup of the task's entry for the common case (this runs on every fork while
        // some VS has a limit). A reservation left by a fork whose failure we did not see is
        // stale now; dropping it may remove the entry.
        let mut entry = self.members.get(pid).copied();
        if entry.is_some_and(|e| e.pending != 0) {
            self.drop_pending(pid);
            entry = self.members.get(pid).copied();
        }
        let cur = entry.map_or(0, |e| usize::from(e.slot));
        let target = self.decide(VS_EV_FORK, cur, None, Exe::NONE).unwrap_or(cur);
        if target == 0 {
            return ForkCheck::Allow;
        }
        // The child needs a membership entry (and this task one, if it has none), beside the
        // entries of forks already allowed: a child that found the table full would run
        // unclassified, outside its VS's limit and share. Refused like a fork at the limit.
        let need = 1 + usize::from(entry.is_none());
        let room = self.members.len() + self.reg.reserved() as usize + need <= self.members.limit();
        if !room || self.reg.reserve(target).is_err() {
            if let Some(c) = self.counters(target) {
                c.denied_forks += 1;
            }
            return ForkCheck::Deny;
        }
        match self.members.entry(pid) {
            Ok(e) => {
                e.pending = target as u16 + 1;
                ForkCheck::Allow
            }
            Err(_) => {
                // Cannot track the reservation: refuse rather than overshoot the limit.
                let _ = self.reg.unreserve(target);
                ForkCheck::Deny
            }
        }
    }

    /// The fork failed after [`fork_check`](Self::fork_check) allowed it.
    pub fn fork_failed(&mut self, pid: u64) {
        self.drop_pending(pid);
    }

    /// Fork gate, the child exists: bind it to the reserved VS, or decide now when the fork
    /// did not come through a checked syscall (kernel threads).
    ///
    /// The child may already be bound: the kernel links it into the task and thread lists
    /// (copy_process) before this tracepoint, so an explicit move (`addprocess` of its
    /// process, or `--tree` of an ancestor) can reach it first. That move stands, and is
    /// already counted: binding the child again would count it a second time in one VS while
    /// its entry names another (a VS counting a task it does not list), so the reservation,
    /// if any, is given back instead.
    pub fn on_fork(&mut self, parent: u64, child: u64) {
        let pending = self
            .members
            .get(parent)
            .map_or(0, |e| usize::from(e.pending));
        let placed = self.slot_of(child);
        let target = if pending != 0 {
            if let Some(e) = self.members.get_mut(parent) {
                e.pending = 0;
            }
            self.members.tidy(parent);
            let slot = pending - 1;
            if placed != 0 {
                let _ = self.reg.unreserve(slot);
                placed
            } else {
                match self.members.entry(child) {
                    Ok(_) => {
                        self.members.set_slot(child, slot as u16);
                        let _ = self.reg.commit(slot);
                    }
                    Err(_) => {
                        let _ = self.reg.unreserve(slot);
                    }
                }
                slot
            }
        } else if placed != 0 {
            placed
        } else {
            let cur = self.slot_of(parent);
            self.fill_view(cur);
            let target = self.decide(VS_EV_FORK, cur, None, Exe::NONE).unwrap_or(cur);
            if target != 0
                && self.members.entry(child).is_ok()
                && self.members.set_slot(child, target as u16)
            {
                let _ = self.reg.join(target);
            }
            target
        };
        self.inherit_nice(parent, child);
        if let Some(c) = self.counters(target) {
            c.forks += 1;
        }
    }

    /// A child of a task running at a vs-given nice starts at that nice: it records the nice
    /// it would have had without vs (its parent's own), so that it gets it back when it leaves
    /// managed pools or at unload, wherever the rules put it.
    fn inherit_nice(&mut self, parent: u64, child: u64) {
        if let Some(p) = self.members.get(parent).copied() {
            if p.nice_flags & NICE_MANAGED != 0 && p.nice_flags & NICE_USER == 0 {
                if let Ok(e) = self.members.entry(child) {
                    e.nice_flags = NICE_MANAGED;
                    e.orig_nice = p.orig_nice;
                    e.set_nice = p.set_nice;
                }
            }
        }
    }

    /// A worker the kernel created for a process (io_uring's io-wq and SQPOLL threads, made by
    /// `create_io_thread`, which the fork gate never sees): it is part of the process, so it
    /// joins the VS of the process's leader `owner`, counted and charged there. No fork rule
    /// applies and no limit refuses it (the kernel gives the module no way to fail it); it
    /// takes the leader's vs-given nice record, so it is restored like its siblings.
    pub fn on_worker(&mut self, owner: u64, worker: u64) {
        let slot = self.slot_of(owner);
        if slot != 0
            && self.members.get(worker).is_none()
            && self.members.entry(worker).is_ok()
            && self.members.set_slot(worker, slot as u16)
        {
            let _ = self.reg.join(slot);
        }
        self.inherit_nice(owner, worker);
    }

    /// Exit gate: the task leaves its VS, and any reservation it held is released.
    pub fn on_exit(&mut self, pid: u64) {
        // Its last runtime is its VS's, not that of a task that reuses the pid.
        self.fold_task(pid);
        if let Some(e) = self.members.remove(pid) {
            if e.slot != 0 {
                let _ = self.reg.leave(usize::from(e.slot));
            }
            if e.pending != 0 {
                let _ = self.reg.unreserve(usize::from(e.pending) - 1);
            }
        }
    }

    /// Exec gate. `old_pid` differs from `pid` when a thread exec'd and took over its
    /// leader's pid: its membership moves with it. Then exec rules (by path) apply.
    pub fn on_exec(&mut self, pid: u64, old_pid: u64, exe: Exe<'_>) {
        if old_pid != pid {
            self.on_tid_exchange(old_pid, pid);
        }
        let cur = self.slot_of(pid);
        // For the next exec's unlocked check (`unlocked::Unlocked::exec_is_noop`).
        self.fill_view(cur);
        if let Some(to) = self.decide(VS_EV_EXEC, cur, None, exe) {
            let _ = self.move_task(pid, to);
        }
        let now = self.slot_of(pid);
        if let Some(c) = self.counters(now) {
            c.execs += 1;
        }
    }

    /// A thread that execs takes over its leader's pid (`de_thread`, past exec's point of no
    /// return): its membership moves from `tid` to `leader_pid` at that moment, so that if the
    /// exec then fails and the thread dies under the leader's pid, its exit finds the entry
    /// (no phantom member is left under the old tid).
    pub fn on_tid_exchange(&mut self, tid: u64, leader_pid: u64) {
        // Time run under the old tid is the thread's VS's (the entry moves, the cache's key
        // would not).
        self.fold_task(tid);
        let Some(e) = self.members.remove(tid) else {
            return;
        };
        // The leader's own entry went at its exit; be safe if it did not.
        self.on_exit(leader_pid);
        if let Ok(n) = self.members.entry(leader_pid) {
            n.pending = e.pending;
            n.nice_flags = e.nice_flags;
            n.orig_nice = e.orig_nice;
            n.set_nice = e.set_nice;
            self.members.set_slot(leader_pid, e.slot);
        } else {
            if e.slot != 0 {
                let _ = self.reg.leave(usize::from(e.slot));
            }
            if e.pending != 0 {
                let _ = self.reg.unreserve(usize::from(e.pending) - 1);
            }
        }
    }

    /// A gate with an optional requester (accept, IPC, connect, socket): apply the rules.
    /// Returns the task's VSID afterwards.
    pub fn on_gate(&mut self, pid: u64, event: u32, req: Option<usize>) -> u32 {
        match self.gate(pid, event, req) {
            (_, _, false) => self.id_of(pid),
            // Where it was: no second lookup of the task.
            (cur, _, true) => self.reg.node(cur).map_or(VS_ROOT, |n| n.id),
        }
    }

    /// [`on_gate`](Self::on_gate) on CPU `cpu` (the caller's): when the task stays where it
    /// is, remember on that CPU which rule decided (see `stay_cache`), so that the next such
    /// gate is answered and counted without the lock. `req` must be the slot the unlocked
    /// reader finds for the requester (`unlocked::Unlocked::gate`), or its keys never match.
    pub fn on_gate_cached(&mut self, pid: u64, event: u32, req: Option<usize>, cpu: usize) -> u32 {
        let (cur, rule, stayed) = self.gate(pid, event, req);
        if !stayed {
            return self.id_of(pid);
        }
        let key = Key {
            event,
            cur,
            req: if vs_event_has_req(event) {
                req.unwrap_or(0)
            } else {
                0
            },
        };
        let counter = rule.map_or(Counter::None, Counter::Rule);
        let (rules, stats) = (&mut self.rules, &mut self.stats);
        stay_cache::fill(&self.stays, cpu, key, counter, |c, n| {
            count_stays(rules, stats, c, n)
        });
        self.reg.node(cur).map_or(VS_ROOT, |n| n.id)
    }

    /// Whether some rule of `event` may decide for task `pid` (see `RuleTable::applies`);
    /// fills the gate view word of its VS, so that the next answer needs no lock
    /// (`unlocked::Unlocked::rule_may_apply`).
    pub fn rule_may_apply(&mut self, pid: u64, event: u32) -> bool {
        let cur = self.slot_of(pid);
        self.fill_view(cur);
        let id = self.reg.node(cur).map_or(VS_ROOT, |n| n.id);
        self.rules.applies(event, id)
    }

    /// Apply the rules of `event` to task `pid`: its slot before, the rule that decided, and
    /// whether the rules leave it there (`false`: a move was tried).
    fn gate(&mut self, pid: u64, event: u32, req: Option<usize>) -> (usize, Option<u32>, bool) {
        let cur = self.slot_of(pid);
        self.fill_view(cur);
        if vs_event_has_req(event) {
            // The requester's word too, for the object gates' unlocked reads (no requester:
            // the root's).
            self.fill_view(req.unwrap_or(0));
        }
        let decided = self.decide_by(event, cur, req, Exe::NONE);
        let stayed = match decided.and_then(|(_, to)| to) {
            Some(to) if to != cur => {
                // A full membership table leaves it where it was: the gate cannot refuse.
                let _ = self.move_task(pid, to);
                false
            }
            _ => true,
        };
        (cur, decided.map(|(rule, _)| rule), stayed)
    }

    /// Fold the hits the object gates counted without the lock into the rules' counts, and
    /// the refused tag writes into the VSs' `tags_refused`, before they are read.
    pub fn fold_stays(&mut self) {
        let (rules, stats) = (&mut self.rules, &mut self.stats);
        stay_cache::fold(&self.stays, |c, n| count_stays(rules, stats, c, n));
    }

    /// Clear the gate view if the tree or the rules changed since its words were filled (see
    /// `unlocked.rs`). The kernel calls this at the end of every locked section, inside the
    /// seqcount's write section.
    pub fn publish_gate_view(&mut self) {
        let gen = (self.reg.generation(), self.rules.generation());
        if gen != self.view_gen {
            self.view_gen = gen;
            for w in self.gate_view.iter() {
                w.store(0, Relaxed);
            }
            // The stay cache's keys name slots and its entries rules: both may mean something
            // else now. Hits of a deleted rule go with it.
            let (rules, stats) = (&mut self.rules, &mut self.stats);
            stay_cache::clear(&self.stays, |c, n| count_stays(rules, stats, c, n));
        }
    }

    /// Fill slot `slot`'s gate view word if it is not: the events some rule may decide for a
    /// task in that VS, and for a requester in it.
    fn fill_view(&mut self, slot: usize) {
        let Some(w) = self.gate_view.get(slot) else {
            return;
        };
        if w.load(Relaxed) != 0 {
            return;
        }
        let Some(id) = self.reg.node(slot).map(|n| n.id) else {
            return;
        };
        let (mut events, mut req_events) = (0, 0);
        let mut mask = self.rules.event_mask();
        while mask != 0 {
            let e = mask.trailing_zeros();
            mask &= mask - 1;
            if self.rules.applies(e, id) {
                events |= 1 << e;
            }
            if vs_event_has_req(e) && self.rules.applies_req(e, id) {
                req_events |= 1 << e;
            }
        }
        w.store(view_word(id, events, req_events), Relaxed);
    }

    /// The unlocked reader of this state's tables, with `seq` as its seqcount (host tests; the
    /// kernel publishes the tables itself).
    pub fn unlocked<'a>(&'a self, seq: &'a crate::seq::SeqCount) -> crate::unlocked::Unlocked<'a> {
        crate::unlocked::Unlocked {
            seq,
            members: self.members.shadow().unwrap_or(&[]),
            view: &self.gate_view,
            objects: self.objects.shadow().unwrap_or(&[]),
            stays: &self.stays,
            listeners: &[],
            listeners_seq: seq,
        }
    }
}

/// Add `n` hits the stay cache counted for `counter`: to a rule, or to a VS's refused tags.
pub(crate) fn count_stays<R, I, D>(
    rules: &mut RuleTable<R, I, D>,
    stats: &mut [VsStats],
    counter: Counter,
    n: u64,
) where
    R: core::ops::DerefMut<Target = [Rule]>,
    I: core::ops::DerefMut<Target = [IndexEntry]>,
    D: core::ops::DerefMut<Target = [Decision]>,
{
    match counter {
        Counter::None => {}
        Counter::Rule(id) => rules.add_hits(id, n),
        Counter::TagsRefused(slot) => {
            if let Some(s) = stats.get_mut(slot) {
                s.tags_refused += n;
            }
        }
    }
}
