// SPDX-License-Identifier: GPL-2.0
/*
 * vs C glue: the few kernel facilities that 6.12's Rust crate does not wrap (the misc device,
 * capable(), an irq-safe spinlock, the gates' probes); the network half is in vs_net.c. Kept
 * thin on purpose: every decision is made in Rust; the functions here only register, forward
 * and lock. Declared to Rust in src/glue.rs.
 */
#include <linux/binfmts.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/kprobes.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/namei.h>
#include <linux/pid_namespace.h>
#include <linux/sched/task.h>
#include <linux/workqueue.h>
#include <linux/pipe_fs_i.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/tracepoint.h>
#include <net/af_unix.h>
#include <net/inet_ecn.h>
#include <net/inet_sock.h>
#include <net/sock.h>
#include <net/tcp_states.h>

#include "vs_cost.h"
#include "vs_glue.h"

/*
 * The one lock of the module state (src/state.rs). irqsave because the state is also reached
 * from probe handlers, which may run with interrupts off or in softirq. (The vsq qdisc does
 * not take it: it reads the lock-free view of src/net.rs.)
 */
static DEFINE_SPINLOCK(vs_state_lock);

unsigned long vs_glue_state_lock(void)
{
	unsigned long flags;

	spin_lock_irqsave(&vs_state_lock, flags);
	return flags;
}

void vs_glue_state_unlock(unsigned long flags)
{
	spin_unlock_irqrestore(&vs_state_lock, flags);
}

/* CPU ids run from 0 to this, exclusive: the per-CPU charge slots are sized by it. */
unsigned int vs_glue_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/* The CPU this runs on (a probe, with preemption off; elsewhere only a hint). */
unsigned int vs_glue_this_cpu(void)
{
	return raw_smp_processor_id();
}

bool vs_glue_capable_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

static long vs_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return vs_rust_ioctl(cmd, arg);
}

static const struct file_operations vs_fops = {
	/* Holds a module reference while /dev/vs is open: rmmod fails with EBUSY meanwhile. */
	.owner = THIS_MODULE,
	.unlocked_ioctl = vs_fop_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice vs_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vs",
	.fops = &vs_fops,
	/* World-readable: reads are open to all, mutations check CAP_SYS_ADMIN per call. */
	.mode = 0666,
};

int vs_glue_misc_register(void)
{
	return misc_register(&vs_misc);
}

void vs_glue_misc_deregister(void)
{
	misc_deregister(&vs_misc);
}

/*
 * Gates. Every probe below only extracts what the Rust side needs from kernel structures
 * (pids, addresses, the requester's tag) and forwards it; the decisions are in src/gates.rs.
 * Probes run in atomic context: nothing here sleeps.
 */

/*
 * Whether a socket's mark (or DSCP) is vs's to replace: none yet, or the tag of a VS. A value
 * its user chose (`SO_MARK`, `IP_TOS` before connect) names no VS and stays theirs; one that
 * happens to equal a VSID cannot be told from vs's own tag (README, "Socket tags").
 */
static bool vs_tag_is_ours(u32 tag)
{
	return !tag || vs_rust_slot_of_tag(tag);
}

/*
 * Tag a socket with a VS: sk_mark locally, and for IPv4 the DSCP bits of the TOS byte when
 * the VSID is global (1..63), so that a peer on another host can read it from the wire. A
 * changed mark or TOS can route differently, so the cached route is dropped then, and only
 * then: the connect gate runs after tcp_v4_connect cached its route, which a socket tagged
 * at creation with the same VS keeps.
 */
static void vs_tag_sock(struct sock *sk, u32 vsid)
{
	bool changed = false;
	u32 mark;

	if (!sk || !vsid)
		return;
	mark = READ_ONCE(sk->sk_mark);
	if (vs_tag_is_ours(mark) && mark != vsid) {
		WRITE_ONCE(sk->sk_mark, vsid);
		changed = true;
	}
	if (sk->sk_family == AF_INET) {
		struct inet_sock *inet = inet_sk(sk);
		u8 tos = READ_ONCE(inet->tos);
		u8 want = (tos & INET_ECN_MASK) | (vs_rust_dscp_of(vsid) << 2);

		if (vs_tag_is_ours(tos >> 2) && tos != want) {
			WRITE_ONCE(inet->tos, want);
			changed = true;
		}
	}
	if (changed)
		sk_dst_reset(sk);
}

/* The VS tag a unix socket's peer carries (0: none). */
static u32 vs_unix_peer_tag(struct sock *sk)
{
	struct sock *peer;
	u32 tag;

	if (!sk)
		return 0;
	peer = unix_peer_get(sk);
	if (!peer)
		return 0;
	tag = READ_ONCE(peer->sk_mark);
	sock_put(peer);
	return tag;
}

/*
 * Exec rules' files (src/paths.rs): rule paths are resolved in a work item, so in a kworker,
 * whose root is the initial mount namespace's, whatever namespace the exec or the ioctl came
 * from. At most one resolution a second: an exec that keeps showing a rule's path with
 * another file (a spoofer, or a file replaced) cannot make it run more often.
 */
static unsigned long vs_paths_last;
static void vs_paths_workfn(struct work_struct *work)
{
	WRITE_ONCE(vs_paths_last, jiffies);
	vs_rust_refresh_paths();
}
static DECLARE_DELAYED_WORK(vs_paths_work, vs_paths_workfn);

/* From any context (a gate): resolve the rule paths again, soon. */
void vs_glue_paths_refresh_soon(void)
{
	unsigned long next = READ_ONCE(vs_paths_last) + HZ;

	if (!delayed_work_pending(&vs_paths_work))
		schedule_delayed_work(&vs_paths_work,
				      time_after(jiffies, next) ? 0 : next - jiffies);
}

/* Process context (the ioctl that added path rules): resolve now and wait for it. */
void vs_glue_paths_refresh_now(void)
{
	mod_delayed_work(system_wq, &vs_paths_work, 0);
	flush_delayed_work(&vs_paths_work);
}

/* The file `path` names (from the work item: in the initial mount namespace). */
int vs_glue_path_identity(const char *path, u32 *dev, u64 *ino)
{
	struct path p;
	int err = kern_path(path, LOOKUP_FOLLOW, &p);

	if (err)
		return err;
	*dev = d_inode(p.dentry)->i_sb->s_dev;
	*ino = d_inode(p.dentry)->i_ino;
	path_put(&p);
	return 0;
}

/* --- tracepoints (found by name: the sched ones are not exported) --- */

static void vs_tp_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	/* Kernel threads stay in the root whatever the rules say (no `*` rule catches them). */
	u64 t0;

	if (child->flags & PF_KTHREAD)
		return;
	t0 = vs_cost_begin();
	vs_rust_on_fork(parent->pid, child->pid);
	vs_cost_end(VS_G_FORK, t0);
}

static void vs_tp_exec(void *data, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u64 t0 = vs_cost_begin();
	char buf[256];
	const char *path = NULL;
	u32 dev = 0;
	u64 ino = 0;

	/*
	 * The resolved path of the executable (symlinks followed), else the name given; and the
	 * file itself, which a path rule must also match (a path can be faked in a private mount
	 * namespace, the inode cannot). For a script this is the interpreter: the file that runs.
	 */
	if (bprm->file) {
		path = d_path(&bprm->file->f_path, buf, sizeof(buf));
		dev = file_inode(bprm->file)->i_sb->s_dev;
		ino = file_inode(bprm->file)->i_ino;
	}
	if (IS_ERR_OR_NULL(path))
		path = bprm->filename;
	vs_rust_on_exec(p->pid, old_pid, path, strnlen(path, sizeof(buf)), dev, ino);
	vs_cost_end(VS_G_EXEC, t0);
}

static void vs_tp_exit(void *data, struct task_struct *p)
{
	u64 t0 = vs_cost_begin();

	/* PF_EXITING (set by exit_signals) before the gate's unlocked read: see
	 * vs_glue_task_exiting. */
	smp_mb();
	vs_rust_on_exit(p->pid);
	vs_cost_end(VS_G_EXIT, t0);
}

/*
 * Fair-class runtime, under the runqueue lock (even from the tick interrupt), so preemption
 * is off and this CPU's charge slots are ours: count only.
 */
static void vs_tp_runtime(void *data, struct task_struct *p, u64 runtime)
{
	u64 t0 = vs_cost_begin();

	vs_rust_on_runtime(p->pid, runtime, smp_processor_id());
	vs_cost_end(VS_G_RUNTIME, t0);
}

static struct vs_tracepoint {
	const char *name;
	void *probe;
	struct tracepoint *tp;
	bool registered;
} vs_tps[] = {
	{ "sched_process_fork", vs_tp_fork },
	{ "sched_process_exec", vs_tp_exec },
	{ "sched_process_exit", vs_tp_exit },
	{ "sched_stat_runtime", vs_tp_runtime },
};

static void vs_find_tp(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vs_tps); i++)
		if (!strcmp(tp->name, vs_tps[i].name))
			vs_tps[i].tp = tp;
}

/* --- kprobes --- */

/*
 * The kernel's return stub for overriding a function's return value: a kprobe handler sets
 * the return value and sends the probed function to this `ret`, which returns to its caller
 * (what bpf_override_return does). Not exported: found through a kprobe at load.
 */
static unsigned long vs_just_return;

/*
 * The address of function `sym`, as a kprobe on it resolves it (0: none): kallsyms_lookup_name
 * is not exported, and a name match could find a static function of the same name. The
 * address is resolved first, so it is there even if the probe itself is refused.
 */
static unsigned long vs_symbol_addr(const char *sym)
{
	struct kprobe kp = { .symbol_name = sym, .flags = KPROBE_FLAG_DISABLED };

	if (!register_kprobe(&kp))
		unregister_kprobe(&kp);
	return (unsigned long)kp.addr;
}

static int vs_find_just_return(void)
{
	vs_just_return = vs_symbol_addr("just_return_func");
	if (!vs_just_return) {
		pr_err("just_return_func not found (CONFIG_FUNCTION_ERROR_INJECTION): cannot enforce limits\n");
		return -ENOENT;
	}
	return 0;
}

/*
 * Make the probed function return `value` to its caller at once (kprobe pre-handler on a
 * function entry; the kprobe needs a post handler, which makes it IPMODIFY). The way back is
 * the kernel's own return stub, what bpf_override_return uses: no module text is on it, so
 * rmmod cannot free code a preempted task would return into.
 */
int vs_override_return(struct pt_regs *regs, unsigned long value)
{
	regs_set_return_value(regs, value);
	instruction_pointer_set(regs, vs_just_return);
	return 1;
}

/*
 * Every fork, vfork, clone and clone3, from the 64-bit and the 32-bit syscall entries alike,
 * goes through kernel_clone once its arguments are read: the one place to check the process
 * limit. Kernel threads are never limited (nor classified: see vs_tp_fork). A refused fork
 * skips kernel_clone, which returns -EAGAIN.
 */
static int vs_kp_fork(struct kprobe *p, struct pt_regs *regs)
{
	struct kernel_clone_args *args = (struct kernel_clone_args *)regs_get_kernel_argument(regs, 0);

	if (args->kthread || (current->flags & PF_KTHREAD) || vs_rust_fork_check(current->pid))
		return 0;
	return vs_override_return(regs, -EAGAIN);
}

/* A post handler makes the kprobe IPMODIFY, which changing regs->ip requires. */
static void vs_kp_post_nop(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}

/*
 * A user socket gets its file here (socket(), socketpair(), accept()); kernel sockets never
 * do. The socket is not yet reachable through a file descriptor: tag it without its lock.
 * A hook at function entry is much cheaper than a return probe on __sock_create.
 */
static void vs_fe_sock_alloc_file(struct ftrace_regs *fregs)
{
	struct socket *sock = (struct socket *)ftrace_regs_get_argument(fregs, 0);

	if (sock && sock->sk)
		vs_tag_sock(sock->sk, vs_rust_on_socket(current->pid, smp_processor_id()));
}

static void vs_fe_unix_connect(struct ftrace_regs *fregs)
{
	struct socket *sock = (struct socket *)ftrace_regs_get_argument(fregs, 0);

	vs_tag_sock(sock->sk, vs_rust_on_unix_connect(current->pid, smp_processor_id()));
}

static void vs_fe_unix_recv(struct ftrace_regs *fregs)
{
	struct socket *sock = (struct socket *)ftrace_regs_get_argument(fregs, 0);

	vs_rust_on_unix_recv(current->pid, smp_processor_id(), vs_unix_peer_tag(sock->sk));
}

/*
 * A TCP connection attempt, IPv4 or IPv6, is about to send its SYN (tcp_v4_connect and
 * tcp_v6_connect call tcp_connect once per attempt, in SYN_SENT; a deferred Fast Open connect
 * calls it from its first sendmsg): the connecting task is `current`, the socket is locked.
 * Hooked here rather than at the inet_sock_set_state tracepoint, which every state change of
 * every TCP socket on the host passes, about ten per connection.
 */
static void vs_fe_tcp_connect(struct ftrace_regs *fregs)
{
	struct sock *sk = (struct sock *)ftrace_regs_get_argument(fregs, 0);

	if (in_task())
		vs_tag_sock(sk, vs_rust_on_connect(current->pid, smp_processor_id()));
}

/*
 * A TCP connection was accepted (inet_accept, after the accept queue gave it up, with the new
 * socket locked): the acceptor is `current`. A kprobe on this non-blocking step rather than a
 * return probe on the blocking inet_csk_accept, whose instances idle acceptors would hold.
 */
static void vs_fe_inet_accept(struct ftrace_regs *fregs)
{
	struct sock *newsk = (struct sock *)ftrace_regs_get_argument(fregs, 2);
	u32 req;

	if (!newsk)
		return;
	/* The client's own socket when it is on this host, else the DSCP it sent. */
	req = vs_net_child_requester(newsk);
	vs_rust_count_accept(vs_rust_slot_of_tag(req));
	vs_tag_sock(newsk, vs_rust_on_accept(current->pid, smp_processor_id(), req));
}

/*
 * A unix stream connection was accepted: unix_accept calls unix_update_edges on the new socket
 * (only there), with that socket's state lock held, in the acceptor. Its peer, the connecting
 * socket, is read directly: unix_peer_get would take the lock already held.
 */
static void vs_fe_unix_accept(struct ftrace_regs *fregs)
{
	struct unix_sock *u = (struct unix_sock *)ftrace_regs_get_argument(fregs, 0);
	struct sock *sk = &u->sk;
	struct sock *peer = READ_ONCE(unix_peer(sk));
	u32 req = peer ? READ_ONCE(peer->sk_mark) : 0;

	vs_tag_sock(sk, vs_rust_on_unix_accept(current->pid, smp_processor_id(), req));
}

/*
 * de_thread (exec from a non-leader thread, past the point of no return): the thread `left`
 * takes the leader's pid. Membership moves now, not at sched_process_exec, which a failing
 * exec never reaches.
 */
static void vs_fe_exchange_tids(struct ftrace_regs *fregs)
{
	struct task_struct *left = (struct task_struct *)ftrace_regs_get_argument(fregs, 0);
	struct task_struct *right = (struct task_struct *)ftrace_regs_get_argument(fregs, 1);

	vs_rust_on_tid_exchange(left->pid, right->pid);
}

static void *vs_pipe_of(struct ftrace_regs *fregs)
{
	struct kiocb *iocb = (struct kiocb *)ftrace_regs_get_argument(fregs, 0);

	return iocb->ki_filp->private_data;
}

static void vs_fe_pipe_write(struct ftrace_regs *fregs)
{
	vs_rust_tag_object((unsigned long)vs_pipe_of(fregs), current->pid, smp_processor_id());
}

static void vs_fe_pipe_read(struct ftrace_regs *fregs)
{
	vs_rust_on_pipe_read(current->pid, smp_processor_id(), (unsigned long)vs_pipe_of(fregs));
}

static void vs_fe_free_obj(struct ftrace_regs *fregs)
{
	vs_rust_untag_object(ftrace_regs_get_argument(fregs, 0));
}

static void vs_fe_store_msg(struct ftrace_regs *fregs)
{
	vs_rust_on_msg_recv(current->pid, smp_processor_id(), ftrace_regs_get_argument(fregs, 1));
}

VS_TIMED_KPROBE(vs_kp_fork, VS_G_FORK_LIMIT)

/*
 * A gate probe and the group it is armed with: VS_ARM_ALWAYS, or one of the optional groups
 * of vs-core's arming.rs, armed while the configuration needs it. Every probe is registered
 * disarmed and armed by the arm work item (vs_glue_arm), so registering allocates little and a
 * registration that fails part way has nothing armed to undo (the kernel's disarming needs
 * memory and WARNs when it finds none).
 */
#define VS_ARM_ALWAYS (1U << 31)

struct vs_kprobe {
	struct kprobe kp;
	u32 arm;
};

#define VS_KPROBE(sym, pre, post, group) \
	{ .kp = { .symbol_name = sym, .pre_handler = pre, .post_handler = post }, .arm = group }
static struct vs_kprobe vs_kps[] = {
	VS_KPROBE("kernel_clone", vs_kp_fork_timed, vs_kp_post_nop, VS_ARM_FORK_LIMIT),
};
static struct kprobe *vs_kp_ptrs[ARRAY_SIZE(vs_kps)];

/*
 * io_uring's workers (io-wq and SQPOLL threads) come from create_io_thread, which skips the
 * fork tracepoint: each joins its process's VS at its first instruction (current is the new
 * worker). Optional: the functions exist only with CONFIG_IO_URING.
 */
static int vs_kp_io_worker(struct kprobe *p, struct pt_regs *regs)
{
	vs_rust_on_io_worker(current->group_leader->pid, current->pid);
	return 0;
}

VS_TIMED_KPROBE(vs_kp_io_worker, VS_G_IO_WORKER)

static struct vs_kprobe vs_io_kps[] = {
	VS_KPROBE("io_wq_worker", vs_kp_io_worker_timed, NULL, VS_ARM_ALWAYS),
	VS_KPROBE("io_sq_thread", vs_kp_io_worker_timed, NULL, VS_ARM_ALWAYS),
};
static bool vs_io_kp_on[ARRAY_SIZE(vs_io_kps)];

/* --- function-entry hooks --- */

/*
 * The gates hook their function's entry with an ftrace_ops of their own, not a kprobe: the
 * function's ftrace call site calls vs_fentry_call directly, with no kprobe lookup and no full
 * register save. Under -icount a socket+close took about 35 guest instructions more with such
 * a hook on sock_alloc_file and 190 more with an (ftrace-based) kprobe. A kprobe stays where a
 * handler changes what the function returns (the fork limit), and kretprobes where a gate
 * needs a return value. The always-armed hooks are registered at load; the others (`arm`, a
 * group of arming.rs) by the arm work item while the configuration needs them, each with its
 * filter set once at load.
 */
struct vs_fentry {
	const char *sym;
	void (*fn)(struct ftrace_regs *fregs);
	enum vs_gate gate;
	u32 arm;
	struct ftrace_ops ops;
	/* Registered now; changed at load and unload, and by the arm work item in between. */
	bool on;
	/* The filter is set (at load). */
	bool filtered;
};

/* Calls a hook skipped because another hook of ours ran on this CPU (see probe_misses). */
static atomic_long_t vs_fentry_misses;

static void notrace vs_fentry_call(unsigned long ip, unsigned long parent_ip,
				   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct vs_fentry *fe = container_of(op, struct vs_fentry, ops);
	/* Also disables preemption until the unlock, as a kprobe handler runs. */
	int bit = ftrace_test_recursion_trylock(ip, parent_ip);
	u64 t0;

	if (bit < 0) {
		atomic_long_inc(&vs_fentry_misses);
		return;
	}
	t0 = vs_cost_begin();
	fe->fn(fregs);
	vs_cost_end(fe->gate, t0);
	ftrace_test_recursion_unlock(bit);
}

#define VS_FENTRY(s, f, g, a) \
	{ .sym = s, .fn = f, .gate = g, .arm = a, .ops = { .func = vs_fentry_call } }
static struct vs_fentry vs_fentries[] = {
	VS_FENTRY("exchange_tids", vs_fe_exchange_tids, VS_G_TID_EXCHANGE, VS_ARM_ALWAYS),
	VS_FENTRY("tcp_connect", vs_fe_tcp_connect, VS_G_CONNECT, VS_ARM_ALWAYS),
	VS_FENTRY("__inet_accept", vs_fe_inet_accept, VS_G_INET_ACCEPT, VS_ARM_ALWAYS),
	VS_FENTRY("inet_csk_accept", vs_net_fe_accept, VS_G_ACCEPT_QUEUE, VS_ARM_ACCEPT),
	VS_FENTRY("unix_update_edges", vs_fe_unix_accept, VS_G_UNIX_ACCEPT, VS_ARM_ALWAYS),
	VS_FENTRY("sock_alloc_file", vs_fe_sock_alloc_file, VS_G_SOCKET, VS_ARM_ALWAYS),
	VS_FENTRY("unix_stream_connect", vs_fe_unix_connect, VS_G_UNIX_CONNECT, VS_ARM_ALWAYS),
	VS_FENTRY("free_pipe_info", vs_fe_free_obj, VS_G_OBJ_FREE, VS_ARM_ALWAYS),
	VS_FENTRY("free_msg", vs_fe_free_obj, VS_G_OBJ_FREE, VS_ARM_ALWAYS),
	VS_FENTRY("unix_stream_recvmsg", vs_fe_unix_recv, VS_G_UNIX_RECV, VS_ARM_UNIX_RECV),
	VS_FENTRY("unix_dgram_recvmsg", vs_fe_unix_recv, VS_G_UNIX_RECV, VS_ARM_UNIX_RECV),
	VS_FENTRY("pipe_write", vs_fe_pipe_write, VS_G_PIPE_WRITE, VS_ARM_PIPE),
	VS_FENTRY("pipe_read", vs_fe_pipe_read, VS_G_PIPE_READ, VS_ARM_PIPE),
	VS_FENTRY("store_msg", vs_fe_store_msg, VS_G_MSG_RECV, VS_ARM_MSG),
};

/* Register or unregister hook `fe`; 0 if it now is as asked. */
static int vs_fentry_arm(struct vs_fentry *fe, bool on)
{
	int ret;

	if (fe->on == on)
		return 0;
	/* Unregistering waits until no CPU can be inside vs_fentry_call for that ops. */
	ret = on ? register_ftrace_function(&fe->ops) : unregister_ftrace_function(&fe->ops);
	if (!ret)
		fe->on = on;
	return ret;
}

static void vs_fentries_unregister(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vs_fentries); i++) {
		struct vs_fentry *fe = &vs_fentries[i];

		/*
		 * A hook ftrace refuses to unregister stays registered: its filter is left as it is
		 * (freeing it could widen the hook to every function), and the kernel says so.
		 */
		if (WARN(vs_fentry_arm(fe, false), "vs: cannot unhook %s\n", fe->sym))
			continue;
		if (fe->filtered)
			ftrace_free_filter(&fe->ops);
		fe->filtered = false;
	}
}

/* An optional hook whose filter could not be set at load: its function is not hooked. */
static bool vs_fentry_missing(const struct vs_fentry *fe)
{
	return fe->arm != VS_ARM_ALWAYS && !fe->filtered;
}

/*
 * The arming groups with a hook that could not be set up at load (constant while loaded):
 * their gates' rules are refused with EOPNOTSUPP (arming.rs, unavailable), not accepted and
 * never matched.
 */
u32 vs_glue_missing_gates(void)
{
	u32 groups = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(vs_fentries); i++)
		if (vs_fentry_missing(&vs_fentries[i]))
			groups |= vs_fentries[i].arm;
	return groups;
}

/*
 * Set every hook's filter; register the always-armed ones. An always-armed hook keeps vs's
 * own state right and must attach; an optional one that cannot (its function is missing from
 * this kernel, or ftrace refuses it) only takes its gate away, and the load goes on.
 */
static int vs_fentries_register(void)
{
	int i, ret = 0;

	for (i = 0; i < ARRAY_SIZE(vs_fentries) && !ret; i++) {
		struct vs_fentry *fe = &vs_fentries[i];
		unsigned long addr = vs_symbol_addr(fe->sym);

		/* An empty filter would hook every function: set it first, or fail. */
		ret = addr ? ftrace_set_filter_ip(&fe->ops, addr, 0, 0) : -ENOENT;
		fe->filtered = !ret;
		if (ret && fe->arm != VS_ARM_ALWAYS) {
			pr_warn("cannot hook %s (%d): rules for its gate are refused\n", fe->sym,
				ret);
			ret = 0;
			continue;
		}
		if (!ret && fe->arm == VS_ARM_ALWAYS)
			ret = vs_fentry_arm(fe, true);
		if (ret)
			pr_err("cannot hook %s (%d)\n", fe->sym, ret);
	}
	if (ret)
		vs_fentries_unregister();
	return ret;
}

/* Read-only module parameter `unhooked`: the optional hooks that could not be set up. */
static int vs_unhooked_get(char *buf, const struct kernel_param *kp)
{
	int i, len = 0;

	for (i = 0; i < ARRAY_SIZE(vs_fentries); i++)
		if (vs_fentry_missing(&vs_fentries[i]))
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "", vs_fentries[i].sym);
	return len + sysfs_emit_at(buf, len, "\n");
}

static const struct kernel_param_ops vs_unhooked_ops = {
	.get = vs_unhooked_get,
};
module_param_cb(unhooked, &vs_unhooked_ops, NULL, 0444);
MODULE_PARM_DESC(unhooked, "Optional gate hooks this kernel would not let vs set up at load (their gates' rules are refused with EOPNOTSUPP)");

/* --- kretprobes --- */

static int vs_krp_clone_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	u64 t0 = vs_cost_begin();

	/* kernel_clone returns a pid_t: the upper half of the register is not its sign. */
	if ((pid_t)regs_return_value(regs) < 0)
		vs_rust_fork_failed(current->pid);
	vs_cost_end(VS_G_FORK_RET, t0);
	return 0;
}

static int vs_krp_load_msg_ret(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	u64 t0 = vs_cost_begin();
	void *msg = (void *)regs_return_value(regs);

	if (!IS_ERR_OR_NULL(msg))
		vs_rust_tag_object((unsigned long)msg, current->pid, smp_processor_id());
	vs_cost_end(VS_G_MSG_LOAD, t0);
	return 0;
}

/*
 * A vfork holds a kernel_clone instance while it waits for its child; a failing fork needs one
 * to release its reservation (a miss leaves it until the task's next fork or exit; see the
 * probe_misses parameter). No gate depends on a return probe.
 */
#define VS_KRP_ACTIVE 512
struct vs_kretprobe {
	struct kretprobe rp;
	u32 arm;
};

static struct vs_kretprobe vs_krps[] = {
	{ .rp = { .kp.symbol_name = "kernel_clone", .handler = vs_krp_clone_ret,
		  .maxactive = VS_KRP_ACTIVE },
	  .arm = VS_ARM_FORK_LIMIT },
	{ .rp = { .kp.symbol_name = "load_msg", .handler = vs_krp_load_msg_ret,
		  .maxactive = VS_KRP_ACTIVE },
	  .arm = VS_ARM_MSG },
};
static struct kretprobe *vs_krp_ptrs[ARRAY_SIZE(vs_krps)];

/*
 * Probe hits missed so far: a kretprobe with no free instance, a probe hit while another
 * kprobe ran on the same CPU, or a function hook reached again from inside one. Read-only
 * module parameter `probe_misses`, so that a gate that silently did not run is visible.
 */
static int vs_probe_misses_get(char *buf, const struct kernel_param *kp)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(vs_kps); i++)
		n += READ_ONCE(vs_kps[i].kp.nmissed);
	for (i = 0; i < ARRAY_SIZE(vs_io_kps); i++)
		n += READ_ONCE(vs_io_kps[i].kp.nmissed);
	for (i = 0; i < ARRAY_SIZE(vs_krps); i++)
		n += READ_ONCE(vs_krps[i].rp.nmissed) + READ_ONCE(vs_krps[i].rp.kp.nmissed);
	n += atomic_long_read(&vs_fentry_misses);
	n += vs_net_probe_misses();
	return sysfs_emit(buf, "%lu\n", n);
}

static const struct kernel_param_ops vs_probe_misses_ops = {
	.get = vs_probe_misses_get,
};
module_param_cb(probe_misses, &vs_probe_misses_ops, NULL, 0444);
MODULE_PARM_DESC(probe_misses, "Gate probe hits missed (kretprobe instances exhausted, or recursion)");

/*
 * The groups whose probes are all armed now. Changed only by the arm work item, which reads
 * what the configuration wants (vs_rust_armed_gates, under the state lock) and arms
 * accordingly, holding vs_arm_lock: the last change wins. No probe handler takes vs_arm_lock.
 */
static u32 vs_armed;
/* Set at unload: the work item disarms everything, so the unregistering has nothing to undo. */
static bool vs_arm_off;
/*
 * Held by the work item while it arms, and by vs_glue_arm to see whether anything is to do.
 * Lock order: vs_arm_lock, then the state lock (in vs_rust_armed_gates), then kprobes' and
 * ftrace's own.
 */
static DEFINE_MUTEX(vs_arm_lock);

/* A group with a hook missing since load is not armed: what it has would not work alone. */
static u32 vs_arm_wanted(void)
{
	return READ_ONCE(vs_arm_off) ? 0 :
	       (vs_rust_armed_gates() & ~vs_glue_missing_gates()) | VS_ARM_ALWAYS;
}

/* Arm or disarm one kprobe, saying so when it fails (the work item retries). */
int vs_arm_kprobe(struct kprobe *kp, bool on)
{
	int ret = on ? enable_kprobe(kp) : disable_kprobe(kp);

	if (ret)
		pr_warn_ratelimited("cannot %s the probe on %s (%d); retrying\n",
				    on ? "arm" : "disarm", kp->symbol_name, ret);
	return ret;
}

static int vs_arm_fentry(struct vs_fentry *fe, bool on)
{
	int ret = vs_fentry_arm(fe, on);

	if (ret)
		pr_warn_ratelimited("cannot %s the hook on %s (%d); retrying\n",
				    on ? "arm" : "disarm", fe->sym, ret);
	return ret;
}

/* Arm (or disarm) every probe and hook of `group`; true if all of them now are. */
static bool vs_arm_group(u32 group, bool on)
{
	bool ok = true;
	int i;

	/*
	 * A return probe is armed before, and disarmed after, the entry probe whose work it
	 * finishes: a fork whose entry reserved room has a return probe to release it on failure.
	 * Disarming does not drop return probes already pending.
	 */
	for (i = 0; on && i < ARRAY_SIZE(vs_krps); i++)
		if (vs_krps[i].arm == group)
			ok &= !vs_arm_kprobe(&vs_krps[i].rp.kp, true);
	for (i = 0; i < ARRAY_SIZE(vs_kps); i++)
		if (vs_kps[i].arm == group)
			ok &= !vs_arm_kprobe(&vs_kps[i].kp, on);
	/* The always-armed hooks are registered at load and unregistered at unload. */
	for (i = 0; group != VS_ARM_ALWAYS && i < ARRAY_SIZE(vs_fentries); i++)
		if (vs_fentries[i].arm == group && vs_fentries[i].filtered)
			ok &= !vs_arm_fentry(&vs_fentries[i], on);
	/* The network half's kprobes of the group (none, or not registered: nothing to do). */
	ok &= !vs_net_arm(group, on);
	for (i = 0; i < ARRAY_SIZE(vs_io_kps); i++)
		if (vs_io_kps[i].arm == group && vs_io_kp_on[i])
			ok &= !vs_arm_kprobe(&vs_io_kps[i].kp, on);
	for (i = 0; !on && i < ARRAY_SIZE(vs_krps); i++)
		if (vs_krps[i].arm == group)
			ok &= !vs_arm_kprobe(&vs_krps[i].rp.kp, false);
	return ok;
}

/*
 * Arming patches kernel text and allocates (ftrace's filter hashes), so it runs here, in a
 * kworker, not under the ioctl caller's memory policy; a group that fails (ENOMEM) is tried
 * again 100 ms later, then at twice the delay each time up to a minute, so that a failure
 * that lasts (text another tracer holds exclusively) costs a retry a minute, not ten a second.
 * A run that fails nothing starts the delay over. enable_kprobe and disable_kprobe of a probe
 * already in that state do nothing, so a partly armed group is simply armed again.
 */
#define VS_ARM_RETRY_MIN (HZ / 10)
#define VS_ARM_RETRY_MAX (60 * HZ)

static void vs_arm_workfn(struct work_struct *work);
static DECLARE_DELAYED_WORK(vs_arm_work, vs_arm_workfn);
/* The delay before the next retry, and the count below: under vs_arm_lock. */
static unsigned long vs_arm_retry = VS_ARM_RETRY_MIN;

/*
 * Arming runs that left some group not as wanted: read-only module parameter `arm_failures`,
 * so that a gate left unarmed is visible (the kernel log says which probe, rate-limited).
 */
static unsigned long arm_failures;
module_param(arm_failures, ulong, 0444);
MODULE_PARM_DESC(arm_failures, "Runs of the arm work item that could not arm or disarm some gate (retried, up to a minute apart)");

static void vs_arm_workfn(struct work_struct *work)
{
	u32 want, group;
	bool retry = false;

	mutex_lock(&vs_arm_lock);
	want = vs_arm_wanted();

	for (group = 1; group; group <<= 1) {
		bool on = want & group;

		if (!(group & (VS_ARM_ALL | VS_ARM_ALWAYS)) || !!(vs_armed & group) == on)
			continue;
		if (vs_arm_group(group, on))
			vs_armed ^= group;
		else
			retry = true;
	}
	if (retry) {
		WRITE_ONCE(arm_failures, arm_failures + 1);
		schedule_delayed_work(&vs_arm_work, vs_arm_retry);
		vs_arm_retry = min(vs_arm_retry * 2, (unsigned long)VS_ARM_RETRY_MAX);
	} else {
		vs_arm_retry = VS_ARM_RETRY_MIN;
	}
	mutex_unlock(&vs_arm_lock);
}

/*
 * Have the work item arm what the configuration needs and disarm the rest. Arming is done at
 * once (and waited for). With `lazy`, disarming alone waits a second, so that a configuration
 * switched on and off in a loop (a VS with a limit created and destroyed) patches kernel text
 * once, not every time; and when nothing is to change, no work item runs at all. A work item
 * still queued reads the configuration when it runs: this one or a newer.
 */
static void vs_arm(bool lazy)
{
	u32 want, armed;

	mutex_lock(&vs_arm_lock);
	want = vs_arm_wanted();
	armed = vs_armed;
	mutex_unlock(&vs_arm_lock);
	if (lazy && want == armed)
		return;
	if (lazy && !(want & ~armed)) {
		/* Not later than a second, even with a backed-off retry pending. */
		if (!delayed_work_pending(&vs_arm_work) ||
		    time_after(READ_ONCE(vs_arm_work.timer.expires), jiffies + HZ))
			mod_delayed_work(system_wq, &vs_arm_work, HZ);
		return;
	}
	mod_delayed_work(system_wq, &vs_arm_work, 0);
	flush_delayed_work(&vs_arm_work);
}

/* After a change of rules or limits (an ioctl): see vs_arm. */
void vs_glue_arm(void)
{
	vs_arm(true);
}

void vs_glue_probes_unregister(void)
{
	int i;

	/*
	 * Disarm in the work item too (what is left armed after a failure, the unregistering
	 * disarms). No ioctl runs now (an open /dev/vs holds the module): nothing queues it again.
	 */
	WRITE_ONCE(vs_arm_off, true);
	vs_arm(false);
	cancel_delayed_work_sync(&vs_arm_work);
	vs_fentries_unregister();
	unregister_kretprobes(vs_krp_ptrs, ARRAY_SIZE(vs_krps));
	unregister_kprobes(vs_kp_ptrs, ARRAY_SIZE(vs_kps));
	for (i = 0; i < ARRAY_SIZE(vs_io_kps); i++) {
		if (vs_io_kp_on[i])
			unregister_kprobe(&vs_io_kps[i].kp);
		vs_io_kp_on[i] = false;
	}
	for (i = 0; i < ARRAY_SIZE(vs_tps); i++) {
		if (vs_tps[i].registered)
			tracepoint_probe_unregister(vs_tps[i].tp, vs_tps[i].probe, NULL);
		vs_tps[i].registered = false;
	}
	/* No probe of ours is running or will run after this, */
	tracepoint_synchronize_unregister();
	/* nor a path resolution one of them asked for. */
	cancel_delayed_work_sync(&vs_paths_work);
}

int vs_glue_probes_register(void)
{
	int i, ret;

	ret = vs_find_just_return();
	if (ret)
		return ret;
	for_each_kernel_tracepoint(vs_find_tp, NULL);
	for (i = 0; i < ARRAY_SIZE(vs_tps); i++) {
		if (!vs_tps[i].tp) {
			pr_err("tracepoint %s not found\n", vs_tps[i].name);
			ret = -ENOENT;
			goto fail_tp;
		}
		ret = tracepoint_probe_register(vs_tps[i].tp, vs_tps[i].probe, NULL);
		if (ret) {
			pr_err("tracepoint %s: %d\n", vs_tps[i].name, ret);
			goto fail_tp;
		}
		vs_tps[i].registered = true;
	}
	/* Registered disarmed; armed below, by the arm work item. */
	vs_armed = 0;
	vs_arm_off = false;
	for (i = 0; i < ARRAY_SIZE(vs_kps); i++) {
		vs_kps[i].kp.flags = KPROBE_FLAG_DISABLED;
		vs_kp_ptrs[i] = &vs_kps[i].kp;
	}
	ret = register_kprobes(vs_kp_ptrs, ARRAY_SIZE(vs_kps));
	if (ret) {
		pr_err("kprobes: %d\n", ret);
		goto fail_tp;
	}
	for (i = 0; i < ARRAY_SIZE(vs_krps); i++) {
		vs_krps[i].rp.kp.flags = KPROBE_FLAG_DISABLED;
		vs_krp_ptrs[i] = &vs_krps[i].rp;
	}
	ret = register_kretprobes(vs_krp_ptrs, ARRAY_SIZE(vs_krps));
	if (ret) {
		pr_err("kretprobes: %d\n", ret);
		unregister_kprobes(vs_kp_ptrs, ARRAY_SIZE(vs_kps));
		goto fail_tp;
	}
	ret = vs_fentries_register();
	if (ret) {
		unregister_kretprobes(vs_krp_ptrs, ARRAY_SIZE(vs_krps));
		unregister_kprobes(vs_kp_ptrs, ARRAY_SIZE(vs_kps));
		goto fail_tp;
	}
	/* Optional probes: a kernel without the function has no such workers to miss. */
	for (i = 0; i < ARRAY_SIZE(vs_io_kps); i++) {
		vs_io_kps[i].kp.flags = KPROBE_FLAG_DISABLED;
		vs_io_kp_on[i] = register_kprobe(&vs_io_kps[i].kp) == 0;
	}
	vs_arm(false);
	return 0;

fail_tp:
	for (i = 0; i < ARRAY_SIZE(vs_tps); i++) {
		if (vs_tps[i].registered)
			tracepoint_probe_unregister(vs_tps[i].tp, vs_tps[i].probe, NULL);
		vs_tps[i].registered = false;
	}
	tracepoint_synchronize_unregister();
	return ret;
}

/* --- tasks, for ioctls --- */

/*
 * Call vs_rust_bind_task(ctx, task) for every thread of the process with pid `vpid` (in the
 * caller's pid namespace) and, with `tree`, of all its descendants. Returns -ESRCH if there is
 * no such process. Runs under RCU: the callback must not sleep.
 */
int vs_glue_for_each_task(pid_t vpid, bool tree, void *ctx)
{
	struct task_struct *leader, *g, *t;

	rcu_read_lock();
	leader = pid_task(find_vpid(vpid), PIDTYPE_PID);
	if (!leader) {
		rcu_read_unlock();
		return -ESRCH;
	}
	for_each_process_thread(g, t) {
		struct task_struct *a = g;

		if (tree) {
			/*
			 * Is g the process or a descendant of it? A child's real_parent is the
			 * thread that forked it, not always the leader: compare thread groups.
			 */
			while (!same_thread_group(a, leader) && a != &init_task &&
			       a->real_parent != a)
				a = rcu_dereference(a->real_parent);
		}
		if (same_thread_group(a, leader))
			vs_rust_bind_task(ctx, t->pid, t);
	}
	rcu_read_unlock();
	return 0;
}

/*
 * Whether the task has started exiting (its exit gate has run or is about to). Called under
 * the state lock, inside the seqcount's write section, before giving the task an entry. The
 * barrier pairs with the one in vs_tp_exit: either this sees PF_EXITING, or the exit gate's
 * unlocked read sees this write section and falls back to the lock (store buffering).
 */
bool vs_glue_task_exiting(const void *task)
{
	smp_mb();
	return READ_ONCE(((const struct task_struct *)task)->flags) & PF_EXITING;
}

/* The global pid of the task with `vpid` in the caller's namespace, or -ESRCH. */
int vs_glue_global_pid(pid_t vpid)
{
	struct task_struct *t;
	int ret = -ESRCH;

	rcu_read_lock();
	t = pid_task(find_vpid(vpid), PIDTYPE_PID);
	if (t)
		ret = t->pid;
	rcu_read_unlock();
	return ret;
}

/*
 * The pid of the task with global pid `pid` in the caller's pid namespace; 0 if the task is
 * not visible there (or gone). Atomic context is fine.
 */
int vs_glue_pid_for_caller(pid_t pid)
{
	struct pid *p;
	int nr = 0;

	rcu_read_lock();
	p = find_pid_ns(pid, &init_pid_ns);
	if (p)
		nr = pid_nr_ns(p, task_active_pid_ns(current));
	rcu_read_unlock();
	return nr;
}

/* --- the CPU controller's clock and its hands on tasks --- */

/*
 * These three parameters are part of the ABI (VS_PARAM_* in vs-core/src/abi.rs): vsctl top
 * reads them, so their names and meanings stay.
 */
static unsigned int cpu_period_ms = 100;
module_param(cpu_period_ms, uint, 0644);
MODULE_PARM_DESC(cpu_period_ms, "CPU share controller period in ms (10..10000, default 100)");

static unsigned long long cpu_ticks, cpu_tick_ns;
module_param(cpu_ticks, ullong, 0444);
MODULE_PARM_DESC(cpu_ticks, "CPU controller ticks run so far");
module_param(cpu_tick_ns, ullong, 0444);
MODULE_PARM_DESC(cpu_tick_ns, "Total time spent in CPU controller ticks, ns");

static void vs_cpu_workfn(struct work_struct *work);
static DECLARE_DELAYED_WORK(vs_cpu_work, vs_cpu_workfn);

static unsigned long vs_cpu_delay(void)
{
	return msecs_to_jiffies(clamp_t(unsigned int, READ_ONCE(cpu_period_ms), 10, 10000));
}

static void vs_cpu_workfn(struct work_struct *work)
{
	u64 t0 = ktime_get_ns();

	vs_rust_cpu_tick();
	WRITE_ONCE(cpu_tick_ns, cpu_tick_ns + ktime_get_ns() - t0);
	WRITE_ONCE(cpu_ticks, cpu_ticks + 1);
	schedule_delayed_work(&vs_cpu_work, vs_cpu_delay());
}

void vs_glue_cpu_start(void)
{
	schedule_delayed_work(&vs_cpu_work, vs_cpu_delay());
}

void vs_glue_cpu_stop(void)
{
	cancel_delayed_work_sync(&vs_cpu_work);
}

/* The task with global pid `pid`, referenced; NULL if none. */
static struct task_struct *vs_get_task(pid_t pid)
{
	struct task_struct *t;

	rcu_read_lock();
	t = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	if (t)
		get_task_struct(t);
	rcu_read_unlock();
	return t;
}

/* Sample a task for the controller: 0 and its state, or -ESRCH if it is gone or exiting. */
int vs_glue_task_sample(pid_t pid, bool *runnable, int *nice)
{
	struct task_struct *t = vs_get_task(pid);
	int ret = -ESRCH;

	if (!t)
		return ret;
	if (!(READ_ONCE(t->flags) & PF_EXITING)) {
		*runnable = task_is_running(t);
		*nice = task_nice(t);
		ret = 0;
	}
	put_task_struct(t);
	return ret;
}

/* Set the nice of task `pid` to `nice` if it is still `expect`: 0 done, 1 changed by someone
 * else meanwhile (left alone), -ESRCH gone. Process context only (takes the rq lock). */
int vs_glue_set_nice(pid_t pid, int expect, int nice)
{
	struct task_struct *t = vs_get_task(pid);
	int ret = 1;

	if (!t)
		return -ESRCH;
	if (task_nice(t) == expect) {
		set_user_nice(t, nice);
		ret = 0;
	}
	put_task_struct(t);
	return ret;
}
