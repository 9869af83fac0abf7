// SPDX-License-Identifier: GPL-2.0
//! Object tags: which VS wrote a pipe or a message last, and how the table of them is shared.
//!
//! A write tags the object with the writer's VS; a `pipe-read` or `msg-recv` rule reads the
//! tag as the requester. The table is bounded and shared by every VS, so what one VS may take
//! of it is bounded too ([`may_tag`]):
//!
//! - **A quota**: at most a quarter of the table per VS ([`Vs::tag_quota`]);
//! - **a floor**: every VS may hold [`Vs::tag_floor`] tags (the table over the most VSs there
//!   can be) whatever the others do. The table keeps room for the floor of every VS that has
//!   not taken it (the **reserve**, kept as tags come and go): a VS at or above its floor may
//!   take a tag only while more is free than the reserve. Without it, VSs that start writing
//!   one after another, each taking what the quota lets it, fill the table after four. A VS
//!   created with the table full gets the first positions that free up: the others, above
//!   their floor, cannot take them.
//!
//! A write refused a tag leaves the object untagged (its reader is classified as if an
//! unclassified task wrote, never by the tag of an earlier writer) and is counted in the VS's
//! `tags_refused`. Refused once under the lock, a VS is refused on that CPU without it
//! (`stay_cache`, [`TAG_WRITE`]) while the refusal holds: its entry is forgotten when the VS
//! drops below its quota or its floor, and every such entry when the table's slack (free
//! positions beyond the reserve) grows while some refusal was for lack of it.

use crate::classify::{count_stays, Store, Vs};
use crate::stay_cache::{self, Counter, Key, TAG_WRITE};
use crate::unlocked::object_key;

/// Whether a VS that holds `held` object tags may take one more, with `free` positions of the
/// table left of which `reserve` are kept for VSs below their `floor` (see the module
/// comment): below its `quota`; and below its floor while anything is free, else only from
/// beyond the reserve.
pub fn may_tag(held: u32, quota: u32, floor: u32, free: usize, reserve: usize) -> bool {
    held < quota
        && if held < floor {
            free > 0
        } else {
            free > reserve
        }
}

/// The stay cache's key for the refused tag writes of the VS in `slot`.
fn refusal_key(slot: usize) -> Key {
    Key {
        event: TAG_WRITE,
        cur: slot,
        req: 0,
    }
}

impl<S: Store> Vs<S> {
    /// Most object tags one VS may hold: a quarter of the table, so that a tenant who writes
    /// to many pipes cannot take the tags of every other VS's pipes away.
    pub fn tag_quota(&self) -> u32 {
        (self.objects.limit() / 4) as u32
    }

    /// Object tags every VS may hold whatever the others do: the table over the most VSs
    /// there can be (7 in the kernel).
    pub fn tag_floor(&self) -> u32 {
        (self.objects.limit() / self.reg.capacity().max(1)) as u32
    }

    /// Positions of the tag table kept for VSs below their floor: the sum of what each lacks.
    pub fn tag_reserve(&self) -> usize {
        self.tag_reserve
    }

    /// Free positions beyond the reserve (negative: the reserve is not all free, after VSs
    /// were created with the table full).
    fn tag_slack(&self) -> isize {
        let free = self.objects.limit().saturating_sub(self.objects.len());
        free as isize - self.tag_reserve as isize
    }

    /// What a VS holding `held` tags lacks of its floor.
    fn lacks(&self, held: u32) -> usize {
        self.tag_floor().saturating_sub(held) as usize
    }

    /// A VS was created: the reserve keeps its floor.
    pub(crate) fn tags_created(&mut self) {
        self.tag_reserve += self.lacks(0);
    }

    /// The VS in `slot`, which held `held` tags, is destroyed and its tags are gone: its part
    /// of the reserve goes, and what it said of its refusals (counted without the lock) with
    /// it. A VS that takes the slot starts with room. (In the kernel the locked section's end
    /// also empties the stay caches: the tree changed.)
    pub(crate) fn tags_destroyed(&mut self, slot: usize, held: u32) {
        // Saturating here and below: the counts agree (tags_props), but a kernel must not
        // panic if they ever did not.
        self.tag_reserve = self.tag_reserve.saturating_sub(self.lacks(held));
        stay_cache::forget(&self.stays, refusal_key(slot), |_, _| {});
        self.room_back();
    }

    /// Remember that the object at `addr` (a pipe, a message) carries the VS of `pid`, which
    /// writes it on CPU `cpu` (the caller's), if [`may_tag`] lets it; else leave the object
    /// untagged, count the refusal, and if it will hold for the next writes, remember it in
    /// `cpu`'s stay cache so that they are refused there without the lock
    /// (`unlocked::Unlocked::tag_write`).
    pub fn tag_object(&mut self, addr: u64, pid: u64, cpu: usize) {
        let key = object_key(addr);
        let slot = self.slot_of(pid);
        let old = self.objects.get(key).map(|e| usize::from(e.slot));
        if old == Some(slot) {
            return;
        }
        // The earlier writer's tag goes first: the write replaces it or leaves none.
        if let Some(old) = old {
            self.objects.remove(key);
            self.drop_tag(old);
        }
        if slot == 0 {
            return;
        }
        let (quota, floor) = (self.tag_quota(), self.tag_floor());
        // A member's slot always holds a VS; be safe if it does not.
        let Some(held) = self.reg.node(slot).map(|n| n.nr_tags) else {
            return;
        };
        let free = self.objects.limit().saturating_sub(self.objects.len());
        if may_tag(held, quota, floor, free, self.tag_reserve) && self.objects.entry(key).is_ok() {
            self.objects.set_slot(key, slot as u16);
            self.reg.count_tag(slot, true);
            self.tag_reserve = self.tag_reserve.saturating_sub(usize::from(held < floor));
            return;
        }
        if let Some(c) = self.counters(slot) {
            c.tags_refused += 1;
        }
        // Refusals that hold until this VS drops a tag, or until the slack grows: the next
        // ones need no lock. (A VS below its floor is refused only with the table full.)
        let for_room = held < quota && held >= floor;
        if held >= quota || for_room {
            self.room_refused |= for_room;
            let (rules, stats) = (&mut self.rules, &mut self.stats);
            stay_cache::fill(
                &self.stays,
                cpu,
                refusal_key(slot),
                Counter::TagsRefused(slot),
                |c, n| count_stays(rules, stats, c, n),
            );
        }
    }

    /// The VS in `slot` holds one tag less (its object is freed, or written by another VS).
    fn drop_tag(&mut self, slot: usize) {
        self.reg.count_tag(slot, false);
        let Some(held) = self.reg.node(slot).map(|n| n.nr_tags) else {
            return;
        };
        let floor = self.tag_floor();
        self.tag_reserve += usize::from(held < floor);
        // Below its quota or its floor now, the VS may take a tag again.
        if held + 1 == self.tag_quota() || held + 1 == floor {
            self.forget_refusals(Some(slot));
        }
        self.room_back();
    }

    /// The slack may have grown: if some CPU refuses a VS for lack of room, it must not
    /// any more.
    fn room_back(&mut self) {
        if self.room_refused && self.tag_slack() > 0 {
            self.room_refused = false;
            self.forget_refusals(None);
        }
    }

    /// Forget the refusals the CPUs remember for the VS in `slot` (`None`: for every VS),
    /// their counts into `tags_refused`.
    fn forget_refusals(&mut self, slot: Option<usize>) {
        let (rules, stats) = (&mut self.rules, &mut self.stats);
        let count = |c, n| count_stays(rules, stats, c, n);
        match slot {
            Some(slot) => stay_cache::forget(&self.stays, refusal_key(slot), count),
            None => stay_cache::forget_event(&self.stays, TAG_WRITE, count),
        }
    }

    /// The VS slot the object at `addr` was tagged with (root if untagged).
    pub fn object_slot(&self, addr: u64) -> usize {
        self.objects
            .get(object_key(addr))
            .map_or(0, |e| usize::from(e.slot))
    }

    /// The object at `addr` is freed.
    pub fn untag_object(&mut self, addr: u64) {
        if let Some(e) = self.objects.remove(object_key(addr)) {
            self.drop_tag(usize::from(e.slot));
        }
    }
}
