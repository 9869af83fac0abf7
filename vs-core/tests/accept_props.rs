//! The accept scheduler against its promises: accepts split by weight among requesters that
//! keep connections queued; the lower share queued first is not served first; nobody starves;
//! FIFO within a requester; a requester that was away banks no credit; admission caps each
//! requester at its part of the backlog. The table of managed listeners and its index agree,
//! and the index's shadow answers the unlocked admission check exactly.

use proptest::prelude::*;
use std::sync::atomic::AtomicU64;
use vs_core::accept::{admit, AcceptTable, Listener, MIN_WEIGHT_PPM, REQUESTERS};
use vs_core::members::{Entry, Members};
use vs_core::seq::SeqCount;
use vs_core::unlocked::Unlocked;

type Table = AcceptTable<Vec<Listener>, Vec<Entry>, Vec<AtomicU64>>;

/// The index shadow's sequence count: one per test thread, as tests run in parallel (the
/// kernel's is a static).
fn seq() -> &'static SeqCount {
    thread_local! {
        static SEQ: &'static SeqCount = Box::leak(Box::new(SeqCount::new()));
    }
    SEQ.with(|s| *s)
}

/// A table of `n` listeners, its index the smallest power of two that holds them (7/8 full
/// at most, and 8 positions at least).
fn table(n: usize) -> Table {
    let cap = (n * 8).div_ceil(7).next_power_of_two().max(8);
    let shadow = (0..cap).map(|_| AtomicU64::new(0)).collect();
    let index = Members::with_shadow(vec![Entry::default(); cap], Some(shadow), None).unwrap();
    AcceptTable::new(vec![Listener::default(); n], index).unwrap()
}

/// Whether the unlocked check finds listener `addr` managed in `t`.
fn managed_unlocked(t: &Table, addr: u64) -> Option<bool> {
    // The state's count: the listeners' own must be what validates the read.
    let state = SeqCount::new();
    state.write_begin();
    let u = Unlocked {
        seq: &state,
        members: &[],
        view: &[],
        objects: &[],
        stays: &[],
        listeners: t.shadow().unwrap(),
        listeners_seq: seq(),
    };
    u.listener_managed(addr)
}

/// Serve `rounds` accepts from a queue that always holds `per` connections of every requester.
fn serve(weights: &[u32], rounds: usize) -> Vec<usize> {
    let mut t = table(1);
    let l = t.manage(0x1000, seq()).unwrap();
    let mut served = vec![0; weights.len()];
    // Queue order: requester 0's connections first, and so on.
    let queue: Vec<u16> = (0..weights.len() as u16).flat_map(|s| [s, s]).collect();
    for _ in 0..rounds {
        let i = l.pick(&queue, |s| weights[s]).unwrap();
        served[usize::from(queue[i])] += 1;
    }
    served
}

#[test]
fn lower_share_queued_first_is_not_served_first() {
    let mut t = table(1);
    let l = t.manage(1, seq()).unwrap();
    // Requester 5 (25 %) queued before requester 9 (75 %).
    let queue = [5u16, 5, 9, 9];
    let w = |s: usize| if s == 5 { 250_000 } else { 750_000 };
    assert_eq!(queue[l.pick(&queue, w).unwrap()], 9);
}

#[test]
fn equal_weights_alternate() {
    let served = serve(&[500_000, 500_000], 1000);
    assert_eq!(served, vec![500, 500]);
}

#[test]
fn fifo_within_a_requester() {
    let mut t = table(1);
    let l = t.manage(1, seq()).unwrap();
    let queue = [3u16, 4, 3, 4];
    let i = l.pick(&queue, |_| 500_000).unwrap();
    assert!(
        i == 0 || i == 1,
        "the first connection of a requester competes, got {i}"
    );
}

#[test]
fn away_requester_banks_no_credit() {
    let mut t = table(1);
    let l = t.manage(1, seq()).unwrap();
    // Requester 1 alone for 1000 accepts, then requester 2 arrives: they alternate at once
    // instead of requester 2 taking 1000 accepts in a row.
    for _ in 0..1000 {
        l.pick(&[1, 1], |_| 500_000).unwrap();
    }
    let mut twos = 0;
    for _ in 0..10 {
        let q = [1u16, 2];
        if q[l.pick(&q, |_| 500_000).unwrap()] == 2 {
            twos += 1;
        }
    }
    assert!((4..=6).contains(&twos), "requester 2 got {twos} of 10");
}

#[test]
fn admission_caps_at_the_share_of_the_backlog() {
    assert!(admit(0, 128, 500_000));
    assert!(admit(63, 128, 500_000));
    assert!(!admit(64, 128, 500_000));
    // At least one connection, whatever the share.
    assert!(admit(0, 4, 1));
    assert!(!admit(1, 4, 1));
    // Out-of-range weights are capped at the whole backlog.
    assert!(!admit(10, 10, u32::MAX));
}

#[test]
fn table_full_and_forget() {
    let mut t = table(2);
    assert!(t.manage(1, seq()).is_some());
    assert!(t.manage(2, seq()).is_some());
    assert!(t.manage(3, seq()).is_none(), "full");
    assert!(t.manage(0, seq()).is_none(), "0 is never a listener");
    t.forget(1, seq());
    assert_eq!(t.len(), 1);
    assert!(t.manage(3, seq()).is_some());
    assert!(t.get(1).is_none());
    t.forget_requester(4);
}

#[test]
fn an_index_too_small_for_the_listeners_is_refused() {
    let shadow = (0..4).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
    let index = Members::with_shadow(vec![Entry::default(); 4], Some(shadow), None).unwrap();
    assert!(AcceptTable::new(vec![Listener::default(); 4], index).is_none());
}

proptest! {
    /// Listeners managed and closed in any order (kernel-like addresses, a few that share
    /// their low bits' hash chains): `get` matches a model, the index agrees with the table,
    /// and the unlocked check answers as `get` does.
    #[test]
    fn the_index_and_its_shadow_follow_the_table(
        ops in prop::collection::vec((any::<bool>(), 0u64..24), 1..400),
    ) {
        let mut t = table(8);
        let mut model = std::collections::BTreeSet::new();
        let addr = |k: u64| 0xffff_8881_0000_0000 + 0x800 * k;
        for (manage, k) in ops {
            if manage {
                let got = t.manage(addr(k), seq()).is_some();
                prop_assert_eq!(got, model.contains(&k) || model.len() < 8);
                if got {
                    model.insert(k);
                }
            } else {
                t.forget(addr(k), seq());
                model.remove(&k);
            }
            prop_assert_eq!(t.len(), model.len());
            prop_assert!(t.index_agrees());
            for k in 0..24 {
                prop_assert_eq!(t.get(addr(k)).is_some(), model.contains(&k));
                prop_assert_eq!(managed_unlocked(&t, addr(k)), Some(model.contains(&k)));
            }
        }
    }
}

proptest! {
    #[test]
    fn backlogged_requesters_split_by_weight(
        weights in prop::collection::vec(MIN_WEIGHT_PPM..1_000_000, 2..6),
        rounds in 500usize..3000,
    ) {
        let served = serve(&weights, rounds);
        let total_w: f64 = weights.iter().map(|&w| w as f64).sum();
        for (s, &n) in served.iter().enumerate() {
            let fair = rounds as f64 * weights[s] as f64 / total_w;
            prop_assert!((n as f64 - fair).abs() <= weights.len() as f64 + 1.0,
                "requester {} served {} of {}, fair {:.1}", s, n, rounds, fair);
        }
    }

    #[test]
    fn nobody_starves(
        ops in prop::collection::vec((0u16..40, 1u32..1_000_000), 1..300),
    ) {
        // Random arrivals from up to 40 requesters (more than a listener remembers), random
        // weights; every accept serves one queued connection. Each connection waits at most
        // (sum of weights / its weight + requesters) accepts: bounded.
        let mut t = table(1);
        let l = t.manage(7, seq()).unwrap();
        let mut weight = std::collections::HashMap::new();
        let mut queue: Vec<(u16, usize)> = Vec::new(); // (requester, accepts seen while queued)
        for (s, w) in ops {
            let w = *weight.entry(s).or_insert(w.max(MIN_WEIGHT_PPM));
            let _ = w;
            queue.push((s, 0));
            if queue.len() > 3 {
                let slots: Vec<u16> = queue.iter().map(|q| q.0).collect();
                let i = l.pick(&slots, |s| weight[&(s as u16)]).unwrap();
                // FIFO within the requester: no earlier connection of the same requester.
                prop_assert!(!slots[..i].contains(&slots[i]));
                queue.remove(i);
                for q in queue.iter_mut() {
                    q.1 += 1;
                    let bound = 1_000_000 / MIN_WEIGHT_PPM as usize * (REQUESTERS + 40) + 64;
                    prop_assert!(q.1 < bound, "requester {} waited {} accepts", q.0, q.1);
                }
            }
        }
    }
}
