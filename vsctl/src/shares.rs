// SPDX-License-Identifier: GPL-2.0
//! The module's share budget (`vs_core::budget`: the own shares drawn from one pool add up to
//! at most 100) over the trees vsctl works with: the live list, a configuration file, and the
//! states an `apply` goes through. One small tree type, so that all three ask the module's
//! own rule, not a copy of it.

use std::collections::HashMap;

use vs_core::abi::{VsInfo, VS_ROOT};
use vs_core::budget::ShareTree;

use crate::plan::{own_of, Own};

/// A VS tree by index; the root is 0 and has every share.
#[derive(Clone, Debug)]
pub struct Shares {
    parent: Vec<usize>,
    own: Vec<Own>,
    alive: Vec<bool>,
}

impl Default for Shares {
    fn default() -> Self {
        Self {
            parent: vec![0],
            own: vec![[Some(100), Some(100), None]],
            alive: vec![true],
        }
    }
}

impl Shares {
    /// The index the next [`add`](Self::add) gives.
    pub fn next_key(&self) -> usize {
        self.parent.len()
    }

    /// Add a VS under `parent`; its index.
    pub fn add(&mut self, parent: usize, own: Own) -> usize {
        self.parent.push(parent);
        self.own.push(own);
        self.alive.push(true);
        self.parent.len() - 1
    }

    pub fn set_parent(&mut self, k: usize, parent: usize) {
        if let Some(p) = self.parent.get_mut(k).filter(|_| k != 0) {
            *p = parent;
        }
    }

    pub fn set_own(&mut self, k: usize, own: Own) {
        if let Some(o) = self.own.get_mut(k).filter(|_| k != 0) {
            *o = own;
        }
    }

    pub fn own_of(&self, k: usize) -> Own {
        self.own.get(k).copied().unwrap_or_default()
    }

    pub fn parent_of(&self, k: usize) -> usize {
        self.parent.get(k).copied().unwrap_or(0)
    }

    pub fn remove(&mut self, k: usize) {
        if let Some(a) = self.alive.get_mut(k).filter(|_| k != 0) {
            *a = false;
        }
    }
}

/// The live VSs (`VS_IOC_LIST`) as a tree, with the index of each id and back.
pub struct Live {
    pub tree: Shares,
    /// The index of each id (the root's: 0).
    pub at: HashMap<u32, usize>,
    /// The id of each index.
    ids: Vec<u32>,
}

impl Live {
    pub fn new(list: &[VsInfo]) -> Self {
        let mut tree = Shares::default();
        let mut at = HashMap::from([(VS_ROOT, 0)]);
        let mut ids = vec![VS_ROOT];
        for i in list.iter().filter(|i| i.id != VS_ROOT) {
            at.insert(i.id, tree.add(0, own_of(i)));
            ids.push(i.id);
        }
        // Parents in a second pass: the list has parents first, but need not.
        for i in list.iter().filter(|i| i.id != VS_ROOT) {
            tree.parent[at[&i.id]] = at.get(&i.parent).copied().unwrap_or(0);
        }
        Self { tree, at, ids }
    }

    /// The index of VS `id` (the root's for an unknown id).
    pub fn key(&self, id: u32) -> usize {
        self.at.get(&id).copied().unwrap_or(0)
    }

    /// The id of index `k`.
    pub fn id(&self, k: usize) -> u32 {
        self.ids.get(k).copied().unwrap_or(VS_ROOT)
    }
}

impl ShareTree for Shares {
    type Key = usize;

    fn root(&self) -> usize {
        0
    }

    fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.alive.len()).filter(|&k| self.alive[k])
    }

    fn parent(&self, k: usize) -> usize {
        self.parent_of(k)
    }

    fn own(&self, k: usize, attr: usize) -> Option<u32> {
        if k == 0 {
            return Some(100);
        }
        self.own.get(k)?.get(attr).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;
    use vs_core::abi::{VS_ATTR_CPU, VS_ATTR_NET};
    use vs_core::budget::{pool_left, pool_of};

    #[test]
    fn the_live_list_as_a_tree() {
        let live = Live::new(&sample());
        let (t, at) = (&live.tree, &live.at);
        let (cpu, net) = (VS_ATTR_CPU as usize, VS_ATTR_NET as usize);
        // web has cpu 50 of root's; www1 keeps web's cpu and has net 20, of root's pool.
        assert_eq!(pool_of(t, at[&65], cpu), at[&64]);
        assert_eq!(pool_of(t, at[&65], net), at[&65]);
        assert_eq!(pool_left(t, 0, cpu), 50);
        assert_eq!(
            pool_left(t, 0, net),
            80,
            "www1 draws its net share from root's pool"
        );
        assert_eq!(pool_left(t, at[&64], cpu), 100);
    }
}
