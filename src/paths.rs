// SPDX-License-Identifier: GPL-2.0
//! Exec rules' files: the paths of exec rules resolved to the files they name.
//!
//! A path rule matches an exec only if the executable is the very file (device and inode)
//! that the rule's path names in the initial mount namespace (vs-core `rules`). Resolving a
//! path can sleep, so it happens here, in the work item of `vs_glue.c` (a kworker, whose root
//! is the initial namespace's): after an `ADD_RULES` with paths (the ioctl waits for it), and
//! when an exec showed a rule's path with another file (a file replaced by an upgrade; at most
//! once a second). The state lock is taken twice, briefly: to copy the paths out, and to
//! record what they resolved to; the lookups run between, with no lock held.

use kernel::alloc::KVVec;
use kernel::prelude::*;

use crate::abi::VS_PATH_LEN;
use crate::glue;
use crate::rules::FileId;
use crate::state;

/// One rule's path, NUL-terminated, and the file it names.
struct Resolve {
    id: u32,
    path: [u8; VS_PATH_LEN],
    file: FileId,
}

/// Called by the work item.
#[no_mangle]
extern "C" fn vs_rust_refresh_paths() {
    // Allocation failure leaves the old identities in place; the next refresh retries.
    let _ = refresh();
}

fn refresh() -> Result {
    let n = state::with(|s| Ok(s.vs.rules.exec_paths().count()))?;
    if n == 0 {
        return Ok(());
    }
    let mut list = KVVec::<Resolve>::with_capacity(n, GFP_KERNEL)?;
    state::with(|s| {
        // Rules added since the count wait for the next refresh (their ioctl asks for one).
        for (id, path) in s.vs.rules.exec_paths().take(n) {
            let mut r = Resolve {
                id,
                path: [0; VS_PATH_LEN],
                file: FileId::NONE,
            };
            // Validated on add: shorter than the buffer, so the copy keeps a NUL.
            let len = path.len().min(VS_PATH_LEN - 1);
            r.path[..len].copy_from_slice(&path[..len]);
            // Within the capacity reserved above: no allocation under the lock.
            list.push(r, GFP_ATOMIC)?;
        }
        Ok(())
    })?;
    for r in list.iter_mut() {
        if let Some((dev, ino)) = glue::path_identity(&r.path[..=nul(&r.path)]) {
            r.file = FileId { dev, ino };
        }
    }
    state::with(|s| {
        for r in list.iter() {
            s.vs.rules.set_file(r.id, &r.path[..nul(&r.path)], r.file);
        }
        Ok(())
    })
}

/// Index of the first NUL (there is one: see above).
fn nul(p: &[u8; VS_PATH_LEN]) -> usize {
    p.iter().position(|&b| b == 0).unwrap_or(VS_PATH_LEN - 1)
}
