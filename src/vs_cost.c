// SPDX-License-Identifier: GPL-2.0
/*
 * Per-gate handler cost (see vs_cost.h): the module parameters gate_timing (0/1; setting it
 * clears the counters) and gate_cost (one line per gate that ran: name, events, total ns, and
 * the clock's own cost per reading pair, which the totals include).
 */
#include <linux/cpumask.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>

#include "vs_cost.h"

bool vs_gate_timing;
DEFINE_PER_CPU(struct vs_gate_cost[VS_G_NR], vs_gate_costs);

static const char *const vs_gate_names[VS_G_NR] = {
	[VS_G_FORK] = "fork", [VS_G_EXEC] = "exec", [VS_G_EXIT] = "exit",
	[VS_G_RUNTIME] = "runtime", [VS_G_CONNECT] = "connect",
	[VS_G_FORK_LIMIT] = "fork_limit", [VS_G_FORK_RET] = "fork_ret",
	[VS_G_TID_EXCHANGE] = "tid_exchange", [VS_G_IO_WORKER] = "io_worker",
	[VS_G_SOCKET] = "socket", [VS_G_INET_ACCEPT] = "accept",
	[VS_G_UNIX_CONNECT] = "unix_connect", [VS_G_UNIX_ACCEPT] = "unix_accept",
	[VS_G_UNIX_RECV] = "unix_recv", [VS_G_PIPE_WRITE] = "pipe_write",
	[VS_G_PIPE_READ] = "pipe_read", [VS_G_MSG_LOAD] = "msg_load",
	[VS_G_MSG_RECV] = "msg_recv", [VS_G_OBJ_FREE] = "obj_free",
	[VS_G_ACCEPT_QUEUE] = "accept_queue", [VS_G_CONN_REQUEST] = "conn_request",
	[VS_G_SYN_RECV] = "syn_recv", [VS_G_LISTEN_STOP] = "listen_stop",
};

/* The cheapest of a few back-to-back clock readings: what timing adds to each event. */
static u64 vs_clock_pair_ns(void)
{
	u64 best = U64_MAX;
	int i;

	for (i = 0; i < 16; i++) {
		u64 t0 = local_clock();

		best = min(best, local_clock() - t0);
	}
	return best;
}

static int vs_gate_timing_set(const char *val, const struct kernel_param *kp)
{
	bool on;
	int cpu, err = kstrtobool(val, &on);

	if (err)
		return err;
	/* Off first, so that no handler adds to a counter while it is cleared (a straggler
	 * that began before can still add its one event: a reading, not an invariant). */
	WRITE_ONCE(vs_gate_timing, false);
	synchronize_rcu();
	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(&vs_gate_costs, cpu), 0, sizeof(vs_gate_costs));
	WRITE_ONCE(vs_gate_timing, on);
	return 0;
}

static int vs_gate_timing_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(vs_gate_timing));
}

static const struct kernel_param_ops vs_gate_timing_ops = {
	.set = vs_gate_timing_set,
	.get = vs_gate_timing_get,
};
module_param_cb(gate_timing, &vs_gate_timing_ops, NULL, 0600);
MODULE_PARM_DESC(gate_timing, "Time every gate handler (1; clears the counters) or not (0, default)");

static int vs_gate_cost_get(char *buf, const struct kernel_param *kp)
{
	int len = sysfs_emit(buf, "clock_pair_ns %llu\n", vs_clock_pair_ns());
	int g, cpu;

	for (g = 0; g < VS_G_NR; g++) {
		u64 events = 0, ns = 0;

		for_each_possible_cpu(cpu) {
			events += per_cpu(vs_gate_costs, cpu)[g].events;
			ns += per_cpu(vs_gate_costs, cpu)[g].ns;
		}
		if (events)
			len += sysfs_emit_at(buf, len, "%s %llu %llu\n", vs_gate_names[g], events, ns);
	}
	return len;
}

static const struct kernel_param_ops vs_gate_cost_ops = {
	.get = vs_gate_cost_get,
};
module_param_cb(gate_cost, &vs_gate_cost_ops, NULL, 0400);
MODULE_PARM_DESC(gate_cost, "Per gate: events and total handler ns since gate_timing was set");
