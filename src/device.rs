// SPDX-License-Identifier: GPL-2.0
//! `/dev/vs`: the misc device and its ioctls.
//!
//! One method per command; each reads its argument from userspace once, validates the copy,
//! does its work under the state lock without touching userspace, then writes the answer
//! after the lock is dropped. Mutations need CAP_SYS_ADMIN (checked before anything else, so
//! an unprivileged caller learns nothing from the error). Unknown commands get `ENOTTY`.

use core::mem::size_of;
use kernel::prelude::*;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::UserSlice;

use crate::abi::*;
use crate::error::to_errno;
use crate::{glue, state};

/// Called by the glue for every ioctl on `/dev/vs`.
#[no_mangle]
extern "C" fn vs_rust_ioctl(cmd: u32, arg: usize) -> isize {
    match dispatch(cmd, arg) {
        Ok(()) => 0,
        Err(e) => e.to_errno() as isize,
    }
}

fn dispatch(cmd: u32, arg: usize) -> Result {
    match cmd {
        VS_IOC_VERSION => version(arg),
        VS_IOC_CREATE => create(admin()?, arg),
        VS_IOC_DESTROY => destroy(admin()?, arg),
        VS_IOC_GET => get(arg),
        VS_IOC_LIST => list(arg),
        VS_IOC_SET => set(admin()?, arg),
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
    let nr_vs = state::with(|s| Ok(s.reg.len()))?;
    let v = VsVersion { abi: VS_ABI_VERSION, max_vs: VS_MAX, name_len: VS_NAME_LEN as u32, nr_vs };
    write_user(arg, &v)
}

fn create(_: Admin, arg: usize) -> Result {
    let mut req: VsCreate = read_user(arg)?;
    req.id = state::with(|s| {
        s.reg.create(&req.name, req.parent, req.id, &req.attrs).map_err(to_errno)
    })?;
    write_user(arg, &req)
}

fn destroy(_: Admin, arg: usize) -> Result {
    let id: u32 = read_user(arg)?;
    state::with(|s| s.reg.destroy(id).map_err(to_errno))
}

fn set(_: Admin, arg: usize) -> Result {
    let req: VsSet = read_user(arg)?;
    if req._pad != 0 {
        return Err(EINVAL);
    }
    state::with(|s| {
        s.reg
            .set(req.id, req.attach_mask, req.detach_mask, &req.values)
            .map_err(to_errno)
    })
}

/// Everything reported about the VS in `slot`.
fn info(s: &state::State, slot: usize) -> Result<VsInfo> {
    s.reg.info(slot).map_err(to_errno)
}

fn get(arg: usize) -> Result {
    let req: VsInfo = read_user(arg)?;
    let info = state::with(|s| {
        let slot = s.reg.find(req.id).ok_or(ENOENT)?;
        info(s, slot)
    })?;
    write_user(arg, &info)
}

fn list(arg: usize) -> Result {
    let mut req: VsList = read_user(arg)?;
    let cap = (req.cap as usize).min(VS_MAX as usize);
    let bytes = cap.checked_mul(size_of::<VsInfo>()).ok_or(EINVAL)?;
    let buf = usize::try_from(req.buf).map_err(|_| EFAULT)?;
    // Allocate before taking the lock: nothing under it may sleep.
    let mut out = KVVec::<VsInfo>::with_capacity(cap, GFP_KERNEL)?;
    req.count = state::with(|s| {
        for slot in s.reg.slots_by_depth().take(cap) {
            // Capacity was reserved above, so this push does not allocate.
            out.push(info(s, slot)?, GFP_ATOMIC)?;
        }
        Ok(s.reg.len())
    })?;
    let mut writer = UserSlice::new(buf, bytes).writer();
    for entry in out.iter() {
        writer.write(entry)?;
    }
    write_user(arg, &req)
}
