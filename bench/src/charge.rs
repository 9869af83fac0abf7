// SPDX-License-Identifier: GPL-2.0
//! The CPU charge on many CPUs at once, for bench/charge.sh.
//!
//! The micro `chargeN` runs N pipe ping-pong pairs at the same time, pair `i` (both its
//! tasks) pinned to CPU `i`, each doing the same number of round trips, and reports guest
//! nanoseconds from the common start to the last pair's end over all the round trips done. Every round trip is two context switches on its CPU, so two
//! slices for `sched_stat_runtime` (vs's CPU charge) to charge. Under QEMU's
//! instruction-counting clock the vCPUs take turns in one host thread and guest time counts
//! the instructions of all of them, so this is the instructions the guest spends per round
//! trip, on every CPU together: what the module adds to it does not move from 1 pair to 8
//! unless the charge serialises the CPUs (a vCPU spinning on a lock that a descheduled one
//! holds burns its turn, and that is counted too).

use crate::{pipe, rw};
use std::time::Instant;
use vs_selftests::proc::wait;

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity take
    // pointers to it, valid for the calls.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        ret,
        0,
        "pin to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(fd) };
}

/// A child that runs `f` and exits; its pid.
fn spawn(f: impl FnOnce()) -> i32 {
    // SAFETY: the child only runs `f` and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(()) => 0,
            Err(_) => 101,
        };
        // SAFETY: end the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// One pair on CPU `cpu`: reports ready on `ready`, waits for `go` to close, then does `n`
/// round trips with an echoing child.
fn pair(cpu: usize, n: u32, ready: i32, go: i32) {
    pin(cpu);
    let (a, b) = (pipe(), pipe());
    let echo = spawn(|| {
        for _ in 0..n {
            rw(a[0], false);
            rw(b[1], true);
        }
    });
    rw(ready, true);
    let mut byte = [0u8; 1];
    // SAFETY: reading into a valid buffer; returns 0 once every write end of `go` is closed.
    let got = unsafe { libc::read(go, byte.as_mut_ptr() as *mut _, 1) };
    assert_eq!(got, 0, "start barrier");
    for _ in 0..n {
        rw(a[1], true);
        rw(b[0], false);
    }
    assert_eq!(wait(echo), 0, "echo on CPU {cpu}");
}

/// Guest ns per round trip, over all `pairs` pairs of `n` round trips each (see the top).
pub fn run(pairs: usize, n: u32) -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert!(
        pairs >= 1 && pairs as i64 <= cpus,
        "{pairs} pairs on {cpus} CPUs"
    );
    let (ready, go) = (pipe(), pipe());
    let pids: Vec<i32> = (0..pairs)
        .map(|cpu| {
            spawn(|| {
                close(go[1]);
                pair(cpu, n, ready[1], go[0]);
            })
        })
        .collect();
    for _ in 0..pairs {
        rw(ready[0], false);
    }
    let t = Instant::now();
    close(go[1]);
    for pid in pids {
        assert_eq!(wait(pid), 0, "pair {pid}");
    }
    for fd in ready.into_iter().chain([go[0]]) {
        close(fd);
    }
    t.elapsed().as_nanos() as f64 / (pairs as f64 * f64::from(n))
}
