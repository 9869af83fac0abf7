// SPDX-License-Identifier: GPL-2.0
//! Raw access to `/dev/vs` for tests: any command number, any pointer, errno back as is, so
//! that tests can send what a well-behaved client never would. Plus the fixture.

use std::fs::File;
use std::os::fd::AsRawFd;
use vs_core::abi::*;

/// An errno, as the kernel returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const EPERM: Errno = Errno(libc::EPERM);
pub const ENOENT: Errno = Errno(libc::ENOENT);
pub const EFAULT: Errno = Errno(libc::EFAULT);
pub const EBUSY: Errno = Errno(libc::EBUSY);
pub const EEXIST: Errno = Errno(libc::EEXIST);
pub const EINVAL: Errno = Errno(libc::EINVAL);
pub const ENOTTY: Errno = Errno(libc::ENOTTY);
pub const ENOSPC: Errno = Errno(libc::ENOSPC);
pub const EAGAIN: Errno = Errno(libc::EAGAIN);
pub const ESRCH: Errno = Errno(libc::ESRCH);

/// `/dev/vs`, open.
pub struct Dev(File);

impl Dev {
    pub fn open() -> Result<Dev, Errno> {
        File::open(VS_DEVICE)
            .map(Dev)
            .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// ioctl with an arbitrary command and argument.
    pub fn raw(&self, cmd: u32, arg: usize) -> Result<i32, Errno> {
        // SAFETY: the kernel validates `arg`; a bad pointer yields EFAULT, which is what some
        // tests want. Memory we own is only written within the size encoded in `cmd`, which
        // callers pass together with a buffer of that size (see `call`).
        let ret = unsafe { libc::ioctl(self.0.as_raw_fd(), cmd as _, arg) };
        if ret < 0 {
            Err(Errno(
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO),
            ))
        } else {
            Ok(ret)
        }
    }

    /// ioctl `cmd` on `*arg`, whose size must be the one encoded in `cmd`.
    pub fn call<T>(&self, cmd: u32, arg: &mut T) -> Result<i32, Errno> {
        assert_eq!(
            ((cmd >> 16) & 0x3fff) as usize,
            std::mem::size_of::<T>(),
            "size mismatch for {cmd:#x}"
        );
        self.raw(cmd, arg as *mut T as usize)
    }

    pub fn version(&self) -> Result<VsVersion, Errno> {
        let mut v = VsVersion::default();
        self.call(VS_IOC_VERSION, &mut v).map(|_| v)
    }

    pub fn create(&self, name: &str, parent: u32, id: u32, attrs: VsAttrs) -> Result<u32, Errno> {
        let mut c = VsCreate {
            name: name_buf(name),
            parent,
            id,
            attrs,
        };
        self.call(VS_IOC_CREATE, &mut c).map(|_| c.id)
    }

    /// Create under root with an auto id and no attributes.
    pub fn create_simple(&self, name: &str) -> Result<u32, Errno> {
        self.create(name, VS_ROOT, VS_ID_AUTO, VsAttrs::default())
    }

    pub fn destroy(&self, id: u32) -> Result<(), Errno> {
        let mut id = id;
        self.call(VS_IOC_DESTROY, &mut id).map(|_| ())
    }

    pub fn get(&self, id: u32) -> Result<VsInfo, Errno> {
        let mut i = VsInfo {
            id,
            ..Default::default()
        };
        self.call(VS_IOC_GET, &mut i).map(|_| i)
    }

    pub fn set(&self, id: u32, attach: u32, detach: u32, values: VsAttrs) -> Result<(), Errno> {
        let mut s = VsSet {
            id,
            attach_mask: attach,
            detach_mask: detach,
            _pad: 0,
            values,
        };
        self.call(VS_IOC_SET, &mut s).map(|_| ())
    }

    /// Install `rules` atomically; the id of the first.
    pub fn add_rules(&self, rules: &[VsRule]) -> Result<u32, Errno> {
        let mut a = VsRuleAdd {
            buf: rules.as_ptr() as u64,
            count: rules.len() as u32,
            first_id: 0,
        };
        self.call(VS_IOC_ADD_RULES, &mut a).map(|_| a.first_id)
    }

    pub fn del_rule(&self, id: u32) -> Result<(), Errno> {
        let mut id = id;
        self.call(VS_IOC_DEL_RULE, &mut id).map(|_| ())
    }

    pub fn rules(&self) -> Result<Vec<VsRule>, Errno> {
        let mut buf = vec![VsRule::default(); VS_MAX_RULES as usize];
        let mut l = VsRuleList {
            buf: buf.as_mut_ptr() as u64,
            cap: VS_MAX_RULES,
            count: 0,
        };
        self.call(VS_IOC_LIST_RULES, &mut l)?;
        buf.truncate(l.count as usize);
        Ok(buf)
    }

    /// Bind `pid` (its threads; with `tree` its descendants too) to VS `id`; tasks moved.
    pub fn add_process(&self, id: u32, pid: i32, tree: bool) -> Result<u32, Errno> {
        let mut p = VsProc {
            pid: pid as u32,
            id,
            flags: if tree { VS_PROC_TREE } else { 0 },
            count: 0,
        };
        self.call(VS_IOC_ADD_PROCESS, &mut p).map(|_| p.count)
    }

    pub fn which(&self, pid: i32) -> Result<u32, Errno> {
        let mut w = VsWhich {
            pid: pid as u32,
            ..Default::default()
        };
        self.call(VS_IOC_WHICH, &mut w).map(|_| w.id)
    }

    /// Member pids of VS `id`, sorted.
    pub fn members(&self, id: u32) -> Result<Vec<u32>, Errno> {
        let mut buf = vec![0u32; 1 << 16];
        let mut m = VsMembers {
            buf: buf.as_mut_ptr() as u64,
            id,
            cap: 1 << 16,
            count: 0,
            _pad: 0,
        };
        self.call(VS_IOC_MEMBERS, &mut m)?;
        buf.truncate(m.count as usize);
        buf.sort_unstable();
        Ok(buf)
    }

    /// Every VS, parents first.
    pub fn list(&self) -> Result<Vec<VsInfo>, Errno> {
        let mut buf = vec![VsInfo::default(); VS_MAX as usize];
        let mut l = VsList {
            buf: buf.as_mut_ptr() as u64,
            cap: VS_MAX,
            count: 0,
        };
        self.call(VS_IOC_LIST, &mut l)?;
        buf.truncate(l.count as usize);
        Ok(buf)
    }
}

/// A NUL-padded name buffer (truncated silently: tests that want bad names build them).
pub fn name_buf(name: &str) -> [u8; VS_NAME_LEN] {
    let mut b = [0u8; VS_NAME_LEN];
    let n = name.len().min(VS_NAME_LEN);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// A rule in the ABI's form: `(event, cur, req=req) -> (target)`.
pub fn rule(event: u32, cur: u32, req: u32, target: u32) -> VsRule {
    VsRule {
        event,
        cur,
        req,
        target,
        ..VsRule::default()
    }
}

/// The fixture: `/dev/vs` open, and on drop every VS but the root destroyed (children
/// first), so each test starts from the module's initial state whatever the previous did.
pub struct Fixture {
    pub dev: Dev,
}

impl Fixture {
    /// Open the device; a missing module is a failure, not a skip: the runner loads it.
    pub fn new() -> Result<Fixture, crate::Fail> {
        let dev = Dev::open().map_err(|e| crate::Fail::Fail(format!("open {VS_DEVICE}: {e:?}")))?;
        let f = Fixture { dev };
        f.cleanup();
        Ok(f)
    }

    fn cleanup(&self) {
        if let Ok(rules) = self.dev.rules() {
            // Last first: deleting the newest rule moves nothing in the kernel's arrays.
            for r in rules.iter().rev() {
                let _ = self.dev.del_rule(r.id);
            }
        }
        // This process (and its threads) back to the root, so its VSs can go; and any task a
        // previous test left behind in a VS (the harness kills them, but they may be exiting).
        let _ = self
            .dev
            .add_process(VS_ROOT, std::process::id() as i32, false);
        for i in self
            .dev
            .list()
            .unwrap_or_default()
            .iter()
            .filter(|i| i.id != VS_ROOT)
        {
            for pid in self.dev.members(i.id).unwrap_or_default() {
                let _ = self.dev.add_process(VS_ROOT, pid as i32, false);
            }
        }
        if let Ok(mut all) = self.dev.list() {
            all.sort_by_key(|i| std::cmp::Reverse(i.depth));
            for i in all.iter().filter(|i| i.id != VS_ROOT) {
                let _ = self.dev.destroy(i.id);
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cleanup();
    }
}

impl std::ops::Deref for Fixture {
    type Target = Dev;
    fn deref(&self) -> &Dev {
        &self.dev
    }
}
