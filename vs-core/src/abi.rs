// SPDX-License-Identifier: GPL-2.0
//! The `/dev/vs` ioctl ABI: the one definition shared by the kernel module and `vsctl`.
//!
//! Every structure is `#[repr(C)]`, has no implicit padding and only fixed-width fields, so
//! that the same bytes mean the same thing on both sides; sizes are checked at compile time
//! here, and the module checks the command numbers against the kernel's own `_IOWR` helpers.
//! Ioctl magic 0xB9 is unused in Documentation/userspace-api/ioctl/ioctl-number.rst (6.12).
//!
//! Versioning: [`VS_IOC_VERSION`] is the first call a client makes. `abi` changes only when an
//! existing structure or command changes meaning; new commands are added without a bump.

use core::mem::size_of;

/// ABI version reported by [`VS_IOC_VERSION`].
pub const VS_ABI_VERSION: u32 = 2;

/// Path of the control device.
pub const VS_DEVICE: &str = "/dev/vs";

/// Where the module's parameters are (`/sys/module/vs/parameters/<name>`, one decimal number
/// each, readable by everyone). The CPU controller's below are part of this ABI, kept by name
/// and meaning like the ioctls: `vsctl top` reads them. (The other parameters are tuning
/// knobs, documented in the README.)
pub const VS_PARAMS_DIR: &str = "/sys/module/vs/parameters";
/// The CPU controller's period, ms (10..10000; root may write it).
pub const VS_PARAM_CPU_PERIOD_MS: &str = "cpu_period_ms";
/// The CPU controller's ticks since the module was loaded.
pub const VS_PARAM_CPU_TICKS: &str = "cpu_ticks";
/// The time those ticks took in all, ns.
pub const VS_PARAM_CPU_TICK_NS: &str = "cpu_tick_ns";

/// The root VS: holds all unclassified work; cannot be destroyed or renamed.
pub const VS_ROOT: u32 = 0;
/// "Pick an id for me" in [`VsCreate::id`].
pub const VS_ID_AUTO: u32 = u32::MAX;
/// Global (cluster-wide) VSIDs: given explicitly, never auto-assigned; these are the ids that
/// fit the 6-bit DSCP field, so they identify a service across machines.
pub const VS_GLOBAL_MIN: u32 = 1;
pub const VS_GLOBAL_MAX: u32 = 63;
/// Local VSIDs: unique on this machine; auto-assigned from `VS_LOCAL_MIN` upwards.
pub const VS_LOCAL_MIN: u32 = 64;
pub const VS_LOCAL_MAX: u32 = 0x7fff_ffff;

/// Most VSs that can exist at once, root included.
pub const VS_MAX: u32 = 4096;
/// Deepest a VS may sit below the root.
pub const VS_MAX_DEPTH: u32 = 32;
/// Size of a name buffer; names are 1..=31 bytes, NUL-padded.
pub const VS_NAME_LEN: usize = 32;

/// Share values are percentages of the parent's share: 1..=100.
pub const VS_SHARE_MIN: u32 = 1;
pub const VS_SHARE_MAX: u32 = 100;
/// `max_procs` value meaning "no limit".
pub const VS_PROCS_UNLIMITED: u32 = 0;

/// Attribute indices into [`VsInfo::attr`] and bits of the attribute masks.
pub const VS_ATTR_CPU: u32 = 0;
pub const VS_ATTR_NET: u32 = 1;
pub const VS_ATTR_PROCS: u32 = 2;
pub const VS_NR_ATTRS: usize = 3;
pub const VS_ATTR_MASK_ALL: u32 = (1 << VS_NR_ATTRS) - 1;

/// Answer of [`VS_IOC_VERSION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsVersion {
    pub abi: u32,
    pub max_vs: u32,
    pub name_len: u32,
    pub nr_vs: u32,
}

/// Attribute values; `mask` says which of them are meant (bit `1 << VS_ATTR_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsAttrs {
    pub cpu_share: u32,
    pub net_share: u32,
    pub max_procs: u32,
    pub mask: u32,
}

impl VsAttrs {
    /// The value of attribute `attr` (a `VS_ATTR_*` index).
    pub fn get(&self, attr: u32) -> u32 {
        match attr {
            VS_ATTR_CPU => self.cpu_share,
            VS_ATTR_NET => self.net_share,
            _ => self.max_procs,
        }
    }

    /// Set attribute `attr` and mark it as given.
    pub fn with(mut self, attr: u32, value: u32) -> Self {
        match attr {
            VS_ATTR_CPU => self.cpu_share = value,
            VS_ATTR_NET => self.net_share = value,
            _ => self.max_procs = value,
        }
        self.mask |= 1 << attr;
        self
    }
}

/// [`VS_IOC_CREATE`]: in: name, parent, id (or [`VS_ID_AUTO`]), attributes to detach with
/// their values; out: `id` holds the new VSID.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsCreate {
    pub name: [u8; VS_NAME_LEN],
    pub parent: u32,
    pub id: u32,
    pub attrs: VsAttrs,
}

/// [`VS_IOC_SET`]: on VS `id`, first attach the attributes in `attach_mask` (back to
/// inheritance), then detach those in `detach_mask` (with a copy of the inherited value), then
/// set (and so detach) those in `values.mask`. All or nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsSet {
    pub id: u32,
    pub attach_mask: u32,
    pub detach_mask: u32,
    pub _pad: u32,
    pub values: VsAttrs,
}

/// One attribute of a VS as [`VS_IOC_GET`] reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsAttrInfo {
    /// The VS's own value; meaningful only when `detached` is 1.
    pub own: u32,
    /// 1 if the VS has its own value, 0 if it shares its parent's.
    pub detached: u32,
    /// The value in force: the own value of `source`.
    pub effective: u32,
    /// The VS whose value is in force: itself or its nearest detached ancestor.
    pub source: u32,
    /// Shares only: the fraction of the whole machine that the pool this VS draws from
    /// gets when every VS is busy, in parts per million. 0 for `max_procs`.
    pub machine_ppm: u32,
    pub _pad: u32,
}

/// Per-VS counters. Fields not filled by the running module stay 0 (see README, "Status").
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsStats {
    pub nr_procs: u64,
    pub cpu_time_ns: u64,
    pub forks: u64,
    pub execs: u64,
    pub reclass_in: u64,
    pub reclass_out: u64,
    pub denied_forks: u64,
    /// Packets of the VS's sockets that a `vsq` qdisc dropped (its per-VS queue was full, or
    /// the qdisc was reset or deleted with them queued).
    pub tx_drops: u64,
    /// TCP connections from this VS (as the requester) that a server accepted.
    pub accepts: u64,
    /// Packets and bytes of the VS's sockets that `vsq` qdiscs sent on.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// CPU time of the VS and all VSs below it, nanoseconds.
    pub cpu_subtree_ns: u64,
    /// The CPU controller's view: target and measured share of the busy CPU time of the VS's
    /// pool, parts per million (0 when idle or not managed), and the nice its tasks get.
    pub cpu_target_ppm: u32,
    pub cpu_used_ppm: u32,
    pub cpu_nice: i32,
    pub _pad: u32,
    /// Connections from this VS that a listener managed by share refused because the VS
    /// already held its share of the listener's backlog (the client retries, as with a full
    /// backlog).
    pub accepts_refused: u64,
    /// Pipe writes and message sends of this VS that left the pipe or message without its
    /// tag, because the VS already held its quarter of the object-tag table (or the table
    /// was full): their readers are classified as if an unclassified task had written.
    pub tags_refused: u64,
}

/// [`VS_IOC_GET`]: in: `id`; out: everything else. Also the element of [`VS_IOC_LIST`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsInfo {
    pub id: u32,
    pub parent: u32,
    pub name: [u8; VS_NAME_LEN],
    pub nr_children: u32,
    /// Depth in the tree: root 0.
    pub depth: u32,
    pub attr: [VsAttrInfo; VS_NR_ATTRS],
    pub stats: VsStats,
}

/// [`VS_IOC_LIST`]: in: `buf` (user address of `cap` [`VsInfo`]s), `cap`; out: `count`, the
/// number of VSs that exist. min(cap, count) entries are written, parents before children.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsList {
    pub buf: u64,
    pub cap: u32,
    pub count: u32,
}

/// Classification events: the gates at which a rule can move a task to another VS.
pub const VS_EV_FORK: u32 = 1;
pub const VS_EV_EXEC: u32 = 2;
pub const VS_EV_SOCKET: u32 = 3;
pub const VS_EV_CONNECT: u32 = 4;
pub const VS_EV_ACCEPT: u32 = 5;
pub const VS_EV_UNIX_CONNECT: u32 = 6;
pub const VS_EV_UNIX_ACCEPT: u32 = 7;
pub const VS_EV_UNIX_RECV: u32 = 8;
pub const VS_EV_PIPE_READ: u32 = 9;
pub const VS_EV_MSG_RECV: u32 = 10;
pub const VS_EV_MAX: u32 = 10;
/// Rule text names of the events, indexed by `VS_EV_*` (0 unused).
pub const VS_EV_NAMES: [&str; VS_EV_MAX as usize + 1] = [
    "",
    "fork",
    "exec",
    "socket",
    "connect",
    "accept",
    "unix-connect",
    "unix-accept",
    "unix-recv",
    "pipe-read",
    "msg-recv",
];
/// Whether the event has a requester (the other side: a client, a writer, a sender).
pub const fn vs_event_has_req(ev: u32) -> bool {
    matches!(
        ev,
        VS_EV_ACCEPT | VS_EV_UNIX_ACCEPT | VS_EV_UNIX_RECV | VS_EV_PIPE_READ | VS_EV_MSG_RECV
    )
}

/// Wildcard VS in a rule's `cur` or `req` (`*` in rule text).
pub const VS_ANY: u32 = u32::MAX;
/// Rule target: the requester's VS (`req` in rule text).
pub const VS_TARGET_REQ: u32 = u32::MAX;
/// Rule target: stay where it is (`keep` in rule text); stops further matching.
pub const VS_TARGET_KEEP: u32 = u32::MAX - 1;
/// Length of a rule's exec path buffer (paths up to 127 bytes, NUL-padded).
pub const VS_PATH_LEN: usize = 128;
/// Most rules that can be installed at once.
pub const VS_MAX_RULES: u32 = 16384;

/// A classification rule: `(event, cur[, req=R][, path=P]) -> (target)`. Rules are tried in
/// id order; the first that matches decides.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VsRule {
    /// Assigned by the kernel on add; ascending ids are the evaluation order.
    pub id: u32,
    pub event: u32,
    /// The VS of the task at the gate, or [`VS_ANY`].
    pub cur: u32,
    /// The requester's VS, or [`VS_ANY`]; must be `VS_ANY` for events without a requester.
    pub req: u32,
    /// A VS id, [`VS_TARGET_REQ`] or [`VS_TARGET_KEEP`].
    pub target: u32,
    pub _pad: u32,
    /// Times the rule decided a classification.
    pub hits: u64,
    /// Exec only: the executable's absolute path; empty: any. The rule matches the file this
    /// path names in the initial mount namespace (see README, "Rules").
    pub path: [u8; VS_PATH_LEN],
}

impl VsRule {
    /// No event, any VS, keep: the base that rules are built from.
    pub const BLANK: VsRule = VsRule::new(0, VS_ANY, VS_ANY, VS_TARGET_KEEP);

    /// The rule `(event, cur[, req=req]) -> (target)`, any path.
    pub const fn new(event: u32, cur: u32, req: u32, target: u32) -> Self {
        Self {
            id: 0,
            event,
            cur,
            req,
            target,
            _pad: 0,
            hits: 0,
            path: [0; VS_PATH_LEN],
        }
    }
}

impl Default for VsRule {
    fn default() -> Self {
        Self::BLANK
    }
}

/// [`VS_IOC_ADD_RULES`]: in: `buf` (user address of `count` [`VsRule`]s); out: `first_id`, the
/// id of the first; the others follow consecutively. All are added or none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsRuleAdd {
    pub buf: u64,
    pub count: u32,
    pub first_id: u32,
}

/// [`VS_IOC_LIST_RULES`]: like [`VsList`], for rules, in evaluation order.
pub type VsRuleList = VsList;

/// [`VS_IOC_ADD_PROCESS`]: bind task `pid` (with `VS_PROC_TREE`: and its descendants) to VS
/// `id`; out: `count`, the number of tasks moved, also written when the call fails part-way
/// (`EAGAIN` at a limit: the tasks moved before stay moved).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsProc {
    pub pid: u32,
    pub id: u32,
    pub flags: u32,
    pub count: u32,
}
pub const VS_PROC_TREE: u32 = 1;

/// [`VS_IOC_WHICH`]: in: `pid`; out: `id` of the VS the task belongs to.
pub type VsWhich = VsProc;

/// Size of the module's membership table: no more tasks can be classified at once, so no VS
/// has more members and [`VS_IOC_MEMBERS`] never reports more.
pub const VS_MAX_MEMBERS: u32 = 1 << 16;

/// [`VS_IOC_MEMBERS`]: in: `id`, `buf` (user address of `cap` u32 pids), `cap`; out: `count`,
/// the number of member tasks (min(cap, count) pids written).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsMembers {
    pub buf: u64,
    pub id: u32,
    pub cap: u32,
    pub count: u32,
    pub _pad: u32,
}

// Layouts are part of the ABI: a change here must be deliberate.
const _: () = assert!(size_of::<VsVersion>() == 16);
const _: () = assert!(size_of::<VsAttrs>() == 16);
const _: () = assert!(size_of::<VsCreate>() == 56);
const _: () = assert!(size_of::<VsSet>() == 32);
const _: () = assert!(size_of::<VsAttrInfo>() == 24);
const _: () = assert!(size_of::<VsStats>() == 128);
const _: () = assert!(size_of::<VsInfo>() == 8 + VS_NAME_LEN + 8 + 3 * 24 + 128);
const _: () = assert!(size_of::<VsList>() == 16);
const _: () = assert!(size_of::<VsRule>() == 32 + VS_PATH_LEN);
const _: () = assert!(size_of::<VsRuleAdd>() == 16);
const _: () = assert!(size_of::<VsProc>() == 16);
const _: () = assert!(size_of::<VsMembers>() == 24);

/// Ioctl type byte ("magic").
pub const VS_IOC_MAGIC: u32 = 0xB9;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// The asm-generic `_IOC` encoding (x86, arm64, riscv): dir:2 size:14 type:8 nr:8.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << 14));
    (dir << 30) | ((size as u32) << 16) | (VS_IOC_MAGIC << 8) | nr
}

pub const VS_IOC_VERSION: u32 = ioc(IOC_READ, 0x00, size_of::<VsVersion>());
pub const VS_IOC_CREATE: u32 = ioc(IOC_READ | IOC_WRITE, 0x01, size_of::<VsCreate>());
pub const VS_IOC_DESTROY: u32 = ioc(IOC_WRITE, 0x02, size_of::<u32>());
pub const VS_IOC_GET: u32 = ioc(IOC_READ | IOC_WRITE, 0x03, size_of::<VsInfo>());
pub const VS_IOC_LIST: u32 = ioc(IOC_READ | IOC_WRITE, 0x04, size_of::<VsList>());
pub const VS_IOC_SET: u32 = ioc(IOC_WRITE, 0x05, size_of::<VsSet>());
pub const VS_IOC_ADD_RULES: u32 = ioc(IOC_READ | IOC_WRITE, 0x06, size_of::<VsRuleAdd>());
pub const VS_IOC_DEL_RULE: u32 = ioc(IOC_WRITE, 0x07, size_of::<u32>());
pub const VS_IOC_LIST_RULES: u32 = ioc(IOC_READ | IOC_WRITE, 0x08, size_of::<VsRuleList>());
pub const VS_IOC_ADD_PROCESS: u32 = ioc(IOC_READ | IOC_WRITE, 0x09, size_of::<VsProc>());
pub const VS_IOC_WHICH: u32 = ioc(IOC_READ | IOC_WRITE, 0x0a, size_of::<VsWhich>());
pub const VS_IOC_MEMBERS: u32 = ioc(IOC_READ | IOC_WRITE, 0x0b, size_of::<VsMembers>());

/// The ioctl argument structs of this ABI (and `u32`, the argument of `VS_IOC_DESTROY` and
/// `VS_IOC_DEL_RULE`): `#[repr(C)]`, fixed-width integers only, no implicit padding, so every
/// bit pattern the kernel writes into one is a valid value. Sealed: only this file implements
/// it, so a client generic over `IoctlArg` accepts nothing else.
pub trait IoctlArg: Copy + sealed::Sealed {}

/// An [`IoctlArg`] that holds no user address: the kernel reads and writes the struct itself
/// and nothing else, so passing one needs no promise about other memory.
pub trait PlainArg: IoctlArg {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! ioctl_args {
    (plain: $($plain:ty),*; with_buffer: $($buf:ty),*) => {
        $(impl sealed::Sealed for $plain {} impl IoctlArg for $plain {} impl PlainArg for $plain {})*
        $(impl sealed::Sealed for $buf {} impl IoctlArg for $buf {})*
    };
}

ioctl_args!(plain: u32, VsVersion, VsCreate, VsSet, VsInfo, VsProc; with_buffer: VsList, VsRuleAdd, VsMembers);

/// The printable part of a NUL-padded name buffer.
pub fn name_bytes(buf: &[u8; VS_NAME_LEN]) -> &[u8] {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(VS_NAME_LEN);
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_encoding() {
        // Values computed by hand from include/uapi/asm-generic/ioctl.h.
        assert_eq!(VS_IOC_VERSION, 0x8010_b900);
        assert_eq!(VS_IOC_CREATE, 0xc038_b901);
        assert_eq!(VS_IOC_DESTROY, 0x4004_b902);
        assert_eq!(VS_IOC_LIST, 0xc010_b904);
    }

    #[test]
    fn name_bytes_stops_at_nul() {
        let mut b = [0u8; VS_NAME_LEN];
        b[..4].copy_from_slice(b"www1");
        assert_eq!(name_bytes(&b), b"www1");
        let full = [b'a'; VS_NAME_LEN];
        assert_eq!(name_bytes(&full).len(), VS_NAME_LEN);
    }
}
