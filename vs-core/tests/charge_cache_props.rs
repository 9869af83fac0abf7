// SPDX-License-Identifier: GPL-2.0
//! The per-CPU charge cache loses and invents no time: against a model (a map from pid to the
//! time added), and with real threads adding while another folds.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use vs_core::charge_cache::{add, drain, take, SLOTS_PER_CPU};

const CPUS: usize = 3;

fn table() -> Vec<AtomicU64> {
    (0..CPUS * SLOTS_PER_CPU)
        .map(|_| AtomicU64::new(0))
        .collect()
}

#[derive(Clone, Debug)]
enum Op {
    Add { cpu: usize, pid: u64, ns: u64 },
    Take(u64),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    // Few pids (collisions in the probe window) and some that cannot be cached.
    let pid = prop_oneof![1u64..40, Just(0u64), Just(1 << 22), 1u64..(1 << 22)];
    prop_oneof![
        8 => (0..CPUS + 1, pid, 0u64..1_000_000).prop_map(|(cpu, pid, ns)| Op::Add { cpu, pid, ns }),
        2 => (1u64..40).prop_map(Op::Take),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    #[test]
    fn no_time_lost_or_invented(ops in prop::collection::vec(op(), 1..400)) {
        let t = table();
        let mut added: BTreeMap<u64, u64> = BTreeMap::new();
        let mut charged: BTreeMap<u64, u64> = BTreeMap::new();
        for o in ops {
            match o {
                Op::Add { cpu, pid, ns } => {
                    *added.entry(pid).or_default() += ns;
                    if !add(&t, cpu, pid, ns) {
                        // The caller charges directly, under the lock.
                        prop_assert!(ns > 0);
                        *charged.entry(pid).or_default() += ns;
                    }
                }
                Op::Take(pid) => {
                    take(&t, pid, |p, ns| *charged.entry(p).or_default() += ns);
                    // Nothing of `pid` is left cached.
                    let mut left = 0;
                    drain(&t, |p, ns| if p == pid { left += ns } else {
                        *charged.entry(p).or_default() += ns
                    });
                    prop_assert_eq!(left, 0);
                }
                Op::Drain => drain(&t, |p, ns| *charged.entry(p).or_default() += ns),
            }
        }
        drain(&t, |p, ns| *charged.entry(p).or_default() += ns);
        added.retain(|_, v| *v != 0);
        prop_assert_eq!(added, charged);
    }
}

#[test]
fn a_cpus_slots_fill_then_fall_back() {
    let t = table();
    let mut cached = 0u64;
    for pid in 1..=1000u64 {
        if add(&t, 0, pid, 1) {
            cached += 1;
        }
    }
    assert!(
        cached >= SLOTS_PER_CPU as u64 / 2 && cached <= SLOTS_PER_CPU as u64,
        "{cached}"
    );
    // Other CPUs' slots are untouched.
    assert!(t[SLOTS_PER_CPU..]
        .iter()
        .all(|s| s.load(Ordering::Relaxed) == 0));
    let mut n = 0;
    drain(&t, |_, ns| n += ns);
    assert_eq!(n, cached);
}

/// One thread per CPU adds (as the scheduler path does, each to its own slots) while a folder
/// takes and drains: the sum charged equals the sum added.
#[test]
fn concurrent_adds_and_folds_balance() {
    let t = Arc::new(table());
    let stop = Arc::new(AtomicBool::new(false));
    let mut adders = Vec::new();
    for cpu in 0..CPUS {
        let t = Arc::clone(&t);
        adders.push(std::thread::spawn(move || {
            let (mut added, mut direct) = (0u64, 0u64);
            for i in 0..200_000u64 {
                let pid = 1 + (i * 7 + cpu as u64) % 50;
                let ns = 1 + i % 1000;
                added += ns;
                if !add(&t, cpu, pid, ns) {
                    direct += ns;
                }
            }
            (added, direct)
        }));
    }
    let folder = {
        let (t, stop) = (Arc::clone(&t), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut got = 0u64;
            let mut pid = 1;
            while !stop.load(Ordering::Relaxed) {
                take(&t, pid, |_, ns| got += ns);
                pid = pid % 50 + 1;
                if pid == 1 {
                    drain(&t, |_, ns| got += ns);
                }
            }
            got
        })
    };
    let (mut added, mut direct) = (0, 0);
    for a in adders {
        let (x, y) = a.join().unwrap();
        added += x;
        direct += y;
    }
    stop.store(true, Ordering::Relaxed);
    let mut got = folder.join().unwrap();
    drain(&t, |_, ns| got += ns);
    assert_eq!(got + direct, added);
}
