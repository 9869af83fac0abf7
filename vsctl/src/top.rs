// SPDX-License-Identifier: GPL-2.0
//! `vsctl top`: what each VS did between two `VS_IOC_LIST` samples. [`run`] is the loop;
//! [`frame`] turns two samples into rows (pure); the rest renders them as a table or as one
//! JSON line. The figures: CPU time in percent of one CPU, the bytes the VS sent through
//! `vsq` qdiscs per second, and the process count, reclassifications and forks; on a
//! terminal, a header with the CPU controller's parameters (`VS_PARAM_*` of the ABI).

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use vs_client::module_param;
use vs_core::abi::{
    name_bytes, VsInfo, VS_PARAM_CPU_PERIOD_MS, VS_PARAM_CPU_TICKS, VS_PARAM_CPU_TICK_NS,
};

use crate::commands::{list, open};
use crate::error::Error;
use crate::output::{in_root_cpu_pool, name, table, tree_order};

/// The wall-clock time of day, `HH:MM:SS` in local time.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = libc::time_t::try_from(now).unwrap_or(0);
    // SAFETY: an all-zero `tm` is a valid value; localtime_r only writes to it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to a time_t and a tm for the duration of the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return format!(
            "{:02}:{:02}:{:02} UTC",
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Write one frame; `Ok(false)` when the reader has gone away.
fn emit(out: &mut impl Write, frame: &str) -> Result<bool, Error> {
    match out.write_all(frame.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Failed(format!("write: {e}"))),
    }
}

/// `vsctl top`: prints its frames as it goes, so it returns nothing for `main` to print.
pub fn run(interval: Duration, count: Option<u64>, as_json: bool) -> Result<String, Error> {
    let (dev, _) = open()?;
    let tty = !as_json && io::stdout().is_terminal();
    let mut out = io::stdout().lock();
    let mut prev = list(&dev)?;
    let mut taken = Instant::now();
    let mut frames = 0u64;
    while count.is_none_or(|c| frames < c) {
        // Sleep out the rest of the interval: printing does not stretch it.
        std::thread::sleep(interval.saturating_sub(taken.elapsed()));
        let cur = list(&dev)?;
        let now = Instant::now();
        let elapsed = now - taken;
        let rows = frame(&prev, &cur, elapsed);
        let text = if as_json {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64();
            let line = serde_json::to_string(&frame_json(time, elapsed, &rows))
                .map_err(|e| Error::Failed(format!("json: {e}")))?;
            line + "\n"
        } else if tty {
            let ctl = Controller {
                period_ms: module_param(VS_PARAM_CPU_PERIOD_MS),
                ticks: module_param(VS_PARAM_CPU_TICKS),
                tick_ns: module_param(VS_PARAM_CPU_TICK_NS),
            };
            format!(
                "\x1b[H\x1b[2J{}\n{}",
                header(&clock(), interval, &ctl),
                frame_text(&rows)
            )
        } else if frames > 0 {
            format!("\n{}", frame_text(&rows))
        } else {
            frame_text(&rows)
        };
        if !emit(&mut out, &text)? {
            break;
        }
        prev = cur;
        taken = now;
        frames += 1;
    }
    Ok(String::new())
}

/// One VS in one frame of `top`. The deltas are `None` for a VS that was not in the previous
/// sample (or whose counters went backwards: a VS destroyed and created again with the same
/// id), since they have nothing to be taken from.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: u32,
    pub name: String,
    /// Box-drawing prefix of the name, as in `list`.
    pub lead: String,
    /// CPU time over the interval in percent of one CPU (two busy CPUs: 200).
    pub cpu_percent: Option<f64>,
    /// Bytes per second the VS sent through `vsq` qdiscs over the interval (`tx_bytes`).
    pub tx_bytes_per_s: Option<f64>,
    /// The controller's target for the VS's pool in percent of the busy CPU time; `None`
    /// when it has none (idle or unmanaged pool).
    pub target_percent: Option<f64>,
    /// The nice the controller gives the pool's tasks; `None` for the root pool.
    pub nice: Option<i32>,
    pub procs: u64,
    /// Tasks moved in or out of the VS over the interval.
    pub reclass: Option<u64>,
    pub forks: Option<u64>,
}

/// The rows of one frame, in tree order: `cur` against `prev`, taken `elapsed` apart. A VS
/// is matched by id and name; one only in `prev` (destroyed) is left out.
pub fn frame(prev: &[VsInfo], cur: &[VsInfo], elapsed: Duration) -> Vec<Row> {
    let secs = elapsed.as_secs_f64();
    tree_order(cur)
        .into_iter()
        .map(|(n, lead)| {
            let c = &cur[n];
            let p = prev
                .iter()
                .find(|p| p.id == c.id && name_bytes(&p.name) == name_bytes(&c.name));
            let delta = |f: fn(&VsInfo) -> u64| p.and_then(|p| f(c).checked_sub(f(p)));
            let cpu_ns = delta(|i| i.stats.cpu_time_ns);
            let per_s = |d: Option<u64>| d.filter(|_| secs > 0.0).map(|d| d as f64 / secs);
            let s = &c.stats;
            Row {
                id: c.id,
                name: name(c),
                lead,
                cpu_percent: per_s(cpu_ns).map(|ns| ns / 1e9 * 100.0),
                tx_bytes_per_s: per_s(delta(|i| i.stats.tx_bytes)),
                target_percent: (s.cpu_target_ppm > 0)
                    .then(|| f64::from(s.cpu_target_ppm) / 10_000.0),
                nice: (!in_root_cpu_pool(c)).then_some(s.cpu_nice),
                procs: s.nr_procs,
                // In and out separately: a counter of a live VS never goes down.
                reclass: delta(|i| i.stats.reclass_in)
                    .zip(delta(|i| i.stats.reclass_out))
                    .map(|(a, b)| a + b),
                forks: delta(|i| i.stats.forks),
            }
        })
        .collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// A rate in bytes per second, short, in powers of 1024 as `ls -h` does: `0`, `512`, `1.2K`,
/// `45M`, `1.0G`; one decimal below 10 of a unit.
pub fn fmt_rate(bytes_per_s: f64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    let mut v = bytes_per_s.max(0.0);
    if v.round() < 1024.0 {
        return format!("{v:.0}");
    }
    for (k, unit) in UNITS.iter().enumerate() {
        v /= 1024.0;
        let last = k + 1 == UNITS.len();
        // Rounded as it will be printed: 1023.7K is shown as 1.0M.
        if v < 9.95 {
            return format!("{v:.1}{unit}");
        }
        if v.round() < 1024.0 || last {
            return format!("{v:.0}{unit}");
        }
    }
    unreachable!("the last unit always returns")
}

/// A frame as a table (`top` without `--json`).
pub fn frame_text(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", r.lead, r.name),
                r.id.to_string(),
                opt(r.cpu_percent.map(|p| format!("{p:.1}"))),
                opt(r.tx_bytes_per_s.map(fmt_rate)),
                opt(r.target_percent.map(|p| format!("{p:.1}"))),
                opt(r.nice),
                r.procs.to_string(),
                opt(r.reclass),
                opt(r.forks),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "ID", "CPU%", "TX/s", "TARGET%", "NICE", "PROCS", "RECLASS", "FORKS",
        ],
        &cells,
        &[false, true, true, true, true, true, true, true, true],
    )
}

/// A percentage rounded to 0.01, as JSON.
fn percent_json(p: Option<f64>) -> Value {
    p.map_or(Value::Null, |p| json!((p * 100.0).round() / 100.0))
}

/// A frame as one JSON object: `time` (Unix seconds), `interval` (the seconds the deltas are
/// over) and a `vs` array in tree order; a missing value is null. `tx_bytes_per_s` is rounded
/// to whole bytes.
pub fn frame_json(time: f64, interval: Duration, rows: &[Row]) -> Value {
    let vs: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "cpu_percent": percent_json(r.cpu_percent),
                "tx_bytes_per_s": r.tx_bytes_per_s.map(|b| b.round() as u64),
                "target_percent": percent_json(r.target_percent),
                "nice": r.nice,
                "procs": r.procs,
                "reclass": r.reclass,
                "forks": r.forks,
            })
        })
        .collect();
    json!({
        "time": (time * 1000.0).round() / 1000.0,
        "interval": (interval.as_secs_f64() * 1000.0).round() / 1000.0,
        "vs": vs,
    })
}

/// The CPU controller as the module's parameters describe it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Controller {
    pub period_ms: Option<u64>,
    pub ticks: Option<u64>,
    pub tick_ns: Option<u64>,
}

/// The line above the table on a terminal: wall-clock time (`HH:MM:SS`), the refresh
/// interval and what is known of the controller.
pub fn header(clock: &str, interval: Duration, ctl: &Controller) -> String {
    let mut h = format!(
        "vsctl top - {clock}, every {}s",
        trim_float(interval.as_secs_f64())
    );
    if let Some(p) = ctl.period_ms {
        h.push_str(&format!(", cpu controller period {p} ms"));
        if let (Some(t), Some(ns)) = (ctl.ticks, ctl.tick_ns) {
            if t > 0 {
                let per = ns as f64 / t as f64;
                let cost = if per < 1e6 {
                    format!("{:.1} us", per / 1e3)
                } else {
                    format!("{:.1} ms", per / 1e6)
                };
                h.push_str(&format!(" ({cost} a tick)"));
            }
        }
    }
    h.push('\n');
    h
}

/// Seconds with at most 3 decimals and no trailing zeros: `1`, `0.5`.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;
    use vs_core::abi::{VsAttrInfo, VS_ATTR_CPU};

    const SEC: Duration = Duration::from_secs(1);

    /// `sample()` with CPU time, forks and reclassifications set per VS (by index), and no
    /// CPU controller values.
    fn with(cpu_ns: [u64; 4], forks: [u64; 4], reclass: [(u64, u64); 4]) -> Vec<VsInfo> {
        let mut l = sample();
        for (k, i) in l.iter_mut().enumerate() {
            i.stats.cpu_time_ns = cpu_ns[k];
            i.stats.forks = forks[k];
            (i.stats.reclass_in, i.stats.reclass_out) = reclass[k];
            (
                i.stats.cpu_target_ppm,
                i.stats.cpu_used_ppm,
                i.stats.cpu_nice,
            ) = (0, 0, 0);
        }
        l
    }

    fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
        rows.iter().find(|r| r.name == name).expect(name)
    }

    #[test]
    fn percent_of_one_cpu_over_the_elapsed_time() {
        let prev = with([0, 0, 0, 5_000_000_000], [0; 4], [(0, 0); 4]);
        // Over 2 s: root 1 s (50%), web 4 s (two CPUs: 200%), db none, www1 0.5 s (25%).
        let cur = with(
            [1_000_000_000, 4_000_000_000, 0, 5_500_000_000],
            [3, 0, 0, 7],
            [(0, 2), (1, 0), (0, 0), (4, 1)],
        );
        let rows = frame(&prev, &cur, 2 * SEC);
        assert_eq!(row(&rows, "root").cpu_percent, Some(50.0));
        assert_eq!(row(&rows, "web").cpu_percent, Some(200.0));
        assert_eq!(row(&rows, "db").cpu_percent, Some(0.0));
        assert_eq!(row(&rows, "www1").cpu_percent, Some(25.0));
        assert_eq!(row(&rows, "www1").forks, Some(7));
        assert_eq!(row(&rows, "www1").reclass, Some(5), "in and out both count");
        assert_eq!(row(&rows, "root").reclass, Some(2));
        // The same data over half a second: four times the percentage.
        let fast = frame(&prev, &cur, SEC / 2);
        assert_eq!(row(&fast, "root").cpu_percent, Some(200.0));
    }

    #[test]
    fn rows_follow_the_tree() {
        let l = sample();
        let rows = frame(&l, &l, SEC);
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{}{}", r.lead, r.name))
            .collect();
        assert_eq!(names, ["root", "├─ web", "│  └─ www1", "└─ db"]);
        assert_eq!(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            [0, 64, 65, 5]
        );
        assert_eq!(row(&rows, "root").procs, 120);
        assert_eq!(row(&rows, "www1").procs, 3);
        assert_eq!(
            row(&rows, "www1").cpu_percent,
            Some(0.0),
            "no change: 0, not blank"
        );
    }

    #[test]
    fn new_vs_has_no_deltas_and_destroyed_vs_is_dropped() {
        let cur = sample();
        // Before: db (5) did not exist yet, and a VS 77 that is gone now.
        let mut prev: Vec<VsInfo> = cur.iter().filter(|i| i.id != 5).copied().collect();
        let mut gone = cur[2];
        gone.id = 77;
        prev.push(gone);
        let rows = frame(&prev, &cur, SEC);
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.id != 77), "destroyed: dropped");
        let db = row(&rows, "db");
        assert_eq!((db.cpu_percent, db.reclass, db.forks), (None, None, None));
        assert_eq!(db.procs, 0, "absolute values are still shown");
        assert_eq!(row(&rows, "web").forks, Some(0));
    }

    #[test]
    fn reused_id_or_counters_going_back_are_not_deltas() {
        let prev = with([0, 0, 0, 9_000_000_000], [0, 0, 0, 9], [(0, 0); 4]);
        let mut cur = with([0, 0, 0, 1_000_000_000], [0, 0, 0, 1], [(0, 0); 4]);
        let rows = frame(&prev, &cur, SEC);
        assert_eq!(row(&rows, "www1").cpu_percent, None);
        assert_eq!(row(&rows, "www1").forks, None);
        // Same id, other name: another VS.
        cur[3].stats = prev[3].stats;
        cur[3].name[0] = b'W';
        let rows = frame(&prev, &cur, SEC);
        assert_eq!(row(&rows, "Www1").cpu_percent, None);
        // Nothing elapsed: no percentage, but the other deltas.
        let rows = frame(&prev, &prev, Duration::ZERO);
        assert_eq!(row(&rows, "www1").cpu_percent, None);
        assert_eq!(row(&rows, "www1").forks, Some(0));
    }

    #[test]
    fn target_and_nice_only_where_they_mean_something() {
        let mut l = sample();
        l[0].stats.cpu_target_ppm = 600_000; // root pool
        l[1].stats.cpu_target_ppm = 400_000; // web: own share, a managed pool
        l[1].stats.cpu_nice = 3;
        l[3].stats.cpu_target_ppm = 400_000; // www1 draws from web's pool
        l[3].stats.cpu_nice = 3;
        let rows = frame(&l, &l, SEC);
        assert_eq!(row(&rows, "root").target_percent, Some(60.0));
        assert_eq!(row(&rows, "root").nice, None, "root pool: never reniced");
        assert_eq!(row(&rows, "web").target_percent, Some(40.0));
        assert_eq!(row(&rows, "web").nice, Some(3));
        assert_eq!(row(&rows, "www1").nice, Some(3));
        let db = row(&rows, "db");
        assert_eq!(
            (db.target_percent, db.nice),
            (None, None),
            "inherits root's pool"
        );
        // An idle managed pool: no target, but its nice is still what its tasks have.
        l[1].stats.cpu_target_ppm = 0;
        l[1].stats.cpu_nice = -2;
        let web = frame(&l, &l, SEC).into_iter().find(|r| r.id == 64);
        assert_eq!(
            web.map(|r| (r.target_percent, r.nice)),
            Some((None, Some(-2)))
        );
    }

    #[test]
    fn text_frame() {
        let prev = with([0; 4], [0; 4], [(0, 0); 4]);
        let mut cur = with([0, 1_234_000_000, 0, 0], [0, 12, 0, 0], [(0, 0); 4]);
        for k in [1, 3] {
            // web's pool: web and www1.
            cur[k].stats.cpu_target_ppm = 500_000;
            cur[k].stats.cpu_nice = 5;
        }
        let prev: Vec<VsInfo> = prev.into_iter().filter(|i| i.id != 5).collect();
        cur[3].stats.tx_bytes += 1_300_000; // www1 sent 1.3 MB in the second
        let t = frame_text(&frame(&prev, &cur, SEC));
        let want = [
            "NAME        ID   CPU%  TX/s  TARGET%  NICE  PROCS  RECLASS  FORKS",
            "root         0    0.0     0                   120        0      0",
            "├─ web      64  123.4     0     50.0     5      0        0     12",
            "│  └─ www1  65    0.0  1.2M     50.0     5      3        0      0",
            "└─ db        5                                  0",
        ];
        assert_eq!(t, want.join("\n") + "\n");
    }

    #[test]
    fn json_frame() {
        let prev = with([0; 4], [0; 4], [(0, 0); 4]);
        let mut cur = with(
            [0, 333_333_333, 0, 0],
            [0, 2, 0, 0],
            [(0, 0), (1, 1), (0, 0), (0, 0)],
        );
        cur[1].stats.cpu_target_ppm = 333_333;
        cur[1].stats.tx_bytes = 2_500;
        let prev: Vec<VsInfo> = prev.into_iter().filter(|i| i.id != 65).collect();
        let rows = frame(&prev, &cur, SEC);
        let j = frame_json(1_700_000_000.123_456, Duration::from_millis(1002), &rows);
        assert_eq!(j["time"], 1_700_000_000.123);
        assert_eq!(j["interval"], 1.002);
        assert_eq!(j["vs"].as_array().map(Vec::len), Some(4));
        assert_eq!(
            j["vs"][1],
            json!({"id": 64, "name": "web", "cpu_percent": 33.33, "tx_bytes_per_s": 2500,
                   "target_percent": 33.33, "nice": 0, "procs": 0, "reclass": 2, "forks": 2})
        );
        assert_eq!(
            j["vs"][2],
            json!({"id": 65, "name": "www1", "cpu_percent": null, "tx_bytes_per_s": null,
                   "target_percent": null, "nice": 0, "procs": 3, "reclass": null,
                   "forks": null})
        );
        assert_eq!(j["vs"][0]["nice"], Value::Null);
        // One line: NDJSON.
        assert!(!serde_json::to_string(&j).unwrap_or_default().contains('\n'));
    }

    #[test]
    fn tx_rate_over_the_elapsed_time() {
        let prev = sample();
        let mut cur = sample();
        cur[1].stats.tx_bytes = 3_000_000; // web: 3 MB over 2 s
        cur[3].stats.tx_bytes = 1500 + 2048; // www1: 2 KiB more
        let rows = frame(&prev, &cur, 2 * SEC);
        assert_eq!(row(&rows, "web").tx_bytes_per_s, Some(1_500_000.0));
        assert_eq!(row(&rows, "www1").tx_bytes_per_s, Some(1024.0));
        assert_eq!(row(&rows, "root").tx_bytes_per_s, Some(0.0));
        // A new VS, a counter gone back (slot reused) or no time elapsed: no rate.
        let gone: Vec<VsInfo> = prev.iter().filter(|i| i.id != 5).copied().collect();
        assert_eq!(row(&frame(&gone, &cur, SEC), "db").tx_bytes_per_s, None);
        assert_eq!(row(&frame(&cur, &prev, SEC), "web").tx_bytes_per_s, None);
        assert_eq!(
            row(&frame(&prev, &cur, Duration::ZERO), "web").tx_bytes_per_s,
            None
        );
    }

    #[test]
    fn rate_formatting() {
        for (v, want) in [
            (0.0, "0"),
            (0.4, "0"),
            (-3.0, "0"),
            (512.0, "512"),
            (1023.0, "1023"),
            (1023.6, "1.0K"),
            (1024.0, "1.0K"),
            (1280.0, "1.2K"),
            (10.0 * 1024.0, "10K"),
            (9.96 * 1024.0, "10K"),
            (1023.4 * 1024.0, "1023K"),
            (1023.6 * 1024.0, "1.0M"),
            (1.26 * 1024.0 * 1024.0, "1.3M"),
            (1_300_000.0, "1.2M"),
            (2.5e6, "2.4M"),
            (125e6, "119M"),
            (3.0 * 1024f64.powi(3), "3.0G"),
            (2048.0 * 1024f64.powi(5), "2048P"),
        ] {
            assert_eq!(fmt_rate(v), want, "{v}");
        }
    }

    #[test]
    fn header_line() {
        let ctl = Controller {
            period_ms: Some(100),
            ticks: Some(40),
            tick_ns: Some(500_000),
        };
        assert_eq!(
            header("12:34:56", SEC, &ctl),
            "vsctl top - 12:34:56, every 1s, cpu controller period 100 ms (12.5 us a tick)\n"
        );
        assert_eq!(
            header(
                "00:00:01",
                Duration::from_millis(500),
                &Controller::default()
            ),
            "vsctl top - 00:00:01, every 0.5s\n"
        );
        let no_ticks = Controller {
            period_ms: Some(50),
            ticks: Some(0),
            tick_ns: Some(0),
        };
        assert!(header("x", SEC, &no_ticks).ends_with("period 50 ms\n"));
        let slow = Controller {
            period_ms: Some(100),
            ticks: Some(10),
            tick_ns: Some(40_022_000),
        };
        assert!(header("x", SEC, &slow).ends_with("period 100 ms (4.0 ms a tick)\n"));
    }

    #[test]
    fn pool_is_the_cpu_source() {
        let mut i = sample()[3];
        assert!(!in_root_cpu_pool(&i), "www1 draws from web");
        i.attr[VS_ATTR_CPU as usize] = VsAttrInfo {
            source: 0,
            ..i.attr[VS_ATTR_CPU as usize]
        };
        assert!(in_root_cpu_pool(&i));
    }
}
