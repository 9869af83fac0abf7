// SPDX-License-Identifier: GPL-2.0
//! `/dev/vs`: the misc device and its ioctls.
//!
//! One method per command; each reads its argument from userspace once, validates the copy,
//! does its work under the state lock without touching userspace, then writes the answer
//! after the lock is dropped. Mutations need CAP_SYS_ADMIN (checked before anything else, so
//! an unprivileged caller learns nothing from the error). Unknown commands get `ENOTTY`.

use core::mem::size_of;
use kernel::error::Error;
use kernel::prelude::*;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::UserSlice;

use crate::abi::*;
use crate::error::to_errno;
use crate::{arming, glue, net, state};

/// Called by the glue for every ioctl on `/dev/vs`.
#[no_mangle]
extern "C" fn vs_rust_ioctl(cmd: u32, arg: usize) -> isize {
    let ret = dispatch(cmd, arg);
    // Rules and limits decide which optional probes are armed (`arming`). Also after a
    // refused change: a batch of rules can be refused after part of the table changed.
    if matches!(
        cmd,
        VS_IOC_CREATE | VS_IOC_DESTROY | VS_IOC_SET | VS_IOC_ADD_RULES | VS_IOC_DEL_RULE
    ) {
        glue::arm();
    }
    match ret {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}

/// What the glue's `vs_glue_arm` arms: the optional probe groups the configuration needs.
#[no_mangle]
extern "C" fn vs_rust_armed_gates() -> u32 {
    state::with(|s| Ok(s.vs.armed_gates())).unwrap_or(0)
}

fn dispatch(cmd: u32, arg: usize) -> Result {
    match cmd {
        VS_IOC_VERSION => version(arg),
        VS_IOC_CREATE => create(admin()?, arg),
        VS_IOC_DESTROY => destroy(admin()?, arg),
        VS_IOC_GET => get(arg),
        VS_IOC_LIST => list(arg),
        VS_IOC_SET => set(admin()?, arg),
        VS_IOC_ADD_RULES => add_rules(admin()?, arg),
        VS_IOC_DEL_RULE => del_rule(admin()?, arg),
        VS_IOC_LIST_RULES => list_rules(arg),
        VS_IOC_ADD_PROCESS => add_process(admin()?, arg),
        VS_IOC_WHICH => which(arg),
        VS_IOC_MEMBERS => members(arg),
        _ => Err(ENOTTY),
    }
}

/// Proof that the caller passed the CAP_SYS_ADMIN check.
struct Admin(());

fn admin() -> Result<Admin> {
    if glue::capable_admin() {
        Ok(Admin(()))
    } else {
        Err(EPERM)
    }
}

fn read_user<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(arg, size_of::<T>()).reader().read::<T>()
}

fn write_user<T: AsBytes>(arg: usize, value: &T) -> Result {
    UserSlice::new(arg, size_of::<T>()).writer().write(value)
}

fn version(arg: usize) -> Result {
    let nr_vs = state::with(|s| Ok(s.vs.reg.len()))?;
    let v = VsVersion {
        abi: VS_ABI_VERSION,
        max_vs: VS_MAX,
        name_len: VS_NAME_LEN as u32,
        nr_vs,
    };
    write_user(arg, &v)
}

fn create(_: Admin, arg: usize) -> Result {
    let mut req: VsCreate = read_user(arg)?;
    req.id = state::with(|s| {
        let id = s
            .vs
            .create(&req.name, req.parent, req.id, &req.attrs)
            .map_err(to_errno)?;
        if let Some(slot) = s.vs.reg.find(id) {
            net::reset_slot(slot);
        }
        s.publish();
        Ok(id)
    })?;
    write_user(arg, &req)
}

fn destroy(_: Admin, arg: usize) -> Result {
    let id: u32 = read_user(arg)?;
    state::with(|s| {
        let slot = s.vs.reg.find(id);
        s.vs.destroy(id).map_err(to_errno)?;
        if let Some(slot) = slot {
            // Queued packets of the VS are no longer counted to the slot, and no listener
            // remembers it as a requester: a new VS may reuse it.
            net::reset_slot(slot);
            s.accept.forget_requester(slot);
        }
        s.publish();
        Ok(())
    })
}

fn set(_: Admin, arg: usize) -> Result {
    let req: VsSet = read_user(arg)?;
    if req._pad != 0 {
        return Err(EINVAL);
    }
    state::with(|s| {
        s.vs.reg
            .set(req.id, req.attach_mask, req.detach_mask, &req.values)
            .map_err(to_errno)?;
        s.publish();
        Ok(())
    })
}

/// Everything reported about the VS in `slot`.
fn info(s: &state::State, slot: usize) -> Result<VsInfo> {
    let mut info = s.vs.reg.info(slot).map_err(to_errno)?;
    info.stats = s.vs.stats(slot);
    net::add_counters(slot, &mut info.stats);
    if slot == 0 {
        // What the gates' fast paths counted for the root without the lock.
        use state::RootCount;
        let cpu = state::root_total(RootCount::CpuNs);
        info.stats.cpu_time_ns = info.stats.cpu_time_ns.wrapping_add(cpu);
        info.stats.cpu_subtree_ns = info.stats.cpu_subtree_ns.wrapping_add(cpu);
        info.stats.forks = info.stats.forks.wrapping_add(state::root_total(RootCount::Forks));
        info.stats.execs = info.stats.execs.wrapping_add(state::root_total(RootCount::Execs));
    }
    Ok(info)
}

fn get(arg: usize) -> Result {
    let req: VsInfo = read_user(arg)?;
    let info = state::with(|s| {
        s.vs.fold_charges();
        // The refused tag writes counted without the lock, into `tags_refused`.
        s.vs.fold_stays();
        let slot = s.vs.slot_of_id(req.id).ok_or(ENOENT)?;
        info(s, slot)
    })?;
    write_user(arg, &info)
}

fn list(arg: usize) -> Result {
    let mut req: VsList = read_user(arg)?;
    let cap = (req.cap as usize).min(VS_MAX as usize);
    // Allocate before taking the lock: nothing under it may sleep.
    let mut out = KVVec::<VsInfo>::with_capacity(cap, state::gfp_quiet())?;
    req.count = state::with(|s| {
        s.vs.fold_charges();
        s.vs.fold_stays();
        for slot in s.vs.reg.slots_by_depth().take(cap) {
            // Capacity was reserved above, so this push does not allocate.
            out.push(info(s, slot)?, GFP_ATOMIC)?;
        }
        Ok(s.vs.reg.len())
    })?;
    write_array(req.buf, &out)?;
    write_user(arg, &req)
}

/// Write `items` to the user array at `buf` (room for `cap` of them).
fn write_array<T: AsBytes>(buf: u64, items: &[T]) -> Result {
    let buf = usize::try_from(buf).map_err(|_| EFAULT)?;
    let bytes = items.len().checked_mul(size_of::<T>()).ok_or(EINVAL)?;
    let mut writer = UserSlice::new(buf, bytes).writer();
    for item in items {
        writer.write(item)?;
    }
    Ok(())
}

fn add_rules(_: Admin, arg: usize) -> Result {
    let mut req: VsRuleAdd = read_user(arg)?;
    let count = req.count as usize;
    if count == 0 || count > VS_MAX_RULES as usize {
        return Err(EINVAL);
    }
    let buf = usize::try_from(req.buf).map_err(|_| EFAULT)?;
    let bytes = count.checked_mul(size_of::<VsRule>()).ok_or(EINVAL)?;
    let mut reader = UserSlice::new(buf, bytes).reader();
    let mut rules = KVVec::<VsRule>::with_capacity(count, state::gfp_quiet())?;
    for _ in 0..count {
        rules.push(reader.read::<VsRule>()?, state::gfp_quiet())?;
    }
    // A rule for a gate this kernel would not let vs hook could never match (an unknown
    // event is left to the rule table's validation: EINVAL).
    let events = rules
        .iter()
        .fold(0u32, |m, r| m | 1u32.checked_shl(r.event).unwrap_or(0));
    if arming::unavailable(events, glue::missing_gates()) != 0 {
        // 6.12's `kernel::error::code` has no EOPNOTSUPP (ENOTSUPP is kernel-internal, 524).
        return Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)));
    }
    req.first_id = state::with(|s| s.vs.add_rules(&rules).map_err(to_errno))?;
    // Exec rules with a path match the file it names: resolve it before returning, so the
    // rule is in force when the caller goes on.
    if rules.iter().any(|r| r.path[0] != 0) {
        glue::paths_refresh_now();
    }
    write_user(arg, &req)
}

fn del_rule(_: Admin, arg: usize) -> Result {
    let id: u32 = read_user(arg)?;
    state::with(|s| s.vs.rules.delete(id).map_err(to_errno))
}

fn list_rules(arg: usize) -> Result {
    let mut req: VsRuleList = read_user(arg)?;
    let cap = (req.cap as usize).min(VS_MAX_RULES as usize);
    let mut out = KVVec::<VsRule>::with_capacity(cap, state::gfp_quiet())?;
    req.count = state::with(|s| {
        // The hits the object gates counted without the lock, into the rules' counts.
        s.vs.fold_stays();
        for rule in s.vs.rules.iter().take(cap) {
            // Capacity was reserved above, so this push does not allocate.
            out.push(rule.spec, GFP_ATOMIC)?;
        }
        Ok(s.vs.rules.len() as u32)
    })?;
    write_array(req.buf, &out)?;
    write_user(arg, &req)
}

fn add_process(_: Admin, arg: usize) -> Result {
    let mut req: VsProc = read_user(arg)?;
    if req.flags & !VS_PROC_TREE != 0 || req.count != 0 {
        return Err(EINVAL);
    }
    let vpid = i32::try_from(req.pid).map_err(|_| ESRCH)?;
    if vpid <= 0 {
        return Err(ESRCH);
    }
    let mut moved = 0u32;
    let mut failed: Option<Error> = None;
    glue::for_each_task(vpid, req.flags & VS_PROC_TREE != 0, &mut |pid, task| {
        if failed.is_some() {
            return;
        }
        let res = state::with(|s| {
            // Checked under the state lock, which the exit gate also takes: a task seen
            // alive here has not passed its exit gate, so its entry will be removed there.
            if task.exiting() {
                return Ok(());
            }
            let slot = s.vs.slot_of_id(req.id).ok_or(ENOENT)?;
            if s.vs.slot_of(pid as u64) != slot {
                s.vs.add_process(pid as u64, slot).map_err(to_errno)?;
                moved += 1;
            }
            Ok(())
        });
        if let Err(e) = res {
            failed = Some(e);
        }
    })?;
    // On a refusal part-way (EAGAIN at a limit), the tasks moved before it stay moved and
    // `count` says how many: the caller can report it, or move them back.
    req.count = moved;
    if let Some(e) = failed {
        let _ = write_user(arg, &req);
        return Err(e);
    }
    write_user(arg, &req)
}

fn which(arg: usize) -> Result {
    let mut req: VsWhich = read_user(arg)?;
    let vpid = i32::try_from(req.pid).map_err(|_| ESRCH)?;
    let pid = glue::global_pid(vpid)?;
    req.id = state::with(|s| Ok(s.vs.id_of(pid as u64)))?;
    write_user(arg, &req)
}

fn members(arg: usize) -> Result {
    let mut req: VsMembers = read_user(arg)?;
    if req._pad != 0 {
        return Err(EINVAL);
    }
    let cap = (req.cap as usize).min(VS_MAX_MEMBERS as usize);
    let mut out = KVVec::<u32>::with_capacity(cap, state::gfp_quiet())?;
    req.count = state::with(|s| {
        let slot = s.vs.slot_of_id(req.id).ok_or(ENOENT)?;
        let mut count = 0u32;
        // The root's members are implicit (every unclassified task): none are listed. Pids
        // are the caller's: tasks outside its pid namespace are neither listed nor counted.
        for e in
            s.vs.members
                .iter()
                .filter(|e| slot != 0 && usize::from(e.slot) == slot)
        {
            let Some(pid) = glue::pid_for_caller(e.pid as i32) else {
                continue;
            };
            if out.len() < cap {
                // Capacity was reserved above, so this push does not allocate.
                out.push(pid, GFP_ATOMIC)?;
            }
            count += 1;
        }
        Ok(count)
    })?;
    write_array(req.buf, &out)?;
    write_user(arg, &req)
}
