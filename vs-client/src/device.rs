// SPDX-License-Identifier: GPL-2.0
//! An open `/dev/vs` and its ioctls: one safe method per command, the generic calls they are
//! made of, and the unsafe escape hatch.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use vs_core::abi::{
    IoctlArg, PlainArg, VsAttrs, VsCreate, VsInfo, VsList, VsMembers, VsProc, VsRule, VsRuleAdd,
    VsSet, VsVersion, VsWhich, VS_DEVICE, VS_IOC_ADD_PROCESS, VS_IOC_ADD_RULES, VS_IOC_CREATE,
    VS_IOC_DEL_RULE, VS_IOC_DESTROY, VS_IOC_GET, VS_IOC_LIST, VS_IOC_LIST_RULES, VS_IOC_MEMBERS,
    VS_IOC_SET, VS_IOC_VERSION, VS_IOC_WHICH, VS_MAX, VS_MAX_MEMBERS, VS_MAX_RULES, VS_NAME_LEN,
    VS_PARAMS_DIR, VS_PROC_TREE,
};

use crate::error::{Error, Op};

/// An open `/dev/vs`.
pub struct Device {
    file: File,
}

/// The argument size encoded in an ioctl command (`_IOC_SIZE`).
fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// `name` in the ABI's NUL-padded buffer. A name of 32 bytes or more fills the buffer with no
/// NUL, which the module refuses as it refuses any invalid name (`EINVAL`).
fn name_buf(name: &str) -> [u8; VS_NAME_LEN] {
    let mut buf = [0u8; VS_NAME_LEN];
    let n = name.len().min(VS_NAME_LEN);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    buf
}

impl Device {
    /// Open [`VS_DEVICE`]: read-write, or read-only if the node does not allow writing (the
    /// module checks CAP_SYS_ADMIN per mutation, not the open mode).
    pub fn open() -> Result<Self, Error> {
        Self::open_path(VS_DEVICE)
    }

    pub fn open_path(path: &str) -> Result<Self, Error> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                File::open(path).map_err(|e| Error::from_io(Op::Open, &e))?
            }
            Err(e) => return Err(Error::from_io(Op::Open, &e)),
        };
        Ok(Device { file })
    }

    /// The escape hatch: `ioctl(fd, cmd, arg)` with any command and any argument, and the
    /// return value. For tests that send what a well-behaved client never would.
    ///
    /// # Safety
    ///
    /// The kernel may write to `arg` (as many bytes as `cmd` encodes) and, for the list
    /// commands, through the user addresses in the struct there. Where those addresses are in
    /// this process's memory, the caller vouches that they may be written for the duration of
    /// the call (addresses that are not mapped only make the call fail with `EFAULT`).
    pub unsafe fn raw(&self, cmd: u32, arg: usize) -> Result<i32, Error> {
        // SAFETY: the fd is open for the call; what the kernel does at `arg` is the caller's
        // to vouch for (see `# Safety`).
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as libc::Ioctl, arg) };
        if rc < 0 {
            Err(Error::from_io(Op::of(cmd), &io::Error::last_os_error()))
        } else {
            Ok(rc)
        }
    }

    /// Command `cmd` on an ABI struct that may hold user addresses. Panics if `T` is not the
    /// size `cmd` encodes (the kernel would read or write past it).
    ///
    /// # Safety
    ///
    /// Every user address in `arg` (the `buf` of `VsList`, `VsRuleAdd`, `VsMembers`) must be
    /// valid for the elements `arg` declares (`cap` to write, `count` to read) for the call.
    pub unsafe fn call_with_buffers<T: IoctlArg>(
        &self,
        cmd: u32,
        arg: &mut T,
    ) -> Result<(), Error> {
        assert_eq!(ioc_size(cmd), size_of::<T>(), "ioctl size of {cmd:#x}");
        // SAFETY: the kernel writes at most `size_of::<T>()` bytes at `arg` (the size encoded
        // in `cmd`, checked above), `arg` is a live exclusive borrow, and `T: IoctlArg` is
        // plain integers, valid for any bit pattern. User addresses in it are the caller's to
        // vouch for (see `# Safety`).
        unsafe { self.raw(cmd, arg as *mut T as usize) }.map(drop)
    }

    /// Command `cmd` on an ABI struct that holds no user address. Panics if `T` is not the
    /// size `cmd` encodes.
    pub fn call<T: PlainArg>(&self, cmd: u32, arg: &mut T) -> Result<(), Error> {
        // SAFETY: a `PlainArg` holds no user address: the kernel touches `arg` only.
        unsafe { self.call_with_buffers(cmd, arg) }
    }

    /// Fetch a variable-length list: `ask(buf)` fills `buf` and returns how many elements
    /// exist; retried with a bigger buffer (up to `max`) while there are more than it held.
    fn fetch_all<E: Clone + Default>(
        first_cap: u32,
        max: u32,
        mut ask: impl FnMut(&mut [E]) -> Result<u32, Error>,
    ) -> Result<Vec<E>, Error> {
        let mut cap = first_cap.min(max);
        loop {
            let mut buf = vec![E::default(); cap as usize];
            let count = ask(&mut buf)?;
            // The module never reports more than `max`, so a bigger buffer is useless.
            if count <= cap || cap >= max {
                buf.truncate(count.min(cap) as usize);
                return Ok(buf);
            }
            cap = count.saturating_add(16).min(max);
        }
    }

    /// `VS_IOC_VERSION`.
    pub fn version(&self) -> Result<VsVersion, Error> {
        let mut v = VsVersion::default();
        self.call(VS_IOC_VERSION, &mut v)?;
        Ok(v)
    }

    /// `VS_IOC_CREATE`: a VS named `name` under `parent`, with id `id` (or `VS_ID_AUTO`) and
    /// the attributes of `attrs.mask` detached with their values. Returns the new id.
    pub fn create(&self, name: &str, parent: u32, id: u32, attrs: VsAttrs) -> Result<u32, Error> {
        let mut req = VsCreate {
            name: name_buf(name),
            parent,
            id,
            attrs,
        };
        self.call(VS_IOC_CREATE, &mut req)?;
        Ok(req.id)
    }

    /// `VS_IOC_DESTROY`.
    pub fn destroy(&self, id: u32) -> Result<(), Error> {
        self.call(VS_IOC_DESTROY, &mut { id })
    }

    /// `VS_IOC_GET`: everything about VS `id`.
    pub fn get(&self, id: u32) -> Result<VsInfo, Error> {
        let mut info = VsInfo {
            id,
            ..VsInfo::default()
        };
        self.call(VS_IOC_GET, &mut info)?;
        Ok(info)
    }

    /// `VS_IOC_SET`: on VS `id`, attach `attach` (a mask of `1 << VS_ATTR_*`), detach
    /// `detach`, then set `values`; all or nothing.
    pub fn set(&self, id: u32, attach: u32, detach: u32, values: VsAttrs) -> Result<(), Error> {
        let mut req = VsSet {
            id,
            attach_mask: attach,
            detach_mask: detach,
            _pad: 0,
            values,
        };
        self.call(VS_IOC_SET, &mut req)
    }

    /// Everything a `VsList` command lists (at most `max`).
    ///
    /// # Safety
    ///
    /// `E` must be the element the kernel writes for `cmd` (`VsInfo` for `VS_IOC_LIST`,
    /// `VsRule` for `VS_IOC_LIST_RULES`).
    unsafe fn list_of<E: Clone + Default>(&self, cmd: u32, max: u32) -> Result<Vec<E>, Error> {
        Self::fetch_all(64, max, |buf| {
            let mut req = VsList {
                buf: buf.as_mut_ptr() as u64,
                cap: buf.len() as u32,
                count: 0,
            };
            // SAFETY: `req.buf` points to `buf`, `req.cap` initialized elements of the type
            // the kernel writes for `cmd` (the caller's promise), borrowed for the call.
            unsafe { self.call_with_buffers(cmd, &mut req) }?;
            Ok(req.count)
        })
    }

    /// `VS_IOC_LIST`: every VS, parents before children.
    pub fn list(&self) -> Result<Vec<VsInfo>, Error> {
        // SAFETY: `VS_IOC_LIST` writes `VsInfo`s.
        unsafe { self.list_of(VS_IOC_LIST, VS_MAX) }
    }

    /// `VS_IOC_ADD_RULES`: install `rules` in one call, all or none. Returns the id of the
    /// first; the others follow consecutively.
    pub fn add_rules(&self, rules: &[VsRule]) -> Result<u32, Error> {
        let count = u32::try_from(rules.len()).map_err(|_| Error {
            op: Op::AddRules,
            errno: libc::E2BIG,
        })?;
        let mut req = VsRuleAdd {
            buf: rules.as_ptr() as u64,
            count,
            first_id: 0,
        };
        // SAFETY: `req.buf` points to `rules`, `count` initialized `VsRule`s that the kernel
        // only reads, borrowed for the call.
        unsafe { self.call_with_buffers(VS_IOC_ADD_RULES, &mut req) }?;
        Ok(req.first_id)
    }

    /// `VS_IOC_DEL_RULE`.
    pub fn del_rule(&self, id: u32) -> Result<(), Error> {
        self.call(VS_IOC_DEL_RULE, &mut { id })
    }

    /// `VS_IOC_LIST_RULES`: every rule in evaluation order.
    pub fn rules(&self) -> Result<Vec<VsRule>, Error> {
        // SAFETY: `VS_IOC_LIST_RULES` writes `VsRule`s.
        unsafe { self.list_of(VS_IOC_LIST_RULES, VS_MAX_RULES) }
    }

    /// `VS_IOC_ADD_PROCESS`: bind task `pid` (its threads; with `tree`, its descendants too)
    /// to VS `id`. Returns the number of tasks moved.
    pub fn add_process(&self, id: u32, pid: libc::pid_t, tree: bool) -> Result<u32, Error> {
        let mut req = VsProc {
            pid: pid as u32,
            id,
            flags: if tree { VS_PROC_TREE } else { 0 },
            count: 0,
        };
        self.call(VS_IOC_ADD_PROCESS, &mut req)?;
        Ok(req.count)
    }

    /// `VS_IOC_WHICH`: the VS task `pid` belongs to.
    pub fn which(&self, pid: libc::pid_t) -> Result<u32, Error> {
        let mut req = VsWhich {
            pid: pid as u32,
            ..VsWhich::default()
        };
        self.call(VS_IOC_WHICH, &mut req)?;
        Ok(req.id)
    }

    /// `VS_IOC_MEMBERS`: the pids of the tasks of VS `id`, sorted.
    pub fn members(&self, id: u32) -> Result<Vec<u32>, Error> {
        let mut pids = Self::fetch_all(256, VS_MAX_MEMBERS, |buf| {
            let mut req = VsMembers {
                buf: buf.as_mut_ptr() as u64,
                id,
                cap: buf.len() as u32,
                count: 0,
                _pad: 0,
            };
            // SAFETY: `req.buf` points to `buf`, `req.cap` initialized `u32`s, borrowed for
            // the call.
            unsafe { self.call_with_buffers(VS_IOC_MEMBERS, &mut req) }?;
            Ok(req.count)
        })?;
        pids.sort_unstable();
        Ok(pids)
    }
}

/// A parameter of the loaded module (`VS_PARAMS_DIR/<name>`, see `VS_PARAM_*`), if it can be
/// read as a number.
pub fn module_param(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("{VS_PARAMS_DIR}/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_reports_open_enoent() {
        let e = Device::open_path("/nonexistent/vs-test-device").err();
        assert_eq!(
            e,
            Some(Error {
                op: Op::Open,
                errno: libc::ENOENT
            })
        );
    }

    #[test]
    fn non_vs_file_refuses_the_ioctls() {
        // /dev/null is a character device without ioctls: the kernel says ENOTTY.
        let dev = match Device::open_path("/dev/null") {
            Ok(d) => d,
            Err(_) => return, // no /dev/null in this sandbox: nothing to check
        };
        assert_eq!(
            dev.version().err(),
            Some(Error {
                op: Op::Version,
                errno: libc::ENOTTY
            })
        );
        assert_eq!(dev.list().err().map(|e| e.op), Some(Op::List));
        let refused = |r: Result<(), Error>| r.err().map(|e| (e.op, e.errno));
        assert_eq!(
            refused(dev.add_rules(&[VsRule::default()]).map(drop)),
            Some((Op::AddRules, libc::ENOTTY))
        );
        assert_eq!(refused(dev.del_rule(1)), Some((Op::DelRule, libc::ENOTTY)));
        assert_eq!(
            refused(dev.rules().map(drop)),
            Some((Op::ListRules, libc::ENOTTY))
        );
        assert_eq!(
            refused(dev.add_process(64, 1, true).map(drop)),
            Some((Op::AddProcess, libc::ENOTTY))
        );
        assert_eq!(
            refused(dev.which(1).map(drop)),
            Some((Op::Which, libc::ENOTTY))
        );
        assert_eq!(
            refused(dev.members(64).map(drop)),
            Some((Op::Members, libc::ENOTTY))
        );
        // SAFETY: a null argument: the call fails before the kernel looks at it.
        let raw = unsafe { dev.raw(0xb9ff, 0) };
        assert_eq!(
            raw.err().map(|e| (e.op, e.errno)),
            Some((Op::Ioctl, libc::ENOTTY))
        );
    }

    #[test]
    fn names_that_do_not_fit_keep_no_nul() {
        assert_eq!(&name_buf("www1")[..5], b"www1\0");
        assert!(!name_buf(&"x".repeat(40)).contains(&0));
        assert!(!name_buf(&"x".repeat(32)).contains(&0));
    }

    #[test]
    fn command_sizes() {
        assert_eq!(ioc_size(VS_IOC_LIST), size_of::<VsList>());
        assert_eq!(ioc_size(VS_IOC_DESTROY), 4);
    }
}
