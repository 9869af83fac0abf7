// SPDX-License-Identifier: GPL-2.0
//! The stay cache counts every hit it accepts exactly once, to the rule it was filled with:
//! against a model, and with a thread hitting while another folds, clears and refills.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vs_core::stay_cache::{clear, fill, fold, hit, Key, WORDS_PER_CPU};

const CPUS: usize = 2;

fn table() -> Vec<AtomicU64> {
    (0..CPUS * WORDS_PER_CPU)
        .map(|_| AtomicU64::new(0))
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Fill { cpu: usize, key: Key, rule: u32 },
    Hit { cpu: usize, key: Key },
    Fold,
    Clear,
}

fn key() -> impl Strategy<Value = Key> {
    // Few keys (entries shared by several), and some that do not fit an entry.
    (
        prop_oneof![9u32..11, Just(16u32)],
        prop_oneof![0usize..4, Just(4096usize)],
        0usize..4,
    )
        .prop_map(|(event, cur, req)| Key { event, cur, req })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..CPUS + 1, key(), 0u32..4).prop_map(|(cpu, key, rule)| Op::Fill { cpu, key, rule }),
        8 => (0..CPUS + 1, key()).prop_map(|(cpu, key)| Op::Hit { cpu, key }),
        1 => Just(Op::Fold),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn hits_counted_once_to_their_rule(ops in prop::collection::vec(op(), 1..300)) {
        let t = table();
        // The model: what each CPU's cache holds for a key, and hits per rule.
        let mut cached: BTreeMap<(usize, u32, usize, usize), u32> = BTreeMap::new();
        let (mut want, mut got) = (BTreeMap::<u32, u64>::new(), BTreeMap::<u32, u64>::new());
        let add = |got: &mut BTreeMap<u32, u64>, r: u32, n: u64| {
            assert_ne!(r, 0, "a hit of no rule was counted");
            *got.entry(r).or_default() += n;
        };
        for o in ops {
            match o {
                Op::Fill { cpu, key, rule } => {
                    fill(&t, cpu, key, rule, |r, n| add(&mut got, r, n));
                    let fits = cpu < CPUS && key.event < 16 && key.cur < 4096;
                    // What the new entry displaced (its way) is gone from the model too.
                    cached.retain(|&(c, e, cur, req), _| {
                        c != cpu || !same_way(Key { event: e, cur, req }, key)
                    });
                    if fits {
                        cached.insert((cpu, key.event, key.cur, key.req), rule);
                    }
                }
                Op::Hit { cpu, key } => {
                    let expect = cached.get(&(cpu, key.event, key.cur, key.req)).copied();
                    prop_assert_eq!(hit(&t, cpu, key), expect.is_some(), "{:?}", key);
                    if let Some(r) = expect.filter(|&r| r != 0) {
                        *want.entry(r).or_default() += 1;
                    }
                }
                Op::Fold => fold(&t, |r, n| add(&mut got, r, n)),
                Op::Clear => {
                    clear(&t, |r, n| add(&mut got, r, n));
                    cached.clear();
                }
            }
        }
        fold(&t, |r, n| add(&mut got, r, n));
        prop_assert_eq!(want, got);
    }
}

/// Whether `a` and `b` map to the same entry of a CPU: filled one after the other, the second
/// replaces the first (found by filling both in a scratch table).
fn same_way(a: Key, b: Key) -> bool {
    let t = table();
    fill(&t, 0, a, 1, |_, _| {});
    fill(&t, 0, b, 2, |_, _| {});
    !hit(&t, 0, a) || a == b
}

#[test]
fn a_full_count_falls_back_to_the_lock() {
    let t = table();
    let k = Key {
        event: 9,
        cur: 1,
        req: 2,
    };
    fill(&t, 0, k, 7, |_, _| {});
    // Set the count to its largest value: the next hit must lock.
    let word = t.iter().find(|w| w.load(Ordering::Relaxed) != 0).unwrap();
    word.fetch_or((1 << 35) - 1, Ordering::Relaxed);
    assert!(!hit(&t, 0, k));
    let mut n = 0;
    fold(&t, |r, h| {
        assert_eq!(r, 7);
        n += h;
    });
    assert_eq!(n, (1 << 35) - 1);
    assert!(hit(&t, 0, k), "a fold makes room again");
}

/// The owner CPU hits (and refills under the lock when its entry is gone) while another
/// thread folds and clears under the same lock: every accepted hit is counted exactly once.
#[test]
fn threads_lose_and_invent_no_hit() {
    let t = Arc::new(table());
    let lock = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let k = Key {
        event: 9,
        cur: 3,
        req: 1,
    };
    let folder = {
        let (t, lock, stop) = (t.clone(), lock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut folded = lock.lock().unwrap();
                if i.is_multiple_of(3) {
                    clear(&t, |r, n| {
                        assert_eq!(r, 5);
                        *folded += n
                    });
                } else {
                    fold(&t, |r, n| {
                        assert_eq!(r, 5);
                        *folded += n
                    });
                }
                i += 1;
            }
        })
    };
    let mut accepted = 0u64;
    for _ in 0..200_000 {
        if hit(&t, 0, k) {
            accepted += 1;
        } else {
            // The locked path: counts its own hit and refills.
            let mut folded = lock.lock().unwrap();
            *folded += 1;
            accepted += 1;
            fill(&t, 0, k, 5, |r, n| {
                assert_eq!(r, 5);
                *folded += n
            });
        }
    }
    stop.store(true, Ordering::Relaxed);
    folder.join().unwrap();
    let mut folded = lock.lock().unwrap();
    fold(&t, |_, n| *folded += n);
    assert_eq!(*folded, accepted);
}
