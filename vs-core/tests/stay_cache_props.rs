// SPDX-License-Identifier: GPL-2.0
//! The stay cache counts every hit it accepts exactly once, to the counter (a rule's hits, a
//! VS's refused tags) it was filled with: against a model, and with a thread hitting while
//! another folds, clears, forgets and refills.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vs_core::stay_cache::{clear, fill, fold, forget, hit, Counter, Key, TAG_WRITE, WORDS_PER_CPU};

const CPUS: usize = 2;

fn table() -> Vec<AtomicU64> {
    (0..CPUS * WORDS_PER_CPU)
        .map(|_| AtomicU64::new(0))
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Fill {
        cpu: usize,
        key: Key,
        counter: Counter,
    },
    Hit {
        cpu: usize,
        key: Key,
    },
    Fold,
    Clear,
    Forget(Key),
}

fn key() -> impl Strategy<Value = Key> {
    // Few keys (entries shared by several), and some that do not fit an entry.
    (
        prop_oneof![9u32..11, Just(TAG_WRITE), Just(16u32)],
        prop_oneof![0usize..4, Just(4096usize)],
        0usize..4,
    )
        .prop_map(|(event, cur, req)| Key { event, cur, req })
}

fn counter() -> impl Strategy<Value = Counter> {
    prop_oneof![
        Just(Counter::None),
        (1u32..4).prop_map(Counter::Rule),
        (1usize..3).prop_map(Counter::TagsRefused),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..CPUS + 1, key(), counter()).prop_map(|(cpu, key, counter)| Op::Fill { cpu, key, counter }),
        8 => (0..CPUS + 1, key()).prop_map(|(cpu, key)| Op::Hit { cpu, key }),
        1 => Just(Op::Fold),
        1 => Just(Op::Clear),
        1 => key().prop_map(Op::Forget),
    ]
}

proptest! {
    #[test]
    fn hits_counted_once_to_their_counter(ops in prop::collection::vec(op(), 1..300)) {
        let t = table();
        // The model: what each CPU's cache holds for a key, and hits per counter.
        let mut cached: BTreeMap<(usize, u32, usize, usize), Counter> = BTreeMap::new();
        let (mut want, mut got) = (BTreeMap::<Counter, u64>::new(), BTreeMap::<Counter, u64>::new());
        let add = |got: &mut BTreeMap<Counter, u64>, c: Counter, n: u64| {
            assert_ne!(c, Counter::None, "a hit of no counter was counted");
            *got.entry(c).or_default() += n;
        };
        for o in ops {
            match o {
                Op::Fill { cpu, key, counter } => {
                    fill(&t, cpu, key, counter, |c, n| add(&mut got, c, n));
                    let fits = cpu < CPUS && key.event < 16 && key.cur < 4096;
                    // What the new entry displaced (its way) is gone from the model too.
                    cached.retain(|&(c, e, cur, req), _| {
                        c != cpu || !same_way(Key { event: e, cur, req }, key)
                    });
                    if fits {
                        cached.insert((cpu, key.event, key.cur, key.req), counter);
                    }
                }
                Op::Hit { cpu, key } => {
                    let expect = cached.get(&(cpu, key.event, key.cur, key.req)).copied();
                    prop_assert_eq!(hit(&t, cpu, key), expect.is_some(), "{:?}", key);
                    if let Some(c) = expect.filter(|&c| c != Counter::None) {
                        *want.entry(c).or_default() += 1;
                    }
                }
                Op::Fold => fold(&t, |c, n| add(&mut got, c, n)),
                Op::Clear => {
                    clear(&t, |c, n| add(&mut got, c, n));
                    cached.clear();
                }
                Op::Forget(key) => {
                    forget(&t, key, |c, n| add(&mut got, c, n));
                    cached.retain(|&(_, e, cur, req), _| (e, cur, req) != (key.event, key.cur, key.req));
                }
            }
        }
        fold(&t, |c, n| add(&mut got, c, n));
        prop_assert_eq!(want, got);
    }
}

/// Whether `a` and `b` map to the same entry of a CPU: filled one after the other, the second
/// replaces the first (found by filling both in a scratch table).
fn same_way(a: Key, b: Key) -> bool {
    let t = table();
    fill(&t, 0, a, Counter::Rule(1), |_, _| {});
    fill(&t, 0, b, Counter::Rule(2), |_, _| {});
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
    fill(&t, 0, k, Counter::Rule(7), |_, _| {});
    // Set the count to its largest value: the next hit must lock.
    let word = t.iter().find(|w| w.load(Ordering::Relaxed) != 0).unwrap();
    word.fetch_or((1 << 35) - 1, Ordering::Relaxed);
    assert!(!hit(&t, 0, k));
    let mut n = 0;
    fold(&t, |r, h| {
        assert_eq!(r, Counter::Rule(7));
        n += h;
    });
    assert_eq!(n, (1 << 35) - 1);
    assert!(hit(&t, 0, k), "a fold makes room again");
}

/// The owner CPU hits (and refills under the lock when its entry is gone) while another
/// thread folds, clears and forgets under the same lock: every accepted hit is counted
/// exactly once.
#[test]
fn threads_lose_and_invent_no_hit() {
    let t = Arc::new(table());
    let lock = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let k = Key {
        event: TAG_WRITE,
        cur: 3,
        req: 0,
    };
    let c = Counter::TagsRefused(3);
    let folder = {
        let (t, lock, stop) = (t.clone(), lock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut folded = lock.lock().unwrap();
                let mut count = |r, n| {
                    assert_eq!(r, c);
                    *folded += n
                };
                match i % 4 {
                    0 => clear(&t, &mut count),
                    1 => forget(&t, k, &mut count),
                    _ => fold(&t, &mut count),
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
            fill(&t, 0, k, c, |r, n| {
                assert_eq!(r, c);
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
