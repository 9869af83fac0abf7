// SPDX-License-Identifier: GPL-2.0
//! The accept gate's second job, in QEMU: a managed listener's queue is served by requester
//! share (lower share queued first is not served first; nobody starves), a requester cannot
//! hold more than its share of the backlog, requesters with local VSIDs are found on this host
//! through their own socket, and accepts and refusals are counted per requester VS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use vs_core::abi::*;
use vs_selftests::dev::*;
use vs_selftests::ktap::Context;
use vs_selftests::net::{connect_raw, set_tos, tos_of};
use vs_selftests::proc::{getpid, wait};
use vs_selftests::{check, check_eq, run, tests, Fail, Outcome};

const PARAM: &str = "/sys/module/vs/parameters/accept_by_share";

fn cpu(share: u32) -> VsAttrs {
    VsAttrs {
        cpu_share: share,
        mask: 1 << VS_ATTR_CPU,
        ..VsAttrs::default()
    }
}

/// A listener with an explicit backlog (std's is 128).
fn listen(backlog: i32) -> Result<TcpListener, Fail> {
    let l = TcpListener::bind("127.0.0.1:0").ctx("bind")?;
    // SAFETY: listen(2) on our own socket.
    check_eq!(unsafe { libc::listen(l.as_raw_fd(), backlog) }, 0, "listen");
    Ok(l)
}

/// A non-blocking TCP connection to `addr`, under way.
fn connect_nonblocking(addr: SocketAddr) -> Option<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: a new socket we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return None;
    }
    // EINPROGRESS is the expected answer.
    connect_raw(fd, &addr);
    // SAFETY: fd is ours; the stream takes ownership.
    Some(unsafe { TcpStream::from_raw_fd(fd) })
}

/// A forked client in VS `vs` that opens `n` connections to `addr`, writes `tag` on each,
/// reports on `ready` and keeps them open until killed.
struct Client(i32);

impl Client {
    fn start(vs: u32, addr: SocketAddr, n: usize, tag: u8) -> Result<Client, Fail> {
        Self::spawn(vs, addr, n, tag, false)
    }

    /// Like `start`, but without waiting for the handshakes: a flood.
    fn flood(vs: u32, addr: SocketAddr, n: usize, tag: u8) -> Result<Client, Fail> {
        Self::spawn(vs, addr, n, tag, true)
    }

    fn spawn(vs: u32, addr: SocketAddr, n: usize, tag: u8, flood: bool) -> Result<Client, Fail> {
        let mut fds = [0i32; 2];
        // SAFETY: a valid array for pipe(2).
        check_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        // SAFETY: the child only uses its own copies and ends with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = (|| {
                let d = Dev::open().ok()?;
                d.add_process(vs, getpid(), false).ok()?;
                let mut socks = Vec::new();
                if flood {
                    // Start every connection at once; write the tag on those the server
                    // lets complete within 200 ms (a refused SYN is retried after 1 s).
                    for _ in 0..n {
                        socks.push(connect_nonblocking(addr)?);
                    }
                    let t0 = Instant::now();
                    let mut sent = vec![false; n];
                    while t0.elapsed() < Duration::from_millis(200) {
                        for (s, done) in socks.iter_mut().zip(sent.iter_mut()) {
                            if !*done && s.write(&[tag]).is_ok_and(|w| w == 1) {
                                *done = true;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                } else {
                    for _ in 0..n {
                        let mut s =
                            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
                        s.write_all(&[tag]).ok()?;
                        socks.push(s);
                    }
                }
                // SAFETY: write one byte to our end of the pipe.
                unsafe { libc::write(fds[1], b"r".as_ptr() as *const _, 1) };
                loop {
                    // SAFETY: plain syscall; the parent kills us.
                    unsafe { libc::pause() };
                }
                #[allow(unreachable_code)]
                Some(())
            })();
            // SAFETY: end the child.
            unsafe { libc::_exit(if code.is_some() { 0 } else { 1 }) };
        }
        // SAFETY: close the write end in the parent.
        unsafe { libc::close(fds[1]) };
        let mut b = [0u8; 1];
        // SAFETY: read one byte from the pipe; EOF (0) means the child failed.
        let r = unsafe { libc::read(fds[0], b.as_mut_ptr() as *mut _, 1) };
        // SAFETY: our fd.
        unsafe { libc::close(fds[0]) };
        let c = Client(pid);
        check_eq!(r, 1, "client in VS {vs} connected {n} times");
        Ok(c)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        wait(self.0);
    }
}

/// Accept up to `n` connections; the tag byte each carries, in accept order.
fn accept_tags(l: &TcpListener, n: usize) -> Result<Vec<u8>, Fail> {
    let mut tags = Vec::new();
    for i in 0..n {
        let (mut c, _) = l.accept().ctx(&format!("accept {i}"))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .ctx("timeout")?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b).ctx("tag")?;
        tags.push(b[0]);
    }
    Ok(tags)
}

fn set_param(on: bool) -> Outcome {
    std::fs::write(PARAM, if on { "1" } else { "0" }).ctx(PARAM)
}

/// srv (acceptor, local id), lo (global id 3, 25 % CPU) and hi (local id, 75 % CPU).
fn sites(f: &Fixture) -> Result<(u32, u32, u32), Fail> {
    let srv = f.create_simple("srv").ctx("srv")?;
    let lo = f.create("lo", VS_ROOT, 3, cpu(25)).ctx("lo")?;
    let hi = f.create("hi", VS_ROOT, VS_ID_AUTO, cpu(75)).ctx("hi")?;
    check!(hi >= VS_LOCAL_MIN, "hi has a local VSID ({hi})");
    Ok((srv, lo, hi))
}

fn accept_order_by_share() -> Outcome {
    let f = Fixture::new()?;
    set_param(true)?;
    let (srv, lo, hi) = sites(&f)?;
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_KEEP)])
        .ctx("(accept, srv, req=*) -> (keep)")?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let l = listen(64)?;
    let addr = l.local_addr().ctx("addr")?;
    // The 25 % requester queues first, then the 75 % one: 6 connections each.
    let _a = Client::start(lo, addr, 6, b'L')?;
    let _b = Client::start(hi, addr, 6, b'H')?;
    let tags = accept_tags(&l, 12)?;
    let order: String = tags.iter().map(|&t| t as char).collect();
    check_eq!(
        tags[0],
        b'H',
        "the lower share queued first is not served first: {order}"
    );
    let first4 = tags[..4].iter().filter(|&&t| t == b'H').count();
    check!(
        first4 == 3,
        "75/25 gives 3 of the first 4 accepts to hi: {order}"
    );
    check_eq!(
        tags.iter().filter(|&&t| t == b'L').count(),
        6,
        "nobody starves: {order}"
    );
    // Accepts are counted per requester VS.
    check_eq!(f.get(lo).ctx("GET lo")?.stats.accepts, 6);
    check_eq!(f.get(hi).ctx("GET hi")?.stats.accepts, 6);
    Ok(())
}

fn fifo_without_rule_or_when_off() -> Outcome {
    let f = Fixture::new()?;
    let (srv, lo, hi) = sites(&f)?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    // No accept rule applies to srv: stock FIFO.
    let l = listen(64)?;
    let addr = l.local_addr().ctx("addr")?;
    {
        let _a = Client::start(lo, addr, 3, b'L')?;
        let _b = Client::start(hi, addr, 3, b'H')?;
        check_eq!(accept_tags(&l, 6)?, b"LLLHHH".to_vec(), "no rule: FIFO");
    }
    // A rule, but ordering switched off by the module parameter: FIFO too.
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_KEEP)])
        .ctx("rule")?;
    set_param(false)?;
    let l = listen(64)?;
    let addr = l.local_addr().ctx("addr")?;
    let res = (|| {
        let _a = Client::start(lo, addr, 3, b'L')?;
        let _b = Client::start(hi, addr, 3, b'H')?;
        accept_tags(&l, 6)
    })();
    set_param(true)?;
    check_eq!(res?, b"LLLHHH".to_vec(), "accept_by_share=0: FIFO");
    Ok(())
}

fn admission_limit_under_flood() -> Outcome {
    let f = Fixture::new()?;
    set_param(true)?;
    let srv = f.create_simple("srv").ctx("srv")?;
    let flood = f.create("flood", VS_ROOT, 4, cpu(50)).ctx("flood")?;
    let good = f.create("good", VS_ROOT, 5, cpu(50)).ctx("good")?;
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_KEEP)])
        .ctx("rule")?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    // Backlog 8: each requester may hold 4 (50 %).
    let l = listen(8)?;
    let addr = l.local_addr().ctx("addr")?;
    {
        // One accept makes the listener managed.
        let _g = Client::start(good, addr, 1, b'G')?;
        check_eq!(accept_tags(&l, 1)?, b"G".to_vec());
    }
    // 16 connections from the flooding VS: their handshakes complete at the client, but the
    // server queues only 4 of them.
    let _fl = Client::flood(flood, addr, 16, b'F')?;
    let _g = Client::start(good, addr, 2, b'G')?;
    l.set_nonblocking(true).ctx("nonblocking")?;
    let mut got = Vec::new();
    let t0 = Instant::now();
    // What is queued now (the flood's retries come back after at least a second).
    while t0.elapsed() < Duration::from_millis(300) {
        match l.accept() {
            Ok((mut c, _)) => {
                c.set_nonblocking(false).ctx("blocking")?;
                c.set_read_timeout(Some(Duration::from_secs(5)))
                    .ctx("timeout")?;
                let mut b = [0u8; 1];
                c.read_exact(&mut b).ctx("tag")?;
                got.push(b[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(Fail::Fail(format!("accept: {e}"))),
        }
    }
    let order: String = got.iter().map(|&t| t as char).collect();
    let floods = got.iter().filter(|&&t| t == b'F').count();
    check!(
        floods <= 4,
        "the flood held at most its half of the backlog: {order}"
    );
    check_eq!(
        got.iter().filter(|&&t| t == b'G').count(),
        2,
        "the good site got in: {order}"
    );
    let fs = f.get(flood).ctx("GET flood")?.stats;
    check!(
        fs.accepts_refused >= 1,
        "refusals counted: {}",
        fs.accepts_refused
    );
    check_eq!(f.get(good).ctx("GET good")?.stats.accepts_refused, 0);
    Ok(())
}

/// A read-only counter parameter of the module.
fn counter(name: &str) -> Result<u64, Fail> {
    let path = format!("/sys/module/vs/parameters/{name}");
    let text = std::fs::read_to_string(&path).ctx(&path)?;
    text.trim().parse().ctx(&path)
}

/// A listener is managed from its first accept under an accept rule until it closes: 300
/// listeners opened, managed and closed one after another (more than the 256 the table
/// holds) are all managed, and none is left managed. The admission check (every SYN) reads
/// the managed listeners without the state lock; a close that missed its listener would leave
/// the table full and the later listeners FIFO.
fn closed_listeners_are_forgotten() -> Outcome {
    let f = Fixture::new()?;
    set_param(true)?;
    let srv = f.create_simple("srv").ctx("srv")?;
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_KEEP)])
        .ctx("rule")?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let (unmanaged, managed) = (counter("accept_unmanaged")?, counter("accept_listeners")?);
    for i in 0..300 {
        let l = listen(4)?;
        let addr = l.local_addr().ctx("addr")?;
        let c = TcpStream::connect(addr).ctx("connect")?;
        let (s, _) = l.accept().ctx("accept")?;
        if i == 0 {
            check_eq!(
                counter("accept_listeners")?,
                managed + 1,
                "the first accept manages its listener"
            );
        }
        drop((c, s, l));
    }
    check_eq!(
        counter("accept_unmanaged")?,
        unmanaged,
        "every listener was managed"
    );
    check_eq!(
        counter("accept_listeners")?,
        managed,
        "closed listeners are forgotten"
    );
    Ok(())
}

fn local_vsid_requester_on_loopback() -> Outcome {
    let f = Fixture::new()?;
    let srv = f.create_simple("srv").ctx("srv")?;
    let site = f.create_simple("site").ctx("site")?;
    check!(
        site >= VS_LOCAL_MIN,
        "a local VSID ({site}) does not fit DSCP"
    );
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_REQ)])
        .ctx("(accept, srv, req=*) -> (req)")?;
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let l = listen(16)?;
    let addr = l.local_addr().ctx("addr")?;
    let _c = Client::start(site, addr, 1, b'S')?;
    check_eq!(accept_tags(&l, 1)?, b"S".to_vec());
    check_eq!(
        f.which(getpid()),
        Ok(site),
        "the server works for the local-VSID requester"
    );
    check_eq!(f.get(site).ctx("GET")?.stats.accepts, 1);
    Ok(())
}

fn forged_tos_is_ignored_on_this_host() -> Outcome {
    // A root client sets IP_TOS to claim global VS 6: its own socket (untagged) wins.
    let f = Fixture::new()?;
    let srv = f.create_simple("srv").ctx("srv")?;
    let victim = f
        .create("victim", VS_ROOT, 6, VsAttrs::default())
        .ctx("victim")?;
    f.add_rules(&[rule(VS_EV_ACCEPT, srv, VS_ANY, VS_TARGET_REQ)])
        .ctx("rule")?;
    let l = listen(16)?;
    let addr = l.local_addr().ctx("addr")?;
    // A socket with TOS = victim << 2, made and connected while this task is unclassified.
    // SAFETY: plain socket calls on a new fd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    check!(fd >= 0, "socket");
    set_tos(fd, (victim as i32) << 2);
    let r = connect_raw(fd, &addr);
    check_eq!(r, 0, "connect");
    f.add_process(srv, getpid(), false).ctx("addprocess")?;
    let _c = l.accept().ctx("accept")?;
    check_eq!(
        f.which(getpid()),
        Ok(srv),
        "a forged DSCP does not move the server"
    );
    check_eq!(f.get(victim).ctx("GET")?.stats.accepts, 0);
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    Ok(())
}

/// A socket made in VS `vs` with `tos` (if any) set before it connects: its TOS after.
fn tos_after_connect(
    f: &Fixture,
    vs: u32,
    tos: Option<i32>,
    addr: &SocketAddr,
) -> Result<i32, Fail> {
    f.add_process(vs, getpid(), false).ctx("addprocess")?;
    // SAFETY: plain socket calls on a new fd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    check!(fd >= 0, "socket");
    if let Some(t) = tos {
        set_tos(fd, t);
    }
    check_eq!(connect_raw(fd, addr), 0, "connect");
    let got = tos_of(fd);
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    f.add_process(VS_ROOT, getpid(), false)
        .ctx("back to the root")?;
    Ok(got)
}

fn a_users_own_tos_survives_connect() -> Outcome {
    let f = Fixture::new()?;
    let local = f.create_simple("local").ctx("local")?;
    let global = f
        .create("global", VS_ROOT, 5, VsAttrs::default())
        .ctx("global")?;
    let l = listen(16)?;
    let addr = l.local_addr().ctx("addr")?;
    // Expedited forwarding (DSCP 46, no VS has that id): the application's choice stays.
    let ef = 46 << 2;
    check_eq!(
        tos_after_connect(&f, local, Some(ef), &addr)?,
        ef,
        "local VS"
    );
    check_eq!(
        tos_after_connect(&f, global, Some(ef), &addr)?,
        ef,
        "global VS"
    );
    // No TOS of its own: a global VS's socket carries its VSID on the wire, a local one's none.
    check_eq!(
        tos_after_connect(&f, global, None, &addr)?,
        (global as i32) << 2
    );
    check_eq!(tos_after_connect(&f, local, None, &addr)?, 0);
    Ok(())
}

fn main() {
    run(
        "vs_net",
        tests![
            accept_order_by_share,
            fifo_without_rule_or_when_off,
            admission_limit_under_flood,
            closed_listeners_are_forgotten: 120,
            local_vsid_requester_on_loopback,
            forged_tos_is_ignored_on_this_host,
            a_users_own_tos_survives_connect,
        ],
    )
}
