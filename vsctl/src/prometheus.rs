// SPDX-License-Identifier: GPL-2.0
//! `vsctl stats --format prometheus`: the counters of every VS in Prometheus' text exposition
//! format (version 0.0.4), for node_exporter's textfile collector or any scraper.
//!
//! One metric family per counter of `vsctl stats` (the one table of counters in `output`),
//! each with `# HELP` and `# TYPE`, and one series per VS in it, labelled `vs` (the name) and `id` (the VSID). Counters end in `_total`; CPU
//! time is in seconds and CPU fractions are ratios (0..1), as Prometheus' conventions want.
//! Pure: unit-tested here, and parsed by `prometheus_client` in the QEMU test.

use std::fmt::Write as _;

use serde_json::Value;
use vs_core::abi::VsInfo;

use crate::output::{name, stats_json};

/// How a counter's value is exposed.
#[derive(Clone, Copy)]
enum Scale {
    /// As it is.
    One,
    /// Nanoseconds, as seconds.
    Seconds,
    /// Parts per million, as a ratio.
    Ratio,
}

/// One metric family: the counter it exposes (its key in the one table of counters,
/// [`crate::output::stats_json`]), its name, type, help and scale.
struct Metric {
    key: &'static str,
    name: &'static str,
    counter: bool,
    help: &'static str,
    scale: Scale,
}

/// `value` (an integer) scaled, printed exactly (no float rounding of nanoseconds).
fn text(value: &Value, scale: Scale) -> String {
    let v = value.as_u64().unwrap_or(0);
    match (scale, value.as_i64()) {
        (Scale::One, Some(i)) if i < 0 => i.to_string(),
        (Scale::One, _) => v.to_string(),
        (Scale::Seconds, _) => format!("{}.{:09}", v / 1_000_000_000, v % 1_000_000_000),
        (Scale::Ratio, _) => format!("{}.{:06}", v / 1_000_000, v % 1_000_000),
    }
}

/// Every counter of `vsctl stats` as a metric.
const METRICS: &[Metric] = &[
    Metric {
        key: "nr_procs",
        name: "vs_processes",
        counter: false,
        help: "Tasks (threads) in the VS now.",
        scale: Scale::One,
    },
    Metric {
        key: "cpu_time_ns",
        name: "vs_cpu_seconds_total",
        counter: true,
        help: "CPU time charged to the VS (its tasks while they were in it).",
        scale: Scale::Seconds,
    },
    Metric {
        key: "cpu_subtree_ns",
        name: "vs_cpu_subtree_seconds_total",
        counter: true,
        help: "CPU time of the VS and of every VS below it (those as of the CPU controller's last tick; a destroyed VS's time leaves it).",
        scale: Scale::Seconds,
    },
    Metric {
        key: "cpu_target_ppm",
        name: "vs_cpu_target_ratio",
        counter: false,
        help: "The CPU controller's target for the VS's CPU pool, as a fraction of the busy CPU time (0 when idle or unmanaged).",
        scale: Scale::Ratio,
    },
    Metric {
        key: "cpu_used_ppm",
        name: "vs_cpu_used_ratio",
        counter: false,
        help: "The fraction of the busy CPU time the VS's CPU pool used over the controller's last period.",
        scale: Scale::Ratio,
    },
    Metric {
        key: "cpu_nice",
        name: "vs_cpu_nice",
        counter: false,
        help: "The nice value the CPU controller gives the tasks of the VS's CPU pool (0 for the root pool, never reniced).",
        scale: Scale::One,
    },
    Metric {
        key: "forks",
        name: "vs_forks_total",
        counter: true,
        help: "Forks (processes and threads) into the VS.",
        scale: Scale::One,
    },
    Metric {
        key: "execs",
        name: "vs_execs_total",
        counter: true,
        help: "Execs by tasks of the VS.",
        scale: Scale::One,
    },
    Metric {
        key: "reclass_in",
        name: "vs_reclassified_in_total",
        counter: true,
        help: "Tasks moved into the VS (by a rule at a gate, or by addprocess).",
        scale: Scale::One,
    },
    Metric {
        key: "reclass_out",
        name: "vs_reclassified_out_total",
        counter: true,
        help: "Tasks moved out of the VS.",
        scale: Scale::One,
    },
    Metric {
        key: "denied_forks",
        name: "vs_denied_forks_total",
        counter: true,
        help: "Forks refused with EAGAIN by the process limit.",
        scale: Scale::One,
    },
    Metric {
        key: "tx_packets",
        name: "vs_tx_packets_total",
        counter: true,
        help: "Packets the VS sent through vsq qdiscs.",
        scale: Scale::One,
    },
    Metric {
        key: "tx_bytes",
        name: "vs_tx_bytes_total",
        counter: true,
        help: "Bytes the VS sent through vsq qdiscs (with link-layer headers).",
        scale: Scale::One,
    },
    Metric {
        key: "tx_drops",
        name: "vs_tx_drops_total",
        counter: true,
        help: "Packets of the VS that vsq qdiscs dropped.",
        scale: Scale::One,
    },
    Metric {
        key: "accepts",
        name: "vs_accepts_total",
        counter: true,
        help: "Connections accepted with the VS as the requester.",
        scale: Scale::One,
    },
    Metric {
        key: "accepts_refused",
        name: "vs_accepts_refused_total",
        counter: true,
        help: "Connections of the VS as the requester refused by accept-queue admission.",
        scale: Scale::One,
    },
    Metric {
        key: "tags_refused",
        name: "vs_tags_refused_total",
        counter: true,
        help: "Pipe writes and message sends of the VS left untagged: it held its quarter of the object-tag table, or the table had no room beyond what is kept for the VSs below their floor.",
        scale: Scale::One,
    },
];

/// A label value with `\`, `"` and newlines escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition of `list`'s counters.
pub fn exposition(list: &[VsInfo]) -> String {
    let stats: Vec<Value> = list.iter().map(|i| stats_json(&i.stats)).collect();
    let mut out = String::new();
    for m in METRICS {
        let kind = if m.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {kind}", m.name);
        for (i, s) in list.iter().zip(&stats) {
            let _ = writeln!(
                out,
                "{}{{vs=\"{}\",id=\"{}\"}} {}",
                m.name,
                label_value(&name(i)),
                i.id,
                text(&s[m.key], m.scale)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;

    #[test]
    fn one_series_per_vs_and_counter() {
        let l = sample();
        let out = exposition(&l);
        let series: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(series.len(), l.len() * METRICS.len());
        // Exactly the counters of the one table, each once.
        let mut keys: Vec<&str> = METRICS.iter().map(|m| m.key).collect();
        keys.sort_unstable();
        let mut table: Vec<String> = match stats_json(&l[0].stats) {
            Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        };
        table.sort_unstable();
        assert_eq!(keys, table);
        for want in [
            "# HELP vs_processes Tasks (threads) in the VS now.",
            "# TYPE vs_processes gauge",
            "vs_processes{vs=\"root\",id=\"0\"} 120",
            "# TYPE vs_cpu_seconds_total counter",
            "vs_cpu_seconds_total{vs=\"www1\",id=\"65\"} 1.234567890",
            "vs_cpu_subtree_seconds_total{vs=\"www1\",id=\"65\"} 2.000000000",
            "vs_cpu_target_ratio{vs=\"www1\",id=\"65\"} 0.500000",
            "vs_cpu_used_ratio{vs=\"www1\",id=\"65\"} 0.612500",
            "vs_cpu_nice{vs=\"www1\",id=\"65\"} -3",
            "vs_forks_total{vs=\"www1\",id=\"65\"} 10",
            "vs_tx_bytes_total{vs=\"www1\",id=\"65\"} 1500",
            "vs_accepts_refused_total{vs=\"db\",id=\"5\"} 0",
        ] {
            assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
        }
        // Names are unique and follow Prometheus' rules; counters end in _total.
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for m in METRICS {
            assert!(
                m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                m.name
            );
            assert_eq!(m.counter, m.name.ends_with("_total"), "{}", m.name);
        }
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(text(&Value::from(5u64), Scale::Seconds), "0.000000005");
        assert_eq!(text(&Value::from(1_000_000u32), Scale::Ratio), "1.000000");
        assert_eq!(text(&Value::from(-3i32), Scale::One), "-3");
    }
}
