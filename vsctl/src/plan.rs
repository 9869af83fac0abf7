// SPDX-License-Identifier: GPL-2.0
//! What `vsctl apply` must do to bring the live state to a [`Config`]: a diff, as an ordered
//! list of steps. Pure: it reads the live VSs and rules, and is unit-tested here.
//!
//! Matching: a VS of the file is *kept* when a live VS has its name, its id (if the file gives
//! one) and the same parent, itself kept; a kept VS is updated if its attributes differ.
//! Every other live VS is destroyed, every other VS of the file created: the ABI cannot
//! rename or move a VS, so a VS whose id or parent changes is replaced (destroyed, then
//! created). Rules are matched in order: the longest prefix of the file's rules that appears,
//! in order, in the live table is kept; the other live rules are deleted and the rest of the
//! file's rules appended, so that the table ends in the file's order (rules are tried in id
//! order, and new rules always get the highest ids).
//!
//! Order of the steps, chosen so that every intermediate state is one the module accepts:
//!
//! 1. delete rules (a rule that names a VS keeps it from being destroyed);
//! 2. destroy VSs, deepest first;
//! 3. update kept VSs, the part that shrinks a share budget (a share lowered or inherited
//!    again) and every `max_procs` change;
//! 4. create VSs, parents first (those with an id in the file first, so that an id the
//!    module picks for another cannot take theirs);
//! 5. update kept VSs, the part that grows a share budget;
//! 6. add the new rules, in one batch (all or none).
//!
//! Steps 2 and 3 mostly lower what is drawn from each pool and steps 4 and 5 raise it
//! towards the file's (checked to be at most 100 % per pool). Not always: a VS that gets or
//! gives up a share of its own moves the shares drawn from it between its pool and the one
//! above. So the updates and creates are then put in an order in which every step fits,
//! simulated on the live tree with the module's rule (`order_for_budgets`), keeping the order
//! above wherever it fits.

use std::collections::{HashMap, HashSet};
use std::fmt;

use vs_core::abi::{
    name_bytes, VsAttrs, VsInfo, VsRule, VsSet, VS_ANY, VS_ATTR_PROCS, VS_ID_AUTO, VS_NR_ATTRS,
    VS_ROOT, VS_TARGET_KEEP, VS_TARGET_REQ,
};
use vs_core::rule_parse::format_rule;

use crate::config::{Config, Problem, ATTR_KEYS, PLACEHOLDER};
use crate::output::fmt_limit;
use crate::shares::{Live, Shares};
use vs_core::budget::{overflow, Edit};

/// The own value of each attribute (`None`: inherited), indexed by `VS_ATTR_*`.
pub type Own = [Option<u32>; VS_NR_ATTRS];

/// The own values of a live VS.
pub fn own_of(info: &VsInfo) -> Own {
    let mut own = [None; VS_NR_ATTRS];
    for (o, a) in own.iter_mut().zip(&info.attr) {
        if a.detached != 0 {
            *o = Some(a.own);
        }
    }
    own
}

/// The name of a live VS.
pub fn name_of(info: &VsInfo) -> String {
    String::from_utf8_lossy(name_bytes(&info.name)).into_owned()
}

/// The attributes to create a VS with: its own values.
pub fn attrs_of(own: &Own) -> VsAttrs {
    own.iter()
        .enumerate()
        .filter_map(|(a, v)| v.map(|v| (a as u32, v)))
        .fold(VsAttrs::default(), |acc, (a, v)| acc.with(a, v))
}

/// An attribute value as the plan shows it.
fn fmt_own(attr: usize, v: Option<u32>) -> String {
    match v {
        None => "inherited".into(),
        Some(v) if attr == VS_ATTR_PROCS as usize => fmt_limit(v),
        Some(v) => format!("{v}%"),
    }
}

/// The attributes a VS is created with, as the plan shows them.
fn fmt_attrs(own: &Own) -> String {
    let given: Vec<String> = own
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_some())
        .map(|(a, &v)| format!("{} {}", ATTR_KEYS[a], fmt_own(a, v)))
        .collect();
    if given.is_empty() {
        "inherits every attribute".into()
    } else {
        given.join(", ")
    }
}

/// One change to the live state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete a live rule; `text` is it in the notation.
    DelRule { rule: VsRule, text: String },
    /// Destroy a live VS.
    Destroy { info: VsInfo },
    /// Change attributes of a live VS: `changes` are (attribute, from, to).
    Set {
        info: VsInfo,
        changes: Vec<(usize, Option<u32>, Option<u32>)>,
    },
    /// Create a VS under the VS named `parent` (created before it, or live).
    Create {
        name: String,
        parent: String,
        id: Option<u32>,
        own: Own,
    },
    /// Add rules in one call; their VSs are ids or [`PLACEHOLDER`]` + k` for VS `k` of the
    /// file, known once it is created. `texts` are them in the notation.
    AddRules {
        rules: Vec<VsRule>,
        texts: Vec<String>,
    },
}

impl Step {
    /// The `VS_IOC_SET` request of a [`Step::Set`].
    pub fn set_request(id: u32, changes: &[(usize, Option<u32>, Option<u32>)]) -> VsSet {
        let mut req = VsSet {
            id,
            attach_mask: 0,
            detach_mask: 0,
            _pad: 0,
            values: VsAttrs::default(),
        };
        for &(attr, _, to) in changes {
            match to {
                None => req.attach_mask |= 1 << attr,
                Some(v) => req.values = req.values.with(attr as u32, v),
            }
        }
        req
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DelRule { rule, text } => write!(f, "delete rule {}: {text}", rule.id),
            Step::Destroy { info } => write!(f, "destroy '{}' (id {})", name_of(info), info.id),
            Step::Set { info, changes } => {
                let c: Vec<String> = changes
                    .iter()
                    .map(|&(a, from, to)| {
                        format!(
                            "{} {} -> {}",
                            ATTR_KEYS[a],
                            fmt_own(a, from),
                            fmt_own(a, to)
                        )
                    })
                    .collect();
                write!(
                    f,
                    "update '{}' (id {}): {}",
                    name_of(info),
                    info.id,
                    c.join(", ")
                )
            }
            Step::Create {
                name,
                parent,
                id,
                own,
            } => {
                let id = id.map_or("a new id".into(), |i| format!("id {i}"));
                let parent = if parent == "root" {
                    "root".to_string()
                } else {
                    format!("'{parent}'")
                };
                write!(
                    f,
                    "create '{name}' ({id}) under {parent}: {}",
                    fmt_attrs(own)
                )
            }
            Step::AddRules { texts, .. } => {
                let lines: Vec<String> = texts.iter().map(|t| format!("add rule: {t}")).collect();
                f.write_str(&lines.join("\n"))
            }
        }
    }
}

/// The steps that bring the live state to a configuration, and what to know about them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The names of the VSs of the file, by index (what [`PLACEHOLDER`]` + k` stands for).
    pub names: Vec<String>,
    /// Warnings for the reader of a dry run (a VS to destroy still has tasks, ...).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// What the plan changes, counted: `VSs: 2 to create, ...` (`done`: `VSs: 2 created, ...`).
    pub fn summary(&self, done: bool) -> String {
        let (mut c, mut u, mut d, mut ra, mut rd) = (0, 0, 0, 0, 0);
        let mut updated = HashSet::new();
        for s in &self.steps {
            match s {
                Step::Create { .. } => c += 1,
                Step::Set { info, .. } => {
                    if updated.insert(info.id) {
                        u += 1
                    }
                }
                Step::Destroy { .. } => d += 1,
                Step::AddRules { rules, .. } => ra += rules.len(),
                Step::DelRule { .. } => rd += 1,
            }
        }
        if done {
            format!("VSs: {c} created, {u} updated, {d} destroyed; rules: {ra} added, {rd} deleted")
        } else {
            format!(
                "VSs: {c} to create, {u} to update, {d} to destroy; rules: {ra} to add, {rd} to \
                 delete"
            )
        }
    }
}

/// Whether two rules are the same rule (everything but id and hits).
pub fn same_rule(a: &VsRule, b: &VsRule) -> bool {
    (a.event, a.cur, a.req, a.target, a.path) == (b.event, b.cur, b.req, b.target, b.path)
}

/// The VSs a rule names.
fn rule_vss(r: &VsRule) -> impl Iterator<Item = u32> {
    [r.cur, r.req, r.target]
        .into_iter()
        .filter(|&id| id != VS_ANY && id != VS_TARGET_REQ && id != VS_TARGET_KEEP)
}

/// Match `want` against the live table `live`, in order: which live rules to delete, and
/// how many of `want` (a prefix) stay; the rest are to be added. Live rules that name a VS in
/// `doomed` are never kept.
pub fn match_rules<'a>(
    live: &'a [VsRule],
    want: &[VsRule],
    doomed: &HashSet<u32>,
) -> (Vec<&'a VsRule>, usize) {
    let mut kept = 0;
    let mut delete = Vec::new();
    for r in live {
        let usable = !rule_vss(r).any(|id| doomed.contains(&id));
        if usable && kept < want.len() && same_rule(r, &want[kept]) {
            kept += 1;
        } else {
            delete.push(r);
        }
    }
    (delete, kept)
}

/// Plan the changes from `live` (every VS, parents first) and `live_rules` (in evaluation
/// order) to `cfg`; `max_vs` is the module's VS limit. Problems that depend on the live state
/// (an id the file gives that a VS it keeps holds, a rule naming an unknown VSID, too many
/// VSs) are reported with their line, like the file's own.
pub fn plan(
    cfg: &Config,
    live: &[VsInfo],
    live_rules: &[VsRule],
    max_vs: u32,
) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let live_by_name: HashMap<String, &VsInfo> = live
        .iter()
        .filter(|i| i.id != VS_ROOT)
        .map(|i| (name_of(i), i))
        .collect();
    let order = cfg.parents_first();

    // Kept VSs and the final id of each VS of the file (`None`: the module will choose).
    let mut kept: Vec<Option<&VsInfo>> = vec![None; cfg.vss.len()];
    for &k in &order {
        let s = &cfg.vss[k];
        let Some(&l) = live_by_name.get(&s.name) else {
            continue;
        };
        let id_ok = s.id.as_ref().is_none_or(|id| id.value == l.id);
        let parent_ok = if s.parent.value == "root" {
            l.parent == VS_ROOT
        } else {
            cfg.index(&s.parent.value)
                .and_then(|p| kept[p])
                .is_some_and(|p| p.id == l.parent)
        };
        if id_ok && parent_ok {
            kept[k] = Some(l);
        }
    }
    let final_id: Vec<Option<u32>> = cfg
        .vss
        .iter()
        .zip(&kept)
        .map(|(s, k)| k.map(|l| l.id).or(s.id.as_ref().map(|i| i.value)))
        .collect();

    // An id the file gives a new VS must not be one that a kept VS holds.
    let kept_ids: HashMap<u32, &str> = cfg
        .vss
        .iter()
        .zip(&kept)
        .filter_map(|(s, k)| k.map(|l| (l.id, s.name.as_str())))
        .collect();
    for (s, k) in cfg.vss.iter().zip(&kept) {
        if let (None, Some(id)) = (k, &s.id) {
            if let Some(other) = kept_ids.get(&id.value).filter(|&&o| o != s.name) {
                problems.push(Problem {
                    line: Some(id.line),
                    what: format!(
                        "vs '{}': id: {} is the id of the existing VS '{other}', which the file \
                         keeps (give one of them another id)",
                        s.name, id.value
                    ),
                });
            }
        }
    }
    let total = cfg.vss.len() as u64 + 1;
    if total > u64::from(max_vs) {
        problems.push(Problem {
            line: None,
            what: format!(
                "vs: {} VSs and root are more than the module's limit of {max_vs}",
                cfg.vss.len()
            ),
        });
    }

    // The file's rules with the ids known so far; a number must name root or a VS of the file.
    let valid_ids: HashSet<u32> = final_id
        .iter()
        .flatten()
        .copied()
        .chain([VS_ROOT])
        .collect();
    let mut want = Vec::new();
    for spec in &cfg.rules {
        for r in &spec.rules {
            let mut r = *r;
            for id in [&mut r.cur, &mut r.req, &mut r.target] {
                if *id == VS_ANY || *id == VS_TARGET_REQ || *id == VS_TARGET_KEEP {
                    continue;
                }
                if *id >= PLACEHOLDER {
                    let k = (*id - PLACEHOLDER) as usize;
                    if let Some(real) = final_id.get(k).copied().flatten() {
                        *id = real;
                    }
                } else if !valid_ids.contains(id) {
                    problems.push(Problem {
                        line: Some(spec.line),
                        what: format!(
                            "rules: VS id {id} is neither root nor the id of a VS of the file \
                             (in '{}')",
                            spec.text
                        ),
                    });
                }
            }
            want.push(r);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Names for the notation: live names, and the file's names for its new VSs.
    let live_name = |id: u32| live.iter().find(|i| i.id == id).map(name_of);
    let file_name = |id: u32| {
        if (PLACEHOLDER..VS_TARGET_KEEP).contains(&id) {
            cfg.vss
                .get((id - PLACEHOLDER) as usize)
                .map(|s| s.name.clone())
        } else if id == VS_ROOT {
            Some("root".into())
        } else {
            final_id
                .iter()
                .position(|f| *f == Some(id))
                .map(|k| cfg.vss[k].name.clone())
        }
    };

    let kept_live: HashSet<u32> = kept.iter().flatten().map(|l| l.id).collect();
    let mut doomed: Vec<&VsInfo> = live
        .iter()
        .filter(|i| i.id != VS_ROOT && !kept_live.contains(&i.id))
        .collect();
    // Deepest first; a stable sort keeps the module's order among equals.
    doomed.sort_by_key(|i| std::cmp::Reverse(i.depth));
    let doomed_ids: HashSet<u32> = doomed.iter().map(|i| i.id).collect();

    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let (delete, kept_rules) = match_rules(live_rules, &want, &doomed_ids);
    for r in delete {
        steps.push(Step::DelRule {
            rule: *r,
            text: format_rule(r, live_name),
        });
    }
    for i in &doomed {
        if i.stats.nr_procs > 0 {
            notes.push(format!(
                "'{}' has {} task(s) now: the module refuses to destroy a VS with members, \
                 and apply then undoes what it did (move them out first)",
                name_of(i),
                i.stats.nr_procs
            ));
        }
        steps.push(Step::Destroy { info: **i });
    }
    // Updates, split into the part that shrinks budgets and the part that grows them.
    let mut grow = Vec::new();
    for &k in &order {
        let Some(l) = kept[k] else { continue };
        let before = own_of(l);
        let after: Own = std::array::from_fn(|a| cfg.vss[k].own[a].as_ref().map(|v| v.value));
        let (mut down, mut up) = (Vec::new(), Vec::new());
        for a in 0..VS_NR_ATTRS {
            if before[a] == after[a] {
                continue;
            }
            let grows = a != VS_ATTR_PROCS as usize
                && match (before[a], after[a]) {
                    (None, Some(_)) => true,
                    (Some(b), Some(n)) => n > b,
                    _ => false,
                };
            if grows {
                up.push((a, before[a], after[a]));
            } else {
                down.push((a, before[a], after[a]));
            }
        }
        if !down.is_empty() {
            steps.push(Step::Set {
                info: *l,
                changes: down,
            });
        }
        if !up.is_empty() {
            grow.push(Step::Set {
                info: *l,
                changes: up,
            });
        }
    }
    // Creates: parents first, and among those ready, the ones with an id first.
    let mut created = vec![false; cfg.vss.len()];
    let mut pending: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&k| kept[k].is_none())
        .collect();
    while !pending.is_empty() {
        let ready = |k: usize| {
            let p = &cfg.vss[k].parent.value;
            p == "root"
                || cfg
                    .index(p)
                    .is_some_and(|p| kept[p].is_some() || created[p])
        };
        let pick = pending
            .iter()
            .position(|&k| ready(k) && cfg.vss[k].id.is_some())
            .or_else(|| pending.iter().position(|&k| ready(k)));
        let Some(at) = pick else { break };
        let k = pending.remove(at);
        created[k] = true;
        let s = &cfg.vss[k];
        steps.push(Step::Create {
            name: s.name.clone(),
            parent: s.parent.value.clone(),
            id: s.id.as_ref().map(|i| i.value),
            own: std::array::from_fn(|a| s.own[a].as_ref().map(|v| v.value)),
        });
    }
    steps.extend(grow);
    order_for_budgets(&mut steps, live);
    if kept_rules < want.len() {
        let rules = want[kept_rules..].to_vec();
        let texts = rules.iter().map(|r| format_rule(r, file_name)).collect();
        steps.push(Step::AddRules { rules, texts });
    }
    Ok(Plan {
        steps,
        names: cfg.vss.iter().map(|s| s.name.clone()).collect(),
        notes,
    })
}

/// Reorder the updates and creates of `steps` (which follow the rule deletions and the
/// destroys) so that none overflows a pool's share budget (`vs_core::budget`) on the way: each
/// step in turn is the first of those left whose parent exists and after which every pool
/// still fits, simulated on the live tree. The order above (shrinking updates, creates,
/// growing updates) is kept wherever it already fits; it does not always, since a VS that
/// gets or gives up a share of its own moves the shares drawn from it between two pools. If
/// no step fits, the next one goes as it is and the module refuses it (apply then undoes).
fn order_for_budgets(steps: &mut Vec<Step>, live: &[VsInfo]) {
    let movable = |s: &Step| matches!(s, Step::Set { .. } | Step::Create { .. });
    let Some(start) = steps.iter().position(movable) else {
        return;
    };
    let Live {
        tree: mut t,
        at: at_id,
        ..
    } = Live::new(live);
    let mut at_name: HashMap<String, usize> = live
        .iter()
        .map(|i| {
            (
                if i.id == VS_ROOT {
                    "root".into()
                } else {
                    name_of(i)
                },
                at_id[&i.id],
            )
        })
        .collect();
    for s in &steps[..start] {
        if let Step::Destroy { info } = s {
            t.remove(at_id[&info.id]);
            // A VS of that name created again is not this one: it exists once created.
            at_name.remove(&name_of(info));
        }
    }
    let end = steps.iter().rposition(movable).map_or(start, |e| e + 1);
    let mut pending: Vec<Step> = steps.drain(start..end).collect();
    let mut done = Vec::with_capacity(pending.len());
    // The step as an edit of `t`: (key, parent, own values after, a new VS).
    let edit_of = |t: &Shares, at_name: &HashMap<String, usize>, s: &Step| match s {
        Step::Set { info, changes } => {
            let k = at_id[&info.id];
            let mut own = t.own_of(k);
            for &(a, _, to) in changes {
                own[a] = to;
            }
            Some((k, t.parent_of(k), own, false))
        }
        Step::Create { parent, own, .. } => Some((t.next_key(), *at_name.get(parent)?, *own, true)),
        _ => None,
    };
    while !pending.is_empty() {
        let fits = |s: &Step| {
            edit_of(&t, &at_name, s).is_some_and(|(key, parent, own, added)| {
                let e = Edit {
                    tree: &t,
                    key,
                    parent,
                    own,
                    added,
                };
                overflow(&e, key).is_none()
            })
        };
        let ready = |s: &Step| edit_of(&t, &at_name, s).is_some();
        // A create with an id goes before every create without one whenever it can (its
        // parent exists), fitting or not, so that an id the module picks cannot take its id.
        let with_id = |s: &Step| matches!(s, Step::Create { id: Some(_), .. });
        let id_first = pending.iter().any(|s| with_id(s) && ready(s));
        let allowed = |s: &Step| !id_first || with_id(s) || !matches!(s, Step::Create { .. });
        let at = pending
            .iter()
            .position(|s| allowed(s) && fits(s))
            .or_else(|| pending.iter().position(|s| allowed(s) && ready(s)))
            .or_else(|| pending.iter().position(ready))
            .unwrap_or(0);
        let s = pending.remove(at);
        match (edit_of(&t, &at_name, &s), &s) {
            (Some((_, parent, own, true)), Step::Create { name, .. }) => {
                let k = t.add(parent, own);
                at_name.insert(name.clone(), k);
            }
            (Some((key, _, own, false)), _) => t.set_own(key, own),
            _ => {}
        }
        done.push(s);
    }
    steps.splice(start..start, done);
}

/// What `VS_IOC_CREATE` needs, as [`vs_client::Device::create`] takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVs {
    pub name: String,
    pub parent: u32,
    /// An id, or `VS_ID_AUTO`.
    pub id: u32,
    pub attrs: VsAttrs,
}

/// The request that brings back a destroyed VS as it was.
pub fn recreate_request(info: &VsInfo) -> NewVs {
    NewVs {
        name: name_of(info),
        parent: info.parent,
        id: info.id,
        attrs: attrs_of(&own_of(info)),
    }
}

/// The request of a [`Step::Create`], its parent's id known.
pub fn create_request(name: &str, parent: u32, id: Option<u32>, own: &Own) -> NewVs {
    NewVs {
        name: name.to_string(),
        parent,
        id: id.unwrap_or(VS_ID_AUTO),
        attrs: attrs_of(own),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::sample;
    use vs_core::abi::{VS_ATTR_CPU, VS_ATTR_NET, VS_EV_FORK};

    fn cfg(text: &str) -> Config {
        Config::parse("t.toml", text).unwrap_or_else(|p| panic!("{p:?}"))
    }

    fn lines(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.to_string()).collect()
    }

    /// The sample state (root; web 64 cpu 50; www1 65 under web, net 20, procs 100; db 5).
    const SAMPLE: &str = r#"
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
name = "db"
"#;

    #[test]
    fn the_same_state_is_an_empty_plan() {
        let p = plan(&cfg(SAMPLE), &sample(), &[], 4096).unwrap();
        assert!(p.is_empty(), "{:?}", lines(&p));
        assert_eq!(
            p.summary(false),
            "VSs: 0 to create, 0 to update, 0 to destroy; rules: 0 to add, 0 to delete"
        );
    }

    #[test]
    fn steps_come_in_a_safe_order() {
        let live = sample();
        let live_rules = vec![
            VsRule {
                id: 1,
                event: VS_EV_FORK,
                cur: 5,
                target: 5,
                ..VsRule::default()
            },
            VsRule {
                id: 2,
                event: VS_EV_FORK,
                cur: 65,
                target: 65,
                ..VsRule::default()
            },
        ];
        // db goes, web's cpu share drops, www1 gets a cpu share and loses its limit, new
        // VSs take what web gave up.
        let text = r#"
rules = ["(fork, www1) -> (www1)", "(fork, api) -> (api)"]
[[vs]]
name = "web"
cpu_share = 30
[[vs]]
name = "www1"
parent = "web"
net_share = 20
cpu_share = 40
[[vs]]
name = "api"
cpu_share = 70
[[vs]]
name = "api2"
parent = "api"
id = 9
"#;
        let p = plan(&cfg(text), &live, &live_rules, 4096).unwrap();
        assert_eq!(
            lines(&p),
            [
                "delete rule 1: (fork, db) -> (db)",
                "destroy 'db' (id 5)",
                "update 'web' (id 64): cpu_share 50% -> 30%",
                "update 'www1' (id 65): max_procs 100 -> inherited",
                "create 'api' (a new id) under root: cpu_share 70%",
                "create 'api2' (id 9) under 'api': inherits every attribute",
                "update 'www1' (id 65): cpu_share inherited -> 40%",
                "add rule: (fork, api) -> (api)",
            ]
        );
        assert_eq!(
            p.summary(false),
            "VSs: 2 to create, 2 to update, 1 to destroy; rules: 1 to add, 1 to delete"
        );
        // The new rule waits for api's id.
        match p.steps.last() {
            Some(Step::AddRules { rules, .. }) => {
                assert_eq!(rules[0].cur, PLACEHOLDER + 2);
                assert_eq!(p.names[2], "api");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_share_that_moves_pools_is_ordered_to_fit() {
        use crate::output::tests::vs;
        // root -> web (cpu 80) -> s1 (keeps web's) -> x (cpu 70, drawn from web's pool).
        let mut live = vec![
            vs(
                0,
                0,
                "root",
                0,
                [(true, 100, 0, 0), (true, 100, 0, 0), (true, 0, 0, 0)],
            ),
            vs(
                64,
                0,
                "web",
                1,
                [(true, 80, 64, 0), (false, 100, 0, 0), (false, 0, 0, 0)],
            ),
            vs(
                65,
                64,
                "s1",
                2,
                [(false, 80, 64, 0), (false, 100, 0, 0), (false, 0, 0, 0)],
            ),
            vs(
                66,
                65,
                "x",
                3,
                [(true, 70, 66, 0), (false, 100, 0, 0), (false, 0, 0, 0)],
            ),
        ];
        live[0].nr_children = 1;
        // s1 takes 50 of web's pool (x then draws from s1's), which leaves room for z's 50.
        let text = "[[vs]]\nname = \"web\"\ncpu_share = 80\n[[vs]]\nname = \"s1\"\n\
                    parent = \"web\"\ncpu_share = 50\n[[vs]]\nname = \"x\"\nparent = \"s1\"\n\
                    cpu_share = 70\n[[vs]]\nname = \"z\"\nparent = \"web\"\ncpu_share = 50\n";
        let p = plan(&cfg(text), &live, &[], 4096).unwrap();
        // Creating z first (the usual order) would put 120 % in web's pool.
        assert_eq!(
            lines(&p),
            [
                "update 's1' (id 65): cpu_share inherited -> 50%",
                "create 'z' (a new id) under 'web': cpu_share 50%",
            ]
        );
    }

    #[test]
    fn id_or_parent_changes_replace_the_vs_and_its_subtree() {
        let live = sample();
        // web gets another id: it and www1 below it are destroyed and created again.
        let text = "[[vs]]\nname = \"web\"\nid = 70\ncpu_share = 50\n[[vs]]\nname = \"www1\"\n\
                    parent = \"web\"\nnet_share = 20\nmax_procs = 100\n[[vs]]\nname = \"db\"\n\
                    parent = \"web\"\n";
        let p = plan(&cfg(text), &live, &[], 4096).unwrap();
        assert_eq!(
            lines(&p),
            [
                "destroy 'www1' (id 65)",
                "destroy 'web' (id 64)",
                "destroy 'db' (id 5)",
                "create 'web' (id 70) under root: cpu_share 50%",
                "create 'www1' (a new id) under 'web': net_share 20%, max_procs 100",
                "create 'db' (a new id) under 'web': inherits every attribute",
            ]
        );
    }

    #[test]
    fn rules_keep_their_order() {
        let r = |id, cur| VsRule {
            id,
            event: VS_EV_FORK,
            cur,
            target: cur,
            ..VsRule::default()
        };
        let live = vec![r(1, 1), r(2, 2), r(3, 3)];
        let none = HashSet::new();
        // Same: nothing to do.
        assert_eq!(
            match_rules(&live, &[r(0, 1), r(0, 2), r(0, 3)], &none),
            (vec![], 3)
        );
        // A rule dropped in the middle: delete it, keep the others.
        let (del, kept) = match_rules(&live, &[r(0, 1), r(0, 3)], &none);
        assert_eq!(
            (del.iter().map(|r| r.id).collect::<Vec<_>>(), kept),
            (vec![2], 2)
        );
        // Reordered: 2 must come first, so 1 goes and comes back after it... and 3 too.
        let (del, kept) = match_rules(&live, &[r(0, 2), r(0, 1), r(0, 3)], &none);
        assert_eq!(
            (del.iter().map(|r| r.id).collect::<Vec<_>>(), kept),
            (vec![1, 3], 1)
        );
        // A rule naming a VS about to be destroyed is never kept.
        let doomed = HashSet::from([2]);
        let (del, kept) = match_rules(&live, &[r(0, 1), r(0, 2)], &doomed);
        assert_eq!(
            (del.iter().map(|r| r.id).collect::<Vec<_>>(), kept),
            (vec![2, 3], 1)
        );
    }

    #[test]
    fn live_state_problems_name_the_line() {
        let live = sample();
        // new VS with the id of web, which the file keeps (without naming its id).
        let text = "rules = ['(fork, 77) -> (web)']\n[[vs]]\nname = \"web\"\ncpu_share = 50\n\
                    [[vs]]\nname = \"other\"\nid = 64\n";
        let p = plan(&cfg(text), &live, &[], 4096).unwrap_err();
        let what: Vec<String> = p
            .iter()
            .map(|p| format!("{:?}: {}", p.line, p.what))
            .collect();
        assert_eq!(
            what,
            [
                "Some(7): vs 'other': id: 64 is the id of the existing VS 'web', which the file \
                 keeps (give one of them another id)",
                "Some(1): rules: VS id 77 is neither root nor the id of a VS of the file (in \
                 '(fork, 77) -> (web)')",
            ]
        );
        // The module's limit counts root.
        let p = plan(&cfg(SAMPLE), &live, &[], 3).unwrap_err();
        assert_eq!(
            p[0].what,
            "vs: 3 VSs and root are more than the module's limit of 3"
        );
    }

    #[test]
    fn numbers_in_rules_may_name_kept_vss() {
        let live = sample();
        let live_rules = vec![VsRule {
            id: 4,
            event: VS_EV_FORK,
            cur: 65,
            target: 64,
            ..VsRule::default()
        }];
        let text = format!("rules = ['(fork, 65) -> (64)']\n{SAMPLE}");
        let p = plan(&cfg(&text), &live, &live_rules, 4096).unwrap();
        assert!(p.is_empty(), "{:?}", lines(&p));
    }

    #[test]
    fn busy_vss_to_destroy_are_noted() {
        let mut live = sample();
        live[2].stats.nr_procs = 2;
        let p = plan(&cfg("[[vs]]\nname = \"web\"\ncpu_share = 50\n[[vs]]\nname = \"www1\"\nparent = \"web\"\nnet_share = 20\nmax_procs = 100\n"), &live, &[], 4096).unwrap();
        assert_eq!(lines(&p), ["destroy 'db' (id 5)"]);
        assert!(
            p.notes[0].starts_with("'db' has 2 task(s) now"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn set_requests_attach_and_set() {
        let req = Step::set_request(
            7,
            &[
                (VS_ATTR_CPU as usize, Some(5), None),
                (VS_ATTR_NET as usize, None, Some(30)),
            ],
        );
        assert_eq!(req.attach_mask, 1 << VS_ATTR_CPU);
        assert_eq!(req.values.mask, 1 << VS_ATTR_NET);
        assert_eq!(req.values.net_share, 30);
        let live = sample();
        let back = recreate_request(&live[3]);
        assert_eq!((back.id, back.parent), (65, 64));
        assert_eq!(back.attrs.mask, (1 << VS_ATTR_NET) | (1 << VS_ATTR_PROCS));
        assert_eq!((back.attrs.net_share, back.attrs.max_procs), (20, 100));
    }
}
