// SPDX-License-Identifier: GPL-2.0
//! The VS hierarchy: creation, destruction, attribute inheritance and the share budget.
//!
//! A [`Registry`] owns a fixed array of slots handed to it at construction (the module
//! allocates it once at load, the host tests use a `Vec`), so no operation allocates and every
//! one is bounded by [`VS_MAX`] and [`VS_MAX_DEPTH`]: safe to run under a spinlock.
//! Slot 0 is always the root VS 0. Lookup by id is a scan: control-path only; hot paths keep
//! slot indices.
//!
//! Inheritance (the paper's `servctl(DETACH ...)`): each attribute of a VS is either
//! *detached* (the VS has its own value) or *shared* (the VS draws from the pool of its nearest
//! detached ancestor, its *source*). The root has every attribute detached.
//! Shares are percentages of the pool the parent is in; the detached shares drawn from one
//! pool may add up to at most 100 (the rest is the pool's own tasks', see `budget.rs`).
//! `max_procs` has no budget: a task counts against the limit of its source and of every
//! detached ancestor above it, like the pids cgroup.

use crate::abi::{
    VsAttrInfo, VsAttrs, VsInfo, VS_ATTR_MASK_ALL, VS_ATTR_PROCS, VS_GLOBAL_MAX, VS_GLOBAL_MIN,
    VS_ID_AUTO, VS_LOCAL_MAX, VS_LOCAL_MIN, VS_MAX_DEPTH, VS_NAME_LEN, VS_NR_ATTRS,
    VS_PROCS_UNLIMITED, VS_ROOT, VS_SHARE_MAX, VS_SHARE_MIN,
};
use crate::budget;

/// Why an operation on the hierarchy was refused; the module maps each to one errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A malformed name, id out of range, bad value or mask, or an operation the root refuses.
    Invalid,
    /// No VS with that id.
    NotFound,
    /// The name or id is taken.
    Exists,
    /// The VS has children or members, or is the root.
    Busy,
    /// No free slot, the tree is too deep, or a pool's share budget is exhausted.
    NoSpace,
    /// A process-count limit on the VS or an ancestor is reached.
    Again,
}

pub type Result<T> = core::result::Result<T, Error>;

/// A VS as the registry keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: u32,
    /// Slot of the parent (the root's is 0, its own).
    pub parent: u32,
    pub name: [u8; VS_NAME_LEN],
    /// Own values, indexed by `VS_ATTR_*`; meaningful where `detached` has the bit.
    pub own: [u32; VS_NR_ATTRS],
    /// Bit `1 << VS_ATTR_*` set: the attribute is detached.
    pub detached: u32,
    pub nr_children: u32,
    /// Tasks bound to this VS; a VS with members cannot be destroyed.
    pub nr_members: u32,
    /// Forks in progress that will add a task to this VS (see [`Registry::reserve`]).
    pub nr_reserved: u32,
    /// Members and reservations of this VS and all its descendants: what `max_procs` limits.
    pub subtree: u32,
    /// Pipes and messages that carry this VS's tag (`tags.rs`).
    pub nr_tags: u32,
    pub depth: u32,
}

pub type Slot = Option<Node>;

/// The name rule: 1..=31 bytes of `[A-Za-z0-9_.-]` starting with a letter or `_`, so that a
/// name is never mistaken for a VSID.
pub fn is_valid_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(&b) if b.is_ascii_alphabetic() || b == b'_')
        && name.len() < VS_NAME_LEN
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Check a user-supplied name buffer: a name by [`is_valid_name`], NUL-padded with nothing
/// after the NUL.
pub fn validate_name(buf: &[u8; VS_NAME_LEN]) -> Result<()> {
    let len = buf.iter().position(|&b| b == 0).ok_or(Error::Invalid)?;
    if buf[len..].iter().all(|&b| b == 0) && is_valid_name(&buf[..len]) {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

/// Whether `id` may be given explicitly to a new VS.
pub fn id_in_range(id: u32) -> bool {
    (VS_GLOBAL_MIN..=VS_GLOBAL_MAX).contains(&id) || (VS_LOCAL_MIN..=VS_LOCAL_MAX).contains(&id)
}

fn validate_value(attr: usize, value: u32) -> Result<()> {
    if attr == VS_ATTR_PROCS as usize || (VS_SHARE_MIN..=VS_SHARE_MAX).contains(&value) {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

fn is_share(attr: usize) -> bool {
    attr != VS_ATTR_PROCS as usize
}

/// How a `VS_IOC_SET` request contradicts itself (the module refuses it: `Invalid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetConflict {
    /// Attribute `VS_ATTR_*` is attached (back to inheritance) and given a value.
    AttachAndValue(u32),
    /// Attribute `VS_ATTR_*` is attached and detached.
    AttachAndDetach(u32),
}

/// The first attribute, in `VS_ATTR_*` order, that a set request attaches and also sets or
/// detaches.
pub fn set_conflict(attach_mask: u32, detach_mask: u32, values_mask: u32) -> Option<SetConflict> {
    (0..VS_NR_ATTRS as u32).find_map(|attr| {
        let bit = 1 << attr;
        if attach_mask & bit == 0 {
            None
        } else if values_mask & bit != 0 {
            Some(SetConflict::AttachAndValue(attr))
        } else if detach_mask & bit != 0 {
            Some(SetConflict::AttachAndDetach(attr))
        } else {
            None
        }
    })
}

/// The own values and detached mask a VS has after a set request: attach, then detach (with a
/// copy of the value in force, `effective(attr)`), then set the values.
pub fn apply_set(
    own: [u32; VS_NR_ATTRS],
    detached: u32,
    effective: impl Fn(usize) -> u32,
    attach_mask: u32,
    detach_mask: u32,
    values: &VsAttrs,
) -> ([u32; VS_NR_ATTRS], u32) {
    let mut own = own;
    for (attr, value) in own.iter_mut().enumerate() {
        let bit = 1 << attr;
        if detach_mask & bit != 0 && detached & bit == 0 {
            *value = effective(attr);
        }
        if values.mask & bit != 0 {
            *value = values.get(attr as u32);
        }
    }
    (own, (detached & !attach_mask) | detach_mask | values.mask)
}

/// The share budget: what is left of a pool's 100 for one attribute when the VSs drawing from
/// it hold `siblings` (their own values of that attribute).
pub fn budget_left(siblings: impl Iterator<Item = u32>) -> u32 {
    VS_SHARE_MAX.saturating_sub(siblings.fold(0, u32::saturating_add))
}

/// The first share attribute whose own value (detached in `detached`) is more than what is
/// left of the budget it draws from (`left(attr)`, see [`budget_left`]).
pub fn over_budget(
    own: &[u32; VS_NR_ATTRS],
    detached: u32,
    left: impl Fn(usize) -> u32,
) -> Option<usize> {
    (0..VS_NR_ATTRS)
        .find(|&attr| is_share(attr) && detached & (1 << attr) != 0 && own[attr] > left(attr))
}

/// Why a new VS has no room (`NoSpace`), in the order [`Registry::create`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRoom {
    /// The parent is at [`VS_MAX_DEPTH`].
    Depth,
    /// `capacity` VSs exist.
    Full,
    /// What is left of the pool the parent is in, for share attribute `VS_ATTR_*`, is too
    /// small for the new VS's own.
    Budget(u32),
}

/// Whether a VS with `attrs` fits under a parent at `parent_depth` while `count` of
/// `capacity` VSs exist and the pool the parent is in has `left(attr)` of each share.
pub fn create_room(
    parent_depth: u32,
    count: usize,
    capacity: usize,
    attrs: &VsAttrs,
    left: impl Fn(usize) -> u32,
) -> core::result::Result<(), NoRoom> {
    if parent_depth >= VS_MAX_DEPTH {
        return Err(NoRoom::Depth);
    }
    if count >= capacity {
        return Err(NoRoom::Full);
    }
    let own = [attrs.cpu_share, attrs.net_share, attrs.max_procs];
    match over_budget(&own, attrs.mask, left) {
        Some(attr) => Err(NoRoom::Budget(attr as u32)),
        None => Ok(()),
    }
}

/// The VS tree over caller-provided slot storage.
pub struct Registry<S> {
    slots: S,
    count: u32,
    /// One past the highest slot in use: loops over VSs stop here. Free slots are taken
    /// lowest first, so VSs stay packed at the front.
    high: usize,
    /// Where the search for the next auto-assigned local id starts.
    next_id: u32,
    /// Bumped by every change to the tree's shape or attributes (create, destroy, set), so
    /// that what is derived from them can be cached until the next change.
    gen: u64,
    /// Reservations outstanding in all VSs (the sum of `nr_reserved`): forks allowed whose
    /// child has no membership entry yet.
    reserved: u32,
}

impl<S: core::ops::DerefMut<Target = [Slot]>> Registry<S> {
    /// Take `slots` (at least one; every element is overwritten) and create the root.
    pub fn new(mut slots: S) -> Result<Self> {
        if slots.is_empty() {
            return Err(Error::NoSpace);
        }
        for s in slots.iter_mut() {
            *s = None;
        }
        let mut name = [0u8; VS_NAME_LEN];
        name[..4].copy_from_slice(b"root");
        slots[0] = Some(Node {
            id: VS_ROOT,
            parent: 0,
            name,
            own: [VS_SHARE_MAX, VS_SHARE_MAX, VS_PROCS_UNLIMITED],
            detached: VS_ATTR_MASK_ALL,
            nr_children: 0,
            nr_members: 0,
            nr_reserved: 0,
            subtree: 0,
            nr_tags: 0,
            depth: 0,
        });
        Ok(Self {
            slots,
            count: 1,
            high: 1,
            next_id: VS_LOCAL_MIN,
            gen: 0,
            reserved: 0,
        })
    }

    /// Reservations outstanding in all VSs: each may still take a membership entry.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// Number of VSs, root included.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// Always false: the root exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Changes whenever a VS is created or destroyed or its attributes are set.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// One past the highest slot in use: every VS is in `0..high()`.
    pub fn high(&self) -> usize {
        self.high
    }

    /// The slot holding VS `id`.
    pub fn find(&self, id: u32) -> Option<usize> {
        self.slots[..self.high]
            .iter()
            .position(|s| matches!(s, Some(n) if n.id == id))
    }

    /// The slot holding the VS named `name` (the bytes before the NUL).
    pub fn find_name(&self, name: &[u8]) -> Option<usize> {
        self.slots[..self.high]
            .iter()
            .position(|s| matches!(s, Some(n) if crate::abi::name_bytes(&n.name) == name))
    }

    /// The VS in `slot`, if any.
    pub fn node(&self, slot: usize) -> Option<&Node> {
        self.slots.get(slot).and_then(|s| s.as_ref())
    }

    /// Count one tag more (`up`) or one fewer for the VS in `slot` (nothing if it is gone).
    pub fn count_tag(&mut self, slot: usize, up: bool) {
        if let Ok(n) = self.node_mut(slot) {
            n.nr_tags = if up {
                n.nr_tags.saturating_add(1)
            } else {
                n.nr_tags.saturating_sub(1)
            };
        }
    }

    fn node_mut(&mut self, slot: usize) -> Result<&mut Node> {
        self.slots
            .get_mut(slot)
            .and_then(|s| s.as_mut())
            .ok_or(Error::NotFound)
    }

    fn get(&self, slot: usize) -> Result<&Node> {
        self.node(slot).ok_or(Error::NotFound)
    }

    fn id_taken(&self, id: u32) -> bool {
        self.find(id).is_some()
    }

    fn alloc_id(&mut self) -> Result<u32> {
        // At most VS_MAX ids are taken, so this finds one within VS_MAX + 1 steps.
        let mut id = self.next_id;
        for _ in 0..=self.slots.len() {
            if !(VS_LOCAL_MIN..=VS_LOCAL_MAX).contains(&id) {
                id = VS_LOCAL_MIN;
            }
            if !self.id_taken(id) {
                self.next_id = id.wrapping_add(1);
                return Ok(id);
            }
            id = id.wrapping_add(1);
        }
        Err(Error::NoSpace)
    }

    /// Share of `attr` left in the pool the children of `parent` draw from (see `budget.rs`).
    pub fn share_left(&self, parent: usize, attr: usize) -> u32 {
        budget::pool_left(self, budget::pool_of(self, parent, attr), attr)
    }

    /// Create a VS named `name` under `parent_id`, with id `id` (or [`VS_ID_AUTO`]); the
    /// attributes in `attrs.mask` are detached with the given values. Returns the new id.
    pub fn create(
        &mut self,
        name: &[u8; VS_NAME_LEN],
        parent_id: u32,
        id: u32,
        attrs: &VsAttrs,
    ) -> Result<u32> {
        validate_name(name)?;
        if attrs.mask & !VS_ATTR_MASK_ALL != 0 || (id != VS_ID_AUTO && !id_in_range(id)) {
            return Err(Error::Invalid);
        }
        let mut own = [0u32; VS_NR_ATTRS];
        for (attr, v) in own.iter_mut().enumerate() {
            if attrs.mask & (1 << attr) != 0 {
                *v = attrs.get(attr as u32);
                validate_value(attr, *v)?;
            }
        }
        let parent = self.find(parent_id).ok_or(Error::NotFound)?;
        if self.find_name(crate::abi::name_bytes(name)).is_some()
            || (id != VS_ID_AUTO && self.id_taken(id))
        {
            return Err(Error::Exists);
        }
        let depth = self.get(parent)?.depth;
        create_room(
            depth,
            self.count as usize,
            self.slots.len(),
            attrs,
            |attr| self.share_left(parent, attr),
        )
        .map_err(|_| Error::NoSpace)?;
        let free = self
            .slots
            .iter()
            .position(|s| s.is_none())
            .ok_or(Error::NoSpace)?;
        let id = if id == VS_ID_AUTO {
            self.alloc_id()?
        } else {
            id
        };
        self.slots[free] = Some(Node {
            id,
            parent: parent as u32,
            name: *name,
            own,
            detached: attrs.mask,
            nr_children: 0,
            nr_members: 0,
            nr_reserved: 0,
            subtree: 0,
            nr_tags: 0,
            depth: depth + 1,
        });
        self.node_mut(parent)?.nr_children += 1;
        self.count += 1;
        self.high = self.high.max(free + 1);
        self.gen = self.gen.wrapping_add(1);
        Ok(id)
    }

    /// Destroy VS `id`: refused for the root and for a VS with children or members.
    pub fn destroy(&mut self, id: u32) -> Result<()> {
        let slot = self.find(id).ok_or(Error::NotFound)?;
        let n = *self.get(slot)?;
        if slot == 0 || n.nr_children != 0 || n.subtree != 0 {
            return Err(Error::Busy);
        }
        self.slots[slot] = None;
        let parent = self.node_mut(n.parent as usize)?;
        parent.nr_children = parent.nr_children.saturating_sub(1);
        self.count -= 1;
        while self.high > 1 && self.slots[self.high - 1].is_none() {
            self.high -= 1;
        }
        self.gen = self.gen.wrapping_add(1);
        Ok(())
    }

    /// Attach `attach_mask`, detach `detach_mask` (copying the inherited value), then set the
    /// values in `values.mask`. Validated as a whole before anything changes.
    pub fn set(
        &mut self,
        id: u32,
        attach_mask: u32,
        detach_mask: u32,
        values: &VsAttrs,
    ) -> Result<()> {
        let all = attach_mask | detach_mask | values.mask;
        if all & !VS_ATTR_MASK_ALL != 0
            || set_conflict(attach_mask, detach_mask, values.mask).is_some()
        {
            return Err(Error::Invalid);
        }
        let slot = self.find(id).ok_or(Error::NotFound)?;
        let n = *self.get(slot)?;
        for attr in (0..VS_NR_ATTRS).filter(|&a| values.mask & (1 << a) != 0) {
            validate_value(attr, values.get(attr as u32))?;
        }
        let (own, detached) = apply_set(
            n.own,
            n.detached,
            |attr| self.effective(slot, attr).0,
            attach_mask,
            detach_mask,
            values,
        );
        if slot == 0 {
            // The root always has every attribute, the whole machine and no process limit
            // (that would be a limit on the machine: the kernel's own job).
            if attach_mask != 0 || own != n.own {
                return Err(Error::Invalid);
            }
        } else {
            let edit = budget::Edit {
                tree: self,
                key: slot,
                parent: n.parent as usize,
                own: core::array::from_fn(|a| (detached & 1 << a != 0).then_some(own[a])),
                added: false,
            };
            if budget::overflow(&edit, slot).is_some() {
                return Err(Error::NoSpace);
            }
        }
        let node = self.node_mut(slot)?;
        node.own = own;
        node.detached = detached;
        self.gen = self.gen.wrapping_add(1);
        Ok(())
    }

    /// The value of `attr` in force for the VS in `slot`, and the slot it comes from.
    pub fn effective(&self, slot: usize, attr: usize) -> (u32, usize) {
        // The walk up to the nearest detached VS is the share budget's pool (any attribute:
        // the root is detached for everything); a missing slot ends at the root.
        let source = budget::pool_of(self, slot, attr);
        let value = self
            .node(source)
            .and_then(|n| n.own.get(attr).copied())
            .unwrap_or(0);
        (value, source)
    }

    /// The machine fraction (parts per million) of the pool `slot` draws `attr` from.
    pub fn machine_ppm(&self, slot: usize, attr: usize) -> u32 {
        let mut ppm: u64 = 1_000_000;
        let mut s = slot;
        for _ in 0..=VS_MAX_DEPTH {
            let (value, source) = self.effective(s, attr);
            if source == 0 {
                break;
            }
            ppm = ppm * u64::from(value) / u64::from(VS_SHARE_MAX);
            s = self.node(source).map_or(0, |n| n.parent as usize);
        }
        ppm as u32
    }

    /// Everything [`VsInfo`] holds but the statistics, for the VS in `slot`.
    pub fn info(&self, slot: usize) -> Result<VsInfo> {
        let n = self.get(slot)?;
        let mut info = VsInfo {
            id: n.id,
            parent: self.get(n.parent as usize)?.id,
            name: n.name,
            nr_children: n.nr_children,
            depth: n.depth,
            ..VsInfo::default()
        };
        for (attr, a) in info.attr.iter_mut().enumerate() {
            let (effective, source) = self.effective(slot, attr);
            *a = VsAttrInfo {
                own: if n.detached & (1 << attr) != 0 {
                    n.own[attr]
                } else {
                    0
                },
                detached: u32::from(n.detached & (1 << attr) != 0),
                effective,
                source: self.get(source)?.id,
                machine_ppm: if is_share(attr) {
                    self.machine_ppm(slot, attr)
                } else {
                    0
                },
                _pad: 0,
            };
        }
        Ok(info)
    }

    /// The depth of the deepest VS: loops by depth stop there, not at [`VS_MAX_DEPTH`]
    /// (one pass over the slots instead of 33 on the usual flat hierarchy).
    pub fn max_depth(&self) -> u32 {
        self.slots[..self.high]
            .iter()
            .flatten()
            .map(|n| n.depth)
            .max()
            .unwrap_or(0)
    }

    /// Slots in use, parents before children (by depth, then slot).
    pub fn slots_by_depth(&self) -> impl Iterator<Item = usize> + '_ {
        (0..=self.max_depth()).flat_map(move |d| {
            self.slots[..self.high]
                .iter()
                .enumerate()
                .filter(move |(_, s)| matches!(s, Some(n) if n.depth == d))
                .map(|(i, _)| i)
        })
    }

    /// Apply `delta` to the subtree counts of `slot` and all its ancestors.
    fn add_subtree(&mut self, slot: usize, delta: i32) -> Result<()> {
        let mut s = slot;
        for _ in 0..=VS_MAX_DEPTH {
            let n = self.node_mut(s)?;
            n.subtree = n.subtree.checked_add_signed(delta).ok_or(Error::Invalid)?;
            if s == 0 {
                return Ok(());
            }
            s = n.parent as usize;
        }
        Ok(())
    }

    /// Whether some VS has a process-count limit of its own (the fork probes are armed).
    pub fn any_limit(&self) -> bool {
        let bit = 1 << VS_ATTR_PROCS;
        self.slots[..self.high]
            .iter()
            .flatten()
            .any(|n| n.detached & bit != 0 && n.own[VS_ATTR_PROCS as usize] != VS_PROCS_UNLIMITED)
    }

    /// Whether one more task fits every process-count limit that applies to `slot`: its own
    /// or its source's, and those of every detached ancestor above.
    pub fn has_room(&self, slot: usize) -> bool {
        let bit = 1 << VS_ATTR_PROCS;
        let mut s = slot;
        for _ in 0..=VS_MAX_DEPTH {
            let Some(n) = self.node(s) else { return false };
            let limit = n.own[VS_ATTR_PROCS as usize];
            if n.detached & bit != 0 && limit != VS_PROCS_UNLIMITED && n.subtree >= limit {
                return false;
            }
            if s == 0 {
                return true;
            }
            s = n.parent as usize;
        }
        true
    }

    /// Reserve room for a task about to be forked into `slot`; `Again` at a limit. Either
    /// [`commit`](Self::commit) (the fork succeeded) or [`unreserve`](Self::unreserve) follows.
    pub fn reserve(&mut self, slot: usize) -> Result<()> {
        if !self.has_room(slot) {
            return Err(Error::Again);
        }
        self.add_subtree(slot, 1)?;
        self.node_mut(slot)?.nr_reserved += 1;
        self.reserved += 1;
        Ok(())
    }

    /// Give back a reservation of `slot` (the fork failed).
    pub fn unreserve(&mut self, slot: usize) -> Result<()> {
        let n = self.node_mut(slot)?;
        n.nr_reserved = n.nr_reserved.checked_sub(1).ok_or(Error::Invalid)?;
        self.reserved = self.reserved.saturating_sub(1);
        self.add_subtree(slot, -1)
    }

    /// Turn a reservation of `slot` into a member.
    pub fn commit(&mut self, slot: usize) -> Result<()> {
        let n = self.node_mut(slot)?;
        n.nr_reserved = n.nr_reserved.checked_sub(1).ok_or(Error::Invalid)?;
        n.nr_members += 1;
        self.reserved = self.reserved.saturating_sub(1);
        Ok(())
    }

    /// Add a member to `slot` without a limit check (a gate moved a running task here).
    pub fn join(&mut self, slot: usize) -> Result<()> {
        self.node_mut(slot)?.nr_members += 1;
        self.add_subtree(slot, 1)
    }

    /// Remove a member from `slot`.
    pub fn leave(&mut self, slot: usize) -> Result<()> {
        let n = self.node_mut(slot)?;
        n.nr_members = n.nr_members.checked_sub(1).ok_or(Error::Invalid)?;
        self.add_subtree(slot, -1)
    }
}

/// The registry as the share budget sees it: VSs by slot.
impl<S: core::ops::DerefMut<Target = [Slot]>> budget::ShareTree for Registry<S> {
    type Key = usize;

    fn root(&self) -> usize {
        0
    }

    fn others(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.high).filter(|&s| self.slots[s].is_some())
    }

    fn parent(&self, slot: usize) -> usize {
        self.node(slot).map_or(0, |n| n.parent as usize)
    }

    fn own(&self, slot: usize, attr: usize) -> Option<u32> {
        let n = self.node(slot)?;
        (n.detached & 1 << attr != 0)
            .then(|| n.own.get(attr).copied())
            .flatten()
    }
}
