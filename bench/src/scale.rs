// SPDX-License-Identifier: GPL-2.0
//! The scale configurations of bench/scale.sh: many VSs, and many classified tasks.
//!
//! `vs-bench setup vss N` creates N empty VSs; `vs-bench setup crowd N` leaves a process of N
//! sleeping threads in a VS `crowd` (every thread a membership entry), which lives on after
//! the command until `vs-bench setup clear` ends it ([`end_crowd`]).

use vs_client::Device as Dev;
use vs_core::abi::*;

/// Where the crowd's pid is kept between commands (the guest's /tmp is its own; this is not).
fn crowd_pid_file() -> String {
    let root = std::env::var("VS_ROOT").unwrap_or_else(|_| ".".into());
    format!("{root}/.cache/bench-crowd.pid")
}

/// `n` VSs under the root, no attributes, no members.
pub fn setup_vss(d: &Dev, n: u32) {
    for i in 0..n {
        d.create(&format!("s{i}"), VS_ROOT, VS_ID_AUTO, VsAttrs::default())
            .unwrap_or_else(|e| panic!("VS {i} of {n}: {e}"));
    }
    eprintln!("bench: {n} VSs created");
}

/// A process of `n` threads (the main one and n-1 asleep on small stacks), moved into VS
/// `crowd`: `n` classified tasks that never run.
pub fn setup_crowd(d: &Dev, n: u32) {
    let crowd = d
        .create("crowd", VS_ROOT, VS_ID_AUTO, VsAttrs::default())
        .expect("crowd");
    let mut fds = [0i32; 2];
    // SAFETY: valid out-array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: the child only spawns threads, reports and sleeps; it never returns here.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        let mut made = 1u32;
        for _ in 1..n {
            let t = std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(|| loop {
                    std::thread::park();
                });
            if t.is_err() {
                break;
            }
            made += 1;
        }
        let b = made.to_ne_bytes();
        // SAFETY: writing 4 bytes from a valid buffer to our pipe.
        unsafe { libc::write(fds[1], b.as_ptr() as *const _, 4) };
        loop {
            // SAFETY: waits for a signal; the crowd is ended by SIGKILL.
            unsafe { libc::pause() };
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    let mut b = [0u8; 4];
    // SAFETY: reading 4 bytes into a valid buffer.
    let got = unsafe { libc::read(fds[0], b.as_mut_ptr() as *mut _, 4) };
    assert_eq!(got, 4, "the crowd did not report");
    let made = u32::from_ne_bytes(b);
    std::fs::write(crowd_pid_file(), pid.to_string()).expect("crowd pid file");
    let moved = d.add_process(crowd, pid, false).expect("addprocess crowd");
    assert_eq!(made, n, "only {made} of {n} threads could be created");
    eprintln!("bench: {moved} tasks classified into crowd");
}

/// End the crowd, if there is one, and wait until its threads have left their VS.
pub fn end_crowd() {
    let file = crowd_pid_file();
    let Ok(pid) = std::fs::read_to_string(&file) else {
        return;
    };
    let _ = std::fs::remove_file(&file);
    let Ok(pid) = pid.trim().parse::<i32>() else {
        return;
    };
    // SAFETY: signalling the crowd process this command started earlier.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let proc = format!("/proc/{pid}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    // Reparented to init, which reaps it: gone from /proc once every thread has exited.
    while std::path::Path::new(&proc).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
