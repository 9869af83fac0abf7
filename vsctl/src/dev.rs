// SPDX-License-Identifier: GPL-2.0
//! The control device: opens `/dev/vs` and wraps each ioctl of [`vs_core::abi`] in one safe
//! function. This is the only file of vsctl with `unsafe`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
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

    /// `VS_IOC_VERSION`.
    pub fn version(&self) -> Result<VsVersion, DevError> {
        let mut v = VsVersion::default();
        // SAFETY: VS_IOC_VERSION writes one `VsVersion` (an `_IOR` of exactly its size) to
        // the pointer; `v` is a live, exclusively borrowed local of that type, and every bit
        // pattern is a valid `VsVersion` (plain `u32`s).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_VERSION as libc::Ioctl,
                &mut v as *mut VsVersion,
            )
        };
        check(Op::Version, rc)?;
        Ok(v)
    }

    /// `VS_IOC_CREATE`: returns the id of the new VS.
    pub fn create(&self, req: &VsCreate) -> Result<u32, DevError> {
        let mut req = *req;
        // SAFETY: VS_IOC_CREATE reads one `VsCreate` from the pointer and writes one back
        // (an `_IOWR` of exactly its size); `req` is a live, exclusively borrowed local copy
        // of that type, and every bit pattern is a valid `VsCreate` (integers only).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_CREATE as libc::Ioctl,
                &mut req as *mut VsCreate,
            )
        };
        check(Op::Create, rc)?;
        Ok(req.id)
    }

    /// `VS_IOC_DESTROY`.
    pub fn destroy(&self, id: u32) -> Result<(), DevError> {
        // SAFETY: VS_IOC_DESTROY only reads one `u32` (an `_IOW` of 4 bytes) from the
        // pointer, which points to `id`, live for the whole call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_DESTROY as libc::Ioctl,
                &id as *const u32,
            )
        };
        check(Op::Destroy, rc)
    }

    /// `VS_IOC_GET`: everything about VS `id`.
    pub fn get(&self, id: u32) -> Result<VsInfo, DevError> {
        let mut info = VsInfo {
            id,
            ..VsInfo::default()
        };
        // SAFETY: VS_IOC_GET reads one `VsInfo` from the pointer and writes one back (an
        // `_IOWR` of exactly its size); `info` is a live, exclusively borrowed local of that
        // type, and every bit pattern is a valid `VsInfo` (integers only).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_GET as libc::Ioctl,
                &mut info as *mut VsInfo,
            )
        };
        check(Op::Get, rc)?;
        Ok(info)
    }

    /// `VS_IOC_SET`.
    pub fn set(&self, req: &VsSet) -> Result<(), DevError> {
        // SAFETY: VS_IOC_SET only reads one `VsSet` (an `_IOW` of exactly its size) from the
        // pointer, which comes from a reference live for the whole call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_SET as libc::Ioctl,
                req as *const VsSet,
            )
        };
        check(Op::Set, rc)
    }

    /// `VS_IOC_LIST`: every VS, parents before children. Retries with a bigger buffer while
    /// the module reports more VSs than the buffer held.
    pub fn list(&self) -> Result<Vec<VsInfo>, DevError> {
        let mut cap: u32 = 64;
        loop {
            let mut buf = vec![VsInfo::default(); cap as usize];
            let mut req = VsList {
                buf: buf.as_mut_ptr() as usize as u64,
                cap,
                count: 0,
            };
            // SAFETY: VS_IOC_LIST reads one `VsList` from the pointer and writes one back
            // (an `_IOWR` of exactly its size), and writes at most `req.cap` `VsInfo`s to
            // `req.buf`. `req` is a live, exclusively borrowed local; `req.buf` points to
            // `buf`, which holds exactly `cap` initialized `VsInfo`s and is neither moved nor
            // freed until the call returns. Every bit pattern is a valid `VsInfo`.
            let rc = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    VS_IOC_LIST as libc::Ioctl,
                    &mut req as *mut VsList,
                )
            };
            check(Op::List, rc)?;
            // The module never writes more than VS_MAX entries, so a bigger buffer is useless.
            if req.count <= cap || cap >= VS_MAX {
                buf.truncate(req.count.min(cap) as usize);
                return Ok(buf);
            }
            cap = req.count.saturating_add(16).min(VS_MAX);
        }
    }

    /// `VS_IOC_ADD_RULES`: install `rules` in one call, all or none. Returns the id of the
    /// first; the others follow consecutively.
    pub fn add_rules(&self, rules: &[VsRule]) -> Result<u32, DevError> {
        let mut req = VsRuleAdd {
            buf: rules.as_ptr() as usize as u64,
            count: u32::try_from(rules.len()).map_err(|_| DevError {
                op: Op::AddRules,
                errno: libc::E2BIG,
            })?,
            first_id: 0,
        };
        // SAFETY: VS_IOC_ADD_RULES reads one `VsRuleAdd` from the pointer and writes one back
        // (an `_IOWR` of exactly its size), and only reads `req.count` `VsRule`s from
        // `req.buf`. `req` is a live, exclusively borrowed local; `req.buf` points to `rules`,
        // a borrowed slice of exactly `count` initialized `VsRule`s that outlives the call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_ADD_RULES as libc::Ioctl,
                &mut req as *mut VsRuleAdd,
            )
        };
        check(Op::AddRules, rc)?;
        Ok(req.first_id)
    }

    /// `VS_IOC_DEL_RULE`.
    pub fn del_rule(&self, id: u32) -> Result<(), DevError> {
        // SAFETY: VS_IOC_DEL_RULE only reads one `u32` (an `_IOW` of 4 bytes) from the
        // pointer, which points to `id`, live for the whole call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_DEL_RULE as libc::Ioctl,
                &id as *const u32,
            )
        };
        check(Op::DelRule, rc)
    }

    /// `VS_IOC_LIST_RULES`: every rule in evaluation order. Retries with a bigger buffer
    /// while the module reports more rules than the buffer held.
    pub fn rules(&self) -> Result<Vec<VsRule>, DevError> {
        let mut cap: u32 = 64;
        loop {
            let mut buf = vec![VsRule::default(); cap as usize];
            let mut req = VsRuleList {
                buf: buf.as_mut_ptr() as usize as u64,
                cap,
                count: 0,
            };
            // SAFETY: VS_IOC_LIST_RULES reads one `VsRuleList` from the pointer and writes
            // one back (an `_IOWR` of exactly its size), and writes at most `req.cap`
            // `VsRule`s to `req.buf`. `req` is a live, exclusively borrowed local; `req.buf`
            // points to `buf`, which holds exactly `cap` initialized `VsRule`s and is neither
            // moved nor freed until the call returns. Every bit pattern is a valid `VsRule`.
            let rc = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    VS_IOC_LIST_RULES as libc::Ioctl,
                    &mut req as *mut VsRuleList,
                )
            };
            check(Op::ListRules, rc)?;
            // The module never holds more than VS_MAX_RULES rules.
            if req.count <= cap || cap >= VS_MAX_RULES {
                buf.truncate(req.count.min(cap) as usize);
                return Ok(buf);
            }
            cap = req.count.saturating_add(16).min(VS_MAX_RULES);
        }
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
        // SAFETY: VS_IOC_ADD_PROCESS reads one `VsProc` from the pointer and writes one back
        // (an `_IOWR` of exactly its size); `req` is a live, exclusively borrowed local of
        // that type, and every bit pattern is a valid `VsProc` (plain `u32`s).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_ADD_PROCESS as libc::Ioctl,
                &mut req as *mut VsProc,
            )
        };
        check(Op::AddProcess, rc)?;
        Ok(req.count)
    }

    /// `VS_IOC_WHICH`: the VS task `pid` belongs to.
    pub fn which(&self, pid: u32) -> Result<u32, DevError> {
        let mut req = VsWhich {
            pid,
            ..VsWhich::default()
        };
        // SAFETY: VS_IOC_WHICH reads one `VsWhich` from the pointer and writes one back (an
        // `_IOWR` of exactly its size); `req` is a live, exclusively borrowed local of that
        // type, and every bit pattern is a valid `VsWhich` (plain `u32`s).
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                VS_IOC_WHICH as libc::Ioctl,
                &mut req as *mut VsWhich,
            )
        };
        check(Op::Which, rc)?;
        Ok(req.id)
    }

    /// `VS_IOC_MEMBERS`: the pids of the tasks of VS `id`. Retries with a bigger buffer while
    /// the module reports more members than the buffer held.
    pub fn members(&self, id: u32) -> Result<Vec<u32>, DevError> {
        let mut cap: u32 = 256;
        loop {
            let mut buf = vec![0u32; cap as usize];
            let mut req = VsMembers {
                buf: buf.as_mut_ptr() as usize as u64,
                id,
                cap,
                count: 0,
                _pad: 0,
            };
            // SAFETY: VS_IOC_MEMBERS reads one `VsMembers` from the pointer and writes one
            // back (an `_IOWR` of exactly its size), and writes at most `req.cap` `u32`s to
            // `req.buf`. `req` is a live, exclusively borrowed local; `req.buf` points to
            // `buf`, which holds exactly `cap` initialized `u32`s and is neither moved nor
            // freed until the call returns.
            let rc = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    VS_IOC_MEMBERS as libc::Ioctl,
                    &mut req as *mut VsMembers,
                )
            };
            check(Op::Members, rc)?;
            // No more tasks than pids can exist (PID_MAX_LIMIT), so a bigger buffer is useless.
            if req.count <= cap || cap >= PID_MAX_LIMIT {
                buf.truncate(req.count.min(cap) as usize);
                return Ok(buf);
            }
            // Tasks may be forking meanwhile: leave some room.
            cap = req
                .count
                .saturating_add(req.count / 8 + 16)
                .min(PID_MAX_LIMIT);
        }
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
