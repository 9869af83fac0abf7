// SPDX-License-Identifier: GPL-2.0
//! The control device: opens `/dev/vs` and wraps each ioctl of [`vs_core::abi`] in one safe
//! function. This is the only file of vsctl with `unsafe`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use vs_core::abi::{
    VsCreate, VsInfo, VsList, VsMembers, VsProc, VsRule, VsRuleAdd, VsRuleList, VsSet, VsVersion,
    VsWhich, VS_DEVICE, VS_IOC_ADD_PROCESS, VS_IOC_ADD_RULES, VS_IOC_CREATE, VS_IOC_DEL_RULE,
    VS_IOC_DESTROY, VS_IOC_GET, VS_IOC_LIST, VS_IOC_LIST_RULES, VS_IOC_MEMBERS, VS_IOC_SET,
    VS_IOC_VERSION, VS_IOC_WHICH, VS_MAX, VS_MAX_RULES, VS_PROC_TREE,
};

/// The most pids the kernel hands out (`PID_MAX_LIMIT` on 64-bit), so the most tasks.
const PID_MAX_LIMIT: u32 = 4 * 1024 * 1024;

/// What vsctl was doing when the kernel said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Open,
    Version,
    Create,
    Destroy,
    Get,
    List,
    Set,
    AddRules,
    DelRule,
    ListRules,
    AddProcess,
    Which,
    Members,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Version => "version",
            Op::Create => "create",
            Op::Destroy => "destroy",
            Op::Get => "get",
            Op::List => "list",
            Op::Set => "set",
            Op::AddRules => "addrule",
            Op::DelRule => "delrule",
            Op::ListRules => "rules",
            Op::AddProcess => "addprocess",
            Op::Which => "which",
            Op::Members => "members",
        }
    }
}

/// A failed system call on the device: the operation and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevError {
    pub op: Op,
    pub errno: i32,
}

impl DevError {
    fn from_io(op: Op, e: &io::Error) -> Self {
        DevError {
            op,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for DevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.op.name(),
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for DevError {}

/// An open `/dev/vs`.
pub struct Device {
    file: File,
}

/// Turn an ioctl return value into a result, reading errno right after the call.
fn check(op: Op, rc: libc::c_int) -> Result<(), DevError> {
    if rc < 0 {
        Err(DevError::from_io(op, &io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

impl Device {
    /// Open [`VS_DEVICE`]: read-write, or read-only if the node does not allow writing (the
    /// module checks CAP_SYS_ADMIN per mutation, not the open mode).
    pub fn open() -> Result<Self, DevError> {
        Self::open_path(VS_DEVICE)
    }

    pub fn open_path(path: &str) -> Result<Self, DevError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                File::open(path).map_err(|e| DevError::from_io(Op::Open, &e))?
            }
            Err(e) => return Err(DevError::from_io(Op::Open, &e)),
        };
        Ok(Device { file })
    }

    /// The one place vsctl calls ioctl(2): command `cmd` with `arg`, whose size must be the
    /// one encoded in `cmd` (asserted).
    ///
    /// # Safety
    ///
    /// Every user buffer that `arg` points to (the `buf` field of the list commands) must be
    /// valid for the number of elements `arg` declares, and stay so for the call.
    unsafe fn call<T>(&self, op: Op, cmd: u32, arg: &mut T) -> Result<(), DevError> {
        assert_eq!(
            ((cmd >> 16) & 0x3fff) as usize,
            size_of::<T>(),
            "ioctl size of {cmd:#x}"
        );
        // SAFETY: the kernel reads and writes at most `size_of::<T>()` bytes at `arg` (the size
        // encoded in `cmd`, checked above), `arg` is a live exclusive borrow, and every ABI
        // struct is plain integers, valid for any bit pattern. Buffers `arg` points to are the
        // caller's to vouch for (see `# Safety`).
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as libc::Ioctl, arg as *mut T) };
        check(op, rc)
    }

    /// A command that reads one struct and points to no buffer.
    fn call_plain<T>(&self, op: Op, cmd: u32, arg: &mut T) -> Result<(), DevError> {
        // SAFETY: callers pass only commands whose argument carries no user pointer.
        unsafe { self.call(op, cmd, arg) }
    }

    /// Fetch a variable-length list: `ask(buf)` fills `buf` and returns how many elements
    /// exist; retried with a bigger buffer (up to `max`) while there are more than it held.
    fn fetch_all<E: Clone + Default>(
        &self,
        first_cap: u32,
        max: u32,
        mut ask: impl FnMut(&mut [E]) -> Result<u32, DevError>,
    ) -> Result<Vec<E>, DevError> {
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
    pub fn version(&self) -> Result<VsVersion, DevError> {
        let mut v = VsVersion::default();
        self.call_plain(Op::Version, VS_IOC_VERSION, &mut v)?;
        Ok(v)
    }

    /// `VS_IOC_CREATE`: returns the id of the new VS.
    pub fn create(&self, req: &VsCreate) -> Result<u32, DevError> {
        let mut req = *req;
        self.call_plain(Op::Create, VS_IOC_CREATE, &mut req)?;
        Ok(req.id)
    }

    /// `VS_IOC_DESTROY`.
    pub fn destroy(&self, id: u32) -> Result<(), DevError> {
        self.call_plain(Op::Destroy, VS_IOC_DESTROY, &mut { id })
    }

    /// `VS_IOC_GET`: everything about VS `id`.
    pub fn get(&self, id: u32) -> Result<VsInfo, DevError> {
        let mut info = VsInfo {
            id,
            ..VsInfo::default()
        };
        self.call_plain(Op::Get, VS_IOC_GET, &mut info)?;
        Ok(info)
    }

    /// `VS_IOC_SET`.
    pub fn set(&self, req: &VsSet) -> Result<(), DevError> {
        self.call_plain(Op::Set, VS_IOC_SET, &mut { *req })
    }

    /// `VS_IOC_LIST`: every VS, parents before children.
    pub fn list(&self) -> Result<Vec<VsInfo>, DevError> {
        self.fetch_all(64, VS_MAX, |buf| {
            let mut req = VsList {
                buf: buf.as_mut_ptr() as usize as u64,
                cap: buf.len() as u32,
                count: 0,
            };
            // SAFETY: `req.buf` points to `buf`, `req.cap` initialized `VsInfo`s, borrowed for
            // the call.
            unsafe { self.call(Op::List, VS_IOC_LIST, &mut req) }?;
            Ok(req.count)
        })
    }

    /// `VS_IOC_ADD_RULES`: install `rules` in one call, all or none. Returns the id of the
    /// first; the others follow consecutively.
    pub fn add_rules(&self, rules: &[VsRule]) -> Result<u32, DevError> {
        let count = u32::try_from(rules.len()).map_err(|_| DevError {
            op: Op::AddRules,
            errno: libc::E2BIG,
        })?;
        let mut req = VsRuleAdd {
            buf: rules.as_ptr() as usize as u64,
            count,
            first_id: 0,
        };
        // SAFETY: `req.buf` points to `rules`, `count` initialized `VsRule`s that the kernel
        // only reads, borrowed for the call.
        unsafe { self.call(Op::AddRules, VS_IOC_ADD_RULES, &mut req) }?;
        Ok(req.first_id)
    }

    /// `VS_IOC_DEL_RULE`.
    pub fn del_rule(&self, id: u32) -> Result<(), DevError> {
        self.call_plain(Op::DelRule, VS_IOC_DEL_RULE, &mut { id })
    }

    /// `VS_IOC_LIST_RULES`: every rule in evaluation order.
    pub fn rules(&self) -> Result<Vec<VsRule>, DevError> {
        self.fetch_all(64, VS_MAX_RULES, |buf| {
            let mut req = VsRuleList {
                buf: buf.as_mut_ptr() as usize as u64,
                cap: buf.len() as u32,
                count: 0,
            };
            // SAFETY: `req.buf` points to `buf`, `req.cap` initialized `VsRule`s, borrowed for
            // the call.
            unsafe { self.call(Op::ListRules, VS_IOC_LIST_RULES, &mut req) }?;
            Ok(req.count)
        })
    }

    /// `VS_IOC_ADD_PROCESS`: bind task `pid` (with `tree`: and its descendants) to VS `id`.
    /// Returns the number of tasks moved.
    pub fn add_process(&self, pid: u32, id: u32, tree: bool) -> Result<u32, DevError> {
        let mut req = VsProc {
            pid,
            id,
            flags: if tree { VS_PROC_TREE } else { 0 },
            count: 0,
        };
        self.call_plain(Op::AddProcess, VS_IOC_ADD_PROCESS, &mut req)?;
        Ok(req.count)
    }

    /// `VS_IOC_WHICH`: the VS task `pid` belongs to.
    pub fn which(&self, pid: u32) -> Result<u32, DevError> {
        let mut req = VsWhich {
            pid,
            ..VsWhich::default()
        };
        self.call_plain(Op::Which, VS_IOC_WHICH, &mut req)?;
        Ok(req.id)
    }

    /// `VS_IOC_MEMBERS`: the pids of the tasks of VS `id`.
    pub fn members(&self, id: u32) -> Result<Vec<u32>, DevError> {
        // No more tasks than pids can exist (PID_MAX_LIMIT).
        self.fetch_all(256, PID_MAX_LIMIT, |buf| {
            let mut req = VsMembers {
                buf: buf.as_mut_ptr() as usize as u64,
                id,
                cap: buf.len() as u32,
                count: 0,
                _pad: 0,
            };
            // SAFETY: `req.buf` points to `buf`, `req.cap` initialized `u32`s, borrowed for
            // the call.
            unsafe { self.call(Op::Members, VS_IOC_MEMBERS, &mut req) }?;
            Ok(req.count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_reports_open_enoent() {
        let e = Device::open_path("/nonexistent/vs-test-device").err();
        assert_eq!(
            e,
            Some(DevError {
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
            Some(DevError {
                op: Op::Version,
                errno: libc::ENOTTY
            })
        );
        assert_eq!(dev.list().err().map(|e| e.op), Some(Op::List));
        let refused = |r: Result<(), DevError>| r.err().map(|e| (e.op, e.errno));
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
            refused(dev.add_process(1, 64, true).map(drop)),
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
    }

    #[test]
    fn display_names_the_operation() {
        let e = DevError {
            op: Op::Create,
            errno: libc::EPERM,
        };
        assert!(e.to_string().starts_with("create: "), "{e}");
    }
}
