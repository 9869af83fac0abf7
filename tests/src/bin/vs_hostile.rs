// SPDX-License-Identifier: GPL-2.0
//! Hostile use: what a tenant could do to escape a limit or switch classification off.
//! Each test reproduces a defect found by reading the module as an attacker would.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use vs_core::abi::*;
use vs_selftests::dev::*;
use vs_selftests::ktap::Context;
use vs_selftests::proc::{getpid, in_child, wait};
use vs_selftests::{check, check_eq, run, tests, Outcome};

fn limited(f: &Fixture, name: &str, max: u32) -> Result<u32, vs_selftests::Fail> {
    let attrs = VsAttrs {
        max_procs: max,
        mask: 1 << VS_ATTR_PROCS,
        ..VsAttrs::default()
    };
    f.create(name, VS_ROOT, VS_ID_AUTO, attrs).ctx(name)
}

/// `clone(CLONE_SIGHAND)` without `CLONE_VM` is refused by copy_process with EINVAL: a fork
/// that fails after the limit check reserved room.
fn failing_clone() -> i64 {
    // SAFETY: raw clone with invalid flags; it fails before creating anything.
    unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_SIGHAND as libc::c_ulong, 0, 0, 0, 0) }
}

fn failed_fork_releases_its_reservation() -> Outcome {
    let f = Fixture::new()?;
    // Room for 3 tasks: this process, a helper child, and one more.
    let a = limited(&f, "a", 3)?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    let mut go = [0i32; 2];
    // SAFETY: a valid array for pipe(2).
    check_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
    // The helper waits for the go, then tries to fork (the 3rd task).
    // SAFETY: the child only reads, forks and exits.
    let helper = unsafe { libc::fork() };
    if helper == 0 {
        let mut b = [0u8; 1];
        // SAFETY: our pipe.
        unsafe { libc::read(go[0], b.as_mut_ptr() as *mut _, 1) };
        let code = in_child(|| 0);
        // SAFETY: end the helper.
        unsafe { libc::_exit(if code == 0 { 0 } else { 1 }) };
    }
    check!(helper > 0, "fork helper");
    // This task's clone fails after its limit check: its reservation must go.
    check_eq!(failing_clone(), -1, "the invalid clone fails");
    // SAFETY: wake the helper.
    unsafe { libc::write(go[1], b"g".as_ptr() as *const _, 1) };
    check_eq!(wait(helper), 0, "the helper's fork (3rd task of 3) must have room");
    Ok(())
}

/// fork through the 32-bit `int 0x80` entry (IA32_EMULATION): -errno or the child's pid.
fn fork_int80() -> i64 {
    let ret: i32;
    // SAFETY: the i386 fork syscall (2) through int 0x80; the child _exits at once below.
    unsafe {
        core::arch::asm!("int 0x80", inlateout("eax") 2i32 => ret, options(nostack));
    }
    if ret == 0 {
        // SAFETY: the child ends at once.
        unsafe { libc::_exit(0) };
    }
    i64::from(ret)
}

fn limit_holds_on_the_32bit_syscall_entry() -> Outcome {
    let f = Fixture::new()?;
    let a = limited(&f, "a", 1)?;
    // Probe the entry from the root first: with no limit the fork must work.
    let pid = fork_int80();
    if pid == -i64::from(libc::ENOSYS) {
        return Err(vs_selftests::Fail::Skip("no IA32_EMULATION: int 0x80 is not there".into()));
    }
    check!(pid > 0, "int 0x80 fork works in the root: {pid}");
    wait(pid as i32);
    let code = in_child(|| {
        let d = Dev::open().unwrap();
        if d.add_process(a, getpid(), false).is_err() {
            return 2;
        }
        // This task fills the VS: a 32-bit fork must fail with EAGAIN like a 64-bit one.
        let r = fork_int80();
        if r > 0 {
            wait(r as i32);
            return 3;
        }
        if r == -i64::from(libc::EAGAIN) {
            0
        } else {
            4
        }
    });
    check_eq!(code, 0, "int 0x80 fork at the limit (3: it succeeded)");
    check_eq!(f.get(a).ctx("GET")?.stats.denied_forks, 1);
    Ok(())
}

fn idle_acceptors_do_not_switch_gates_off() -> Outcome {
    // 600 threads blocked in accept() on one listener (anyone can make them) must not stop
    // the accept gate on another.
    let f = Fixture::new()?;
    let srv = f.create_simple("srv").ctx("srv")?;
    let site = f.create_simple("site").ctx("site")?;
    f.add_rules(&[VsRule {
        event: VS_EV_ACCEPT,
        cur: srv,
        req: VS_ANY,
        target: VS_TARGET_REQ,
        ..VsRule::default()
    }])
    .ctx("rule")?;
    let idle = TcpListener::bind("127.0.0.1:0").ctx("bind idle")?;
    let idle_addr = idle.local_addr().ctx("addr")?;
    let idle = std::sync::Arc::new(idle);
    let mut threads = Vec::new();
    for _ in 0..600 {
        let l = idle.clone();
        let t = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = l.accept();
            })
            .ctx("spawn")?;
        threads.push(t);
    }
    std::thread::sleep(Duration::from_millis(500));
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let l = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    let addr = l.local_addr().ctx("addr")?;
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        if d.add_process(site, getpid(), false).is_err() {
            return 1;
        }
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                let _ = s.write_all(b"x");
                std::thread::sleep(Duration::from_millis(200));
                0
            }
            Err(_) => 2,
        }
    });
    check_eq!(code, 0, "client");
    let _c = l.accept().ctx("accept")?;
    let moved = f.which(getpid());
    // Release the idle acceptors (600 connections), then check.
    for _ in 0..600 {
        let _ = TcpStream::connect(idle_addr);
    }
    for t in threads {
        let _ = t.join();
    }
    check_eq!(moved, Ok(site), "the accept gate ran with 600 idle acceptors elsewhere");
    Ok(())
}

fn members_are_in_the_callers_pid_namespace() -> Outcome {
    let f = Fixture::new()?;
    let a = f.create_simple("a").ctx("a")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    let me = getpid() as u32;
    // SAFETY: unshare(CLONE_NEWPID) affects only children forked after it; this test runs in
    // its own process.
    check_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0, "unshare");
    let code = in_child(move || {
        // The first task of the new namespace: pid 1 there.
        let d = Dev::open().unwrap();
        if getpid() != 1 {
            return 2;
        }
        let Ok(list) = d.members(a) else { return 3 };
        // Only itself, as pid 1: not the parent's host pid.
        if list != vec![1] {
            eprintln!("# members seen from the namespace: {list:?} (host pid {me})");
            return 4;
        }
        if d.which(1) != Ok(a) {
            return 5;
        }
        0
    });
    check_eq!(code, 0, "2: not pid 1, 3: MEMBERS failed, 4: host pids leaked, 5: which");
    let host = f.members(a).ctx("members")?;
    check!(host.contains(&me), "the host sees its own pid: {host:?}");
    Ok(())
}

fn main() {
    run(
        "vs_hostile",
        tests![
            failed_fork_releases_its_reservation,
            limit_holds_on_the_32bit_syscall_entry,
            idle_acceptors_do_not_switch_gates_off: 120,
            members_are_in_the_callers_pid_namespace,
        ],
    )
}
