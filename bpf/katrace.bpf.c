// SPDX-License-Identifier: GPL-2.0
/*
 * katrace: who closed each TCP connection, when, and after how long idle.
 *
 * Tracepoints only (tp_btf): fentry and kprobes are not available on
 * locked-down hosts. State changes and resets run in softirq, where the
 * current task is whoever was on the CPU, so the owner of a connection is
 * taken only from process-context hooks (connect, close, send, recv).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "katrace.h"

#define AF_INET  2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2

/* Set by the loader before load. */
const volatile __u16 filter_port = 0;	/* local or remote port, 0 = any */
const volatile bool filter_pid = false;	/* only tgids in target_tgids */
const volatile __u32 self_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);	/* resized by --max-conns */
	__type(key, __u64);		/* struct sock address */
	__type(value, struct conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} target_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Scratch space: struct conn is too big for the 512-byte stack with room to spare. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct conn);
} scratch SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);

	if (v)
		*v += 1;
}

static __always_inline void *reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count(CNT_RB_DROPS);
	return e;
}

static __always_inline void read_tuple(const struct sock *sk, struct tuple *t)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->family == AF_INET) {
		bpf_core_read(t->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(t->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline bool port_wanted(const struct tuple *t)
{
	return !filter_port || t->lport == filter_port || t->rport == filter_port;
}

/* Emission filter: the table tracks every connection (the owner of an
 * accepted socket is unknown until it is used), user space gets only these. */
static __always_inline bool wanted(const struct conn *c)
{
	if (!port_wanted(&c->t))
		return false;
	if (filter_pid && !bpf_map_lookup_elem(&target_tgids, &c->tgid))
		return false;
	return true;
}

static __always_inline void set_owner(struct conn *c)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (c->tgid == tgid)
		return;
	c->tgid = tgid;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
}

static __always_inline void push_state(struct conn *c, int state)
{
	__u8 n = c->nstates;

	if (n < MAX_STATES) {
		c->states[n] = state;
		c->nstates = n + 1;
	} else {
		/* keep the last slot current: the end state matters most */
		c->states[MAX_STATES - 1] = state;
	}
}

static __always_inline void fill_bytes(struct conn *c, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	c->bytes_in = BPF_CORE_READ(tp, bytes_received);
	c->bytes_out = BPF_CORE_READ(tp, bytes_acked);
}

static __always_inline void emit_conn(__u32 type, struct conn *c, __u64 now)
{
	struct conn_event *e;

	if (!wanted(c))
		return;
	e = reserve(sizeof(*e));
	if (!e)
		return;
	e->h.type = type;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.ts_ns = now;
	__builtin_memcpy(&e->c, c, sizeof(*c));
	bpf_ringbuf_submit(e, 0);
}

/* A fresh entry for sk, built in scratch space and inserted. */
static __always_inline struct conn *new_conn(const struct sock *sk, __u64 key,
					     int first_state, __u8 role, __u64 now)
{
	__u32 zero = 0;
	struct conn *c = bpf_map_lookup_elem(&scratch, &zero);

	if (!c)
		return NULL;
	__builtin_memset(c, 0, sizeof(*c));
	c->sk = key;
	c->role = role;
	c->start_ns = now;
	read_tuple(sk, &c->t);
	if (!port_wanted(&c->t))
		return NULL;
	push_state(c, first_state);
	if (bpf_map_update_elem(&conns, &key, c, BPF_ANY))
		count(CNT_MAP_FULL);
	return bpf_map_lookup_elem(&conns, &key);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn *c;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	/* connect(): process context, so the owner is known from the start */
	if (newstate == TCP_SYN_SENT) {
		c = new_conn(sk, key, TCP_SYN_SENT, ROLE_CLIENT, now);
		if (c)
			set_owner(c);
		return 0;
	}
	/* The child of a listener: SYN_RECV -> ESTABLISHED, in softirq. The
	 * pointer may belong to a socket freed moments ago: start afresh. */
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		c = new_conn(sk, key, TCP_SYN_RECV, ROLE_SERVER, now);
		if (c)
			push_state(c, TCP_ESTABLISHED);
		return 0;
	}

	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	push_state(c, newstate);

	if (oldstate == TCP_SYN_SENT) {
		if (newstate == TCP_ESTABLISHED) {
			c->start_ns = now;
			read_tuple(sk, &c->t);	/* the route picked the source address */
		} else {
			bpf_map_delete_elem(&conns, &key);	/* refused or timed out */
		}
		return 0;
	}
	if (oldstate != TCP_ESTABLISHED || c->closed_by != CLOSED_NONE)
		return 0;

	switch (newstate) {
	case TCP_FIN_WAIT1:		/* close()/shutdown(): process context */
		c->closed_by = CLOSED_LOCAL_FIN;
		set_owner(c);
		break;
	case TCP_CLOSE_WAIT:
		c->closed_by = CLOSED_PEER_FIN;
		break;
	case TCP_CLOSE:
		/* tcp_receive_reset marks a peer RST before this; otherwise the
		 * local side aborted (unread data, SO_LINGER 0, disconnect). */
		c->closed_by = CLOSED_LOCAL_RST;
		break;
	default:
		return 0;
	}
	c->close_ns = now;
	fill_bytes(c, sk);
	emit_conn(EV_CLOSE, c, now);
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return 0;
	fill_bytes(c, sk);
	emit_conn(EV_DESTROY, c, bpf_ktime_get_ns());
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

static __always_inline void emit_reset(const struct sock *sk, int reason, bool sent,
				       __u64 now)
{
	struct reset_event *e;
	struct conn *c = NULL;
	__u64 key = (__u64)sk;
	__u8 kind = RST_SK_NONE;

	if (sk) {
		int state = BPF_CORE_READ(sk, __sk_common.skc_state);

		kind = state == TCP_TIME_WAIT ? RST_SK_TIMEWAIT :
		       state == TCP_NEW_SYN_RECV ? RST_SK_REQUEST : RST_SK_FULL;
	}
	if (kind == RST_SK_FULL) {
		c = bpf_map_lookup_elem(&conns, &key);
		if (c && c->closed_by == CLOSED_NONE && !sent) {
			/* the state change to CLOSE follows this tracepoint */
			c->closed_by = CLOSED_PEER_RST;
			c->close_ns = now;
			fill_bytes(c, sk);
			emit_conn(EV_CLOSE, c, now);
		}
		if (c && !wanted(c))
			return;
	}

	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->h.type = EV_RESET;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.ts_ns = now;
	e->sk = key;
	e->reason = reason;
	e->sent = sent;
	e->sk_kind = kind;
	if (c) {
		e->t = c->t;	/* ports read now may already be released */
		e->tgid = c->tgid;
		__builtin_memcpy(e->comm, c->comm, sizeof(e->comm));
	} else if (sk) {
		read_tuple(sk, &e->t);
	}
	bpf_ringbuf_submit(e, 0);
}

/* Linux >= 6.10: tcp_send_reset(sk, skb, reason). The loader picks one of
 * the two programs below from the kernel's BTF. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	emit_reset(sk, reason, true, bpf_ktime_get_ns());
	return 0;
}

/* Linux < 6.10: tcp_send_reset(sk, skb), no reason. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	emit_reset(sk, -1, true, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	emit_reset(sk, -1, false, bpf_ktime_get_ns());
	return 0;
}

/* Data moved by a send/recv-family call, in the caller's context. Open
 * connections katrace did not see established are adopted here. */
static __always_inline struct conn *data_conn(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (c)
		return c;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED)
		return NULL;
	c = new_conn(sk, key, TCP_ESTABLISHED, ROLE_UNKNOWN, 0);
	return c;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send_length, struct sock *sk, int ret, int flags)
{
	struct conn *c;

	if (ret <= 0)
		return 0;
	c = data_conn(sk);
	if (!c)
		return 0;
	c->last_send_ns = bpf_ktime_get_ns();
	set_owner(c);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv_length, struct sock *sk, int ret, int flags)
{
	struct conn *c;

	if (ret <= 0)
		return 0;
	c = data_conn(sk);
	if (!c)
		return 0;
	if (!(flags & MSG_PEEK))	/* a peek leaves the data queued */
		c->last_recv_ns = bpf_ktime_get_ns();
	set_owner(c);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
