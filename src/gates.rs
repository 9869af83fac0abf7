// SPDX-License-Identifier: GPL-2.0
//! The classification gates: entry points called by the probes in `vs_glue.c`.
//!
//! Each takes the state lock once and hands over to [`crate::classify::Vs`], where the rules
//! for membership, counts and limits live. Probes run in atomic context; so does everything
//! here (the state lock is a spinlock and nothing under it allocates).
//!
//! Before the lock, two cheaper ways out: the hints (nothing classified and no rule for the
//! event: nothing to do), and the unlocked reader (`unlocked.rs`: the task's VS has no rule
//! for the event, so the gate only needs its VSID). Both read atomics the lock's holder
//! keeps up to date; the second is validated by the state's seqcount and falls back to the
//! lock whenever a locked section overlapped it.
//! When the module is not initialised (never, while probes are registered) they do nothing.

use crate::abi::{
    VS_EV_ACCEPT, VS_EV_CONNECT, VS_EV_MSG_RECV, VS_EV_PIPE_READ, VS_EV_SOCKET, VS_EV_UNIX_ACCEPT,
    VS_EV_UNIX_CONNECT, VS_EV_UNIX_RECV, VS_GLOBAL_MAX, VS_GLOBAL_MIN, VS_ROOT,
};

use crate::abi::{VS_EV_EXEC, VS_EV_FORK};
use crate::classify::ForkCheck;
use crate::glue;
use crate::rules::{Exe, FileId};
use crate::state::{self, RootCount, HINTS};
use crate::unlocked::object_key;

/// The global pid the glue passes, as the membership key.
fn key(pid: i32) -> u64 {
    // Pids are positive; a negative value would be a glue bug and maps to "no entry".
    u64::try_from(pid).unwrap_or(0)
}

#[no_mangle]
extern "C" fn vs_rust_on_fork(parent: i32, child: i32) {
    if HINTS.idle(VS_EV_FORK) || state::unlocked().fork_is_noop(key(parent), key(child)) {
        state::root_add(RootCount::Forks, glue::this_cpu(), 1);
        return;
    }
    let _ = state::with(|s| {
        s.vs.on_fork(key(parent), key(child));
        Ok(())
    });
}

/// A kernel-created worker of a process (io_uring): `owner` is the process's leader.
#[no_mangle]
extern "C" fn vs_rust_on_io_worker(owner: i32, worker: i32) {
    if HINTS.idle(VS_EV_FORK) {
        return;
    }
    let _ = state::with(|s| {
        s.vs.on_worker(key(owner), key(worker));
        Ok(())
    });
}

/// `path` is how the exec'ing task reached the executable, `dev`/`ino` the file itself.
///
/// # Safety
///
/// `path` points to `len` readable bytes for the duration of the call.
#[no_mangle]
unsafe extern "C" fn vs_rust_on_exec(
    pid: i32,
    old_pid: i32,
    path: *const u8,
    len: usize,
    dev: u32,
    ino: u64,
) {
    let path = if path.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller guarantees `len` readable bytes at `path`.
        unsafe { core::slice::from_raw_parts(path, len) }
    };
    // An unclassified task that no exec rule concerns: counted for the root, without the lock
    // (a thread that execs under another pid moves its entry: the lock).
    if HINTS.idle(VS_EV_EXEC) || pid == old_pid && state::unlocked().exec_is_noop(key(pid)) {
        state::root_add(RootCount::Execs, glue::this_cpu(), 1);
        return;
    }
    let exe = Exe {
        path,
        file: FileId { dev, ino },
    };
    let stale = state::with(|s| {
        s.vs.on_exec(key(pid), key(old_pid), exe);
        Ok(s.vs.rules.take_stale())
    });
    if stale == Ok(true) {
        glue::paths_refresh_soon();
    }
}

/// `de_thread`: thread `tid` takes over its leader's pid `leader`.
#[no_mangle]
extern "C" fn vs_rust_on_tid_exchange(tid: i32, leader: i32) {
    if HINTS.no_members() {
        return;
    }
    let _ = state::with(|s| {
        s.vs.on_tid_exchange(key(tid), key(leader));
        Ok(())
    });
}

/// The exit of a task with no membership entry takes no lock: its CPU time still in the
/// per-CPU cache is the root's. No entry can appear for it after the unlocked read: every
/// path that gives another task an entry checks PF_EXITING under the lock, inside a write
/// section of the seqcount, with a full barrier paired with the one the C glue puts between
/// PF_EXITING and this call (`vs_glue_task_exiting`). A task with an entry takes the lock.
#[no_mangle]
extern "C" fn vs_rust_on_exit(pid: i32) {
    let pid = key(pid);
    if state::unlocked().has_no_entry(pid) {
        crate::charge_cache::take(state::charge_slots(), pid, |p, ns| {
            if p == pid {
                state::root_add(RootCount::CpuNs, glue::this_cpu(), ns);
            } else {
                // A concurrent fold emptied the slot and its CPU refilled it for another
                // task, whose VS only the lock can tell (see `charge_cache::take`).
                let _ = state::with(|s| {
                    s.vs.charge(p, ns);
                    Ok(())
                });
            }
        });
        return;
    }
    let _ = state::with(|s| {
        s.vs.on_exit(pid);
        Ok(())
    });
}

/// Runtime of a fair task, from the scheduler (runqueue lock held, maybe in hardirq) on CPU
/// `cpu`: added to that CPU's charge slots without a lock, and folded into the VS counters
/// under the state lock later (see `charge_cache`). Only when the slots have no room does it
/// take the lock.
#[no_mangle]
extern "C" fn vs_rust_on_runtime(pid: i32, ns: u64, cpu: u32) {
    if HINTS.no_members() {
        state::root_add(RootCount::CpuNs, cpu as usize, ns);
        return;
    }
    if crate::charge_cache::add(state::charge_slots(), cpu as usize, key(pid), ns) {
        return;
    }
    let _ = state::with(|s| {
        s.vs.charge(key(pid), ns);
        Ok(())
    });
}

#[no_mangle]
extern "C" fn vs_rust_fork_check(pid: i32) -> bool {
    // A task with no entry and no fork rule in the root forks into the root: nothing to check.
    if HINTS.idle(VS_EV_FORK) || state::unlocked().fork_is_noop(key(pid), 0) {
        return true;
    }
    state::with(|s| Ok(s.vs.fork_check(key(pid)) == ForkCheck::Allow)).unwrap_or(true)
}

#[no_mangle]
extern "C" fn vs_rust_fork_failed(pid: i32) {
    let _ = state::with(|s| {
        s.vs.fork_failed(key(pid));
        Ok(())
    });
}

/// Apply the rules of `event`; `req` is a requester VSID read from a tag (0: unknown). First
/// without the lock (see `unlocked.rs`): the requester's slot comes from the network view's
/// map (`net::slot_of_tag`), which every locked section that changes the tree republishes, so
/// it agrees with the tree wherever the state's seqcount validates a read, and under the lock.
/// The probe runs with preemption off: the CPU is the same for both tries, and the locked one
/// fills that CPU's stay cache.
fn gate(pid: i32, cpu: u32, event: u32, req: Option<u32>) -> u32 {
    if HINTS.idle(event) {
        return VS_ROOT;
    }
    let cpu = cpu as usize;
    let req_slot = || req.map_or(0, crate::net::slot_of_tag);
    if let Some(id) = state::unlocked().gate(key(pid), event, cpu, req_slot) {
        return id;
    }
    state::with(|s| {
        let r = req_slot();
        Ok(s.vs.on_gate_cached(key(pid), event, (r != 0).then_some(r), cpu))
    })
    .unwrap_or(VS_ROOT)
}

#[no_mangle]
extern "C" fn vs_rust_on_socket(pid: i32, cpu: u32) -> u32 {
    gate(pid, cpu, VS_EV_SOCKET, None)
}

#[no_mangle]
extern "C" fn vs_rust_on_connect(pid: i32, cpu: u32) -> u32 {
    gate(pid, cpu, VS_EV_CONNECT, None)
}

/// `dscp` is the requester's DSCP: a global VSID (or 0).
#[no_mangle]
extern "C" fn vs_rust_on_accept(pid: i32, cpu: u32, dscp: u32) -> u32 {
    gate(pid, cpu, VS_EV_ACCEPT, Some(dscp))
}

#[no_mangle]
extern "C" fn vs_rust_on_unix_connect(pid: i32, cpu: u32) -> u32 {
    gate(pid, cpu, VS_EV_UNIX_CONNECT, None)
}

#[no_mangle]
extern "C" fn vs_rust_on_unix_accept(pid: i32, cpu: u32, req: u32) -> u32 {
    gate(pid, cpu, VS_EV_UNIX_ACCEPT, Some(req))
}

#[no_mangle]
extern "C" fn vs_rust_on_unix_recv(pid: i32, cpu: u32, req: u32) {
    gate(pid, cpu, VS_EV_UNIX_RECV, Some(req));
}

/// A pipe read or message receive: [`gate`] with the VS that wrote the object (its tag) as
/// the requester.
fn object_gate(pid: i32, cpu: u32, event: u32, obj: usize) {
    let cpu = cpu as usize;
    if HINTS.idle(event)
        || state::unlocked().object_gate(key(pid), event, object_key(obj as u64), cpu)
    {
        return;
    }
    let _ = state::with(|s| {
        let slot = s.vs.object_slot(obj as u64);
        s.vs.on_gate_cached(key(pid), event, (slot != 0).then_some(slot), cpu);
        Ok(())
    });
}

#[no_mangle]
extern "C" fn vs_rust_on_pipe_read(pid: i32, cpu: u32, pipe: usize) {
    object_gate(pid, cpu, VS_EV_PIPE_READ, pipe);
}

#[no_mangle]
extern "C" fn vs_rust_on_msg_recv(pid: i32, cpu: u32, msg: usize) {
    object_gate(pid, cpu, VS_EV_MSG_RECV, msg);
}

#[no_mangle]
extern "C" fn vs_rust_tag_object(addr: usize, pid: i32, cpu: u32) {
    // An unclassified writer removes a tag; with no tags and no members there is none.
    if HINTS.no_members() && HINTS.no_objects() {
        return;
    }
    // A writer that keeps writing the same pipe leaves its tag as it was; a VS refused a tag
    // on this CPU before is refused again without the lock while that holds (`tags.rs`).
    let cpu = cpu as usize;
    if state::unlocked().tag_write(object_key(addr as u64), key(pid), cpu) {
        return;
    }
    let _ = state::with(|s| {
        s.vs.tag_object(addr as u64, key(pid), cpu);
        Ok(())
    });
}

#[no_mangle]
extern "C" fn vs_rust_untag_object(addr: usize) {
    if HINTS.no_objects() || state::unlocked().untagged(object_key(addr as u64)) {
        return;
    }
    let _ = state::with(|s| {
        s.vs.untag_object(addr as u64);
        Ok(())
    });
}

/// Global VSIDs travel in the DSCP field; local ones stay on this host (sk_mark only).
#[no_mangle]
extern "C" fn vs_rust_dscp_of(vsid: u32) -> u8 {
    if (VS_GLOBAL_MIN..=VS_GLOBAL_MAX).contains(&vsid) {
        vsid as u8
    } else {
        0
    }
}
