//! The `vsq` deficit round robin against its promises: every queued packet goes out once, in
//! FIFO order per class; only classes with packets are served (work-conserving); and while
//! classes stay backlogged, the bytes each sends are in proportion to its quantum, within one
//! packet and one quantum per class (byte-accurate whatever the packet sizes).

use proptest::prelude::*;
use std::collections::VecDeque;
use vs_core::drr::{Drr, DrrClass, DRR_MIN_QUANTUM};

const CLASSES: usize = 8;

fn drain(
    drr: &mut Drr<Vec<DrrClass>>,
    queues: &mut [VecDeque<(u32, u32)>],
) -> Option<(usize, u32, u32)> {
    let c = drr.pick(|c| queues[c].front().map(|p| p.0))?;
    let (len, seq) = queues[c].pop_front().expect("picked class has a packet");
    drr.dequeued(c, queues[c].is_empty());
    Some((c, len, seq))
}

proptest! {
    #[test]
    fn every_packet_once_fifo_per_class(
        ops in prop::collection::vec((0..CLASSES, 1u32..70_000, any::<bool>()), 1..400),
        quanta in prop::collection::vec(1u32..20_000, CLASSES),
    ) {
        let mut drr = Drr::new(vec![DrrClass::default(); CLASSES]);
        let mut queues = vec![VecDeque::new(); CLASSES];
        let mut sent = vec![Vec::new(); CLASSES];
        let mut seq = 0u32;
        for (c, len, deq) in ops {
            if deq {
                if let Some((k, _, s)) = drain(&mut drr, &mut queues) {
                    sent[k].push(s);
                } else {
                    prop_assert!(queues.iter().all(|q| q.is_empty()), "idle with packets queued");
                }
            } else {
                queues[c].push_back((len, seq));
                drr.enqueued(c, quanta[c]);
                seq += 1;
            }
            prop_assert_eq!(drr.active(), queues.iter().filter(|q| !q.is_empty()).count());
        }
        while let Some((k, _, s)) = drain(&mut drr, &mut queues) {
            sent[k].push(s);
        }
        prop_assert_eq!(sent.iter().map(Vec::len).sum::<usize>(), seq as usize);
        for s in &sent {
            prop_assert!(s.windows(2).all(|w| w[0] < w[1]), "FIFO within a class");
        }
        prop_assert_eq!(drr.active(), 0);
    }

    #[test]
    fn backlogged_classes_share_bytes_by_quantum(
        quanta in prop::collection::vec(DRR_MIN_QUANTUM..20_000, 2..CLASSES),
        lens in prop::collection::vec(64u32..65_536, 1..16),
        rounds in 200usize..2000,
    ) {
        let n = quanta.len();
        let mut drr = Drr::new(vec![DrrClass::default(); CLASSES]);
        let max_len = *lens.iter().max().unwrap();
        let mut bytes = vec![0u64; n];
        let mut next = vec![0usize; n];
        // Every class always has a packet: its lengths cycle through `lens` from its own offset.
        for c in 0..n {
            next[c] = c % lens.len();
            drr.enqueued(c, quanta[c]);
        }
        for _ in 0..rounds {
            let c = drr.pick(|c| (c < n).then(|| lens[next[c]])).unwrap();
            bytes[c] += u64::from(lens[next[c]]);
            next[c] = (next[c] + 1) % lens.len();
            drr.dequeued(c, false);
        }
        // Normalised service differs by at most one packet plus one quantum per class.
        let total_q: u64 = quanta.iter().map(|&q| u64::from(q)).sum();
        let total_b: u64 = bytes.iter().sum();
        for c in 0..n {
            let fair = total_b as f64 * quanta[c] as f64 / total_q as f64;
            let slack = (max_len + quanta[c]) as f64 * n as f64;
            prop_assert!((bytes[c] as f64 - fair).abs() <= slack,
                "class {} sent {} bytes, fair {:.0} (slack {:.0})", c, bytes[c], fair, slack);
        }
    }

    #[test]
    fn remove_and_reset_keep_the_list_consistent(
        ops in prop::collection::vec((0..CLASSES, 0u8..4), 1..300),
    ) {
        let mut drr = Drr::new(vec![DrrClass::default(); CLASSES]);
        let mut queued = vec![0u32; CLASSES];
        for (c, op) in ops {
            match op {
                0 | 1 => { queued[c] += 1; drr.enqueued(c, 1500); }
                2 => { queued[c] = 0; drr.remove(c); }
                _ => {
                    if let Some(k) = drr.pick(|k| (queued[k] > 0).then_some(1000)) {
                        queued[k] -= 1;
                        drr.dequeued(k, queued[k] == 0);
                    }
                }
            }
            for k in 0..CLASSES {
                prop_assert_eq!(drr.is_active(k), queued[k] > 0);
            }
        }
        drr.reset();
        prop_assert_eq!(drr.active(), 0);
        prop_assert!(drr.pick(|_| Some(1)).is_none());
    }
}

#[test]
fn seventy_thirty_with_unequal_packet_sizes() {
    // Class 0 sends 64 KiB GSO packets, class 1 1500-byte ones; quanta 7:3.
    let mut drr = Drr::new(vec![DrrClass::default(); 2]);
    drr.enqueued(0, 7 * 1514);
    drr.enqueued(1, 3 * 1514);
    let lens = [65_536u32, 1500];
    let mut bytes = [0u64; 2];
    for _ in 0..20_000 {
        let c = drr.pick(|c| Some(lens[c])).unwrap();
        bytes[c] += u64::from(lens[c]);
        drr.dequeued(c, false);
    }
    let part = bytes[0] as f64 / (bytes[0] + bytes[1]) as f64;
    assert!((part - 0.7).abs() < 0.01, "class 0 got {part:.4}");
}

#[test]
fn out_of_range_classes_are_ignored() {
    let mut drr = Drr::new(vec![DrrClass::default(); 2]);
    drr.enqueued(5, 1000);
    drr.remove(7);
    drr.dequeued(9, true);
    assert_eq!(drr.active(), 0);
    assert!(drr.pick(|_| Some(1)).is_none());
}
