// SPDX-License-Identifier: GPL-2.0
//! Microbenchmarks of the operations the gates intercept, and the rule sets they run under.
//!
//! `vs-bench [--vs NAME] [--gates] MICRO...` prints `MICRO ns_per_op` lines (with `--gates`,
//! each gate handler's cost over each micro instead); `vs-bench setup
//! realistic|rules N|vss N|crowd N|busy [SHARE]|clear` prepares the module. bench/run.sh,
//! bench/scale.sh and bench/charge.sh interleave configurations in one boot and turn the lines
//! into ratios.

mod charge;
mod cpu;
mod scale;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;
use vs_client::Device as Dev;
use vs_core::abi::*;
use vs_selftests::proc::{getpid, in_child, wait};

pub(crate) fn pipe() -> [i32; 2] {
    let mut fds = [0i32; 2];
    // SAFETY: valid out-array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        panic!("pipe: {}", std::io::Error::last_os_error());
    }
    fds
}

pub(crate) fn rw(fd: i32, write: bool) {
    let mut b = [0u8; 1];
    // SAFETY: one byte from/to a valid buffer.
    let n = unsafe {
        if write {
            libc::write(fd, b.as_ptr() as *const _, 1)
        } else {
            libc::read(fd, b.as_mut_ptr() as *mut _, 1)
        }
    };
    assert_eq!(n, 1, "pipe i/o");
}

/// How many operations the last `time` ran (for `--gates`: events per operation).
static LAST_OPS: AtomicU32 = AtomicU32::new(0);

/// Run `op` `n` times; nanoseconds per operation.
fn time(n: u32, mut op: impl FnMut()) -> f64 {
    LAST_OPS.store(n, Ordering::Relaxed);
    let t = Instant::now();
    for _ in 0..n {
        op();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn micro(name: &str) -> Option<f64> {
    Some(match name {
        "fork_exit" => time(1000, || assert_eq!(in_child(|| 0), 0)),
        "fork_exec" => {
            // bench/run.sh points this at a static binary in the guest's own tmpfs: /bin/true
            // and its libraries come over 9p, whose I/O the instruction-counting clock does
            // not count as instructions, so the figure would not repeat.
            let exe = std::env::var("VS_BENCH_EXEC").unwrap_or_else(|_| "/bin/true".into());
            let path = std::ffi::CString::new(exe).ok()?;
            time(150, || {
                // SAFETY: the child execs or exits at once.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let argv = [path.as_ptr(), std::ptr::null()];
                    // SAFETY: NUL-terminated path and argv.
                    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
                    // SAFETY: exec failed: leave.
                    unsafe { libc::_exit(127) };
                }
                assert_eq!(wait(pid), 0);
            })
        }
        "socket_close" => time(20000, || {
            // SAFETY: plain syscalls.
            unsafe { libc::close(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0)) };
        }),
        "tcp_connect_accept" => {
            let l = TcpListener::bind("127.0.0.1:0").ok()?;
            let addr = l.local_addr().ok()?;
            time(1000, || {
                let c = TcpStream::connect(addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                drop((c, s));
            })
        }
        "pipe_roundtrip" => {
            let (a, b) = (pipe(), pipe());
            let n = 10000;
            // SAFETY: the child echoes n bytes then exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                for _ in 0..n {
                    rw(a[0], false);
                    rw(b[1], true);
                }
                // SAFETY: leave the child.
                unsafe { libc::_exit(0) };
            }
            let t = time(n, || {
                rw(a[1], true);
                rw(b[0], false);
            });
            wait(pid);
            t
        }
        // `chargeN`: N pipe ping-pong pairs on N CPUs at once (charge.rs).
        m if m.starts_with("charge") => {
            let pairs: u32 = m["charge".len()..].parse().ok()?;
            let n = 10000;
            LAST_OPS.store(pairs * n, Ordering::Relaxed);
            charge::run(pairs as usize, n)
        }
        "unix_roundtrip" => {
            let (mut x, mut y) = UnixStream::pair().ok()?;
            let n = 10000;
            // SAFETY: the child echoes n bytes then exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut b = [0u8; 1];
                for _ in 0..n {
                    let _ = y.read_exact(&mut b);
                    let _ = y.write_all(&b);
                }
                // SAFETY: leave the child.
                unsafe { libc::_exit(0) };
            }
            drop(y);
            let mut b = [0u8; 1];
            let t = time(n, || {
                x.write_all(b"x").expect("write");
                x.read_exact(&mut b).expect("read");
            });
            wait(pid);
            t
        }
        _ => return None,
    })
}

fn id_of(d: &Dev, name: &str) -> u32 {
    d.list()
        .expect("list")
        .iter()
        .find(|i| name_bytes(&i.name) == name.as_bytes())
        .map(|i| i.id)
        .expect("no such VS")
}

fn rule(event: u32, cur: u32, req: u32, target: u32, path: &str) -> VsRule {
    let mut r = VsRule {
        event,
        cur,
        req,
        target,
        ..VsRule::default()
    };
    r.path[..path.len()].copy_from_slice(path.as_bytes());
    r
}

/// A realistic hosting setup: two sites and a shared backend, as in the paper.
fn setup_realistic(d: &Dev) {
    let web = d
        .create(
            "web",
            VS_ROOT,
            VS_ID_AUTO,
            VsAttrs::default().with(VS_ATTR_PROCS, 100000),
        )
        .expect("web");
    let www1 = d.create("www1", web, 1, VsAttrs::default()).expect("www1");
    let www2 = d.create("www2", web, 2, VsAttrs::default()).expect("www2");
    let fcgi = d
        .create("fcgi", web, VS_ID_AUTO, VsAttrs::default())
        .expect("fcgi");
    let rules = [
        rule(VS_EV_FORK, www1, VS_ANY, www1, ""),
        rule(VS_EV_FORK, www2, VS_ANY, www2, ""),
        rule(VS_EV_EXEC, VS_ANY, VS_ANY, www1, "/usr/sbin/nginx"),
        rule(VS_EV_EXEC, VS_ANY, VS_ANY, fcgi, "/usr/bin/php-cgi"),
        rule(VS_EV_ACCEPT, fcgi, www1, VS_TARGET_REQ, ""),
        rule(VS_EV_ACCEPT, fcgi, www2, VS_TARGET_REQ, ""),
        rule(VS_EV_UNIX_ACCEPT, fcgi, VS_ANY, VS_TARGET_REQ, ""),
        rule(VS_EV_PIPE_READ, VS_ANY, www1, VS_TARGET_KEEP, ""),
        rule(VS_EV_MSG_RECV, VS_ANY, VS_ANY, VS_TARGET_KEEP, ""),
    ];
    d.add_rules(&rules).expect("rules");
}

/// `n` rules that are all looked at but never match a fork in `web`: exec rules for other
/// paths and fork rules for other VSs.
fn setup_rules(d: &Dev, n: u32) {
    let other = d
        .create("other", VS_ROOT, VS_ID_AUTO, VsAttrs::default())
        .expect("other");
    let web = id_of(d, "web");
    let mut batch = Vec::new();
    for i in 0..n.saturating_sub(1) {
        batch.push(if i % 2 == 0 {
            rule(VS_EV_FORK, other, VS_ANY, other, "")
        } else {
            rule(VS_EV_EXEC, VS_ANY, VS_ANY, other, &format!("/opt/x/{i}"))
        });
        if batch.len() == 4096 {
            d.add_rules(&batch).expect("rules");
            batch.clear();
        }
    }
    // The one that matches: forks in web stay in web.
    batch.push(rule(VS_EV_FORK, web, VS_ANY, web, ""));
    d.add_rules(&batch).expect("rules");
}

fn clear(d: &Dev) {
    scale::end_crowd();
    for r in d.rules().unwrap_or_default() {
        let _ = d.del_rule(r.id);
    }
    let mut all = d.list().unwrap_or_default();
    all.sort_by_key(|i| std::cmp::Reverse(i.depth));
    for i in all.iter().filter(|i| i.id != VS_ROOT) {
        let _ = d.destroy(i.id);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("cpu") {
        cpu::main(&args[1..]);
        return;
    }
    let mut it = args.iter().map(String::as_str).peekable();
    if it.peek() == Some(&"setup") {
        it.next();
        let d = Dev::open().expect("open /dev/vs");
        match (it.next(), it.next()) {
            (Some("realistic"), _) => setup_realistic(&d),
            // `busy [SHARE]`: a VS for bench/charge.sh's pairs, with a CPU share or none.
            (Some("busy"), share) => {
                let attrs = match share {
                    Some(s) => VsAttrs::default().with(VS_ATTR_CPU, s.parse().expect("share")),
                    None => VsAttrs::default(),
                };
                d.create("busy", VS_ROOT, VS_ID_AUTO, attrs).expect("busy");
            }
            // `full`: as many as fill the table, with the rules already there.
            (Some("rules"), Some("full")) => {
                let there = d.rules().expect("rules").len() as u32;
                setup_rules(&d, VS_MAX_RULES.saturating_sub(there));
            }
            (Some("rules"), Some(n)) => setup_rules(&d, n.parse().expect("rule count")),
            (Some("vss"), Some(n)) => scale::setup_vss(&d, n.parse().expect("VS count")),
            (Some("crowd"), Some(n)) => scale::setup_crowd(&d, n.parse().expect("task count")),
            (Some("clear"), _) => clear(&d),
            other => panic!("unknown setup {other:?}"),
        }
        return;
    }
    if it.peek() == Some(&"--vs") {
        it.next();
        let name = it.next().expect("--vs NAME");
        let d = Dev::open().expect("open /dev/vs");
        d.add_process(id_of(&d, name), getpid(), false)
            .expect("addprocess");
    }
    // `--gates`: time each gate handler in the module (its gate_timing parameter) over each
    // micro, and print `MICRO OPS GATE EVENTS NS CLOCK_PAIR_NS` lines instead of timings.
    let gates = it.peek() == Some(&"--gates");
    if gates {
        it.next();
    }
    for name in it {
        if gates {
            std::fs::write(GATE_TIMING, "1").expect("gate_timing");
        }
        let ns = micro(name);
        if gates {
            let cost = std::fs::read_to_string(GATE_COST).expect("gate_cost");
            std::fs::write(GATE_TIMING, "0").expect("gate_timing");
            print_gate_cost(name, &cost);
            continue;
        }
        match ns {
            Some(ns) => println!("{name} {ns:.0}"),
            None => eprintln!("unknown micro {name}"),
        }
    }
}

const GATE_TIMING: &str = "/sys/module/vs/parameters/gate_timing";
const GATE_COST: &str = "/sys/module/vs/parameters/gate_cost";

/// `gate_cost` (a `clock_pair_ns N` line, then `gate events ns` lines) as `--gates` prints it.
fn print_gate_cost(micro: &str, cost: &str) {
    let ops = LAST_OPS.load(Ordering::Relaxed);
    let mut pair = "0";
    for line in cost.lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["clock_pair_ns", n] => pair = n,
            [gate, events, ns] => println!("{micro} {ops} {gate} {events} {ns} {pair}"),
            _ => eprintln!("gate_cost: unexpected line {line:?}"),
        }
    }
}
