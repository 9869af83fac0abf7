// SPDX-License-Identifier: GPL-2.0
//! A failed call on the device: which operation, and the errno the kernel returned.

use std::fmt;
use std::io;

use vs_core::abi::{
    VS_IOC_ADD_PROCESS, VS_IOC_ADD_RULES, VS_IOC_CREATE, VS_IOC_DEL_RULE, VS_IOC_DESTROY,
    VS_IOC_GET, VS_IOC_LIST, VS_IOC_LIST_RULES, VS_IOC_MEMBERS, VS_IOC_SET, VS_IOC_VERSION,
    VS_IOC_WHICH,
};

/// What the client was doing when the kernel said no: opening the device, or one ioctl.
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
    /// A command number this ABI does not define (sent through [`crate::Device::raw`]).
    Ioctl,
}

impl Op {
    /// The operation of ioctl command `cmd`.
    pub fn of(cmd: u32) -> Op {
        match cmd {
            VS_IOC_VERSION => Op::Version,
            VS_IOC_CREATE => Op::Create,
            VS_IOC_DESTROY => Op::Destroy,
            VS_IOC_GET => Op::Get,
            VS_IOC_LIST => Op::List,
            VS_IOC_SET => Op::Set,
            VS_IOC_ADD_RULES => Op::AddRules,
            VS_IOC_DEL_RULE => Op::DelRule,
            VS_IOC_LIST_RULES => Op::ListRules,
            VS_IOC_ADD_PROCESS => Op::AddProcess,
            VS_IOC_WHICH => Op::Which,
            VS_IOC_MEMBERS => Op::Members,
            _ => Op::Ioctl,
        }
    }

    /// The operation as vsctl's messages name it.
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
            Op::Ioctl => "ioctl",
        }
    }
}

/// A failed system call on the device: the operation and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub op: Op,
    pub errno: i32,
}

impl Error {
    pub(crate) fn from_io(op: Op, e: &io::Error) -> Self {
        Error {
            op,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.op.name(),
            io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_operation() {
        let e = Error {
            op: Op::Create,
            errno: libc::EPERM,
        };
        assert!(e.to_string().starts_with("create: "), "{e}");
    }

    #[test]
    fn every_command_has_its_operation() {
        assert_eq!(Op::of(VS_IOC_MEMBERS), Op::Members);
        assert_eq!(Op::of(VS_IOC_ADD_RULES).name(), "addrule");
        assert_eq!(Op::of(0x5401), Op::Ioctl);
    }
}
