/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C glue's interface: what vs_glue.c offers the Rust side (declared again, for Rust, in
 * src/glue.rs: keep the two in step) and what it calls in Rust.
 */
#ifndef VS_GLUE_H
#define VS_GLUE_H

#include <linux/types.h>

/* Provided by Rust (src/device.rs, src/gates.rs). */
long vs_rust_ioctl(unsigned int cmd, unsigned long arg);
void vs_rust_on_fork(pid_t parent, pid_t child);
void vs_rust_on_exec(pid_t pid, pid_t old_pid, const char *path, size_t len);
void vs_rust_on_exit(pid_t pid);
void vs_rust_on_runtime(pid_t pid, u64 ns);
void vs_rust_cpu_tick(void);
/* True to let the fork go on, false to fail it with EAGAIN. */
bool vs_rust_fork_check(pid_t pid);
void vs_rust_fork_failed(pid_t pid);
/*
 * Socket and IPC gates: apply the rules of that event; `req` is the requester's tag (a VSID,
 * 0 if unknown), `obj` the address of the pipe or message that carries it. Those that return
 * a value return the task's VSID afterwards, for tagging the socket.
 */
u32 vs_rust_on_socket(pid_t pid);
u32 vs_rust_on_connect(pid_t pid);
u32 vs_rust_on_accept(pid_t pid, u32 req);
u32 vs_rust_on_unix_connect(pid_t pid);
u32 vs_rust_on_unix_accept(pid_t pid, u32 req);
void vs_rust_on_unix_recv(pid_t pid, u32 req);
void vs_rust_on_pipe_read(pid_t pid, unsigned long obj);
void vs_rust_on_msg_recv(pid_t pid, unsigned long obj);
/* The DSCP value that carries VS `vsid` on the wire (0: it does not travel). */
u8 vs_rust_dscp_of(u32 vsid);
void vs_rust_tag_object(unsigned long addr, pid_t pid);
void vs_rust_untag_object(unsigned long addr);
void vs_rust_bind_task(void *ctx, pid_t pid, const void *task);

/* Provided by vs_glue.c. */
unsigned long vs_glue_state_lock(void);
void vs_glue_state_unlock(unsigned long flags);
bool vs_glue_capable_admin(void);
int vs_glue_misc_register(void);
void vs_glue_misc_deregister(void);
int vs_glue_probes_register(void);
void vs_glue_probes_unregister(void);
int vs_glue_for_each_task(pid_t vpid, bool tree, void *ctx);
bool vs_glue_task_exiting(const void *task);
int vs_glue_global_pid(pid_t vpid);
void vs_glue_cpu_start(void);
void vs_glue_cpu_stop(void);
int vs_glue_task_sample(pid_t pid, bool *runnable, int *nice);
int vs_glue_set_nice(pid_t pid, int expect, int nice);

#endif /* VS_GLUE_H */
