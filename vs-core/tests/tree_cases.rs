//! Example-based tests of the hierarchy rules that the README documents.

use vs_core::abi::*;
use vs_core::tree::{validate_name, Error, Registry, Slot};

fn name(s: &str) -> [u8; VS_NAME_LEN] {
    let mut b = [0u8; VS_NAME_LEN];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn reg(cap: usize) -> Registry<Vec<Slot>> {
    Registry::new(vec![None; cap]).unwrap()
}

#[test]
fn names() {
    assert_eq!(validate_name(&name("www1")), Ok(()));
    assert_eq!(validate_name(&name("_a.b-c")), Ok(()));
    assert_eq!(validate_name(&name(&"x".repeat(31))), Ok(()));
    for bad in ["", "1abc", "-x", "a b", "a/b", "é"] {
        assert_eq!(validate_name(&name(bad)), Err(Error::Invalid), "{bad:?}");
    }
    assert_eq!(
        validate_name(&[b'a'; VS_NAME_LEN]),
        Err(Error::Invalid),
        "no NUL"
    );
    let mut junk = name("ab");
    junk[5] = b'x';
    assert_eq!(validate_name(&junk), Err(Error::Invalid), "bytes after NUL");
}

#[test]
fn child_inherits_until_detached_and_again_after_attach() {
    let mut r = reg(8);
    let web = r
        .create(
            &name("web"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 50),
        )
        .unwrap();
    let www1 = r
        .create(&name("www1"), web, 1, &VsAttrs::default())
        .unwrap();
    let s = r.find(www1).unwrap();
    let i = r.info(s).unwrap();
    assert_eq!(
        (i.attr[0].detached, i.attr[0].effective, i.attr[0].source),
        (0, 50, web)
    );
    assert_eq!(i.attr[0].machine_ppm, 500_000);
    r.set(www1, 0, 0, &VsAttrs::default().with(VS_ATTR_CPU, 40))
        .unwrap();
    let i = r.info(s).unwrap();
    assert_eq!(
        (i.attr[0].own, i.attr[0].effective, i.attr[0].source),
        (40, 40, www1)
    );
    assert_eq!(i.attr[0].machine_ppm, 200_000);
    r.set(www1, 1 << VS_ATTR_CPU, 0, &VsAttrs::default())
        .unwrap();
    assert_eq!(r.info(s).unwrap().attr[0].source, web);
    // Detach copies the inherited value (the paper's servctl(DETACH PROCESSLIMIT)).
    r.set(web, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 7))
        .unwrap();
    r.set(www1, 0, 1 << VS_ATTR_PROCS, &VsAttrs::default())
        .unwrap();
    let i = r.info(s).unwrap();
    assert_eq!((i.attr[2].own, i.attr[2].source), (7, www1));
}

#[test]
fn share_budget() {
    let mut r = reg(8);
    let a = r
        .create(
            &name("a"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 75),
        )
        .unwrap();
    assert_eq!(
        r.create(
            &name("b"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_CPU, 26)
        ),
        Err(Error::NoSpace)
    );
    r.create(
        &name("b"),
        0,
        VS_ID_AUTO,
        &VsAttrs::default().with(VS_ATTR_CPU, 25),
    )
    .unwrap();
    assert_eq!(
        r.set(a, 0, 0, &VsAttrs::default().with(VS_ATTR_CPU, 76)),
        Err(Error::NoSpace)
    );
    r.set(a, 0, 0, &VsAttrs::default().with(VS_ATTR_CPU, 70))
        .unwrap();
    assert_eq!(r.share_left(0, 0), 5);
    // The net budget is separate.
    r.create(
        &name("c"),
        0,
        VS_ID_AUTO,
        &VsAttrs::default().with(VS_ATTR_NET, 100),
    )
    .unwrap();
}

#[test]
fn root_rules() {
    let mut r = reg(4);
    assert_eq!(r.destroy(0), Err(Error::Busy));
    assert_eq!(r.set(0, 1, 0, &VsAttrs::default()), Err(Error::Invalid));
    assert_eq!(
        r.set(0, 0, 0, &VsAttrs::default().with(VS_ATTR_CPU, 50)),
        Err(Error::Invalid)
    );
    assert_eq!(
        r.set(0, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 1000)),
        Err(Error::Invalid)
    );
    assert_eq!(
        r.create(&name("x"), 0, 0, &VsAttrs::default()),
        Err(Error::Invalid)
    );
    assert_eq!(
        r.create(&name("root"), 0, VS_ID_AUTO, &VsAttrs::default()),
        Err(Error::Exists)
    );
}

#[test]
fn ids_and_limits() {
    let mut r = reg(3);
    assert_eq!(
        r.create(&name("g"), 0, 64 - 1 + 1, &VsAttrs::default()),
        Ok(64)
    );
    assert_eq!(
        r.create(&name("h"), 0, 64, &VsAttrs::default()),
        Err(Error::Exists)
    );
    assert_eq!(
        r.create(&name("h"), 0, 0x8000_0000, &VsAttrs::default()),
        Err(Error::Invalid)
    );
    assert_eq!(
        r.create(&name("h"), 12345, VS_ID_AUTO, &VsAttrs::default()),
        Err(Error::NotFound)
    );
    assert_ne!(
        r.create(&name("h"), 0, VS_ID_AUTO, &VsAttrs::default()),
        Ok(64)
    );
    assert_eq!(
        r.create(&name("i"), 0, VS_ID_AUTO, &VsAttrs::default()),
        Err(Error::NoSpace)
    );
    assert_eq!(r.destroy(999), Err(Error::NotFound));
}

#[test]
fn busy_with_children_or_members_and_depth_limit() {
    let mut r = reg(64);
    let mut parent = 0;
    for d in 0..VS_MAX_DEPTH {
        parent = r
            .create(
                &name(&format!("d{d}")),
                parent,
                VS_ID_AUTO,
                &VsAttrs::default(),
            )
            .unwrap();
    }
    assert_eq!(
        r.create(&name("deep"), parent, VS_ID_AUTO, &VsAttrs::default()),
        Err(Error::NoSpace)
    );
    let top = r.find_name(b"d0").map(|s| r.node(s).unwrap().id).unwrap();
    assert_eq!(r.destroy(top), Err(Error::Busy));
    let leaf = r.find(parent).unwrap();
    r.join(leaf).unwrap();
    assert_eq!(r.destroy(parent), Err(Error::Busy));
    r.leave(leaf).unwrap();
    assert_eq!(r.leave(leaf), Err(Error::Invalid));
    r.reserve(leaf).unwrap();
    assert_eq!(
        r.destroy(parent),
        Err(Error::Busy),
        "a fork in progress counts"
    );
    r.unreserve(leaf).unwrap();
    r.destroy(parent).unwrap();
}

#[test]
fn thousand_create_destroy_reuses_slots() {
    let mut r = reg(VS_MAX as usize);
    for round in 0..3 {
        let ids: Vec<u32> = (0..1000)
            .map(|i| {
                r.create(
                    &name(&format!("r{round}v{i}")),
                    0,
                    VS_ID_AUTO,
                    &VsAttrs::default(),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(r.len(), 1001);
        for id in ids {
            r.destroy(id).unwrap();
        }
        assert_eq!(r.len(), 1);
    }
}

#[test]
fn process_limits_are_hierarchical_and_shared_until_detached() {
    let mut r = reg(8);
    let web = r
        .create(
            &name("web"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_PROCS, 3),
        )
        .unwrap();
    let a = r
        .create(&name("a"), web, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let b = r
        .create(
            &name("b"),
            web,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_PROCS, 10),
        )
        .unwrap();
    let (sw, sa, sb) = (r.find(web).unwrap(), r.find(a).unwrap(), r.find(b).unwrap());
    // a shares web's pool; b has its own limit but still counts against web's.
    r.join(sw).unwrap();
    r.reserve(sa).unwrap();
    r.commit(sa).unwrap();
    r.reserve(sb).unwrap();
    assert_eq!(
        r.reserve(sb),
        Err(Error::Again),
        "web's limit of 3 binds b too"
    );
    assert_eq!(r.reserve(sa), Err(Error::Again));
    r.unreserve(sb).unwrap();
    r.reserve(sa).unwrap();
    assert_eq!(r.node(sa).unwrap().nr_members, 1);
    assert_eq!(r.node(sa).unwrap().nr_reserved, 1);
    assert_eq!(r.node(sw).unwrap().subtree, 3);
    // Raising the limit makes room; the root's count covers only classified tasks.
    r.set(web, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 0))
        .unwrap();
    r.reserve(sb).unwrap();
    assert_eq!(r.node(0).unwrap().subtree, 4);
    assert_eq!(
        r.unreserve(sw),
        Err(Error::Invalid),
        "nothing reserved there"
    );
}

/// The reference for `share::pool_own_ppm_all`, one VS at a time from the registry's own
/// queries: the machine fraction of the VS's pool, less its detached children's shares.
fn pool_own_ppm(r: &Registry<Vec<Slot>>, slot: usize, attr: usize) -> u32 {
    let pool = r.effective(slot, attr).1;
    let whole = if pool == 0 {
        1_000_000
    } else {
        u64::from(r.machine_ppm(pool, attr))
    };
    (whole * u64::from(r.share_left(pool, attr)) / u64::from(VS_SHARE_MAX)) as u32
}

/// `share::pool_own_ppm_all` as a map slot -> own ppm.
fn own_ppm_all(r: &Registry<Vec<Slot>>, attr: usize) -> std::collections::HashMap<usize, u32> {
    let mut scratch = vec![vs_core::share::PoolScratch::default(); r.capacity()];
    let mut m = std::collections::HashMap::new();
    vs_core::share::pool_own_ppm_all(r, attr, &mut scratch, |slot, _, ppm| {
        m.insert(slot, ppm);
    });
    m
}

#[test]
fn pool_own_ppm_is_the_pool_less_its_detached_children() {
    let mut r = reg(8);
    let net = VS_ATTR_NET as usize;
    let attrs = |v: u32| VsAttrs {
        net_share: v,
        mask: 1 << VS_ATTR_NET,
        ..VsAttrs::default()
    };
    let a = r.create(&name("a"), 0, 100, &attrs(70)).unwrap();
    let b = r.create(&name("b"), 0, 101, &attrs(20)).unwrap();
    let a1 = r.create(&name("a1"), a, 102, &attrs(50)).unwrap();
    let a2 = r.create(&name("a2"), a, 103, &VsAttrs::default()).unwrap();
    let slot = |id| r.find(id).unwrap();
    // Root keeps 100 - 70 - 20 = 10 %; a keeps half its 70 % (a1 takes the other half);
    // a2 inherits a's pool; b 20 %.
    let all = own_ppm_all(&r, net);
    for (s, want) in [
        (0, 100_000),
        (slot(a), 350_000),
        (slot(a1), 350_000),
        (slot(a2), 350_000),
        (slot(b), 200_000),
    ] {
        assert_eq!(pool_own_ppm(&r, s, net), want, "reference, slot {s}");
        assert_eq!(all[&s], want, "pool_own_ppm_all, slot {s}");
    }
}

#[test]
fn pool_own_ppm_all_agrees_with_pool_own_ppm() {
    use vs_core::share::{pool_own_ppm_all, PoolScratch};
    let mut r = reg(64);
    // A random-ish tree: each new VS under an earlier one, shares that fit the budgets.
    let mut ids = vec![0u32];
    for i in 0..40u32 {
        let parent = ids[(i as usize * 7 + 3) % ids.len()];
        let mut attrs = VsAttrs::default();
        for (attr, bit) in [(VS_ATTR_CPU, 1), (VS_ATTR_NET, 2)] {
            if (i + bit) % 3 != 0 {
                let v = 1 + (i * 13 + bit * 5) % 30;
                if attr == VS_ATTR_CPU {
                    attrs.cpu_share = v;
                } else {
                    attrs.net_share = v;
                }
                attrs.mask |= 1 << attr;
            }
        }
        if let Ok(id) = r.create(&name(&format!("v{i}")), parent, VS_ID_AUTO, &attrs) {
            ids.push(id);
        }
    }
    assert!(ids.len() > 20, "the tree has {} VSs", ids.len());
    for attr in [VS_ATTR_CPU as usize, VS_ATTR_NET as usize] {
        let mut scratch = vec![PoolScratch::default(); 64];
        let mut seen = 0;
        pool_own_ppm_all(&r, attr, &mut scratch, |slot, pool, ppm| {
            // Both truncate at each level, in opposite orders: equal within 1 ppm per level.
            let one = pool_own_ppm(&r, slot, attr);
            assert!(
                ppm.abs_diff(one) <= VS_MAX_DEPTH,
                "slot {slot} attr {attr}: {ppm} vs {one}"
            );
            assert_eq!(pool, r.effective(slot, attr).1, "pool of slot {slot}");
            seen += 1;
        });
        assert_eq!(seen, ids.len());
    }
}

/// The fork probes are armed while some VS has a limit of its own: a limit set at creation or
/// later, gone when it is set back to unlimited, its VS destroyed, or the attribute attached.
#[test]
fn any_limit_follows_the_limits_in_force() {
    let mut r = reg(8);
    assert!(!r.any_limit(), "a fresh registry limits nothing");
    let web = r
        .create(&name("web"), 0, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    assert!(!r.any_limit(), "a VS without a limit of its own");
    r.set(web, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 5))
        .unwrap();
    assert!(r.any_limit());
    r.set(web, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 0))
        .unwrap();
    assert!(!r.any_limit(), "0 is unlimited");
    let db = r
        .create(
            &name("db"),
            0,
            VS_ID_AUTO,
            &VsAttrs::default().with(VS_ATTR_PROCS, 2),
        )
        .unwrap();
    assert!(r.any_limit(), "a limit given at creation");
    r.set(db, 1 << VS_ATTR_PROCS, 0, &VsAttrs::default())
        .unwrap();
    assert!(
        !r.any_limit(),
        "attached again: the parent's (none) applies"
    );
    r.set(db, 0, 0, &VsAttrs::default().with(VS_ATTR_PROCS, 2))
        .unwrap();
    assert!(r.any_limit());
    r.destroy(db).unwrap();
    assert!(!r.any_limit(), "destroyed with its VS");
}

#[test]
fn share_budget_is_per_pool() {
    let mut r = reg(8);
    let cpu = |v: u32| VsAttrs::default().with(VS_ATTR_CPU, v);
    let web = r.create(&name("web"), 0, VS_ID_AUTO, &cpu(80)).unwrap();
    // site1 and site2 keep web's share: VSs below them draw from web's pool.
    let site1 = r
        .create(&name("site1"), web, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let site2 = r
        .create(&name("site2"), web, VS_ID_AUTO, &VsAttrs::default())
        .unwrap();
    let a = r.create(&name("a"), site1, VS_ID_AUTO, &cpu(60)).unwrap();
    assert_eq!(
        r.share_left(r.find(site2).unwrap(), VS_ATTR_CPU as usize),
        40
    );
    assert_eq!(
        r.create(&name("b"), site2, VS_ID_AUTO, &cpu(60)),
        Err(Error::NoSpace),
        "a and b would take 120 % of web's pool"
    );
    let b = r.create(&name("b"), site2, VS_ID_AUTO, &cpu(40)).unwrap();
    assert_eq!(r.set(b, 0, 0, &cpu(41)), Err(Error::NoSpace));
    // site1 taking a share of its own moves a into site1's pool: b may grow.
    r.set(site1, 0, 0, &cpu(30)).unwrap();
    r.set(b, 0, 0, &cpu(70)).unwrap();
    // Giving it up again would put a's 60 back beside b's 70.
    assert_eq!(
        r.set(site1, 1 << VS_ATTR_CPU, 0, &VsAttrs::default()),
        Err(Error::NoSpace)
    );
    r.set(a, 0, 0, &cpu(30)).unwrap();
    r.set(site1, 1 << VS_ATTR_CPU, 0, &VsAttrs::default())
        .unwrap();
    assert_eq!(r.share_left(0, VS_ATTR_CPU as usize), 20);
    assert_eq!(r.share_left(r.find(web).unwrap(), VS_ATTR_CPU as usize), 0);
}
