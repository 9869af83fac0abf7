// SPDX-License-Identifier: GPL-2.0
//! The CPU share controller over the VS state: charging CPU time, and the tick that measures
//! each pool, sets its target and weight (`share`) and decides each member task's nice.
//!
//! The kernel half (`src/cpu.rs`) runs a tick in a work item: snapshot the members under the
//! state lock, a chunk at a time ([`Vs::members_snapshot`]), sample each task without it ([`TaskSample`]), decide
//! under it ([`Vs::cpu_tick`]), apply the [`NiceAction`]s without it. The nice policy: the
//! first time vs renices a task it records the task's own nice; the task gets it back when it
//! leaves managed pools and at unload ([`Vs::restore_all`]); a task someone else reniced is
//! left alone until it changes VS.

use crate::abi::VsStats;
use crate::charge_cache;
use crate::classify::{Store, Vs};
use crate::members::{Entry, Members, NICE_MANAGED, NICE_USER};
use crate::share;

/// Member-table positions one locked section of [`Vs::members_snapshot`] looks at.
pub const SNAPSHOT_CHUNK: usize = 4096;

/// What the CPU tick learnt about one member task outside the lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskSample {
    pub pid: u64,
    /// The task exists and is not exiting.
    pub alive: bool,
    /// It was runnable when sampled.
    pub runnable: bool,
    /// Its nice value when sampled.
    pub nice: i8,
}

/// A nice change the CPU tick asks for: set `pid` to `nice` if it still has `expect`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NiceAction {
    pub pid: u64,
    pub expect: i8,
    pub nice: i8,
}

impl<S: Store> Vs<S> {
    /// Charge `ns` of CPU time to the VS of task `pid` (the scheduler's runtime tracepoint,
    /// when the per-CPU cache had no room: see `charge_cache`).
    pub fn charge(&mut self, pid: u64, ns: u64) {
        charge_to(&self.members, &mut self.stats, pid, ns);
    }

    /// Charge the runtime of `pid` waiting in the per-CPU cache to the VS it is in now:
    /// before it moves, exits or changes pid.
    pub fn fold_task(&mut self, pid: u64) {
        let (members, stats) = (&self.members, &mut self.stats);
        charge_cache::take(&self.charges, pid, |p, ns| charge_to(members, stats, p, ns));
    }

    /// Charge everything waiting in the per-CPU cache: at each tick and before counters are
    /// read, so no figure is older than that.
    pub fn fold_charges(&mut self) {
        let (members, stats) = (&self.members, &mut self.stats);
        charge_cache::drain(&self.charges, |p, ns| charge_to(members, stats, p, ns));
    }

    /// The member tasks the CPU tick must sample, for it to sample outside the lock: those at
    /// member-table positions `from .. from + SNAPSHOT_CHUNK`, written to `out` as far as it
    /// goes. Returns how many were written and the position to go on from (`None`: done).
    ///
    /// The tick takes the lock (interrupts off) once per chunk, so no section grows with the
    /// member count. Left out: tasks of the root's pool with no nice value of vs's to give
    /// back. The controller neither renices them nor needs them (their CPU time is charged by
    /// VS; like unclassified tasks, they do not count as the root pool's runnable tasks), and
    /// a host may classify many of them (VSs for accounting and limits only).
    pub fn members_snapshot(&self, from: usize, out: &mut [TaskSample]) -> (usize, Option<usize>) {
        let end = from.saturating_add(SNAPSHOT_CHUNK);
        // The pools the last tick cached, unless the tree changed since (then walk up).
        let cached = self.pools_gen == self.reg.generation();
        let in_root_pool = |slot: usize| {
            if cached {
                self.ctl.get(slot).is_none_or(|c| c.pool == 0)
            } else {
                share::pool_of(&self.reg, slot) == 0
            }
        };
        let mut n = 0;
        for e in self.members.at_positions(from..end) {
            if e.nice_flags == 0 && in_root_pool(usize::from(e.slot)) {
                continue;
            }
            let Some(o) = out.get_mut(n) else { break };
            *o = TaskSample {
                pid: e.pid,
                ..TaskSample::default()
            };
            n += 1;
        }
        (n, (end < self.members.capacity()).then_some(end))
    }

    /// One tick of the CPU controller. `samples` are the member tasks as seen just now; CPU
    /// time is measured since the last tick. Updates targets and pool weights, records
    /// in each entry what vs does to its nice value, and writes the nice changes to make into
    /// `actions` (returning how many). Root-pool tasks are never reniced; a task vs reniced
    /// gets its original nice back when it leaves managed pools; a task someone else reniced
    /// is left alone until it changes VS.
    pub fn cpu_tick(&mut self, samples: &[TaskSample], actions: &mut [NiceAction]) -> usize {
        self.fold_charges();
        let n = self.reg.high();
        // After a change to the tree: each VS's pool again, and the subtrees' CPU time from
        // scratch (a destroyed VS's time leaves its ancestors'). Otherwise the tick costs
        // little per VS: one pass over the counters, then work only for VSs that used CPU.
        let fresh = self.reg.generation() != self.pools_gen;
        if fresh {
            share::cache_pools(&self.reg, &mut self.ctl);
            self.pools_gen = self.reg.generation();
        }
        // CPU time per pool since the last tick, and runnable tasks per pool.
        let mut total: u64 = 0;
        for (slot, c) in self.ctl.iter_mut().enumerate().take(n) {
            let now = self.stats[slot].cpu_time_ns;
            c.delta_ns = now.wrapping_sub(c.last_cpu_ns);
            c.last_cpu_ns = now;
            c.pool_ns = 0;
            c.runnable = 0;
            total = total.wrapping_add(c.delta_ns);
        }
        for slot in 0..n {
            let (pool, delta) = (usize::from(self.ctl[slot].pool), self.ctl[slot].delta_ns);
            if delta != 0 {
                self.ctl[pool].pool_ns = self.ctl[pool].pool_ns.saturating_add(delta);
                if !fresh {
                    self.add_below(slot, delta);
                }
            }
        }
        if fresh {
            self.update_subtree_cpu();
        }
        for s in samples.iter().filter(|s| s.alive && s.runnable) {
            let pool = usize::from(self.ctl[self.slot_of(s.pid)].pool);
            self.ctl[pool].runnable += 1;
        }
        for c in self.ctl.iter_mut().take(n) {
            c.busy = share::is_busy(c.pool_ns, total, c.runnable);
        }
        share::targets(&self.reg, &mut self.scratch, &mut self.ctl);
        for pool in 0..n {
            if self.reg.node(pool).is_none() || usize::from(self.ctl[pool].pool) != pool {
                continue;
            }
            let c = &mut self.ctl[pool];
            let measured = c.busy && total > 0;
            c.used_ppm = if measured {
                (c.pool_ns.saturating_mul(1_000_000) / total) as u32
            } else {
                0
            };
            // The root's pool is the reference: measured (for `vsctl top`), never reniced.
            if measured && pool != 0 {
                share::step(c);
            } else {
                c.idle_ticks = c.idle_ticks.saturating_add(1);
            }
        }
        // Decide each member's nice.
        for c in self.ctl.iter_mut().take(n) {
            c.seen = 0;
        }
        let mut k = 0;
        for s in samples.iter().filter(|s| s.alive) {
            let pool = usize::from(self.ctl[self.slot_of(s.pid)].pool);
            let want = self.ctl.get_mut(pool).map_or(0, |c| {
                if !s.runnable {
                    return c.nice;
                }
                // The runnable tasks in sample order, rotated every ROTATE_TICKS ticks: the
                // first `boost` of them get one nice lower.
                let r = c.runnable.max(1);
                let off = (c.rot / share::ROTATE_TICKS).wrapping_mul(c.boost.max(1)) % r;
                let i = (c.seen + r - off) % r;
                c.seen += 1;
                if i < c.boost {
                    (c.nice - 1).max(-20)
                } else {
                    c.nice
                }
            });
            let Some(e) = self.members.get_mut(s.pid) else {
                continue;
            };
            let mut act = None;
            if pool == 0 {
                if e.nice_flags & NICE_MANAGED != 0 && e.nice_flags & NICE_USER == 0 {
                    act = Some(NiceAction {
                        pid: s.pid,
                        expect: e.set_nice,
                        nice: e.orig_nice,
                    });
                }
                e.nice_flags = 0;
            } else if e.nice_flags & NICE_USER != 0 {
                // Someone else set this task's nice: theirs to keep.
            } else if e.nice_flags & NICE_MANAGED != 0 && s.nice != e.set_nice {
                e.nice_flags |= NICE_USER;
            } else {
                if e.nice_flags & NICE_MANAGED == 0 {
                    e.nice_flags |= NICE_MANAGED;
                    e.orig_nice = s.nice;
                }
                e.set_nice = want;
                if want != s.nice {
                    act = Some(NiceAction {
                        pid: s.pid,
                        expect: s.nice,
                        nice: want,
                    });
                }
            }
            self.members.tidy(s.pid);
            if let Some(a) = act {
                if let Some(slot) = actions.get_mut(k) {
                    *slot = a;
                    k += 1;
                }
            }
        }
        k
    }

    /// Add `ns` that VS `slot` used to the CPU time below each of its ancestors.
    fn add_below(&mut self, slot: usize, ns: u64) {
        let mut s = slot;
        // Depth is bounded; the root is its own parent.
        for _ in 0..=crate::abi::VS_MAX_DEPTH {
            let Some(node) = self.reg.node(s) else { return };
            if s == 0 {
                return;
            }
            s = node.parent as usize;
            if let Some(c) = self.ctl.get_mut(s) {
                c.below_ns = c.below_ns.wrapping_add(ns);
            }
        }
    }

    /// Recompute every VS's CPU time of the VSs below it (`cpu_subtree_ns`): O(VSs x depth).
    pub fn update_subtree_cpu(&mut self) {
        let n = self.reg.high();
        for c in self.ctl.iter_mut().take(n) {
            c.below_ns = 0;
        }
        for d in (1..=self.reg.max_depth()).rev() {
            for slot in 1..n {
                let Some(node) = self.reg.node(slot) else {
                    continue;
                };
                if node.depth == d {
                    // Wrapping, as the counters themselves and `add_below` are.
                    let up = self.ctl[slot]
                        .below_ns
                        .wrapping_add(self.stats[slot].cpu_time_ns);
                    let p = &mut self.ctl[node.parent as usize].below_ns;
                    *p = p.wrapping_add(up);
                }
            }
        }
    }

    /// Module unload: the nice changes that give every managed task its own value back.
    pub fn restore_all(&mut self, actions: &mut [NiceAction]) -> usize {
        let mut k = 0;
        for e in self.members.iter_mut() {
            if e.nice_flags & NICE_MANAGED != 0 && e.nice_flags & NICE_USER == 0 {
                if let Some(a) = actions.get_mut(k) {
                    *a = NiceAction {
                        pid: e.pid,
                        expect: e.set_nice,
                        nice: e.orig_nice,
                    };
                    k += 1;
                }
            }
            e.nice_flags = 0;
        }
        k
    }
}

/// Add `ns` to the CPU time of the VS `pid` is in (the root for an unclassified task).
fn charge_to<M, V, T>(members: &Members<M, V>, stats: &mut T, pid: u64, ns: u64)
where
    M: core::ops::DerefMut<Target = [Entry]>,
    V: core::ops::Deref<Target = [core::sync::atomic::AtomicU64]>,
    T: core::ops::DerefMut<Target = [VsStats]>,
{
    let slot = members.get(pid).map_or(0, |e| usize::from(e.slot));
    if let Some(c) = stats.get_mut(slot) {
        c.cpu_time_ns = c.cpu_time_ns.wrapping_add(ns);
    }
}
