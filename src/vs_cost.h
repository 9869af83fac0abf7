/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What each gate's handler costs, measured in the guest (src/vs_cost.c): with the module
 * parameter gate_timing=1, every probe handler adds its own time (local_clock, so under QEMU's
 * instruction-counting clock, its instructions) and one event to its gate's per-CPU counters;
 * `gate_cost` prints them. Off by default, when a handler pays one predictable branch.
 * Only the handler is timed: the probe's own entry (kprobe or tracepoint) is not in it.
 */
#ifndef VS_COST_H
#define VS_COST_H

#include <linux/percpu.h>
#include <linux/sched/clock.h>
#include <linux/types.h>

enum vs_gate {
	VS_G_FORK, VS_G_EXEC, VS_G_EXIT, VS_G_RUNTIME, VS_G_CONNECT,
	VS_G_FORK_LIMIT, VS_G_FORK_RET, VS_G_TID_EXCHANGE, VS_G_IO_WORKER,
	VS_G_SOCKET, VS_G_INET_ACCEPT, VS_G_UNIX_CONNECT, VS_G_UNIX_ACCEPT, VS_G_UNIX_RECV,
	VS_G_PIPE_WRITE, VS_G_PIPE_READ, VS_G_MSG_LOAD, VS_G_MSG_RECV, VS_G_OBJ_FREE,
	VS_G_ACCEPT_QUEUE, VS_G_CONN_REQUEST, VS_G_SYN_RECV, VS_G_LISTEN_STOP,
	VS_G_NR
};

struct vs_gate_cost {
	u64 events;
	u64 ns;
};

extern bool vs_gate_timing;
DECLARE_PER_CPU(struct vs_gate_cost[VS_G_NR], vs_gate_costs);

/* Start timing a handler: 0 when timing is off. */
static __always_inline u64 vs_cost_begin(void)
{
	return unlikely(READ_ONCE(vs_gate_timing)) ? local_clock() : 0;
}

/* End timing a handler of `gate` begun at `t0`. this_cpu ops: a nested handler (the tick's
 * runtime tracepoint inside a socket probe) cannot tear the counters. */
static __always_inline void vs_cost_end(enum vs_gate gate, u64 t0)
{
	if (unlikely(t0)) {
		this_cpu_add(vs_gate_costs[gate].ns, local_clock() - t0);
		this_cpu_inc(vs_gate_costs[gate].events);
	}
}

/* A timed kprobe pre-handler `fn##_timed` around `fn`. */
#define VS_TIMED_KPROBE(fn, gate)						\
	static int fn##_timed(struct kprobe *p, struct pt_regs *regs)		\
	{									\
		u64 t0 = vs_cost_begin();					\
		int ret = fn(p, regs);						\
		vs_cost_end(gate, t0);						\
		return ret;							\
	}

#endif
