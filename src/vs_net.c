// SPDX-License-Identifier: GPL-2.0
/*
 * vs network glue: who requested a TCP connection, the accept queue served by share, and the
 * vsq qdisc. Like vs_glue.c it only extracts what the Rust side needs from kernel structures,
 * forwards it, and carries out the answer; the decisions are in src/net.rs and vs-core
 * (accept.rs: order and admission; drr.rs: the packet scheduler).
 *
 * Locks: a listener's rskq_lock is taken (irqsave: probes may run with interrupts off) around
 * scans of its accept queue, and may be held while Rust takes the state lock, never the other
 * way round. The qdisc runs under its own root lock and takes no lock of ours: what it reads
 * is published lock-free (src/net.rs).
 */
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/skbuff.h>
#include <net/dsfield.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/inet_sock.h>
#include <net/inet_timewait_sock.h>
#include <net/net_namespace.h>
#include <net/pkt_sched.h>
#include <net/request_sock.h>
#include <net/sch_generic.h>
#include <net/tcp.h>

#include "vs_cost.h"
#include "vs_glue.h"

static bool accept_by_share = true;
module_param(accept_by_share, bool, 0644);
MODULE_PARM_DESC(accept_by_share,
		 "Serve accept queues by requester share, with per-requester admission, where an accept rule applies to the acceptor (default Y)");

static bool trust_dscp = true;
module_param(trust_dscp, bool, 0644);
MODULE_PARM_DESC(trust_dscp,
		 "Take a TCP requester's VS from the DSCP it sent when its socket is not on this host (default Y; N: such requesters are the root)");

static unsigned int vsq_quantum = 1514;
module_param(vsq_quantum, uint, 0644);
MODULE_PARM_DESC(vsq_quantum, "vsq: bytes a pool with 10% of the machine's net share sends per round (default 1514)");

static unsigned int vsq_limit = 1000;
module_param(vsq_limit, uint, 0644);
MODULE_PARM_DESC(vsq_limit, "vsq: packets each net pool may have queued per qdisc (default 1000)");

/* Read-only: listeners managed now, and those that could not be (the table was full). */
static int vs_accept_listeners_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%lu\n", vs_rust_accept_listeners());
}

static const struct kernel_param_ops vs_accept_listeners_ops = {
	.get = vs_accept_listeners_get,
};
module_param_cb(accept_listeners, &vs_accept_listeners_ops, NULL, 0444);
MODULE_PARM_DESC(accept_listeners, "Listening sockets whose accept queue is served by share now (at most 256)");

static int vs_accept_unmanaged_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%llu\n", vs_rust_accept_unmanaged());
}

static const struct kernel_param_ops vs_accept_unmanaged_ops = {
	.get = vs_accept_unmanaged_get,
};
module_param_cb(accept_unmanaged, &vs_accept_unmanaged_ops, NULL, 0444);
MODULE_PARM_DESC(accept_unmanaged, "Accepts on a listener that could not be served by share because 256 others were (left FIFO)");

/* Accept-queue entries looked at per decision: the first ones in the queue. */
#define VS_ACCEPT_SCAN 128

/* --- the requester of a TCP connection --- */

/*
 * A socket's VS tag: its mark, which only the socket gate and CAP_NET_ADMIN can set. A client
 * that closed (or exited) after connecting is in TIME_WAIT by the time its connection is
 * accepted; the timewait socket keeps the mark.
 */
static u32 vs_sock_tag(const struct sock *sk)
{
	if (sk_fullsock(sk))
		return READ_ONCE(sk->sk_mark);
	if (sk->sk_state == TCP_TIME_WAIT)
		return READ_ONCE(inet_twsk(sk)->tw_mark);
	return 0;
}

/* The established (or connecting) socket at caddr:cport talking to saddr:sport in `net`. */
static struct sock *vs_lookup_client(struct net *net, __be32 caddr, __be16 cport,
				     __be32 saddr, __be16 sport)
{
	return __inet_lookup_established(net, net->ipv4.tcp_death_row.hashinfo, saddr, sport,
					 caddr, ntohs(cport), 0, 0);
}

/*
 * The VS tag (a VSID, 0: root) of the client at caddr:cport of a connection to saddr:sport
 * that arrived in `net` with TOS byte `tos`. A client on this host is asked directly: its
 * socket's tag, from the listener's namespace, else from the one other namespace that has
 * such a socket (two: ambiguous, root). A client elsewhere is named by the DSCP it sent, if
 * trust_dscp: any local client could set IP_TOS, so DSCP is never taken from one.
 */
static u32 vs_requester(struct net *net, __be32 caddr, __be16 cport, __be32 saddr,
			__be16 sport, u8 tos)
{
	struct sock *peer;
	struct net *n;
	u32 tag = 0;
	int found = 0;

	rcu_read_lock();
	peer = vs_lookup_client(net, caddr, cport, saddr, sport);
	if (peer) {
		found = 1;
		tag = vs_sock_tag(peer);
		sock_gen_put(peer);
	} else {
		for_each_net_rcu(n) {
			if (n == net)
				continue;
			peer = vs_lookup_client(n, caddr, cport, saddr, sport);
			if (!peer)
				continue;
			tag = vs_sock_tag(peer);
			sock_gen_put(peer);
			if (++found > 1)
				break;
		}
	}
	rcu_read_unlock();
	if (found == 1)
		return tag;
	if (found > 1 || !READ_ONCE(trust_dscp))
		return 0;
	return tos >> 2;
}

/* The requester of an established child socket (one in an accept queue, or just accepted). */
u32 vs_net_child_requester(struct sock *child)
{
	const struct inet_sock *inet = inet_sk(child);

	if (child->sk_family != AF_INET)
		return 0;
	return vs_requester(sock_net(child), inet->inet_daddr, inet->inet_dport,
			    inet->inet_rcv_saddr, inet->inet_sport, READ_ONCE(inet->rcv_tos));
}

/* --- the accept queue served by share --- */

/* The registry slot of the requester of a queued connection (root if it has no socket yet). */
static u16 vs_queued_slot(const struct request_sock *req)
{
	return vs_rust_slot_of_tag(req->sk ? vs_net_child_requester(req->sk) : 0);
}

/* Whether listener `sk` still listens (read under the state lock: see vs_rust_accept_forget). */
bool vs_net_listening(unsigned long sk)
{
	return READ_ONCE(((struct sock *)sk)->sk_state) == TCP_LISTEN;
}

/*
 * accept() is about to take the head of the listener's queue: if the listener is managed,
 * move the connection the Rust side picks (the requester most behind its share) to the head.
 * A function hook on inet_csk_accept's entry (vs_glue.c's vs_fentries).
 */
void vs_net_fe_accept(struct ftrace_regs *fregs)
{
	struct sock *sk = (struct sock *)ftrace_regs_get_argument(fregs, 0);
	struct request_sock_queue *queue;
	struct request_sock *req, *prev;
	u16 slots[VS_ACCEPT_SCAN];
	unsigned long flags;
	int n = 0, pick;

	if (!READ_ONCE(accept_by_share) || !sk || sk->sk_family != AF_INET)
		return;
	queue = &inet_csk(sk)->icsk_accept_queue;
	if (reqsk_queue_empty(queue) || !vs_rust_accept_may_manage(current->pid))
		return;
	spin_lock_irqsave(&queue->rskq_lock, flags);
	for (req = queue->rskq_accept_head; req && n < VS_ACCEPT_SCAN; req = req->dl_next)
		slots[n++] = vs_queued_slot(req);
	/* Manages the listener (if an accept rule applies) and picks, under one state lock. */
	pick = vs_rust_accept_pick(current->pid, (unsigned long)sk, slots, n);
	if (pick > 0 && pick < n) {
		/* Unlink the picked request and put it at the head. */
		for (prev = queue->rskq_accept_head; --pick; prev = prev->dl_next)
			;
		req = prev->dl_next;
		prev->dl_next = req->dl_next;
		if (queue->rskq_accept_tail == req)
			queue->rskq_accept_tail = prev;
		req->dl_next = queue->rskq_accept_head;
		WRITE_ONCE(queue->rskq_accept_head, req);
	}
	spin_unlock_irqrestore(&queue->rskq_lock, flags);
}

/*
 * Whether the connection that `skb` (a SYN, or the ACK completing a handshake) asks to add to
 * listener `sk` is to be refused because its requester already holds its share of the
 * backlog (only on managed listeners). Softirq.
 */
static bool vs_over_share(const struct sock *sk, struct sk_buff *skb)
{
	struct request_sock_queue *queue;
	struct request_sock *req;
	const struct iphdr *iph;
	const struct tcphdr *th;
	unsigned long flags;
	u32 slot, held = 0, n = 0;

	if (!READ_ONCE(accept_by_share) || sk->sk_family != AF_INET ||
	    !vs_rust_accept_managed((unsigned long)sk))
		return false;
	iph = ip_hdr(skb);
	th = tcp_hdr(skb);
	slot = vs_rust_slot_of_tag(vs_requester(sock_net(sk), iph->saddr, th->source,
						iph->daddr, th->dest, ipv4_get_dsfield(iph)));
	/* The listener is const to the TCP code here; its queue lock is what guards the queue. */
	queue = &inet_csk((struct sock *)sk)->icsk_accept_queue;
	spin_lock_irqsave(&queue->rskq_lock, flags);
	for (req = queue->rskq_accept_head; req && n < VS_ACCEPT_SCAN; req = req->dl_next, n++)
		if (vs_queued_slot(req) == slot)
			held++;
	spin_unlock_irqrestore(&queue->rskq_lock, flags);
	return !vs_rust_accept_admit(slot, held, READ_ONCE(sk->sk_max_ack_backlog));
}

/*
 * A SYN for a managed listener: drop it, as a full accept queue does (tcp_conn_request's
 * drop path), if its requester holds its share of the backlog. Refusing at the SYN keeps a
 * flood from filling the SYN queue, which is shared by every requester.
 */
static int vs_kp_conn_request(struct kprobe *p, struct pt_regs *regs)
{
	const struct sock *sk = (const struct sock *)regs_get_kernel_argument(regs, 0);
	struct sk_buff *skb = (struct sk_buff *)regs_get_kernel_argument(regs, 1);

	if (!vs_over_share(sk, skb))
		return 0;
	tcp_listendrop(sk);
	return vs_override_return(regs, 0);
}

/*
 * A handshake completes (several can be in flight for one requester): refuse the connection
 * the way a full backlog does. tcp_v4_syn_recv_sock returns NULL to tcp_check_req, which
 * keeps the request for the client's next retry.
 */
static int vs_kp_syn_recv(struct kprobe *p, struct pt_regs *regs)
{
	const struct sock *sk = (const struct sock *)regs_get_kernel_argument(regs, 0);
	struct sk_buff *skb = (struct sk_buff *)regs_get_kernel_argument(regs, 1);

	if (!vs_over_share(sk, skb))
		return 0;
	__NET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);
	tcp_listendrop(sk);
	return vs_override_return(regs, 0);
}

/* A post handler makes a kprobe IPMODIFY, which changing regs->ip requires. */
static void vs_kp_post_nop(struct kprobe *p, struct pt_regs *regs, unsigned long flags)
{
}

/* A listener stops listening (close, disconnect): it is no longer managed. */
static int vs_kp_listen_stop(struct kprobe *p, struct pt_regs *regs)
{
	vs_rust_accept_forget(regs_get_kernel_argument(regs, 0));
	return 0;
}

VS_TIMED_KPROBE(vs_kp_conn_request, VS_G_CONN_REQUEST)
VS_TIMED_KPROBE(vs_kp_syn_recv, VS_G_SYN_RECV)
VS_TIMED_KPROBE(vs_kp_listen_stop, VS_G_LISTEN_STOP)

/*
 * The admission probes are armed with VS_ARM_ACCEPT (while an accept rule exists: only then is
 * a listener managed, see vs_rust_accept_pick), by vs_glue.c's arm work item through
 * vs_net_arm; a listener's teardown is always watched, so that a managed listener is never
 * left in the table after it closes.
 */
#define VS_NET_KP_ADMISSION 2
static struct kprobe vs_net_kps[] = {
	{ .symbol_name = "tcp_v4_conn_request", .pre_handler = vs_kp_conn_request_timed,
	  .post_handler = vs_kp_post_nop },
	{ .symbol_name = "tcp_v4_syn_recv_sock", .pre_handler = vs_kp_syn_recv_timed,
	  .post_handler = vs_kp_post_nop },
	{ .symbol_name = "inet_csk_listen_stop", .pre_handler = vs_kp_listen_stop_timed },
};
static struct kprobe *vs_net_kp_ptrs[ARRAY_SIZE(vs_net_kps)];
/*
 * Whether vs_net_kps are registered. Guarded by vs_net_arm_lock, which vs_net_arm holds while
 * it arms, so that the arm work item never touches a probe being registered or unregistered.
 * Lock order: vs_glue.c's vs_arm_lock, then this one, then kprobes' own.
 */
static bool vs_net_kps_on;
static DEFINE_MUTEX(vs_net_arm_lock);

/* Arm (or disarm) the network probes of arming group `group`; 0 once they are as asked. */
int vs_net_arm(u32 group, bool on)
{
	int i, ret = 0;

	if (group != VS_ARM_ACCEPT)
		return 0;
	mutex_lock(&vs_net_arm_lock);
	for (i = 0; vs_net_kps_on && i < VS_NET_KP_ADMISSION; i++)
		ret = vs_arm_kprobe(&vs_net_kps[i], on) ?: ret;
	mutex_unlock(&vs_net_arm_lock);
	return ret;
}

/* --- vsq: per-pool queues served by deficit round robin --- */

struct vs_vsq {
	void *drr;			/* the Rust scheduler (src/net.rs) */
	struct sk_buff_head *queues;	/* one per registry slot (net pool) */
};

/* What a queued packet remembers, in the qdisc's part of skb->cb. */
struct vs_vsq_cb {
	u32 slot;
	u32 gen;
};

static struct vs_vsq_cb *vs_vsq_cb(struct sk_buff *skb)
{
	qdisc_cb_private_validate(skb, sizeof(struct vs_vsq_cb));
	return (struct vs_vsq_cb *)qdisc_skb_cb(skb)->data;
}

/* The packet's VS tag: its socket's, else its mark. */
static u32 vs_skb_tag(struct sk_buff *skb)
{
	struct sock *sk = skb_to_full_sk(skb);

	return sk ? vs_sock_tag(sk) : skb->mark;
}

static u32 vs_skb_dscp(struct sk_buff *skb)
{
	int off = skb_network_offset(skb);

	switch (skb_protocol(skb, true)) {
	case htons(ETH_P_IP):
		if (!pskb_may_pull(skb, off + sizeof(struct iphdr)))
			return 0;
		return ipv4_get_dsfield(ip_hdr(skb)) >> 2;
	case htons(ETH_P_IPV6):
		if (!pskb_may_pull(skb, off + sizeof(struct ipv6hdr)))
			return 0;
		return ipv6_get_dsfield(ipv6_hdr(skb)) >> 2;
	}
	return 0;
}

long vs_vsq_head_len(void *priv, u32 pool)
{
	struct vs_vsq *q = priv;
	struct sk_buff *skb;

	if (pool >= VS_GLUE_SLOTS)
		return -1;
	skb = skb_peek(&q->queues[pool]);
	return skb ? qdisc_pkt_len(skb) : -1;
}

static int vsq_enqueue(struct sk_buff *skb, struct Qdisc *sch, struct sk_buff **to_free)
{
	struct vs_vsq *q = qdisc_priv(sch);
	struct vs_vsq_cb *cb = vs_vsq_cb(skb);
	unsigned int len = qdisc_pkt_len(skb);
	struct vs_vsq_class c;
	u32 tag = vs_skb_tag(skb);
	u64 quantum;

	vs_rust_vsq_classify(tag, tag ? 0 : vs_skb_dscp(skb), &c);
	if (c.pool >= VS_GLUE_SLOTS)
		c.pool = 0;
	cb->slot = c.slot;
	cb->gen = c.gen;
	if (skb_queue_len(&q->queues[c.pool]) >= READ_ONCE(vsq_limit)) {
		vs_rust_vsq_count(c.slot, c.gen, len, true);
		return qdisc_drop(skb, sch, to_free);
	}
	__skb_queue_tail(&q->queues[c.pool], skb);
	quantum = div_u64((u64)READ_ONCE(vsq_quantum) * c.pool_ppm, 100000);
	vs_rust_vsq_enqueued(q->drr, c.pool, min_t(u64, quantum, U32_MAX));
	qdisc_qstats_backlog_inc(sch, skb);
	sch->q.qlen++;
	return NET_XMIT_SUCCESS;
}

static struct sk_buff *vsq_dequeue(struct Qdisc *sch)
{
	struct vs_vsq *q = qdisc_priv(sch);
	struct sk_buff *skb;
	int pool;

	pool = vs_rust_vsq_pick(q->drr, q);
	if (pool < 0 || pool >= VS_GLUE_SLOTS)
		return NULL;
	skb = __skb_dequeue(&q->queues[pool]);
	vs_rust_vsq_dequeued(q->drr, pool, skb_queue_empty(&q->queues[pool]));
	if (!skb)
		return NULL;
	qdisc_qstats_backlog_dec(sch, skb);
	sch->q.qlen--;
	qdisc_bstats_update(sch, skb);
	vs_rust_vsq_count(vs_vsq_cb(skb)->slot, vs_vsq_cb(skb)->gen, qdisc_pkt_len(skb), false);
	return skb;
}

/* Drop every queued packet, counting each as a drop of its VS. */
static void vsq_purge(struct Qdisc *sch)
{
	struct vs_vsq *q = qdisc_priv(sch);
	struct sk_buff *skb;
	int i;

	if (!q->queues)
		return;
	for (i = 0; i < VS_GLUE_SLOTS; i++) {
		while ((skb = __skb_dequeue(&q->queues[i]))) {
			vs_rust_vsq_count(vs_vsq_cb(skb)->slot, vs_vsq_cb(skb)->gen,
					  qdisc_pkt_len(skb), true);
			rtnl_kfree_skbs(skb, skb);
		}
	}
	if (q->drr)
		vs_rust_vsq_reset(q->drr);
	sch->q.qlen = 0;
	sch->qstats.backlog = 0;
}

static void vsq_reset(struct Qdisc *sch)
{
	vsq_purge(sch);
}

static void vsq_destroy(struct Qdisc *sch)
{
	struct vs_vsq *q = qdisc_priv(sch);

	/* Also after a failed init, with either half missing. */
	vsq_purge(sch);
	kvfree(q->queues);
	q->queues = NULL;
	vs_rust_vsq_free(q->drr);
	q->drr = NULL;
}

static int vsq_init(struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	struct vs_vsq *q = qdisc_priv(sch);
	int i;

	if (opt) {
		NL_SET_ERR_MSG(extack, "vsq takes no options: shares come from /dev/vs, knobs are module parameters");
		return -EINVAL;
	}
	q->queues = kvcalloc(VS_GLUE_SLOTS, sizeof(*q->queues), GFP_KERNEL);
	if (!q->queues)
		return -ENOMEM;
	for (i = 0; i < VS_GLUE_SLOTS; i++)
		__skb_queue_head_init(&q->queues[i]);
	q->drr = vs_rust_vsq_new();
	return q->drr ? 0 : -ENOMEM;
}

static struct Qdisc_ops vsq_ops __read_mostly = {
	.id = "vsq",
	.priv_size = sizeof(struct vs_vsq),
	.enqueue = vsq_enqueue,
	.dequeue = vsq_dequeue,
	.peek = qdisc_peek_dequeued,
	.init = vsq_init,
	.reset = vsq_reset,
	.destroy = vsq_destroy,
	.owner = THIS_MODULE,
};
MODULE_ALIAS_NET_SCH("vsq");

/* --- registration --- */

/* Hits the network kprobes missed (for the probe_misses parameter). */
unsigned long vs_net_probe_misses(void)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(vs_net_kps); i++)
		n += READ_ONCE(vs_net_kps[i].nmissed);
	return n;
}

int vs_net_register(void)
{
	int i, ret;

	mutex_lock(&vs_net_arm_lock);
	for (i = 0; i < ARRAY_SIZE(vs_net_kps); i++) {
		/* The admission probes start disarmed: the arm work item arms them. */
		vs_net_kps[i].flags = i < VS_NET_KP_ADMISSION ? KPROBE_FLAG_DISABLED : 0;
		vs_net_kp_ptrs[i] = &vs_net_kps[i];
	}
	ret = register_kprobes(vs_net_kp_ptrs, ARRAY_SIZE(vs_net_kps));
	vs_net_kps_on = !ret;
	mutex_unlock(&vs_net_arm_lock);
	if (ret)
		pr_err("network kprobes: %d\n", ret);
	/* Nothing to arm yet: the state is new, with no accept rule. */
	return ret;
}

void vs_net_unregister(void)
{
	mutex_lock(&vs_net_arm_lock);
	if (vs_net_kps_on)
		unregister_kprobes(vs_net_kp_ptrs, ARRAY_SIZE(vs_net_kps));
	vs_net_kps_on = false;
	mutex_unlock(&vs_net_arm_lock);
}

/*
 * The vsq qdisc: registered after the gates, last before /dev/vs, because an instance made
 * while the module is still loading holds a reference a failed load would not wait for.
 */
int vs_vsq_register(void)
{
	int ret = register_qdisc(&vsq_ops);

	if (ret)
		pr_err("register_qdisc(vsq): %d\n", ret);
	return ret;
}

void vs_vsq_unregister(void)
{
	/* No vsq instance exists: each holds a reference on the module. */
	unregister_qdisc(&vsq_ops);
}
