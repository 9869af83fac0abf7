// SPDX-License-Identifier: GPL-2.0
//! CPU share control: targets from the VS tree, and a feedback loop on CFS weights.
//!
//! *Pools.* The tasks that draw from one CPU share form a pool: the pool of VS `p` is `p`
//! itself if its CPU share is detached, else its source's. The root's pool (unclassified work
//! and VSs that never detached CPU) is the reference: its tasks keep their own nice values.
//!
//! *Targets.* Top-down from the whole machine: at a pool, its own tasks and each child pool
//! split what the pool gets in proportion to their shares (the pool's own part is what its
//! children's shares leave, 100 − Σ), counting only participants that are busy, so an idle
//! pool's share goes to its busy siblings (work conserving, like CFS itself).
//!
//! *Feedback.* CFS gives runnable tasks CPU in proportion to their weights, but how many tasks
//! each pool runs, which CPUs they may use and what the reference pool does are not known in
//! advance, and nice values come in 1.25x steps. So each tick every busy managed pool moves its
//! weight by half the log-ratio of target to measured share (at most 4x a tick), and each of
//! its runnable tasks gets the nice closest to `pool weight / runnable tasks`. A weight that
//! has no effect on the pool's share (the others want no more, or its own tasks do not)
//! moves at most 4x (`EXCURSION_Q10`) instead of winding up to nice 19 or -20. Everything
//! is integer: log2 in Q10 fixed point (no floating point in the kernel).

use crate::abi::{VS_ATTR_CPU, VS_MAX_DEPTH, VS_SHARE_MAX};
use crate::tree::{Registry, Slot};

/// CFS weights of nice -20..=19 (kernel/sched/core.c, `sched_prio_to_weight`).
pub const NICE_WEIGHT: [u32; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87,
    70, 56, 45, 36, 29, 23, 18, 15,
];

/// log2 in Q10 fixed point of `x` (> 0), piecewise linear between powers of two.
pub fn log2_q10(x: u64) -> i32 {
    if x == 0 {
        return -64 * 1024;
    }
    let msb = 63 - x.leading_zeros() as i32;
    // The mantissa's fraction, scaled to 1024.
    let frac = if msb >= 10 {
        (x >> (msb - 10)) & 1023
    } else {
        (x << (10 - msb)) & 1023
    };
    msb * 1024 + frac as i32
}

/// The inverse of [`log2_q10`] (exactly, on its range).
pub fn exp2_q10(l: i32) -> u64 {
    let l = l.clamp(0, 62 * 1024);
    let (int, frac) = (l / 1024, (l % 1024) as u64);
    let m = 1024 + frac;
    if int >= 10 {
        m << (int - 10)
    } else {
        m >> (10 - int)
    }
}

/// The nice value whose CFS weight is closest to `weight` (in log terms).
pub fn nice_for_weight(weight: u64) -> i8 {
    let lw = log2_q10(weight.max(1));
    let mut best = 0;
    for (i, &w) in NICE_WEIGHT.iter().enumerate() {
        if (log2_q10(u64::from(w)) - lw).abs() < (log2_q10(u64::from(NICE_WEIGHT[best])) - lw).abs()
        {
            best = i;
        }
    }
    best as i8 - 20
}

/// Per-slot controller state, kept across ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCtl {
    /// log2 (Q10) of the pool's total weight; 0 = not initialised.
    pub lweight: i32,
    /// Target share of the machine's used CPU at the last tick, parts per million.
    pub target_ppm: u32,
    /// Measured share at the last tick, parts per million.
    pub used_ppm: u32,
    /// The nice its runnable tasks get (meaningful for managed pools)...
    pub nice: i8,
    /// ...except `boost` of them, which get one nice lower: nice values come in 1.25x steps,
    /// and mixing two neighbours gets the pool's weight closer than either alone. Which
    /// tasks moves on every [`ROTATE_TICKS`] ticks (`rot` counts ticks), so over time each
    /// gets the same without renicing tasks every tick.
    pub boost: u32,
    pub rot: u32,
    /// Per tick: runnable member tasks given their nice so far.
    pub seen: u32,
    /// The target the weight was last set for (a change moves the weight by the change's
    /// ratio at once; feedback corrects only the rest).
    pub last_target_ppm: u32,
    /// The slot's CPU time at the last tick.
    pub last_cpu_ns: u64,
    /// Per tick: the slot's own CPU time since the last tick; for a pool, its members' total.
    pub delta_ns: u64,
    pub pool_ns: u64,
    /// Per tick, for a pool: its runnable member tasks, and whether it competes for CPU.
    pub runnable: u32,
    pub busy: bool,
    /// Where the weight was, and the pool's measured share, when the weight last had an
    /// effect (see `step`): the weight stays within `EXCURSION_Q10` of it.
    pub ref_lweight: i32,
    pub ref_used_ppm: u32,
    /// Ticks in a row the pool was not stepped (idle, or not a pool): after
    /// [`FRESH_IDLE_TICKS`], its next step measures a period it was busy for only part of.
    pub idle_ticks: u8,
    /// CPU time of all VSs below this one, as of the last tick.
    pub below_ns: u64,
    /// The pool (slot) this VS draws CPU from, as [`cache_pools`] last found it.
    pub pool: u16,
}

/// A pool counts as busy when it has runnable tasks or used this share of the CPU time.
const BUSY_PPM: u64 = 5_000;
/// Ticks for which the same tasks of a pool get the lower of its two nice values.
pub const ROTATE_TICKS: u32 = 10;
/// Feedback gain (Q10): half the log-ratio per tick.
const GAIN_Q10: i64 = 512;
/// Largest weight change per tick: 4x.
const MAX_STEP_Q10: i64 = 2 * 1024;
/// How far (log2 Q10: 4x) the weight may move while the pool's measured share does not.
/// A pool over its target because the others want no more than they get (the root's pool
/// running a little system work counts as busy), or under it because its own tasks want no
/// more, or pinned where no one else runs, cannot be moved by its weight: without a bound
/// feedback would push it to nice 19 or -20, harmless to throughput but not to the pool's
/// latency, nor to the others when its demand comes back. Where weights do decide (the
/// others are starved), a 4x change moves the share the same way by far more than [`moved`],
/// which moves the bound along.
const EXCURSION_Q10: i32 = 2 * 1024;
/// Idle ticks after which a pool's next busy tick counts as its first (see `step`). A pool
/// busy every other tick is measured over part periods every time: it still gets feedback.
pub const FRESH_IDLE_TICKS: u8 = 3;
/// A change of the measured share that counts as the weight having an effect, when it goes
/// the way the weight went: a tenth of it, at least 0.2 points (less is noise for a pool that
/// uses almost nothing). A share above about 88 % moves by less than a tenth for a 4x weight
/// change (s = w / (w + r)); such a pool's weight then moves 4x at most from where its share
/// last moved, which its target, reached at 4x or not, has not needed in the simulations.
fn moved(from_ppm: u32, to_ppm: u32) -> bool {
    from_ppm.abs_diff(to_ppm) >= (from_ppm / 10).max(2_000)
}
/// Weight range of a pool: a single nice 19 task up to 64 nice -20 tasks.
const LW_MIN: i32 = 3 * 1024 + 930; // ~15
const LW_MAX: i32 = 22 * 1024 + 500; // ~64 * 88761

/// The pool (slot) that VS `slot` draws CPU from.
pub fn pool_of<S: core::ops::DerefMut<Target = [Slot]>>(reg: &Registry<S>, slot: usize) -> usize {
    reg.effective(slot, VS_ATTR_CPU as usize).1
}

/// Record in `ctl[slot].pool` the pool every VS draws CPU from: what [`targets`] and the CPU
/// tick read instead of walking up the tree for each VS, several times a tick. O(slots x
/// depth): run after every change to the tree (see `Registry::generation`), which is also
/// when a VS stops being a pool (its CPU share attached): its controller state is forgotten
/// then (`forget`), so that should it become one again it starts afresh.
pub fn cache_pools<S: core::ops::DerefMut<Target = [Slot]>>(
    reg: &Registry<S>,
    ctl: &mut [PoolCtl],
) {
    let n = reg.high().min(ctl.len());
    for (s, c) in ctl.iter_mut().enumerate().take(n) {
        c.pool = if reg.node(s).is_some() {
            pool_of(reg, s) as u16
        } else {
            0
        };
        if usize::from(c.pool) != s {
            forget(c);
        }
    }
}

/// Per-slot scratch space for [`pool_own_ppm_all`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolScratch {
    /// For pools: Σ own shares of the VSs that draw from it (see `budget.rs`).
    children: u32,
    /// The pool the slot draws from, and that pool's part of the machine (ppm).
    pool: u16,
    pool_ppm: u32,
    /// `pool` and `pool_ppm` are computed.
    done: bool,
}

/// For every VS: the fraction of the machine (parts per million) that the pool it draws `attr`
/// from keeps for its own tasks when every VS is busy: the pool's part of the machine less
/// what the pools drawing from it take. The weight of a VS's work in the accept queue (CPU) and in
/// `vsq` (net); what `vsctl show` reports as the pool's machine fraction, less the children.
/// One pass, O(slots) (asking `Registry::machine_ppm` per VS would be O(slots²)): calls
/// `f(slot, pool, own_ppm)` for each VS. `scratch` is at least as long as the registry's
/// capacity (shorter: the slots beyond are skipped). Runs under the state lock after every
/// change to the tree, so it must stay linear.
pub fn pool_own_ppm_all<S: core::ops::DerefMut<Target = [Slot]>>(
    reg: &Registry<S>,
    attr: usize,
    scratch: &mut [PoolScratch],
    mut f: impl FnMut(usize, usize, u32),
) {
    let high = reg.high().min(scratch.len());
    for s in scratch[..high].iter_mut() {
        *s = PoolScratch::default();
    }
    if let Some(root) = scratch.first_mut() {
        *root = PoolScratch {
            pool: 0,
            pool_ppm: 1_000_000,
            done: true,
            ..*root
        };
    }
    // Each slot's pool from its parent's: walk up to the nearest computed ancestor (depth is
    // bounded), then fill the chain in downwards. Every slot is filled once.
    let mut chain = [0u16; VS_MAX_DEPTH as usize + 2];
    for slot in 0..high {
        let mut len = 0;
        let mut s = slot;
        while s < high && !scratch[s].done && len < chain.len() {
            chain[len] = s as u16;
            len += 1;
            s = reg.node(s).map_or(0, |n| n.parent as usize);
        }
        for &c in chain[..len].iter().rev() {
            let c = usize::from(c);
            let Some(n) = reg.node(c) else {
                scratch[c].done = true;
                continue;
            };
            let parent = scratch.get(n.parent as usize).copied().unwrap_or_default();
            let (pool, pool_ppm) = if n.detached & (1 << attr) != 0 {
                let ppm = u64::from(parent.pool_ppm) * u64::from(n.own[attr]) / 100;
                (c as u16, ppm as u32)
            } else {
                (parent.pool, parent.pool_ppm)
            };
            scratch[c].pool = pool;
            scratch[c].pool_ppm = pool_ppm;
            scratch[c].done = true;
        }
    }
    // What the pools drawing from each pool take of it (see `budget.rs`): a detached VS draws
    // from its parent's pool, which is not always its parent.
    for slot in 1..high {
        let Some(n) = reg.node(slot) else { continue };
        if n.detached & (1 << attr) != 0 {
            let Some(above) = scratch.get(n.parent as usize).map(|p| usize::from(p.pool)) else {
                continue;
            };
            if let Some(p) = scratch.get_mut(above) {
                p.children = p.children.saturating_add(n.own[attr]);
            }
        }
    }
    for slot in 0..high {
        if reg.node(slot).is_none() {
            continue;
        }
        let k = scratch[slot];
        let left = VS_SHARE_MAX.saturating_sub(scratch[usize::from(k.pool)].children);
        let own = u64::from(k.pool_ppm) * u64::from(left) / u64::from(VS_SHARE_MAX);
        f(slot, usize::from(k.pool), own as u32);
    }
}

/// Per-slot scratch space for [`targets`] (so that it needs no allocation).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scratch {
    /// For pools: the pool its parent draws from.
    parent_pool: u16,
    /// The slot is a pool (a VS with its own CPU share, or the root), at this depth.
    is_pool: bool,
    depth: u32,
    /// For pools: Σ shares of child pools.
    children: u32,
    /// For pools: the weight total its budget is split by.
    total: u32,
    /// For pools: it or a pool below it is busy.
    busy_sub: bool,
    /// For pools: what its subtree gets, ppm.
    budget: u64,
}

/// Target shares (parts per million of the used CPU) of every pool, into
/// `ctl[pool].target_ppm` (0 for idle pools and non-pools); `ctl[pool].busy` says which pools
/// compete. O(slots × depth); `scratch` and `ctl` as long as the registry's capacity, and
/// `ctl[..].pool` filled by [`cache_pools`] since the tree last changed.
pub fn targets<S: core::ops::DerefMut<Target = [Slot]>>(
    reg: &Registry<S>,
    scratch: &mut [Scratch],
    ctl: &mut [PoolCtl],
) {
    let n = reg.high().min(scratch.len()).min(ctl.len());
    let share = |s: usize| reg.node(s).map_or(0, |n| n.own[VS_ATTR_CPU as usize]);
    // One pass over every VS; the passes by depth after it look only at pools (a host may
    // have thousands of VSs that keep their parent's CPU share and are never a pool).
    let mut deepest = 0;
    for s in 0..n {
        ctl[s].target_ppm = 0;
        let pool = ctl[s].pool;
        let node = reg.node(s);
        let is_pool = node.is_some() && usize::from(pool) == s;
        let depth = node.map_or(0, |x| x.depth);
        if is_pool {
            deepest = deepest.max(depth);
        }
        scratch[s] = Scratch {
            parent_pool: match node {
                Some(x) if s != 0 => ctl.get(x.parent as usize).map_or(0, |c| c.pool),
                _ => 0,
            },
            is_pool,
            depth,
            busy_sub: is_pool && ctl[s].busy,
            ..Scratch::default()
        };
    }
    // Children first: propagate busy and sum shares up to the parent pool.
    for d in (1..=deepest).rev() {
        for s in 1..n {
            if !scratch[s].is_pool || scratch[s].depth != d {
                continue;
            }
            let pp = usize::from(scratch[s].parent_pool);
            scratch[pp].children += share(s);
            if scratch[s].busy_sub {
                scratch[pp].busy_sub = true;
                scratch[pp].total += share(s);
            }
        }
    }
    // Parents first: split budgets.
    for d in 0..=deepest {
        for s in 0..n {
            if !scratch[s].is_pool || scratch[s].depth != d {
                continue;
            }
            let budget = if s == 0 {
                1_000_000
            } else {
                let pp = usize::from(scratch[s].parent_pool);
                let total = u64::from(scratch[pp].total);
                if scratch[s].busy_sub && total > 0 {
                    scratch[pp].budget * u64::from(share(s)) / total
                } else {
                    0
                }
            };
            scratch[s].budget = budget;
            let own = u64::from(VS_SHARE_MAX.saturating_sub(scratch[s].children));
            if ctl[s].busy {
                scratch[s].total += own as u32;
                let total = u64::from(scratch[s].total);
                ctl[s].target_ppm = (budget * own).checked_div(total).unwrap_or(budget) as u32;
            }
            if !scratch[s].busy_sub {
                scratch[s].budget = 0;
            }
        }
    }
}

/// One controller step for one managed pool: new log-weight from its `target_ppm` and
/// `used_ppm`, and the nice values for its `runnable` tasks (`nice`, `boost`).
pub fn step(ctl: &mut PoolCtl) {
    let (target_ppm, used_ppm, runnable) = (ctl.target_ppm, ctl.used_ppm, ctl.runnable.max(1));
    if ctl.lweight == 0 {
        // Start neutral: every runnable task at nice 0.
        ctl.lweight = log2_q10(1024 * u64::from(runnable));
    }
    let lt = i64::from(log2_q10(u64::from(target_ppm.max(1))));
    // The weight was set for the last target: the error is measured against that, and a new
    // target moves the weight by its ratio to the old one straight away (feed-forward).
    let (lbase, forward) = match ctl.last_target_ppm {
        0 => (lt, 0),
        last => {
            let ll = i64::from(log2_q10(u64::from(last)));
            (ll, lt - ll)
        }
    };
    // A pool that just turned busy (new, or idle for a while) was busy for only part of the
    // period just measured: its share understates what its weight gets, and correcting for
    // it would overshoot (a VS turning busy at 50 % went to 67 % the tick after). Its first
    // tick only sets the target.
    let fresh = ctl.ref_lweight == 0 || ctl.idle_ticks >= FRESH_IDLE_TICKS;
    ctl.idle_ticks = 0;
    let err = if fresh {
        0
    } else {
        lbase - i64::from(log2_q10(u64::from(used_ppm.max(1))))
    };
    let forward = forward.clamp(-MAX_STEP_Q10, MAX_STEP_Q10);
    let delta = (forward + err * GAIN_Q10 / 1024).clamp(-MAX_STEP_Q10, MAX_STEP_Q10);
    // The bound's reference follows the weight only where the weight had an effect: the share
    // moved by `moved` the way the weight moved since the reference. A share that moved the
    // other way (noise, the others' demand) is no proof, and a target flapping with the
    // root's busy state would otherwise re-anchor it every tick; a new target moves the
    // reference by its ratio instead, as it does the weight.
    let dw = i64::from(ctl.lweight) - i64::from(ctl.ref_lweight);
    let ds = i64::from(used_ppm) - i64::from(ctl.ref_used_ppm);
    if fresh || (moved(ctl.ref_used_ppm, used_ppm) && dw.signum() * ds.signum() > 0) {
        ctl.ref_lweight = ctl.lweight.clamp(LW_MIN, LW_MAX);
        ctl.ref_used_ppm = used_ppm;
    } else if ctl.last_target_ppm != target_ppm {
        ctl.ref_lweight = (i64::from(ctl.ref_lweight) + forward)
            .clamp(i64::from(LW_MIN), i64::from(LW_MAX)) as i32;
    }
    // `lo <= hi` as the reference is in range; max-then-min cannot panic even if not.
    let lo = ctl.ref_lweight.saturating_sub(EXCURSION_Q10).max(LW_MIN);
    let hi = ctl.ref_lweight.saturating_add(EXCURSION_Q10).min(LW_MAX);
    ctl.lweight = (i64::from(ctl.lweight) + delta)
        .max(i64::from(lo))
        .min(i64::from(hi)) as i32;
    ctl.last_target_ppm = target_ppm;
    let (nice, boost) = nice_mix(exp2_q10(ctl.lweight), runnable);
    ctl.rot = ctl.rot.wrapping_add(1);
    (ctl.nice, ctl.boost) = (nice, boost);
}

/// Forget the controller state of a slot that is not a pool (its CPU share attached, or no
/// VS): should it become one again, it starts afresh like a new pool.
fn forget(ctl: &mut PoolCtl) {
    ctl.lweight = 0;
    ctl.last_target_ppm = 0;
    ctl.ref_lweight = 0;
    ctl.ref_used_ppm = 0;
    ctl.idle_ticks = 0;
}

/// `runnable` tasks whose weights add up as close as nice values allow to `weight`: all at
/// `nice`, but `boost` of them at `nice - 1` (`boost < runnable`).
pub fn nice_mix(weight: u64, runnable: u32) -> (i8, u32) {
    let r = u64::from(runnable.max(1));
    let w = |nice: i8| u64::from(NICE_WEIGHT[(nice + 20) as usize]);
    // The lightest nice whose weight alone reaches the per-task part: `base` is one lighter.
    let mut hi = nice_for_weight((weight / r).max(1));
    if w(hi) * r < weight && hi > -20 {
        hi -= 1;
    }
    if hi == 19 || w(hi) * r <= weight {
        return (hi, 0);
    }
    let base = hi + 1;
    // k tasks at `hi`, the rest at `base`: k * w(hi) + (r - k) * w(base) closest to weight.
    let step = w(hi) - w(base);
    let k = (weight.saturating_sub(r * w(base)) + step / 2) / step;
    if k >= r {
        (hi, 0)
    } else {
        (base, k as u32)
    }
}

/// Whether a pool competes for CPU: it has runnable tasks, or used at least 0.5 % of the CPU
/// time used in the last period.
pub fn is_busy(used_ns: u64, total_ns: u64, runnable: u32) -> bool {
    runnable > 0 || (total_ns > 0 && used_ns * 1_000_000 / total_ns >= BUSY_PPM)
}
