// SPDX-License-Identifier: GPL-2.0
//! Pure logic of vs, free of kernel and OS dependencies: `no_std`, no allocation, no `unsafe`.
//!
//! The kernel module compiles these files as modules of its own crate (see `src/vs_main.rs`),
//! `vsctl` links them as a crate, and `cargo test` checks them on the host. Every file uses
//! `crate::` paths only to its siblings, which is what makes both uses work.

#![no_std]
#![forbid(unsafe_code)]

pub mod abi;
pub mod members;
pub mod tree;
