//! Gate accounting: after any interleaving of forks (checked, committed or failed), exits,
//! execs and explicit moves, every count equals what the live task set says, and no fork ever
//! takes a VS past its process limit.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use vs_core::abi::*;
use vs_core::charge_cache::{self, SLOTS_PER_CPU};
use vs_core::classify::{ForkCheck, Store, Tables, Vs};
use vs_core::members::{Entry, NICE_MANAGED};
use vs_core::rules::{Exe, FileId, IndexEntry, Rule};
use vs_core::seq::SeqCount;
use vs_core::stay_cache;
use vs_core::unlocked::object_key;

/// An exec of /bin/true (no rule here names a path).
const TRUE: Exe = Exe {
    path: b"/bin/true",
    file: FileId { dev: 1, ino: 2 },
};

struct VecStore;
impl Store for VecStore {
    type Table<T> = Vec<T>;
}

fn new_vs() -> Vs<VecStore> {
    new_vs_with(256)
}

/// A fresh `Vs` whose member table has `members` positions (a power of two).
fn new_vs_with(members: usize) -> Vs<VecStore> {
    new_vs_sized(members, 64)
}

/// A fresh `Vs` with `members` member-table and `objects` object-table positions (powers of
/// two).
fn new_vs_sized(members: usize, objects: usize) -> Vs<VecStore> {
    new_vs_slots(members, objects, 16)
}

/// [`new_vs_sized`] with room for `slots` VSs.
fn new_vs_slots(members: usize, objects: usize, slots: usize) -> Vs<VecStore> {
    let blank = Rule::BLANK;
    Vs::new(Tables {
        slots: vec![None; slots],
        members: vec![Entry::default(); members],
        member_shadow: (0..members).map(|_| AtomicU64::new(0)).collect(),
        gate_view: (0..16).map(|_| AtomicU64::new(0)).collect(),
        member_blocks: (0..8).map(|_| AtomicU64::new(0)).collect(),
        decisions: vec![Default::default(); 8],
        objects: vec![Entry::default(); objects],
        object_shadow: (0..objects).map(|_| AtomicU64::new(0)).collect(),
        rules: vec![blank; 32],
        index: vec![IndexEntry::default(); 32],
        stats: vec![VsStats::default(); 16],
        ctl: vec![Default::default(); 16],
        scratch: vec![Default::default(); 16],
        charges: (0..2 * SLOTS_PER_CPU).map(|_| AtomicU64::new(0)).collect(),
        stays: (0..2 * stay_cache::WORDS_PER_CPU)
            .map(|_| AtomicU64::new(0))
            .collect(),
    })
    .unwrap()
}

/// A fresh `Vs` with two plain VSs `a` and `b` under the root: (vs, a, b, slot a, slot b).
fn two_vs() -> (Vs<VecStore>, u32, u32, usize, usize) {
    let mut vs = new_vs();
    let a = vs
        .create(&name("a"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let b = vs
        .create(&name("b"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let (sa, sb) = (vs.slot_of_id(a).unwrap(), vs.slot_of_id(b).unwrap());
    (vs, a, b, sa, sb)
}

fn name(s: &str) -> [u8; VS_NAME_LEN] {
    let mut b = [0u8; VS_NAME_LEN];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

#[derive(Clone, Debug)]
enum Op {
    Fork {
        parent: usize,
        outcome: u8,
    },
    /// A fork whose child an explicit move reaches before the fork tracepoint (the kernel
    /// lists the child first).
    ForkChildMoved {
        parent: usize,
        vs: usize,
    },
    Exit(usize),
    Move {
        task: usize,
        vs: usize,
    },
    Exec {
        task: usize,
        thread_takeover: bool,
    },
    /// A socket-family gate, with a requester (a VS of the fixture) for the events that have
    /// one: the unlocked answer, when there is one, is the locked one.
    Gate {
        task: usize,
        event: usize,
        req: usize,
    },
    /// Add a rule of a gate event for a VS (or any), or delete the oldest.
    Rule {
        event: usize,
        cur: usize,
        target: usize,
        delete: bool,
    },
    /// A pipe write (tags the pipe with the writer's VS), a pipe read or message receive (the
    /// object gate, its requester the tag), or the object's free: each unlocked answer must be
    /// what the locked path does, and then the locked path must change nothing.
    Write {
        task: usize,
        obj: usize,
    },
    Read {
        task: usize,
        obj: usize,
        event: usize,
    },
    Free(usize),
    /// A rule of an event with a requester (pipe, message, accept, unix recv), for a current
    /// VS (or any) and a requester (or any).
    ObjectRule {
        event: usize,
        cur: usize,
        req: usize,
        target: usize,
    },
}

const OBJECT_EVENTS: [u32; 2] = [VS_EV_PIPE_READ, VS_EV_MSG_RECV];

/// A kernel object's address, as the glue passes it (upper 16 bits set).
fn object_addr(i: usize) -> u64 {
    0xffff_8880_0000_0000 + 0x40 * (i as u64 % 20)
}

/// What the VSs below their tag floor lack of it, from their tag counts (the one in slot
/// `less` counted with a tag less).
fn reserve_of(vs: &Vs<VecStore>, less: Option<usize>) -> usize {
    let floor = vs.tag_floor();
    (1..vs.reg.capacity())
        .filter_map(|i| vs.reg.node(i).map(|n| (i, n.nr_tags)))
        .map(|(i, held)| floor.saturating_sub(held - u32::from(less == Some(i))) as usize)
        .sum()
}

/// Rule hit counts, in id order, with those the stay caches hold.
fn hits(vs: &mut Vs<VecStore>) -> Vec<u64> {
    vs.fold_stays();
    vs.rules.iter().map(|r| r.spec.hits).collect()
}

const GATE_EVENTS: [u32; 5] = [
    VS_EV_SOCKET,
    VS_EV_CONNECT,
    VS_EV_UNIX_CONNECT,
    VS_EV_ACCEPT,
    VS_EV_UNIX_RECV,
];

/// The events with a requester that rules of `Op::ObjectRule` are for.
const REQ_EVENTS: [u32; 4] = [
    VS_EV_PIPE_READ,
    VS_EV_MSG_RECV,
    VS_EV_ACCEPT,
    VS_EV_UNIX_RECV,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..64, 0u8..4).prop_map(|(parent, outcome)| Op::Fork { parent, outcome }),
        1 => (0usize..64, 0usize..4).prop_map(|(parent, vs)| Op::ForkChildMoved { parent, vs }),
        2 => (0usize..64).prop_map(Op::Exit),
        2 => (0usize..64, 0usize..4).prop_map(|(task, vs)| Op::Move { task, vs }),
        1 => (0usize..64, any::<bool>()).prop_map(|(task, thread_takeover)| Op::Exec { task, thread_takeover }),
        3 => (0usize..64, 0usize..5, 0usize..4).prop_map(|(task, event, req)| Op::Gate { task, event, req }),
        1 => (0usize..3, 0usize..5, 0usize..3, any::<bool>())
            .prop_map(|(event, cur, target, delete)| Op::Rule { event, cur, target, delete }),
        2 => (0usize..64, 0usize..20).prop_map(|(task, obj)| Op::Write { task, obj }),
        2 => (0usize..64, 0usize..20, 0usize..2).prop_map(|(task, obj, event)| Op::Read { task, obj, event }),
        1 => (0usize..20).prop_map(Op::Free),
        1 => (0usize..4, 0usize..5, 0usize..5, 0usize..3)
            .prop_map(|(event, cur, req, target)| Op::ObjectRule { event, cur, req, target }),
    ]
}

/// VSs: root, web (limit 5), www1 under web (inherits), batch (limit 3), and a fork rule
/// sending batch's children to www1.
fn setup(vs: &mut Vs<VecStore>) -> [u32; 4] {
    let web = vs
        .create(
            &name("web"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_PROCS, 5),
        )
        .unwrap();
    let www1 = vs
        .create(&name("www1"), web, 1, &VsAttrs::default())
        .unwrap();
    let batch = vs
        .create(
            &name("batch"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_PROCS, 3),
        )
        .unwrap();
    vs.add_rules(&[VsRule {
        event: VS_EV_FORK,
        cur: batch,
        target: www1,
        ..VsRule::default()
    }])
    .unwrap();
    [0, web, www1, batch]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn counts_match_live_tasks(ops in prop::collection::vec(op(), 1..200)) {
        // 14 tags, at most 3 per VS, 1 kept for each of the 8 VSs there can be: the quota,
        // the floor and the reserve are reached.
        let mut vs = new_vs_slots(256, 16, 8);
        let ids = setup(&mut vs);
        let mut live: Vec<u64> = vec![1, 2];
        let mut next_pid = 100u64;
        let mut forks_into: BTreeMap<u32, u64> = BTreeMap::new();
        let seq = SeqCount::new();
        for op in ops {
            // What the kernel does around every locked section.
            seq.write_begin();
            vs.publish_gate_view();
            seq.write_end();
            match op {
                Op::Fork { parent, outcome } => {
                    let p = live[parent % live.len()];
                    if vs.fork_check(p) == ForkCheck::Allow {
                        if outcome == 0 {
                            vs.fork_failed(p);
                        } else {
                            let c = next_pid;
                            next_pid += 1;
                            let noop = vs.unlocked(&seq).fork_is_noop(p, c);
                            let before = vs.members.len();
                            vs.on_fork(p, c);
                            if noop {
                                // The kernel skips the lock: the locked gate must agree.
                                prop_assert!(vs.members.get(c).is_none() && vs.members.get(p).is_none());
                                prop_assert_eq!(vs.members.len(), before);
                            }
                            live.push(c);
                            *forks_into.entry(vs.id_of(c)).or_default() += 1;
                        }
                    }
                }
                Op::ForkChildMoved { parent, vs: v } => {
                    let p = live[parent % live.len()];
                    // Checked: with limits in place the fork probes are armed.
                    if vs.fork_check(p) == ForkCheck::Allow {
                        let c = next_pid;
                        next_pid += 1;
                        let slot = vs.slot_of_id(ids[v]).unwrap();
                        let moved = vs.add_process(c, slot).is_ok();
                        vs.on_fork(p, c);
                        live.push(c);
                        if moved && slot != 0 {
                            prop_assert_eq!(vs.slot_of(c), slot, "the explicit move stands");
                        }
                        *forks_into.entry(vs.id_of(c)).or_default() += 1;
                    }
                }
                Op::Exit(i) => {
                    if live.len() > 1 {
                        let t = live.remove(i % live.len());
                        // The kernel's exit gate skips the lock for a task without an entry:
                        // the locked gate must have nothing to undo for it.
                        let noop = vs.unlocked(&seq).has_no_entry(t);
                        prop_assert_eq!(noop, vs.members.get(t).is_none());
                        let before: Vec<_> = (0..16).map(|s| vs.reg.node(s).map(|n| (n.nr_members, n.nr_reserved, n.subtree))).collect();
                        vs.on_exit(t);
                        if noop {
                            let after: Vec<_> = (0..16).map(|s| vs.reg.node(s).map(|n| (n.nr_members, n.nr_reserved, n.subtree))).collect();
                            prop_assert_eq!(before, after, "an exit without an entry changed counts");
                        }
                    }
                }
                Op::Move { task, vs: v } => {
                    let t = live[task % live.len()];
                    let slot = vs.slot_of_id(ids[v]).unwrap();
                    let before = vs.reg.node(slot).unwrap().subtree;
                    match vs.add_process(t, slot) {
                        Ok(()) => {}
                        Err(e) => {
                            prop_assert_eq!(e, vs_core::tree::Error::Again);
                            prop_assert!(!vs.reg.has_room(slot));
                            prop_assert_eq!(before, vs.reg.node(slot).unwrap().subtree);
                        }
                    }
                }
                Op::Gate { task, event, req } => {
                    let t = live[task % live.len()];
                    let ev = GATE_EVENTS[event];
                    let cpu = (t % 2) as usize;
                    let req = if vs_event_has_req(ev) { vs.slot_of_id(ids[req]).unwrap() } else { 0 };
                    let req_arg = (req != 0).then_some(req);
                    let (slot, before) = (vs.slot_of(t), hits(&mut vs));
                    let quick = vs.unlocked(&seq).gate(t, ev, cpu, || req);
                    if let Some(id) = quick {
                        // Answered (and maybe counted) without the lock: the locked gate must
                        // give the same VS, move nothing and count the same rule, once.
                        let counted = hits(&mut vs);
                        let locked = vs.on_gate(t, ev, req_arg);
                        prop_assert_eq!(id, locked, "unlocked answer");
                        prop_assert_eq!(vs.slot_of(t), slot, "the unlocked answer skipped a move");
                        let again = hits(&mut vs);
                        let d1: Vec<u64> = counted.iter().zip(&before).map(|(a, b)| a - b).collect();
                        let d2: Vec<u64> = again.iter().zip(&counted).map(|(a, b)| a - b).collect();
                        prop_assert_eq!(d1, d2, "the unlocked gate counted another rule");
                    } else {
                        let id = vs.on_gate_cached(t, ev, req_arg, cpu);
                        prop_assert_eq!(id, vs.id_of(t));
                        // Where the rules left the task, or no rule applies to its VS, the
                        // next answer needs no lock.
                        if vs.slot_of(t) == slot {
                            prop_assert_eq!(vs.unlocked(&seq).gate(t, ev, cpu, || req), Some(id), "not cached");
                        }
                    }
                    // Whether a rule may apply (the accept queue's question), answered
                    // without the lock once the locked answer filled the task's word.
                    let id = vs.id_of(t);
                    let quick = vs.unlocked(&seq).rule_may_apply(t, ev);
                    let locked = vs.rule_may_apply(t, ev);
                    prop_assert_eq!(locked, vs.rules.applies(ev, id));
                    prop_assert!(quick.is_none_or(|q| q == locked), "unlocked rule_may_apply");
                    prop_assert_eq!(vs.unlocked(&seq).rule_may_apply(t, ev), Some(locked));
                }
                Op::Rule { event, cur, target, delete } => {
                    if delete {
                        let oldest = vs.rules.iter().map(|r| r.spec.id).find(|&id| id > 1);
                        if let Some(id) = oldest {
                            vs.rules.delete(id).unwrap();
                        }
                    } else {
                        let cur = if cur == 4 { VS_ANY } else { ids[cur] };
                        let _ = vs.add_rules(&[VsRule {
                            event: GATE_EVENTS[event % 3],
                            cur,
                            // Not into web or batch: gates cannot refuse, and their limits
                            // are checked below.
                            target: if target < 2 { VS_TARGET_KEEP } else { VS_ROOT },
                            ..VsRule::default()
                        }]);
                    }
                }
                Op::Write { task, obj } => {
                    let t = live[task % live.len()];
                    let addr = object_addr(obj);
                    // The kernel's writer runs on some CPU: two here, by task.
                    let cpu = (t % 2) as usize;
                    let before = vs.object_slot(addr);
                    let s = vs.slot_of(t);
                    // tags.rs, from scratch: the earlier writer's tag goes first; then the
                    // writer may take one below its quota, and below its floor while anything
                    // is free, else only beyond what the VSs below their floor lack.
                    let dropped = (before != 0 && before != s).then_some(before);
                    let held = vs.reg.node(s).map_or(0, |n| n.nr_tags);
                    let free = vs.objects.limit() - vs.objects.len() + usize::from(dropped.is_some());
                    let reserve = reserve_of(&vs, dropped);
                    let (quota, floor) = (vs.tag_quota(), vs.tag_floor());
                    let may = held < quota && if held < floor { free > 0 } else { free > reserve };
                    let at_quota = s != 0 && before != s && !may;
                    vs.fold_stays();
                    let refused = vs.stats(s).tags_refused;
                    // As the kernel: the unlocked write, or else the locked one, never both.
                    if !vs.unlocked(&seq).tag_write(object_key(addr), t, cpu) {
                        vs.tag_object(addr, t, cpu);
                    }
                    vs.fold_stays();
                    if at_quota {
                        prop_assert_eq!(vs.object_slot(addr), 0, "over quota: left untagged");
                        prop_assert_eq!(vs.stats(s).tags_refused, refused + 1);
                    } else {
                        prop_assert_eq!(vs.object_slot(addr), s, "a write tags with the writer's VS");
                        prop_assert_eq!(vs.stats(s).tags_refused, refused);
                    }
                }
                Op::Read { task, obj, event } => {
                    let t = live[task % live.len()];
                    let (addr, ev) = (object_addr(obj), OBJECT_EVENTS[event]);
                    // The kernel's reader runs on some CPU: two here, by task.
                    let cpu = (t % 2) as usize;
                    let (slot, before) = (vs.slot_of(t), hits(&mut vs));
                    let req = vs.object_slot(addr);
                    let quick = vs.unlocked(&seq).object_gate(t, ev, object_key(addr), cpu);
                    if quick {
                        // Answered (and maybe counted) without the lock: the locked gate must
                        // leave the task where it is and count the same rule, once.
                        let counted = hits(&mut vs);
                        vs.on_gate(t, ev, (req != 0).then_some(req));
                        prop_assert_eq!(vs.slot_of(t), slot, "the unlocked gate skipped a move");
                        let locked = hits(&mut vs);
                        let d1: Vec<u64> = counted.iter().zip(&before).map(|(a, b)| a - b).collect();
                        let d2: Vec<u64> = locked.iter().zip(&counted).map(|(a, b)| a - b).collect();
                        prop_assert_eq!(d1, d2, "the unlocked gate counted another rule");
                    } else {
                        vs.on_gate_cached(t, ev, (req != 0).then_some(req), cpu);
                        // A read the rules leave where it was is counted without the lock
                        // next time, on the same CPU.
                        if vs.slot_of(t) == slot {
                            let counted = hits(&mut vs);
                            prop_assert!(vs.unlocked(&seq).object_gate(t, ev, object_key(addr), cpu), "not cached");
                            let again = hits(&mut vs);
                            let d1: Vec<u64> = counted.iter().zip(&before).map(|(a, b)| a - b).collect();
                            let d2: Vec<u64> = again.iter().zip(&counted).map(|(a, b)| a - b).collect();
                            prop_assert_eq!(d1, d2, "the cached read counted another rule");
                        }
                    }
                }
                Op::Free(obj) => {
                    let addr = object_addr(obj);
                    let quick = vs.unlocked(&seq).untagged(object_key(addr));
                    prop_assert_eq!(quick, vs.object_slot(addr) == 0);
                    vs.untag_object(addr);
                    prop_assert_eq!(vs.object_slot(addr), 0);
                }
                Op::ObjectRule { event, cur, req, target } => {
                    let pick = |i: usize| if i == 4 { VS_ANY } else { ids[i] };
                    // A requester in the root is none: such a rule never matches (it may exist).
                    let _ = vs.add_rules(&[VsRule {
                        event: REQ_EVENTS[event],
                        cur: pick(cur),
                        req: pick(req),
                        // Not to the requester: gates cannot refuse, and the limits of web
                        // and batch are checked below.
                        target: if target < 2 { VS_TARGET_KEEP } else { VS_ROOT },
                        ..VsRule::default()
                    }]);
                }
                Op::Exec { task, thread_takeover } => {
                    let i = task % live.len();
                    let t = live[i];
                    if thread_takeover {
                        let new_pid = next_pid;
                        next_pid += 1;
                        vs.on_exec(new_pid, t, TRUE);
                        live[i] = new_pid;
                    } else {
                        // The kernel skips the lock: the locked gate must change nothing.
                        let noop = vs.unlocked(&seq).exec_is_noop(t);
                        let before: Vec<_> = (0..16).map(|s| vs.reg.node(s).map(|n| (n.nr_members, n.subtree))).collect();
                        let execs = vs.stats(0).execs;
                        vs.on_exec(t, t, TRUE);
                        if noop {
                            let after: Vec<_> = (0..16).map(|s| vs.reg.node(s).map(|n| (n.nr_members, n.subtree))).collect();
                            prop_assert_eq!(before, after, "an exec without an entry changed counts");
                            prop_assert!(vs.members.get(t).is_none(), "an exec without an entry gave one");
                            prop_assert_eq!(vs.stats(0).execs, execs + 1, "counted for the root");
                        }
                    }
                }
            }
            prop_assert!(vs.members.shadow_agrees(), "member shadow out of date");
            prop_assert_eq!(vs.tag_reserve(), reserve_of(&vs, None), "the tag reserve");
            prop_assert!(vs.objects.shadow_agrees(), "object shadow out of date");
            // Every count follows from the membership table, and nothing is left reserved
            // between operations.
            for slot in 0..16 {
                let Some(n) = vs.reg.node(slot) else { continue };
                let members = live.iter().filter(|&&t| vs.slot_of(t) == slot).count() as u32;
                if slot != 0 {
                    prop_assert_eq!(n.nr_members, members, "slot {}", slot);
                }
                prop_assert_eq!(n.nr_reserved, 0);
                prop_assert_eq!(vs.reg.reserved(), 0);
                let tags = vs.objects.iter().filter(|e| usize::from(e.slot) == slot).count();
                prop_assert_eq!(n.nr_tags as usize, tags, "tags of slot {}", slot);
                prop_assert_eq!(u64::from(n.nr_members), vs.stats(slot).nr_procs);
            }
            prop_assert_eq!(vs.members.len(), live.iter().filter(|&&t| vs.slot_of(t) != 0).count());
            // Forks never overshoot: web's subtree (web + www1) within 5, batch within 3
            // unless explicit moves (which also check) or gates put tasks there.
            let web = vs.reg.node(vs.slot_of_id(ids[1]).unwrap()).unwrap();
            let batch = vs.reg.node(vs.slot_of_id(ids[3]).unwrap()).unwrap();
            prop_assert!(web.subtree <= 5, "web subtree {}", web.subtree);
            prop_assert!(batch.subtree <= 3, "batch subtree {}", batch.subtree);
        }
        for t in live {
            vs.on_exit(t);
        }
        for slot in 1..16 {
            if let Some(n) = vs.reg.node(slot) {
                prop_assert_eq!((n.nr_members, n.subtree), (0, 0));
            }
        }
        prop_assert!(vs.members.is_empty());
        // forks counters agree with what was observed.
        for (id, n) in forks_into {
            prop_assert_eq!(vs.stats(vs.slot_of_id(id).unwrap()).forks, n);
        }
    }
}

#[test]
fn exactly_the_limit_succeeds() {
    let mut vs = new_vs();
    let ids = setup(&mut vs);
    let batch = vs.slot_of_id(ids[3]).unwrap();
    let web = vs.slot_of_id(ids[1]).unwrap();
    vs.reg
        .set(ids[1], 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 6))
        .unwrap();
    for pid in 1..=3 {
        vs.add_process(pid, web).unwrap();
    }
    // Three forks in flight at once: each reserves before its child exists.
    for pid in 1..=3 {
        assert_eq!(vs.fork_check(pid), ForkCheck::Allow);
    }
    assert_eq!(vs.reg.node(web).unwrap().subtree, 6);
    assert_eq!(
        vs.add_process(4, web),
        Err(vs_core::tree::Error::Again),
        "reservations count"
    );
    vs.on_fork(1, 11);
    vs.on_fork(2, 12);
    vs.fork_failed(3);
    assert_eq!(vs.stats(web).nr_procs, 5);
    assert_eq!(
        vs.fork_check(11),
        ForkCheck::Allow,
        "the failed fork gave its room back"
    );
    assert_eq!(vs.fork_check(12), ForkCheck::Deny);
    assert_eq!(vs.stats(web).denied_forks, 1);
    vs.on_fork(11, 13);
    assert_eq!(vs.stats(web).nr_procs, 6);
    // batch's children go to www1 (inside web): web's limit binds them too.
    vs.add_process(20, batch).unwrap();
    assert_eq!(vs.fork_check(20), ForkCheck::Deny);
    vs.on_exit(13);
    assert_eq!(vs.fork_check(20), ForkCheck::Allow);
    vs.on_fork(20, 21);
    assert_eq!(vs.id_of(21), ids[2]);
    assert_eq!(vs.stats(vs.slot_of_id(ids[2]).unwrap()).forks, 1);
}

#[test]
fn destroy_needs_no_rule_naming_it_and_clears_object_tags() {
    let mut vs = new_vs();
    let ids = setup(&mut vs);
    assert_eq!(
        vs.destroy(ids[3]),
        Err(vs_core::tree::Error::Busy),
        "a rule names batch"
    );
    let x = vs
        .create(&name("x"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let sx = vs.slot_of_id(x).unwrap();
    vs.add_process(7, sx).unwrap();
    vs.tag_object(0xffff_0000_1000, 7, 0);
    assert_eq!(vs.object_slot(0xffff_0000_1000), sx);
    vs.on_exit(7);
    vs.destroy(x).unwrap();
    assert_eq!(vs.object_slot(0xffff_0000_1000), 0);
}

/// The exec gate skips the lock only for an unclassified task that no exec rule concerns:
/// one for any VS (or the root) applies to it, one for another VS does not.
#[test]
fn exec_without_lock_only_where_no_rule_applies() {
    let (mut vs, a, _, sa, _) = two_vs();
    let seq = SeqCount::new();
    vs.add_process(7, sa).unwrap();
    let quick = |vs: &mut Vs<VecStore>, pid: u64| {
        // What the kernel does around every locked section: the view is filled by a gate.
        seq.write_begin();
        vs.publish_gate_view();
        seq.write_end();
        vs.on_exec(99, 99, TRUE);
        vs.unlocked(&seq).exec_is_noop(pid)
    };
    assert!(quick(&mut vs, 8), "unclassified, no exec rule");
    assert!(!quick(&mut vs, 7), "a member takes the lock");
    let rule = |cur| VsRule {
        event: VS_EV_EXEC,
        cur,
        target: VS_TARGET_KEEP,
        ..VsRule::default()
    };
    vs.add_rules(&[rule(a)]).unwrap();
    assert!(quick(&mut vs, 8), "a rule for another VS");
    vs.add_rules(&[rule(VS_ANY)]).unwrap();
    assert!(!quick(&mut vs, 8), "a rule for any VS");
}

/// With the membership table near full, a classified task's fork is refused (EAGAIN) while
/// the table could not hold its child beside the children of forks already allowed: a child
/// without an entry would run in the root, outside its VS's limit and share.
#[test]
fn a_full_member_table_refuses_classified_forks_rather_than_lose_the_child() {
    let mut vs = new_vs_with(16);
    let a = vs
        .create(&name("a"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let sa = vs.slot_of_id(a).unwrap();
    // 13 of the 14 entries a 16-position table holds.
    for pid in 1..=13 {
        vs.add_process(pid, sa).unwrap();
    }
    assert_eq!(vs.fork_check(1), ForkCheck::Allow, "room for one child");
    assert_eq!(vs.fork_check(2), ForkCheck::Deny, "its entry is spoken for");
    assert_eq!(vs.stats(sa).denied_forks, 1);
    vs.on_fork(1, 100);
    assert_eq!(vs.slot_of(100), sa, "the allowed fork's child is in a");
    assert_eq!(vs.fork_check(1), ForkCheck::Deny, "the table is full");
    // An unclassified task's fork needs no entry.
    assert_eq!(vs.fork_check(500), ForkCheck::Allow);
    vs.on_fork(500, 501);
    assert_eq!(vs.slot_of(501), 0);
    vs.on_exit(100);
    assert_eq!(vs.fork_check(2), ForkCheck::Allow, "room again");
    vs.fork_failed(2);
    assert_eq!(vs.reg.reserved(), 0);
}

#[test]
fn a_vs_at_its_tag_quota_leaves_objects_untagged_and_others_keep_theirs() {
    let (mut vs, a, _, sa, sb) = two_vs();
    vs.add_process(7, sa).unwrap();
    vs.add_process(8, sb).unwrap();
    let quota = vs.tag_quota() as u64;
    assert_eq!(
        quota, 14,
        "a quarter of the 56 tags a 64-position table holds"
    );
    let obj = |i: u64| 0xffff_8880_0001_0000 + 0x40 * i;
    for i in 0..quota {
        vs.tag_object(obj(i), 7, 0);
    }
    assert_eq!(vs.reg.node(sa).unwrap().nr_tags as u64, quota);
    // a's next pipe stays untagged, counted; b still tags its own.
    vs.tag_object(obj(quota), 7, 0);
    assert_eq!(vs.object_slot(obj(quota)), 0);
    assert_eq!(vs.stats(sa).tags_refused, 1);
    vs.tag_object(obj(100), 8, 0);
    assert_eq!(vs.object_slot(obj(100)), sb);
    // a writes b's pipe: it cannot take the tag, and b's tag goes (the last writer was a).
    vs.tag_object(obj(100), 7, 0);
    assert_eq!(vs.object_slot(obj(100)), 0);
    assert_eq!(vs.stats(sa).tags_refused, 2);
    assert_eq!(vs.reg.node(sb).unwrap().nr_tags, 0);
    // b writes one of a's: the tag moves to b, which frees one of a's quarter.
    vs.tag_object(obj(0), 8, 0);
    assert_eq!(vs.object_slot(obj(0)), sb);
    vs.tag_object(obj(quota), 7, 0);
    assert_eq!(vs.object_slot(obj(quota)), sa);
    // A write by a task in the root, and a free, give tags back.
    vs.tag_object(obj(1), 99, 0);
    vs.untag_object(obj(2));
    assert_eq!(vs.reg.node(sa).unwrap().nr_tags as u64, quota - 2);
    // Destroying a drops its tags (in one pass), b's stay.
    vs.on_exit(7);
    vs.destroy(a).unwrap();
    assert_eq!(vs.objects.len(), 1);
    assert_eq!(vs.object_slot(obj(0)), sb);
    assert_eq!(vs.reg.node(sb).unwrap().nr_tags, 1);
}

/// Create VSs `v0`..`v{n-1}` under the root, task `100 + i` in `vi`: their slots.
fn vss_with_a_task(vs: &mut Vs<VecStore>, n: u64) -> Vec<usize> {
    (0..n)
        .map(|v| {
            let id = vs
                .create(&name(&format!("v{v}")), 0, VS_ID_AUTO, &VsAttrs::default())
                .unwrap();
            let slot = vs.slot_of_id(id).unwrap();
            vs.add_process(100 + v, slot).unwrap();
            slot
        })
        .collect()
}

/// However many VSs write to pipes without end, one after another, every VS keeps room for its
/// floor of tags: with the quota alone, the first four would fill the table. A VS created with
/// the table full gets the first positions that free up: the others cannot take them back.
#[test]
fn vss_writing_without_end_leave_every_vs_its_floor() {
    let mut vs = new_vs();
    let (limit, quota, floor) = (vs.objects.limit(), vs.tag_quota(), vs.tag_floor());
    assert_eq!(
        (limit, quota, floor),
        (56, 14, 3),
        "a 64-position table, 16 VSs"
    );
    let obj = |v: u64, i: u64| 0xffff_8880_0001_0000 + 0x40 * (v * 100 + i);
    let slots = vss_with_a_task(&mut vs, 10);
    assert_eq!(vs.tag_reserve(), 30, "ten VSs lack their floor");
    // Nine write without end, one after another; the tenth is quiet.
    for v in 0..9u64 {
        for i in 0..limit as u64 {
            vs.tag_object(obj(v, i), 100 + v, 0);
        }
    }
    let held: Vec<u32> = slots
        .iter()
        .map(|&s| vs.reg.node(s).unwrap().nr_tags)
        .collect();
    assert_eq!(held[..2], [quota, quota], "the first two reach the quota");
    assert!(held[..9].iter().all(|&h| h >= floor), "{held:?}");
    assert_eq!(vs.tag_reserve(), 3, "what the quiet one lacks");
    assert_eq!(limit - vs.objects.len(), 3, "is all that is free: {held:?}");
    for i in 0..3 {
        vs.tag_object(obj(9, i), 109, 0);
        assert_eq!(
            vs.object_slot(obj(9, i)),
            slots[9],
            "the quiet VS's tag {i}"
        );
    }
    assert_eq!(vs.objects.len(), limit, "full");
    // Created with the table full: refused, until a tag goes, which only it may take.
    let late = vs
        .create(&name("late"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let sl = vs.slot_of_id(late).unwrap();
    vs.add_process(7, sl).unwrap();
    vs.tag_object(obj(10, 0), 7, 0);
    assert_eq!(vs.object_slot(obj(10, 0)), 0);
    vs.untag_object(obj(0, 0));
    vs.tag_object(obj(0, 99), 100, 0);
    assert_eq!(
        vs.object_slot(obj(0, 99)),
        0,
        "a writer above its floor cannot take it"
    );
    vs.tag_object(obj(10, 0), 7, 0);
    assert_eq!(vs.object_slot(obj(10, 0)), sl, "the late VS can");
    // A writer above its floor writes another VS's object with no slack: the old tag goes
    // (the object is no longer that VS's), and the writer may not take the position.
    vs.tag_object(obj(1, 0), 100, 0);
    assert_eq!(
        vs.object_slot(obj(1, 0)),
        0,
        "retag with no slack: untagged"
    );
    assert_eq!(
        vs.stats(slots[0]).tags_refused as usize,
        limit - quota as usize + 2
    );
}

/// A VS refused a tag for lack of room (the table full up to the reserve) is refused on that
/// CPU without the lock, until the room comes back: then every CPU takes the lock again.
#[test]
fn refusals_for_lack_of_room_hold_until_room_comes_back() {
    let mut vs = new_vs_slots(256, 16, 8);
    let seq = SeqCount::new();
    let (limit, quota, floor) = (vs.objects.limit(), vs.tag_quota(), vs.tag_floor());
    assert_eq!((limit, quota, floor), (14, 3, 1));
    let slots = vss_with_a_task(&mut vs, 5);
    let obj = |v: u64, i: u64| 0xffff_8880_0001_0000 + 0x40 * (v * 100 + i);
    // Four reach the quota (12 tags), the fifth takes its floor and the last position.
    for v in 0..5u64 {
        for i in 0..3 {
            vs.tag_object(obj(v, i), 100 + v, 0);
        }
    }
    let held: Vec<u32> = slots
        .iter()
        .map(|&s| vs.reg.node(s).unwrap().nr_tags)
        .collect();
    assert_eq!(held, [3, 3, 3, 3, 2]);
    assert_eq!(vs.objects.len(), limit);
    let e = 104;
    assert_eq!(
        vs.stats(slots[4]).tags_refused,
        1,
        "for lack of room, under the lock"
    );
    assert!(
        vs.unlocked(&seq).tag_write(object_key(obj(4, 5)), e, 0),
        "then without it"
    );
    assert!(
        !vs.unlocked(&seq).tag_write(object_key(obj(4, 5)), e, 1),
        "on that CPU only"
    );
    // A tag of another VS goes: the room is back, on every CPU.
    vs.untag_object(obj(0, 0));
    assert!(!vs.unlocked(&seq).tag_write(object_key(obj(4, 5)), e, 0));
    vs.tag_object(obj(4, 5), e, 0);
    assert_eq!(vs.object_slot(obj(4, 5)), slots[4]);
    vs.fold_stays();
    assert_eq!(vs.stats(slots[4]).tags_refused, 2);
}

/// A VS at its tag quota is refused on a CPU without the lock once that CPU refused it under
/// the lock, every refusal counted once; it has room again (on every CPU) as soon as one of
/// its tags goes, and a VS that takes its slot after it is destroyed starts with room.
#[test]
fn refusals_at_the_tag_quota_are_counted_without_the_lock_until_there_is_room() {
    let (mut vs, a, _, sa, _) = two_vs();
    let seq = SeqCount::new();
    vs.add_process(7, sa).unwrap();
    let quota = vs.tag_quota() as u64;
    let obj = |i: u64| 0xffff_8880_0001_0000 + 0x40 * i;
    let write = |vs: &mut Vs<VecStore>, i: u64, cpu: usize| {
        let quick = vs.unlocked(&seq).tag_write(object_key(obj(i)), 7, cpu);
        if !quick {
            vs.tag_object(obj(i), 7, cpu);
        }
        vs.fold_stays();
        quick
    };
    for i in 0..quota {
        assert!(!write(&mut vs, i, 0), "a new tag takes the lock");
    }
    assert!(write(&mut vs, 0, 0), "an unchanged tag does not");
    assert!(
        !write(&mut vs, quota, 0),
        "the first refusal takes the lock"
    );
    assert!(
        write(&mut vs, quota + 1, 0),
        "the next on that CPU does not"
    );
    assert!(
        !write(&mut vs, quota + 1, 1),
        "another CPU has not learnt it yet"
    );
    assert!(write(&mut vs, quota + 2, 1));
    assert_eq!(vs.stats(sa).tags_refused, 4, "every refusal, once");
    assert_eq!(vs.object_slot(obj(quota + 1)), 0);
    // A free gives a room: neither CPU refuses the next write.
    vs.untag_object(obj(0));
    assert!(!write(&mut vs, quota + 1, 0));
    assert_eq!(vs.object_slot(obj(quota + 1)), sa, "tagged again");
    assert!(
        !write(&mut vs, quota + 2, 1),
        "at the quota again: refused under the lock"
    );
    assert!(write(&mut vs, quota + 3, 1));
    assert_eq!(vs.stats(sa).tags_refused, 6);
    // Refusals counted without the lock and not folded yet are handed over when the CPU's
    // entry is forgotten.
    for i in 10..13 {
        assert!(vs
            .unlocked(&seq)
            .tag_write(object_key(obj(quota + i)), 7, 1));
    }
    vs.untag_object(obj(1));
    assert_eq!(
        vs.stats(sa).tags_refused,
        9,
        "no fold: the forget counted them"
    );
    // Destroyed at its quota: the VS that takes its slot has room on every CPU.
    vs.on_exit(7);
    vs.destroy(a).unwrap();
    let c = vs
        .create(&name("c"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    assert_eq!(vs.slot_of_id(c), Some(sa), "the slot is reused");
    vs.add_process(7, sa).unwrap();
    assert!(!write(&mut vs, quota + 3, 1));
    assert_eq!(vs.object_slot(obj(quota + 3)), sa);
    assert_eq!(vs.stats(sa).tags_refused, 0);
}

#[test]
fn cpu_tick_renices_restores_and_respects_the_user() {
    use vs_core::cpu_control::{NiceAction, TaskSample};
    let mut vs = new_vs();
    let a = vs
        .create(
            &name("a"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 50),
        )
        .unwrap();
    let sa = vs.slot_of_id(a).unwrap();
    vs.add_process(7, sa).unwrap();
    vs.add_process(8, sa).unwrap();
    let mut acts = vec![NiceAction::default(); 8];
    let sample = |pid, nice| TaskSample {
        pid,
        alive: true,
        runnable: true,
        nice,
    };
    // Unclassified work used 80% of the CPU, a's tasks 20%. At a's first tick busy (whose
    // period it may have been busy for only part of) its tasks only get the pool's neutral
    // nice: task 8 goes from its own 3 to 0.
    vs.charge(1000, 80_000_000);
    vs.charge(7, 10_000_000);
    vs.charge(8, 10_000_000);
    let n = vs.cpu_tick(&[sample(7, 0), sample(8, 3)], &mut acts);
    assert_eq!(
        &acts[..n],
        &[NiceAction {
            pid: 8,
            expect: 3,
            nice: 0
        }]
    );
    // The next tick measures the same: a (target 50%) is boosted.
    vs.charge(1000, 80_000_000);
    vs.charge(7, 10_000_000);
    vs.charge(8, 10_000_000);
    let n = vs.cpu_tick(&[sample(7, 0), sample(8, 0)], &mut acts);
    assert_eq!(n, 2, "{:?}", &acts[..n]);
    assert!(acts[0].nice < 0 && acts[0].expect == 0, "{:?}", acts[0]);
    let boosted = acts[0].nice;
    let st = vs.stats(sa);
    assert_eq!((st.cpu_target_ppm, st.cpu_used_ppm), (500_000, 200_000));
    // The pool's nice, or one lower for the tasks that get the lower of its two values.
    assert!(
        st.cpu_nice == i32::from(boosted) || st.cpu_nice == i32::from(boosted) + 1,
        "pool nice {} for a task at {boosted}",
        st.cpu_nice
    );
    assert_eq!(st.cpu_subtree_ns, 40_000_000);
    // Task 8 was reniced by its user meanwhile: left alone from now on.
    vs.charge(1000, 50_000_000);
    vs.charge(7, 50_000_000);
    let n = vs.cpu_tick(&[sample(7, boosted), sample(8, 10)], &mut acts);
    assert!(acts[..n].iter().all(|a| a.pid == 7), "{:?}", &acts[..n]);
    // Unload gives task 7 its own value back (if it still has ours), not task 8.
    let n = vs.restore_all(&mut acts);
    assert_eq!(
        &acts[..n],
        &[NiceAction {
            pid: 7,
            expect: acts[0].expect,
            nice: 0
        }]
    );
    // Back to the root pool: the original nice comes back at the next tick.
    let mut vs2 = new_vs();
    let b = vs2
        .create(
            &name("b"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 50),
        )
        .unwrap();
    let sb = vs2.slot_of_id(b).unwrap();
    vs2.add_process(9, sb).unwrap();
    vs2.charge(1000, 90_000_000);
    vs2.charge(9, 10_000_000);
    assert_eq!(vs2.cpu_tick(&[sample(9, 4)], &mut acts), 1);
    let set = acts[0].nice;
    vs2.add_process(9, 0).unwrap();
    assert!(
        vs2.members.get(9).is_some(),
        "kept until its nice is given back"
    );
    assert_eq!(vs2.cpu_tick(&[sample(9, set)], &mut acts), 1);
    assert_eq!(
        acts[0],
        NiceAction {
            pid: 9,
            expect: set,
            nice: 4
        }
    );
    assert!(vs2.members.get(9).is_none());
}

#[test]
fn req_root_rules_match_unclassified_requesters() {
    let (mut vs, a, b, sa, sb) = two_vs();
    vs.add_rules(&[
        VsRule {
            event: VS_EV_ACCEPT,
            cur: a,
            req: VS_ROOT,
            target: b,
            ..VsRule::default()
        },
        VsRule {
            event: VS_EV_ACCEPT,
            cur: b,
            req: VS_ANY,
            target: VS_TARGET_REQ,
            ..VsRule::default()
        },
    ])
    .unwrap();
    vs.add_process(7, sa).unwrap();
    // A requester vs knows nothing of is the root's: the req=root rule decides.
    assert_eq!(vs.on_gate(7, VS_EV_ACCEPT, None), b);
    // A `-> (req)` verdict for it leaves the task where it is.
    assert_eq!(vs.on_gate(7, VS_EV_ACCEPT, None), b);
    // A known requester does not match req=root.
    vs.add_process(8, sa).unwrap();
    assert_eq!(vs.on_gate(8, VS_EV_ACCEPT, Some(sb)), a);
}

#[test]
fn a_user_renice_is_respected_until_the_task_moves() {
    use vs_core::cpu_control::{NiceAction, TaskSample};
    let mut vs = new_vs();
    let attrs = VsAttrs::default().with(VS_ATTR_CPU, 40);
    let a = vs.create(&name("a"), 0, VS_ID_AUTO, &attrs).unwrap();
    let b = vs.create(&name("b"), 0, VS_ID_AUTO, &attrs).unwrap();
    let (sa, sb) = (vs.slot_of_id(a).unwrap(), vs.slot_of_id(b).unwrap());
    vs.add_process(7, sa).unwrap();
    let mut acts = vec![NiceAction::default(); 8];
    let sample = |nice| TaskSample {
        pid: 7,
        alive: true,
        runnable: true,
        nice,
    };
    // The first tick busy sets the neutral nice (0, as it is), the second boosts it.
    vs.charge(1000, 90_000_000);
    vs.charge(7, 10_000_000);
    assert_eq!(vs.cpu_tick(&[sample(0)], &mut acts), 0);
    vs.charge(1000, 90_000_000);
    vs.charge(7, 10_000_000);
    assert_eq!(vs.cpu_tick(&[sample(0)], &mut acts), 1);
    // Its user sets nice 5: vs leaves it there...
    vs.charge(1000, 90_000_000);
    vs.charge(7, 10_000_000);
    assert_eq!(vs.cpu_tick(&[sample(5)], &mut acts), 0);
    // ...until it moves to another managed VS: then vs manages it again, from nice 5.
    vs.add_process(7, sb).unwrap();
    vs.charge(1000, 90_000_000);
    vs.charge(7, 10_000_000);
    let n = vs.cpu_tick(&[sample(5)], &mut acts);
    assert_eq!(n, 1, "managed again after the move");
    assert_eq!(acts[0].expect, 5);
    let set = acts[0].nice;
    // And unload gives it back the nice its user chose.
    let n = vs.restore_all(&mut acts);
    assert_eq!(
        &acts[..n],
        &[NiceAction {
            pid: 7,
            expect: set,
            nice: 5
        }]
    );
}

#[test]
fn child_of_a_reniced_task_gets_its_parents_own_nice_back() {
    use vs_core::cpu_control::{NiceAction, TaskSample};
    let mut v = new_vs();
    let attrs = VsAttrs {
        cpu_share: 50,
        mask: 1 << VS_ATTR_CPU,
        ..VsAttrs::default()
    };
    let a = v.create(&name("a"), VS_ROOT, VS_ID_AUTO, &attrs).unwrap();
    let slot = v.reg.find(a).unwrap();
    v.add_process(10, slot).unwrap();
    // One tick: the parent (nice 0, runnable) gets managed.
    let s = [TaskSample {
        pid: 10,
        alive: true,
        runnable: true,
        nice: 0,
    }];
    let mut acts = [NiceAction::default(); 4];
    v.cpu_tick(&s, &mut acts);
    let p = *v.members.get(10).unwrap();
    assert_ne!(p.nice_flags & vs_core::members::NICE_MANAGED, 0);
    // It forks while at the vs-given nice; at unload both get nice 0 back.
    v.on_fork(10, 11);
    let c = *v.members.get(11).unwrap();
    assert_eq!((c.orig_nice, c.set_nice), (0, p.set_nice));
    let k = v.restore_all(&mut acts);
    let restored: Vec<(u64, i8)> = acts[..k].iter().map(|a| (a.pid, a.nice)).collect();
    assert!(
        restored.contains(&(10, 0)) && restored.contains(&(11, 0)),
        "{restored:?}"
    );
}

/// Runtime cached per CPU without the lock is charged to the VS the task was in when it ran:
/// a move folds it first, an exit folds it, the tick folds the rest.
#[test]
fn cached_runtime_is_charged_where_it_was_run() {
    let (mut vs, _, _, sa, sb) = two_vs();
    vs.add_process(7, sa).unwrap();
    vs.add_process(8, sa).unwrap();
    assert!(charge_cache::add(&vs.charges, 0, 7, 1_000));
    assert!(charge_cache::add(&vs.charges, 1, 7, 200));
    assert!(charge_cache::add(&vs.charges, 1, 8, 30));
    assert!(charge_cache::add(&vs.charges, 0, 99, 4));
    assert_eq!(vs.stats(sa).cpu_time_ns, 0, "nothing charged before a fold");
    // 7 moves to b: what it ran on both CPUs is a's.
    vs.add_process(7, sb).unwrap();
    assert_eq!(vs.stats(sa).cpu_time_ns, 1_200);
    assert!(charge_cache::add(&vs.charges, 0, 7, 5_000));
    // 8 exits: its time stays a's; 8's pid reused later starts from nothing.
    vs.on_exit(8);
    assert_eq!(vs.stats(sa).cpu_time_ns, 1_230);
    vs.fold_charges();
    assert_eq!(vs.stats(sb).cpu_time_ns, 5_000);
    assert_eq!(
        vs.stats(0).cpu_time_ns,
        4,
        "unclassified work is the root's"
    );
    assert_eq!(vs.stats(sa).cpu_time_ns, 1_230);
    // A fold leaves the cache empty.
    vs.fold_charges();
    assert_eq!(vs.stats(sb).cpu_time_ns, 5_000);
}

/// The CPU tick's snapshot, a chunk of the member table per locked section: the chunks
/// together give every member of a managed pool and every task with a nice value of vs's to
/// give back, once each; members of the root's pool with nothing to give back are left out.
#[test]
fn snapshot_in_chunks_leaves_out_root_pool_members() {
    use vs_core::cpu_control::{TaskSample, SNAPSHOT_CHUNK};
    let mut vs = new_vs_with(4 * SNAPSHOT_CHUNK);
    let managed = vs
        .create(
            &name("m"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 50),
        )
        .unwrap();
    let plain = vs
        .create(&name("p"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let (sm, sp) = (
        vs.slot_of_id(managed).unwrap(),
        vs.slot_of_id(plain).unwrap(),
    );
    for pid in 1..=3000u64 {
        vs.add_process(pid, if pid % 3 == 0 { sm } else { sp })
            .unwrap();
    }
    // A task vs reniced, back in a plain VS: its nice is still to be given back.
    vs.members.get_mut(2).unwrap().nice_flags = NICE_MANAGED;
    let mut seen = Vec::new();
    let mut out = vec![TaskSample::default(); 10_000];
    let (mut from, mut sections) = (Some(0), 0);
    while let Some(at) = from {
        let (k, next) = vs.members_snapshot(at, &mut out);
        seen.extend(out[..k].iter().map(|s| s.pid));
        from = next;
        sections += 1;
    }
    assert_eq!(sections, 4, "one section per chunk of the table");
    seen.sort_unstable();
    let mut want: Vec<u64> = (1..=3000).filter(|p| p % 3 == 0).collect();
    want.push(2);
    want.sort_unstable();
    assert_eq!(seen, want);
    // A full `out` stops the chunk there; the rest is sampled next tick.
    let mut small = vec![TaskSample::default(); 5];
    assert_eq!(vs.members_snapshot(0, &mut small).0, 5);
}

/// One step of [`tick_caches_follow_the_tree`].
#[derive(Clone, Debug)]
enum TreeOp {
    /// A VS under the `parent`-th live one, with its own CPU share (`share` > 0) or not.
    Create {
        parent: usize,
        share: u32,
    },
    Destroy(usize),
    /// Detach (`share` > 0) or attach the CPU share of the `vs`-th live VS.
    SetCpu {
        vs: usize,
        share: u32,
    },
    /// A task of the `vs`-th live VS ran for `ms`.
    Run {
        vs: usize,
        ms: u64,
    },
    Tick,
}

fn tree_op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        (any::<usize>(), prop_oneof![Just(0u32), 1u32..30])
            .prop_map(|(parent, share)| TreeOp::Create { parent, share }),
        any::<usize>().prop_map(TreeOp::Destroy),
        (any::<usize>(), prop_oneof![Just(0u32), 1u32..30])
            .prop_map(|(vs, share)| TreeOp::SetCpu { vs, share }),
        (any::<usize>(), 1u64..50).prop_map(|(vs, ms)| TreeOp::Run { vs, ms }),
        Just(TreeOp::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// The tick caches each VS's pool and adds CPU time up the tree incrementally until the
    /// tree changes: after any mix of creates, destroys, share changes and runs, every VS's
    /// `cpu_subtree_ns` is its own time plus its live descendants', and a VS that ran in a
    /// managed pool has that pool's target (a stale pool would put it elsewhere), unless the
    /// pool's child pools take all of it or the pool used too little to compete (under 0.5 %
    /// of the period's CPU time: `share::is_busy`).
    #[test]
    fn tick_caches_follow_the_tree(ops in prop::collection::vec(tree_op(), 1..120)) {
        let mut vs = new_vs();
        let mut live: Vec<u32> = vec![VS_ROOT];
        // Who ran since the last tick (slot, ns; forgotten when the tree changes, which only
        // makes the busy test below stricter), and all CPU time since the last tick.
        let mut ran: Vec<(usize, u64)> = Vec::new();
        let mut period_ns = 0u64;
        let mut acts = vec![vs_core::cpu_control::NiceAction::default(); 4];
        for (k, op) in ops.into_iter().enumerate() {
            match op {
                TreeOp::Create { parent, share } => {
                    let p = live[parent % live.len()];
                    let attrs = if share > 0 {
                        VsAttrs::default().with(VS_ATTR_CPU, share)
                    } else {
                        VsAttrs::default()
                    };
                    if let Ok(id) = vs.create(&name(&format!("v{k}")), p, VS_ID_AUTO, &attrs) {
                        live.push(id);
                    }
                }
                TreeOp::Destroy(i) => {
                    let id = live[i % live.len()];
                    if id != VS_ROOT && vs.destroy(id).is_ok() {
                        live.retain(|&x| x != id);
                        ran.clear();
                    }
                }
                TreeOp::SetCpu { vs: i, share } => {
                    let id = live[i % live.len()];
                    let r = if share > 0 {
                        vs.reg.set(id, 0, 0, &VsAttrs::default().with(VS_ATTR_CPU, share))
                    } else {
                        vs.reg.set(id, 1 << VS_ATTR_CPU, 0, &VsAttrs::default())
                    };
                    if r.is_ok() {
                        ran.clear();
                    }
                }
                TreeOp::Run { vs: i, ms } => {
                    let slot = vs.slot_of_id(live[i % live.len()]).unwrap();
                    if slot != 0 {
                        vs.add_process(9_000, slot).unwrap();
                    }
                    vs.charge(9_000, ms * 1_000_000);
                    vs.on_exit(9_000);
                    ran.push((slot, ms * 1_000_000));
                    period_ns += ms * 1_000_000;
                }
                TreeOp::Tick => {
                    vs.cpu_tick(&[], &mut acts);
                    // The child pools drawing from `pool` (detached VSs whose parent draws
                    // from it) leave its own tasks 100 - their shares, which may be nothing.
                    let children = |pool: usize| -> u32 {
                        let reg = &vs.reg;
                        live.iter()
                            .map(|&id| vs.slot_of_id(id).unwrap())
                            .filter(|&c| c != 0 && vs_core::share::pool_of(reg, c) == c)
                            .filter(|&c| vs_core::share::pool_of(reg, reg.node(c).unwrap().parent as usize) == pool)
                            .map(|c| reg.node(c).unwrap().own[VS_ATTR_CPU as usize])
                            .sum()
                    };
                    let pool_of = |s: usize| vs_core::share::pool_of(&vs.reg, s);
                    for &(s, _) in &ran {
                        let pool = pool_of(s);
                        let used: u64 = ran.iter().filter(|&&(o, _)| pool_of(o) == pool).map(|&(_, ns)| ns).sum();
                        let busy = vs_core::share::is_busy(used, period_ns, 0);
                        if pool != 0 && busy && children(pool) < 100 {
                            prop_assert!(vs.stats(s).cpu_target_ppm > 0, "VS in slot {} ran in pool {} but has no target", s, pool);
                        }
                    }
                    ran.clear();
                    period_ns = 0;
                    for &id in &live {
                        let s = vs.slot_of_id(id).unwrap();
                        let mut want = 0u64;
                        for &other in &live {
                            let o = vs.slot_of_id(other).unwrap();
                            let mut a = o;
                            let mut below = o == s;
                            while a != 0 && !below {
                                a = vs.reg.node(a).unwrap().parent as usize;
                                below = a == s;
                            }
                            if below {
                                want += vs.stats(o).cpu_time_ns;
                            }
                        }
                        prop_assert_eq!(vs.stats(s).cpu_subtree_ns, want, "VS {} (slot {})", id, s);
                    }
                }
            }
        }
    }
}

/// `addprocess --tree` (or of the pid) can reach a child that the kernel has already made
/// visible (copy_process linked it into the task and thread lists) before its fork tracepoint
/// ran: the child is then moved before `on_fork` binds it. Whether or not the fork was checked
/// (probes armed or not), the child must be counted once, in the VS its entry names.
#[test]
fn child_moved_before_its_fork_tracepoint_is_counted_once() {
    for checked in [true, false] {
        let (mut vs, _a, _b, sa, sb) = two_vs();
        if checked {
            // A limit, so that the fork is reserved at its syscall (probes armed).
            vs.reg
                .set(
                    vs.reg.node(sa).unwrap().id,
                    0,
                    0,
                    &VsAttrs::default().with(VS_ATTR_PROCS, 10),
                )
                .unwrap();
        }
        vs.add_process(1, sa).unwrap();
        if checked {
            assert_eq!(vs.fork_check(1), ForkCheck::Allow);
        }
        // The child (pid 2) is visible: an explicit move reaches it first.
        vs.add_process(2, sb).unwrap();
        vs.on_fork(1, 2);
        let listed = |vs: &Vs<VecStore>, slot: usize| {
            vs.members
                .iter()
                .filter(|e| usize::from(e.slot) == slot)
                .count() as u64
        };
        for slot in [sa, sb] {
            let n = vs.reg.node(slot).unwrap();
            assert_eq!(
                vs.stats(slot).nr_procs,
                listed(&vs, slot),
                "checked {checked} slot {slot}"
            );
            assert_eq!(n.nr_reserved, 0, "checked {checked} slot {slot}");
        }
        // The explicit move stands.
        assert_eq!(vs.slot_of(2), sb, "checked {checked}");
        vs.on_exit(2);
        vs.on_exit(1);
        for slot in [sa, sb] {
            let n = vs.reg.node(slot).unwrap();
            assert_eq!(
                (n.nr_members, n.nr_reserved, n.subtree),
                (0, 0, 0),
                "checked {checked} slot {slot}"
            );
        }
        assert!(vs.members.is_empty());
    }
}
