// SPDX-License-Identifier: GPL-2.0
//! CPU share accuracy: hogs in groups with shares, held by vs, by cgroup v2 `cpu.weight` (the
//! peer a user would pick instead), or by nobody (plain CFS), sampled every step.
//!
//! `vs-bench cpu CTL SHARES TASKS SECS [change=SHARES@SEC] [late=I@SEC]`, CTL one of `vs`,
//! `cgroup`, `cfs`: groups with `SHARES` (e.g. `25,75`) and `TASKS` busy loops each (e.g.
//! `4,2`), for `SECS` seconds. `change=` sets new shares at a time (a share change), `late=`
//! starts group I's loops only then (a group turning busy). Prints
//! `t_ms name target_pct used_pct` per group and step, where used is the group's part of the
//! CPU time all groups used in that step and target its share of the shares' sum then.

use std::time::{Duration, Instant};
use vs_client::Device as Dev;
use vs_core::abi::*;
use vs_selftests::proc::{getpid, wait};

/// Who holds the shares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctl {
    Vs,
    Cgroup,
    Cfs,
}

/// Where cgroup v2 is mounted (bench/cpu.sh mounts it and enables the cpu controller).
const CG: &str = "/sys/fs/cgroup";

/// A busy-looping child; killed at the end.
fn hog() -> i32 {
    // SAFETY: the child spins until killed.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    pid
}

fn write(path: &str, v: &str) {
    std::fs::write(path, v).unwrap_or_else(|e| panic!("write {v} to {path}: {e}"));
}

/// One group of hogs under the controller being measured.
struct Group {
    vs: u32,
    cg: String,
}

struct Bench<'a> {
    d: &'a Dev,
    ctl: Ctl,
    groups: Vec<Group>,
}

impl Bench<'_> {
    fn new<'d>(d: &'d Dev, ctl: Ctl, shares: &[u32]) -> Bench<'d> {
        let groups = shares
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let attrs = if ctl == Ctl::Vs {
                    VsAttrs::default().with(VS_ATTR_CPU, s)
                } else {
                    VsAttrs::default()
                };
                let vs = d
                    .create(&format!("s{i}"), VS_ROOT, VS_ID_AUTO, attrs)
                    .expect("create");
                let cg = format!("{CG}/vsb-s{i}");
                if ctl == Ctl::Cgroup {
                    let _ = std::fs::create_dir(&cg);
                    write(&format!("{cg}/cpu.weight"), &s.to_string());
                }
                Group { vs, cg }
            })
            .collect();
        Bench { d, ctl, groups }
    }

    /// Start `n` hogs in group `i`.
    fn start(&self, i: usize, n: usize) -> Vec<i32> {
        let g = &self.groups[i];
        // Forked from inside the VS, so they are born there (and counted) in every mode.
        self.d
            .add_process(g.vs, getpid(), false)
            .expect("addprocess");
        let pids: Vec<i32> = (0..n).map(|_| hog()).collect();
        self.d
            .add_process(VS_ROOT, getpid(), false)
            .expect("addprocess");
        if self.ctl == Ctl::Cgroup {
            for p in &pids {
                write(&format!("{}/cgroup.procs", g.cg), &p.to_string());
            }
        }
        pids
    }

    /// CPU time used so far by group `i`, in ns.
    fn used(&self, i: usize) -> u64 {
        let g = &self.groups[i];
        if self.ctl == Ctl::Cgroup {
            let stat = std::fs::read_to_string(format!("{}/cpu.stat", g.cg)).unwrap_or_default();
            stat.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(0, |us| us * 1000)
        } else {
            self.d.get(g.vs).map_or(0, |i| i.stats.cpu_time_ns)
        }
    }

    /// New shares, decreases first (vs refuses a moment where the shares sum past 100).
    fn set_shares(&self, old: &[u32], new: &[u32]) {
        let mut order: Vec<usize> = (0..new.len()).collect();
        order.sort_by_key(|&i| i64::from(new[i]) - i64::from(old[i]));
        for i in order {
            let g = &self.groups[i];
            match self.ctl {
                Ctl::Vs => self
                    .d
                    .set(
                        g.vs,
                        0,
                        1 << VS_ATTR_CPU,
                        VsAttrs::default().with(VS_ATTR_CPU, new[i]),
                    )
                    .expect("set share"),
                Ctl::Cgroup => write(&format!("{}/cpu.weight", g.cg), &new[i].to_string()),
                Ctl::Cfs => {}
            }
        }
    }

    fn teardown(self, pids: Vec<i32>) {
        for p in pids {
            // SAFETY: our children.
            unsafe { libc::kill(p, libc::SIGKILL) };
            wait(p);
        }
        for g in &self.groups {
            if self.ctl == Ctl::Cgroup {
                let _ = std::fs::remove_dir(&g.cg);
            }
            let _ = self.d.destroy(g.vs);
        }
    }
}

fn list(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

/// `vs-bench cpu ...` (see the file's comment).
pub fn main(args: &[String]) {
    let ctl = match args.first().map(String::as_str) {
        Some("vs") => Ctl::Vs,
        Some("cgroup") => Ctl::Cgroup,
        Some("cfs") => Ctl::Cfs,
        other => panic!("vs-bench cpu: controller vs|cgroup|cfs, not {other:?}"),
    };
    let mut shares = list(args.get(1).expect("SHARES"));
    let tasks: Vec<usize> = list(args.get(2).expect("TASKS"))
        .into_iter()
        .map(|t| t as usize)
        .collect();
    let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).expect("SECS");
    let (mut change, mut late) = (None, None);
    for a in &args[4..] {
        let (k, v) = a.split_once('=').expect("key=value");
        let (what, at) = v.split_once('@').expect("X@SEC");
        let at: f64 = at.parse().expect("seconds");
        match k {
            "change" => change = Some((at, list(what))),
            "late" => late = Some((at, what.parse::<usize>().expect("group"))),
            _ => panic!("unknown {k}"),
        }
    }
    let step = Duration::from_millis(100);
    let d = Dev::open().expect("open /dev/vs");
    let b = Bench::new(&d, ctl, &shares);
    let mut pids = Vec::new();
    for (i, &n) in tasks.iter().enumerate() {
        if late.map(|(_, g)| g) != Some(i) {
            pids.extend(b.start(i, n));
        }
    }
    let start = Instant::now();
    let mut last: Vec<u64> = (0..tasks.len()).map(|i| b.used(i)).collect();
    let mut next = start + step;
    while start.elapsed().as_secs_f64() < secs {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += step;
        let t = start.elapsed().as_secs_f64();
        if let Some((at, new)) = change.as_ref().filter(|(at, _)| t >= *at) {
            b.set_shares(&shares, new);
            shares = new.clone();
            eprintln!("bench-cpu: shares now {shares:?} at {at} s");
            change = None;
        }
        if let Some((_, g)) = late.filter(|(at, _)| t >= *at) {
            pids.extend(b.start(g, tasks[g]));
            late = None;
        }
        let now: Vec<u64> = (0..tasks.len()).map(|i| b.used(i)).collect();
        let delta: Vec<u64> = now.iter().zip(&last).map(|(n, l)| n - l).collect();
        let total: u64 = delta.iter().sum();
        // A group not started yet has no share to hold: targets are over the busy ones.
        let busy = |i: usize| late.map(|(_, g)| g) != Some(i);
        let sum: u32 = (0..shares.len())
            .filter(|&i| busy(i))
            .map(|i| shares[i])
            .sum();
        for (i, dl) in delta.iter().enumerate() {
            let used = if total == 0 {
                0.0
            } else {
                *dl as f64 * 100.0 / total as f64
            };
            let target = if busy(i) {
                f64::from(shares[i]) * 100.0 / f64::from(sum.max(1))
            } else {
                0.0
            };
            println!(
                "{} s{i}/{}t {target:.1} {used:.2}",
                start.elapsed().as_millis(),
                tasks[i]
            );
        }
        last = now;
    }
    b.teardown(pids);
}
