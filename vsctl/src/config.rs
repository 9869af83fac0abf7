// SPDX-License-Identifier: GPL-2.0
//! The configuration file of `vsctl apply` and `vsctl export`: a TOML document holding the
//! VS tree and the rule table (docs/config.md describes it; `dist/vs.toml` is an example).
//!
//! ```toml
//! rules = [
//!     "(fork, www1) -> (www1)",
//!     "(accept, fcgi, req=*) -> (req)",
//! ]
//!
//! [[vs]]
//! name = "web"          # required
//! id = 64               # optional: without it, an existing VS of that name keeps its id
//! parent = "root"       # optional, root by default
//! cpu_share = 50        # an attribute given is detached (the VS's own value) ...
//! max_procs = "unlimited"  # ... one left out is inherited
//! ```
//!
//! Members (which tasks are in which VS) are not part of it: rules are how work gets in.
//!
//! [`Config::parse`] checks everything that can be checked from the file alone (syntax, types,
//! ranges, names, ids, parents, depth, the share budgets, the rules) and reports every problem
//! with its line; what depends on the live state (ids taken by VSs the file keeps, the VS
//! limit) is checked by [`crate::plan`]. [`export`] writes the live state in the same format.
//! Pure: no device, unit-tested here.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;
use vs_core::abi::{
    name_bytes, VsInfo, VsRule, VS_ATTR_CPU, VS_ATTR_NET, VS_ATTR_PROCS, VS_GLOBAL_MAX,
    VS_GLOBAL_MIN, VS_LOCAL_MAX, VS_LOCAL_MIN, VS_MAX_DEPTH, VS_MAX_RULES, VS_NR_ATTRS,
    VS_PROCS_UNLIMITED, VS_ROOT, VS_SHARE_MAX, VS_SHARE_MIN,
};
use vs_core::budget::{pool_of, SHARES};
use vs_core::rule_parse::{format_rule, parse_rule};
use vs_core::tree::{budget_left, id_in_range, is_valid_name};

use crate::shares::Shares;

use crate::args::name_rule;
use crate::error::Error;
use crate::output::tree_order;

/// Rules parsed from the file name VS number `k` of the file as `PLACEHOLDER + k` until its
/// id is known (live ids are at most `VS_LOCAL_MAX`, so the two never meet).
pub const PLACEHOLDER: u32 = VS_LOCAL_MAX + 1;

/// The keys of a `[[vs]]` table, for messages.
const VS_KEYS: &str = "name, id, parent, cpu_share, net_share, max_procs";

/// The key of each attribute, indexed by `VS_ATTR_*`.
pub const ATTR_KEYS: [&str; VS_NR_ATTRS] = ["cpu_share", "net_share", "max_procs"];

/// A value and the line (from 1) it was written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
}

/// One `[[vs]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsSpec {
    pub name: String,
    /// The line of the name (of the table if the name is missing).
    pub line: usize,
    pub id: Option<Located<u32>>,
    /// The parent's name; `root` when not given (then on the table's line).
    pub parent: Located<String>,
    /// The own value of each attribute (indexed by `VS_ATTR_*`; `max_procs` 0 is unlimited);
    /// `None`: inherited.
    pub own: [Option<Located<u32>>; VS_NR_ATTRS],
}

/// One string of `rules`, as written and as the rules it stands for. Their VSs are `0` for
/// root, [`PLACEHOLDER`]` + k` for VS `k` of the file, or a VSID written as a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub text: String,
    pub line: usize,
    pub rules: Vec<VsRule>,
}

/// A configuration file, checked on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How messages name the file (`<stdin>` for `-`).
    pub file: String,
    pub vss: Vec<VsSpec>,
    pub rules: Vec<RuleSpec>,
}

/// One thing wrong with a configuration: where, and what (the field first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub what: String,
}

/// Every problem found in a file, as one error: `FILE:LINE: FIELD: what` a line each, then
/// a line saying that nothing was changed.
pub fn problems_error(file: &str, problems: &[Problem]) -> Error {
    let mut m = String::new();
    for p in problems {
        match p.line {
            Some(l) => {
                let _ = writeln!(m, "{file}:{l}: {}", p.what);
            }
            None => {
                let _ = writeln!(m, "{file}: {}", p.what);
            }
        }
    }
    let n = problems.len();
    let _ = write!(
        m,
        "{file}: {n} error{}: nothing was changed",
        if n == 1 { "" } else { "s" }
    );
    Error::Failed(m)
}

/// The line (from 1) of byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// What a TOML value is, for messages.
fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The value of an integer, if it is one that fits an `i128`.
fn integer(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Reads one document, collecting problems instead of stopping at the first.
struct Reader<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn problem(&mut self, line: usize, what: String) {
        self.problems.push(Problem {
            line: Some(line),
            what,
        });
    }

    /// One `[[vs]]` table; `None` (with the problems noted) if it has no usable name.
    fn vs(&mut self, n: usize, table: &Spanned<DeValue<'_>>) -> Option<VsSpec> {
        let tline = self.line(&table.span());
        let DeValue::Table(t) = table.get_ref() else {
            let what = type_name(table.get_ref());
            self.problem(tline, format!("vs: expected a table ([[vs]]), not {what}"));
            return None;
        };
        let mut name: Option<Located<String>> = None;
        let mut id = None;
        let mut parent = None;
        let mut own: [Option<Located<u32>>; VS_NR_ATTRS] = [None, None, None];
        let mut bad_name = false;
        // First the name, so that the other messages can use it.
        let label = match t.iter().find(|(k, _)| k.get_ref() == "name") {
            Some((_, v)) => {
                let line = self.line(&v.span());
                match v.get_ref() {
                    DeValue::String(s) => {
                        name = Some(Located {
                            value: s.to_string(),
                            line,
                        });
                        format!("vs '{s}'")
                    }
                    other => {
                        let what = type_name(other);
                        self.problem(
                            line,
                            format!("vs #{n}: name: expected a string, not {what}"),
                        );
                        bad_name = true;
                        format!("vs #{n}")
                    }
                }
            }
            None => {
                self.problem(
                    tline,
                    format!("vs #{n}: name: missing (every [[vs]] needs one)"),
                );
                bad_name = true;
                format!("vs #{n}")
            }
        };
        if let Some(nm) = &name {
            if nm.value == "root" {
                self.problem(
                    nm.line,
                    "vs 'root': name: the root VS is implicit and cannot be configured".into(),
                );
                bad_name = true;
            } else if !is_valid_name(nm.value.as_bytes()) {
                self.problem(
                    nm.line,
                    format!(
                        concat!("{}: name: invalid: names are ", name_rule!()),
                        label
                    ),
                );
                bad_name = true;
            }
        }
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            let line = self.line(&v.span());
            let val = v.get_ref();
            match key {
                "name" => {}
                "id" => match integer(val) {
                    Some(i) if u32::try_from(i).is_ok_and(id_in_range) => {
                        id = Some(Located {
                            value: i as u32,
                            line,
                        })
                    }
                    _ => self.problem(
                        line,
                        format!(
                            "{label}: id: must be {VS_GLOBAL_MIN}..{VS_GLOBAL_MAX} (global) or \
                             {VS_LOCAL_MIN}..{VS_LOCAL_MAX} (local), not {}",
                            shown(val)
                        ),
                    ),
                },
                "parent" => match val {
                    DeValue::String(s) => {
                        parent = Some(Located {
                            value: s.to_string(),
                            line,
                        })
                    }
                    other => self.problem(
                        line,
                        format!(
                            "{label}: parent: expected the parent's name, not {}",
                            type_name(other)
                        ),
                    ),
                },
                "cpu_share" | "net_share" => {
                    let attr = if key == "cpu_share" {
                        VS_ATTR_CPU
                    } else {
                        VS_ATTR_NET
                    };
                    match integer(val) {
                        Some(i)
                            if (i128::from(VS_SHARE_MIN)..=i128::from(VS_SHARE_MAX))
                                .contains(&i) =>
                        {
                            own[attr as usize] = Some(Located {
                                value: i as u32,
                                line,
                            })
                        }
                        _ => self.problem(
                            line,
                            format!(
                                "{label}: {key}: must be an integer from {VS_SHARE_MIN} to \
                                 {VS_SHARE_MAX} (percent of the parent's share), not {}",
                                shown(val)
                            ),
                        ),
                    }
                }
                "max_procs" => {
                    let v = match val {
                        DeValue::String(s) if s.as_ref() == "unlimited" => Some(VS_PROCS_UNLIMITED),
                        _ => integer(val)
                            .filter(|&i| i >= 1 && i <= i128::from(u32::MAX))
                            .map(|i| i as u32),
                    };
                    match v {
                        Some(value) => own[VS_ATTR_PROCS as usize] = Some(Located { value, line }),
                        None => self.problem(
                            line,
                            format!(
                                "{label}: max_procs: must be an integer from 1 to {} or \
                                 \"unlimited\", not {}",
                                u32::MAX,
                                shown(val)
                            ),
                        ),
                    }
                }
                other => self.problem(
                    self.line(&k.span()),
                    format!("{label}: {other}: unknown key (a [[vs]] has {VS_KEYS})"),
                ),
            }
        }
        let name = name.filter(|_| !bad_name)?;
        Some(VsSpec {
            line: name.line,
            name: name.value,
            id,
            parent: parent.unwrap_or(Located {
                value: "root".into(),
                line: tline,
            }),
            own,
        })
    }
}

/// A TOML value as the user wrote it, for messages.
fn shown(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("\"{s}\""),
        DeValue::Integer(i) => match integer(v) {
            Some(n) => n.to_string(),
            None => i.as_str().to_string(),
        },
        other => type_name(other).to_string(),
    }
}

impl Config {
    /// Parse and check `text`, the contents of `file`. On failure, every problem found.
    pub fn parse(file: &str, text: &str) -> Result<Config, Vec<Problem>> {
        let doc = DeTable::parse(text).map_err(|e| {
            vec![Problem {
                line: e.span().map(|s| line_of(text, s.start)),
                what: format!("not valid TOML: {}", e.message()),
            }]
        })?;
        let mut r = Reader {
            text,
            problems: Vec::new(),
        };
        let mut vss = Vec::new();
        let mut rule_texts: Vec<Located<String>> = Vec::new();
        for (k, v) in doc.get_ref().iter() {
            let line = r.line(&v.span());
            match (k.get_ref().as_ref(), v.get_ref()) {
                ("vs", DeValue::Array(a)) => {
                    for (n, t) in a.iter().enumerate() {
                        if let Some(spec) = r.vs(n + 1, t) {
                            vss.push(spec);
                        }
                    }
                }
                ("vs", other) => r.problem(
                    line,
                    format!("vs: expected [[vs]] tables, not {}", type_name(other)),
                ),
                ("rules", DeValue::Array(a)) => {
                    for s in a.iter() {
                        let line = r.line(&s.span());
                        match s.get_ref() {
                            DeValue::String(t) => rule_texts.push(Located {
                                value: t.to_string(),
                                line,
                            }),
                            other => r.problem(
                                line,
                                format!(
                                    "rules: expected a rule as a string, e.g. \
                                     \"(fork, www1) -> (www1)\", not {}",
                                    type_name(other)
                                ),
                            ),
                        }
                    }
                }
                ("rules", other) => r.problem(
                    line,
                    format!(
                        "rules: expected an array of strings, not {}",
                        type_name(other)
                    ),
                ),
                (other, _) => r.problem(
                    r.line(&k.span()),
                    format!("{other}: unknown key (the file has 'rules' and [[vs]] tables)"),
                ),
            }
        }
        // A table's keys come in key order: report in line order.
        vss.sort_by_key(|s: &VsSpec| s.line);
        let mut problems = r.problems;
        check_tree(&vss, &mut problems);
        let rules = parse_rules(&vss, &rule_texts, &mut problems);
        if problems.is_empty() {
            Ok(Config {
                file: file.to_string(),
                vss,
                rules,
            })
        } else {
            problems.sort_by_key(|p| p.line.unwrap_or(0));
            Err(problems)
        }
    }

    /// The index in `vss` of the VS named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.vss.iter().position(|s| s.name == name)
    }

    /// Indices of `vss` with every VS after its parent.
    pub fn parents_first(&self) -> Vec<usize> {
        parents_first(&self.vss)
    }
}

/// Indices of `vss` with every VS after its parent (in file order otherwise). VSs on a cycle
/// or under an unknown parent are left out.
fn parents_first(vss: &[VsSpec]) -> Vec<usize> {
    let index: HashMap<&str, usize> = vss
        .iter()
        .enumerate()
        .map(|(k, s)| (s.name.as_str(), k))
        .collect();
    let mut done = vec![false; vss.len()];
    let mut order = Vec::new();
    loop {
        let before = order.len();
        for (k, s) in vss.iter().enumerate() {
            let ready = s.parent.value == "root"
                || index.get(s.parent.value.as_str()).is_some_and(|&p| done[p]);
            if !done[k] && ready {
                done[k] = true;
                order.push(k);
            }
        }
        if order.len() == before {
            return order;
        }
    }
}

/// Names unique, ids unique, parents known and acyclic, depth, share budgets.
fn check_tree(vss: &[VsSpec], problems: &mut Vec<Problem>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<u32, &str> = HashMap::new();
    for s in vss {
        if let Some(first) = names.insert(&s.name, s.line) {
            problems.push(Problem {
                line: Some(s.line),
                what: format!(
                    "vs '{}': name: defined twice (first on line {first})",
                    s.name
                ),
            });
        }
        if let Some(id) = &s.id {
            if let Some(other) = ids.insert(id.value, &s.name) {
                problems.push(Problem {
                    line: Some(id.line),
                    what: format!("vs '{}': id: {} is also vs '{other}''s", s.name, id.value),
                });
            }
        }
    }
    let order = parents_first(vss);
    let placed: HashSet<usize> = order.iter().copied().collect();
    for (k, s) in vss.iter().enumerate() {
        if placed.contains(&k) {
            continue;
        }
        let p = &s.parent.value;
        let what = if p == &s.name {
            format!("vs '{}': parent: a VS cannot be its own parent", s.name)
        } else if !names.contains_key(p.as_str()) {
            format!(
                "vs '{}': parent: no VS named '{p}' in the file (nor root)",
                s.name
            )
        } else {
            format!(
                "vs '{}': parent: '{p}' is a descendant of '{}' (a cycle)",
                s.name, s.name
            )
        };
        problems.push(Problem {
            line: Some(s.parent.line),
            what,
        });
    }
    // Depth, parents first.
    let mut depth = vec![0u32; vss.len()];
    for &k in &order {
        let s = &vss[k];
        depth[k] = match names.get(s.parent.value.as_str()) {
            Some(_) => {
                let p = vss
                    .iter()
                    .position(|x| x.name == s.parent.value)
                    .unwrap_or(k);
                depth[p] + 1
            }
            None => 1,
        };
        if depth[k] > VS_MAX_DEPTH {
            problems.push(Problem {
                line: Some(s.parent.line),
                what: format!(
                    "vs '{}': parent: depth {} (the hierarchy is at most {VS_MAX_DEPTH} levels deep)",
                    s.name, depth[k]
                ),
            });
        }
    }
    // Share budgets (the module's rule, `vs_core::budget`): the own shares drawn from one pool
    // add up to at most 100. The VS that overflows a pool is reported, once per pool.
    let index: HashMap<&str, usize> = vss
        .iter()
        .enumerate()
        .map(|(k, s)| (s.name.as_str(), k))
        .collect();
    let mut t = Shares::default();
    for s in vss {
        t.add(
            0,
            std::array::from_fn(|a| s.own[a].as_ref().map(|v| v.value)),
        );
    }
    // Unknown parents and cycles are reported above; here such VSs count as root's children.
    for k in parents_first(vss) {
        let p = index
            .get(vss[k].parent.value.as_str())
            .map_or(0, |&p| p + 1);
        t.set_parent(k + 1, p);
    }
    for a in SHARES {
        let mut drawn: HashMap<usize, Vec<(&str, u32)>> = HashMap::new();
        let mut reported = HashSet::new();
        for (k, s) in vss.iter().enumerate() {
            let Some(v) = &s.own[a] else {
                continue;
            };
            let pool = pool_of(&t, t.parent_of(k + 1), a);
            let before = drawn.entry(pool).or_default();
            let left = budget_left(before.iter().map(|&(_, v)| v));
            before.push((&s.name, v.value));
            if v.value > left && reported.insert(pool) {
                let pool = match pool {
                    0 => "root's pool".to_string(),
                    k => format!("the pool of '{}'", vss[k - 1].name),
                };
                let held: Vec<String> = before.iter().map(|(n, v)| format!("{n} {v}")).collect();
                let total: u32 = before.iter().map(|&(_, v)| v).sum();
                problems.push(Problem {
                    line: Some(v.line),
                    what: format!(
                        "vs '{}': {}: the VSs drawing {} from {pool} add up to {total}% \
                         ({}): at most {VS_SHARE_MAX}%",
                        s.name,
                        ATTR_KEYS[a],
                        ATTR_KEYS[a],
                        held.join(", ")
                    ),
                });
            }
        }
    }
}

/// Parse every rule, its VSs resolved to root or [`PLACEHOLDER`]` + k`.
fn parse_rules(
    vss: &[VsSpec],
    texts: &[Located<String>],
    problems: &mut Vec<Problem>,
) -> Vec<RuleSpec> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for t in texts {
        let resolve = |name: &str| {
            if name == "root" {
                Some(VS_ROOT)
            } else {
                vss.iter()
                    .position(|s| s.name == name)
                    .map(|k| PLACEHOLDER + k as u32)
            }
        };
        match parse_rule(&t.value, resolve) {
            Ok(rules) => {
                total += rules.len();
                out.push(RuleSpec {
                    text: t.value.clone(),
                    line: t.line,
                    rules,
                });
            }
            Err(e) => problems.push(Problem {
                line: Some(t.line),
                what: format!("rules: {}", e.render(&t.value)),
            }),
        }
    }
    if total > VS_MAX_RULES as usize {
        problems.push(Problem {
            line: texts.first().map(|t| t.line),
            what: format!("rules: {total} rules, more than the {VS_MAX_RULES} the module holds"),
        });
    }
    out
}

/// `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The header `export` writes.
pub const EXPORT_HEADER: &str = "\
# vs configuration: the VS tree and the rule table, as `vsctl export` wrote it.
# Apply it with `vsctl apply FILE` (format: vsctl(8), docs/config.md).
# Members (which tasks are in which VS) are not part of the configuration:
# rules are how work gets in.
";

/// The live state as a configuration file: `rules` in evaluation order, then every VS but
/// the root, each after its parent, with its id, its parent and its detached attributes.
pub fn export(list: &[VsInfo], rules: &[VsRule]) -> String {
    let name_of = |id: u32| {
        list.iter()
            .find(|i| i.id == id)
            .map(|i| String::from_utf8_lossy(name_bytes(&i.name)).into_owned())
    };
    let mut out = String::from(EXPORT_HEADER);
    out.push('\n');
    if rules.is_empty() {
        out.push_str("rules = []\n");
    } else {
        out.push_str("rules = [\n");
        for r in rules {
            let _ = writeln!(out, "    {},", toml_string(&format_rule(r, name_of)));
        }
        out.push_str("]\n");
    }
    for (n, _) in tree_order(list) {
        let i = &list[n];
        if i.id == VS_ROOT {
            continue;
        }
        let _ = write!(
            out,
            "\n[[vs]]\nname = {}\nid = {}\nparent = {}\n",
            toml_string(&String::from_utf8_lossy(name_bytes(&i.name))),
            i.id,
            toml_string(&name_of(i.parent).unwrap_or_else(|| "root".into()))
        );
        for (attr, a) in i.attr.iter().enumerate() {
            if a.detached == 0 {
                continue;
            }
            let key = ATTR_KEYS[attr];
            if attr == VS_ATTR_PROCS as usize && a.own == VS_PROCS_UNLIMITED {
                let _ = writeln!(out, "{key} = \"unlimited\"");
            } else {
                let _ = writeln!(out, "{key} = {}", a.own);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;
    use vs_core::abi::{VS_ANY, VS_EV_ACCEPT, VS_EV_FORK, VS_TARGET_REQ};

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::parse("t.toml", text)
    }

    /// The problems of `text`, rendered as `vsctl apply` prints them.
    fn errors(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("expected problems, parsed {c:?}"),
            Err(p) => problems_error("t.toml", &p).to_string(),
        }
    }

    const GOOD: &str = r#"
rules = [
    "(fork, www1) -> (www1)",
    "(accept, fcgi, req=www[1|2]) -> (www[1|2])",
]

[[vs]]
name = "web"
id = 64
cpu_share = 50

[[vs]]
name = "www1"
parent = "web"
net_share = 20
max_procs = 100

[[vs]]
name = "www2"
parent = "web"
max_procs = "unlimited"

[[vs]]
name = "fcgi"
"#;

    #[test]
    fn a_good_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.vss.len(), 4);
        let web = &c.vss[0];
        assert_eq!((web.name.as_str(), web.line), ("web", 8));
        assert_eq!(web.id, Some(Located { value: 64, line: 9 }));
        assert_eq!(web.parent.value, "root");
        assert_eq!(
            web.own[0],
            Some(Located {
                value: 50,
                line: 10
            })
        );
        assert_eq!((web.own[1].clone(), web.own[2].clone()), (None, None));
        let www1 = &c.vss[1];
        assert_eq!(
            www1.parent,
            Located {
                value: "web".into(),
                line: 14
            }
        );
        assert_eq!(www1.own[1].as_ref().map(|l| l.value), Some(20));
        assert_eq!(www1.own[2].as_ref().map(|l| l.value), Some(100));
        assert_eq!(
            c.vss[2].own[2].as_ref().map(|l| l.value),
            Some(VS_PROCS_UNLIMITED)
        );
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].line, 3);
        let r = &c.rules[0].rules[0];
        assert_eq!(
            (r.event, r.cur, r.target),
            (VS_EV_FORK, PLACEHOLDER + 1, PLACEHOLDER + 1)
        );
        // Alternatives expand: two rules for the second string.
        let acc = &c.rules[1].rules;
        assert_eq!(acc.len(), 2);
        assert_eq!(acc[1].event, VS_EV_ACCEPT);
        assert_eq!(
            (acc[1].cur, acc[1].req, acc[1].target),
            (PLACEHOLDER + 3, PLACEHOLDER + 2, PLACEHOLDER + 2)
        );
        assert_eq!(c.parents_first(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn empty_file_is_an_empty_configuration() {
        let c = parse("# nothing\n").unwrap();
        assert!(c.vss.is_empty() && c.rules.is_empty());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = errors("[[vs]]\nname = \"a\"\ncpu_share = = 3\n");
        assert!(e.starts_with("t.toml:3: not valid TOML: "), "{e}");
        assert!(e.ends_with("t.toml: 1 error: nothing was changed"), "{e}");
    }

    #[test]
    fn every_problem_is_reported_with_line_and_field() {
        let text = r#"rules = ["(forkk, a) -> (a)", 3]
color = "blue"

[[vs]]
name = "a"
cpu_share = 0
net_share = "50"
max_procs = 0
id = 64
weight = 3

[[vs]]
name = "b"
id = 64
parent = "nowhere"

[[vs]]
name = "1bad"

[[vs]]
id = 70
"#;
        let e = errors(text);
        let want = [
            "t.toml:1: rules: unknown event 'forkk' (expected one of: fork, exec, socket, \
             connect, accept, unix-connect, unix-accept, unix-recv, pipe-read, msg-recv)",
            "t.toml:1: rules: expected a rule as a string, e.g. \"(fork, www1) -> (www1)\", not an integer",
            "t.toml:2: color: unknown key (the file has 'rules' and [[vs]] tables)",
            "t.toml:6: vs 'a': cpu_share: must be an integer from 1 to 100 (percent of the parent's share), not 0",
            "t.toml:7: vs 'a': net_share: must be an integer from 1 to 100 (percent of the parent's share), not \"50\"",
            "t.toml:8: vs 'a': max_procs: must be an integer from 1 to 4294967295 or \"unlimited\", not 0",
            "t.toml:10: vs 'a': weight: unknown key (a [[vs]] has name, id, parent, cpu_share, net_share, max_procs)",
            "t.toml:14: vs 'b': id: 64 is also vs 'a''s",
            "t.toml:15: vs 'b': parent: no VS named 'nowhere' in the file (nor root)",
            "t.toml:18: vs '1bad': name: invalid: names are 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'",
            "t.toml:20: vs #4: name: missing (every [[vs]] needs one)",
            "t.toml: 11 errors: nothing was changed",
        ];
        for w in want {
            assert!(e.lines().any(|l| l == w), "missing {w:?} in\n{e}");
        }
        // The rule's carets follow its message.
        assert!(e.contains("\n  (forkk, a) -> (a)\n   ^^^^^\n"), "{e}");
    }

    #[test]
    fn tree_problems() {
        let e = errors(
            "[[vs]]\nname = \"a\"\nparent = \"b\"\n[[vs]]\nname = \"b\"\nparent = \"a\"\n\
             [[vs]]\nname = \"c\"\nparent = \"c\"\n[[vs]]\nname = \"root\"\n",
        );
        for w in [
            "t.toml:3: vs 'a': parent: 'b' is a descendant of 'a' (a cycle)",
            "t.toml:6: vs 'b': parent: 'a' is a descendant of 'b' (a cycle)",
            "t.toml:9: vs 'c': parent: a VS cannot be its own parent",
            "t.toml:11: vs 'root': name: the root VS is implicit and cannot be configured",
        ] {
            assert!(e.lines().any(|l| l == w), "missing {w:?} in\n{e}");
        }
        let e = errors("[[vs]]\nname = \"a\"\n[[vs]]\nname = \"a\"\n");
        let w = "t.toml:4: vs 'a': name: defined twice (first on line 2)";
        assert!(e.lines().any(|l| l == w), "missing {w:?} in\n{e}");
    }

    #[test]
    fn depth_is_limited() {
        let mut text = String::new();
        for d in 0..=VS_MAX_DEPTH {
            let parent = if d == 0 {
                "root".to_string()
            } else {
                format!("v{}", d - 1)
            };
            let _ = write!(text, "[[vs]]\nname = \"v{d}\"\nparent = \"{parent}\"\n");
        }
        let e = errors(&text);
        assert!(
            e.lines().next().is_some_and(|l| l
                .ends_with("vs 'v32': parent: depth 33 (the hierarchy is at most 32 levels deep)")),
            "{e}"
        );
        // 32 levels are fine.
        let ok: String = text
            .lines()
            .take(3 * VS_MAX_DEPTH as usize)
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn share_budgets_are_checked_per_pool() {
        let e = errors(
            "[[vs]]\nname = \"a\"\ncpu_share = 60\n[[vs]]\nname = \"b\"\ncpu_share = 50\n\
             net_share = 100\n[[vs]]\nname = \"c\"\nparent = \"a\"\ncpu_share = 100\n",
        );
        assert_eq!(
            e,
            "t.toml:6: vs 'b': cpu_share: the VSs drawing cpu_share from root's pool add up to \
             110% (a 60, b 50): at most 100%\nt.toml: 1 error: nothing was changed"
        );
        // s1 and s2 keep web's share, so x and y both draw from web's pool.
        let e = errors(
            "[[vs]]\nname = \"web\"\ncpu_share = 50\n[[vs]]\nname = \"s1\"\nparent = \"web\"\n\
             [[vs]]\nname = \"s2\"\nparent = \"web\"\n[[vs]]\nname = \"x\"\nparent = \"s1\"\n\
             cpu_share = 60\n[[vs]]\nname = \"y\"\nparent = \"s2\"\ncpu_share = 60\n",
        );
        assert_eq!(
            e,
            "t.toml:17: vs 'y': cpu_share: the VSs drawing cpu_share from the pool of 'web' add \
             up to 120% (x 60, y 60): at most 100%\nt.toml: 1 error: nothing was changed"
        );
    }

    #[test]
    fn rules_resolve_names_of_the_file_and_root() {
        let c = parse(
            "rules = ['(accept, root, req=*) -> (req)', '(fork, 77) -> (a)']\n[[vs]]\nname = \"a\"\n",
        )
        .unwrap();
        let r = &c.rules[0].rules[0];
        assert_eq!((r.cur, r.req, r.target), (VS_ROOT, VS_ANY, VS_TARGET_REQ));
        // A number is a VSID, checked against the live state by the plan.
        assert_eq!(c.rules[1].rules[0].cur, 77);
        let e = errors("rules = [\n  '(fork, a) -> (b)',\n]\n[[vs]]\nname = \"a\"\n");
        assert!(
            e.starts_with(
                "t.toml:2: rules: no VS named 'b'\n  (fork, a) -> (b)\n                ^\n"
            ),
            "{e}"
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(toml_string("x\u{1}"), "\"x\\u0001\"");
    }

    #[test]
    fn export_reads_back_as_the_same_state() {
        use vs_core::abi::VS_EV_EXEC;
        let list = sample();
        let mut path = [0u8; vs_core::abi::VS_PATH_LEN];
        path[..9].copy_from_slice(b"/bin/a\"b\\");
        let rules = vec![
            VsRule {
                id: 4,
                event: VS_EV_FORK,
                cur: 65,
                target: 65,
                ..VsRule::default()
            },
            VsRule {
                id: 9,
                event: VS_EV_EXEC,
                cur: VS_ANY,
                target: 5,
                path,
                ..VsRule::default()
            },
        ];
        let text = export(&list, &rules);
        assert!(text.starts_with(EXPORT_HEADER));
        assert!(text.contains("Members (which tasks are in which VS) are not part"));
        let c = parse(&text).unwrap_or_else(|p| panic!("{p:?}\n{text}"));
        let names: Vec<&str> = c.vss.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "www1", "db"], "tree order, root left out");
        let www1 = &c.vss[1];
        assert_eq!(www1.id.as_ref().map(|l| l.value), Some(65));
        assert_eq!(www1.parent.value, "web");
        assert_eq!(www1.own[0], None, "inherited cpu share is left out");
        assert_eq!(www1.own[1].as_ref().map(|l| l.value), Some(20));
        assert_eq!(www1.own[2].as_ref().map(|l| l.value), Some(100));
        assert_eq!(c.vss[2].own, [None, None, None]);
        assert_eq!(c.rules[0].text, "(fork, www1) -> (www1)");
        assert_eq!(c.rules[1].text, "(exec, *, path=/bin/a\"b\\) -> (db)");
        assert_eq!(&c.rules[1].rules[0].path[..9], b"/bin/a\"b\\");
        assert!(
            text.contains("\n[[vs]]\nname = \"web\"\nid = 64\nparent = \"root\"\ncpu_share = 50\n"),
            "{text}"
        );
        // No rules: an empty array, still valid.
        let bare = export(&list[..1], &[]);
        assert!(bare.ends_with("\nrules = []\n"), "{bare}");
        assert_eq!(parse(&bare).map(|c| c.vss.len()), Ok(0));
    }

    #[test]
    fn detached_unlimited_max_procs_is_exported_as_unlimited() {
        let mut list = sample();
        list[1].attr[VS_ATTR_PROCS as usize].detached = 1;
        list[1].attr[VS_ATTR_PROCS as usize].own = 0;
        let text = export(&list, &[]);
        assert!(text.contains("name = \"web\"\nid = 64\nparent = \"root\"\ncpu_share = 50\nmax_procs = \"unlimited\"\n"), "{text}");
    }
}
