// SPDX-License-Identifier: GPL-2.0
//! vs_fuzz: random ioctl sequences against `/dev/vs`, from several threads, while other
//! processes fork, exec, exit, accept and pass messages (so every gate runs), VSs and rules
//! churn, and the module is unloaded and loaded again under that load.
//!
//! Arguments are drawn from boundary values (0, 63/64, `VS_MAX`, `u32::MAX`, ids that exist,
//! ids just destroyed), random values and bad pointers (NULL, a kernel address, an unmapped
//! page, a structure that straddles a mapped and an unmapped page). With `--failslab` the
//! ioctl calls (and the module's init, loaded from memory) also run with failslab on, so the
//! module's allocation-failure paths run too; nothing else in the guest has allocations
//! fail. What is checked, after each phase:
//! - every error is one the ABI documents (README "Errors"); unknown commands get ENOTTY,
//!   bad argument pointers EFAULT;
//! - every VS's `nr_procs` equals its members, and every member is a live task that `WHICH`
//!   places in that VS;
//! - no task is left with a nice it did not have before (vs restores what it changed);
//! - nothing new in the kernel log matches scripts/kernel-errors.re.
//!
//! `make check` runs a short run (tests/run.sh); `make fuzz` the long one (docs/fuzz.md).
//! Usage: vs_fuzz [--ops N] [--seconds S] [--threads T] [--seed X] [--cycles C] [--failslab]

use std::collections::{BTreeMap, HashMap};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vs_core::abi::*;
use vs_selftests::dev::*;
use vs_selftests::ktap::Context;
use vs_selftests::proc::getpid;
use vs_selftests::{check, run, tests, Fail, Outcome};

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Clone, Debug)]
struct Opts {
    ops: u64,
    seconds: u64,
    threads: usize,
    seed: u64,
    cycles: u32,
    failslab: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        ops: 40_000,
        seconds: 40,
        threads: 3,
        seed: 0x5eed_0f75,
        cycles: 4,
        failslab: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).and_then(|s| s.parse::<u64>().ok());
        match (args[i].as_str(), v) {
            ("--ops", Some(v)) => o.ops = v,
            ("--seconds", Some(v)) => o.seconds = v,
            ("--threads", Some(v)) => o.threads = v.clamp(1, 16) as usize,
            ("--seed", Some(v)) => o.seed = v,
            ("--cycles", Some(v)) => o.cycles = v as u32,
            ("--failslab", _) => {
                o.failslab = true;
                i += 1;
                continue;
            }
            (a, _) => {
                eprintln!("vs_fuzz: bad argument {a}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Randomness: xorshift64*, seeded per thread, so a run is reproducible from its seed.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Values at the edges of what the ABI accepts.
const EDGE: [u32; 20] = [
    0,
    1,
    2,
    VS_GLOBAL_MAX,
    VS_LOCAL_MIN,
    VS_LOCAL_MIN + 1,
    99,
    VS_SHARE_MAX,
    VS_SHARE_MAX + 1,
    VS_MAX - 1,
    VS_MAX,
    VS_MAX_DEPTH,
    VS_MAX_RULES,
    VS_MAX_RULES + 1,
    VS_LOCAL_MAX,
    VS_LOCAL_MAX + 1,
    0x8000_0000,
    VS_TARGET_KEEP - 1,
    VS_TARGET_KEEP,
    VS_ANY,
];

/// What the threads share: ids seen to exist, pids worth moving, counters.
struct World {
    ids: Mutex<Vec<u32>>,
    rule_ids: Mutex<Vec<u32>>,
    pids: Mutex<Vec<i32>>,
    ops: AtomicU64,
    findings: Mutex<Vec<String>>,
    errnos: Mutex<BTreeMap<i32, u64>>,
    stop: AtomicBool,
}

impl World {
    fn new() -> World {
        World {
            ids: Mutex::new(vec![VS_ROOT]),
            rule_ids: Mutex::new(Vec::new()),
            pids: Mutex::new(Vec::new()),
            ops: AtomicU64::new(0),
            findings: Mutex::new(Vec::new()),
            errnos: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        }
    }
    fn finding(&self, what: String) {
        let mut f = self.findings.lock().unwrap();
        if f.len() < 20 {
            f.push(what);
        }
    }
    fn id(&self, rng: &mut Rng) -> u32 {
        if rng.chance(60) {
            let ids = self.ids.lock().unwrap();
            if !ids.is_empty() {
                return ids[rng.below(ids.len() as u64) as usize];
            }
        }
        value(rng)
    }
    fn pid(&self, rng: &mut Rng) -> i32 {
        if rng.chance(70) {
            let pids = self.pids.lock().unwrap();
            if !pids.is_empty() {
                return pids[rng.below(pids.len() as u64) as usize];
            }
        }
        // The fuzzer itself, one of its threads, init, kthreadd, nothing, and nonsense.
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        rng.pick(&[getpid(), tid, 1, 2, 0, -1, i32::MAX, 4_194_304, i32::MIN])
    }
}

fn value(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0..=5 => rng.pick(&EDGE),
        6..=7 => rng.below(200) as u32,
        _ => rng.next() as u32,
    }
}

// ---------------------------------------------------------------------------------------------
// Memory for bad pointers: a writable page followed by an unmapped one, and a read-only page.

struct Arena {
    rw: usize,
    none: usize,
    ro: usize,
}

const PAGE: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    ReadOnly,
    Unreadable,
}

impl Arena {
    fn new() -> Arena {
        // SAFETY: fresh anonymous mappings; the pointers are only ever handed to the kernel.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                3 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert!(base != libc::MAP_FAILED, "mmap");
            let b = base as usize;
            libc::mprotect((b + PAGE) as *mut _, PAGE, libc::PROT_NONE);
            libc::mprotect((b + 2 * PAGE) as *mut _, PAGE, libc::PROT_READ);
            Arena {
                rw: b,
                none: b + PAGE,
                ro: b + 2 * PAGE,
            }
        }
    }

    /// Where the argument goes: in place, in the read-only page (the kernel can read it but
    /// not write the answer back), or nowhere readable.
    fn arg<T: Copy>(&self, rng: &mut Rng, v: &mut T, mode: Mode) -> usize {
        let size = std::mem::size_of::<T>();
        match mode {
            Mode::Good => v as *mut T as usize,
            Mode::Unreadable => self.bad(rng, size),
            Mode::ReadOnly => {
                // SAFETY: the read-only page is ours and large enough for any ABI structure;
                // it is written only if mprotect made it writable (mprotect can fail, e.g.
                // ENOMEM splitting the mapping: then the argument is simply unreadable, which
                // must fail too).
                unsafe {
                    if libc::mprotect(self.ro as *mut _, PAGE, libc::PROT_READ | libc::PROT_WRITE)
                        != 0
                    {
                        return self.bad(rng, size);
                    }
                    std::ptr::write_unaligned(self.ro as *mut T, *v);
                    libc::mprotect(self.ro as *mut _, PAGE, libc::PROT_READ);
                }
                self.ro
            }
        }
    }

    /// A pointer the kernel cannot read an argument of `size` bytes from: EFAULT.
    fn bad(&self, rng: &mut Rng, size: usize) -> usize {
        rng.pick(&[
            0usize,
            1,
            self.none,
            // A structure whose tail lies in the unmapped page.
            self.none - size / 2,
            0xffff_8880_0000_0000,
            usize::MAX - 7,
        ])
    }
}

// ---------------------------------------------------------------------------------------------
// One random operation.

/// Errors the module may return (README "Errors"), plus ENOMEM when failslab is on.
const DOCUMENTED: [i32; 10] = [
    libc::EFAULT,
    libc::EINVAL,
    libc::ENOENT,
    libc::EEXIST,
    libc::EBUSY,
    libc::ENOSPC,
    libc::EAGAIN,
    libc::ENOTTY,
    libc::ESRCH,
    libc::ENOMEM,
];

fn random_name(rng: &mut Rng) -> [u8; VS_NAME_LEN] {
    let mut b = [0u8; VS_NAME_LEN];
    match rng.below(8) {
        0 => {}                                           // empty
        1 => b = [b'x'; VS_NAME_LEN],                     // no NUL
        2 => b[..31].copy_from_slice(&[b'y'; 31]),        // longest valid
        3 => b[..3].copy_from_slice(b"a/b"),              // not a plain name
        4 => b[..4].copy_from_slice(&[0xff, b'a', 1, 2]), // bytes
        5 => b[..4].copy_from_slice(b"root"),
        _ => {
            let s = format!("f{}", rng.below(64));
            b[..s.len()].copy_from_slice(s.as_bytes());
        }
    }
    b
}

fn random_attrs(rng: &mut Rng) -> VsAttrs {
    VsAttrs {
        cpu_share: value(rng),
        net_share: value(rng),
        max_procs: if rng.chance(50) {
            rng.below(40) as u32
        } else {
            value(rng)
        },
        mask: if rng.chance(80) {
            rng.below(8) as u32
        } else {
            value(rng)
        },
    }
}

fn random_rule(w: &World, rng: &mut Rng) -> VsRule {
    let mut r = VsRule {
        id: value(rng),
        event: rng.below(VS_EV_MAX as u64 + 3) as u32,
        cur: if rng.chance(40) { VS_ANY } else { w.id(rng) },
        req: if rng.chance(60) { VS_ANY } else { w.id(rng) },
        target: match rng.below(4) {
            0 => VS_TARGET_KEEP,
            1 => VS_TARGET_REQ,
            _ => w.id(rng),
        },
        _pad: if rng.chance(90) { 0 } else { value(rng) },
        hits: rng.next(),
        path: [0; VS_PATH_LEN],
    };
    match rng.below(6) {
        0 => r.path[..9].copy_from_slice(b"/bin/true"),
        1 => r.path[..13].copy_from_slice(b"/usr/bin/true"),
        2 => r.path = [b'/'; VS_PATH_LEN], // no NUL
        3 => r.path[..8].copy_from_slice(b"relative"),
        _ => {}
    }
    r
}

/// A buffer for the list-like commands: either one that holds `cap` entries, or one that
/// straddles the unmapped page (the copy out faults part-way).
fn out_buffer(arena: &Arena, rng: &mut Rng, keep: &mut Vec<u8>, elem: usize) -> (u64, u32) {
    match rng.below(5) {
        0 => (0, rng.pick(&[0, 1, 5000])),
        1 => {
            let fit = 2 * elem.max(1);
            ((arena.none - fit) as u64, rng.pick(&[4, 100, u32::MAX]))
        }
        _ => {
            let cap = rng.below(70) as u32;
            keep.clear();
            keep.resize(cap as usize * elem + 1, 0);
            (keep.as_mut_ptr() as u64, cap)
        }
    }
}

/// What happened to one call: Ok, or the errno. Only `one_op` calls this, and its `arg` is
/// always one of: a local of the command's own argument type (`Arena::arg` in `Mode::Good`),
/// the arena's pages (mapped for this fuzzer alone, never read as Rust values), NULL, a
/// kernel address, or a buffer from `out_buffer` sized for the `cap` it declares.
fn ioctl(dev: &Dev, cmd: u32, arg: usize) -> Result<i32, i32> {
    // Allocations fail only inside the ioctl: the thread's own mprotect, page faults and file
    // reads (the guest's root is 9p, which does not survive failed allocations) stay intact.
    let _failing = Failing::on();
    // SAFETY: per the above, whatever the kernel writes lands in the argument the command
    // expects, in a buffer sized for it, or in pages that hold no Rust value.
    unsafe { dev.raw(cmd, arg) }.map_err(|e| e.errno)
}

fn one_op(dev: &Dev, w: &World, arena: &Arena, rng: &mut Rng, scratch: &mut Vec<u8>) {
    // Half of the bad-pointer calls must fail with EFAULT whatever else is wrong: the module
    // reads its argument before looking at it.
    let mode = match rng.below(100) {
        0..=7 => Mode::Unreadable,
        8..=11 => Mode::ReadOnly,
        _ => Mode::Good,
    };
    let bad = mode == Mode::Unreadable;
    let (cmd, res, expect_efault) = match rng.below(16) {
        0 => {
            let mut v = VsVersion::default();
            let arg = arena.arg(rng, &mut v, mode);
            let r = ioctl(dev, VS_IOC_VERSION, arg);
            if mode == Mode::Good && r.is_ok() && v.abi != VS_ABI_VERSION {
                w.finding(format!("VERSION says abi {}", v.abi));
            }
            (VS_IOC_VERSION, r, bad)
        }
        1 | 2 => {
            let mut c = VsCreate {
                name: random_name(rng),
                parent: w.id(rng),
                id: if rng.chance(50) {
                    VS_ID_AUTO
                } else {
                    value(rng)
                },
                attrs: random_attrs(rng),
            };
            let arg = arena.arg(rng, &mut c, mode);
            let r = ioctl(dev, VS_IOC_CREATE, arg);
            if !bad && r.is_ok() {
                let mut ids = w.ids.lock().unwrap();
                if ids.len() < 256 {
                    ids.push(c.id);
                }
            }
            (VS_IOC_CREATE, r, bad)
        }
        3 => {
            let mut id = w.id(rng);
            let arg = arena.arg(rng, &mut id, mode);
            let r = ioctl(dev, VS_IOC_DESTROY, arg);
            if !bad && r.is_ok() {
                w.ids.lock().unwrap().retain(|&x| x != id);
            }
            (VS_IOC_DESTROY, r, bad)
        }
        4 => {
            let mut i = VsInfo {
                id: w.id(rng),
                ..VsInfo::default()
            };
            let arg = arena.arg(rng, &mut i, mode);
            (VS_IOC_GET, ioctl(dev, VS_IOC_GET, arg), bad)
        }
        5 => {
            let (buf, cap) = out_buffer(arena, rng, scratch, std::mem::size_of::<VsInfo>());
            let mut l = VsList {
                buf,
                cap,
                count: value(rng),
            };
            let arg = arena.arg(rng, &mut l, mode);
            (VS_IOC_LIST, ioctl(dev, VS_IOC_LIST, arg), bad)
        }
        6 | 7 => {
            let mut s = VsSet {
                id: w.id(rng),
                attach_mask: if rng.chance(70) {
                    rng.below(8) as u32
                } else {
                    value(rng)
                },
                detach_mask: if rng.chance(70) {
                    rng.below(8) as u32
                } else {
                    value(rng)
                },
                _pad: if rng.chance(90) { 0 } else { value(rng) },
                values: random_attrs(rng),
            };
            let arg = arena.arg(rng, &mut s, mode);
            (VS_IOC_SET, ioctl(dev, VS_IOC_SET, arg), bad)
        }
        8 | 9 => {
            let n = if rng.chance(90) {
                rng.below(12) as usize
            } else {
                40
            };
            let mut rules: Vec<VsRule> = (0..n).map(|_| random_rule(w, rng)).collect();
            let (buf, count) = match rng.below(10) {
                0 => (arena.bad(rng, std::mem::size_of::<VsRule>() * 2) as u64, 2),
                1 => (
                    rules.as_mut_ptr() as u64,
                    rng.pick(&[VS_MAX_RULES + 1, u32::MAX]),
                ),
                _ => (rules.as_mut_ptr() as u64, n as u32),
            };
            let mut a = VsRuleAdd {
                buf,
                count,
                first_id: value(rng),
            };
            let arg = arena.arg(rng, &mut a, mode);
            let r = ioctl(dev, VS_IOC_ADD_RULES, arg);
            if !bad && r.is_ok() {
                let mut ids = w.rule_ids.lock().unwrap();
                for k in 0..count.min(64) {
                    if ids.len() < 512 {
                        ids.push(a.first_id.wrapping_add(k));
                    }
                }
            }
            (VS_IOC_ADD_RULES, r, bad)
        }
        10 => {
            let mut id = if rng.chance(70) {
                let ids = w.rule_ids.lock().unwrap();
                if ids.is_empty() {
                    value(rng)
                } else {
                    ids[rng.below(ids.len() as u64) as usize]
                }
            } else {
                value(rng)
            };
            let arg = arena.arg(rng, &mut id, mode);
            let r = ioctl(dev, VS_IOC_DEL_RULE, arg);
            if !bad && r.is_ok() {
                w.rule_ids.lock().unwrap().retain(|&x| x != id);
            }
            (VS_IOC_DEL_RULE, r, bad)
        }
        11 => {
            let (buf, cap) = out_buffer(arena, rng, scratch, std::mem::size_of::<VsRule>());
            let mut l = VsRuleList { buf, cap, count: 0 };
            let arg = arena.arg(rng, &mut l, mode);
            (VS_IOC_LIST_RULES, ioctl(dev, VS_IOC_LIST_RULES, arg), bad)
        }
        12 | 13 => {
            let mut p = VsProc {
                pid: w.pid(rng) as u32,
                id: w.id(rng),
                flags: if rng.chance(80) {
                    rng.below(2) as u32
                } else {
                    value(rng)
                },
                count: value(rng),
            };
            let arg = arena.arg(rng, &mut p, mode);
            (VS_IOC_ADD_PROCESS, ioctl(dev, VS_IOC_ADD_PROCESS, arg), bad)
        }
        14 => {
            let mut p = VsWhich {
                pid: w.pid(rng) as u32,
                ..VsWhich::default()
            };
            let arg = arena.arg(rng, &mut p, mode);
            (VS_IOC_WHICH, ioctl(dev, VS_IOC_WHICH, arg), bad)
        }
        _ => {
            if rng.chance(70) {
                let (buf, cap) = out_buffer(arena, rng, scratch, 4);
                let mut m = VsMembers {
                    buf,
                    id: w.id(rng),
                    cap,
                    count: 0,
                    _pad: 0,
                };
                let arg = arena.arg(rng, &mut m, mode);
                (VS_IOC_MEMBERS, ioctl(dev, VS_IOC_MEMBERS, arg), bad)
            } else {
                // A command the module does not have: our magic with another number or size,
                // or another driver's number. Must be ENOTTY, whatever the argument.
                let cmd = loop {
                    let c = match rng.below(3) {
                        0 => (VS_IOC_MAGIC << 8) | (0x0c + rng.below(0xf0) as u32),
                        1 => VS_IOC_GET ^ (1 << (16 + rng.below(14))),
                        _ => rng.next() as u32,
                    };
                    if ![
                        VS_IOC_VERSION,
                        VS_IOC_CREATE,
                        VS_IOC_DESTROY,
                        VS_IOC_GET,
                        VS_IOC_LIST,
                        VS_IOC_SET,
                        VS_IOC_ADD_RULES,
                        VS_IOC_DEL_RULE,
                        VS_IOC_LIST_RULES,
                        VS_IOC_ADD_PROCESS,
                        VS_IOC_WHICH,
                        VS_IOC_MEMBERS,
                    ]
                    .contains(&c)
                    {
                        break c;
                    }
                };
                let r = ioctl(dev, cmd, arena.rw);
                if r != Err(libc::ENOTTY) && r != Err(libc::ENOMEM) {
                    // ENOTTY for unknown commands; the VFS answers some generic numbers
                    // (FIONREAD, FIOCLEX, ...) itself before the driver sees them.
                    if (cmd >> 8) & 0xff == VS_IOC_MAGIC {
                        w.finding(format!("unknown command {cmd:#x} gave {r:?}, not ENOTTY"));
                    }
                }
                w.ops.fetch_add(1, Relaxed);
                return;
            }
        }
    };
    w.ops.fetch_add(1, Relaxed);
    if let Err(e) = res {
        *w.errnos.lock().unwrap().entry(e).or_default() += 1;
        if !DOCUMENTED.contains(&e) {
            w.finding(format!("command {cmd:#x} gave undocumented errno {e}"));
        }
        if expect_efault && e != libc::EFAULT && e != libc::ENOMEM {
            w.finding(format!(
                "command {cmd:#x} with a bad pointer gave {e}, not EFAULT"
            ));
        }
    } else if expect_efault {
        w.finding(format!("command {cmd:#x} with a bad pointer succeeded"));
    } else if mode == Mode::ReadOnly && cmd >> 30 & 2 != 0 {
        // The answer could not be written back: success would be a lie.
        w.finding(format!(
            "command {cmd:#x} succeeded with a read-only argument"
        ));
    } else {
        *w.errnos.lock().unwrap().entry(0).or_default() += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Load: processes that keep every gate busy. Each is a child process that stops by itself
// after `secs` (the parent also kills it), so no loop outlives the test.

fn now() -> Instant {
    Instant::now()
}

fn spawn_load(kind: u32, secs: u64) -> i32 {
    // SAFETY: the child only runs the loop below and _exits.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        return pid;
    }
    let end = now() + Duration::from_secs(secs);
    let mut n = 0u64;
    while now() < end && n < 2_000_000 {
        n += 1;
        match kind {
            // fork + exit, and a thread
            0 => {
                // SAFETY: the grandchild _exits at once.
                let c = unsafe { libc::fork() };
                if c == 0 {
                    unsafe { libc::_exit(0) };
                }
                if c > 0 {
                    // SAFETY: reap our own child.
                    unsafe { libc::waitpid(c, std::ptr::null_mut(), 0) };
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if n.is_multiple_of(8) {
                    let _ = std::thread::spawn(|| {}).join();
                }
            }
            // exec
            1 => {
                let _ = std::process::Command::new("/bin/true").status();
            }
            // TCP connect + accept on loopback
            2 => {
                let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let Ok(addr) = l.local_addr() else { continue };
                for _ in 0..50 {
                    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
                    if c.is_ok() {
                        let _ = l.accept();
                    }
                    drop(c);
                }
            }
            // pipes, unix sockets, SysV messages
            _ => {
                let mut fds = [0i32; 2];
                let mut b = [0u8; 8];
                // SAFETY: valid buffers; every fd is ours and closed below.
                unsafe {
                    if libc::pipe(fds.as_mut_ptr()) == 0 {
                        libc::write(fds[1], b"p".as_ptr() as *const _, 1);
                        libc::read(fds[0], b.as_mut_ptr() as *mut _, 1);
                        libc::close(fds[0]);
                        libc::close(fds[1]);
                    }
                    if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) == 0
                    {
                        libc::write(fds[1], b"u".as_ptr() as *const _, 1);
                        libc::read(fds[0], b.as_mut_ptr() as *mut _, 1);
                        libc::close(fds[0]);
                        libc::close(fds[1]);
                    }
                    let q = libc::msgget(libc::IPC_PRIVATE, 0o600);
                    if q >= 0 {
                        let msg: [i64; 2] = [1, 42];
                        let mut got = [0i64; 2];
                        libc::msgsnd(q, msg.as_ptr() as *const _, 8, libc::IPC_NOWAIT);
                        libc::msgrcv(q, got.as_mut_ptr() as *mut _, 8, 0, libc::IPC_NOWAIT);
                        libc::msgctl(q, libc::IPC_RMID, std::ptr::null_mut());
                    }
                }
            }
        }
    }
    // SAFETY: end the load process.
    unsafe { libc::_exit(0) }
}

struct Load {
    pids: Vec<i32>,
}

impl Load {
    fn start(w: &World, secs: u64) -> Load {
        let pids: Vec<i32> = (0..4).map(|k| spawn_load(k, secs + 5)).collect();
        *w.pids.lock().unwrap() = pids.clone();
        Load { pids }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for &p in &self.pids {
            // SAFETY: our own children.
            unsafe {
                libc::kill(p, libc::SIGKILL);
                libc::waitpid(p, std::ptr::null_mut(), 0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failslab (CONFIG_FAILSLAB): slab allocations of tasks that opted in fail 1 time in 10.

const FAILSLAB: &str = "/sys/kernel/debug/failslab";

fn failslab_available() -> bool {
    let mounted = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounted.contains(" /sys/kernel/debug debugfs ") {
        let _ = std::process::Command::new("mount")
            .args(["-t", "debugfs", "none", "/sys/kernel/debug"])
            .status();
    }
    // Without the stack trace filter failures would hit whatever the kernel does for the
    // fuzzer first (module loading, 9p), not vs.
    std::path::Path::new(&format!("{FAILSLAB}/require-start")).exists()
}

fn failslab_setup(on: bool) {
    let set = |f: &str, v: &str| {
        let _ = std::fs::write(format!("{FAILSLAB}/{f}"), v);
    };
    set("task-filter", "Y");
    set("ignore-gfp-wait", "N");
    set("verbose", "0");
    set("interval", "1");
    set("times", "-1");
    set("space", "0");
    // Only allocations with module code on the stack (vs is the only module): vs's own failure
    // paths, not those of the kernel it calls into before reaching vs (CONFIG_FAULT_INJECTION_
    // STACKTRACE_FILTER; x86-64's module area, with or without KASLR).
    set("stacktrace-depth", "32");
    set("require-start", &MODULES_START.to_string());
    set("require-end", &MODULES_END.to_string());
    set("probability", if on { "10" } else { "0" });
}

/// x86-64's module mapping space (`MODULES_VADDR` without KASLR, `MODULES_END`): wider than
/// the KASLR layout's, and below it lies only the kernel image.
const MODULES_START: u64 = 0xffff_ffff_a000_0000;
const MODULES_END: u64 = 0xffff_ffff_ff00_0000;

thread_local! {
    /// This thread's `make-it-fail`, opened while allocations still succeed, when the thread
    /// opted in: writing to an open proc file allocates nothing, so switching off cannot fail.
    static MAKE_IT_FAIL: std::cell::RefCell<Option<std::fs::File>> =
        const { std::cell::RefCell::new(None) };
}

/// Opt this thread in (or out) of failslab for the calls `Failing::on` brackets.
fn make_it_fail(on: bool) {
    let file = on.then(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/make-it-fail")
            .ok()
    });
    MAKE_IT_FAIL.with(|f| *f.borrow_mut() = file.flatten());
}

/// Failslab on for this thread (if it opted in) until dropped.
struct Failing(bool);

impl Failing {
    fn on() -> Failing {
        Failing(MAKE_IT_FAIL.with(|f| f.borrow().as_ref().is_some_and(|f| set_fail(f, b"1"))))
    }
}

impl Drop for Failing {
    fn drop(&mut self) {
        if self.0 {
            MAKE_IT_FAIL.with(|f| {
                if let Some(f) = f.borrow().as_ref() {
                    set_fail(f, b"0");
                }
            });
        }
    }
}

fn set_fail(f: &std::fs::File, v: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    f.write_at(v, 0).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Phases

/// Run `threads` ioctl threads plus a churn thread for `secs` or until `ops` operations.
fn fuzz_phase(o: &Opts, w: &Arc<World>, seed: u64, failslab: bool) -> Result<u64, Fail> {
    w.stop.store(false, Relaxed);
    w.ops.store(0, Relaxed);
    let deadline = now() + Duration::from_secs(o.seconds);
    let mut handles = Vec::new();
    for t in 0..o.threads {
        let w = Arc::clone(w);
        let budget = o.ops / o.threads as u64;
        handles.push(std::thread::spawn(move || {
            let dev = match Dev::open() {
                Ok(d) => d,
                Err(e) => {
                    w.finding(format!("open /dev/vs: {e:?}"));
                    return;
                }
            };
            let arena = Arena::new();
            let mut rng = Rng::new(seed ^ (t as u64 + 1) << 32);
            let mut scratch = Vec::new();
            if failslab {
                make_it_fail(true);
            }
            let mut n = 0u64;
            while n < budget && now() < deadline && !w.stop.load(Relaxed) {
                one_op(&dev, &w, &arena, &mut rng, &mut scratch);
                n += 1;
            }
            make_it_fail(false);
        }));
    }
    // Churn: whole VSs with rules and members come and go, valid calls only.
    {
        let w = Arc::clone(w);
        handles.push(std::thread::spawn(move || {
            let Ok(dev) = Dev::open() else { return };
            let mut rng = Rng::new(seed ^ 0xc0ffee);
            let mut k = 0u32;
            while now() < deadline && !w.stop.load(Relaxed) {
                k += 1;
                let attrs = VsAttrs {
                    cpu_share: 1 + rng.below(100) as u32,
                    max_procs: rng.below(30) as u32,
                    mask: rng.below(8) as u32,
                    ..VsAttrs::default()
                };
                let Ok(id) = dev.create(&format!("churn{}", k % 8), VS_ROOT, VS_ID_AUTO, attrs)
                else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let rules = [
                    rule(VS_EV_FORK, id, VS_ANY, id),
                    rule(VS_EV_ACCEPT, VS_ANY, VS_ANY, VS_TARGET_REQ),
                    rule(VS_EV_PIPE_READ, VS_ANY, id, VS_TARGET_REQ),
                ];
                let first = dev.add_rules(&rules).ok();
                let p = w.pid(&mut rng);
                let _ = dev.add_process(id, p, rng.chance(30));
                std::thread::sleep(Duration::from_micros(rng.below(3000)));
                if let Some(first) = first {
                    for r in 0..rules.len() as u32 {
                        let _ = dev.del_rule(first + r);
                    }
                }
                for m in dev.members(id).unwrap_or_default() {
                    let _ = dev.add_process(VS_ROOT, m as i32, false);
                }
                let _ = dev.destroy(id);
            }
        }));
    }
    // The phase ends when the ioctl threads are done (budget or deadline): churn stops then,
    // so the phase's time is theirs and the reported rate is right.
    let churn = handles.pop();
    let panicked = |_| Fail::Fail("a fuzz thread panicked".into());
    for h in handles {
        h.join().map_err(panicked)?;
    }
    w.stop.store(true, Relaxed);
    if let Some(c) = churn {
        c.join().map_err(panicked)?;
    }
    Ok(w.ops.load(Relaxed))
}

/// Every VS's `nr_procs` equals its member list, and every member is alive and in that VS:
/// within 2 s of the load's end. Killed load processes leave orphans that are still exiting
/// (counted until their exit gate) or forking (a reservation counts until the fork commits
/// or fails) for a moment; a leaked count or entry stays, and is reported.
fn check_membership(dev: &Dev) -> Result<(), String> {
    let mut last = Ok(());
    for attempt in 0..20 {
        last = membership_consistent(dev);
        if last.is_ok() {
            if attempt > 0 {
                println!("# membership consistent after {} ms", attempt * 100);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

fn membership_consistent(dev: &Dev) -> Result<(), String> {
    let all = dev.list().map_err(|e| format!("LIST: {e:?}"))?;
    for i in &all {
        if i.id == VS_ROOT {
            continue;
        }
        let members = dev
            .members(i.id)
            .map_err(|e| format!("MEMBERS {}: {e:?}", i.id))?;
        let again = dev.get(i.id).map_err(|e| format!("GET {}: {e:?}", i.id))?;
        if again.stats.nr_procs != members.len() as u64 {
            return Err(format!(
                "VS {} says nr_procs {} but lists {} members",
                i.id,
                again.stats.nr_procs,
                members.len()
            ));
        }
        for m in members {
            if !std::path::Path::new(&format!("/proc/{m}")).exists() {
                return Err(format!("VS {} lists task {m}, which does not exist", i.id));
            }
            match dev.which(m as i32) {
                Ok(v) if v == i.id => {}
                other => return Err(format!("VS {} lists task {m}, WHICH says {other:?}", i.id)),
            }
        }
    }
    Ok(())
}

/// Remove every rule and VS (members back to the root first).
fn clean(dev: &Dev) {
    if let Ok(rules) = dev.rules() {
        for r in rules.iter().rev() {
            let _ = dev.del_rule(r.id);
        }
    }
    for _ in 0..3 {
        let Ok(mut all) = dev.list() else { return };
        for i in all.iter().filter(|i| i.id != VS_ROOT) {
            for m in dev.members(i.id).unwrap_or_default() {
                let _ = dev.add_process(VS_ROOT, m as i32, false);
            }
        }
        all.sort_by_key(|i| std::cmp::Reverse(i.depth));
        for i in all.iter().filter(|i| i.id != VS_ROOT) {
            let _ = dev.destroy(i.id);
        }
    }
}

/// Nice of every task now: tid -> (start time, nice), from /proc/<pid>/task/<tid>/stat.
fn nices() -> HashMap<i32, (u64, i64)> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Ok(tid) = t.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            // Fields after the ")" of the command: state is field 3; nice 19, start 22.
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(n), Some(s)) = (f.get(16), f.get(19)) {
                if let (Ok(n), Ok(s)) = (n.parse(), s.parse()) {
                    out.insert(tid, (s, n));
                }
            }
        }
    }
    out
}

/// Tasks present in both snapshots (same start time) whose nice differs.
fn nice_changes(before: &HashMap<i32, (u64, i64)>) -> Vec<String> {
    let now = nices();
    let mut out = Vec::new();
    for (tid, (start, nice)) in before {
        if let Some((s2, n2)) = now.get(tid) {
            if s2 == start && n2 != nice {
                out.push(format!("task {tid}: nice {nice} -> {n2}"));
            }
        }
    }
    out.sort();
    out
}

/// Wait (up to 3 s: the CPU controller restores at its next tick) until no nice differs.
fn nice_restored(before: &HashMap<i32, (u64, i64)>) -> Result<(), String> {
    let end = now() + Duration::from_secs(3);
    loop {
        let ch = nice_changes(before);
        if ch.is_empty() {
            return Ok(());
        }
        if now() > end {
            return Err(format!(
                "{} tasks left reniced: {}",
                ch.len(),
                ch[..ch.len().min(5)].join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kernel_log_lines() -> usize {
    std::process::Command::new("dmesg")
        .output()
        .map(|o| o.stdout.split(|&b| b == b'\n').count())
        .unwrap_or(0)
}

/// New kernel log lines since `from` that scripts/kernel-errors.sh reports as problems; with
/// `failslab`, a report of an allocation failure (which the fuzzer injected) is none.
fn kernel_errors_since(from: usize, failslab: bool) -> Vec<String> {
    let root = std::env::var("VS_ROOT").unwrap_or_else(|_| ".".into());
    let out = std::process::Command::new("dmesg").output();
    let Ok(out) = out else {
        return vec!["dmesg failed".into()];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().skip(from.saturating_sub(1)).collect();
    let mut filter = std::process::Command::new("bash");
    filter.arg(format!("{root}/scripts/kernel-errors.sh"));
    if failslab {
        filter.arg("--failslab");
    }
    let child = filter
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return vec!["scripts/kernel-errors.sh failed to start".into()];
    };
    use std::io::Write;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(lines.join("\n").as_bytes());
    }
    let Ok(o) = child.wait_with_output() else {
        return vec!["scripts/kernel-errors.sh failed".into()];
    };
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .take(10)
        .map(String::from)
        .collect()
}

fn report(w: &World, what: &str, ops: u64, secs: f64) -> Result<(), Fail> {
    let e = w.errnos.lock().unwrap();
    let hist: Vec<String> = e
        .iter()
        .map(|(k, v)| format!("{}:{v}", errname(*k)))
        .collect();
    println!(
        "# {what}: {ops} operations in {secs:.1} s ({:.0}/s); results {}",
        ops as f64 / secs.max(0.001),
        hist.join(" ")
    );
    let f = w.findings.lock().unwrap();
    if f.is_empty() {
        Ok(())
    } else {
        Err(Fail::Fail(f.join("; ")))
    }
}

fn errname(e: i32) -> &'static str {
    match e {
        0 => "ok",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EBUSY => "EBUSY",
        libc::ENOSPC => "ENOSPC",
        libc::EAGAIN => "EAGAIN",
        libc::ENOTTY => "ENOTTY",
        libc::ESRCH => "ESRCH",
        libc::ENOMEM => "ENOMEM",
        _ => "other",
    }
}

/// One fuzz phase under load, then the invariants.
fn fuzz_under_load(failslab: bool) -> Outcome {
    let o = opts();
    if failslab && !failslab_available() {
        return Err(Fail::Skip(
            "no CONFIG_FAILSLAB with its stack trace filter in this kernel (the sanitize flavour has them)".into(),
        ));
    }
    let dev = Dev::open().ctx("open")?;
    clean(&dev);
    let baseline = nices();
    let log_from = kernel_log_lines();
    let w = Arc::new(World::new());
    let start = now();
    let ops = {
        let _load = Load::start(&w, o.seconds);
        if failslab {
            failslab_setup(true);
        }
        let r = fuzz_phase(&o, &w, o.seed ^ u64::from(failslab), failslab);
        failslab_setup(false);
        r?
    };
    let secs = start.elapsed().as_secs_f64();
    let what = if failslab {
        "fuzz with failslab"
    } else {
        "fuzz"
    };
    let findings = report(&w, what, ops, secs);
    let members = check_membership(&dev);
    clean(&dev);
    findings?;
    members.map_err(Fail::Fail)?;
    check!(ops > 0, "no operation ran");
    let left = dev.list().ctx("list")?.len();
    check!(
        left == 1,
        "{left} VSs left after cleaning up (only the root should be)"
    );
    nice_restored(&baseline).map_err(Fail::Fail)?;
    let errs = kernel_errors_since(log_from, failslab);
    check!(errs.is_empty(), "kernel log: {}", errs.join(" | "));
    Ok(())
}

/// Explicit moves of the load's process trees race its forks (a child is listed before its
/// fork tracepoint runs) while a process limit on the load's VS comes and goes (the fork
/// probes armed and disarmed): every count must still match the member lists (issue 13).
fn addprocess_races_forks() -> Outcome {
    let o = opts();
    let dev = Dev::open().ctx("open")?;
    clean(&dev);
    let a = dev
        .create(
            "racea",
            VS_ROOT,
            VS_ID_AUTO,
            VsAttrs::default().with(VS_ATTR_PROCS, 1000),
        )
        .ctx("create a")?;
    let b = dev
        .create("raceb", VS_ROOT, VS_ID_AUTO, VsAttrs::default())
        .ctx("create b")?;
    let w = World::new();
    // The race shows within seconds; the long `make fuzz` phases need not repeat it for 30 min.
    let seconds = o.seconds.min(120);
    let deadline = now() + Duration::from_secs(seconds);
    let mut toggles = 0u64;
    let moves = {
        let load = Load::start(&w, seconds);
        let pids = load.pids.clone();
        for &p in &pids {
            let _ = dev.add_process(a, p, true);
        }
        let mover = {
            let pids = pids.clone();
            std::thread::spawn(move || {
                let Ok(dev) = Dev::open() else { return 0 };
                let mut k = 0u64;
                while now() < deadline {
                    for &p in &pids {
                        let _ = dev.add_process(if k.is_multiple_of(2) { b } else { a }, p, true);
                        k += 1;
                    }
                }
                k
            })
        };
        let mut rng = Rng::new(o.seed);
        while now() < deadline {
            let v = if toggles.is_multiple_of(2) { 0 } else { 1000 };
            dev.set(a, 0, 0, VsAttrs::default().with(VS_ATTR_PROCS, v))
                .ctx("set the limit")?;
            toggles += 1;
            std::thread::sleep(Duration::from_millis(rng.below(1500)));
        }
        mover
            .join()
            .map_err(|_| Fail::Fail("mover panicked".into()))?
    };
    println!("# {toggles} limit toggles, {moves} moves");
    let r = check_membership(&dev);
    if r.is_err() {
        for i in dev.list().unwrap_or_default() {
            let m = dev.members(i.id).unwrap_or_default();
            println!(
                "# VS {} nr_procs {} members {:?}",
                i.id, i.stats.nr_procs, m
            );
        }
    }
    clean(&dev);
    r.map_err(Fail::Fail)
}

fn random_ioctls_under_load() -> Outcome {
    fuzz_under_load(false)
}

fn random_ioctls_with_failslab() -> Outcome {
    fuzz_under_load(true)
}

/// `rmmod` and `insmod` while the load runs and VSs with rules, members and shares exist;
/// with failslab, `insmod` runs with allocations failing (init must unwind cleanly, and is
/// retried until it loads).
fn unload_and_load_under_load() -> Outcome {
    let o = opts();
    let ko = std::env::var("VS_KO").map_err(|_| Fail::Skip("VS_KO not set".into()))?;
    let with_failslab = failslab_available();
    // Read once, while allocations succeed: under failslab only the module's init fails.
    let image = std::fs::read(&ko).ctx("read VS_KO")?;
    let baseline = nices();
    let log_from = kernel_log_lines();
    let w = World::new();
    clean(&Dev::open().ctx("open")?);
    let load = Load::start(&w, 10 * u64::from(o.cycles) + 20);
    let mut failed_inits = 0;
    let mut last_err = 0;
    for c in 0..o.cycles {
        {
            let dev = Dev::open().ctx("open")?;
            let a = dev
                .create(
                    "busy",
                    VS_ROOT,
                    VS_ID_AUTO,
                    VsAttrs::default().with(VS_ATTR_CPU, 70),
                )
                .ctx("create")?;
            let b = dev
                .create(
                    "idle",
                    VS_ROOT,
                    VS_ID_AUTO,
                    VsAttrs::default().with(VS_ATTR_CPU, 30),
                )
                .ctx("create")?;
            dev.add_rules(&[
                rule(VS_EV_FORK, a, VS_ANY, a),
                rule(VS_EV_ACCEPT, VS_ANY, VS_ANY, VS_TARGET_REQ),
                rule(VS_EV_PIPE_READ, VS_ANY, VS_ANY, VS_TARGET_REQ),
                rule(VS_EV_MSG_RECV, VS_ANY, VS_ANY, b),
            ])
            .ctx("rules")?;
            for (k, &p) in load.pids.iter().enumerate() {
                let _ = dev.add_process(if k % 2 == 0 { a } else { b }, p, true);
            }
        }
        // Let the controller renice them, then unload with everything in place.
        std::thread::sleep(Duration::from_millis(300));
        let st = std::process::Command::new("rmmod")
            .arg("vs")
            .status()
            .ctx("rmmod")?;
        check!(st.success(), "rmmod failed in cycle {c}");
        let mut loaded = false;
        for attempt in 0..20 {
            let fail = with_failslab && attempt < 10 && c % 2 == 1;
            if fail {
                failslab_setup(true);
            }
            let r = load_module(&image, fail);
            failslab_setup(false);
            match r {
                Ok(()) => {
                    loaded = true;
                    break;
                }
                Err(e) => last_err = e,
            }
            failed_inits += 1;
        }
        check!(
            loaded,
            "init_module never succeeded in cycle {c} (last errno {last_err})"
        );
        check!(
            std::path::Path::new(VS_DEVICE).exists(),
            "no {VS_DEVICE} after insmod"
        );
    }
    drop(load);
    println!(
        "# {} unload/load cycles under load; {failed_inits} loads failed under failslab and were retried",
        o.cycles
    );
    // The module loaded last is fresh: its nices are the tasks' own.
    nice_restored(&baseline).map_err(Fail::Fail)?;
    let dev = Dev::open().ctx("open")?;
    check_membership(&dev).map_err(Fail::Fail)?;
    let errs = kernel_errors_since(log_from, with_failslab);
    check!(errs.is_empty(), "kernel log: {}", errs.join(" | "));
    Ok(())
}

/// `init_module` of `image`, with this thread's slab allocations failing if `fail`: the
/// image is already in memory, so what fails is the kernel's loading and the module's init
/// (which must unwind cleanly), not the reading of the file.
fn load_module(image: &[u8], fail: bool) -> Result<(), i32> {
    make_it_fail(fail);
    let rc = {
        let _failing = Failing::on();
        // SAFETY: `image` is a live buffer of `len` bytes and the parameters a NUL-terminated
        // empty string; the kernel only reads both.
        unsafe {
            libc::syscall(
                libc::SYS_init_module,
                image.as_ptr(),
                image.len(),
                c"".as_ptr(),
            )
        }
    };
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    make_it_fail(false);
    if rc == 0 {
        Ok(())
    } else {
        Err(e)
    }
}

fn main() {
    let o = opts();
    println!(
        "# vs_fuzz: seed {:#x}, {} threads, up to {} operations or {} s per phase, {} unload cycles",
        o.seed, o.threads, o.ops, o.seconds, o.cycles
    );
    let phase = o.seconds as u32 + 120;
    // Generous: the sanitize kernel runs insmod several times slower, failed attempts included.
    let cycles = 60 * o.cycles + 180;
    let all = tests!(
        random_ioctls_under_load: phase,
        addprocess_races_forks: phase,
        random_ioctls_with_failslab: phase,
        unload_and_load_under_load: cycles,
    );
    // Without --failslab the failslab phase is left out (not skipped: it was not asked for).
    let chosen: Vec<vs_selftests::Test> = all
        .iter()
        .filter(|t| o.failslab || t.name != "random_ioctls_with_failslab")
        .cloned()
        .collect();
    run("vs_fuzz", &chosen);
}
