// SPDX-License-Identifier: GPL-2.0
//! The share budget: how much of a pool the VSs that draw from it may take.
//!
//! For a share attribute (CPU or network), a VS with its own value is a **pool**; a VS
//! without one is in the pool of its nearest ancestor that has one (the root has every
//! share). A pool's part of the machine is divided among the pools that **draw** from it, the
//! VSs with their own share whose parent is in it, by their shares (a percentage of that
//! pool), and what they leave is its own tasks' (`share::targets`, `share::pool_own_ppm_all`).
//! So the rule: the own shares of the VSs that draw from one pool add up to at most 100.
//!
//! The rule is per pool, not per parent VS: two VSs with 60 % each under two different
//! children of `web` that keep `web`'s share both draw from `web`'s pool, and together they
//! would leave `web`'s own tasks nothing.
//!
//! The module ([`crate::tree::Registry`]) and vsctl (the live list, the configuration file, the
//! steps of a plan) check it on their own trees through [`ShareTree`], so both give the same
//! answer. Control path only: a check is O(VSs x depth).

use crate::abi::{VS_ATTR_CPU, VS_ATTR_NET, VS_MAX_DEPTH, VS_NR_ATTRS, VS_SHARE_MAX};

/// The share attributes, by `VS_ATTR_*`.
pub const SHARES: [usize; 2] = [VS_ATTR_CPU as usize, VS_ATTR_NET as usize];

/// A VS tree as the budget sees it.
pub trait ShareTree {
    /// How the tree names a VS (a registry slot, an id, an index).
    type Key: Copy + Eq;
    fn root(&self) -> Self::Key;
    /// Every VS but the root.
    fn others(&self) -> impl Iterator<Item = Self::Key> + '_;
    /// `v`'s parent (the root's: the root).
    fn parent(&self, v: Self::Key) -> Self::Key;
    /// `v`'s own value of attribute `attr`, if it has one (the root always has).
    fn own(&self, v: Self::Key, attr: usize) -> Option<u32>;
}

/// The pool `v` is in for `attr`: itself if it has its own share, else its nearest ancestor
/// that has one.
pub fn pool_of<T: ShareTree>(t: &T, v: T::Key, attr: usize) -> T::Key {
    let mut s = v;
    // Depth is bounded; a longer chain (a cycle in a malformed tree) ends at the root.
    for _ in 0..=VS_MAX_DEPTH + 1 {
        if s == t.root() || t.own(s, attr).is_some() {
            return s;
        }
        s = t.parent(s);
    }
    t.root()
}

/// The pool `v` draws its own share of `attr` from (its parent's pool); `None` for the root
/// and for a VS without its own share.
pub fn draws_from<T: ShareTree>(t: &T, v: T::Key, attr: usize) -> Option<T::Key> {
    if v == t.root() {
        return None;
    }
    t.own(v, attr)?;
    Some(pool_of(t, t.parent(v), attr))
}

/// What the VSs that draw `attr` from `pool` take of it, in percent (may exceed 100 only in a
/// tree that breaks the rule).
pub fn pool_load<T: ShareTree>(t: &T, pool: T::Key, attr: usize) -> u32 {
    drawn(t, pool, attr).fold(0, u32::saturating_add)
}

/// What is left of `pool` for `attr`: for its own tasks, or for one more VS to draw.
pub fn pool_left<T: ShareTree>(t: &T, pool: T::Key, attr: usize) -> u32 {
    crate::tree::budget_left(drawn(t, pool, attr))
}

/// The own shares of `attr` drawn from `pool`.
fn drawn<T: ShareTree>(t: &T, pool: T::Key, attr: usize) -> impl Iterator<Item = u32> + '_ {
    t.others()
        .filter(move |&v| draws_from(t, v, attr) == Some(pool))
        .filter_map(move |v| t.own(v, attr))
}

/// A pool over its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow<K> {
    /// `VS_ATTR_CPU` or `VS_ATTR_NET`.
    pub attr: usize,
    pub pool: K,
    /// The own shares drawing from it, added up (more than 100).
    pub load: u32,
}

/// The first pool over budget among those a change to VS `v` can affect: the pool it draws
/// from (or would, with its own share), and `v` itself. Changing whether `v` has its own
/// share moves the VSs below it that draw from it to the pool above, or back; changing its
/// value changes what it takes of the pool above. No other pool's load changes. So a tree
/// that kept the rule, changed at `v` only, keeps it if this returns `None`.
pub fn overflow<T: ShareTree>(t: &T, v: T::Key) -> Option<Overflow<T::Key>> {
    for attr in SHARES {
        let above = pool_of(t, t.parent(v), attr);
        let pools = [Some(above), t.own(v, attr).map(|_| v)];
        for pool in pools.into_iter().flatten() {
            let load = pool_load(t, pool, attr);
            if load > VS_SHARE_MAX {
                return Some(Overflow { attr, pool, load });
            }
        }
    }
    None
}

/// `tree` with VS `key` changed to (or, `added`, a new leaf with) parent `parent` and own
/// values `own`: what a create or a set would make, for [`overflow`] to check first.
pub struct Edit<'a, T: ShareTree> {
    pub tree: &'a T,
    pub key: T::Key,
    pub parent: T::Key,
    /// Own values by `VS_ATTR_*` (`None`: shares its parent's).
    pub own: [Option<u32>; VS_NR_ATTRS],
    pub added: bool,
}

impl<T: ShareTree> ShareTree for Edit<'_, T> {
    type Key = T::Key;

    fn root(&self) -> T::Key {
        self.tree.root()
    }

    fn others(&self) -> impl Iterator<Item = T::Key> + '_ {
        self.tree.others().chain(self.added.then_some(self.key))
    }

    fn parent(&self, v: T::Key) -> T::Key {
        if v == self.key {
            self.parent
        } else {
            self.tree.parent(v)
        }
    }

    fn own(&self, v: T::Key, attr: usize) -> Option<u32> {
        if v == self.key {
            self.own.get(attr).copied().flatten()
        } else {
            self.tree.own(v, attr)
        }
    }
}
