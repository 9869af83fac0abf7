// SPDX-License-Identifier: GPL-2.0
//! Kernel-side facts about the ABI structures of `vs-core/src/abi.rs`: they may be copied to
//! and from userspace as plain bytes, and their command numbers are the kernel's own.

use kernel::ioctl::{_IOR, _IOW, _IOWR};
use kernel::types::{AsBytes, FromBytes};

use crate::abi::*;

macro_rules! plain_bytes {
    ($($t:ty),*) => {$(
        // SAFETY: a `#[repr(C)]` struct of integers and integer arrays: every bit pattern is
        // a valid value, and abi.rs asserts its size equals the sum of its fields (no padding
        // bytes that could leak kernel memory).
        unsafe impl FromBytes for $t {}
        // SAFETY: as above.
        unsafe impl AsBytes for $t {}
    )*};
}

plain_bytes!(VsVersion, VsCreate, VsSet, VsInfo, VsList, VsRule, VsRuleAdd, VsProc, VsMembers);

// The ABI's hand-written encoding agrees with the kernel's ioctl macros.
const _: () = assert!(VS_IOC_VERSION == _IOR::<VsVersion>(VS_IOC_MAGIC, 0x00));
const _: () = assert!(VS_IOC_CREATE == _IOWR::<VsCreate>(VS_IOC_MAGIC, 0x01));
const _: () = assert!(VS_IOC_DESTROY == _IOW::<u32>(VS_IOC_MAGIC, 0x02));
const _: () = assert!(VS_IOC_GET == _IOWR::<VsInfo>(VS_IOC_MAGIC, 0x03));
const _: () = assert!(VS_IOC_LIST == _IOWR::<VsList>(VS_IOC_MAGIC, 0x04));
const _: () = assert!(VS_IOC_SET == _IOW::<VsSet>(VS_IOC_MAGIC, 0x05));
const _: () = assert!(VS_IOC_ADD_RULES == _IOWR::<VsRuleAdd>(VS_IOC_MAGIC, 0x06));
const _: () = assert!(VS_IOC_DEL_RULE == _IOW::<u32>(VS_IOC_MAGIC, 0x07));
const _: () = assert!(VS_IOC_LIST_RULES == _IOWR::<VsRuleList>(VS_IOC_MAGIC, 0x08));
const _: () = assert!(VS_IOC_ADD_PROCESS == _IOWR::<VsProc>(VS_IOC_MAGIC, 0x09));
const _: () = assert!(VS_IOC_WHICH == _IOWR::<VsWhich>(VS_IOC_MAGIC, 0x0a));
const _: () = assert!(VS_IOC_MEMBERS == _IOWR::<VsMembers>(VS_IOC_MAGIC, 0x0b));
