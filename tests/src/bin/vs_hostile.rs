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
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_SIGHAND as libc::c_ulong,
            0,
            0,
            0,
            0,
        )
    }
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
    check_eq!(
        wait(helper),
        0,
        "the helper's fork (3rd task of 3) must have room"
    );
    Ok(())
}

/// clone(SIGCHLD) (a fork) through the 32-bit `int 0x80` entry (IA32_EMULATION): -errno or
/// the child's pid. i386 clone is syscall 120 with flags in ebx (which LLVM reserves, hence
/// the exchange), and the compat entry clears r8-r15 on the way back.
fn fork_int80() -> i64 {
    let ret: i32;
    // SAFETY: the i386 clone syscall with fork semantics (no new stack, no tid pointers); the
    // child _exits at once below.
    unsafe {
        core::arch::asm!(
            "xchg {flags:e}, ebx",
            "int 0x80",
            "xchg {flags:e}, ebx",
            flags = inout(reg) libc::SIGCHLD => _,
            inlateout("eax") 120i32 => ret,
            in("ecx") 0, in("edx") 0, in("esi") 0, in("edi") 0,
            // The compat entry returns with r8-r15 cleared.
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
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
        return Err(vs_selftests::Fail::Skip(
            "no IA32_EMULATION: int 0x80 is not there".into(),
        ));
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
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_REQ)])
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
    check_eq!(
        moved,
        Ok(site),
        "the accept gate ran with 600 idle acceptors elsewhere"
    );
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
    check_eq!(
        code,
        0,
        "2: not pid 1, 3: MEMBERS failed, 4: host pids leaked, 5: which"
    );
    let host = f.members(a).ctx("members")?;
    check!(host.contains(&me), "the host sees its own pid: {host:?}");
    Ok(())
}

/// An x86-64 ELF executable whose only segment is in kernel space: execve gets past its point
/// of no return (the old image is gone), then fails to map the segment and kills the caller.
fn write_bad_elf(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let vaddr: u64 = 0xffff_8000_0000_0000;
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&vaddr.to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R|X
    for v in [0u64, vaddr, vaddr, 120, 0x1000, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes()); // offset vaddr paddr filesz memsz align
    }
    std::fs::write(path, &e)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn failed_exec_from_a_thread_leaves_no_phantom() -> Outcome {
    let f = Fixture::new()?;
    let a = f.create_simple("a").ctx("a")?;
    let path = format!("/tmp/vs-bad-elf-{}", getpid());
    write_bad_elf(&path).ctx("write the ELF")?;
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        let p = std::ffi::CString::new(path).unwrap();
        let t = std::thread::spawn(move || {
            // Both threads in `a`, then the non-leader execs the bad image.
            if d.add_process(a, getpid(), false).is_err() {
                return;
            }
            let argv = [p.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: valid NUL-terminated arrays; on failure past the point of no return
            // the kernel kills the whole process.
            unsafe { libc::execve(p.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        });
        let _ = t.join();
        // Only reached if execve failed early (not the case being tested).
        7
    });
    let _ = std::fs::remove_file(format!("/tmp/vs-bad-elf-{}", getpid()));
    check_eq!(
        code,
        128 + libc::SIGSEGV,
        "the exec got past its point of no return, then failed"
    );
    // The process is gone: no member may be left behind under the thread's old tid.
    let mut left = 1;
    for _ in 0..50 {
        left = f.get(a).ctx("GET")?.stats.nr_procs;
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check_eq!(left, 0, "phantom members: {:?}", f.members(a));
    check_eq!(f.destroy(a), Ok(()), "the VS can go");
    Ok(())
}

/// The kernel's slab memory, in KiB (/proc/meminfo `Slab:`).
fn slab_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("Slab:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn churn_leaves_slab_at_baseline() -> Outcome {
    // 10,000 create/destroy and 10,000 addrule/delrule cycles allocate nothing that stays:
    // everything the state needs was allocated at load.
    let f = Fixture::new()?;
    let cycles = |f: &Fixture| -> Outcome {
        for _ in 0..10_000 {
            let id = f.create_simple("churn").ctx("create")?;
            f.destroy(id).ctx("destroy")?;
        }
        let a = f.create_simple("a").ctx("a")?;
        for _ in 0..10_000 {
            let r = f
                .add_rules(&[rule(VS_EV_FORK, a, VS_ANY, a)])
                .ctx("addrule")?;
            f.del_rule(r).ctx("delrule")?;
        }
        f.destroy(a).ctx("destroy a")?;
        Ok(())
    };
    // A first round warms up whatever the syscall paths cache; the second is measured.
    cycles(&f)?;
    let before = slab_kib();
    cycles(&f)?;
    let after = slab_kib();
    check!(before > 0, "Slab: in /proc/meminfo");
    check!(
        after <= before + 512,
        "slab grew by {} KiB over 20,000 cycles ({before} -> {after} KiB)",
        after.saturating_sub(before)
    );
    Ok(())
}

/// A copy of `sleep`, so that the test's executables are files of their own.
fn copy_sleep(to: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = format!("{to}.new");
    std::fs::copy("/bin/sleep", &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    // Renamed into place, as a package manager replaces a file: a new inode under the path.
    std::fs::rename(&tmp, to)
}

/// Start `prog 5` in a child (after `prepare` ran there); the child's pid.
fn exec_sleep(prog: &str, prepare: fn(&str) -> bool) -> i32 {
    let p = std::ffi::CString::new(prog).unwrap();
    let five = std::ffi::CString::new("5").unwrap();
    let prog = prog.to_string();
    // SAFETY: the child only prepares, execs and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if !prepare(&prog) {
            // SAFETY: end the child.
            unsafe { libc::_exit(3) };
        }
        let argv = [p.as_ptr(), five.as_ptr(), std::ptr::null()];
        // SAFETY: NUL-terminated strings and argv.
        unsafe {
            libc::execv(p.as_ptr(), argv.as_ptr());
            libc::_exit(4);
        }
    }
    pid
}

/// Where a child is once its exec is done and it sleeps (the comm changes before the exec
/// gate runs, the sleep comes after), or None if it died first.
fn vs_after_exec(d: &Dev, pid: i32) -> Option<u32> {
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        if stat.contains("(prog) S") {
            return d.which(pid).ok();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

fn end(pid: i32) {
    // SAFETY: our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait(pid);
}

/// As an unprivileged user, in a user and mount namespace of one's own, bind-mount another
/// program over the rule's path: the path is right, the file is not.
fn spoof(prog: &str) -> bool {
    let other = std::ffi::CString::new(format!("{prog}-other")).unwrap();
    let target = std::ffi::CString::new(prog).unwrap();
    // SAFETY: plain syscalls on our own strings, in the child.
    unsafe {
        libc::setgid(65534) == 0
            && libc::setuid(65534) == 0
            && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
            && libc::mount(
                other.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) == 0
    }
}

fn path_rules_match_the_file_not_the_path() -> Outcome {
    let f = Fixture::new()?;
    let web = f.create_simple("web").ctx("web")?;
    let dir = format!("/tmp/vs-spoof-{}", getpid());
    std::fs::create_dir_all(&dir).ctx("mkdir")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).ctx("chmod")?;
    }
    let prog = format!("{dir}/prog");
    copy_sleep(&prog).ctx("copy")?;
    copy_sleep(&format!("{prog}-other")).ctx("copy")?;
    let mut r = rule(VS_EV_EXEC, VS_ANY, VS_ANY, web);
    r.path[..prog.len()].copy_from_slice(prog.as_bytes());
    f.add_rules(&[r]).ctx("addrule")?;

    // The real file: in web as soon as the rule is added.
    let pid = exec_sleep(&prog, |_| true);
    let got = vs_after_exec(&f, pid);
    end(pid);
    check_eq!(got, Some(web), "exec of the rule's file");

    // The spoof: the right path, another file.
    let pid = exec_sleep(&prog, spoof);
    let got = vs_after_exec(&f, pid);
    end(pid);
    if got.is_none() {
        return Err(vs_selftests::Fail::Skip(
            "could not set up the spoof (user namespaces?)".into(),
        ));
    }
    check_eq!(
        got,
        Some(VS_ROOT),
        "a bind mount over the rule's path must not get into web"
    );

    // An upgrade replaces the file: the first exec may miss; within a second the rule follows.
    copy_sleep(&prog).ctx("replace")?;
    let pid = exec_sleep(&prog, |_| true);
    vs_after_exec(&f, pid);
    end(pid);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = exec_sleep(&prog, |_| true);
    let got = vs_after_exec(&f, pid);
    end(pid);
    let _ = std::fs::remove_dir_all(&dir);
    check_eq!(got, Some(web), "exec of the replaced file, a second later");
    Ok(())
}

/// io_uring's SQPOLL thread (like its io-wq workers) is made by `create_io_thread`, which the
/// fork tracepoint never sees: it must still join the VS of the process it works for.
fn io_uring_workers_join_their_process() -> Outcome {
    let f = Fixture::new()?;
    let a = f.create_simple("a").ctx("a")?;
    let code = in_child(|| {
        let d = Dev::open().unwrap();
        if d.add_process(a, getpid(), false).is_err() {
            return 2;
        }
        // struct io_uring_params: flags at [2], sq_thread_idle (ms) at [4].
        let mut params = [0u32; 30];
        params[2] = 1 << 1; // IORING_SETUP_SQPOLL
        params[4] = 10_000;
        // SAFETY: io_uring_setup(entries, params) with a 120-byte params buffer.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
        if fd < 0 {
            return 77;
        }
        // The SQPOLL thread is one of this process's threads: "iou-sqp-<pid>".
        let mut worker = None;
        for _ in 0..200 {
            worker = std::fs::read_dir("/proc/self/task").ok().and_then(|dir| {
                dir.flatten().find_map(|t| {
                    let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                    comm.starts_with("iou-sqp")
                        .then(|| t.file_name().to_string_lossy().parse::<i32>().ok())
                        .flatten()
                })
            });
            if worker.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let Some(tid) = worker else { return 3 };
        let in_a = d.which(tid) == Ok(a);
        let procs = d.get(a).map(|i| i.stats.nr_procs).unwrap_or(0);
        // SAFETY: our ring.
        unsafe { libc::close(fd as i32) };
        if !in_a {
            return 4;
        }
        if procs != 2 {
            return 5;
        }
        0
    });
    if code == 77 {
        return Err(vs_selftests::Fail::Skip(
            "no io_uring in this kernel".into(),
        ));
    }
    check_eq!(
        code,
        0,
        "2: addprocess, 3: no SQPOLL thread, 4: it is not in the VS, 5: not counted"
    );
    Ok(())
}

/// `addprocess --tree` follows children that a non-leader thread forked (their real_parent
/// is that thread, not the process's leader).
fn addprocess_tree_includes_children_of_threads() -> Outcome {
    let f = Fixture::new()?;
    let a = f.create_simple("a").ctx("a")?;
    let mut fds = [0i32; 2];
    // SAFETY: a valid array for pipe(2).
    check_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only spawns a thread that forks, and pauses.
    let p = unsafe { libc::fork() };
    if p == 0 {
        let w = fds[1];
        let _ = std::thread::spawn(move || {
            // SAFETY: the grandchild only pauses until killed.
            let g = unsafe { libc::fork() };
            if g == 0 {
                loop {
                    // SAFETY: wait for the signal that ends the test.
                    unsafe { libc::pause() };
                }
            }
            // SAFETY: our pipe; 4 bytes.
            unsafe { libc::write(w, &g as *const i32 as *const _, 4) };
            // The thread stays: were it gone, its child would be handed to the leader.
            loop {
                // SAFETY: wait to be killed.
                unsafe { libc::pause() };
            }
        });
        loop {
            // SAFETY: wait to be killed.
            unsafe { libc::pause() };
        }
    }
    let mut g: i32 = 0;
    // SAFETY: our pipe; 4 bytes into an i32.
    let n = unsafe { libc::read(fds[0], &mut g as *mut i32 as *mut _, 4) };
    let moved = f.add_process(a, p, true);
    let where_g = f.which(g);
    // SAFETY: our child and grandchild.
    unsafe {
        libc::kill(g, libc::SIGKILL);
        libc::kill(p, libc::SIGKILL);
    }
    wait(p);
    check!(n == 4 && g > 0, "no grandchild");
    check_eq!(
        moved,
        Ok(3),
        "the process's two threads and the child one of them forked"
    );
    check_eq!(where_g, Ok(a), "the thread's child is in the tree");
    Ok(())
}

/// The tags one VS may hold: a quarter of the module's 28,672 (README, "Pipe and message
/// tags").
const TAG_QUOTA: usize = 7168;
/// The module's tag table, and the tags kept for each VS below that many (the table over the
/// 4,096 VSs there can be).
const TAG_TABLE: usize = 28_672;
const TAG_FLOOR: usize = 7;

/// `n` pipes with RLIMIT_NOFILE raised to hold them: the pipes, and the limit to restore.
fn many_pipes(n: usize) -> Result<(Vec<[i32; 2]>, libc::rlimit), vs_selftests::Fail> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let want = (2 * n + 64) as libc::rlim_t;
    let more = libc::rlimit {
        rlim_cur: want,
        rlim_max: want,
    };
    // SAFETY: valid rlimit pointers; root may raise its own limit.
    check_eq!(
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut old)
                + libc::setrlimit(libc::RLIMIT_NOFILE, &more)
        },
        0,
        "RLIMIT_NOFILE"
    );
    let mut fds = Vec::with_capacity(n);
    for _ in 0..n {
        let mut p = [0i32; 2];
        // SAFETY: valid out-array of two fds.
        if unsafe { libc::pipe(p.as_mut_ptr()) } != 0 {
            break;
        }
        fds.push(p);
    }
    Ok((fds, old))
}

/// Close every fd of `fds`.
fn close_all(fds: &[[i32; 2]]) {
    for p in fds {
        // SAFETY: closing fds this test opened.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
    }
}

/// Read one byte from `fd`; true if one came.
fn read_byte(fd: i32) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    unsafe { libc::read(fd, b.as_mut_ptr() as *mut _, 1) == 1 }
}

/// A child in `vs` writes one byte to the write end of each pipe of `fds`; its exit status.
fn write_each_in(vs: u32, fds: &[[i32; 2]]) -> i32 {
    in_child(|| {
        let d = Dev::open().unwrap();
        if d.add_process(vs, getpid(), false).is_err() {
            return 1;
        }
        let all = fds
            .iter()
            // SAFETY: writing one byte from a valid buffer to a pipe of this test.
            .all(|p| unsafe { libc::write(p[1], b"x".as_ptr() as *const _, 1) } == 1);
        (!all) as i32 * 2
    })
}

/// The object-tag table is shared by every VS: a tenant writing to more pipes than its quarter
/// must not take the tags (and with them the pipe-read classification) of other VSs. Beyond
/// its quarter its pipes stay untagged and are counted; another VS's pipe still carries its
/// writer's VS. Destroying the tenant with its pipes open takes its tags away.
fn a_tenant_cannot_take_every_pipe_tag() -> Outcome {
    let f = Fixture::new()?;
    let (rd, wr, hog) = (
        f.create_simple("t_rd").ctx("rd")?,
        f.create_simple("t_wr").ctx("wr")?,
        f.create_simple("t_hog").ctx("hog")?,
    );
    let first = f
        .add_rules(&[
            rule(VS_EV_PIPE_READ, rd, wr, VS_TARGET_REQ),
            rule(VS_EV_PIPE_READ, rd, hog, VS_TARGET_REQ),
        ])
        .ctx("rules")?;
    let n = TAG_QUOTA + 10;
    let (fds, old) = many_pipes(n)?;
    let result = (|| -> Outcome {
        check_eq!(fds.len(), n, "pipes made");
        check_eq!(write_each_in(hog, &fds), 0, "the hog's writes");
        let st = f.get(hog).ctx("GET hog")?.stats;
        check_eq!(st.tags_refused, 10, "the hog's writes beyond its quarter");
        // The last pipes are untagged: reading one leaves the reader where it is; an earlier
        // one carries the hog's VS.
        f.add_process(rd, getpid(), false).ctx("to rd")?;
        check!(read_byte(fds[n - 1][0]));
        check_eq!(f.which(getpid()), Ok(rd), "a pipe the hog could not tag");
        check!(read_byte(fds[0][0]));
        check_eq!(
            f.which(getpid()),
            Ok(hog),
            "(pipe-read, rd, req=t_hog) -> (req)"
        );
        // Another VS still tags its pipe.
        let mine = [fds[1]];
        check_eq!(write_each_in(wr, &mine), 0, "the writer in wr");
        f.add_process(rd, getpid(), false).ctx("back to rd")?;
        check!(
            read_byte(fds[1][0]) && read_byte(fds[1][0]),
            "two bytes in fds[1]"
        );
        check_eq!(
            f.which(getpid()),
            Ok(wr),
            "(pipe-read, rd, req=t_wr) -> (req)"
        );
        check_eq!(f.get(wr).ctx("GET wr")?.stats.tags_refused, 0);

        // The hog goes while its pipes are open: their tags go with it. A VS created next
        // takes the hog's registry slot (free slots are taken lowest first), so a tag left
        // behind would now name it: a reader of the hog's pipe must stay where it is, and the
        // new VS must start with none of the hog's tags counted against its quota.
        f.del_rule(first + 1).ctx("delete the hog's rule")?;
        f.destroy(hog).ctx("destroy the hog")?;
        let new = f.create_simple("t_new").ctx("new")?;
        f.add_rules(&[rule(VS_EV_PIPE_READ, rd, new, VS_TARGET_REQ)])
            .ctx("the new VS's rule")?;
        f.add_process(rd, getpid(), false).ctx("rd again")?;
        check!(read_byte(fds[2][0]));
        check_eq!(
            f.which(getpid()),
            Ok(rd),
            "a pipe the destroyed hog wrote is untagged"
        );
        check_eq!(
            write_each_in(new, &fds[3..3 + TAG_QUOTA]),
            0,
            "the new VS's writes"
        );
        check_eq!(
            f.get(new).ctx("GET new")?.stats.tags_refused,
            0,
            "a quota's worth of pipes, none refused"
        );
        check!(read_byte(fds[3][0]));
        check_eq!(
            f.which(getpid()),
            Ok(new),
            "(pipe-read, rd, req=t_new) -> (req)"
        );
        Ok(())
    })();
    close_all(&fds);
    // SAFETY: a valid rlimit, the one read above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    result
}

/// Four tenants that write to pipes without end, one after another, each up to its quota:
/// with the quota alone they would take the whole table. The last is held to what the table
/// has beyond the tags kept for the VSs below their floor, and another VS still tags its
/// pipe. The figures assume the fixture's start: no VS but these six, so no other tag and no
/// other VS's floor kept.
fn four_tenants_cannot_take_every_pipe_tag() -> Outcome {
    let f = Fixture::new()?;
    let rd = f.create_simple("t_rd").ctx("rd")?;
    let quiet = f.create_simple("t_quiet").ctx("quiet")?;
    let hogs = (0..4)
        .map(|i| f.create_simple(&format!("t_hog{i}")))
        .collect::<Result<Vec<u32>, _>>()
        .ctx("hogs")?;
    f.add_rules(&[rule(VS_EV_PIPE_READ, rd, quiet, VS_TARGET_REQ)])
        .ctx("rule")?;
    let per = TAG_QUOTA + 10;
    let (fds, old) = many_pipes(4 * per + 1)?;
    let result = (|| -> Outcome {
        check_eq!(fds.len(), 4 * per + 1, "pipes made");
        for (i, &h) in hogs.iter().enumerate() {
            check_eq!(write_each_in(h, &fds[i * per..(i + 1) * per]), 0, "hog {i}");
        }
        let refused: Vec<u64> = hogs
            .iter()
            .map(|&h| f.get(h).map(|i| i.stats.tags_refused))
            .collect::<Result<_, _>>()
            .ctx("GET hogs")?;
        // The last one found the table's last quarter less the floors rd and quiet lack.
        let last = per - (TAG_TABLE - 3 * TAG_QUOTA - 2 * TAG_FLOOR);
        check_eq!(refused, vec![10, 10, 10, last as u64], "refusals");
        let mine = [fds[4 * per]];
        check_eq!(write_each_in(quiet, &mine), 0, "the quiet VS's write");
        f.add_process(rd, getpid(), false).ctx("to rd")?;
        check!(read_byte(mine[0][0]));
        check_eq!(
            f.which(getpid()),
            Ok(quiet),
            "(pipe-read, rd, req=t_quiet) -> (req)"
        );
        check_eq!(f.get(quiet).ctx("GET quiet")?.stats.tags_refused, 0);
        Ok(())
    })();
    close_all(&fds);
    // SAFETY: a valid rlimit, the one read above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    result
}

fn main() {
    run(
        "vs_hostile",
        tests![
            failed_fork_releases_its_reservation,
            limit_holds_on_the_32bit_syscall_entry,
            idle_acceptors_do_not_switch_gates_off: 120,
            members_are_in_the_callers_pid_namespace,
            failed_exec_from_a_thread_leaves_no_phantom,
            churn_leaves_slab_at_baseline: 300,
            path_rules_match_the_file_not_the_path,
            io_uring_workers_join_their_process,
            addprocess_tree_includes_children_of_threads,
            a_tenant_cannot_take_every_pipe_tag: 120,
            four_tenants_cannot_take_every_pipe_tag: 300,
        ],
    )
}
