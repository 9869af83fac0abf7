// SPDX-License-Identifier: GPL-2.0
//! The module's share budget (`vs_core::budget`: the own shares drawn from one pool add up to
//! at most 100) over the trees vsctl works with: the live list, a configuration file, and the
//! states an `apply` goes through. One small tree type, so that all three ask the module's
//! own rule, not a copy of it.

use std::collections::HashMap;

use vs_core::abi::{VsInfo, VS_NR_ATTRS, VS_ROOT};
use vs_core::budget::ShareTree;

/// Own values by `VS_ATTR_*` (`None`: shared with the parent).
pub type Own = [Option<u32>; VS_NR_ATTRS];

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

    /// The live VSs (`VS_IOC_LIST`), and the index of each id.
    pub fn from_live(list: &[VsInfo]) -> (Self, HashMap<u32, usize>) {
        let mut t = Self::default();
        let mut at = HashMap::from([(VS_ROOT, 0)]);
        for i in list.iter().filter(|i| i.id != VS_ROOT) {
            let own = std::array::from_fn(|a| (i.attr[a].detached != 0).then_some(i.attr[a].own));
            at.insert(i.id, t.add(0, own));
        }
        // Parents in a second pass: the list has parents first, but need not.
        for i in list.iter().filter(|i| i.id != VS_ROOT) {
            t.parent[at[&i.id]] = at.get(&i.parent).copied().unwrap_or(0);
        }
        (t, at)
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
        let (t, at) = Shares::from_live(&sample());
        let (cpu, net) = (VS_ATTR_CPU as usize, VS_ATTR_NET as usize);
        // web has cpu 50 of root's; www1 keeps web's cpu and has net 20, of root's pool.
        assert_eq!(pool_of(&t, at[&65], cpu), at[&64]);
        assert_eq!(pool_of(&t, at[&65], net), at[&65]);
        assert_eq!(pool_left(&t, 0, cpu), 50);
        assert_eq!(
            pool_left(&t, 0, net),
            80,
            "www1 draws its net share from root's pool"
        );
        assert_eq!(pool_left(&t, at[&64], cpu), 100);
    }
}
