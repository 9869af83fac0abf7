// SPDX-License-Identifier: GPL-2.0
//! What went wrong, in words a person understands: each errno of each operation becomes a
//! message. The module answers with errnos only, so where one errno has several causes
//! (`ENOSPC`, `EEXIST`) the cause is worked out from a fresh `VS_IOC_LIST` answer, with the
//! module's own rules (`vs_core::tree`): this file only words them.

use std::io;

use vs_client::{Error as DevError, Op};
use vs_core::abi::{
    name_bytes, VsAttrs, VsInfo, VsRule, VsSet, VsVersion, VS_ABI_VERSION, VS_ANY, VS_ATTR_CPU,
    VS_ATTR_PROCS, VS_DEVICE, VS_MAX_DEPTH, VS_MAX_RULES, VS_NR_ATTRS, VS_ROOT, VS_SHARE_MAX,
    VS_TARGET_KEEP, VS_TARGET_REQ,
};
use vs_core::budget::{draws_from, overflow, pool_left, pool_of, Edit};
use vs_core::tree::{apply_set, create_room, NoRoom};

use crate::error::Error;
use crate::output::{fmt_limit, label};
use crate::resolve::by_id;
use crate::shares::Live;

/// The C library's text for `errno`.
pub fn strerror(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}

/// Causes that mean the same for every operation; the C library's text otherwise.
fn reason(errno: i32) -> String {
    match errno {
        libc::EPERM => "permission denied: needs CAP_SYS_ADMIN".into(),
        libc::EFAULT => "bad address (a bug in vsctl or the module)".into(),
        libc::ENOTTY => format!(
            "{VS_DEVICE} does not know this command (vsctl and vs.ko from different builds?)"
        ),
        _ => strerror(errno),
    }
}

/// Opening the device or asking its version failed.
pub fn open_failed(e: DevError) -> Error {
    let m = match (e.op, e.errno) {
        (Op::Open, libc::ENOENT) => {
            format!("vs module not loaded: {VS_DEVICE} missing (insmod vs.ko first)")
        }
        (Op::Open, libc::ENXIO | libc::ENODEV) => {
            format!("vs module not loaded: no driver behind {VS_DEVICE} (insmod vs.ko first)")
        }
        (Op::Open, libc::EACCES | libc::EPERM) => {
            format!("cannot open {VS_DEVICE}: permission denied")
        }
        (Op::Open, errno) => format!("cannot open {VS_DEVICE}: {}", strerror(errno)),
        (Op::Version, libc::ENOTTY | libc::EINVAL) => {
            format!("{VS_DEVICE} is not the vs control device: it does not answer VS_IOC_VERSION")
        }
        (op, errno) => format!("{}: {}", op.name(), reason(errno)),
    };
    Error::Failed(m)
}

/// Refuse a module that speaks another ABI.
pub fn check_abi(v: &VsVersion) -> Result<(), Error> {
    if v.abi == VS_ABI_VERSION {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "ABI mismatch: the vs module speaks ABI {}, this vsctl speaks ABI {VS_ABI_VERSION} \
             (use the vsctl built with the loaded vs.ko)",
            v.abi
        )))
    }
}

/// A read-only ioctl (`VS_IOC_LIST`, `VS_IOC_GET`, `VS_IOC_VERSION`) failed.
pub fn read_failed(e: DevError) -> Error {
    Error::Failed(format!("{}: {}", e.op.name(), reason(e.errno)))
}

/// `VS_IOC_GET` of a VS found in the list failed.
pub fn get_failed(e: DevError, target: &VsInfo) -> Error {
    if e.errno == libc::ENOENT {
        Error::Failed(format!(
            "no VS with id {} (destroyed meanwhile?)",
            target.id
        ))
    } else {
        read_failed(e)
    }
}

/// Share of `attr` left in the pool that the children of `parent` draw from (the module's
/// rule, `vs_core::budget`), and that pool's VS.
pub fn share_left(list: &[VsInfo], parent: u32, attr: u32) -> (u32, u32) {
    let live = Live::new(list);
    let pool = pool_of(&live.tree, live.key(parent), attr as usize);
    (pool_left(&live.tree, pool, attr as usize), live.id(pool))
}

/// "parent P has only N% cpu share left", or, when P shares the pool of an ancestor A, "parent
/// P draws its cpu share from A, which has only N% left".
fn no_share_left(list: &[VsInfo], parent: u32, attr: u32, left: u32, pool: u32) -> String {
    if pool == parent {
        format!(
            "parent {} has only {left}% {} share left",
            label_of(list, parent),
            share_name(attr)
        )
    } else {
        format!(
            "parent {} draws its {} share from {}, which has only {left}% left",
            label_of(list, parent),
            share_name(attr),
            label_of(list, pool)
        )
    }
}

fn share_name(attr: u32) -> &'static str {
    if attr == VS_ATTR_CPU {
        "cpu"
    } else {
        "net"
    }
}

/// How to call VS `id` in a message.
fn label_of(list: &[VsInfo], id: u32) -> String {
    match by_id(list, id) {
        Some(i) => label(i),
        None if id == VS_ROOT => "root".into(),
        None => format!("id {id}"),
    }
}

/// Everything a `create` failure is explained with; `list`, `nr_vs` and `max_vs` are read
/// after the failure.
pub struct CreateCtx<'a> {
    pub name: &'a str,
    pub id: Option<u32>,
    pub parent: &'a VsInfo,
    pub attrs: &'a VsAttrs,
    pub list: &'a [VsInfo],
    pub nr_vs: u32,
    pub max_vs: u32,
}

/// `VS_IOC_CREATE` failed with `errno`.
pub fn create_failed(errno: i32, c: &CreateCtx) -> Error {
    let what = match errno {
        libc::EEXIST => {
            let name_taken = c
                .list
                .iter()
                .any(|i| name_bytes(&i.name) == c.name.as_bytes());
            match c.id {
                _ if name_taken => format!("a VS named '{}' already exists", c.name),
                Some(id) if by_id(c.list, id).is_some() => {
                    format!("a VS with id {id} already exists")
                }
                _ => "a VS with that name or id already exists".into(),
            }
        }
        libc::ENOSPC => create_nospc(c),
        libc::ENOENT => format!("parent {} does not exist", label(c.parent)),
        libc::EINVAL => "the module refused the name, id or values as invalid".into(),
        _ => reason(errno),
    };
    Error::Failed(format!("create '{}': {what}", c.name))
}

/// Which of the three causes of `ENOSPC` stopped a `create`, by the module's own check.
fn create_nospc(c: &CreateCtx) -> String {
    let left = |attr: usize| share_left(c.list, c.parent.id, attr as u32).0;
    match create_room(
        c.parent.depth,
        c.nr_vs as usize,
        c.max_vs as usize,
        c.attrs,
        left,
    ) {
        Err(NoRoom::Depth) => format!("the hierarchy is at most {VS_MAX_DEPTH} levels deep"),
        Err(NoRoom::Full) => format!("the limit of {} VSs is reached", c.max_vs),
        Err(NoRoom::Budget(attr)) => {
            let (left, pool) = share_left(c.list, c.parent.id, attr);
            no_share_left(c.list, c.parent.id, attr, left, pool)
        }
        Ok(()) => {
            "no room: the VS limit, the depth limit or the parent's share budget is exhausted"
                .into()
        }
    }
}

/// The VSs that `rules` name (as the task's VS, the requester's or the target), each once.
fn rule_vss(rules: &[VsRule]) -> Vec<u32> {
    let mut ids: Vec<u32> = rules
        .iter()
        .flat_map(|r| [r.cur, r.req, r.target])
        .filter(|&id| id != VS_ANY && id != VS_TARGET_REQ && id != VS_TARGET_KEEP)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// `VS_IOC_ADD_RULES` of `rules` failed with `errno`; `list` is read after the failure.
pub fn addrule_failed(errno: i32, rules: &[VsRule], list: &[VsInfo]) -> Error {
    let what = match errno {
        libc::EINVAL => "invalid rule (the kernel refused: its event, requester, exec path or \
                         target is not valid; vsctl and vs.ko from different builds?)"
            .into(),
        libc::ENOENT => {
            let gone: Vec<String> = rule_vss(rules)
                .into_iter()
                .filter(|&id| by_id(list, id).is_none())
                .map(|id| id.to_string())
                .collect();
            if gone.is_empty() {
                "a VS in the rule no longer exists".into()
            } else {
                format!(
                    "a VS in the rule no longer exists (no VS with id {})",
                    gone.join(", ")
                )
            }
        }
        libc::ENOSPC => format!("the rule table is full ({VS_MAX_RULES} rules)"),
        libc::EOPNOTSUPP => "this kernel would not let vs hook the gate of this rule's event \
                             (see /sys/module/vs/parameters/unhooked and the kernel log)"
            .into(),
        _ => reason(errno),
    };
    Error::Failed(format!("addrule: {what}"))
}

/// `VS_IOC_DEL_RULE` of rule `id` failed with `errno`.
pub fn delrule_failed(errno: i32, id: u32) -> Error {
    let what = match errno {
        libc::ENOENT => format!("no rule with id {id}"),
        _ => reason(errno),
    };
    Error::Failed(format!("delrule: {what}"))
}

/// `VS_IOC_ADD_PROCESS` of `pid` to `target` failed with `errno`; `list` is read after the
/// failure.
pub fn addprocess_failed(errno: i32, pid: libc::pid_t, target: &VsInfo, list: &[VsInfo]) -> Error {
    let what = match errno {
        libc::ESRCH => format!("no process with pid {pid}"),
        libc::ENOENT => format!("no VS {} (destroyed meanwhile?)", label(target)),
        libc::EAGAIN => {
            // The limit in force may be an ancestor's, shared with the VSs inheriting it.
            let now = by_id(list, target.id).unwrap_or(target);
            let a = &now.attr[VS_ATTR_PROCS as usize];
            let from = if a.detached != 0 || a.source == target.id {
                String::new()
            } else {
                format!(", inherited from {}", label_of(list, a.source))
            };
            format!(
                "VS {} is at its process limit ({}{from})",
                label(target),
                fmt_limit(a.effective)
            )
        }
        libc::ENOSPC => "too many classified tasks (the module's membership table is full)".into(),
        libc::EINVAL => "the module refused the pid or the flags as invalid".into(),
        _ => reason(errno),
    };
    Error::Failed(format!("addprocess: {what}"))
}

/// `VS_IOC_WHICH` of `pid` failed.
pub fn which_failed(e: DevError, pid: libc::pid_t) -> Error {
    if e.errno == libc::ESRCH {
        Error::Failed(format!("which: no process with pid {pid}"))
    } else {
        read_failed(e)
    }
}

/// `destroy root`, refused before asking the module.
pub fn destroy_root() -> Error {
    Error::Failed("destroy root: the root VS cannot be destroyed".into())
}

/// `VS_IOC_DESTROY` of `target` failed with `errno`.
pub fn destroy_failed(errno: i32, target: &VsInfo) -> Error {
    let what = match errno {
        libc::EBUSY if target.id == VS_ROOT => "the root VS cannot be destroyed".into(),
        libc::EBUSY => "it still has child VSs, member processes or rules that name it".into(),
        libc::ENOENT => "no such VS (destroyed meanwhile?)".into(),
        _ => reason(errno),
    };
    Error::Failed(format!("destroy {}: {what}", label(target)))
}

/// `VS_IOC_SET` `req` on `target` failed with `errno`; `list` is read after the failure.
pub fn set_failed(errno: i32, target: &VsInfo, req: &VsSet, list: &[VsInfo]) -> Error {
    let what = match errno {
        libc::EINVAL if target.id == VS_ROOT => "the root VS cannot be changed: it always has \
                                                 100% cpu and net share and no process limit"
            .into(),
        libc::EINVAL => "the module refused the values or masks as invalid".into(),
        libc::ENOSPC => set_nospc(target, req, list),
        libc::ENOENT => "no such VS (destroyed meanwhile?)".into(),
        _ => reason(errno),
    };
    Error::Failed(format!("set {}: {what}", label(target)))
}

/// Which pool's share budget a `set` overflowed, by the module's own check.
fn set_nospc(target: &VsInfo, req: &VsSet, list: &[VsInfo]) -> String {
    let a = &target.attr;
    let own: [u32; VS_NR_ATTRS] = core::array::from_fn(|k| a[k].own);
    let detached = (0..VS_NR_ATTRS).fold(0, |m, k| m | (a[k].detached & 1) << k);
    let (own, detached) = apply_set(
        own,
        detached,
        |k| a[k].effective,
        req.attach_mask,
        req.detach_mask,
        &req.values,
    );
    let live = Live::new(list);
    let t = &live.tree;
    let Some(&key) = live.at.get(&target.id) else {
        return "no such VS (destroyed meanwhile?)".into();
    };
    let edit = Edit {
        tree: t,
        key,
        parent: t.parent_of(key),
        own: core::array::from_fn(|k| (detached & 1 << k != 0).then_some(own[k])),
        added: false,
    };
    match overflow(&edit, key) {
        // The VS's own share does not fit beside the others drawn from its pool.
        Some(o) if draws_from(&edit, key, o.attr) == Some(o.pool) => {
            let left = VS_SHARE_MAX.saturating_sub(o.load - own[o.attr].min(o.load));
            no_share_left(list, target.parent, o.attr as u32, left, live.id(o.pool))
        }
        // Giving up its own share moves the shares drawn from it to the pool above.
        Some(o) => format!(
            "without its own {} share, the shares drawn from it would go to {}'s pool, which \
             would then hold {}% (at most 100%)",
            share_name(o.attr as u32),
            label_of(list, live.id(o.pool)),
            o.load
        ),
        None => "a pool's share budget is exhausted (the own shares drawn from one pool add up \
                 to at most 100%)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tests::{sample, vs};
    use vs_core::abi::{VS_ATTR_NET, VS_MAX};

    fn msg(e: Error) -> String {
        assert_eq!(e.exit_code(), 1);
        e.message().to_string()
    }

    #[test]
    fn opening() {
        let e = |op, errno| msg(open_failed(DevError { op, errno }));
        assert_eq!(
            e(Op::Open, libc::ENOENT),
            "vs module not loaded: /dev/vs missing (insmod vs.ko first)"
        );
        assert!(e(Op::Open, libc::ENXIO).starts_with("vs module not loaded"));
        assert_eq!(
            e(Op::Open, libc::EACCES),
            "cannot open /dev/vs: permission denied"
        );
        assert!(e(Op::Version, libc::ENOTTY).contains("not the vs control device"));
        assert!(e(Op::Open, libc::EMFILE).starts_with("cannot open /dev/vs: "));
    }

    #[test]
    fn abi_version_must_match() {
        let mut v = VsVersion {
            abi: VS_ABI_VERSION,
            max_vs: 4096,
            name_len: 32,
            nr_vs: 1,
        };
        assert_eq!(check_abi(&v), Ok(()));
        v.abi = VS_ABI_VERSION + 1;
        let m = msg(check_abi(&v).err().unwrap_or(Error::Failed(String::new())));
        assert!(m.starts_with("ABI mismatch"), "{m}");
        assert!(m.contains(&format!("ABI {}", VS_ABI_VERSION + 1)), "{m}");
    }

    #[test]
    fn unknown_errno_uses_strerror() {
        let m = msg(read_failed(DevError {
            op: Op::List,
            errno: libc::EIO,
        }));
        assert_eq!(
            m,
            format!("list: {}", io::Error::from_raw_os_error(libc::EIO))
        );
        assert!(m.starts_with("list: Input/output error"), "{m}");
        let m = msg(read_failed(DevError {
            op: Op::Get,
            errno: libc::ENOTTY,
        }));
        assert!(
            m.starts_with("get: /dev/vs does not know this command"),
            "{m}"
        );
    }

    fn ctx<'a>(
        name: &'a str,
        id: Option<u32>,
        parent: &'a VsInfo,
        attrs: &'a VsAttrs,
        list: &'a [VsInfo],
    ) -> CreateCtx<'a> {
        CreateCtx {
            name,
            id,
            parent,
            attrs,
            list,
            nr_vs: list.len() as u32,
            max_vs: VS_MAX,
        }
    }

    #[test]
    fn create_errors() {
        let l = sample();
        let none = VsAttrs::default();
        let root = &l[0];
        let web = &l[1];
        assert_eq!(
            msg(create_failed(
                libc::EPERM,
                &ctx("www1", None, root, &none, &l)
            )),
            "create 'www1': permission denied: needs CAP_SYS_ADMIN"
        );
        assert_eq!(
            msg(create_failed(
                libc::EEXIST,
                &ctx("www1", None, root, &none, &l)
            )),
            "create 'www1': a VS named 'www1' already exists"
        );
        assert_eq!(
            msg(create_failed(
                libc::EEXIST,
                &ctx("new", Some(5), root, &none, &l)
            )),
            "create 'new': a VS with id 5 already exists"
        );
        assert_eq!(
            msg(create_failed(libc::ENOENT, &ctx("x", None, web, &none, &l))),
            "create 'x': parent 'web' does not exist"
        );
        assert_eq!(
            msg(create_failed(libc::EINVAL, &ctx("x", None, web, &none, &l))),
            "create 'x': the module refused the name, id or values as invalid"
        );
    }

    /// `sample()` with a second detached cpu child of root: web 50 + batch 45 leaves 5.
    fn sample_with_batch() -> Vec<VsInfo> {
        let mut l = sample();
        l.push(vs(
            66,
            0,
            "batch",
            1,
            [
                (true, 45, 66, 450_000),
                (false, 100, 0, 0),
                (false, 0, 0, 0),
            ],
        ));
        l
    }

    #[test]
    fn create_nospc_causes() {
        let l = sample_with_batch();
        let root = l[0];
        let ten = VsAttrs::default().with(VS_ATTR_CPU, 10);
        assert_eq!(
            msg(create_failed(
                libc::ENOSPC,
                &ctx("x", None, &root, &ten, &l)
            )),
            "create 'x': parent root has only 5% cpu share left"
        );
        let web = l[1];
        // web keeps root's net share, so its children draw from root's pool, where www1 has
        // 20% net of its own: 80 left, so 90 does not fit.
        let net = VsAttrs::default().with(VS_ATTR_NET, 90);
        assert_eq!(
            msg(create_failed(libc::ENOSPC, &ctx("x", None, &web, &net, &l))),
            "create 'x': parent 'web' draws its net share from root, which has only 80% left"
        );
        let mut full = ctx("x", None, &web, &net, &l);
        full.nr_vs = VS_MAX;
        assert_eq!(
            msg(create_failed(libc::ENOSPC, &full)),
            "create 'x': the limit of 4096 VSs is reached"
        );
        let mut deep = web;
        deep.depth = VS_MAX_DEPTH;
        assert_eq!(
            msg(create_failed(
                libc::ENOSPC,
                &ctx("x", None, &deep, &net, &l)
            )),
            "create 'x': the hierarchy is at most 32 levels deep"
        );
        let fits = VsAttrs::default()
            .with(VS_ATTR_CPU, 5)
            .with(VS_ATTR_PROCS, 1);
        assert!(msg(create_failed(
            libc::ENOSPC,
            &ctx("x", None, &root, &fits, &l)
        ))
        .starts_with("create 'x': no room"));
    }

    #[test]
    fn budget_arithmetic() {
        let l = sample();
        assert_eq!(share_left(&l, 0, VS_ATTR_CPU), (50, 0));
        assert_eq!(share_left(&l, 64, VS_ATTR_CPU), (100, 64));
        // www1's net 20 is drawn from root's pool: web, its parent, shares it.
        assert_eq!(share_left(&l, 0, VS_ATTR_NET), (80, 0));
        assert_eq!(share_left(&l, 64, VS_ATTR_NET), (80, 0));
    }

    #[test]
    fn destroy_errors() {
        let l = sample();
        assert_eq!(
            msg(destroy_root()),
            "destroy root: the root VS cannot be destroyed"
        );
        assert_eq!(
            msg(destroy_failed(libc::EBUSY, &l[0])),
            "destroy root: the root VS cannot be destroyed"
        );
        assert_eq!(
            msg(destroy_failed(libc::EBUSY, &l[1])),
            "destroy 'web': it still has child VSs, member processes or rules that name it"
        );
        assert_eq!(
            msg(destroy_failed(libc::EPERM, &l[1])),
            "destroy 'web': permission denied: needs CAP_SYS_ADMIN"
        );
    }

    fn rules_naming(ids: &[(u32, u32, u32)]) -> Vec<VsRule> {
        ids.iter()
            .map(|&(cur, req, target)| VsRule {
                event: vs_core::abi::VS_EV_ACCEPT,
                cur,
                req,
                target,
                ..VsRule::default()
            })
            .collect()
    }

    #[test]
    fn addrule_errors() {
        let l = sample();
        let ok = rules_naming(&[(65, VS_ANY, VS_TARGET_REQ), (64, 5, VS_TARGET_KEEP)]);
        assert_eq!(
            msg(addrule_failed(libc::ENOSPC, &ok, &l)),
            "addrule: the rule table is full (16384 rules)"
        );
        assert!(msg(addrule_failed(libc::EINVAL, &ok, &l))
            .starts_with("addrule: invalid rule (the kernel refused: "));
        assert_eq!(
            msg(addrule_failed(libc::ENOENT, &ok, &l)),
            "addrule: a VS in the rule no longer exists"
        );
        let gone = rules_naming(&[(65, 77, 78), (77, VS_ANY, 5)]);
        assert_eq!(
            msg(addrule_failed(libc::ENOENT, &gone, &l)),
            "addrule: a VS in the rule no longer exists (no VS with id 77, 78)"
        );
        assert_eq!(
            msg(addrule_failed(libc::EPERM, &ok, &l)),
            "addrule: permission denied: needs CAP_SYS_ADMIN"
        );
        assert_eq!(
            msg(addrule_failed(libc::EOPNOTSUPP, &ok, &l)),
            "addrule: this kernel would not let vs hook the gate of this rule's event (see \
             /sys/module/vs/parameters/unhooked and the kernel log)"
        );
    }

    #[test]
    fn delrule_errors() {
        assert_eq!(
            msg(delrule_failed(libc::ENOENT, 42)),
            "delrule: no rule with id 42"
        );
        assert_eq!(
            msg(delrule_failed(libc::EPERM, 42)),
            "delrule: permission denied: needs CAP_SYS_ADMIN"
        );
    }

    #[test]
    fn addprocess_errors() {
        let l = sample();
        let (web, www1, db) = (&l[1], &l[3], &l[2]);
        assert_eq!(
            msg(addprocess_failed(libc::ESRCH, 4321, web, &l)),
            "addprocess: no process with pid 4321"
        );
        assert_eq!(
            msg(addprocess_failed(libc::ENOENT, 4321, web, &l)),
            "addprocess: no VS 'web' (destroyed meanwhile?)"
        );
        // www1 has its own limit of 100.
        assert_eq!(
            msg(addprocess_failed(libc::EAGAIN, 1, www1, &l)),
            "addprocess: VS 'www1' is at its process limit (100)"
        );
        // A limit inherited from an ancestor is named.
        let mut l2 = l.clone();
        l2[0].attr[VS_ATTR_PROCS as usize].effective = 50;
        l2[2].attr[VS_ATTR_PROCS as usize].effective = 50;
        assert_eq!(
            msg(addprocess_failed(libc::EAGAIN, 1, db, &l2)),
            "addprocess: VS 'db' is at its process limit (50, inherited from root)"
        );
        assert_eq!(
            msg(addprocess_failed(libc::ENOSPC, 1, web, &l)),
            "addprocess: too many classified tasks (the module's membership table is full)"
        );
        assert_eq!(
            msg(addprocess_failed(libc::EPERM, 1, web, &l)),
            "addprocess: permission denied: needs CAP_SYS_ADMIN"
        );
    }

    #[test]
    fn which_errors() {
        let e = |errno| {
            msg(which_failed(
                DevError {
                    op: Op::Which,
                    errno,
                },
                99,
            ))
        };
        assert_eq!(e(libc::ESRCH), "which: no process with pid 99");
        assert!(e(libc::EIO).starts_with("which: Input/output error"));
    }

    #[test]
    fn set_errors() {
        let l = sample_with_batch();
        let web = l[1];
        let req = |values: VsAttrs, detach: u32| VsSet {
            id: 64,
            attach_mask: 0,
            detach_mask: detach,
            _pad: 0,
            values,
        };
        // web may grow to 55 (100 - batch's 45).
        assert_eq!(
            msg(set_failed(
                libc::ENOSPC,
                &web,
                &req(VsAttrs::default().with(VS_ATTR_CPU, 60), 0),
                &l
            )),
            "set 'web': parent root has only 55% cpu share left"
        );
        // Detaching net copies the inherited 100%, which does not fit beside... nothing: fits.
        assert!(msg(set_failed(
            libc::ENOSPC,
            &web,
            &req(VsAttrs::default(), 1 << VS_ATTR_NET),
            &l
        ))
        .contains("share budget is exhausted"));
        // db inherits cpu 100% from root; detaching copies 100 but only 5 are left.
        let db = l[2];
        let r = VsSet {
            id: 5,
            attach_mask: 0,
            detach_mask: 1 << VS_ATTR_CPU,
            _pad: 0,
            values: VsAttrs::default(),
        };
        assert_eq!(
            msg(set_failed(libc::ENOSPC, &db, &r, &l)),
            "set 'db': parent root has only 5% cpu share left"
        );
        assert!(msg(set_failed(libc::EINVAL, &l[0], &r, &l)).starts_with("set root: the root VS"));
        assert_eq!(
            msg(set_failed(libc::EPERM, &web, &r, &l)),
            "set 'web': permission denied: needs CAP_SYS_ADMIN"
        );
        assert!(
            msg(set_failed(libc::EIO, &web, &r, &l)).starts_with("set 'web': Input/output error")
        );
    }
    #[test]
    fn set_nospc_names_the_pool() {
        // site (cpu 80 of its own) under web draws from web's pool; web draws from root's,
        // beside batch's 45.
        let mut l = sample_with_batch();
        l.push(vs(
            67,
            64,
            "site",
            2,
            [
                (true, 80, 67, 400_000),
                (false, 100, 0, 0),
                (false, 0, 0, 0),
            ],
        ));
        let web = l[1];
        let attach = VsSet {
            id: 64,
            attach_mask: 1 << VS_ATTR_CPU,
            detach_mask: 0,
            _pad: 0,
            values: VsAttrs::default(),
        };
        assert_eq!(
            msg(set_failed(libc::ENOSPC, &web, &attach, &l)),
            "set 'web': without its own cpu share, the shares drawn from it would go to root's \
             pool, which would then hold 125% (at most 100%)"
        );
        // www1 keeps web's cpu: a share of its own is drawn from web's pool, beside site's 80.
        let www1 = *l.iter().find(|i| i.id == 65).unwrap();
        let grow = VsSet {
            id: 65,
            values: VsAttrs::default().with(VS_ATTR_CPU, 30),
            ..attach
        };
        let grow = VsSet {
            attach_mask: 0,
            ..grow
        };
        assert_eq!(
            msg(set_failed(libc::ENOSPC, &www1, &grow, &l)),
            "set 'www1': parent 'web' has only 20% cpu share left"
        );
    }
}
