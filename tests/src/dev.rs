// SPDX-License-Identifier: GPL-2.0
//! The tests' view of `/dev/vs`: the one client (`vs_client::Device`, here `Dev`), errnos to
//! compare with, and the fixture. What a well-behaved client never sends goes through
//! `Dev::raw` and `Dev::call_with_buffers`, which are `unsafe`: each use says why it is sound.

use vs_core::abi::*;

pub use vs_client::{Device as Dev, Error, Op};

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

/// The errno of a failed call, for comparing with the constants above.
pub trait ErrnoOf<T> {
    fn errno(self) -> Result<T, Errno>;
}

impl<T> ErrnoOf<T> for Result<T, Error> {
    fn errno(self) -> Result<T, Errno> {
        self.map_err(|e| Errno(e.errno))
    }
}

/// Shorthands the tests use on the device.
pub trait DevExt {
    /// Create under root with an auto id and no attributes.
    fn create_simple(&self, name: &str) -> Result<u32, Error>;
}

impl DevExt for Dev {
    fn create_simple(&self, name: &str) -> Result<u32, Error> {
        self.create(name, VS_ROOT, VS_ID_AUTO, VsAttrs::default())
    }
}

/// A rule in the ABI's form: `(event, cur, req=req) -> (target)`.
pub fn rule(event: u32, cur: u32, req: u32, target: u32) -> VsRule {
    VsRule::new(event, cur, req, target)
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
            .add_process(VS_ROOT, std::process::id() as libc::pid_t, false);
        for i in self
            .dev
            .list()
            .unwrap_or_default()
            .iter()
            .filter(|i| i.id != VS_ROOT)
        {
            for pid in self.dev.members(i.id).unwrap_or_default() {
                let _ = self.dev.add_process(VS_ROOT, pid as libc::pid_t, false);
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
