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
