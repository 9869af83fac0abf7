// SPDX-License-Identifier: GPL-2.0
//! Which of the module's optional probes the configuration needs armed.
//!
//! An armed hook costs every call of its function, whether or not a rule looks at the event:
//! about 35 instructions for an ftrace hook of vs's own (`vs_glue.c`, `vs_fentries`), about
//! 190 for a kprobe, more for a return probe. The gates that only a rule or a limit uses are
//! therefore armed only while one exists, so a host that classifies by fork, exec and socket
//! pays nothing on each pipe write, and one with no accept rule nothing on each TCP handshake.
//! The hooks that keep vs's own state right (exit, the frees of tagged objects, tid exchange,
//! socket tags, a managed listener's teardown) are always on.
//!
//! What arming later means: a pipe or message keeps the tag of its last write while its group
//! was armed (or none), so its reader is classified by that until the next armed write; a fork
//! that passed `kernel_clone`'s entry before a limit armed the fork group joins without a limit
//! check (as a task moved by a gate does).

use crate::abi::{VS_EV_ACCEPT, VS_EV_MSG_RECV, VS_EV_PIPE_READ, VS_EV_UNIX_RECV};

/// `kernel_clone`'s entry and return probes: the process-count limit.
pub const ARM_FORK_LIMIT: u32 = 1 << 0;
/// `pipe_write` (tags a pipe with its writer's VS) and `pipe_read` (the pipe gate).
pub const ARM_PIPE: u32 = 1 << 1;
/// `load_msg`'s return (tags a message) and `store_msg` (the message-receive gate).
pub const ARM_MSG: u32 = 1 << 2;
/// `unix_stream_recvmsg` and `unix_dgram_recvmsg` (the unix receive gate).
pub const ARM_UNIX_RECV: u32 = 1 << 3;
/// The accept queue served by share: `inet_csk_accept` (orders a managed listener's queue,
/// and makes a listener managed), `tcp_v4_conn_request` and `tcp_v4_syn_recv_sock` (a
/// requester's share of the backlog). A listener is managed only while an accept rule exists.
pub const ARM_ACCEPT: u32 = 1 << 4;

/// The groups to arm, given the events that have rules (bit `1 << event`) and whether some VS
/// has a process-count limit.
pub fn wanted(rule_events: u32, any_limit: bool) -> u32 {
    let by_event = [
        (VS_EV_PIPE_READ, ARM_PIPE),
        (VS_EV_MSG_RECV, ARM_MSG),
        (VS_EV_UNIX_RECV, ARM_UNIX_RECV),
        (VS_EV_ACCEPT, ARM_ACCEPT),
    ];
    let mut arm = if any_limit { ARM_FORK_LIMIT } else { 0 };
    for (event, group) in by_event {
        if rule_events & (1 << event) != 0 {
            arm |= group;
        }
    }
    arm
}

/// The groups whose hook decides a gate: without it, the gate's rules never match. The
/// accept gate's deciding hook (`__inet_accept`) is always armed; `ARM_ACCEPT` only orders a
/// managed listener's queue, so accept rules keep working without it.
const DECIDING: u32 = ARM_PIPE | ARM_MSG | ARM_UNIX_RECV;

/// The event bits of `rule_events` whose deciding hook is in one of the `missing` groups
/// (hooks the running kernel would not let the module attach at load): rules for them would
/// never match, so the module refuses them (`EOPNOTSUPP`) rather than accept rules it cannot
/// keep.
pub fn unavailable(rule_events: u32, missing: u32) -> u32 {
    let mut events = 0;
    for event in 0..u32::BITS {
        let bit = 1u32 << event;
        if rule_events & bit != 0 && wanted(bit, false) & missing & DECIDING != 0 {
            events |= bit;
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{VS_EV_CONNECT, VS_EV_EXEC, VS_EV_FORK, VS_EV_SOCKET};

    #[test]
    fn nothing_armed_without_rules_or_limits() {
        assert_eq!(wanted(0, false), 0);
    }

    #[test]
    fn always_armed_gates_arm_nothing_optional() {
        let always = [VS_EV_FORK, VS_EV_EXEC, VS_EV_SOCKET, VS_EV_CONNECT]
            .iter()
            .fold(0, |m, e| m | 1 << e);
        assert_eq!(wanted(always, false), 0);
    }

    #[test]
    fn each_optional_gate_arms_its_group_only() {
        assert_eq!(wanted(1 << VS_EV_PIPE_READ, false), ARM_PIPE);
        assert_eq!(wanted(1 << VS_EV_MSG_RECV, false), ARM_MSG);
        assert_eq!(wanted(1 << VS_EV_UNIX_RECV, false), ARM_UNIX_RECV);
        assert_eq!(wanted(1 << VS_EV_ACCEPT, false), ARM_ACCEPT);
        assert_eq!(wanted(0, true), ARM_FORK_LIMIT);
        assert_eq!(
            wanted(1 << VS_EV_PIPE_READ | 1 << VS_EV_UNIX_RECV, true),
            ARM_PIPE | ARM_UNIX_RECV | ARM_FORK_LIMIT
        );
    }

    #[test]
    fn only_events_of_a_missing_group_are_unavailable() {
        let all = (0..u32::BITS).fold(0, |m, e| m | 1 << e);
        assert_eq!(unavailable(all, 0), 0);
        assert_eq!(unavailable(all, ARM_PIPE), 1 << VS_EV_PIPE_READ);
        assert_eq!(
            unavailable(all, ARM_MSG | ARM_UNIX_RECV),
            1 << VS_EV_MSG_RECV | 1 << VS_EV_UNIX_RECV
        );
        assert_eq!(unavailable(1 << VS_EV_FORK, ARM_PIPE | ARM_MSG), 0);
        // The fork limit's group belongs to no rule event; without the accept queue's hook,
        // accept rules still classify (only the queue is not ordered by share).
        assert_eq!(unavailable(all, ARM_FORK_LIMIT), 0);
        assert_eq!(unavailable(all, ARM_ACCEPT), 0);
    }
}
