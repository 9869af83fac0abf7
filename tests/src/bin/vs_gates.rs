// SPDX-License-Identifier: GPL-2.0
//! Membership and the classification gates: addprocess, fork, exec, exit, sockets, accept,
//! unix sockets, pipes, message queues, the rule table and the process limit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Barrier};
use vs_core::abi::*;
use vs_selftests::dev::*;
use vs_selftests::ktap::Context;
use vs_selftests::proc::{getpid, in_child, wait};
use vs_selftests::{check, check_eq, run, tests, Outcome};

fn mk(f: &Fixture, name: &str) -> Result<u32, vs_selftests::Fail> {
    f.create_simple(name).ctx(name)
}

fn sockopt_u32(fd: i32, level: i32, opt: i32) -> u32 {
    let mut v: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: valid out-pointers of the stated size.
    let r = unsafe { libc::getsockopt(fd, level, opt, &mut v as *mut u32 as *mut _, &mut len) };
    if r == 0 {
        v
    } else {
        u32::MAX
    }
}

fn addprocess_which_members() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    let me = getpid();
    check_eq!(
        f.which(me),
        Ok(VS_ROOT),
        "unclassified tasks are in the root"
    );
    check_eq!(f.add_process(a, me, false), Ok(1));
    check_eq!(f.which(me), Ok(a));
    check_eq!(f.members(a), Ok(vec![me as u32]));
    check_eq!(f.get(a).ctx("GET")?.stats.nr_procs, 1);
    check_eq!(
        f.destroy(a).errno(),
        Err(EBUSY),
        "a VS with members cannot go"
    );
    check_eq!(
        f.add_process(a, me, false),
        Ok(0),
        "already there: nothing moved"
    );
    check_eq!(f.add_process(VS_ROOT, me, false), Ok(1));
    check_eq!(f.which(me), Ok(VS_ROOT));
    check_eq!(f.get(a).ctx("GET")?.stats.nr_procs, 0);
    check_eq!(f.get(a).ctx("GET")?.stats.reclass_in, 1);
    check_eq!(f.add_process(a, 0x7fff_fff0, false).errno(), Err(ESRCH));
    check_eq!(f.which(0x7fff_fff0).errno(), Err(ESRCH));
    check_eq!(f.add_process(4242, me, false).errno(), Err(ENOENT));
    check_eq!(f.members(4242).errno(), Err(ENOENT));
    Ok(())
}

fn addprocess_tree() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    // A shell with two children of its own.
    let mut sh = std::process::Command::new("sh")
        .args(["-c", "sleep 30 & sleep 30 & echo ready; wait"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ctx("spawn sh")?;
    let mut line = [0u8; 6];
    sh.stdout
        .as_mut()
        .map(|o| o.read_exact(&mut line))
        .transpose()
        .ctx("read ready")?;
    let shpid = sh.id() as i32;
    let kids = children_of(shpid);
    check_eq!(kids.len(), 2);
    check_eq!(
        f.add_process(a, shpid, false),
        Ok(1),
        "without --tree only the process"
    );
    check_eq!(f.which(kids[0]), Ok(VS_ROOT));
    check_eq!(
        f.add_process(a, shpid, true),
        Ok(2),
        "with --tree the two children join (the shell is there)"
    );
    for k in &kids {
        check_eq!(f.which(*k), Ok(a));
    }
    check_eq!(f.get(a).ctx("GET")?.stats.nr_procs, 3);
    let _ = sh.kill();
    for k in &kids {
        // SAFETY: plain syscall on pids we just read.
        unsafe { libc::kill(*k, libc::SIGKILL) };
    }
    let _ = sh.wait();
    // Exit removes the tasks (the sleeps are reparented and reaped by init).
    for _ in 0..100 {
        if f.get(a).ctx("GET")?.stats.nr_procs == 0 {
            return Ok(());
        }
        vs_selftests::ktap::sleep_ms(20);
    }
    Err(vs_selftests::Fail::Fail(
        "members remained after their exit".into(),
    ))
}

/// Pids whose parent is `pid`, from /proc/*/stat (CONFIG_PROC_CHILDREN is not set).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let p: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let ppid: i32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == pid).then_some(p)
    })
    .collect()
}

fn fork_inherits() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    let code = in_child(|| {
        let d = Dev::open().unwrap();
        if d.which(getpid()) != Ok(a) {
            return 1;
        }
        // And the grandchild.
        in_child(|| {
            if Dev::open().unwrap().which(getpid()) == Ok(a) {
                0
            } else {
                1
            }
        }) * 2
    });
    check_eq!(code, 0, "1: child not in a, 2: grandchild not in a");
    let st = f.get(a).ctx("GET")?.stats;
    check_eq!(
        (st.forks, st.nr_procs),
        (2, 1),
        "two forks counted, both children gone"
    );
    Ok(())
}

fn fork_rule_and_delete() -> Outcome {
    let f = Fixture::new()?;
    let (a, b) = (mk(&f, "a")?, mk(&f, "b")?);
    let id = f
        .add_rules(&[rule(VS_EV_FORK, a, VS_ANY, b)])
        .ctx("addrule")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    // Exit statuses are 8 bits: the child compares, the parent gets 0 for "as expected".
    let child_in =
        |want: u32| in_child(move || (Dev::open().unwrap().which(getpid()) != Ok(want)) as i32);
    check_eq!(child_in(b), 0, "(fork, a) -> (b)");
    check_eq!(f.which(getpid()), Ok(a), "the parent stays");
    check_eq!(f.rules().ctx("rules")?[0].hits, 1);
    check_eq!(f.destroy(b).errno(), Err(EBUSY), "a rule names b");
    f.del_rule(id).ctx("delrule")?;
    check_eq!(f.del_rule(id).errno(), Err(ENOENT));
    check_eq!(child_in(a), 0, "rule gone: inheritance again");
    f.destroy(b).ctx("destroy b after its rule went")?;
    Ok(())
}

fn exec_rule_by_path() -> Outcome {
    let f = Fixture::new()?;
    let (a, web) = (mk(&f, "a")?, mk(&f, "web")?);
    let mut r = rule(VS_EV_EXEC, VS_ANY, VS_ANY, web);
    r.path[..14].copy_from_slice(b"/usr/bin/sleep");
    f.add_rules(&[r]).ctx("addrule")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    // /bin is a link to /usr/bin on Debian: the rule matches the resolved path.
    let mut sleep = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .ctx("sleep")?;
    let mut cat = std::process::Command::new("/bin/cat")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ctx("cat")?;
    vs_selftests::ktap::sleep_ms(300);
    let (s, c) = (f.which(sleep.id() as i32), f.which(cat.id() as i32));
    let _ = sleep.kill();
    let _ = cat.kill();
    let _ = (sleep.wait(), cat.wait());
    check_eq!(s, Ok(web), "exec of the rule's path moves the task");
    check_eq!(c, Ok(a), "another path keeps the inherited VS");
    check!(f.get(web).ctx("GET")?.stats.execs >= 1);
    Ok(())
}

fn process_limit_concurrent_forks() -> Outcome {
    let f = Fixture::new()?;
    const THREADS: usize = 8;
    const LIMIT: u32 = 12;
    let lim = f
        .create(
            "lim",
            VS_ROOT,
            VS_ID_AUTO,
            VsAttrs::default().with(VS_ATTR_PROCS, LIMIT),
        )
        .ctx("create")?;
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let go = Arc::new(Barrier::new(THREADS + 1));
    // Threads are tasks of the VS too: none may exit (and free its place) before all forked.
    let done = Arc::new(Barrier::new(THREADS + 1));
    let release = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (b, g, d, r) = (barrier.clone(), go.clone(), done.clone(), release.clone());
            std::thread::spawn(move || {
                b.wait();
                g.wait();
                // SAFETY: the child only pauses until killed.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    loop {
                        // SAFETY: plain syscall.
                        unsafe { libc::pause() };
                    }
                }
                let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                d.wait();
                r.wait();
                (pid, err)
            })
        })
        .collect();
    barrier.wait();
    // All 9 tasks (main + 8 threads) join: 3 places left under the limit of 12.
    check_eq!(f.add_process(lim, getpid(), false), Ok(THREADS as u32 + 1));
    go.wait();
    done.wait();
    // Read the counts while every thread still lives, then let them go.
    let st = f.get(lim).ctx("GET");
    release.wait();
    let st = st?.stats;
    let results: Vec<(i32, i32)> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or((-1, 0)))
        .collect();
    let ok: Vec<i32> = results.iter().filter(|r| r.0 > 0).map(|r| r.0).collect();
    let eagain = results
        .iter()
        .filter(|r| r.0 < 0 && r.1 == libc::EAGAIN)
        .count();
    for pid in &ok {
        // SAFETY: our children.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
        wait(*pid);
    }
    check_eq!(
        ok.len(),
        3,
        "exactly the limit succeeds: {results:?} {st:?}"
    );
    check_eq!(eagain, THREADS - 3, "the rest fail with EAGAIN");
    check_eq!(st.nr_procs, u64::from(LIMIT));
    check_eq!(st.denied_forks, (THREADS - 3) as u64);
    check_eq!(
        f.get(lim).ctx("GET")?.stats.nr_procs,
        1,
        "threads exited, children reaped"
    );
    Ok(())
}

fn counts_exact_after_many_forks() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    for i in 0..2000 {
        if i % 100 == 0 {
            // Some threads too, exiting in any order.
            let t: Vec<_> = (0..4)
                .map(|_| std::thread::spawn(|| vs_selftests::ktap::sleep_ms(1)))
                .collect();
            t.into_iter().for_each(|h| {
                let _ = h.join();
            });
        }
        check_eq!(in_child(|| 0), 0);
    }
    let live: Vec<u32> = std::fs::read_dir("/proc/self/task")
        .ctx("tasks")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let st = f.get(a).ctx("GET")?.stats;
    check_eq!(st.nr_procs, live.len() as u64, "members == live tasks");
    let mut live = live;
    live.sort_unstable();
    check_eq!(f.members(a), Ok(live));
    check_eq!(st.forks, 2000 + 80, "forks and thread creations");
    Ok(())
}

/// The root's counters: an unclassified task's forks, execs and CPU time are counted without
/// the lock (per CPU), with nothing classified and with a classified task elsewhere alike.
fn root_counts_unclassified_work() -> Outcome {
    let f = Fixture::new()?;
    let root = || f.get(VS_ROOT).map(|i| i.stats);
    for classified in [false, true] {
        let _member = if classified {
            let other = mk(&f, "elsewhere")?;
            let mut sleeper = std::process::Command::new("/bin/sleep")
                .arg("30")
                .spawn()
                .ctx("sleep")?;
            f.add_process(other, sleeper.id() as i32, false)
                .ctx("addprocess")?;
            Some(scopeguard(move || {
                let _ = sleeper.kill();
                let _ = sleeper.wait();
            }))
        } else {
            None
        };
        let before = root().ctx("GET root")?;
        for _ in 0..50 {
            check_eq!(in_child(|| 0), 0);
        }
        for _ in 0..5 {
            let ok = std::process::Command::new("/bin/true")
                .status()
                .ctx("true")?;
            check!(ok.success());
        }
        // Some CPU time of our own (it is charged per slice, so spin past a few ticks).
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(60) {
            std::hint::black_box(0u64);
        }
        let after = root().ctx("GET root")?;
        check!(
            after.forks >= before.forks + 55,
            "classified elsewhere: {classified}: forks {} -> {}",
            before.forks,
            after.forks
        );
        check!(
            after.execs >= before.execs + 5,
            "classified elsewhere: {classified}: execs {} -> {}",
            before.execs,
            after.execs
        );
        check!(
            after.cpu_time_ns >= before.cpu_time_ns + 30_000_000,
            "classified elsewhere: {classified}: cpu {} -> {}",
            before.cpu_time_ns,
            after.cpu_time_ns
        );
    }
    Ok(())
}

/// Run `f` when dropped.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct G<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for G<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    G(Some(f))
}

fn socket_tagging() -> Outcome {
    let f = Fixture::new()?;
    let g5 = f
        .create("g5", VS_ROOT, 5, VsAttrs::default())
        .ctx("create g5")?;
    let local = mk(&f, "local")?;
    let root_sock = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    check_eq!(
        sockopt_u32(root_sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
        0,
        "root: untouched"
    );
    f.add_process(g5, getpid(), false).ctx("addprocess")?;
    let s = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    check_eq!(
        sockopt_u32(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
        g5,
        "sk_mark = VSID"
    );
    check_eq!(
        sockopt_u32(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS),
        g5 << 2,
        "DSCP = global VSID"
    );
    let (u, _) = UnixStream::pair().ctx("socketpair")?;
    check_eq!(
        sockopt_u32(u.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
        g5,
        "unix sockets too"
    );
    f.add_process(local, getpid(), false).ctx("addprocess")?;
    let s = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    check_eq!(
        sockopt_u32(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
        local
    );
    check_eq!(
        sockopt_u32(s.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS),
        0,
        "local VSIDs do not travel"
    );
    // connect re-tags with the connecting task's current VS.
    let l = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    let addr = l.local_addr().ctx("addr")?;
    f.add_process(VS_ROOT, getpid(), false)
        .ctx("back to root")?;
    let sock = socket2_like_unconnected()?;
    f.add_process(g5, getpid(), false).ctx("to g5")?;
    let c = connect_fd(sock, &addr)?;
    check_eq!(
        sockopt_u32(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
        g5,
        "tagged at connect"
    );
    Ok(())
}

/// The connect gate: a task's TCP connect, over IPv4 and IPv6, applies the connect rules
/// (once per connection, before the SYN goes out) and tags the socket with where it ends up.
fn connect_rule_reclassifies_v4_and_v6() -> Outcome {
    let f = Fixture::new()?;
    let (a, b) = (mk(&f, "ca")?, mk(&f, "cb")?);
    f.add_rules(&[rule(VS_EV_CONNECT, a, VS_ANY, b)])
        .ctx("(connect, ca) -> (cb)")?;
    for host in ["127.0.0.1:0", "[::1]:0"] {
        let l = TcpListener::bind(host).ctx(host)?;
        let addr = l.local_addr().ctx("addr")?;
        f.add_process(a, getpid(), false).ctx("to ca")?;
        let c = TcpStream::connect(addr).ctx("connect")?;
        check_eq!(f.which(getpid()), Ok(b), "{host}: (connect, ca) -> (cb)");
        check_eq!(
            sockopt_u32(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
            b,
            "{host}: the socket carries cb"
        );
        // A connect from cb: no rule, it stays.
        let _c2 = TcpStream::connect(addr).ctx("connect again")?;
        check_eq!(f.which(getpid()), Ok(b), "{host}: no rule for cb");
    }
    let hits: u64 = f.rules().ctx("rules")?.iter().map(|r| r.hits).sum();
    check_eq!(hits, 2, "one hit per connection the rule moved");
    Ok(())
}

/// An unconnected TCP socket, created now (so tagged with the current VS).
fn socket2_like_unconnected() -> Result<i32, vs_selftests::Fail> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    check!(fd >= 0, "socket failed");
    Ok(fd)
}

fn connect_fd(fd: i32, addr: &std::net::SocketAddr) -> Result<TcpStream, vs_selftests::Fail> {
    use std::os::fd::FromRawFd;
    let r = vs_selftests::net::connect_raw(fd, addr);
    check_eq!(r, 0, "connect");
    // SAFETY: fd is ours and connected; the stream takes ownership.
    Ok(unsafe { TcpStream::from_raw_fd(fd) })
}

fn accept_reclassifies_by_requester() -> Outcome {
    let f = Fixture::new()?;
    let fcgi = mk(&f, "fcgi")?;
    let www2 = f
        .create("www2", VS_ROOT, 2, VsAttrs::default())
        .ctx("www2")?;
    let www1 = f
        .create("www1", VS_ROOT, 1, VsAttrs::default())
        .ctx("www1")?;
    f.add_rules(&[rule(VS_EV_ACCEPT, fcgi, www2, VS_TARGET_REQ)])
        .ctx("(accept, fcgi, req=www2) -> (req)")?;
    f.add_process(fcgi, getpid(), false).ctx("addprocess")?;
    let l = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    let addr = l.local_addr().ctx("addr")?;
    // A client in www1 (no rule for it), then one in www2.
    for (client_vs, want) in [(www1, fcgi), (www2, www2)] {
        let code = in_child(move || {
            let d = Dev::open().unwrap();
            if d.add_process(client_vs, getpid(), false).is_err() {
                return 1;
            }
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    let _ = s.write_all(b"x");
                    0
                }
                Err(_) => 2,
            }
        });
        // The child connected and wrote before exiting: the connection waits in the queue.
        check_eq!(code, 0, "client");
        let (conn, _) = l.accept().ctx("accept")?;
        check_eq!(
            f.which(getpid()),
            Ok(want),
            "after accepting a client of VS {client_vs}"
        );
        check_eq!(
            sockopt_u32(conn.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK),
            want,
            "accepted socket tag"
        );
    }
    check_eq!(f.rules().ctx("rules")?[0].hits, 1);
    let st = f.get(www2).ctx("GET")?.stats;
    check_eq!(st.reclass_in, 2, "the client's addprocess and the accept");
    Ok(())
}

fn unix_accept_and_recv() -> Outcome {
    let f = Fixture::new()?;
    let (srv, cli, other) = (mk(&f, "srv")?, mk(&f, "cli")?, mk(&f, "other")?);
    f.add_rules(&[
        rule(VS_EV_UNIX_ACCEPT, srv, cli, VS_TARGET_REQ),
        rule(VS_EV_UNIX_RECV, VS_ANY, other, VS_TARGET_REQ),
    ])
    .ctx("rules")?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let path = format!("/tmp/vs-gates-{}.sock", getpid());
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).ctx("bind")?;
    let p2 = path.clone();
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        if d.add_process(cli, getpid(), false).is_err() {
            return 1;
        }
        let Ok(mut s) = UnixStream::connect(&p2) else {
            return 2;
        };
        // Re-tag as `other` by moving and connecting a second time.
        let _ = s.write_all(b"a");
        if d.add_process(other, getpid(), false).is_err() {
            return 3;
        }
        let Ok(mut s2) = UnixStream::connect(&p2) else {
            return 4;
        };
        let _ = s2.write_all(b"b");
        0
    });
    check_eq!(code, 0, "client");
    let (mut c1, _) = l.accept().ctx("accept 1")?;
    check_eq!(
        f.which(getpid()),
        Ok(cli),
        "(unix-accept, srv, req=cli) -> (req)"
    );
    let (mut c2, _) = l.accept().ctx("accept 2")?;
    check_eq!(f.which(getpid()), Ok(cli), "no accept rule for cli: stays");
    let mut b = [0u8; 1];
    c1.read_exact(&mut b).ctx("read 1")?;
    check_eq!(f.which(getpid()), Ok(cli), "receiving from cli: no rule");
    c2.read_exact(&mut b).ctx("read 2")?;
    check_eq!(
        f.which(getpid()),
        Ok(other),
        "(unix-recv, *, req=other) -> (req)"
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}

fn pipe_read_reclassifies() -> Outcome {
    let f = Fixture::new()?;
    let (rd, wr) = (mk(&f, "rd")?, mk(&f, "wr")?);
    f.add_rules(&[rule(VS_EV_PIPE_READ, rd, wr, VS_TARGET_REQ)])
        .ctx("rule")?;
    let mut fds = [0i32; 2];
    // SAFETY: valid out-array of two fds.
    check_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        if d.add_process(wr, getpid(), false).is_err() {
            return 1;
        }
        // SAFETY: writing one byte from a valid buffer to our pipe.
        (unsafe { libc::write(fds[1], b"x".as_ptr() as *const _, 1) } != 1) as i32 * 2
    });
    check_eq!(code, 0, "writer");
    f.add_process(rd, getpid(), false).ctx("addprocess")?;
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    check_eq!(
        unsafe { libc::read(fds[0], b.as_mut_ptr() as *mut _, 1) },
        1
    );
    check_eq!(
        f.which(getpid()),
        Ok(wr),
        "(pipe-read, rd, req=wr) -> (req)"
    );
    // SAFETY: closing our fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1])
    };
    Ok(())
}

/// A pipe carries the VS of its last writer, and a read is decided by that. The module
/// answers most of this without its lock (a write that leaves the tag as it was, a read of a
/// pipe written in a VS no rule names as the requester): a writer that moves must still
/// re-tag the pipe, and a read of a pipe written elsewhere must still leave the reader alone.
fn pipe_tag_follows_the_last_writer() -> Outcome {
    let f = Fixture::new()?;
    let (rd, wr, other) = (mk(&f, "rd")?, mk(&f, "wr")?, mk(&f, "other")?);
    f.add_rules(&[rule(VS_EV_PIPE_READ, rd, wr, VS_TARGET_REQ)])
        .ctx("rule")?;
    let mut fds = [0i32; 2];
    // SAFETY: valid out-array of two fds.
    check_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // Each writer writes two bytes: the second write leaves the tag as the first set it.
    let write_as = |vs: u32| {
        in_child(move || {
            let d = Dev::open().unwrap();
            if d.add_process(vs, getpid(), false).is_err() {
                return 1;
            }
            // SAFETY: writing one byte from a valid buffer to our pipe, twice.
            let n = unsafe {
                libc::write(fds[1], b"x".as_ptr() as *const _, 1)
                    + libc::write(fds[1], b"y".as_ptr() as *const _, 1)
            };
            (n != 2) as i32 * 2
        })
    };
    let read_one = || {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a valid buffer.
        unsafe { libc::read(fds[0], b.as_mut_ptr() as *mut _, 1) }
    };
    f.add_process(rd, getpid(), false).ctx("addprocess")?;
    check_eq!(write_as(other), 0, "writer in other");
    // Twice: the first read fills what the second may answer without the lock.
    for _ in 0..2 {
        check_eq!(read_one(), 1);
        check_eq!(
            f.which(getpid()),
            Ok(rd),
            "a pipe written in other: no rule, the reader stays"
        );
    }
    check_eq!(write_as(wr), 0, "writer in wr");
    check_eq!(read_one(), 1);
    check_eq!(
        f.which(getpid()),
        Ok(wr),
        "the pipe now carries wr: (pipe-read, rd, req=wr) -> (req)"
    );
    // SAFETY: closing our fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1])
    };
    Ok(())
}

/// Run the calling thread on CPUs `cpus` (a bit each): `pin_to(&[c])` pins it to `c`.
fn pin_to(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity take
    // valid pointers to it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins the calling thread while it lives; every CPU again when dropped (a failed check
/// returns early: the tests after it must not stay pinned).
struct Pin(usize);

impl Pin {
    /// Pinned to `cpu` modulo the CPUs online.
    fn to(cpu: usize) -> Self {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        pin_to(&[cpu % n]);
        Pin(n)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        pin_to(&(0..self.0).collect::<Vec<_>>());
    }
}

/// A read that a rule applies to but leaves where it is is counted without the lock, in the
/// reading CPU's stay cache (vs-core/src/stay_cache.rs): every such read counts exactly one hit
/// to the rule that decided, whatever CPU it ran on, through `vsctl rules`' folds and through
/// a rule added meanwhile (which empties the caches into the rules' counts). For pipe reads
/// (the requester is the pipe's tag) and unix receives (the peer socket's).
fn stayed_reads_count_every_hit() -> Outcome {
    for event in [VS_EV_UNIX_RECV, VS_EV_PIPE_READ] {
        stayed_reads_of(event)?;
    }
    Ok(())
}

fn stayed_reads_of(event: u32) -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    let keep = f
        .add_rules(&[rule(event, VS_ANY, a, VS_TARGET_KEEP)])
        .ctx("rule")?;
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    let mut fds = [0i32; 2];
    // SAFETY: valid out-array of two fds; created in `a`, a socket pair's ends carry `a`.
    let made = unsafe {
        if event == VS_EV_PIPE_READ {
            libc::pipe(fds.as_mut_ptr())
        } else {
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr())
        }
    };
    check_eq!(made, 0);
    let hits = |f: &Fixture| -> Result<u64, vs_selftests::Fail> {
        let rules = f.rules().ctx("rules")?;
        Ok(rules.iter().find(|r| r.id == keep).map_or(0, |r| r.hits))
    };
    let mut want = 0;
    for round in 0..3 {
        for i in 0..300 {
            let _pin = Pin::to(i / 7);
            let mut b = [0u8; 1];
            // SAFETY: one byte from and into valid buffers, on our own fds.
            let n = unsafe {
                libc::write(fds[1], b"x".as_ptr() as *const _, 1)
                    + libc::read(fds[0], b.as_mut_ptr() as *mut _, 1)
            };
            check_eq!(n, 2);
            want += 1;
        }
        check_eq!(
            hits(&f)?,
            want,
            "event {event}, round {round}: one hit a read"
        );
        check_eq!(f.which(getpid()), Ok(a), "kept where it was");
        if round == 1 {
            // A change of the rules empties every CPU's cache into the counts.
            f.add_rules(&[rule(event, a, VS_ROOT, VS_TARGET_KEEP)])
                .ctx("second rule")?;
        }
    }
    // SAFETY: closing our fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1])
    };
    Ok(())
}

/// Whether each of the kprobes on `sym` (an entry `k` and a return `r` probe each have a line
/// in debugfs's kprobe list) is armed. Only vs registers kprobes in these guests.
fn probes_armed(sym: &str) -> Result<Vec<bool>, vs_selftests::Fail> {
    let list = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").ctx("kprobes/list")?;
    let at = format!("{sym}+");
    Ok(list
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|s| s.starts_with(&at))
        })
        .map(|l| !l.contains("[DISABLED]"))
        .collect())
}

/// Whether the function tracer calls something at `sym`'s entry: the always-armed gates hook
/// their functions with an ftrace_ops of their own, not a kprobe.
fn hooked(sym: &str) -> Result<bool, vs_selftests::Fail> {
    let list = std::fs::read_to_string("/sys/kernel/debug/tracing/enabled_functions")
        .ctx("tracing/enabled_functions")?;
    Ok(list
        .lines()
        .any(|l| l.split_whitespace().next() == Some(sym)))
}

/// Whether anything of vs's runs at `sym`: an armed kprobe, or a function hook.
fn armed(sym: &str) -> Result<bool, vs_selftests::Fail> {
    Ok(probes_armed(sym)?.contains(&true) || hooked(sym)?)
}

/// `armed(sym)` once nothing runs at `sym`, or after 5 s: vs disarms a second after the last
/// rule or limit that needed a probe or hook is gone.
fn disarmed_soon(sym: &str) -> Result<bool, vs_selftests::Fail> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let armed = armed(sym)?;
        if !armed || std::time::Instant::now() > deadline {
            return Ok(armed);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The gates only a rule or a limit uses are armed while one exists (vs-core/src/arming.rs):
/// the pipe gate by a pipe rule, the message gate by a message rule, the accept queue by an
/// accept rule, the fork limit's entry and return probes by a VS with a process limit. Armed before the ioctl returns; disarmed
/// within seconds of the last user going. The always-on gates stay armed. Where no return
/// value is needed or changed, a gate is a function hook (ftrace), not a kprobe.
fn optional_probes_armed_only_while_needed() -> Outcome {
    let f = Fixture::new()?;
    check!(
        hooked("sock_alloc_file")?,
        "socket tagging is always hooked (ftrace)"
    );
    for sym in [
        "pipe_write",
        "pipe_read",
        "unix_stream_recvmsg",
        "store_msg",
        "load_msg",
        "kernel_clone",
        "inet_csk_accept",
        "tcp_v4_conn_request",
        "tcp_v4_syn_recv_sock",
    ] {
        check_eq!(disarmed_soon(sym)?, false, "{sym} without rules");
    }
    check_eq!(
        probes_armed("inet_csk_listen_stop")?,
        vec![true],
        "a managed listener's teardown is always watched"
    );
    let (rd, wr) = (mk(&f, "rd")?, mk(&f, "wr")?);
    let id = f
        .add_rules(&[rule(VS_EV_PIPE_READ, rd, wr, VS_TARGET_REQ)])
        .ctx("pipe rule")?;
    check!(hooked("pipe_write")?, "a pipe rule hooks the pipe gate");
    check!(hooked("pipe_read")?);
    check_eq!(
        probes_armed("pipe_read")?,
        Vec::<bool>::new(),
        "with a function hook, not a kprobe"
    );
    check_eq!(armed("store_msg")?, false, "but not the message gate");
    f.del_rule(id).ctx("delrule")?;
    check_eq!(
        disarmed_soon("pipe_read")?,
        false,
        "unhooked after the last pipe rule"
    );
    let unix = f
        .add_rules(&[rule(VS_EV_UNIX_RECV, rd, VS_ANY, VS_TARGET_KEEP)])
        .ctx("unix rule")?;
    check!(hooked("unix_stream_recvmsg")?, "a unix rule hooks its gate");
    check!(hooked("unix_dgram_recvmsg")?);
    f.del_rule(unix).ctx("delrule")?;
    check_eq!(disarmed_soon("unix_dgram_recvmsg")?, false);
    let accept = f
        .add_rules(&[rule(VS_EV_ACCEPT, rd, VS_ANY, VS_TARGET_KEEP)])
        .ctx("accept rule")?;
    check!(
        hooked("inet_csk_accept")?,
        "an accept rule hooks the accept queue"
    );
    check_eq!(
        probes_armed("tcp_v4_conn_request")?,
        vec![true],
        "and arms its admission"
    );
    check_eq!(probes_armed("tcp_v4_syn_recv_sock")?, vec![true]);
    f.del_rule(accept).ctx("delrule")?;
    check_eq!(disarmed_soon("tcp_v4_conn_request")?, false);
    check_eq!(disarmed_soon("inet_csk_accept")?, false);
    let msg = f
        .add_rules(&[rule(VS_EV_MSG_RECV, VS_ANY, VS_ANY, VS_TARGET_KEEP)])
        .ctx("message rule")?;
    check!(hooked("store_msg")?, "a message rule hooks its gate");
    check_eq!(
        probes_armed("load_msg")?,
        vec![true],
        "and arms the tagging return probe"
    );
    f.del_rule(msg).ctx("delrule")?;
    check_eq!(disarmed_soon("load_msg")?, false);
    check_eq!(disarmed_soon("store_msg")?, false);
    f.set(rd, 0, 0, VsAttrs::default().with(VS_ATTR_PROCS, 5))
        .ctx("limit")?;
    check_eq!(
        probes_armed("kernel_clone")?,
        vec![true, true],
        "a limit arms the fork entry and return probes"
    );
    f.destroy(rd).ctx("destroy")?;
    check_eq!(
        probes_armed_soon("kernel_clone")?,
        vec![false, false],
        "gone with the limit"
    );
    Ok(())
}

/// `probes_armed(sym)` once none is armed, or after 5 s.
fn probes_armed_soon(sym: &str) -> Result<Vec<bool>, vs_selftests::Fail> {
    disarmed_soon(sym)?;
    probes_armed(sym)
}

fn sysv_and_posix_message_queues() -> Outcome {
    let f = Fixture::new()?;
    let (rcv, snd) = (mk(&f, "rcv")?, mk(&f, "snd")?);
    f.add_rules(&[rule(VS_EV_MSG_RECV, rcv, snd, VS_TARGET_REQ)])
        .ctx("rule")?;
    // SAFETY: plain syscalls on a private queue.
    let q = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    check!(q >= 0, "msgget");
    #[repr(C)]
    struct Msg {
        mtype: libc::c_long,
        text: [u8; 4],
    }
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        if d.add_process(snd, getpid(), false).is_err() {
            return 1;
        }
        let m = Msg {
            mtype: 1,
            text: *b"ping",
        };
        // SAFETY: a valid message buffer of the stated size.
        (unsafe { libc::msgsnd(q, &m as *const Msg as *const _, 4, 0) } != 0) as i32 * 2
    });
    check_eq!(code, 0, "sender");
    f.add_process(rcv, getpid(), false).ctx("addprocess")?;
    let mut m = Msg {
        mtype: 0,
        text: [0; 4],
    };
    // SAFETY: a valid receive buffer of the stated size.
    let n = unsafe { libc::msgrcv(q, &mut m as *mut Msg as *mut _, 4, 0, 0) };
    // SAFETY: remove the queue.
    unsafe { libc::msgctl(q, libc::IPC_RMID, std::ptr::null_mut()) };
    check_eq!(n, 4);
    check_eq!(
        f.which(getpid()),
        Ok(snd),
        "SysV: (msg-recv, rcv, req=snd) -> (req)"
    );

    // POSIX message queues go through the same kernel message code.
    f.add_process(rcv, getpid(), false).ctx("back to rcv")?;
    let name = std::ffi::CString::new(format!("/vs-gates-{}", getpid())).unwrap_or_default();
    // SAFETY: valid NUL-terminated name; default attributes.
    let mq = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_RDWR,
            0o600,
            std::ptr::null_mut::<libc::mq_attr>(),
        )
    };
    check!(mq >= 0, "mq_open: {}", std::io::Error::last_os_error());
    let code = in_child(move || {
        let d = Dev::open().unwrap();
        if d.add_process(snd, getpid(), false).is_err() {
            return 1;
        }
        // SAFETY: a valid 4-byte message.
        (unsafe { libc::mq_send(mq, b"pong".as_ptr() as *const _, 4, 0) } != 0) as i32 * 2
    });
    check_eq!(code, 0, "mq sender");
    let mut buf = [0u8; 8192];
    // SAFETY: a buffer at least mq_msgsize (8192 by default) long.
    let n = unsafe {
        libc::mq_receive(
            mq,
            buf.as_mut_ptr() as *mut _,
            buf.len(),
            std::ptr::null_mut(),
        )
    };
    // SAFETY: close and remove the queue.
    unsafe {
        libc::mq_close(mq);
        libc::mq_unlink(name.as_ptr())
    };
    check_eq!(n, 4);
    check_eq!(
        f.which(getpid()),
        Ok(snd),
        "POSIX mq: (msg-recv, rcv, req=snd) -> (req)"
    );
    Ok(())
}

fn rules_removed_while_in_use() -> Outcome {
    let f = Fixture::new()?;
    let (a, b) = (mk(&f, "a")?, mk(&f, "b")?);
    f.add_process(a, getpid(), false).ctx("addprocess")?;
    let forker = in_child_async(move || {
        for _ in 0..300 {
            if in_child(|| 0) != 0 {
                return 1;
            }
        }
        0
    });
    for _ in 0..100 {
        let id = f
            .add_rules(&[
                rule(VS_EV_FORK, a, VS_ANY, b),
                rule(VS_EV_FORK, VS_ANY, VS_ANY, VS_TARGET_KEEP),
            ])
            .ctx("add")?;
        f.del_rule(id).ctx("del")?;
        f.del_rule(id + 1).ctx("del")?;
    }
    check_eq!(wait(forker), 0, "forks kept working");
    check_eq!(f.rules().ctx("rules")?.len(), 0);
    check_eq!(
        f.get(b).ctx("GET")?.stats.nr_procs,
        0,
        "children that went to b are gone"
    );
    Ok(())
}

/// Fork a child running `f`; return its pid without waiting.
fn in_child_async(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = f();
        // SAFETY: end the child.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn rule_errors() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    let good = rule(VS_EV_FORK, a, VS_ANY, a);
    check_eq!(
        f.add_rules(&[good, rule(VS_EV_FORK, a, VS_ANY, 4242)])
            .errno(),
        Err(ENOENT),
        "unknown target"
    );
    check_eq!(f.rules().ctx("rules")?.len(), 0, "nothing half-installed");
    check_eq!(
        f.add_rules(&[rule(0, a, VS_ANY, a)]).errno(),
        Err(EINVAL),
        "event 0"
    );
    check_eq!(
        f.add_rules(&[rule(VS_EV_FORK, a, a, a)]).errno(),
        Err(EINVAL),
        "req on fork"
    );
    check_eq!(
        f.add_rules(&[rule(VS_EV_FORK, a, VS_ANY, VS_TARGET_REQ)])
            .errno(),
        Err(EINVAL),
        "target req on fork"
    );
    let mut p = good;
    p.path[..4].copy_from_slice(b"/bin");
    check_eq!(f.add_rules(&[p]).errno(), Err(EINVAL), "path on fork");
    check_eq!(f.add_rules(&[]).errno(), Err(EINVAL), "empty batch");
    let mut big = VsRuleAdd {
        buf: 0,
        count: VS_MAX_RULES + 1,
        first_id: 0,
    };
    check_eq!(
        // SAFETY: the kernel refuses the count before it reads the (NULL) buffer.
        unsafe { f.call_with_buffers(VS_IOC_ADD_RULES, &mut big) }.errno(),
        Err(EINVAL),
        "too many at once"
    );
    let mut bad = VsRuleAdd {
        buf: 8,
        count: 1,
        first_id: 0,
    };
    check_eq!(
        // SAFETY: the kernel only reads `bad.buf`, address 8, which is never mapped.
        unsafe { f.call_with_buffers(VS_IOC_ADD_RULES, &mut bad) }.errno(),
        Err(EFAULT)
    );
    // Unprivileged: EPERM.
    let code = in_child(move || {
        // SAFETY: drop privileges in this child.
        if unsafe { libc::setgid(65534) != 0 || libc::setuid(65534) != 0 } {
            return 9;
        }
        let d = Dev::open().unwrap();
        let r = [
            d.add_rules(&[good]).errno().err() == Some(EPERM),
            d.del_rule(1).errno().err() == Some(EPERM),
            d.add_process(a, getpid(), false).errno().err() == Some(EPERM),
            d.rules().is_ok(),
            d.which(getpid()).is_ok(),
        ];
        r.iter().position(|ok| !ok).map_or(0, |i| i as i32 + 1)
    });
    check_eq!(
        code,
        0,
        "unprivileged caller (1-3: not EPERM, 4-5: reads refused)"
    );
    Ok(())
}

fn rule_table_full() -> Outcome {
    let f = Fixture::new()?;
    let a = mk(&f, "a")?;
    let batch = vec![rule(VS_EV_EXEC, a, VS_ANY, a); 4096];
    for _ in 0..4 {
        f.add_rules(&batch).ctx("fill")?;
    }
    check_eq!(
        f.add_rules(&[rule(VS_EV_EXEC, a, VS_ANY, a)]).errno(),
        Err(ENOSPC)
    );
    Ok(())
}

fn main() {
    run(
        "vs_gates",
        tests![
            addprocess_which_members,
            addprocess_tree,
            fork_inherits,
            fork_rule_and_delete,
            exec_rule_by_path,
            process_limit_concurrent_forks,
            counts_exact_after_many_forks: 300,
            root_counts_unclassified_work,
            socket_tagging,
            connect_rule_reclassifies_v4_and_v6,
            accept_reclassifies_by_requester,
            unix_accept_and_recv,
            pipe_read_reclassifies,
            pipe_tag_follows_the_last_writer,
            stayed_reads_count_every_hit,
            optional_probes_armed_only_while_needed,
            sysv_and_posix_message_queues,
            rules_removed_while_in_use: 300,
            rule_errors,
            rule_table_full,
        ],
    )
}
