//! The seqcount under real concurrency: readers on other threads never keep a read that a
//! write section overlapped. The writer keeps two words equal inside every write section
//! (changing them one after the other); a reader that saw them differ and still got an
//! answer would be a torn read let through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use vs_core::seq::SeqCount;

#[test]
fn readers_never_keep_a_torn_read() {
    let seq = Arc::new(SeqCount::new());
    let words = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (seq, words, stop) = (seq.clone(), words.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut kept, mut torn) = (0u64, 0u64);
                while !stop.load(Relaxed) {
                    let got = seq.read(|| {
                        let a = words[0].load(Relaxed);
                        let b = words[1].load(Relaxed);
                        Some((a, b))
                    });
                    if let Some((a, b)) = got {
                        kept += 1;
                        torn += u64::from(a != b);
                    }
                }
                (kept, torn)
            })
        })
        .collect();
    for i in 1..=200_000u64 {
        seq.write_begin();
        words[0].store(i, Relaxed);
        std::hint::spin_loop();
        words[1].store(i, Relaxed);
        seq.write_end();
    }
    stop.store(true, Relaxed);
    let mut kept = 0;
    for r in readers {
        let (k, torn) = r.join().unwrap();
        assert_eq!(torn, 0, "a reader kept a read a write overlapped");
        kept += k;
    }
    // The readers got answers too: the protocol does not refuse everything.
    assert!(kept > 0);
}

#[test]
fn a_read_inside_a_write_section_is_refused() {
    let seq = SeqCount::new();
    assert_eq!(seq.read(|| Some(1)), Some(1));
    seq.write_begin();
    assert_eq!(seq.read(|| Some(1)), None);
    seq.write_end();
    // A write section that begins and ends during a read is caught by the count moving.
    assert_eq!(
        seq.read(|| {
            seq.write_begin();
            seq.write_end();
            Some(1)
        }),
        None
    );
    assert_eq!(seq.read(|| Some(2)), Some(2));
}
