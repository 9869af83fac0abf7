//! The membership hash table against std's HashMap, with clustered pids (as real pids are).

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use vs_core::members::{Entry, Full, Members};

#[derive(Clone, Debug)]
enum Op {
    Set(u64, u16),
    Remove(u64),
    Pending(u64, u16),
    /// Keep only the entries whose slot is above this.
    Retain(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let pid = prop_oneof![
        1u64..200,
        32000u64..32100,
        Just(u64::MAX),
        0xffff_8880_0000_0000u64..0xffff_8880_0000_1000u64
    ];
    prop_oneof![
        (pid.clone(), 1u16..50).prop_map(|(p, s)| Op::Set(p, s)),
        pid.clone().prop_map(Op::Remove),
        (pid, 0u16..3).prop_map(|(p, s)| Op::Pending(p, s)),
        (0u16..50).prop_map(Op::Retain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn behaves_like_a_map(ops in prop::collection::vec(op(), 1..400)) {
        let mut m = Members::new(vec![Entry::default(); 128]).unwrap();
        let mut model: HashMap<u64, (u16, u16)> = HashMap::new();
        for op in ops {
            match op {
                Op::Set(p, s) => {
                    let full = !model.contains_key(&p) && model.len() >= m.limit();
                    match m.entry(p) {
                        Ok(e) => { prop_assert!(!full); e.slot = s; model.entry(p).or_insert((0, 0)).0 = s; }
                        Err(Full) => prop_assert!(full),
                    }
                }
                Op::Remove(p) => {
                    let got = m.remove(p).map(|e| (e.slot, e.pending));
                    prop_assert_eq!(got, model.remove(&p));
                }
                Op::Pending(p, v) => {
                    if let Some(e) = m.get_mut(p) { e.pending = v; }
                    if let Some(e) = model.get_mut(&p) { e.1 = v; }
                    m.tidy(p);
                    if model.get(&p) == Some(&(0, 0)) { model.remove(&p); }
                }
                Op::Retain(min) => {
                    let before = model.len();
                    model.retain(|_, v| v.0 > min);
                    prop_assert_eq!(m.retain(|e| e.slot > min), before - model.len());
                }
            }
            prop_assert_eq!(m.len(), model.len());
            for (&p, &(s, pe)) in &model {
                prop_assert_eq!(m.get(p).map(|e| (e.slot, e.pending)), Some((s, pe)));
            }
            prop_assert_eq!(m.iter().count(), model.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// A scan of positions in pieces (the CPU tick's, which skips blocks without entries)
    /// finds every entry exactly once, in position order.
    #[test]
    fn scans_in_pieces_find_every_entry(
        size in prop::sample::select(vec![8usize, 128, 1024, 4096]),
        ops in prop::collection::vec(op(), 1..300),
        pieces in prop::collection::vec(1usize..700, 1..40),
    ) {
        let blocks: Vec<AtomicU64> = (0..size.min(64)).map(|_| AtomicU64::new(0)).collect();
        let mut m = Members::with_shadow(vec![Entry::default(); size], None, Some(blocks)).unwrap();
        for op in ops {
            match op {
                Op::Set(p, s) => { if let Ok(e) = m.entry(p) { e.slot = s; } }
                Op::Remove(p) => { m.remove(p); }
                Op::Pending(p, v) => { if let Some(e) = m.get_mut(p) { e.pending = v; } m.tidy(p); }
                Op::Retain(min) => { m.retain(|e| e.slot > min); }
            }
        }
        let all: Vec<u64> = m.iter().map(|e| e.pid).collect();
        let mut scanned = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < m.capacity() {
            let len = pieces[i % pieces.len()];
            scanned.extend(m.at_positions(at..at + len).map(|e| e.pid));
            at += len;
            i += 1;
        }
        prop_assert_eq!(scanned, all);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// One pass of `retain` over a table filled to its limit, where probe runs are long and
    /// wrap around the end: exactly the kept entries are left, each found, shadow in step.
    #[test]
    fn retain_on_a_full_table_keeps_exactly_the_kept(
        pids in prop::collection::hash_set(1u64..100_000, 56),
        drop_mask in any::<u64>(),
    ) {
        let shadow: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
        let mut m = Members::with_shadow(vec![Entry::default(); 64], Some(shadow), None).unwrap();
        let pids: Vec<u64> = pids.into_iter().collect();
        for (i, &p) in pids.iter().enumerate() {
            m.entry(p).unwrap();
            m.set_slot(p, i as u16);
        }
        let dropped = |slot: u16| drop_mask >> slot & 1 == 1;
        let removed = m.retain(|e| !dropped(e.slot));
        prop_assert_eq!(removed, (0..56u16).filter(|&s| dropped(s)).count());
        prop_assert_eq!(m.len(), 56 - removed);
        for (i, &p) in pids.iter().enumerate() {
            prop_assert_eq!(m.get(p).is_some(), !dropped(i as u16), "pid {}", p);
        }
        prop_assert!(m.shadow_agrees());
    }
}

#[test]
fn rejects_bad_sizes_and_pid_zero() {
    assert!(Members::new(vec![Entry::default(); 100]).is_none());
    let mut m = Members::new(vec![Entry::default(); 8]).unwrap();
    assert_eq!(m.entry(0).err(), Some(Full));
    assert!(m.get(0).is_none());
    for p in 1..=7 {
        assert!(m.entry(p).is_ok());
    }
    assert_eq!(m.entry(8).err(), Some(Full), "7/8 of 8 is the limit");
}
