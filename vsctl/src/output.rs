// SPDX-License-Identifier: GPL-2.0
//! Rendering of what the module reports, as text for people and as JSON for programs.
//!
//! Text conventions: a share is a percentage of the parent's pool; a value in parentheses,
//! like `(50%)`, is inherited from an ancestor, one without is the VS's own (detached) value.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use vs_core::abi::{
    name_bytes, VsAttrInfo, VsInfo, VsRule, VsStats, VsVersion, VS_ABI_VERSION, VS_ANY,
    VS_ATTR_CPU, VS_ATTR_NET, VS_ATTR_PROCS, VS_EV_NAMES, VS_PATH_LEN, VS_PROCS_UNLIMITED, VS_ROOT,
    VS_TARGET_KEEP, VS_TARGET_REQ,
};
use vs_core::rule_parse::format_rule;

use crate::resolve::by_id;

/// The name of a VS as text.
pub fn name(info: &VsInfo) -> String {
    String::from_utf8_lossy(name_bytes(&info.name)).into_owned()
}

/// How messages refer to a VS: `root`, or its name in quotes.
pub fn label(info: &VsInfo) -> String {
    if info.id == VS_ROOT {
        "root".into()
    } else {
        format!("'{}'", name(info))
    }
}

/// The name of VS `id`, if it is in `list`.
fn name_of(list: &[VsInfo], id: u32) -> Option<String> {
    by_id(list, id).map(name)
}

/// Whether VS `info` is its own parent (the root is).
fn is_root(info: &VsInfo) -> bool {
    info.id == VS_ROOT || info.id == info.parent
}

/// Parts per million as a percentage.
pub fn machine_percent(ppm: u32) -> f64 {
    f64::from(ppm) / 10_000.0
}

/// A percentage with at most two decimals and no trailing zeros: `12.5%`, `100%`.
pub fn fmt_percent(p: f64) -> String {
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// A process limit: the number, or `unlimited`.
pub fn fmt_limit(v: u32) -> String {
    if v == VS_PROCS_UNLIMITED {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The effective value of attribute `attr`, in parentheses when inherited.
pub fn fmt_value(attr: u32, a: &VsAttrInfo) -> String {
    let v = if attr == VS_ATTR_PROCS {
        fmt_limit(a.effective)
    } else {
        format!("{}%", a.effective)
    };
    if a.detached != 0 {
        v
    } else {
        format!("({v})")
    }
}

/// CPU time as seconds with milliseconds: `1.234s`.
pub fn fmt_cpu_time(ns: u64) -> String {
    format!(
        "{}.{:03}s",
        ns / 1_000_000_000,
        ns % 1_000_000_000 / 1_000_000
    )
}

/// Lay out `rows` under `header` in columns two spaces apart; columns whose `right` flag is
/// set are right-aligned. Widths count characters, so tree-drawing prefixes line up.
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = width.get(i).copied().unwrap_or(0);
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&format!("{cell:>w$}"));
            } else {
                line.push_str(&format!("{cell:<w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The JSON object of one attribute.
fn attr_json(attr: u32, a: &VsAttrInfo, list: &[VsInfo]) -> Value {
    let detached = a.detached != 0;
    let mut v = json!({
        "own": if detached { Some(a.own) } else { None },
        "detached": detached,
        "effective": a.effective,
        "source": a.source,
        "source_name": name_of(list, a.source),
    });
    if attr == VS_ATTR_PROCS {
        v["unlimited"] = json!(a.effective == VS_PROCS_UNLIMITED);
        v["machine_percent"] = Value::Null;
    } else {
        v["machine_percent"] = json!(machine_percent(a.machine_ppm));
    }
    v
}

/// How a counter reads as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Count,
    /// Nanoseconds, shown as seconds (`1.234s`).
    Ns,
}

/// A counter of [`VsStats`] as vsctl shows it: its JSON key, its line in `show`/`stats VS`
/// and its column in the `stats` table (none where a view leaves it out).
struct Counter {
    key: &'static str,
    line: Option<&'static str>,
    column: Option<&'static str>,
    unit: Unit,
    value: fn(&VsStats) -> Value,
}

/// Every counter of [`VsStats`] but the reserved ones, in the order the text views show them;
/// the one table that `stats_json`, `stats_lines` and `stats_table` read.
const COUNTERS: [Counter; 17] = {
    use Unit::{Count, Ns};
    macro_rules! counter {
        ($field:ident, $line:expr, $column:expr, $unit:expr) => {
            Counter {
                key: stringify!($field),
                line: $line,
                column: $column,
                unit: $unit,
                value: |s| json!(s.$field),
            }
        };
    }
    [
        counter!(nr_procs, Some("processes"), Some("PROCS"), Count),
        counter!(cpu_time_ns, Some("cpu time"), Some("CPU_TIME"), Ns),
        counter!(cpu_subtree_ns, Some("cpu subtree"), None, Ns),
        counter!(forks, Some("forks"), Some("FORKS"), Count),
        counter!(execs, Some("execs"), Some("EXECS"), Count),
        counter!(reclass_in, Some("reclass in"), Some("RECLASS_IN"), Count),
        counter!(reclass_out, Some("reclass out"), Some("RECLASS_OUT"), Count),
        counter!(
            denied_forks,
            Some("denied forks"),
            Some("DENIED_FORKS"),
            Count
        ),
        counter!(tx_packets, Some("tx packets"), Some("TX_PACKETS"), Count),
        counter!(tx_bytes, Some("tx bytes"), Some("TX_BYTES"), Count),
        counter!(tx_drops, Some("tx drops"), Some("TX_DROPS"), Count),
        counter!(accepts, Some("accepts"), Some("ACCEPTS"), Count),
        counter!(
            accepts_refused,
            Some("accepts refused"),
            Some("ACC_REFUSED"),
            Count
        ),
        counter!(tags_refused, Some("tags refused"), None, Count),
        // The controller's view: one "cpu share now" line in the text (`cpu_now_text`).
        counter!(cpu_target_ppm, None, None, Count),
        counter!(cpu_used_ppm, None, None, Count),
        counter!(cpu_nice, None, None, Count),
    ]
};

impl Counter {
    fn text(&self, s: &VsStats) -> String {
        let v = (self.value)(s);
        match (self.unit, v.as_u64()) {
            (Unit::Ns, Some(ns)) => fmt_cpu_time(ns),
            _ => v.to_string(),
        }
    }
}

/// Every counter of [`VsStats`] but the reserved ones.
pub fn stats_json(s: &VsStats) -> Value {
    Value::Object(
        COUNTERS
            .iter()
            .map(|c| (c.key.to_string(), (c.value)(s)))
            .collect(),
    )
}

/// Everything about one VS; `list` supplies the names of its parent and of its sources.
pub fn vs_json(info: &VsInfo, list: &[VsInfo]) -> Value {
    let (parent, parent_name) = if is_root(info) {
        (None, None)
    } else {
        (Some(info.parent), name_of(list, info.parent))
    };
    json!({
        "id": info.id,
        "name": name(info),
        "parent": parent,
        "parent_name": parent_name,
        "depth": info.depth,
        "children": info.nr_children,
        "cpu_share": attr_json(VS_ATTR_CPU, &info.attr[VS_ATTR_CPU as usize], list),
        "net_share": attr_json(VS_ATTR_NET, &info.attr[VS_ATTR_NET as usize], list),
        "max_procs": attr_json(VS_ATTR_PROCS, &info.attr[VS_ATTR_PROCS as usize], list),
        "stats": stats_json(&info.stats),
    })
}

/// `list --json`: an array of [`vs_json`] objects, parents before children.
pub fn list_json(list: &[VsInfo]) -> Value {
    Value::Array(list.iter().map(|i| vs_json(i, list)).collect())
}

/// `stats --json` for one VS.
pub fn stats_entry_json(info: &VsInfo) -> Value {
    json!({ "id": info.id, "name": name(info), "stats": stats_json(&info.stats) })
}

/// `stats --json` for every VS.
pub fn stats_all_json(list: &[VsInfo]) -> Value {
    Value::Array(list.iter().map(stats_entry_json).collect())
}

fn kv(out: &mut String, key: &str, value: &str) {
    out.push_str(&format!("{key:<14}{value}\n"));
}

/// Whether VS `info` draws its CPU from the root pool (whose tasks are never reniced).
pub fn in_root_cpu_pool(info: &VsInfo) -> bool {
    info.attr[VS_ATTR_CPU as usize].source == VS_ROOT
}

/// The CPU controller's view of the pool of VS `info`, for `show`: `None` while the pool is
/// idle or unmanaged (no target).
pub fn cpu_now_text(info: &VsInfo) -> Option<String> {
    let s = &info.stats;
    if s.cpu_target_ppm == 0 {
        return None;
    }
    let nice = if in_root_cpu_pool(info) {
        "root pool: never reniced".to_string()
    } else {
        format!("nice {}", s.cpu_nice)
    };
    Some(format!(
        "used {} of target {} ({nice})",
        fmt_percent(machine_percent(s.cpu_used_ppm)),
        fmt_percent(machine_percent(s.cpu_target_ppm))
    ))
}

/// The counters of one VS, one per line; the controller's view after the CPU times.
fn stats_lines(out: &mut String, info: &VsInfo) {
    for c in &COUNTERS {
        if let Some(line) = c.line {
            kv(out, line, &c.text(&info.stats));
        }
        if c.key == "cpu_subtree_ns" {
            if let Some(now) = cpu_now_text(info) {
                out.push_str(&format!("cpu share now: {now}\n"));
            }
        }
    }
}

/// One attribute for `show`: value, where it comes from, and the machine fraction.
fn attr_text(attr: u32, a: &VsAttrInfo, list: &[VsInfo]) -> String {
    let value = if attr == VS_ATTR_PROCS {
        fmt_limit(a.effective)
    } else {
        format!("{}%", a.effective)
    };
    let from = if a.detached != 0 {
        "own value".to_string()
    } else {
        match name_of(list, a.source) {
            Some(n) => format!("inherited from {n} (id {})", a.source),
            None => format!("inherited from id {}", a.source),
        }
    };
    if attr == VS_ATTR_PROCS {
        format!("{value}, {from}")
    } else {
        format!(
            "{value}, {from}; {} of the machine",
            fmt_percent(machine_percent(a.machine_ppm))
        )
    }
}

/// `show`: every field of one VS.
pub fn show_text(info: &VsInfo, list: &[VsInfo]) -> String {
    let mut out = String::new();
    kv(&mut out, "name", &name(info));
    kv(&mut out, "id", &info.id.to_string());
    let parent = if is_root(info) {
        "-".to_string()
    } else {
        match name_of(list, info.parent) {
            Some(n) => format!("{n} (id {})", info.parent),
            None => format!("id {}", info.parent),
        }
    };
    kv(&mut out, "parent", &parent);
    kv(&mut out, "depth", &info.depth.to_string());
    kv(&mut out, "children", &info.nr_children.to_string());
    for (attr, key) in [
        (VS_ATTR_CPU, "cpu share"),
        (VS_ATTR_NET, "net share"),
        (VS_ATTR_PROCS, "max procs"),
    ] {
        kv(
            &mut out,
            key,
            &attr_text(attr, &info.attr[attr as usize], list),
        );
    }
    stats_lines(&mut out, info);
    out
}

/// `stats VS`: the counters of one VS.
pub fn stats_text(info: &VsInfo) -> String {
    let mut out = String::new();
    kv(
        &mut out,
        "name",
        &format!("{} (id {})", name(info), info.id),
    );
    stats_lines(&mut out, info);
    out
}

/// `stats`: the counters of every VS, a row each.
pub fn stats_table(list: &[VsInfo]) -> String {
    let columns: Vec<&Counter> = COUNTERS.iter().filter(|c| c.column.is_some()).collect();
    let header: Vec<&str> = ["NAME", "ID"]
        .into_iter()
        .chain(columns.iter().filter_map(|c| c.column))
        .collect();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            [name(i), i.id.to_string()]
                .into_iter()
                .chain(columns.iter().map(|c| c.text(&i.stats)))
                .collect()
        })
        .collect();
    let mut right = vec![true; header.len()];
    right[0] = false;
    table(&header, &rows, &right)
}

/// The VSs of `list` in tree order (each below its parent, depth first), as (index in
/// `list`, box-drawing prefix for its name). Every entry appears once, even with a parent
/// missing from `list`.
pub fn tree_order(list: &[VsInfo]) -> Vec<(usize, String)> {
    let ids: HashSet<u32> = list.iter().map(|i| i.id).collect();
    let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut tops = Vec::new();
    for (n, i) in list.iter().enumerate() {
        if is_root(i) || !ids.contains(&i.parent) {
            tops.push(n);
        } else {
            children.entry(i.parent).or_default().push(n);
        }
    }
    let mut walk = Walk {
        list,
        children: &children,
        seen: vec![false; list.len()],
        order: Vec::new(),
    };
    for n in tops {
        walk.visit(n, String::new(), String::new());
    }
    // Anything not reached (only possible with an inconsistent answer) still gets a line.
    for n in 0..list.len() {
        walk.visit(n, String::new(), String::new());
    }
    walk.order
}

/// `list`: the tree, one VS a line, children below their parent with box-drawing branches.
pub fn list_text(list: &[VsInfo]) -> String {
    let rows: Vec<Vec<String>> = tree_order(list)
        .into_iter()
        .map(|(n, lead)| {
            let i = &list[n];
            vec![
                format!("{lead}{}", name(i)),
                i.id.to_string(),
                fmt_value(VS_ATTR_CPU, &i.attr[VS_ATTR_CPU as usize]),
                fmt_value(VS_ATTR_NET, &i.attr[VS_ATTR_NET as usize]),
                fmt_value(VS_ATTR_PROCS, &i.attr[VS_ATTR_PROCS as usize]),
                i.stats.nr_procs.to_string(),
            ]
        })
        .collect();
    table(
        &["NAME", "ID", "CPU", "NET", "MAX_PROCS", "PROCS"],
        &rows,
        &[false, true, false, false, false, true],
    )
}

struct Walk<'a> {
    list: &'a [VsInfo],
    children: &'a HashMap<u32, Vec<usize>>,
    seen: Vec<bool>,
    order: Vec<(usize, String)>,
}

impl Walk<'_> {
    fn visit(&mut self, n: usize, lead: String, cont: String) {
        if self.seen[n] {
            return;
        }
        self.seen[n] = true;
        let i = &self.list[n];
        self.order.push((n, lead));
        let kids = self.children.get(&i.id).cloned().unwrap_or_default();
        for (k, c) in kids.iter().enumerate() {
            let last = k + 1 == kids.len();
            let (branch, more) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            self.visit(*c, format!("{cont}{branch}"), format!("{cont}{more}"));
        }
    }
}

/// Rule `r` in the notation, VSs by name where they exist.
pub fn rule_text(r: &VsRule, list: &[VsInfo]) -> String {
    format_rule(r, |id| name_of(list, id))
}

/// `rules`: one rule a line in evaluation order, with its id and hits.
pub fn rules_table(rules: &[VsRule], list: &[VsInfo]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| vec![r.id.to_string(), rule_text(r, list), r.hits.to_string()])
        .collect();
    table(&["ID", "RULE", "HITS"], &rows, &[true, false, true])
}

/// A VS of a rule as JSON: null for `*`.
fn rule_vs_json(id: u32, list: &[VsInfo]) -> (Value, Value) {
    if id == VS_ANY {
        (Value::Null, Value::Null)
    } else {
        (json!(id), json!(name_of(list, id)))
    }
}

/// One rule as JSON; `cur` and `req` are null for `*`, `target` an id or "req"/"keep".
pub fn rule_json(r: &VsRule, list: &[VsInfo]) -> Value {
    let (cur, cur_name) = rule_vs_json(r.cur, list);
    let (req, req_name) = rule_vs_json(r.req, list);
    let (target, target_name) = match r.target {
        VS_TARGET_REQ => (json!("req"), Value::Null),
        VS_TARGET_KEEP => (json!("keep"), Value::Null),
        id => (json!(id), json!(name_of(list, id))),
    };
    let path_len = r.path.iter().position(|&b| b == 0).unwrap_or(VS_PATH_LEN);
    let path = (path_len > 0).then(|| String::from_utf8_lossy(&r.path[..path_len]).into_owned());
    json!({
        "id": r.id,
        "event": VS_EV_NAMES.get(r.event as usize).copied().filter(|n| !n.is_empty()),
        "cur": cur,
        "cur_name": cur_name,
        "req": req,
        "req_name": req_name,
        "target": target,
        "target_name": target_name,
        "path": path,
        "hits": r.hits,
        "text": rule_text(r, list),
    })
}

/// `rules --json`.
pub fn rules_json(rules: &[VsRule], list: &[VsInfo]) -> Value {
    Value::Array(rules.iter().map(|r| rule_json(r, list)).collect())
}

/// `which`: `NAME ID` (`-` for the name of a VS missing from the list).
pub fn which_text(id: u32, list: &[VsInfo]) -> String {
    let name = name_of(list, id).unwrap_or_else(|| "-".into());
    format!("{name} {id}\n")
}

/// `which --json`.
pub fn which_json(pid: libc::pid_t, id: u32, list: &[VsInfo]) -> Value {
    json!({ "pid": pid, "id": id, "name": name_of(list, id) })
}

/// A classified task as `ps` shows it: `comm` is `None` if the task is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub pid: u32,
    pub comm: Option<String>,
    /// The task's VS.
    pub id: u32,
}

/// What `ps root` says instead of listing every unclassified task of the machine.
pub const ROOT_MEMBERS_NOTE: &str = "root membership is implicit: every task that is not \
    classified into another VS (by a rule or 'vsctl addprocess') belongs to root; \
    'vsctl ps' lists classified tasks only";

/// `ps`: a row per task.
pub fn ps_table(members: &[Member], list: &[VsInfo]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.pid.to_string(),
                m.comm.clone().unwrap_or_else(|| "?".into()),
                name_of(list, m.id).unwrap_or_else(|| m.id.to_string()),
                m.id.to_string(),
            ]
        })
        .collect();
    table(
        &["PID", "COMM", "VS", "ID"],
        &rows,
        &[true, false, false, true],
    )
}

/// `ps --json`: objects like `which --json`, with the task's command name.
pub fn ps_json(members: &[Member], list: &[VsInfo]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| json!({ "pid": m.pid, "comm": m.comm, "id": m.id, "name": name_of(list, m.id) }))
            .collect(),
    )
}

/// `version`.
pub fn version_text(v: &VsVersion) -> String {
    let mut out = String::new();
    kv(
        &mut out,
        "abi",
        &format!("{} (vsctl speaks {VS_ABI_VERSION})", v.abi),
    );
    kv(&mut out, "max VSs", &v.max_vs.to_string());
    kv(&mut out, "VSs", &v.nr_vs.to_string());
    kv(
        &mut out,
        "name length",
        &format!("{} bytes with the NUL", v.name_len),
    );
    out
}

/// `version --json`.
pub fn version_json(v: &VsVersion) -> Value {
    json!({
        "abi": v.abi,
        "vsctl_abi": VS_ABI_VERSION,
        "max_vs": v.max_vs,
        "nr_vs": v.nr_vs,
        "name_len": v.name_len,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vs_core::abi::VS_NAME_LEN;

    /// A name buffer holding `s`.
    fn name_array(s: &str) -> [u8; VS_NAME_LEN] {
        let mut b = [0u8; VS_NAME_LEN];
        let n = s.len().min(VS_NAME_LEN);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        b
    }

    /// A VS entry as the module would report it; `attrs` are (detached, effective, source,
    /// ppm) for cpu, net, procs.
    pub(crate) fn vs(
        id: u32,
        parent: u32,
        name: &str,
        depth: u32,
        attrs: [(bool, u32, u32, u32); 3],
    ) -> VsInfo {
        let mut i = VsInfo {
            id,
            parent,
            name: name_array(name),
            depth,
            ..VsInfo::default()
        };
        for (a, (det, eff, src, ppm)) in i.attr.iter_mut().zip(attrs) {
            *a = VsAttrInfo {
                own: if det { eff } else { 0 },
                detached: u32::from(det),
                effective: eff,
                source: src,
                machine_ppm: ppm,
                _pad: 0,
            };
        }
        i
    }

    /// root(0) -> web(64, cpu 50 own) -> www1(65, inherits cpu, net 20 own, procs 100 own);
    /// root -> db(5, inherits everything). Child counts follow.
    pub(crate) fn sample() -> Vec<VsInfo> {
        let mut root = vs(
            0,
            0,
            "root",
            0,
            [
                (true, 100, 0, 1_000_000),
                (true, 100, 0, 1_000_000),
                (true, 0, 0, 0),
            ],
        );
        root.nr_children = 2;
        root.stats.nr_procs = 120;
        let mut web = vs(
            64,
            0,
            "web",
            1,
            [
                (true, 50, 64, 500_000),
                (false, 100, 0, 1_000_000),
                (false, 0, 0, 0),
            ],
        );
        web.nr_children = 1;
        let mut www1 = vs(
            65,
            64,
            "www1",
            2,
            [
                (false, 50, 64, 500_000),
                (true, 20, 65, 200_000),
                (true, 100, 65, 0),
            ],
        );
        www1.stats = VsStats {
            nr_procs: 3,
            cpu_time_ns: 1_234_567_890,
            cpu_subtree_ns: 2_000_000_000,
            cpu_target_ppm: 500_000,
            cpu_used_ppm: 612_500,
            cpu_nice: -3,
            forks: 10,
            execs: 4,
            tx_bytes: 1500,
            ..VsStats::default()
        };
        let db = vs(
            5,
            0,
            "db",
            1,
            [
                (false, 100, 0, 1_000_000),
                (false, 100, 0, 1_000_000),
                (false, 0, 0, 0),
            ],
        );
        vec![root, web, db, www1]
    }

    #[test]
    fn values_mark_inheritance() {
        let l = sample();
        assert_eq!(fmt_value(VS_ATTR_CPU, &l[1].attr[0]), "50%");
        assert_eq!(fmt_value(VS_ATTR_CPU, &l[3].attr[0]), "(50%)");
        assert_eq!(fmt_value(VS_ATTR_PROCS, &l[0].attr[2]), "unlimited");
        assert_eq!(fmt_value(VS_ATTR_PROCS, &l[1].attr[2]), "(unlimited)");
        assert_eq!(fmt_value(VS_ATTR_PROCS, &l[3].attr[2]), "100");
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_percent(12.5), "12.5%");
        assert_eq!(fmt_percent(100.0), "100%");
        assert_eq!(fmt_percent(machine_percent(333_333)), "33.33%");
        assert_eq!(fmt_percent(0.0), "0%");
        assert_eq!(fmt_cpu_time(1_234_567_890), "1.234s");
        assert_eq!(fmt_cpu_time(5_000_000), "0.005s");
        assert_eq!(fmt_limit(0), "unlimited");
        assert_eq!(fmt_limit(7), "7");
    }

    #[test]
    fn list_is_a_tree() {
        let text = list_text(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].starts_with("root "));
        // db and web are root's children in list order: web first (└─ for the last one).
        assert!(lines[2].starts_with("├─ web "), "{text}");
        assert!(lines[3].starts_with("│  └─ www1 "), "{text}");
        assert!(lines[4].starts_with("└─ db "), "{text}");
        let www1: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(www1[3..], ["65", "(50%)", "20%", "100", "3"]);
        let root: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(root, ["root", "0", "100%", "100%", "unlimited", "120"]);
        assert!(
            text.lines().all(|l| l == l.trim_end()),
            "no trailing blanks"
        );
    }

    #[test]
    fn list_survives_missing_parents() {
        let l = sample();
        let orphan_only = vec![l[3]];
        let text = list_text(&orphan_only);
        assert!(
            text.lines().nth(1).is_some_and(|l| l.starts_with("www1 ")),
            "{text}"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["bbb".into(), "22".into()],
        ];
        assert_eq!(
            table(&["N", "ID"], &rows, &[false, true]),
            "N    ID\na     1\nbbb  22\n"
        );
    }

    #[test]
    fn json_of_a_vs() {
        let l = sample();
        let v = vs_json(&l[3], &l);
        assert_eq!(v["id"], 65);
        assert_eq!(v["name"], "www1");
        assert_eq!(v["parent"], 64);
        assert_eq!(v["parent_name"], "web");
        assert_eq!(v["depth"], 2);
        assert_eq!(v["children"], 0);
        assert_eq!(
            v["cpu_share"],
            json!({"own": null, "detached": false, "effective": 50, "source": 64,
                   "source_name": "web", "machine_percent": 50.0})
        );
        assert_eq!(v["net_share"]["own"], 20);
        assert_eq!(v["net_share"]["machine_percent"], 20.0);
        assert_eq!(v["max_procs"]["own"], 100);
        assert_eq!(v["max_procs"]["unlimited"], false);
        assert_eq!(v["max_procs"]["machine_percent"], Value::Null);
        assert_eq!(v["stats"]["cpu_time_ns"], 1_234_567_890u64);
        assert_eq!(v["stats"]["tx_bytes"], 1500);
        let keys = v["stats"].as_object().map(|o| o.len());
        assert_eq!(keys, Some(17), "every VsStats field but _pad");
        assert_eq!(
            [
                &v["stats"]["cpu_subtree_ns"],
                &v["stats"]["cpu_target_ppm"],
                &v["stats"]["cpu_used_ppm"],
                &v["stats"]["cpu_nice"],
            ],
            [
                &json!(2_000_000_000u64),
                &json!(500_000),
                &json!(612_500),
                &json!(-3)
            ]
        );

        let root = vs_json(&l[0], &l);
        assert_eq!(root["parent"], Value::Null);
        assert_eq!(root["parent_name"], Value::Null);
        assert_eq!(root["max_procs"]["unlimited"], true);
        assert_eq!(root["max_procs"]["own"], 0);

        let all = list_json(&l);
        assert_eq!(all.as_array().map(Vec::len), Some(4));
        assert_eq!(all[3]["name"], "www1");
    }

    #[test]
    fn show_has_every_field() {
        let l = sample();
        let text = show_text(&l[3], &l);
        for want in [
            "name          www1",
            "id            65",
            "parent        web (id 64)",
            "depth         2",
            "children      0",
            "cpu share     50%, inherited from web (id 64); 50% of the machine",
            "net share     20%, own value; 20% of the machine",
            "max procs     100, own value",
            "processes     3",
            "cpu time      1.234s",
            "cpu subtree   2.000s",
            "cpu share now: used 61.25% of target 50% (nice -3)",
            "forks         10",
            "tx bytes      1500",
            "tx drops      0",
        ] {
            assert!(
                text.lines().any(|line| line == want),
                "missing {want:?} in\n{text}"
            );
        }
        let root = show_text(&l[0], &l);
        assert!(root.lines().any(|line| line == "parent        -"));
        // No target (idle or unmanaged pool): no "now" line.
        assert!(!root.contains("cpu share now"), "{root}");
        assert!(root.lines().any(|line| line == "cpu subtree   0.000s"));
    }

    #[test]
    fn cpu_now_names_the_root_pool() {
        let mut l = sample();
        l[0].stats.cpu_target_ppm = 1_000_000;
        l[0].stats.cpu_used_ppm = 999_999;
        assert_eq!(
            cpu_now_text(&l[0]).as_deref(),
            Some("used 100% of target 100% (root pool: never reniced)")
        );
        // db inherits root's share: the root pool too.
        l[2].stats.cpu_target_ppm = 250_000;
        assert!(cpu_now_text(&l[2]).is_some_and(|t| t.ends_with("(root pool: never reniced)")));
        assert!(in_root_cpu_pool(&l[2]) && !in_root_cpu_pool(&l[1]));
        assert_eq!(cpu_now_text(&l[1]), None);
        let stats = stats_text(&l[3]);
        assert!(
            stats.contains("\ncpu share now: used 61.25% of target 50% (nice -3)\n"),
            "{stats}"
        );
    }

    #[test]
    fn stats_views() {
        let l = sample();
        let t = stats_table(&l);
        assert_eq!(t.lines().count(), 5);
        let www1: Vec<&str> = t.lines().nth(4).unwrap_or("").split_whitespace().collect();
        assert_eq!(www1[..6], ["www1", "65", "3", "1.234s", "10", "4"]);
        let one = stats_text(&l[3]);
        assert!(one.starts_with("name          www1 (id 65)\n"), "{one}");
        let j = stats_all_json(&l);
        assert_eq!(j[3]["stats"]["forks"], 10);
        assert_eq!(stats_entry_json(&l[0])["name"], "root");
    }

    #[test]
    fn version_views() {
        let v = VsVersion {
            abi: 1,
            max_vs: 4096,
            name_len: 32,
            nr_vs: 3,
        };
        let j = version_json(&v);
        assert_eq!(
            (j["abi"].clone(), j["max_vs"].clone(), j["nr_vs"].clone()),
            (json!(1), json!(4096), json!(3))
        );
        assert!(version_text(&v).contains("max VSs       4096"));
    }

    fn path_of(p: &str) -> [u8; VS_PATH_LEN] {
        let mut b = [0u8; VS_PATH_LEN];
        b[..p.len()].copy_from_slice(p.as_bytes());
        b
    }

    fn sample_rules() -> Vec<VsRule> {
        use vs_core::abi::{VS_EV_ACCEPT, VS_EV_EXEC, VS_EV_FORK};
        vec![
            VsRule {
                id: 3,
                event: VS_EV_FORK,
                cur: 65,
                target: 65,
                hits: 12,
                ..VsRule::default()
            },
            VsRule {
                id: 4,
                event: VS_EV_ACCEPT,
                cur: 64,
                req: 77,
                target: VS_TARGET_REQ,
                ..VsRule::default()
            },
            VsRule {
                id: 10,
                event: VS_EV_EXEC,
                cur: VS_ANY,
                target: VS_TARGET_KEEP,
                path: path_of("/usr/sbin/nginx"),
                hits: 1,
                ..VsRule::default()
            },
        ]
    }

    #[test]
    fn rules_views() {
        let l = sample();
        let r = sample_rules();
        let want = [
            "ID  RULE                                       HITS",
            " 3  (fork, www1) -> (www1)                       12",
            " 4  (accept, web, req=77) -> (req)                0",
            "10  (exec, *, path=/usr/sbin/nginx) -> (keep)     1",
        ];
        assert_eq!(rules_table(&r, &l), want.join("\n") + "\n");
        assert_eq!(rules_table(&[], &l), "ID  RULE  HITS\n");
        let j = rules_json(&r, &l);
        assert_eq!(
            j[0],
            json!({"id": 3, "event": "fork", "cur": 65, "cur_name": "www1", "req": null,
                   "req_name": null, "target": 65, "target_name": "www1", "path": null,
                   "hits": 12, "text": "(fork, www1) -> (www1)"})
        );
        // A VS that no longer exists has an id but no name.
        assert_eq!(
            (j[1]["req"].clone(), j[1]["req_name"].clone()),
            (json!(77), Value::Null)
        );
        assert_eq!(j[1]["target"], "req");
        assert_eq!(j[1]["target_name"], Value::Null);
        assert_eq!(j[2]["cur"], Value::Null);
        assert_eq!(j[2]["target"], "keep");
        assert_eq!(j[2]["path"], "/usr/sbin/nginx");
        assert_eq!(j[2]["event"], "exec");
    }

    #[test]
    fn which_views() {
        let l = sample();
        assert_eq!(which_text(65, &l), "www1 65\n");
        assert_eq!(which_text(0, &l), "root 0\n");
        assert_eq!(which_text(99, &l), "- 99\n");
        assert_eq!(
            which_json(1234, 65, &l),
            json!({"pid": 1234, "id": 65, "name": "www1"})
        );
        assert_eq!(which_json(1, 99, &l)["name"], Value::Null);
    }

    #[test]
    fn ps_views() {
        let l = sample();
        let m = vec![
            Member {
                pid: 812,
                comm: Some("nginx".into()),
                id: 65,
            },
            Member {
                pid: 12345,
                comm: None,
                id: 64,
            },
        ];
        assert_eq!(
            ps_table(&m, &l),
            "  PID  COMM   VS    ID\n  812  nginx  www1  65\n12345  ?      web   64\n"
        );
        let j = ps_json(&m, &l);
        assert_eq!(
            j,
            json!([{"pid": 812, "comm": "nginx", "id": 65, "name": "www1"},
                   {"pid": 12345, "comm": null, "id": 64, "name": "web"}])
        );
        assert!(ROOT_MEMBERS_NOTE.starts_with("root membership is implicit"));
    }

    #[test]
    fn labels() {
        let l = sample();
        assert_eq!(label(&l[0]), "root");
        assert_eq!(label(&l[1]), "'web'");
    }
}
