//! The seqcount under real concurrency: readers on other threads never keep a read that a
//! write section overlapped. The writer keeps two words equal inside every write section
//! (changing them one after the other); a reader that saw them differ and still got an
//! answer would be a torn read let through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vs_core::seq::SeqCount;

#[test]
fn readers_never_keep_a_torn_read() {
    let seq = Arc::new(SeqCount::new());
    let words = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let stop = Arc::new(AtomicBool::new(false));
    // Reads each reader kept, and torn ones among them.
    let kept = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let torn = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (seq, words, stop) = (seq.clone(), words.clone(), stop.clone());
            let (kept, torn) = (kept.clone(), torn.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let got = seq.read(|| {
                        let a = words[0].load(Relaxed);
                        let b = words[1].load(Relaxed);
                        Some((a, b))
                    });
                    if let Some((a, b)) = got {
                        kept[r].fetch_add(1, Relaxed);
                        torn.fetch_add(u64::from(a != b), Relaxed);
                    }
                }
            })
        })
        .collect();
    // Write until every reader has kept enough reads to have raced many write sections (or
    // for 20 s on a machine too busy to schedule them: then the count check below fails).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut writes = 0u64;
    while (writes < 100_000 || kept.iter().any(|k| k.load(Relaxed) < 100))
        && Instant::now() < deadline
    {
        writes += 1;
        seq.write_begin();
        words[0].store(writes, Relaxed);
        std::hint::spin_loop();
        words[1].store(writes, Relaxed);
        seq.write_end();
        if writes.is_multiple_of(16) {
            std::thread::yield_now();
        }
    }
    stop.store(true, Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(
        torn.load(Relaxed),
        0,
        "a reader kept a read a write overlapped"
    );
    for k in kept.iter() {
        assert!(
            k.load(Relaxed) >= 100,
            "a reader kept only {} reads",
            k.load(Relaxed)
        );
    }
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
