//! The indexed rule table against the paper's definition: the first rule in id order that
//! matches decides.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vs_core::abi::*;
use vs_core::rules::{Decision, FileId, IndexEntry, Rule, RuleTable, Verdict};
use vs_core::tree::Error;

fn blank_rule() -> Rule {
    Rule::BLANK
}

/// The file each path names (what the kernel's resolution would find).
fn file_of(p: &[u8]) -> FileId {
    FileId {
        dev: 8,
        ino: p.iter().map(|&b| u64::from(b)).sum(),
    }
}

/// Another file shown under a rule's path (a bind mount in a private mount namespace).
const SPOOF: FileId = FileId { dev: 99, ino: 1 };

/// What the paths work item does: resolve every exec rule's path.
fn resolve_all(t: &mut RuleTable<Vec<Rule>, Vec<IndexEntry>, Vec<Decision>>) {
    let paths: Vec<(u32, Vec<u8>)> = t.exec_paths().map(|(id, p)| (id, p.to_vec())).collect();
    for (id, p) in paths {
        t.set_file(id, &p, file_of(&p));
    }
}

fn table(cap: usize) -> RuleTable<Vec<Rule>, Vec<IndexEntry>, Vec<Decision>> {
    // A small decision cache, so that questions asked again collide and get replaced.
    RuleTable::with_cache(
        vec![blank_rule(); cap],
        vec![IndexEntry::default(); cap],
        vec![Decision::EMPTY; 4],
    )
}

fn path(p: &str) -> [u8; VS_PATH_LEN] {
    let mut b = [0u8; VS_PATH_LEN];
    b[..p.len()].copy_from_slice(p.as_bytes());
    b
}

/// VS ids 1..=4 exist, in slots 10..=14.
fn slot_of(id: u32) -> Option<usize> {
    (1..=4).contains(&id).then_some(id as usize + 10)
}

const PATHS: [&str; 3] = ["", "/bin/a", "/bin/b"];

fn rule() -> impl Strategy<Value = VsRule> {
    let vs = prop_oneof![Just(VS_ANY), 1u32..=4];
    (
        prop::sample::select(vec![VS_EV_FORK, VS_EV_EXEC, VS_EV_ACCEPT]),
        vs.clone(),
        vs,
        0usize..3,
        prop_oneof![Just(VS_TARGET_KEEP), Just(VS_TARGET_REQ), 1u32..=4],
    )
        .prop_map(|(event, cur, req, p, target)| {
            let has_req = vs_event_has_req(event);
            VsRule {
                event,
                cur,
                req: if has_req { req } else { VS_ANY },
                target: if !has_req && target == VS_TARGET_REQ {
                    VS_TARGET_KEEP
                } else {
                    target
                },
                path: if event == VS_EV_EXEC {
                    path(PATHS[p])
                } else {
                    path("")
                },
                ..VsRule::default()
            }
        })
}

/// The definition: scan in id order; a path rule matches only the file its path names.
fn naive(
    rules: &[VsRule],
    event: u32,
    cur: u32,
    req: Option<u32>,
    p: &str,
    spoof: bool,
) -> Option<u32> {
    rules
        .iter()
        .find(|r| {
            r.event == event
                && (r.cur == VS_ANY || r.cur == cur)
                && (r.req == VS_ANY || Some(r.req) == req)
                && (r.path == path("") || (r.path == path(p) && !spoof))
        })
        .map(|r| r.id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn index_agrees_with_first_match(
        // Batches up to 40 rules: above 32 the index is appended to and sorted once.
        batches in prop::collection::vec(prop::collection::vec(rule(), 1..40), 1..10),
        deletes in prop::collection::vec(0usize..60, 0..10),
        queries in prop::collection::vec((prop::sample::select(vec![VS_EV_FORK, VS_EV_EXEC, VS_EV_ACCEPT]), 1u32..=4, 1u32..=4, 0usize..3, any::<bool>()), 1..40),
    ) {
        let mut t = table(256);
        let mut model: Vec<VsRule> = Vec::new();
        for b in &batches {
            let got = t.add(b, slot_of);
            if model.len() + b.len() > 256 {
                prop_assert_eq!(got, Err(Error::NoSpace));
                continue;
            }
            let first = got.unwrap();
            for (i, r) in b.iter().enumerate() {
                model.push(VsRule { id: first + i as u32, ..*r });
            }
        }
        for d in deletes {
            if model.is_empty() { break; }
            let id = model.remove(d % model.len()).id;
            prop_assert_eq!(t.delete(id), Ok(()));
            prop_assert_eq!(t.delete(id), Err(Error::NotFound));
        }
        let mask = model.iter().fold(0u32, |m, r| m | 1 << r.event);
        prop_assert_eq!(t.event_mask(), mask);
        let ids: Vec<u32> = t.iter().map(|r| r.spec.id).collect();
        prop_assert_eq!(ids, model.iter().map(|r| r.id).collect::<Vec<_>>());
        resolve_all(&mut t);
        for (ev, cur, req, p, spoof) in queries {
            // `applies`: some rule of the event names this VS (or any) as the current one.
            let applies = model.iter().any(|r| r.event == ev && (r.cur == cur || r.cur == VS_ANY));
            prop_assert_eq!(t.applies(ev, cur), applies, "applies ev {} cur {}", ev, cur);
            let req = vs_event_has_req(ev).then_some(req);
            let p = if ev == VS_EV_EXEC { PATHS[p] } else { "" };
            let spoof = spoof && ev == VS_EV_EXEC;
            let want = naive(&model, ev, cur, req, p, spoof);
            let file = if spoof { SPOOF } else { file_of(p.as_bytes()) };
            let got = t.classify(ev, cur, req, p.as_bytes(), file);
            // A spoofed exec that showed some rule's path asks for the paths to be resolved.
            let shown = spoof && model.iter().any(|r| r.event == ev && r.path == path(p) && !p.is_empty());
            if !shown {
                prop_assert!(!t.take_stale());
            }
            t.take_stale();
            prop_assert_eq!(got.map(|g| g.0), want, "ev {} cur {} req {:?} path {}", ev, cur, req, p);
            if let (Some((_, v)), Some(id)) = (got, want) {
                let r = model.iter().find(|r| r.id == id).unwrap();
                let expect = match r.target { VS_TARGET_REQ => Verdict::Req, VS_TARGET_KEEP => Verdict::Keep, t => Verdict::Slot(t as usize + 10) };
                prop_assert_eq!(v, expect);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Add(Vec<VsRule>),
    Delete(usize),
    Query(u32, u32, u32),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// The gates' decision cache never answers from before a rule was added or deleted: the
    /// same questions asked between changes get the definition's answer, and every answer
    /// counts a hit on the rule that gave it.
    #[test]
    fn cached_decisions_follow_every_change(
        steps in prop::collection::vec(prop_oneof![
            1 => prop::collection::vec(rule(), 1..4).prop_map(Step::Add),
            1 => (0usize..20).prop_map(Step::Delete),
            4 => (prop::sample::select(vec![VS_EV_FORK, VS_EV_ACCEPT]), 1u32..=4, 1u32..=4)
                .prop_map(|(e, c, r)| Step::Query(e, c, r)),
        ], 1..80),
    ) {
        let mut t = table(64);
        let mut model: Vec<VsRule> = Vec::new();
        let mut hits: BTreeMap<u32, u64> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Add(b) => {
                    if model.len() + b.len() > 64 { continue; }
                    let first = t.add(&b, slot_of).unwrap();
                    for (i, r) in b.iter().enumerate() {
                        model.push(VsRule { id: first + i as u32, ..*r });
                    }
                }
                Step::Delete(d) => {
                    if model.is_empty() { continue; }
                    let id = model.remove(d % model.len()).id;
                    hits.remove(&id);
                    prop_assert_eq!(t.delete(id), Ok(()));
                }
                Step::Query(ev, cur, req) => {
                    let req = vs_event_has_req(ev).then_some(req);
                    let want = naive(&model, ev, cur, req, "", false);
                    let got = t.classify(ev, cur, req, b"", FileId::NONE).map(|g| g.0);
                    prop_assert_eq!(got, want, "ev {} cur {} req {:?}", ev, cur, req);
                    if let Some(id) = got {
                        *hits.entry(id).or_default() += 1;
                    }
                }
            }
        }
        for r in t.iter() {
            prop_assert_eq!(r.spec.hits, hits.get(&r.spec.id).copied().unwrap_or(0), "rule {}", r.spec.id);
        }
    }
}

#[test]
fn validation_is_all_or_nothing() {
    let mut t = table(8);
    let good = VsRule {
        event: VS_EV_FORK,
        cur: 1,
        target: 2,
        ..VsRule::default()
    };
    let unknown_vs = VsRule { target: 99, ..good };
    assert_eq!(t.add(&[good, unknown_vs], slot_of), Err(Error::NotFound));
    assert!(t.is_empty(), "nothing half-installed");
    let bad = [
        VsRule { event: 0, ..good },
        VsRule {
            event: VS_EV_MAX + 1,
            ..good
        },
        VsRule { req: 1, ..good },
        VsRule {
            target: VS_TARGET_REQ,
            ..good
        },
        VsRule {
            path: path("/bin/x"),
            ..good
        },
        VsRule {
            event: VS_EV_EXEC,
            path: path("relative"),
            ..good
        },
        VsRule { _pad: 1, ..good },
        VsRule {
            event: VS_EV_EXEC,
            path: [b'/'; VS_PATH_LEN],
            ..good
        },
    ];
    for b in bad {
        assert_eq!(t.add(&[b], slot_of), Err(Error::Invalid), "{b:?}");
    }
    assert_eq!(t.add(&[], slot_of), Err(Error::Invalid));
    assert_eq!(t.add(&[good; 9], slot_of), Err(Error::NoSpace));
    assert_eq!(t.add(&[good; 2], slot_of), Ok(1));
    assert_eq!(t.add(&[good], slot_of), Ok(3));
    assert!(t.references(2) && t.references(1) && !t.references(3));
}

#[test]
fn hits_and_keep() {
    let mut t = table(8);
    let keep = VsRule {
        event: VS_EV_FORK,
        cur: 1,
        target: VS_TARGET_KEEP,
        ..VsRule::default()
    };
    let any = VsRule {
        event: VS_EV_FORK,
        cur: VS_ANY,
        target: 3,
        ..VsRule::default()
    };
    t.add(&[keep, any], slot_of).unwrap();
    assert_eq!(
        t.classify(VS_EV_FORK, 1, None, b"", FileId::NONE),
        Some((1, Verdict::Keep))
    );
    assert_eq!(
        t.classify(VS_EV_FORK, 2, None, b"", FileId::NONE),
        Some((2, Verdict::Slot(13)))
    );
    assert_eq!(
        t.classify(VS_EV_FORK, 2, None, b"", FileId::NONE),
        Some((2, Verdict::Slot(13)))
    );
    assert_eq!(t.classify(VS_EV_EXEC, 2, None, b"/x", file_of(b"/x")), None);
    let hits: Vec<u64> = t.iter().map(|r| r.spec.hits).collect();
    assert_eq!(hits, [1, 2]);
}

#[test]
fn path_rules_match_the_file_their_path_names() {
    let mut t = table(8);
    let r = VsRule {
        event: VS_EV_EXEC,
        target: 2,
        path: path("/usr/sbin/nginx"),
        ..VsRule::default()
    };
    let id = t.add(&[r], slot_of).unwrap();
    let real = file_of(b"/usr/sbin/nginx");
    let exe = |t: &mut RuleTable<_, _, _>, f| {
        t.classify(VS_EV_EXEC, 1, None, b"/usr/sbin/nginx", f)
            .map(|x| x.0)
    };
    // Not resolved yet: nothing matches, and the table asks for a resolution.
    assert_eq!(exe(&mut t, real), None);
    assert!(t.take_stale());
    assert!(!t.take_stale());
    t.set_file(id, b"/usr/sbin/nginx", real);
    assert_eq!(exe(&mut t, real), Some(id));
    assert!(!t.take_stale());
    // Another file under the same path (bind mount, or the file replaced): no match, stale.
    assert_eq!(exe(&mut t, SPOOF), None);
    assert!(t.take_stale());
    // A resolution for a path the rule does not have, or for a deleted rule, changes nothing.
    t.set_file(id, b"/bin/other", SPOOF);
    assert_eq!(exe(&mut t, real), Some(id));
    t.delete(id).unwrap();
    t.set_file(id, b"/usr/sbin/nginx", real);
    assert_eq!(exe(&mut t, real), None);
}
