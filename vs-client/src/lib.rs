// SPDX-License-Identifier: GPL-2.0
//! The userspace client of `/dev/vs`, shared by vsctl, the selftests and the benchmarks.
//!
//! [`Device`] has one safe method per ioctl of [`vs_core::abi`]; a failure is an [`Error`]
//! that names the operation and carries the errno. Calls are restricted to the ABI's argument
//! structs ([`vs_core::abi::IoctlArg`]): the safe generic [`Device::call`] takes only those
//! that hold no user address. What a well-behaved client never sends (bad pointers, unknown
//! commands, wrong sizes) goes through [`Device::raw`], which is `unsafe`: the tests use it on
//! purpose. This crate is the only `unsafe` code of userspace that talks to the module.
//!
//! The module's parameters that are part of the ABI (the CPU controller's) are read with
//! [`module_param`].

mod device;
mod error;

pub use device::{module_param, Device};
pub use error::{Error, Op};
