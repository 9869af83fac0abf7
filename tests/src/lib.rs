// SPDX-License-Identifier: GPL-2.0
//! A small kselftest harness for Rust test programs: KTAP output, one forked child per test
//! with a time limit, and a fixture that opens `/dev/vs` and removes every VS a test left.
//!
//! Why not `kselftest_harness.h`: the ABI is defined once, in Rust (`vs-core`), and tests
//! written in C would need a second copy of it. The shape is the same: `TEST`s run in their
//! own process, `check!` is `EXPECT_*`-like reporting with context, a test returns
//! `Err(Skip)` to skip and says why.

pub mod dev;
pub mod ktap;
pub mod net;
pub mod proc;

pub use ktap::{run, Fail, Outcome, Test};
