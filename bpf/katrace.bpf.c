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
#include "pages.bpf.h"
#include "core_fixes.bpf.h"

#define AF_INET	     2
#define AF_INET6     10
#define IPPROTO_TCP  6
#define MSG_PEEK     2
#define MSG_ZEROCOPY 0x4000000
#define MSG_FASTOPEN 0x20000000
#define PF_EXITING   0x00000004 /* include/linux/sched.h: macros are not in BTF */
#define TCPHDR_SYN   0x02
#define TCPHDR_RST   0x04

/* Set by the loader before load. */
const volatile __u16 filter_port = 0;	/* local or remote port, 0 = any */
const volatile bool filter_pid = false; /* only tgids in target_tgids */
const volatile __u64 filter_cgroup = 0; /* cgroup v2 id, 0 = any */
/* enum level. LEVEL_CONN (the sidecar's): no program runs per send or
 * receive call, so when data last moved comes from the socket's jiffies
 * stamps. */
const volatile __u8 trace_level = LEVEL_REQUEST;
const volatile __u64 ns_per_jiffy = 0;

#define MAX_CGROUP_DEPTH 16

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized by --max-conns */
	__type(key, __u64);	    /* struct sock address */
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

/* The last request that arrived on each idle HTTP connection (see stash_arrival). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized with conns */
	__type(key, __u64);
	__type(value, struct arrival);
} arrivals SEC(".maps");

/* Processes that own listeners or accepted connections: their exits are
 * events (a client's exit fails no request it serves). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct listen_entry);
} listeners SEC(".maps");

/* With -p: the ports the traced processes listen on. The next process to
 * listen on one (a restart) is traced from its listen() on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} followed_ports SEC(".maps");

/* The TLS library's calls (uprobes on SSL_read/SSL_write), per thread: the
 * plaintext of an SSL_write until the thread's next write to a TLS
 * connection claims it; the buffer an SSL_read fills; the TLS connection
 * the thread last read, which that plaintext came from. */
struct tls_write {
	__u64 buf;
	__u32 len;
	__u32 _pad;
	__u64 ts_ns;
};

struct tls_read {
	__u64 buf;
	__u64 readbytes; /* SSL_read_ex's size_t *, 0 for SSL_read */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tls_write);
} tls_writes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tls_read);
} tls_reads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tls_last_read SEC(".maps");

/* Set by the loader when it attached the uprobes. */
const volatile bool tls_probes = false;

/* Zeroed templates that new entries are inserted from, then filled in
 * place: the structs are too big for the 512-byte stack, and a per-CPU
 * scratch slot could be overwritten by a program nested in softirq. */
const volatile struct conn empty_conn = {};
const volatile struct arrival empty_arrival = {};
const volatile struct listen_entry empty_listen_entry = {};

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
		count(CNT_DROPPED);
	return e;
}

/* Waking the reader for every record costs an irq_work and a context switch
 * each: wake it only once a batch is waiting (it also reads every 100 ms). */
#define WAKEUP_BYTES (64 * 1024)

static __always_inline void submit(void *e)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ?
			      BPF_RB_FORCE_WAKEUP :
			      BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(e, flags);
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
	if (filter_pid && !c->in_targets)
		return false;
	if (filter_cgroup && !c->in_cgroup)
		return false;
	return true;
}

/* Is the current task in filter_cgroup or below it? */
static __always_inline bool in_cgroup_tree(void)
{
	int level;

	for (level = 0; level < MAX_CGROUP_DEPTH; level++) {
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);

		if (!id)
			return false;
		if (id == filter_cgroup)
			return true;
	}
	return false;
}

static __always_inline void note_owner(__u32 tgid)
{
	__u8 one = 1;

	bpf_map_update_elem(&owners, &tgid, &one, BPF_ANY);
}

/* The owner, from a hook in its process context. A state change or a
 * destroy runs in it exactly when the socket is locked by its user (a
 * close(), shutdown() or the backlog processed on its release): in softirq
 * the kernel defers work on a socket its user holds. */
static __always_inline void set_owner(struct conn *c)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (c->tgid == tgid)
		return;
	c->tgid = tgid;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
	if (filter_cgroup)
		c->in_cgroup = in_cgroup_tree();
	/* decided once per owner, as the cgroup is: wanted() runs on every call */
	if (filter_pid)
		c->in_targets = !!bpf_map_lookup_elem(&target_tgids, &tgid);
	if (c->role == ROLE_SERVER) /* a server's exit can fail requests; a client's not */
		note_owner(tgid);
}

/* A state change or destroy in the owner's context (the socket locked by
 * its user): the owner, and whether it is exiting (a crash, a kill, an
 * exit with the socket still open), which makes the close no idle timeout. */
static __always_inline void owner_acts(struct conn *c)
{
	set_owner(c);
	if (bpf_get_current_task_btf()->flags & PF_EXITING)
		c->closed_exiting = 1;
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

/* What the socket itself knows at an event: bytes moved and,
 * at the conn level, when data last went each way. lsndtime and lrcvtime
 * are the kernel's own (it restarts cwnd after idle and paces delayed ACKs
 * by them): the last data segment sent and received, to a jiffy. */
static __always_inline void fill_from_socket(struct conn *c, const struct sock *sk, __u64 now)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 jnow;

	c->bytes_in = BPF_CORE_READ(tp, bytes_received);
	c->bytes_out = BPF_CORE_READ(tp, bytes_acked);
	if (trace_level != LEVEL_CONN)
		return;
	jnow = bpf_jiffies64();
	if (BPF_CORE_READ(tp, data_segs_out))
		c->last_send_ns =
			now - (__u64)(__u32)(jnow - BPF_CORE_READ(tp, lsndtime)) * ns_per_jiffy;
	if (BPF_CORE_READ(tp, data_segs_in))
		c->last_recv_ns =
			now -
			(__u64)(__u32)(jnow - BPF_CORE_READ(tp, inet_conn.icsk_ack.lrcvtime)) *
				ns_per_jiffy;
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
	submit(e);
}

/* A fresh entry for sk (replacing any left by a freed socket at the same
 * address). */
static __always_inline struct conn *new_conn(const struct sock *sk, __u64 key, int first_state,
					     __u8 role, __u64 now)
{
	struct tuple t = {};
	struct conn *c;

	read_tuple(sk, &t);
	if (!port_wanted(&t))
		return NULL;
	if (bpf_map_update_elem(&conns, &key, (const void *)&empty_conn, BPF_ANY)) {
		count(CNT_TABLE_FULL);
		return NULL;
	}
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return NULL;
	c->sk = key;
	c->role = role;
	c->level = trace_level;
	c->start_ns = now;
	c->t = t;
	push_state(c, first_state);
	return c;
}

/* A connection starting: connect() (SYN_SENT, in process context, so the
 * owner is known from the start), or the child of a listener reaching
 * ESTABLISHED (in softirq; the pointer may belong to a socket freed moments
 * ago: start afresh). False for any other transition. */
static __always_inline bool conn_opened(const struct sock *sk, __u64 key, int oldstate,
					int newstate, __u64 now)
{
	struct conn *c;

	if (newstate == TCP_SYN_SENT) {
		c = new_conn(sk, key, TCP_SYN_SENT, ROLE_CLIENT, now);
		if (c)
			set_owner(c);
		return true;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		c = new_conn(sk, key, TCP_SYN_RECV, ROLE_SERVER, now);
		if (c)
			push_state(c, TCP_ESTABLISHED);
		return true;
	}
	return false;
}

/* The entry of a connection changing state, if it has one. At the conn
 * level, one evicted, or open since before katrace started and never idle
 * under tcp_probe, is adopted at its close (its ports still read right
 * then, unlike at an abort's CLOSE): its resets then match. */
static __always_inline struct conn *conn_of(const struct sock *sk, __u64 key, int oldstate,
					    int newstate)
{
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (c || oldstate != TCP_ESTABLISHED)
		return c;
	count(CNT_UNTRACKED_CLOSE);
	if (trace_level == LEVEL_CONN && (newstate == TCP_FIN_WAIT1 || newstate == TCP_CLOSE_WAIT))
		c = new_conn(sk, key, TCP_ESTABLISHED, ROLE_UNKNOWN, 0);
	return c;
}

/* A connect() that ended: established (the route picked the source
 * address), or refused or timed out. */
static __always_inline void connect_done(struct conn *c, const struct sock *sk, __u64 key,
					 int newstate, __u64 now)
{
	if (newstate == TCP_ESTABLISHED) {
		c->start_ns = now;
		read_tuple(sk, &c->t);
	} else {
		bpf_map_delete_elem(&conns, &key);
	}
}

/* The first transition out of ESTABLISHED says who closed: sent with the
 * socket's own stamps as an EV_CLOSE. */
/* A close by the peer handled in softirq: if the task it interrupted is
 * exiting, on one host that is the peer closing as it exits. */
static __always_inline void note_peer_exiting(struct conn *c, const struct sock *sk)
{
	if (!sk->sk_lock.owned && (bpf_get_current_task_btf()->flags & PF_EXITING) &&
	    (bpf_get_current_pid_tgid() >> 32) != c->tgid)
		c->peer_exiting = 1;
}

static __always_inline void conn_closing(struct conn *c, const struct sock *sk, int newstate,
					 __u64 now)
{
	if (newstate == TCP_CLOSE_WAIT)
		note_peer_exiting(c, sk);
	switch (newstate) {
	case TCP_FIN_WAIT1:
		c->closed_by = CLOSED_LOCAL_FIN;
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
		return;
	}
	c->close_ns = now;
	fill_from_socket(c, sk, now);
	emit_conn(EV_CLOSE, c, now);
}

/* A traced process's port is followed; whoever listens on a followed port
 * is traced. */
static __always_inline void follow_port(__u16 port, __u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&target_tgids, &tgid))
		bpf_map_update_elem(&followed_ports, &port, &one, BPF_ANY);
	else if (bpf_map_lookup_elem(&followed_ports, &port))
		bpf_map_update_elem(&target_tgids, &tgid, &one, BPF_ANY);
}

static __always_inline void emit_owner(__u32 type, const struct tuple *t, __u32 tgid,
				       const char *comm, int exit_code, bool up, __u64 now)
{
	struct owner_event *e = reserve(sizeof(*e));

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->h.type = type;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.ts_ns = now;
	if (t)
		e->t = *t;
	e->tgid = tgid;
	e->exit_code = exit_code;
	e->up = up;
	bpf_probe_read_kernel(e->comm, sizeof(e->comm), comm);
	submit(e);
}

static __always_inline bool tgid_traced(__u32 tgid)
{
	return !filter_pid || bpf_map_lookup_elem(&target_tgids, &tgid);
}

/* listen(), in the caller's context: kept, with its port, for its close.
 * With -p, a traced process's port is followed, and the next process to
 * listen on it (a restart) traced. */
static __always_inline void listener_up(const struct sock *sk, __u64 key, __u64 now)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct listen_entry *l;
	struct tuple t = {};

	read_tuple(sk, &t);
	if (filter_port && t.lport != filter_port)
		return;
	if (filter_pid)
		follow_port(t.lport, tgid);
	if (!tgid_traced(tgid))
		return;
	bpf_map_update_elem(&listeners, &key, (const void *)&empty_listen_entry, BPF_ANY);
	l = bpf_map_lookup_elem(&listeners, &key);
	if (!l)
		return;
	l->t = t;
	l->tgid = tgid;
	bpf_get_current_comm(l->comm, sizeof(l->comm));
	note_owner(tgid);
	emit_owner(EV_LISTEN, &l->t, l->tgid, l->comm, 0, true, now);
}

/* The listener closed: by close(), or by its owner's exit. */
static __always_inline void listener_down(__u64 key, __u64 now)
{
	struct listen_entry *l = bpf_map_lookup_elem(&listeners, &key);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	char comm[TASK_COMM_LEN];

	if (l) {
		emit_owner(EV_LISTEN, &l->t, l->tgid, l->comm, 0, false, now);
		bpf_map_delete_elem(&listeners, &key);
		return;
	}
	/* listening since before katrace started: its port reads 0 now, but
	 * this runs in its owner's context */
	if (!tgid_traced(tgid))
		return;
	bpf_get_current_comm(comm, sizeof(comm));
	emit_owner(EV_LISTEN, NULL, tgid, comm, 0, false, now);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn *c;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	/* derived at the first connections, before a segment needs it (a
	 * segment with no socket gives no cache to start from) */
	page_va(sk);
	if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
		if (newstate == TCP_LISTEN)
			listener_up(sk, key, now);
		else
			listener_down(key, now);
		return 0;
	}
	if (conn_opened(sk, key, oldstate, newstate, now))
		return 0;
	c = conn_of(sk, key, oldstate, newstate);
	if (!c)
		return 0;
	push_state(c, newstate);
	if (oldstate == TCP_SYN_SENT) {
		connect_done(c, sk, key, newstate, now);
		return 0;
	}
	if (sk->sk_lock.owned)
		owner_acts(c);
	if (oldstate == TCP_ESTABLISHED && c->closed_by == CLOSED_NONE)
		conn_closing(c, sk, newstate, now);
	return 0;
}

/* Whether the requests that arrive on a connection are kept (stash_arrival):
 * on the server end of HTTP, in the clear or inside TLS. */
static __always_inline bool keeps_arrivals(const struct conn *c)
{
	return (c->proto == PROTO_HTTP || c->proto == PROTO_TLS) && c->role == ROLE_SERVER;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_ns();
	struct conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return 0;
	if (sk->sk_lock.owned) /* close() of a socket already in CLOSE */
		owner_acts(c);
	fill_from_socket(c, sk, now);
	emit_conn(EV_DESTROY, c, now);
	if (keeps_arrivals(c))
		bpf_map_delete_elem(&arrivals, &key);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* Where the TCP payload of skb starts, and how many of its bytes the linear
 * area holds (the rest is in page fragments: read_segment reaches those
 * through a dynptr where the kernel allows it). */
static __always_inline void *skb_payload(const struct sk_buff *skb, __u32 *linear, __u32 *total)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u32 len = BPF_CORE_READ(skb, len), data_len = BPF_CORE_READ(skb, data_len);
	__u16 th_off = BPF_CORE_READ(skb, transport_header);
	unsigned char *payload, *linear_end;
	__u8 doff;

	if (bpf_probe_read_kernel(&doff, 1, head + th_off + 12))
		return NULL;
	payload = head + th_off + (doff >> 4) * 4;
	linear_end = data + (len - data_len);
	if (payload < data || payload - data > len)
		return NULL;
	*total = len - (payload - data);
	*linear = payload < linear_end ? linear_end - payload : 0;
	return payload;
}

/* The tuple of a received segment, as the local socket would see it. */
static __always_inline void skb_tuple(const struct sk_buff *skb, struct tuple *t)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *ip = head + BPF_CORE_READ(skb, network_header);
	unsigned char *th = head + BPF_CORE_READ(skb, transport_header);
	__u16 ports[2] = {};
	__u8 ver = 0;

	bpf_probe_read_kernel(&ver, 1, ip);
	bpf_probe_read_kernel(ports, sizeof(ports), th);
	t->rport = bpf_ntohs(ports[0]);
	t->lport = bpf_ntohs(ports[1]);
	if ((ver >> 4) == 4) {
		t->family = AF_INET;
		bpf_probe_read_kernel(t->raddr, 4, ip + 12);
		bpf_probe_read_kernel(t->laddr, 4, ip + 16);
	} else {
		t->family = AF_INET6;
		bpf_probe_read_kernel(t->raddr, 16, ip + 8);
		bpf_probe_read_kernel(t->laddr, 16, ip + 24);
	}
}

/* The verifier needs to see the bound on the register passed as a size. */
static __always_inline __u64 payload_size(__u64 n)
{
	if (n > MAX_PAYLOAD)
		n = MAX_PAYLOAD;
	barrier_var(n);
	return n;
}

static __always_inline __u32 read_kernel_bytes(__u8 *dst, const void *src, __u64 n)
{
	n = payload_size(n);
	if (n && bpf_probe_read_kernel(dst, n, src))
		return 0;
	return n;
}

/* Copies up to want bytes of skb's TCP payload (total bytes, linear of
 * them in the linear area) into dst: from the linear area when it holds
 * any, else from the page fragments (read_fragments, bpf/core_fixes.bpf.h).
 * Returns how many bytes it copied, 0 when it could not. */
static __always_inline __u32 read_segment(const struct sock *sk, const struct sk_buff *skb,
					  void *payload, __u32 linear, __u32 total, __u8 *dst,
					  __u64 want)
{
	if (linear)
		return read_kernel_bytes(dst, payload, linear < want ? linear : want);
	want = payload_size(want);
	if (!want)
		return 0;
	/* a direct load: a probe-read temporary could take a dynptr's stack slot */
	return read_fragments(sk, skb, skb->len - total, dst, want);
}

/* What the kernel handed tcp_send_reset or tcp_receive_reset as the socket. */
static __always_inline __u8 sk_kind_of(const struct sock *sk, int state)
{
	if (!sk)
		return SK_KIND_NONE;
	return state == TCP_TIME_WAIT	 ? SK_KIND_TIMEWAIT :
	       state == TCP_NEW_SYN_RECV ? SK_KIND_REQUEST :
					   SK_KIND_FULL;
}

/* Whether a received segment is TCP (its network header's protocol). */
static __always_inline bool is_tcp(const struct sk_buff *skb)
{
	unsigned char *ip = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, network_header);
	__u8 ver = 0, proto = 0;

	bpf_probe_read_kernel(&ver, 1, ip);
	if ((ver >> 4) == 4)
		bpf_probe_read_kernel(&proto, 1, ip + 9);
	else if ((ver >> 4) == 6)
		bpf_probe_read_kernel(&proto, 1,
				      ip + 6); /* no extension headers: a plain segment */
	return proto == IPPROTO_TCP;
}

/* The TCP flags of a segment (SYN: a connection attempt). */
static __always_inline __u8 skb_tcp_flags(const struct sk_buff *skb)
{
	unsigned char *th = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, transport_header);
	__u8 flags = 0;

	bpf_probe_read_kernel(&flags, 1, th + 13);
	return flags;
}

/* The peer's RST closes a connection no FIN closed: the state change to
 * CLOSE follows this tracepoint, so the close is marked and sent here. */
static __always_inline void close_on_peer_reset(struct conn *c, const struct sock *sk, __u64 now)
{
	note_peer_exiting(c, sk);
	c->closed_by = CLOSED_PEER_RST;
	c->close_ns = now;
	fill_from_socket(c, sk, now);
	emit_conn(EV_CLOSE, c, now);
}

/* The segment that provoked a sent reset: on a closing backend, the
 * request that was lost. */
static __always_inline void fill_reset_segment(struct reset_event *e, const struct sock *sk,
					       const struct sk_buff *skb)
{
	__u32 linear = 0, total = 0;
	void *payload = skb_payload(skb, &linear, &total);

	e->seg_len = total;
	if (!payload || !total)
		return;
	e->payload_len = read_segment(sk, skb, payload, linear, total, e->payload, total);
	if (e->payload_len) {
		e->payload_src = SRC_SEGMENT;
	} else if (!linear) {
		e->payload_src = SRC_NONLINEAR;
		count(CNT_UNREADABLE_RESET);
	}
}

/* An abort with no segment (close() with data unread): the request that
 * arrived after the last one the application read, if it is still unread
 * (the application's reads stopped short of its first byte). */
static __always_inline void fill_reset_arrival(struct reset_event *e, const struct sock *sk,
					       __u64 key)
{
	struct arrival *a = bpf_map_lookup_elem(&arrivals, &key);
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;

	if (a && a->ts_ns && (__s32)(a->seq - BPF_CORE_READ(tp, copied_seq)) >= 0) {
		e->payload_len = read_kernel_bytes(e->payload, a->payload, a->len);
		e->payload_src = SRC_ARRIVED;
		e->arrived_ns = a->ts_ns;
	}
}

#define RB_DEPTH_WALKED 16

/* A received RST: the first bytes this end sent that the peer had not
 * acknowledged, from the head of its retransmit queue (on a proxy, the
 * request the backend's RST answered). */
static __always_inline void fill_reset_unacked(struct reset_event *e, const struct sock *sk)
{
	const struct rb_node *n = BPF_CORE_READ(sk, tcp_rtx_queue.rb_node);
	const struct sk_buff *skb;
	__u32 seq = 0, off, linear;

	for (int i = 0; i < RB_DEPTH_WALKED && n; i++) { /* the leftmost: the oldest */
		const struct rb_node *left = BPF_CORE_READ(n, rb_left);

		if (!left)
			break;
		n = left;
	}
	if (!n)
		return;
	skb = (void *)n - bpf_core_field_offset(struct sk_buff, rbnode);
	bpf_probe_read_kernel(&seq, sizeof(seq), (void *)skb + bpf_core_field_offset(skb->cb));
	off = BPF_CORE_READ((struct tcp_sock *)sk, snd_una) - seq; /* TCP_SKB_CB(skb)->seq */
	e->seg_len = BPF_CORE_READ(skb, len);
	if (off >= e->seg_len)
		return;
	linear = e->seg_len - BPF_CORE_READ(skb, data_len);
	if (off < linear)
		e->payload_len =
			read_kernel_bytes(e->payload, BPF_CORE_READ(skb, data) + off, linear - off);
	else
		e->payload_len = read_pages(sk, skb, off, e->payload, MAX_PAYLOAD);
	if (e->payload_len)
		e->payload_src = SRC_UNACKED;
}

/* The bytes a reset tells of: the segment a sent one answered, the request
 * that lay unread at an abort, or what this end had sent unacknowledged when
 * the peer's came. */
static __always_inline void fill_reset_payload(struct reset_event *e, const struct sock *sk,
					       const struct sk_buff *skb, const struct conn *c)
{
	if (e->sent && skb) {
		e->seg_flags = skb_tcp_flags(skb);
		fill_reset_segment(e, sk, skb);
	} else if (e->sent && c && keeps_arrivals(c)) {
		fill_reset_arrival(e, sk, e->sk);
	} else if (!e->sent && e->sk_kind == SK_KIND_FULL && e->sk_state != TCP_SYN_SENT) {
		fill_reset_unacked(e, sk);
	}
}

static __always_inline void emit_reset(const struct sock *sk, const struct sk_buff *skb, int reason,
				       bool sent, __u64 now)
{
	int state = sk ? BPF_CORE_READ(sk, __sk_common.skc_state) : 0;
	__u8 kind = sk_kind_of(sk, state);
	struct reset_event *e;
	struct conn *c = NULL;
	__u64 key = (__u64)sk;

	if (kind == SK_KIND_FULL) {
		c = bpf_map_lookup_elem(&conns, &key);
		/* a reset in SYN_SENT refuses a connect(): it closes nothing */
		if (c && c->closed_by == CLOSED_NONE && !sent && state != TCP_SYN_SENT)
			close_on_peer_reset(c, sk, now);
		/* a RST the other end of a traced connection received may be
		 * all there is of the request the traced end lost (its own RST
		 * left no trace: bpf/core_fixes.bpf.h): sent as untracked */
		if (c && !wanted(c) && sent)
			return;
		if (c && !wanted(c))
			c = NULL;
	}
	/* Resets on sockets no longer in the table (timewait, none, or freed
	 * already) are rare: send them all, user space matches their tuple. */
	if (!c && filter_port && skb) {
		struct tuple t = {};

		skb_tuple(skb, &t);
		if (!port_wanted(&t))
			return;
	}

	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, offsetof(struct reset_event, payload));
	e->h.type = EV_RESET;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.ts_ns = now;
	e->sk = key;
	e->reason = reason;
	e->sent = sent;
	e->sk_kind = kind;
	e->sk_state = state;
	if (c && state != TCP_SYN_SENT)
		e->t = c->t; /* ports read now may already be released */
	else if (sent && skb)
		skb_tuple(skb, &e->t);
	else if (sk)
		read_tuple(sk, &e->t); /* a connect(): its port was bound after SYN_SENT */
	if (c) {
		e->tgid = c->tgid;
		__builtin_memcpy(e->comm, c->comm, sizeof(e->comm));
	}
	fill_reset_payload(e, sk, skb, c);
	submit(e);
}

/* tcp_send_reset(sk, skb, reason) from Linux 6.10, (sk, skb) before: the
 * loader picks one program from the kernel's BTF. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	emit_reset(sk, skb, reason, true, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset_noreason, const struct sock *sk, const struct sk_buff *skb)
{
	emit_reset(sk, skb, -1, true, bpf_ktime_get_ns());
	return 0;
}

/* A segment dropped for want of a socket: before Linux 6.10 the RST the
 * kernel answers it with (tcp_v4_rcv, tcp_v6_rcv) leaves no tcp_send_reset,
 * so the drop stands for it. Loaded only on such kernels. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(on_drop_no_socket, const struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) ||
	    !is_tcp(skb) || (skb_tcp_flags(skb) & TCPHDR_RST))
		return 0;
	emit_reset(NULL, skb, -1, true, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	emit_reset(sk, NULL, -1, false, bpf_ktime_get_ns());
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

#define METHOD_CASE(name, word) case word:

/* The start of an HTTP/1.x message: a request method or a status line. */
static __always_inline bool http_start(__u32 head)
{
	switch (head) {
		HTTP_METHODS(METHOD_CASE)
	case HEAD_HTTP:
		return true;
	}
	return false;
}

#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(regs)   ((regs)->orig_ax)
#define SYSCALL_ARG1(regs) ((regs)->di)
#define SYSCALL_ARG2(regs) ((regs)->si)
#define SYSCALL_ARG3(regs) ((regs)->dx)
#define SYSCALL_ARG4(regs) ((regs)->r10)
enum {
	NR_READ = 0,
	NR_WRITE = 1,
	NR_READV = 19,
	NR_WRITEV = 20,
	NR_SENDTO = 44,
	NR_RECVFROM = 45,
	NR_SENDMSG = 46,
	NR_RECVMSG = 47
};
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(regs)   ((regs)->syscallno)
#define SYSCALL_ARG1(regs) ((regs)->orig_x0)
#define SYSCALL_ARG2(regs) ((regs)->regs[1])
#define SYSCALL_ARG3(regs) ((regs)->regs[2])
#define SYSCALL_ARG4(regs) ((regs)->regs[3])
enum {
	NR_READ = 63,
	NR_WRITE = 64,
	NR_READV = 65,
	NR_WRITEV = 66,
	NR_SENDTO = 206,
	NR_RECVFROM = 207,
	NR_SENDMSG = 211,
	NR_RECVMSG = 212
};
#endif

/* Where a data call's bytes are read: the caller's buffer, or, for a send,
 * the kernel's copy of them; n of them contiguous there. */
struct call_bytes {
	const void *buf;
	__u32 n;
	bool kernel;
};

/* Copies size bytes of a call's (size bounded by the caller). */
static __always_inline long read_call(void *dst, __u32 size, const void *buf, bool kernel)
{
	return kernel ? bpf_probe_read_kernel(dst, size, buf) : bpf_probe_read_user(dst, size, buf);
}

/* The registers the caller entered the syscall in progress with. */
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* A socket field: a direct load through the trusted pointer tp where the
 * hook gave one, else a read through sk (sys_exit's, found through the
 * file table). */
#define SOCK_FIELD(tp, sk, field) \
	((tp) ? (tp)->field : BPF_CORE_READ((const struct tcp_sock *)(sk), field))

#define GFP_DIRECT_RECLAIM_6_1 0x400u
#define GFP_MEMALLOC_6_1       0x20000u

/* Whether TCP copies this socket's sends to the sending thread's page
 * fragment: a socket of TCP's own (no kTLS or other upper layer, no
 * sockmap), connected (not a Fast Open SYN's data), that uses the thread's
 * fragment (sk_use_task_frag from Linux 6.2; before, any socket whose
 * allocations may sleep, gfpflags_normal_context() with 6.1's flags). */
static __always_inline bool sends_through_task_frag(const struct tcp_sock *tp,
						    const struct sock *sk)
{
	int state = SOCK_FIELD(tp, sk, inet_conn.icsk_inet.sk.__sk_common.skc_state);

	if (SOCK_FIELD(tp, sk, inet_conn.icsk_ulp_ops) ||
	    SOCK_FIELD(tp, sk, inet_conn.icsk_inet.sk.sk_user_data) ||
	    (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT))
		return false;
	if (bpf_core_field_exists(sk->sk_use_task_frag))
		return SOCK_FIELD(tp, sk, inet_conn.icsk_inet.sk.sk_use_task_frag);
	return (SOCK_FIELD(tp, sk, inet_conn.icsk_inet.sk.sk_allocation) &
		(GFP_DIRECT_RECLAIM_6_1 | GFP_MEMALLOC_6_1)) == GFP_DIRECT_RECLAIM_6_1;
}

/* The bytes a send call just gave TCP, in kernel memory. TCP copies a
 * call's data to the end of the calling thread's page fragment
 * (current->task_frag), so they are its last moved bytes, unless the call
 * spilled into a new page. Read there, a vectored send's pieces lie in a
 * row and need no read of its iovec, and a kernel read costs less than a
 * read of the caller's memory. Not for calls that copy nothing there:
 * zero-copy and Fast Open sends, sendfile and splice, and the sockets
 * sends_through_task_frag() leaves out. */
static __always_inline bool sent_in_kernel(const struct tcp_sock *tp, const struct sock *sk,
					   struct pt_regs *regs, __u32 moved, struct call_bytes *b)
{
	struct {
		__u64 page; /* struct page_frag's first fields, the page as a number */
		__u32 offset;
	} frag;
	unsigned long flags = 0;

	if (!page_va_offset)
		return false;
	switch (SYSCALL_NR(regs)) {
	case NR_WRITE:
	case NR_WRITEV:
		break;
	case NR_SENDTO:
		flags = SYSCALL_ARG4(regs);
		break;
	case NR_SENDMSG:
		flags = SYSCALL_ARG3(regs);
		break;
	default:
		return false;
	}
	if (flags & (MSG_ZEROCOPY | MSG_FASTOPEN) || !sends_through_task_frag(tp, sk))
		return false;
	if (bpf_probe_read_kernel(&frag, sizeof(frag), &bpf_get_current_task_btf()->task_frag) ||
	    !frag.page || frag.offset < moved)
		return false;
	b->buf = (const void *)(page_address(frag.page, page_va_offset) + frag.offset - moved);
	b->n = moved;
	b->kernel = true;
	return true;
}

/* The user buffer of the send/recv-family call in progress, and how many
 * bytes of it are contiguous. NULL for calls without one (sendfile, splice,
 * io_uring). The registers are the caller's at syscall entry. */
static __always_inline const void *syscall_buffer(struct pt_regs *regs, __u32 *contiguous,
						  __u32 moved)
{
	struct iovec iov;
	struct user_msghdr msg;
	unsigned long arg = SYSCALL_ARG2(regs);

	switch (SYSCALL_NR(regs)) {
	case NR_READ:
	case NR_WRITE:
	case NR_SENDTO:
	case NR_RECVFROM:
		*contiguous = moved;
		return (const void *)arg;
	case NR_READV:
	case NR_WRITEV:
		break;
	case NR_SENDMSG:
	case NR_RECVMSG:
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg) || !msg.msg_iovlen)
			return NULL;
		arg = (unsigned long)msg.msg_iov;
		break;
	default:
		return NULL;
	}
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)arg))
		return NULL;
	*contiguous = iov.iov_len < moved ? iov.iov_len : moved;
	return iov.iov_base;
}

/* The rest of a request line written a piece at a time, appended to the
 * start the previous call kept. A subprogram of its own: inlined into
 * sys_exit's program, Linux 6.1's verifier lost m's bound where clang
 * spilled it. */
static __noinline void account_continued(struct http_acct *h, __u8 dir, __u32 n, const void *buf,
					 bool kernel)
{
	__u64 off = h->req_len, m = n;
	__u8 bit = 1 << dir;

	if (off >= SPLIT_LINE_MAX || dir != h->req_dir)
		return;
	if (m > MAX_PAYLOAD - 32)
		m = MAX_PAYLOAD - 32;
	barrier_var(m);
	/* off < SPLIT_LINE_MAX <= 32: the mask shows the verifier the bound */
	if (!read_call(h->last_req + (off & 31), m, buf, kernel))
		h->req_len = off + m;
	if (off + m < SPLIT_LINE_MAX)
		h->partial |= bit;
}

/* A status line: a final (non-1xx) response. */
static __always_inline void account_response(struct http_acct *h, const __u8 *first, __u32 n,
					     __u64 now)
{
	if (n < 12 || first[9] < '2' || first[9] > '5')
		return;
	h->responses++;
	h->last_status = (first[9] - '0') * 100 + (first[10] - '0') * 10 + (first[11] - '0');
	h->last_response_ns = now;
}

/* A request starts, its first n bytes in last_req. */
static __always_inline void request_started(struct http_acct *h, __u8 dir, __u32 n, __u32 moved,
					    __u64 now)
{
	if (h->responses && h->last_response_ns && now - h->last_response_ns > h->max_reuse_gap_ns)
		h->max_reuse_gap_ns = now - h->last_response_ns;
	h->requests++;
	h->req_dir = dir;
	h->last_request_ns = now;
	h->req_len = n;
	if (moved < SPLIT_LINE_MAX)
		h->partial |= 1 << dir;
}

/* A call that starts a request: its first bytes are kept for user space
 * to read the request line from. */
static __always_inline void account_request(struct http_acct *h, __u8 dir, __u32 moved,
					    const struct call_bytes *b, __u64 now)
{
	__u32 n = payload_size(b->n);

	if (read_call(h->last_req, n, b->buf, b->kernel))
		n = 0;
	request_started(h, dir, n, moved, now);
}

/* The next request on a connection whose last one is answered: a request
 * is all such a call can start, so it is read once, straight into the
 * entry (anything else there only clears the answered request's bytes). */
static __always_inline void account_next_request(struct http_acct *h, __u8 dir, __u32 moved,
						 const struct call_bytes *b, __u64 now)
{
	__u32 head = 0, n = payload_size(b->n);

	if (n < 4)
		return;
	/* a failed read zeroes last_req: then its answered request is gone too */
	if (!read_call(h->last_req, n, b->buf, b->kernel))
		head = *(const __u32 *)h->last_req;
	if (http_start(head) && head != HEAD_HTTP)
		request_started(h, dir, n, moved, now);
	else
		h->req_len = 0;
}

#define TLS_ALERT	       21
#define TLS_HANDSHAKE	       22
#define TLS_APPLICATION	       23
#define TLS_CLIENT_HELLO       1
#define TLS_RECORD_HEADER      5
#define TLS_CHANGE_CIPHER_SPEC 20
/* ChangeCipherSpec (6 bytes) and a TLS 1.3 Finished record: 5 + 4 + a
 * SHA-384 verify_data (48) + 1 + 16 */
#define TLS13_CLIENT_FINISHED_MAX (6 + 5 + 4 + 48 + 1 + 16)
/* TLS 1.3 hides an alert in an application-data record: 2 bytes, its
 * inner type and a 16-byte AEAD tag (RFC 8446 5.2). */
#define TLS13_ALERT_RECORD (5 + 2 + 1 + 16)

/* Whether the bytes at first start a TLS record of this type (major version
 * 3, from SSL 3.0 to TLS 1.3). */
static __always_inline bool tls_record(const __u8 *first, __u8 type)
{
	return first[0] == type && first[1] == 3;
}

/* A connection's first bytes as a TLS ClientHello record (read by OpenSSL,
 * only its 5-byte header). */
static __always_inline bool tls_client_hello(const __u8 *first, __u32 n)
{
	return n >= TLS_RECORD_HEADER && tls_record(first, TLS_HANDSHAKE) &&
	       (n < 12 || first[5] == TLS_CLIENT_HELLO);
}

/* A request or an answer on a TLS connection, at time now. */
static __always_inline void tls_exchange(struct http_acct *h, bool request, __u64 now)
{
	if (request) {
		if (h->responses && now - h->last_response_ns > h->max_reuse_gap_ns)
			h->max_reuse_gap_ns = now - h->last_response_ns;
		h->requests++;
		h->last_request_ns = now;
	} else {
		h->responses++;
		h->last_response_ns = now;
	}
}

/* One call on a TLS connection, from the record header that starts it (in
 * the clear). Returns true for an alert: the close_notify a closing end
 * sends before its FIN is part of the close, not data. A call that starts
 * mid-record counts as data. A client's first request may come in one
 * read with its last handshake records (a TLS 1.3 middlebox-compatible
 * ChangeCipherSpec and Finished): more bytes than those hold is a request. */
static __always_inline bool account_tls(struct conn *c, __u8 dir, const __u8 *first, __u32 n,
					__u32 moved, __u64 now)
{
	struct http_acct *h = &c->http;

	if (n < TLS_RECORD_HEADER || first[1] != 3)
		return false;
	if (first[0] == TLS_ALERT ||
	    (first[0] == TLS_APPLICATION &&
	     ((__u32)first[3] << 8 | first[4]) == TLS13_ALERT_RECORD - TLS_RECORD_HEADER))
		return true;
	if (c->tls_plain) /* counted from the plaintext */
		return false;
	if (dir == h->req_dir) {
		if (h->requests == h->responses &&
		    (first[0] == TLS_APPLICATION ||
		     (first[0] == TLS_CHANGE_CIPHER_SPEC && moved > TLS13_CLIENT_FINISHED_MAX)))
			tls_exchange(h, true, now);
	} else if (first[0] == TLS_APPLICATION && h->requests > h->responses) {
		tls_exchange(h, false, now);
	}
	return false;
}

/* The HTTP/1.x message a call's bytes start (first: the first of them),
 * or continue. */
static __always_inline void account_message(struct http_acct *h, __u8 dir, const __u8 *first,
					    bool start, __u32 moved, const struct call_bytes *b,
					    __u64 now)
{
	__u8 bit = 1 << dir;
	bool cont = h->partial & bit;

	h->partial &= ~bit;
	if (cont && !start)
		account_continued(h, dir, b->n, b->buf, b->kernel);
	else if (start && *(const __u32 *)first == HEAD_HTTP)
		account_response(h, first, b->n, now);
	else if (start)
		account_request(h, dir, moved, b, now);
}

#define ACTIVE_NS (MIN_IDLE_MS * 1000000ULL)

/* Whether a call goes the way an HTTP connection's requests have gone,
 * with no start line left cut short that way. */
static __always_inline bool requests_flow(const struct conn *c, __u8 dir)
{
	const struct http_acct *h = &c->http;

	return c->proto == PROTO_HTTP && h->requests && dir == h->req_dir &&
	       !(h->partial & (1 << dir));
}

/* Whether a call continues the request its direction is sending, decided
 * before its buffer is touched: the request is unanswered, and the last
 * call went the same way under 50 ms ago with nothing back since. Such a
 * call carries the request's body, or a request pipelined behind it,
 * which the responses count. Responses are always read: each has a
 * status, and a server may send one unasked (a 408). */
static __always_inline bool continues_request(const struct conn *c, __u8 dir, __u64 now)
{
	__u64 mine = dir == DIR_OUT ? c->last_send_ns : c->last_recv_ns;
	__u64 other = dir == DIR_OUT ? c->last_recv_ns : c->last_send_ns;

	return requests_flow(c, dir) && c->http.requests > c->http.responses && other < mine &&
	       now - mine < ACTIVE_NS;
}

/* Where the bytes of the call in progress are read: a send's in the
 * kernel where they can be, else the caller's buffer. */
static __always_inline bool call_bytes_of(const struct tcp_sock *tp, const struct sock *sk,
					  __u8 dir, __u32 moved, struct call_bytes *b)
{
	struct pt_regs *regs = syscall_regs();

	if (dir == DIR_OUT && sent_in_kernel(tp, sk, regs, moved, b))
		return true;
	b->kernel = false;
	b->buf = syscall_buffer(regs, &b->n, moved);
	return b->buf && b->n;
}

/* Account for the HTTP/1.x message this call starts, in the connection's
 * entry: no event per message. Other calls, and other protocols, cost one
 * 4-byte read. Returns true for a call that moved no data of the
 * connection's own (a TLS alert). sk: the socket, tp: the same as a
 * trusted pointer where the hook gave one. */
static __always_inline bool account(struct conn *c, const struct tcp_sock *tp,
				    const struct sock *sk, __u8 dir, __u32 moved, __u64 now)
{
	struct http_acct *h = &c->http;
	__u8 first[12] __attribute__((aligned(4))) = {};
	struct call_bytes b = {};
	__u32 head, n;
	bool start;

	if (c->proto == PROTO_OTHER || !wanted(c) || continues_request(c, dir, now))
		return false;
	if (!call_bytes_of(tp, sk, dir, moved, &b))
		return false;
	if (requests_flow(c, dir) && h->requests == h->responses) {
		account_next_request(h, dir, moved, &b, now);
		return false;
	}
	/* one read: the method or "HTTP", and a status code; or a TLS record
	 * header, which OpenSSL reads on its own (5 bytes) */
	n = b.n;
	if (n >= sizeof(first) ? read_call(first, sizeof(first), b.buf, b.kernel) :
	    n >= 5	       ? read_call(first, 5, b.buf, b.kernel) :
	    n >= 4	       ? read_call(first, 4, b.buf, b.kernel) :
				 0)
		return false;
	if (c->proto == PROTO_TLS)
		return account_tls(c, dir, first, n, moved, now);
	head = *(__u32 *)first;
	start = n >= 4 && http_start(head);
	if (c->proto == PROTO_UNKNOWN && c->start_ns && !(h->partial & (1 << dir))) {
		/* The first bytes of a connection say what it carries; fewer
		 * than four cannot tell, so they pass as a possible start. */
		if (n < 4)
			start = true;
		c->proto = start		      ? PROTO_HTTP :
			   tls_client_hello(first, n) ? PROTO_TLS :
							PROTO_OTHER;
		if (c->proto == PROTO_TLS) /* its requests go the ClientHello's way */
			h->req_dir = dir;
		if (!start)
			return false;
	}
	if (start)
		c->proto = PROTO_HTTP;
	account_message(h, dir, first, start, moved, &b, now);
	return false;
}

/* An SSL_write's plaintext is claimed for so long after the call (Node.js
 * writes the record to the socket later in the same turn of its loop). */
#define TLS_WRITE_CLAIM_NS (50 * 1000000ULL)

/* Plaintext the TLS library handled on connection c: its HTTP, counted as
 * on a plaintext connection from the first request or response seen. */
static __always_inline void account_plaintext(struct conn *c, __u8 dir, const void *buf, __u32 n,
					      __u64 now)
{
	__u8 first[12] __attribute__((aligned(4))) = {};
	struct call_bytes b = { .buf = buf, .n = n };
	bool start;

	if (n < sizeof(first) || bpf_probe_read_user(first, sizeof(first), buf))
		return;
	start = http_start(*(__u32 *)first);
	if (!c->tls_plain) {
		if (!start)
			return; /* not HTTP/1.x (h2): the exchanges still count */
		/* from now on counted from the plaintext: the exchanges before
		 * it were the handshake's and this message's own */
		c->http.requests = c->http.responses = 0;
		c->tls_plain = 1;
	}
	account_message(&c->http, dir, first, start, n, &b, now);
}

/* A TLS connection's socket call: a write claims the thread's pending
 * SSL_write plaintext; a read is remembered for the SSL_read it feeds. */
static __always_inline void tls_join(struct conn *c, __u64 sk, __u8 dir, __u64 now)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tls_write *w;
	__u64 *last;

	if (dir == DIR_IN) {
		last = bpf_map_lookup_elem(&tls_last_read, &tid);
		if (last)
			*last = sk;
		else
			bpf_map_update_elem(&tls_last_read, &tid, &sk, BPF_ANY);
		return;
	}
	w = bpf_map_lookup_elem(&tls_writes, &tid);
	if (!w || !w->len)
		return;
	/* now is the socket's clock (its last transmit or arrival), which can
	 * be a little before the SSL_write */
	if ((__s64)(now - w->ts_ns) < (__s64)TLS_WRITE_CLAIM_NS &&
	    (__s64)(w->ts_ns - now) < (__s64)TLS_WRITE_CLAIM_NS)
		account_plaintext(c, DIR_OUT, (const void *)w->buf, w->len, w->ts_ns);
	w->len = 0;
}

/* A send or receive call that moved data, in the caller's context, at
 * time now. tp: sk as a trusted pointer, NULL where the hook found it
 * through the file table. */
static __always_inline void on_data(struct sock *sk, const struct tcp_sock *tp, int ret, int flags,
				    __u8 dir, __u64 now)
{
	struct conn *c;

	c = data_conn(sk);
	if (!c)
		return;
	set_owner(c);
	if (flags & MSG_PEEK) /* a peek leaves the data queued */
		return;
	if (tls_probes && c->proto == PROTO_TLS)
		tls_join(c, (__u64)sk, dir, now);
	if (account(c, tp, sk, dir, ret, now))
		return;
	if (dir == DIR_OUT)
		c->last_send_ns = now;
	else
		c->last_recv_ns = now;
}

/* A data call seen by sock_send_length/sock_recv_length. Its time comes
 * from the socket's own TCP clock: CLOCK_MONOTONIC in microseconds (the
 * clock of bpf_ktime_get_ns), stamped by the kernel at each transmit and
 * each segment it processes. It is in the cache, where a clock read would
 * cost a pvclock access on a VM, on every call. */
static __always_inline void on_length(struct sock *sk, int ret, int flags, __u8 dir)
{
	struct tcp_sock *tp;

	if (ret > 0 && (tp = bpf_skc_to_tcp_sock(sk)))
		on_data(sk, tp, ret, flags, dir, tp->tcp_mstamp * 1000);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send_length, struct sock *sk, int ret, int flags)
{
	on_length(sk, ret, flags, DIR_OUT);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv_length, struct sock *sk, int ret, int flags)
{
	on_length(sk, ret, flags, DIR_IN);
	return 0;
}

/* Before Linux 6.5 there is no sock_send_length/sock_recv_length: the same
 * accounting from the exit of the send/recv-family syscalls, the socket
 * found through the file descriptor. Loaded only on such kernels. */
SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct file **fds, *file;
	struct socket *sock;
	unsigned long fd;
	int flags = 0;
	__u8 dir;

	if (ret <= 0)
		return 0;
	switch (SYSCALL_NR(regs)) {
	case NR_WRITE:
	case NR_WRITEV:
	case NR_SENDTO:
	case NR_SENDMSG:
		dir = DIR_OUT;
		break;
	case NR_RECVFROM:
		flags = SYSCALL_ARG4(regs);
		dir = DIR_IN;
		break;
	case NR_RECVMSG:
		flags = SYSCALL_ARG3(regs);
		dir = DIR_IN;
		break;
	case NR_READ:
	case NR_READV:
		dir = DIR_IN;
		break;
	default:
		return 0;
	}
	fd = SYSCALL_ARG1(regs);
	task = bpf_get_current_task_btf();
	if (fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	/* a socket's file points at its struct socket, which points back */
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return 0;
	on_data(BPF_CORE_READ(sock, sk), NULL, ret, flags, dir, bpf_ktime_get_ns());
	return 0;
}

/* At the conn level, what a connection carries is told from the first bytes
 * that arrive on it: a request makes this end the server, a status line the
 * client. On one adopted mid-way the bytes may be inside a body: only a
 * start line counts there. */
static __always_inline void learn_proto(struct conn *c, __u32 head)
{
	if (http_start(head)) {
		c->proto = PROTO_HTTP;
		if (c->role == ROLE_UNKNOWN)
			c->role = head == HEAD_HTTP ? ROLE_CLIENT : ROLE_SERVER;
	} else if (c->start_ns) { /* a TLS handshake record, or something else */
		c->proto = tls_record((const __u8 *)&head, TLS_HANDSHAKE) ? PROTO_TLS : PROTO_OTHER;
	}
}

/* A jiffy is at most 10 ms (HZ >= 100): data received within this many
 * jiffies arrived within MIN_IDLE_MS. */
#define ACTIVE_JIFFIES (MIN_IDLE_MS / 10)

/* A request arriving on an idle HTTP connection of a server: its start is
 * kept, at its sequence number, in the connection's arrivals entry. On a
 * TLS connection, only the record's 5-byte header (in the clear). */
static __always_inline void keep_arrival(const struct conn *c, const struct sock *sk, __u64 key,
					 const struct sk_buff *skb, void *payload, __u32 linear,
					 __u32 total, __u32 seq)
{
	__u64 now = bpf_ktime_get_ns();
	struct arrival *a;
	__u32 n;

	/* The race needs an idle connection: one that moved data in the last
	 * 50 ms is not about to be closed by an idle timer. */
	if (now - c->last_send_ns < ACTIVE_NS && now - c->last_recv_ns < ACTIVE_NS)
		return;
	/* written in place: an LRU update would allocate a new element each time */
	a = bpf_map_lookup_elem(&arrivals, &key);
	if (!a) {
		bpf_map_update_elem(&arrivals, &key, (const void *)&empty_arrival, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&arrivals, &key);
		if (!a)
			return;
	}
	n = read_segment(sk, skb, payload, linear, total, a->payload,
			 c->proto == PROTO_TLS ? TLS_RECORD_HEADER : total);
	if (!n)
		return;
	a->ts_ns = now;
	a->seq = seq;
	a->len = n;
}

/* A segment arriving on an established socket (softirq). Keep the start of
 * each request as it arrives: if the application closes the socket without
 * reading it, the kernel frees the queue before it sends the RST, and this
 * is all that is left of the request lost to the race. */
static __always_inline void stash_arrival(const struct sock *sk, const struct sk_buff *skb)
{
	const __u32 *seq = (const __u32 *)skb->cb; /* TCP_SKB_CB: seq, end_seq */
	__u64 key = (__u64)sk;
	__u32 linear = 0, total = 0, head = 0;
	struct tcp_sock *tp;
	struct conn *c;
	void *payload;
	bool first, learn;

	/* This runs for every segment, so it decides from what is hot in the
	 * cache, without a map lookup: pure ACKs carry nothing, and on a busy
	 * connection (data received in the last jiffies: the kernel is about
	 * to update that stamp for this segment) no idle race is under way.
	 * At the conn level a connection's first data also says what it
	 * carries (there is no data call to say it). */
	if (seq[0] == seq[1])
		return;
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return;
	first = trace_level == LEVEL_CONN && !tp->bytes_received;
	if (!first && (__u32)bpf_jiffies64() - tp->inet_conn.icsk_ack.lrcvtime < ACTIVE_JIFFIES)
		return;
	c = bpf_map_lookup_elem(&conns, &key);
	/* at the conn level, one open since before katrace started is
	 * adopted at its first segment after an idle spell (at the request
	 * level, its next call adopts it) */
	if (!c && trace_level == LEVEL_CONN)
		c = new_conn(sk, key, TCP_ESTABLISHED, ROLE_UNKNOWN, 0);
	if (!c)
		return;
	/* only the segment's bytes are left to read: not for a connection
	 * they can tell nothing about */
	learn = trace_level == LEVEL_CONN && c->proto == PROTO_UNKNOWN;
	if (!learn && !keeps_arrivals(c))
		return;
	payload = skb_payload(skb, &linear, &total);
	if (!payload || total < 4)
		return;
	/* a linear part too short for the method is read through the dynptr */
	if (linear < 4)
		linear = 0;
	if (read_segment(sk, skb, payload, linear, total, (__u8 *)&head, 4) != 4)
		return;
	if (learn)
		learn_proto(c, head);
	if (first || c->role != ROLE_SERVER)
		return;
	if (c->proto == PROTO_HTTP ? http_start(head) :
	    c->proto == PROTO_TLS  ? tls_record((const __u8 *)&head, TLS_APPLICATION) :
				     false)
		keep_arrival(c, sk, key, skb, payload, linear, total, seq[0]);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(on_tcp_probe, const struct sock *sk, const struct sk_buff *skb)
{
	stash_arrival(sk, skb);
	return 0;
}

/* The last thread of a process exits (the group is dead): if it owned
 * traced sockets or listeners, its exit code or signal is an event. It
 * runs before the kernel closes the process's files, so the closes it
 * does follow (closed_exiting). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_process_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (p->signal->live.counter)
		return 0;
	if (filter_pid ? !tgid_traced(tgid) : !bpf_map_lookup_elem(&owners, &tgid))
		return 0;
	emit_owner(EV_EXIT, NULL, tgid, p->group_leader->comm, p->exit_code, false,
		   bpf_ktime_get_ns());
	bpf_map_delete_elem(&owners, &tgid);
	return 0;
}

/* ---- the TLS library (uprobes, attached per binary by the loader; the
 * BPF_KPROBE macros read a user context's registers just as well) ---- */

static __always_inline void tls_write_entry(const void *buf, __u64 num)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct tls_write *w, fresh = { .buf = (__u64)buf, .ts_ns = now };

	if (!num || (filter_pid && !bpf_map_lookup_elem(&target_tgids, &tgid)))
		return;
	fresh.len = num > MAX_PAYLOAD ? MAX_PAYLOAD : num;
	w = bpf_map_lookup_elem(&tls_writes, &tid);
	/* the first plaintext since the last socket write: a message's start */
	if (w && w->len && now - w->ts_ns < TLS_WRITE_CLAIM_NS)
		return;
	if (w)
		*w = fresh;
	else
		bpf_map_update_elem(&tls_writes, &tid, &fresh, BPF_ANY);
}

static __always_inline void tls_read_entry(void *buf, void *readbytes)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct tls_read r = { .buf = (__u64)buf, .readbytes = (__u64)readbytes };

	if (filter_pid && !bpf_map_lookup_elem(&target_tgids, &tgid))
		return;
	bpf_map_update_elem(&tls_reads, &tid, &r, BPF_ANY);
}

/* SSL_read returned n bytes of plaintext: they came from the TLS connection
 * the thread last read. */
static __always_inline void tls_read_exit(long ret, bool ex)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct tls_read *r = bpf_map_lookup_elem(&tls_reads, &tid);
	__u64 n = ret, *sk;
	struct conn *c;

	if (!r)
		return;
	if (ex && (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)r->readbytes)))
		n = 0;
	sk = n > 0 && n < 1 << 30 ? bpf_map_lookup_elem(&tls_last_read, &tid) : NULL;
	c = sk ? bpf_map_lookup_elem(&conns, sk) : NULL;
	if (c && c->proto == PROTO_TLS && wanted(c))
		account_plaintext(c, DIR_IN, (const void *)r->buf, n, bpf_ktime_get_ns());
	r->buf = 0;
}

SEC("uprobe")
int BPF_KPROBE(on_ssl_write, void *ssl, const void *buf, int num)
{
	tls_write_entry(buf, num > 0 ? num : 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_ssl_write_ex, void *ssl, const void *buf, __u64 num)
{
	tls_write_entry(buf, num);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_ssl_read, void *ssl, void *buf)
{
	tls_read_entry(buf, NULL);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_ssl_read_ex, void *ssl, void *buf, __u64 num, void *readbytes)
{
	tls_read_entry(buf, readbytes);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_ssl_read_ret, int ret)
{
	tls_read_exit(ret, false);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_ssl_read_ex_ret, int ret)
{
	tls_read_exit(ret, true);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
