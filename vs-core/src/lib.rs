// SPDX-License-Identifier: GPL-2.0
//! Pure logic of vs, free of kernel and OS dependencies: `no_std`, no allocation, no `unsafe`.
//!
//! The kernel module compiles these files as modules of its own crate (see `src/vs_main.rs`),
//! `vsctl` links them as a crate, and `cargo test` checks them on the host. Every file uses
//! `crate::` paths only to its siblings, which is what makes both uses work.
//!
//! One exception to "no allocation": `rule_parse` (the rule notation, for vsctl) uses `alloc`
//! and exists only with the cargo feature `parse`; the kernel module never includes it.

#![no_std]
#![forbid(unsafe_code)]

// The rule notation parser allocates: userspace only (the kernel never compiles lib.rs).
#[cfg(feature = "parse")]
extern crate alloc;

pub mod abi;
pub mod accept;
pub mod arming;
pub mod budget;
pub mod charge_cache;
pub mod classify;
pub mod cpu_control;
pub mod drr;
pub mod members;
#[cfg(feature = "parse")]
pub mod rule_parse;
pub mod rules;
pub mod seq;
pub mod share;
pub mod stay_cache;
pub mod tags;
pub mod tree;
pub mod unlocked;
