/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C glue's interface: what vs_glue.c offers the Rust side (declared again, for Rust, in
 * src/glue.rs: keep the two in step) and what it calls in Rust.
 */
#ifndef VS_GLUE_H
#define VS_GLUE_H

#include <linux/types.h>

struct sock;

/* Registry slots: abi::VS_MAX (vs-core/src/abi.rs). */
#define VS_GLUE_SLOTS 4096

/*
 * Optional probe groups, armed only while the configuration needs them: the values of
 * vs-core/src/arming.rs (a host test compares the two).
 */
#define VS_ARM_FORK_LIMIT	(1U << 0)
#define VS_ARM_PIPE		(1U << 1)
#define VS_ARM_MSG		(1U << 2)
#define VS_ARM_UNIX_RECV	(1U << 3)
#define VS_ARM_ACCEPT		(1U << 4)
#define VS_ARM_ALL		(VS_ARM_FORK_LIMIT | VS_ARM_PIPE | VS_ARM_MSG | VS_ARM_UNIX_RECV | \
				 VS_ARM_ACCEPT)

/* Provided by Rust (src/device.rs, src/gates.rs). */
long vs_rust_ioctl(unsigned int cmd, unsigned long arg);
void vs_rust_on_fork(pid_t parent, pid_t child);
void vs_rust_on_exec(pid_t pid, pid_t old_pid, const char *path, size_t len, u32 dev, u64 ino);
void vs_rust_refresh_paths(void);
void vs_rust_on_exit(pid_t pid);
void vs_rust_on_io_worker(pid_t owner, pid_t worker);
void vs_rust_on_tid_exchange(pid_t tid, pid_t leader);
void vs_rust_on_runtime(pid_t pid, u64 ns, unsigned int cpu);
void vs_rust_cpu_tick(void);
/* True to let the fork go on, false to fail it with EAGAIN. */
bool vs_rust_fork_check(pid_t pid);
void vs_rust_fork_failed(pid_t pid);
u32 vs_rust_armed_gates(void);
/*
 * Socket and IPC gates: apply the rules of that event; `req` is the requester's tag (a VSID,
 * 0 if unknown), `obj` the address of the pipe or message that carries it. Those that return
 * a value return the task's VSID afterwards, for tagging the socket. `cpu` is the caller's
 * (preemption off, as in every probe handler): the gate's stay cache is that CPU's.
 */
u32 vs_rust_on_socket(pid_t pid, unsigned int cpu);
u32 vs_rust_on_connect(pid_t pid, unsigned int cpu);
u32 vs_rust_on_accept(pid_t pid, unsigned int cpu, u32 req);
u32 vs_rust_on_unix_connect(pid_t pid, unsigned int cpu);
u32 vs_rust_on_unix_accept(pid_t pid, unsigned int cpu, u32 req);
void vs_rust_on_unix_recv(pid_t pid, unsigned int cpu, u32 req);
void vs_rust_on_pipe_read(pid_t pid, unsigned int cpu, unsigned long obj);
void vs_rust_on_msg_recv(pid_t pid, unsigned int cpu, unsigned long obj);
/* The DSCP value that carries VS `vsid` on the wire (0: it does not travel). */
u8 vs_rust_dscp_of(u32 vsid);
void vs_rust_tag_object(unsigned long addr, pid_t pid, unsigned int cpu);
void vs_rust_untag_object(unsigned long addr);
void vs_rust_bind_task(void *ctx, pid_t pid, const void *task);

/* Provided by Rust (src/net.rs): the accept queue by share, and the vsq qdisc. */
u16 vs_rust_slot_of_tag(u32 vsid);
bool vs_rust_accept_may_manage(pid_t pid);
int vs_rust_accept_pick(pid_t pid, unsigned long listener, const u16 *slots, u32 n);
bool vs_rust_accept_managed(unsigned long listener);
bool vs_rust_accept_admit(u32 slot, u32 held, u32 backlog);
void vs_rust_count_accept(u32 slot);
void vs_rust_accept_forget(unsigned long listener);
bool vs_net_listening(unsigned long sk);
unsigned long vs_rust_accept_listeners(void);
u64 vs_rust_accept_unmanaged(void);
/* A packet's VS for vsq: its slot and generation, its net pool and the pool's ppm. */
struct vs_vsq_class {
	u32 slot;
	u32 gen;
	u32 pool;
	u32 pool_ppm;
};
void vs_rust_vsq_classify(u32 vsid, u32 dscp, struct vs_vsq_class *out);
void vs_rust_vsq_count(u32 slot, u32 gen, u32 bytes, bool dropped);
void *vs_rust_vsq_new(void);
void vs_rust_vsq_free(void *drr);
void vs_rust_vsq_enqueued(void *drr, u32 pool, u32 quantum);
int vs_rust_vsq_pick(void *drr, void *q);
void vs_rust_vsq_dequeued(void *drr, u32 pool, bool empty);
void vs_rust_vsq_reset(void *drr);

/* Provided by vs_net.c. */
struct ftrace_regs;
u32 vs_net_child_requester(struct sock *child);
void vs_net_fe_accept(struct ftrace_regs *fregs);
int vs_net_arm(u32 group, bool on);
/* Provided by vs_glue.c, for vs_net.c. */
struct kprobe;
int vs_arm_kprobe(struct kprobe *kp, bool on);
long vs_vsq_head_len(void *priv, u32 pool);
unsigned long vs_net_probe_misses(void);
int vs_net_register(void);
void vs_net_unregister(void);
int vs_vsq_register(void);
void vs_vsq_unregister(void);

/* Provided by vs_glue.c. */
/* Make a kprobed function return `value` at once, through the kernel's own return stub. */
struct pt_regs;
int vs_override_return(struct pt_regs *regs, unsigned long value);
unsigned long vs_glue_state_lock(void);
void vs_glue_state_unlock(unsigned long flags);
unsigned int vs_glue_nr_cpu_ids(void);
unsigned int vs_glue_this_cpu(void);
bool vs_glue_capable_admin(void);
int vs_glue_misc_register(void);
void vs_glue_misc_deregister(void);
int vs_glue_probes_register(void);
void vs_glue_probes_unregister(void);
void vs_glue_arm(void);
u32 vs_glue_missing_gates(void);
int vs_glue_for_each_task(pid_t vpid, bool tree, void *ctx);
bool vs_glue_task_exiting(const void *task);
int vs_glue_global_pid(pid_t vpid);
int vs_glue_pid_for_caller(pid_t pid);
void vs_glue_paths_refresh_soon(void);
void vs_glue_paths_refresh_now(void);
int vs_glue_path_identity(const char *path, u32 *dev, u64 *ino);
void vs_glue_cpu_start(void);
void vs_glue_cpu_stop(void);
int vs_glue_task_sample(pid_t pid, bool *runnable, int *nice);
int vs_glue_set_nice(pid_t pid, int expect, int nice);

#endif /* VS_GLUE_H */
