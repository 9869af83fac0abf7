// SPDX-License-Identifier: GPL-2.0
//! vs: virtual services for Linux (Reumann et al., USENIX ATC 2000) as a loadable module.
//!
//! Supported features: the VS hierarchy with inherited attributes, managed through ioctls on
//! `/dev/vs`; task membership and classification gates with an in-kernel rule table; the
//! process-count limit; CPU accounting and the CPU share controller; the accept queue served by
//! share and the `vsq` qdisc (src/net.rs, src/vs_net.c).
//!
//! Layout: the pure logic (ABI, VS tree) is in `vs-core/` and compiled here as modules of
//! this crate; kernel glue is one file per object below, and the C glue is `vs_glue.c`.

use kernel::prelude::*;

// The pure logic is shared with vsctl and the host tests, so not every public item is used
// here, and "pub" means "public to the other users of the crate".
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/abi.rs"]
mod abi;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/accept.rs"]
mod accept;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/arming.rs"]
mod arming;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/budget.rs"]
mod budget;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/charge_cache.rs"]
mod charge_cache;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/classify.rs"]
mod classify;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/cpu_control.rs"]
mod cpu_control;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/drr.rs"]
mod drr;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/members.rs"]
mod members;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/rules.rs"]
mod rules;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/seq.rs"]
mod seq;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/share.rs"]
mod share;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/stay_cache.rs"]
mod stay_cache;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/tags.rs"]
mod tags;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/unlocked.rs"]
mod unlocked;
#[allow(dead_code, unreachable_pub)]
#[path = "../vs-core/src/tree.rs"]
mod tree;

mod cpu;
mod device;
mod error;
mod gates;
mod glue;
mod net;
mod paths;
mod state;
mod uapi;

module! {
    type: VsModule,
    name: "vs",
    author: "The vs developers",
    description: "Virtual services: resource accounting and control that follows the work",
    license: "GPL",
}

/// The module's registrations, each undone when its guard drops. Fields drop in declaration
/// order: the device goes first (once it is gone no ioctl can start, and none is running
/// because an open file holds a module reference, fops.owner), then the vsq qdisc (no
/// instance is left: each holds a module reference), the gates, the accept queue's kprobes
/// (the one on a listener's teardown outlives the accept gate, which can make a listener
/// managed, so none is left managed after it closes), then the controller (its last tick done,
/// every task vs reniced gets its own nice back), and the state last. If `init` fails part
/// way, what it registered so far is undone in reverse order, which is the same order. vsq is
/// registered after the gates: a qdisc made while the module loads holds a reference that a
/// failed load would not wait for.
struct VsModule {
    _misc: glue::Registration,
    _vsq: glue::Registration,
    _probes: glue::Registration,
    _net: glue::Registration,
    _cpu: cpu::Controller,
    _state: state::Published,
}

impl kernel::Module for VsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let state = state::init()?;
        let net = glue::net()?;
        let probes = glue::probes()?;
        let vsq = glue::vsq()?;
        let misc = glue::misc()?;
        let cpu = cpu::Controller::start();
        pr_info!(
            "/dev/vs ready (abi {}, up to {} VSs)\n",
            abi::VS_ABI_VERSION,
            abi::VS_MAX
        );
        Ok(VsModule {
            _misc: misc,
            _vsq: vsq,
            _probes: probes,
            _net: net,
            _cpu: cpu,
            _state: state,
        })
    }
}
