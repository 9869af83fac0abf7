// SPDX-License-Identifier: GPL-2.0
//! Object tags (`tags.rs`) against a model written from the rules alone: after any mix of
//! writes (each through the unlocked path first, as the kernel does, on one of two CPUs), frees
//! and VSs destroyed and created again, every object carries the tag the rules give it, every
//! refusal is counted once, and the reserve is what the VSs below their floor lack. Six VSs
//! (and a seventh that comes and goes, maybe with the table full) share a table of 14 tags
//! with a quota of 3 and a floor of 1, or of 28 with a quota of 7 and a floor of 3 (where
//! "below the floor" is not "no tag"), so the quota, the floor and a full table are all
//! reached.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use vs_core::abi::*;
use vs_core::charge_cache::SLOTS_PER_CPU;
use vs_core::classify::{Store, Tables, Vs};
use vs_core::members::Entry;
use vs_core::rules::{IndexEntry, Rule};
use vs_core::seq::SeqCount;
use vs_core::stay_cache;
use vs_core::unlocked::object_key;

struct VecStore;
impl Store for VecStore {
    type Table<T> = Vec<T>;
}

const SLOTS: usize = 8;
/// VSs 0..VSS-1 are always there (destroyed and created again at once); VS `VSS - 1` comes
/// and goes.
const VSS: usize = 7;
/// Objects written in the small table (14 tags) and in the larger one (28).
const OBJECTS: usize = 20;
const OBJECTS_LARGE: usize = 40;

fn atomics(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// A `Vs` whose tag table has `positions` positions (7/8 of them usable).
fn new_vs_with(positions: usize) -> Vs<VecStore> {
    Vs::new(Tables {
        slots: vec![None; SLOTS],
        members: vec![Entry::default(); 64],
        member_shadow: atomics(64),
        gate_view: atomics(SLOTS),
        member_blocks: atomics(8),
        decisions: vec![Default::default(); 8],
        objects: vec![Entry::default(); positions],
        object_shadow: atomics(positions),
        rules: vec![Rule::BLANK; 8],
        index: vec![IndexEntry::default(); 8],
        stats: vec![VsStats::default(); SLOTS],
        ctl: vec![Default::default(); SLOTS],
        scratch: vec![Default::default(); SLOTS],
        charges: atomics(2 * SLOTS_PER_CPU),
        stays: atomics(2 * stay_cache::WORDS_PER_CPU),
    })
    .unwrap()
}

/// 14 tags: a quota of 3, a floor of 1.
fn new_vs() -> Vs<VecStore> {
    new_vs_with(16)
}

fn name(i: usize) -> [u8; VS_NAME_LEN] {
    let mut n = [0u8; VS_NAME_LEN];
    n[0] = b'a' + i as u8;
    n
}

/// Task `100 + i` is VS `i`'s; task 50 is in the root.
fn task(i: usize) -> u64 {
    if i == VSS {
        50
    } else {
        100 + i as u64
    }
}

fn addr(o: usize) -> u64 {
    0xffff_8880_0000_0000 + 0x40 * o as u64
}

#[derive(Clone, Debug)]
enum Op {
    Write {
        who: usize,
        obj: usize,
        cpu: usize,
    },
    Free(usize),
    /// Destroy VS `i` (its tags go) and create it again in the same slot.
    Recreate(usize),
    /// Create the last VS if it is not there, else destroy it.
    Toggle,
}

fn op(objects: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..=VSS, 0..objects, 0..2usize).prop_map(|(who, obj, cpu)| Op::Write { who, obj, cpu }),
        3 => (0..objects).prop_map(Op::Free),
        1 => (0..VSS - 1).prop_map(Op::Recreate),
        1 => Just(Op::Toggle),
    ]
}

/// The model: object -> slot, and refusals per slot.
struct Model {
    tags: BTreeMap<usize, usize>,
    refused: [u64; SLOTS],
    limit: usize,
    quota: usize,
    floor: usize,
}

impl Model {
    fn held(&self, slot: usize) -> usize {
        self.tags.values().filter(|&&s| s == slot).count()
    }

    /// What the VSs in `slots` (those that exist) lack of their floor.
    fn reserve(&self, slots: &[Option<usize>]) -> usize {
        slots
            .iter()
            .flatten()
            .map(|&s| self.floor.saturating_sub(self.held(s)))
            .sum()
    }

    /// A write of `obj` by a task in `slot` (0: the root).
    fn write(&mut self, slots: &[Option<usize>], slot: usize, obj: usize) {
        if self.tags.get(&obj) == Some(&slot) {
            return;
        }
        self.tags.remove(&obj);
        if slot == 0 {
            return;
        }
        let held = self.held(slot);
        let free = self.limit - self.tags.len();
        let may = held < self.quota
            && if held < self.floor {
                free > 0
            } else {
                free > self.reserve(slots)
            };
        if may {
            self.tags.insert(obj, slot);
        } else {
            self.refused[slot] += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn tags_follow_the_rules(ops in prop::collection::vec(op(OBJECTS), 1..300)) {
        check(ops, new_vs(), OBJECTS, (14, 3, 1))?;
    }

    #[test]
    fn tags_follow_the_rules_with_a_floor_of_three(
        ops in prop::collection::vec(op(OBJECTS_LARGE), 1..500),
    ) {
        check(ops, new_vs_with(32), OBJECTS_LARGE, (28, 7, 3))?;
    }
}

/// Run `ops` on `vs` (whose table has the limit, quota and floor `expect`) over `objects`
/// objects, checking it against the model after each.
fn check(
    ops: Vec<Op>,
    mut vs: Vs<VecStore>,
    objects: usize,
    expect: (usize, usize, usize),
) -> Result<(), TestCaseError> {
    {
        let seq = SeqCount::new();
        // Each VS's id and slot, `None` while it does not exist.
        let mut ids = [0; VSS];
        let mut slots: Vec<Option<usize>> = vec![None; VSS];
        let create = |vs: &mut Vs<VecStore>, i: usize| {
            let id = vs
                .create(&name(i), 0, VS_ID_AUTO, &VsAttrs::default())
                .unwrap();
            let slot = vs.slot_of_id(id).unwrap();
            vs.add_process(task(i), slot).unwrap();
            (id, slot)
        };
        for i in 0..VSS - 1 {
            let (id, slot) = create(&mut vs, i);
            ids[i] = id;
            slots[i] = Some(slot);
        }
        let mut m = Model {
            tags: BTreeMap::new(),
            refused: [0; SLOTS],
            limit: vs.objects.limit(),
            quota: vs.tag_quota() as usize,
            floor: vs.tag_floor() as usize,
        };
        prop_assert_eq!((m.limit, m.quota, m.floor), expect);
        for op in ops {
            // What the kernel does around every locked section (nothing here changes the
            // tree's generation but a recreate).
            seq.write_begin();
            vs.publish_gate_view();
            seq.write_end();
            match op {
                Op::Write { who, obj, cpu } => {
                    // A task of a VS that is not there is in the root.
                    let slot = slots.get(who).copied().flatten().unwrap_or(0);
                    m.write(&slots, slot, obj);
                    // As the kernel: the unlocked write, or else the locked one.
                    if !vs
                        .unlocked(&seq)
                        .tag_write(object_key(addr(obj)), task(who), cpu)
                    {
                        vs.tag_object(addr(obj), task(who), cpu);
                    }
                }
                Op::Free(obj) => {
                    m.tags.remove(&obj);
                    vs.untag_object(addr(obj));
                }
                Op::Recreate(i) => {
                    let slot = slots[i].unwrap();
                    vs.add_process(task(i), 0).unwrap();
                    seq.write_begin();
                    vs.destroy(ids[i]).unwrap();
                    vs.publish_gate_view();
                    seq.write_end();
                    let (id, again) = create(&mut vs, i);
                    prop_assert_eq!(again, slot, "slot reused");
                    ids[i] = id;
                    m.tags.retain(|_, s| *s != slot);
                    m.refused[slot] = 0;
                }
                Op::Toggle => {
                    let i = VSS - 1;
                    match slots[i] {
                        Some(slot) => {
                            vs.add_process(task(i), 0).unwrap();
                            vs.destroy(ids[i]).unwrap();
                            m.tags.retain(|_, s| *s != slot);
                            slots[i] = None;
                        }
                        None => {
                            let (id, slot) = create(&mut vs, i);
                            ids[i] = id;
                            slots[i] = Some(slot);
                            m.refused[slot] = 0;
                        }
                    }
                }
            }
            vs.fold_stays();
            for o in 0..objects {
                prop_assert_eq!(
                    vs.object_slot(addr(o)),
                    m.tags.get(&o).copied().unwrap_or(0),
                    "object {}",
                    o
                );
            }
            for &s in slots.iter().flatten() {
                prop_assert_eq!(
                    vs.reg.node(s).unwrap().nr_tags as usize,
                    m.held(s),
                    "tags of slot {}",
                    s
                );
                prop_assert_eq!(
                    vs.stats(s).tags_refused,
                    m.refused[s],
                    "refusals of slot {}",
                    s
                );
            }
            prop_assert_eq!(vs.tag_reserve(), m.reserve(&slots), "reserve");
            prop_assert!(vs.objects.shadow_agrees());
        }
    }
    Ok(())
}

/// The six VSs, their tasks in them: (vs, slots).
fn six() -> (Vs<VecStore>, Vec<usize>) {
    six_in(new_vs())
}

/// [`six`] in `vs`.
fn six_in(mut vs: Vs<VecStore>) -> (Vs<VecStore>, Vec<usize>) {
    let slots = (0..VSS - 1)
        .map(|i| {
            let id = vs
                .create(&name(i), 0, VS_ID_AUTO, &VsAttrs::default())
                .unwrap();
            let slot = vs.slot_of_id(id).unwrap();
            vs.add_process(task(i), slot).unwrap();
            slot
        })
        .collect();
    (vs, slots)
}

/// VS `i` writes objects `from..to` (under the lock, on CPU 0).
fn fill(vs: &mut Vs<VecStore>, i: usize, from: usize, to: usize) {
    for o in from..to {
        vs.tag_object(addr(o), task(i), 0);
    }
}

/// A VS refused for lack of room while at its floor, then below it: it may take a tag while
/// anything is free, so its CPU must stop refusing it.
#[test]
fn a_vs_that_drops_below_its_floor_is_no_longer_refused() {
    let (mut vs, slots) = six();
    let seq = SeqCount::new();
    for i in 0..4 {
        fill(&mut vs, i, 3 * i, 3 * i + 3);
    }
    fill(&mut vs, 4, 12, 13);
    assert_eq!(vs.tag_reserve(), 1, "VS 5 lacks its floor");
    // VS 4, at its floor, with one position free and that one kept for VS 5: refused, and
    // then refused without the lock.
    fill(&mut vs, 4, 13, 14);
    assert_eq!(vs.object_slot(addr(13)), 0);
    assert!(vs
        .unlocked(&seq)
        .tag_write(object_key(addr(14)), task(4), 0));
    // Its one tag goes: below its floor, it may take a free position again.
    vs.untag_object(addr(12));
    assert!(!vs
        .unlocked(&seq)
        .tag_write(object_key(addr(14)), task(4), 0));
    vs.tag_object(addr(14), task(4), 0);
    assert_eq!(vs.object_slot(addr(14)), slots[4]);
}

/// A VS created with the table full is refused under the lock, never from a CPU's memory:
/// the first position that frees up is its own.
#[test]
fn a_vs_created_with_the_table_full_takes_the_first_free_position() {
    let (mut vs, _) = six();
    let seq = SeqCount::new();
    for i in 0..4 {
        fill(&mut vs, i, 3 * i, 3 * i + 3);
    }
    fill(&mut vs, 4, 12, 13);
    fill(&mut vs, 5, 13, 14);
    assert_eq!(
        (vs.objects.len(), vs.tag_reserve()),
        (14, 0),
        "full, nobody lacks"
    );
    let id = vs
        .create(&name(6), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let late = vs.slot_of_id(id).unwrap();
    vs.add_process(task(6), late).unwrap();
    fill(&mut vs, 6, 15, 16);
    assert_eq!(vs.object_slot(addr(15)), 0, "nothing free");
    assert!(!vs
        .unlocked(&seq)
        .tag_write(object_key(addr(16)), task(6), 0));
    vs.untag_object(addr(0));
    fill(&mut vs, 0, 17, 18);
    assert_eq!(vs.object_slot(addr(17)), 0, "kept for the new VS");
    fill(&mut vs, 6, 16, 17);
    assert_eq!(vs.object_slot(addr(16)), late);
    vs.fold_stays();
    assert_eq!(vs.stats(late).tags_refused, 1);
}

/// The same with a floor of 3: refused at its floor for lack of room, a VS that drops to 2
/// tags is below its floor (the room beyond the reserve has not grown: the reserve grew by
/// what was freed), and takes a free position again.
#[test]
fn a_vs_that_drops_below_a_floor_of_three_is_no_longer_refused() {
    let (mut vs, slots) = six_in(new_vs_with(32));
    let seq = SeqCount::new();
    assert_eq!((vs.tag_quota(), vs.tag_floor()), (7, 3));
    fill(&mut vs, 0, 0, 7);
    fill(&mut vs, 1, 7, 14);
    fill(&mut vs, 2, 14, 19);
    fill(&mut vs, 3, 19, 22);
    // Free 6, kept 6 for VSs 4 and 5: VS 3, at its floor, is refused, then without the lock.
    assert_eq!(
        (vs.objects.limit() - vs.objects.len(), vs.tag_reserve()),
        (6, 6)
    );
    fill(&mut vs, 3, 22, 23);
    assert_eq!(vs.object_slot(addr(22)), 0);
    assert!(vs
        .unlocked(&seq)
        .tag_write(object_key(addr(23)), task(3), 0));
    vs.untag_object(addr(19));
    assert!(!vs
        .unlocked(&seq)
        .tag_write(object_key(addr(23)), task(3), 0));
    fill(&mut vs, 3, 23, 24);
    assert_eq!(
        vs.object_slot(addr(23)),
        slots[3],
        "below its floor: a free position"
    );
}
