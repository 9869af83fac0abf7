//! Property tests: random sequences of create/destroy/set against a deliberately naive model.

use proptest::prelude::*;
use std::collections::BTreeMap;
use vs_core::abi::*;
use vs_core::tree::{Error, Registry, Slot};

#[derive(Clone, Debug)]
struct MNode {
    parent: u32,
    name: String,
    own: [Option<u32>; 3],
}

/// The model: a map of id -> node, with every rule written the obvious way.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<u32, MNode>,
    cap: usize,
}

impl Model {
    fn new(cap: usize) -> Self {
        let mut m = Model {
            cap,
            ..Default::default()
        };
        m.nodes.insert(
            0,
            MNode {
                parent: 0,
                name: "root".into(),
                own: [Some(100), Some(100), Some(0)],
            },
        );
        m
    }
    fn depth(&self, mut id: u32) -> u32 {
        let mut d = 0;
        while id != 0 {
            id = self.nodes[&id].parent;
            d += 1;
        }
        d
    }
    fn effective(&self, mut id: u32, a: usize) -> (u32, u32) {
        loop {
            let n = &self.nodes[&id];
            if let Some(v) = n.own[a] {
                return (v, id);
            }
            id = n.parent;
        }
    }
    /// Every pool's load: the own shares of the VSs whose parent is in it, by (attr, pool).
    /// Written the obvious way: all of them, from scratch.
    fn loads(&self) -> BTreeMap<(usize, u32), u32> {
        let mut m = BTreeMap::new();
        for (&i, n) in &self.nodes {
            for a in 0..2 {
                if let (true, Some(v)) = (i != 0, n.own[a]) {
                    *m.entry((a, self.effective(n.parent, a).1)).or_default() += v;
                }
            }
        }
        m
    }
    fn budgets_hold(&self) -> bool {
        self.loads().values().all(|&l| l <= 100)
    }
    /// Whether the tree with VS `id` given parent `parent` and values `own` keeps every
    /// pool's budget.
    fn fits(&self, id: u32, parent: u32, own: &[Option<u32>; 3]) -> bool {
        let mut m = Model {
            nodes: self.nodes.clone(),
            cap: self.cap,
        };
        let name = self
            .nodes
            .get(&id)
            .map_or_else(String::new, |n| n.name.clone());
        m.nodes.insert(
            id,
            MNode {
                parent,
                name,
                own: *own,
            },
        );
        m.budgets_hold()
    }
    fn create(
        &mut self,
        name: &str,
        parent: u32,
        id: u32,
        own: [Option<u32>; 3],
    ) -> Result<u32, Error> {
        if own[..2].iter().flatten().any(|&v| v == 0 || v > 100) {
            return Err(Error::Invalid);
        }
        if !self.nodes.contains_key(&parent) {
            return Err(Error::NotFound);
        }
        if self.nodes.values().any(|n| n.name == name) || self.nodes.contains_key(&id) {
            return Err(Error::Exists);
        }
        if self.depth(parent) + 1 > VS_MAX_DEPTH
            || self.nodes.len() >= self.cap
            || !self.fits(id, parent, &own)
        {
            return Err(Error::NoSpace);
        }
        self.nodes.insert(
            id,
            MNode {
                parent,
                name: name.into(),
                own,
            },
        );
        Ok(id)
    }
    fn destroy(&mut self, id: u32) -> Result<(), Error> {
        if !self.nodes.contains_key(&id) {
            return Err(Error::NotFound);
        }
        if id == 0 || self.nodes.values().any(|n| n.parent == id) {
            return Err(Error::Busy);
        }
        self.nodes.remove(&id);
        Ok(())
    }
    fn set(
        &mut self,
        id: u32,
        attach: u32,
        detach: u32,
        vals: [Option<u32>; 3],
    ) -> Result<(), Error> {
        let vmask = (0..3)
            .filter(|&a| vals[a].is_some())
            .fold(0, |m, a| m | 1 << a);
        if attach & (detach | vmask) != 0 {
            return Err(Error::Invalid);
        }
        if !self.nodes.contains_key(&id) {
            return Err(Error::NotFound);
        }
        let mut own = self.nodes[&id].own;
        for a in 0..3 {
            if attach & (1 << a) != 0 {
                own[a] = None;
            }
            if detach & (1 << a) != 0 && own[a].is_none() {
                own[a] = Some(self.effective(id, a).0);
            }
            if let Some(v) = vals[a] {
                if a < 2 && (v == 0 || v > 100) {
                    return Err(Error::Invalid);
                }
                own[a] = Some(v);
            }
        }
        if id == 0 {
            if attach != 0 || own != self.nodes[&0].own {
                return Err(Error::Invalid);
            }
        } else if !self.fits(id, self.nodes[&id].parent, &own) {
            return Err(Error::NoSpace);
        }
        self.nodes.get_mut(&id).unwrap().own = own;
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        name: u8,
        parent: u8,
        id: u8,
        vals: [Option<u32>; 3],
    },
    Destroy(u8),
    Set {
        id: u8,
        attach: u32,
        detach: u32,
        vals: [Option<u32>; 3],
    },
}

fn val() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        (0u32..=110).prop_map(Some),
        (0u32..5).prop_map(Some),
        // Two of these overflow a pool, one fits: budgets come up often.
        (30u32..70).prop_map(Some)
    ]
}

/// An attach or detach mask: mostly none, so that a set that only changes values comes up.
fn mask() -> impl Strategy<Value = u32> {
    prop_oneof![2 => Just(0u32), 1 => 0u32..8]
}

fn op() -> impl Strategy<Value = Op> {
    // Small id and name spaces so that collisions, parents and budgets all come up.
    let id = 0u8..12;
    prop_oneof![
        4 => (0u8..14, id.clone(), id.clone(), [val(), val(), val()])
            .prop_map(|(name, parent, id, vals)| Op::Create { name, parent, id, vals }),
        2 => id.clone().prop_map(Op::Destroy),
        3 => (id, mask(), mask(), [val(), val(), val()])
            .prop_map(|(id, attach, detach, vals)| Op::Set { id, attach, detach, vals }),
    ]
}

/// Model ids 0..12 map to real ids: 0 root, odd ones global, even ones local.
fn real_id(i: u8) -> u32 {
    match i {
        0 => 0,
        i if i % 2 == 1 => u32::from(i),
        i => VS_LOCAL_MIN + u32::from(i),
    }
}

fn name_buf(s: &str) -> [u8; VS_NAME_LEN] {
    let mut b = [0u8; VS_NAME_LEN];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

fn attrs(vals: &[Option<u32>; 3]) -> VsAttrs {
    (0..3).fold(VsAttrs::default(), |a, i| match vals[i] {
        Some(v) => a.with(i as u32, v),
        None => a,
    })
}

fn check_same(reg: &Registry<Vec<Slot>>, model: &Model) {
    assert_eq!(reg.len() as usize, model.nodes.len());
    for (&id, m) in &model.nodes {
        let slot = reg.find(id).expect("model VS missing from registry");
        let info = reg.info(slot).unwrap();
        assert_eq!(info.parent, m.parent);
        assert_eq!(name_bytes(&info.name), m.name.as_bytes());
        let children = model
            .nodes
            .iter()
            .filter(|(&i, n)| i != 0 && n.parent == id)
            .count();
        assert_eq!(info.nr_children as usize, children);
        for a in 0..3 {
            let (eff, src) = model.effective(id, a);
            assert_eq!(
                info.attr[a].detached == 1,
                m.own[a].is_some(),
                "detached {id} {a}"
            );
            assert_eq!(
                (info.attr[a].effective, info.attr[a].source),
                (eff, src),
                "effective {id} {a}"
            );
        }
    }
    // Every pool keeps its budget, and the registry counts what is left of it the same way.
    assert!(model.budgets_hold());
    let loads = model.loads();
    for &id in model.nodes.keys() {
        for a in 0..2 {
            let pool = model.effective(id, a).1;
            let left = 100 - loads.get(&(a, pool)).copied().unwrap_or(0);
            assert_eq!(
                reg.share_left(reg.find(id).unwrap(), a),
                left,
                "left under {id} {a}"
            );
        }
    }
    // Every VS lies below the high-water mark, and the slot just under it is in use.
    let cap = reg.capacity();
    assert!((reg.high()..cap).all(|s| reg.node(s).is_none()));
    assert!(reg.node(reg.high() - 1).is_some());
    // Parents come before children in the listing.
    let order: Vec<u32> = reg
        .slots_by_depth()
        .map(|s| reg.node(s).unwrap().id)
        .collect();
    for (pos, id) in order.iter().enumerate() {
        let parent = model.nodes[id].parent;
        assert!(*id == 0 || order[..pos].contains(&parent));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn registry_matches_model(ops in prop::collection::vec(op(), 1..80), cap in 2usize..10) {
        let mut reg = Registry::new(vec![None; cap]).unwrap();
        let mut model = Model::new(cap);
        for op in ops {
            match op {
                Op::Create { name, parent, id, vals } => {
                    let name = format!("vs{name}");
                    let (p, i) = (real_id(parent), real_id(id));
                    let got = reg.create(&name_buf(&name), p, i, &attrs(&vals));
                    let want = if id == 0 { Err(Error::Invalid) } else { model.create(&name, p, i, vals) };
                    prop_assert_eq!(got, want, "create {} parent {} id {} {:?}", name, p, i, vals);
                }
                Op::Destroy(id) => {
                    let id = real_id(id);
                    prop_assert_eq!(reg.destroy(id), model.destroy(id), "destroy {}", id);
                }
                Op::Set { id, attach, detach, vals } => {
                    let id = real_id(id);
                    let got = reg.set(id, attach, detach, &attrs(&vals));
                    prop_assert_eq!(got, model.set(id, attach, detach, vals), "set {} {} {} {:?}", id, attach, detach, vals);
                }
            }
            check_same(&reg, &model);
        }
    }

    #[test]
    fn auto_ids_are_local_and_unique(n in 1usize..60) {
        let mut reg = Registry::new(vec![None; 64]).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            let id = reg.create(&name_buf(&format!("a{i}")), 0, VS_ID_AUTO, &VsAttrs::default()).unwrap();
            prop_assert!((VS_LOCAL_MIN..=VS_LOCAL_MAX).contains(&id));
            prop_assert!(seen.insert(id));
        }
    }
}
