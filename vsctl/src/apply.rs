// SPDX-License-Identifier: GPL-2.0
//! Carrying out a [`Plan`]: each step through the device, and if the module refuses one, every
//! step done so far undone in reverse, so that `vsctl apply` leaves either the file's
//! configuration or the one it found, never a mix.
//!
//! Undoing: a created VS is destroyed, a destroyed VS created again (same name, id, parent and
//! own values; its counters restart), an update set back; deleted rules come back in their
//! order (at the end of the table, so with new ids and zero hits, after every rule that
//! followed them, which are deleted and re-added too). New rules are added last, in one call
//! that the module makes all or nothing, so they never need undoing.
//!
//! The device is behind [`Kernel`], so that the host tests run plans against the module's own
//! logic ([`vs_core::classify::Vs`]) and make it refuse steps.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use vs_client::{Device, Error as DevError};
use vs_core::abi::{VsInfo, VsRule, VsSet, VS_ANY, VS_TARGET_KEEP, VS_TARGET_REQ};

use crate::commands::open;
use crate::config::{problems_error, Config, PLACEHOLDER};
use crate::error::Error;
use crate::explain::{self, CreateCtx};
use crate::plan::{
    create_request, match_rules, name_of, plan, recreate_request, NewVs, Plan, Step,
};

/// The mutations and reads of `/dev/vs` that applying a plan needs.
pub trait Kernel {
    fn list(&self) -> Result<Vec<VsInfo>, DevError>;
    fn rules(&self) -> Result<Vec<VsRule>, DevError>;
    fn create(&self, req: &NewVs) -> Result<u32, DevError>;
    fn destroy(&self, id: u32) -> Result<(), DevError>;
    fn set(&self, req: &VsSet) -> Result<(), DevError>;
    fn add_rules(&self, rules: &[VsRule]) -> Result<u32, DevError>;
    fn del_rule(&self, id: u32) -> Result<(), DevError>;
}

impl Kernel for Device {
    fn list(&self) -> Result<Vec<VsInfo>, DevError> {
        Device::list(self)
    }
    fn rules(&self) -> Result<Vec<VsRule>, DevError> {
        Device::rules(self)
    }
    fn create(&self, req: &NewVs) -> Result<u32, DevError> {
        Device::create(self, &req.name, req.parent, req.id, req.attrs)
    }
    fn destroy(&self, id: u32) -> Result<(), DevError> {
        Device::destroy(self, id)
    }
    fn set(&self, req: &VsSet) -> Result<(), DevError> {
        Device::set(self, req.id, req.attach_mask, req.detach_mask, req.values)
    }
    fn add_rules(&self, rules: &[VsRule]) -> Result<u32, DevError> {
        Device::add_rules(self, rules)
    }
    fn del_rule(&self, id: u32) -> Result<(), DevError> {
        Device::del_rule(self, id)
    }
}

/// How to take back one step that was done.
enum Undo {
    /// A VS was created: destroy it.
    Destroy { id: u32, name: String },
    /// A VS was destroyed: create it again as it was.
    Create(NewVs),
    /// A VS was updated: set it back.
    Set { req: VsSet, name: String },
}

/// The ids the names of the file stand for, kept up to date as VSs come and go.
struct Names {
    ids: HashMap<String, u32>,
}

impl Names {
    /// The rule with the VSs of the file that were placeholders replaced by their ids.
    fn resolve(&self, plan: &Plan, r: &VsRule) -> VsRule {
        let mut r = *r;
        for id in [&mut r.cur, &mut r.req, &mut r.target] {
            if *id >= PLACEHOLDER && *id != VS_ANY && *id != VS_TARGET_REQ && *id != VS_TARGET_KEEP
            {
                if let Some(real) = plan
                    .names
                    .get((*id - PLACEHOLDER) as usize)
                    .and_then(|n| self.ids.get(n))
                {
                    *id = *real;
                }
            }
        }
        r
    }
}

/// Carry out `plan`, made from `live` and `live_rules`; `max_vs` is the module's VS limit
/// (for messages). `done` gets each step as it is done. On a refused step, everything done is
/// undone and the error says which step, why, and how the undoing went.
pub fn execute(
    k: &impl Kernel,
    plan: &Plan,
    live: &[VsInfo],
    live_rules: &[VsRule],
    max_vs: u32,
    done: &mut impl FnMut(&str),
) -> Result<(), Error> {
    let mut names = Names {
        ids: live.iter().map(|i| (name_of(i), i.id)).collect(),
    };
    let mut undo: Vec<Undo> = Vec::new();
    let mut rules_deleted = false;
    for (n, step) in plan.steps.iter().enumerate() {
        let result = match step {
            Step::DelRule { rule, .. } => k
                .del_rule(rule.id)
                .map(|()| rules_deleted = true)
                .map_err(|e| explain::delrule_failed(e.errno, rule.id)),
            Step::Destroy { info } => match k.destroy(info.id) {
                Ok(()) => {
                    names.ids.remove(&name_of(info));
                    undo.push(Undo::Create(recreate_request(info)));
                    Ok(())
                }
                Err(e) => Err(explain::destroy_failed(e.errno, info)),
            },
            Step::Set { info, changes } => {
                let req = Step::set_request(info.id, changes);
                match k.set(&req) {
                    Ok(()) => {
                        let back: Vec<_> =
                            changes.iter().map(|&(a, from, to)| (a, to, from)).collect();
                        undo.push(Undo::Set {
                            req: Step::set_request(info.id, &back),
                            name: name_of(info),
                        });
                        Ok(())
                    }
                    Err(e) => {
                        let fresh = k.list().unwrap_or_else(|_| live.to_vec());
                        Err(explain::set_failed(e.errno, info, &req, &fresh))
                    }
                }
            }
            Step::Create {
                name,
                parent,
                id,
                own,
            } => {
                let parent_id = names.ids.get(parent).copied().unwrap_or(u32::MAX);
                let req = create_request(name, parent_id, *id, own);
                match k.create(&req) {
                    Ok(new) => {
                        names.ids.insert(name.clone(), new);
                        undo.push(Undo::Destroy {
                            id: new,
                            name: name.clone(),
                        });
                        Ok(())
                    }
                    Err(e) => {
                        let fresh = k.list().unwrap_or_else(|_| live.to_vec());
                        let parent_info = fresh
                            .iter()
                            .find(|i| i.id == parent_id)
                            .copied()
                            .unwrap_or_default();
                        let ctx = CreateCtx {
                            name,
                            id: *id,
                            parent: &parent_info,
                            attrs: &req.attrs,
                            list: &fresh,
                            nr_vs: fresh.len() as u32,
                            max_vs,
                        };
                        Err(explain::create_failed(e.errno, &ctx))
                    }
                }
            }
            Step::AddRules { rules, .. } => {
                let rules: Vec<VsRule> = rules.iter().map(|r| names.resolve(plan, r)).collect();
                k.add_rules(&rules).map(drop).map_err(|e| {
                    let fresh = k.list().unwrap_or_else(|_| live.to_vec());
                    explain::addrule_failed(e.errno, &rules, &fresh)
                })
            }
        };
        match result {
            Ok(()) => done(&step.to_string()),
            Err(why) => {
                let back = rollback(k, undo, rules_deleted, live_rules, n);
                return Err(Error::Failed(format!(
                    "apply: step {} of {} refused: {why}\n  step: {step}\n{back}",
                    n + 1,
                    plan.steps.len()
                )));
            }
        }
    }
    Ok(())
}

/// Undo `undo` in reverse, then bring the rule table back to `live_rules` if rules were
/// deleted; `steps` were done. Says how it went.
fn rollback(
    k: &impl Kernel,
    undo: Vec<Undo>,
    rules_deleted: bool,
    live_rules: &[VsRule],
    steps: usize,
) -> String {
    let mut failed = Vec::new();
    let mut recreated = 0;
    for u in undo.into_iter().rev() {
        let r = match &u {
            Undo::Destroy { id, name } => k
                .destroy(*id)
                .map_err(|e| format!("destroy '{name}' (id {id}): {}", explain::strerror(e.errno))),
            Undo::Create(req) => {
                recreated += 1;
                k.create(req).map(drop).map_err(|e| {
                    format!(
                        "create '{}' (id {}) again: {}",
                        req.name,
                        req.id,
                        explain::strerror(e.errno)
                    )
                })
            }
            Undo::Set { req, name } => k
                .set(req)
                .map_err(|e| format!("set '{name}' back: {}", explain::strerror(e.errno))),
        };
        if let Err(m) = r {
            failed.push(m);
        }
    }
    let mut readded = 0;
    if rules_deleted {
        match k.rules() {
            Ok(now) => {
                let (delete, kept) = match_rules(&now, live_rules, &HashSet::new());
                for r in delete {
                    if let Err(e) = k.del_rule(r.id) {
                        failed.push(format!(
                            "delete rule {}: {}",
                            r.id,
                            explain::strerror(e.errno)
                        ));
                    }
                }
                if kept < live_rules.len() {
                    match k.add_rules(&live_rules[kept..]) {
                        Ok(_) => readded = live_rules.len() - kept,
                        Err(e) => failed.push(format!(
                            "add {} rules back: {}",
                            live_rules.len() - kept,
                            explain::strerror(e.errno)
                        )),
                    }
                }
            }
            Err(e) => failed.push(format!("read the rules: {}", explain::strerror(e.errno))),
        }
    }
    let mut m = String::new();
    if failed.is_empty() {
        let _ = write!(
            m,
            "rolled back: the {steps} step{} done before it {} undone; the configuration is \
             the one apply found",
            if steps == 1 { "" } else { "s" },
            if steps == 1 { "was" } else { "were" }
        );
        if recreated > 0 {
            let _ = write!(
                m,
                " (VSs destroyed and created again keep their ids; their counters restart)"
            );
        }
        if readded > 0 {
            let _ = write!(
                m,
                " ({readded} rule{} re-added in their order, with new ids)",
                if readded == 1 { "" } else { "s" }
            );
        }
    } else {
        let _ = write!(
            m,
            "rollback INCOMPLETE: {}; see the state with 'vsctl export'",
            failed.join("; ")
        );
    }
    m
}

/// The text of `file` (`-`: standard input) and how messages name it.
fn read_config(file: &str) -> Result<(String, String), Error> {
    if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Error::Failed(format!("apply: cannot read standard input: {e}")))?;
        Ok(("<stdin>".into(), text))
    } else {
        std::fs::read_to_string(file)
            .map(|text| (file.to_string(), text))
            .map_err(|e| Error::Failed(format!("apply: cannot read {file}: {e}")))
    }
}

/// `vsctl apply FILE [--dry-run]`: check the whole file, plan, then (unless a dry run) carry
/// the plan out, printing each step as it is done.
pub fn apply_cmd(file: &str, dry_run: bool) -> Result<String, Error> {
    let (name, text) = read_config(file)?;
    let cfg = Config::parse(&name, &text).map_err(|p| problems_error(&name, &p))?;
    let (dev, version) = open()?;
    let live = dev.list().map_err(explain::read_failed)?;
    let live_rules = dev.rules().map_err(explain::read_failed)?;
    let plan =
        plan(&cfg, &live, &live_rules, version.max_vs).map_err(|p| problems_error(&name, &p))?;
    if plan.is_empty() {
        return Ok(format!(
            "nothing to do: the configuration in force is {name}'s\n"
        ));
    }
    let mut out = String::new();
    if dry_run {
        for s in &plan.steps {
            let _ = writeln!(out, "{s}");
        }
        for n in &plan.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(out, "{}\ndry run: nothing was changed", plan.summary(false));
        return Ok(out);
    }
    for n in &plan.notes {
        eprintln!("vsctl: note: {n}");
    }
    execute(&dev, &plan, &live, &live_rules, version.max_vs, &mut |s| {
        println!("{s}")
    })?;
    Ok(format!("applied {name}: {}\n", plan.summary(true)))
}

/// `vsctl export`: the live VSs and rules as a configuration file.
pub fn export_cmd() -> Result<String, Error> {
    let (dev, _) = open()?;
    let live = dev.list().map_err(explain::read_failed)?;
    let rules = dev.rules().map_err(explain::read_failed)?;
    Ok(crate::config::export(&live, &rules))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use vs_client::Op;
    use vs_core::abi::{VsStats, VS_MAX};
    use vs_core::classify::{Store, Tables, Vs};
    use vs_core::members::Entry;
    use vs_core::rules::{IndexEntry, Rule};
    use vs_core::tree::Error as TreeError;

    pub struct VecStore;
    impl Store for VecStore {
        type Table<T> = Vec<T>;
    }

    /// The module's logic behind the [`Kernel`] calls, as `src/device.rs` drives it; the
    /// mutation number `fail_at` (from 1) is refused with `fail_errno`.
    pub struct Model {
        pub vs: RefCell<Vs<VecStore>>,
        pub mutations: Cell<u32>,
        pub fail_at: Cell<u32>,
        pub fail_errno: Cell<i32>,
    }

    fn errno(e: TreeError) -> i32 {
        match e {
            TreeError::Invalid => libc::EINVAL,
            TreeError::NotFound => libc::ENOENT,
            TreeError::Exists => libc::EEXIST,
            TreeError::Busy => libc::EBUSY,
            TreeError::NoSpace => libc::ENOSPC,
            TreeError::Again => libc::EAGAIN,
        }
    }

    impl Model {
        pub fn new() -> Self {
            let n = 64;
            let blank = Rule::BLANK;
            let vs = Vs::new(Tables {
                slots: vec![None; n],
                members: vec![Entry::default(); 256],
                member_shadow: Vec::new(),
                gate_view: Vec::new(),
                member_blocks: Vec::new(),
                decisions: Vec::new(),
                objects: vec![Entry::default(); 64],
                object_shadow: Vec::new(),
                rules: vec![blank; 256],
                index: vec![IndexEntry::default(); 256],
                stats: vec![VsStats::default(); n],
                ctl: vec![Default::default(); n],
                scratch: vec![Default::default(); n],
                charges: Vec::new(),
                stays: Vec::new(),
            })
            .unwrap_or_else(|e| panic!("{e:?}"));
            Model {
                vs: RefCell::new(vs),
                mutations: Cell::new(0),
                fail_at: Cell::new(0),
                fail_errno: Cell::new(0),
            }
        }

        fn mutate<T>(
            &self,
            op: Op,
            f: impl FnOnce(&mut Vs<VecStore>) -> Result<T, TreeError>,
        ) -> Result<T, DevError> {
            let n = self.mutations.get() + 1;
            self.mutations.set(n);
            if n == self.fail_at.get() {
                return Err(DevError {
                    op,
                    errno: self.fail_errno.get(),
                });
            }
            f(&mut self.vs.borrow_mut()).map_err(|e| DevError {
                op,
                errno: errno(e),
            })
        }

        /// Add a member task to VS `id` (so that it cannot be destroyed).
        pub fn join(&self, id: u32) {
            let mut vs = self.vs.borrow_mut();
            let slot = vs.reg.find(id).unwrap_or_else(|| panic!("no VS {id}"));
            vs.reg.join(slot).unwrap_or_else(|e| panic!("{e:?}"));
        }

        pub fn id(&self, name: &str) -> u32 {
            self.list()
                .unwrap_or_default()
                .iter()
                .find(|i| name_of(i) == name)
                .map_or(u32::MAX, |i| i.id)
        }
    }

    impl Kernel for Model {
        fn list(&self) -> Result<Vec<VsInfo>, DevError> {
            let vs = self.vs.borrow();
            Ok(vs
                .reg
                .slots_by_depth()
                .filter_map(|slot| {
                    let mut info = vs.reg.info(slot).ok()?;
                    info.stats = vs.stats(slot);
                    Some(info)
                })
                .collect())
        }
        fn rules(&self) -> Result<Vec<VsRule>, DevError> {
            Ok(self.vs.borrow().rules.iter().map(|r| r.spec).collect())
        }
        fn create(&self, req: &NewVs) -> Result<u32, DevError> {
            let mut name = [0u8; vs_core::abi::VS_NAME_LEN];
            name[..req.name.len()].copy_from_slice(req.name.as_bytes());
            self.mutate(Op::Create, |vs| {
                vs.create(&name, req.parent, req.id, &req.attrs)
            })
        }
        fn destroy(&self, id: u32) -> Result<(), DevError> {
            self.mutate(Op::Destroy, |vs| vs.destroy(id))
        }
        fn set(&self, req: &VsSet) -> Result<(), DevError> {
            self.mutate(Op::Set, |vs| {
                vs.reg
                    .set(req.id, req.attach_mask, req.detach_mask, &req.values)
            })
        }
        fn add_rules(&self, rules: &[VsRule]) -> Result<u32, DevError> {
            self.mutate(Op::AddRules, |vs| vs.add_rules(rules))
        }
        fn del_rule(&self, id: u32) -> Result<(), DevError> {
            self.mutate(Op::DelRule, |vs| vs.rules.delete(id))
        }
    }

    /// Apply `text` to `m` as `vsctl apply` does; the steps done, or the error.
    pub fn apply_text(m: &Model, text: &str) -> Result<Vec<String>, String> {
        let cfg = Config::parse("t.toml", text)
            .map_err(|p| crate::config::problems_error("t.toml", &p).to_string())?;
        let live = m.list().map_err(|e| e.to_string())?;
        let live_rules = m.rules().map_err(|e| e.to_string())?;
        let p = plan(&cfg, &live, &live_rules, VS_MAX)
            .map_err(|p| crate::config::problems_error("t.toml", &p).to_string())?;
        let mut done = Vec::new();
        execute(m, &p, &live, &live_rules, VS_MAX, &mut |s| {
            done.push(s.to_string())
        })
        .map_err(|e| e.to_string())?;
        Ok(done)
    }

    /// The live state as `export` writes it.
    pub fn export(m: &Model) -> String {
        crate::config::export(
            &m.list().unwrap_or_default(),
            &m.rules().unwrap_or_default(),
        )
    }

    const SITE: &str = r#"
rules = [
    "(fork, www1) -> (www1)",
    "(accept, fcgi, req=www[1|2]) -> (www[1|2])",
    "(exec, *, path=/usr/sbin/nginx) -> (web)",
]

[[vs]]
name = "web"
id = 10
cpu_share = 60
net_share = 50

[[vs]]
name = "www1"
parent = "web"
cpu_share = 70
max_procs = 200

[[vs]]
name = "www2"
parent = "web"
max_procs = "unlimited"

[[vs]]
name = "fcgi"
cpu_share = 20
"#;

    #[test]
    fn apply_then_export_round_trips() {
        let m = Model::new();
        let done = apply_text(&m, SITE).unwrap();
        assert_eq!(done.len(), 5, "{done:?}");
        assert!(
            done[0].starts_with("create 'web' (id 10) under root"),
            "{done:?}"
        );
        assert_eq!(m.rules().unwrap().len(), 4);
        // Applying again, or applying what export says, changes nothing.
        let before = export(&m);
        assert_eq!(apply_text(&m, SITE), Ok(vec![]));
        assert_eq!(apply_text(&m, &before), Ok(vec![]));
        assert_eq!(export(&m), before);
        // Export's file applied to a fresh module gives the same export.
        let fresh = Model::new();
        apply_text(&fresh, &before).unwrap();
        assert_eq!(export(&fresh), before);
        assert_eq!(m.mutations.get(), 5, "no mutation for the no-op applies");
    }

    #[test]
    fn changes_are_a_diff_and_keep_what_is_kept() {
        let m = Model::new();
        apply_text(&m, SITE).unwrap();
        let www1 = m.id("www1");
        let first_rule = m.rules().unwrap()[0].id;
        // www2 gone (with its accept rule), fcgi's share up, web's down, a new VS.
        let text = SITE
            .replace(
                "\"(accept, fcgi, req=www[1|2]) -> (www[1|2])\",\n",
                "\"(accept, fcgi, req=www1) -> (www1)\",\n",
            )
            .replace(
                "[[vs]]\nname = \"www2\"\nparent = \"web\"\nmax_procs = \"unlimited\"\n",
                "[[vs]]\nname = \"api\"\ncpu_share = 10\n",
            )
            .replace("cpu_share = 60", "cpu_share = 50")
            .replace("cpu_share = 20", "cpu_share = 40");
        let done = apply_text(&m, &text).unwrap();
        assert_eq!(
            done,
            [
                "delete rule 3: (accept, fcgi, req=www2) -> (www2)",
                "destroy 'www2' (id 65)",
                "update 'web' (id 10): cpu_share 60% -> 50%",
                "create 'api' (a new id) under root: cpu_share 10%",
                "update 'fcgi' (id 66): cpu_share 20% -> 40%",
            ]
        );
        assert_eq!(m.id("www1"), www1, "kept VSs keep their ids");
        assert_eq!(
            m.rules().unwrap()[0].id,
            first_rule,
            "kept rules keep their ids"
        );
        assert_eq!(apply_text(&m, &text), Ok(vec![]));
    }

    #[test]
    fn a_refused_step_is_rolled_back() {
        let m = Model::new();
        apply_text(&m, SITE).unwrap();
        m.join(m.id("www2"));
        let before = export(&m);
        let rules_before = m.rules().unwrap();
        // Without www2 (which has a task) and with web's subtree changed: the destroy of www2
        // is refused after a rule was deleted and www1 destroyed.
        let text = r#"
rules = ["(exec, *, path=/usr/sbin/nginx) -> (web)"]
[[vs]]
name = "web"
id = 10
cpu_share = 60
net_share = 50
[[vs]]
name = "fcgi"
cpu_share = 30
[[vs]]
name = "new"
"#;
        let e = apply_text(&m, text).unwrap_err();
        assert!(
            e.starts_with(
                "apply: step 5 of 7 refused: destroy 'www2': it still has child VSs, member \
                 processes or rules that name it\n  step: destroy 'www2' (id 65)\nrolled back: \
                 the 4 steps done before it were undone"
            ),
            "{e}"
        );
        assert!(
            e.contains("(4 rules re-added in their order, with new ids)"),
            "{e}"
        );
        let after = export(&m);
        assert_eq!(after, before, "the state is the one before");
        let rules_after = m.rules().unwrap();
        assert_eq!(rules_after.len(), rules_before.len());
        assert!(rules_after
            .iter()
            .zip(&rules_before)
            .all(|(a, b)| crate::plan::same_rule(a, b)));
    }

    #[test]
    fn a_refusal_at_every_step_leaves_the_state_as_it_was() {
        let text = SITE
            .replace("cpu_share = 60", "cpu_share = 40")
            .replace("fcgi", "cgi");
        for at in 1..=8 {
            let m = Model::new();
            apply_text(&m, SITE).unwrap();
            let before = export(&m);
            m.fail_at.set(m.mutations.get() + at);
            m.fail_errno.set(libc::ENOSPC);
            match apply_text(&m, &text) {
                Err(e) => {
                    assert!(
                        e.contains(&format!("step {at} of")) && e.contains("rolled back"),
                        "{e}"
                    );
                    assert_eq!(export(&m), before, "refused at {at}: {e}");
                }
                Ok(done) => {
                    assert!(at as usize > done.len(), "refusal {at} not seen: {done:?}");
                }
            }
        }
    }

    #[test]
    fn the_shipped_examples_apply_and_round_trip() {
        for text in [
            include_str!("../../dist/vs.toml"),
            include_str!("../../dist/vs.default.toml"),
        ] {
            let m = Model::new();
            apply_text(&m, text).unwrap_or_else(|e| panic!("{e}"));
            let exported = export(&m);
            assert_eq!(apply_text(&m, text), Ok(vec![]));
            let fresh = Model::new();
            apply_text(&fresh, &exported).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(export(&fresh), exported);
        }
        let m = Model::new();
        apply_text(&m, include_str!("../../dist/vs.toml")).unwrap_or_default();
        assert_eq!(m.rules().map(|r| r.len()), Ok(5));
        assert_eq!(m.list().map(|l| l.len()), Ok(5));
    }

    #[test]
    fn a_shrinking_budget_is_made_room_for() {
        // root's cpu budget is full both before and after: a VS gives up what others take.
        let m = Model::new();
        apply_text(
            &m,
            "[[vs]]\nname = \"a\"\ncpu_share = 90\n[[vs]]\nname = \"b\"\ncpu_share = 10\n",
        )
        .unwrap();
        let done = apply_text(&m, "[[vs]]\nname = \"a\"\ncpu_share = 10\n[[vs]]\nname = \"b\"\ncpu_share = 10\n[[vs]]\nname = \"c\"\ncpu_share = 80\n").unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        let done = apply_text(
            &m,
            "[[vs]]\nname = \"a\"\ncpu_share = 50\n[[vs]]\nname = \"b\"\ncpu_share = 50\n",
        )
        .unwrap();
        assert_eq!(
            done,
            [
                "destroy 'c' (id 66)",
                "update 'a' (id 64): cpu_share 10% -> 50%",
                "update 'b' (id 65): cpu_share 10% -> 50%"
            ]
        );
    }
    #[test]
    fn shares_moving_between_pools_apply_in_an_order_that_fits() {
        let m = Model::new();
        let yz = "[[vs]]\nname = \"y\"\nparent = \"v\"\ncpu_share = 50\n\
                  [[vs]]\nname = \"z\"\nparent = \"v\"\ncpu_share = 30\n";
        // v keeps root's cpu: y, z and foo draw 100 from root's pool.
        apply_text(
            &m,
            &format!(
                "[[vs]]\nname = \"v\"\n{yz}[[vs]]\nname = \"foo\"\nparent = \"v\"\n\
                 cpu_share = 20\n"
            ),
        )
        .unwrap();
        // v takes 10 of root's (y and z then draw from v's pool); foo moves under root (so it
        // is replaced) with 60 and a child. The usual order would create foo's 60 beside y's
        // and z's 80; bar waits for the new foo.
        let done = apply_text(
            &m,
            &format!(
                "[[vs]]\nname = \"v\"\ncpu_share = 10\n{yz}[[vs]]\nname = \"foo\"\n\
                 cpu_share = 60\n[[vs]]\nname = \"bar\"\nparent = \"foo\"\ncpu_share = 10\n"
            ),
        )
        .unwrap();
        assert_eq!(
            done,
            [
                "destroy 'foo' (id 67)",
                "update 'v' (id 64): cpu_share inherited -> 10%",
                "create 'foo' (a new id) under root: cpu_share 60%",
                "create 'bar' (a new id) under 'foo': cpu_share 10%",
            ]
        );
    }

    #[test]
    fn a_create_with_an_id_goes_before_one_without() {
        let m = Model::new();
        apply_text(
            &m,
            "[[vs]]\nname = \"v\"\n[[vs]]\nname = \"y\"\nparent = \"v\"\ncpu_share = 50\n\
             [[vs]]\nname = \"z\"\nparent = \"v\"\ncpu_share = 30\n\
             [[vs]]\nname = \"w\"\nparent = \"v\"\ncpu_share = 20\n",
        )
        .unwrap();
        // q (id 68, the next id the module would pick) does not fit until v gets a share;
        // p (no id) fits at once, but must not take q's id.
        let done = apply_text(
            &m,
            "[[vs]]\nname = \"v\"\ncpu_share = 20\n[[vs]]\nname = \"y\"\nparent = \"v\"\n\
             cpu_share = 50\n[[vs]]\nname = \"z\"\nparent = \"v\"\ncpu_share = 30\n\
             [[vs]]\nname = \"q\"\nid = 68\ncpu_share = 40\n\
             [[vs]]\nname = \"p\"\ncpu_share = 20\n",
        )
        .unwrap();
        assert!(
            done.iter().position(|s| s.starts_with("create 'q'"))
                < done.iter().position(|s| s.starts_with("create 'p'")),
            "{done:?}"
        );
    }
}
