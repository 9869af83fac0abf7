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
#[path = "../vs-core/src/classify.rs"]
mod classify;
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
#[path = "../vs-core/src/share.rs"]
mod share;
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

struct VsModule;

impl kernel::Module for VsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        state::init()?;
        if let Err(e) = glue::probes_register() {
            state::teardown();
            return Err(e);
        }
        if let Err(e) = glue::net_register() {
            glue::probes_unregister();
            state::teardown();
            return Err(e);
        }
        if let Err(e) = glue::misc_register() {
            glue::net_unregister();
            glue::probes_unregister();
            state::teardown();
            return Err(e);
        }
        glue::cpu_start();
        pr_info!(
            "/dev/vs ready (abi {}, up to {} VSs)\n",
            abi::VS_ABI_VERSION,
            abi::VS_MAX
        );
        Ok(VsModule)
    }
}

impl Drop for VsModule {
    fn drop(&mut self) {
        // The device goes first: once it is gone no ioctl can start, and none is running
        // because an open file holds a module reference (fops.owner).
        glue::misc_deregister();
        // No gate and no controller tick runs after this; then every task vs reniced gets its
        // own nice back, and memberships go with the state.
        glue::net_unregister();
        glue::probes_unregister();
        glue::cpu_stop();
        cpu::restore_all();
        state::teardown();
        pr_info!("unloaded\n");
    }
}
