/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Event records shared by the BPF programs (bpf/) and the reader (user/).
 * Every record starts with struct event_hdr; its type says which of the
 * structs below follows. Records are fixed-size per type so that a capture
 * file can be replayed by a reader of the same format version.
 */
#ifndef KATRACE_H
#define KATRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#include "http_methods.h"

#define TASK_COMM_LEN 16
/* The state path kept per connection. */
#define MAX_STATES 12
/* Bytes kept of a segment's or buffer's start: a request line cut at a
 * 256-byte path fits. */
#define MAX_PAYLOAD 280
/* Data closer to a close than this: not idle, so neither an idle timeout
 * nor a close race. */
#define MIN_IDLE_MS 50
/* A call this short that starts a request cannot hold its whole request
 * line: the next call continues it. */
#define SPLIT_LINE_MAX 24

/* How much is traced: every HTTP request (send/receive programs), or
 * connections only, with nothing run per send or receive call. */
enum level { LEVEL_REQUEST = 0, LEVEL_CONN = 1 };

enum event_type {
	EV_CLOSE = 1,	/* first close transition out of ESTABLISHED */
	EV_DESTROY = 2, /* the kernel freed the socket: the connection is over */
	EV_RESET = 3,	/* a RST was sent or received */
	EV_LISTEN = 4,	/* a listener went up (listen()) or down (closed) */
	EV_EXIT = 5,	/* a process that owned traced sockets exited */
};

enum conn_role { ROLE_UNKNOWN = 0, ROLE_SERVER = 1, ROLE_CLIENT = 2 };

enum closed_by {
	CLOSED_NONE = 0,
	CLOSED_LOCAL_FIN,
	CLOSED_PEER_FIN,
	CLOSED_LOCAL_RST,
	CLOSED_PEER_RST,
};

/* Names of enum sk_rst_reason user space keeps, by value (read from BTF). */
#define MAX_RST_REASONS 64
#define RST_REASON_LEN	40

/* What the kernel handed tcp_send_reset as its socket. */
enum sk_kind { SK_KIND_NONE = 0, SK_KIND_FULL = 1, SK_KIND_TIMEWAIT = 2, SK_KIND_REQUEST = 3 };

enum data_dir { DIR_IN = 0, DIR_OUT = 1 };

/* What a connection carries, decided by its first bytes. */
enum conn_proto { PROTO_UNKNOWN = 0, PROTO_HTTP = 1, PROTO_OTHER = 2, PROTO_TLS = 3 };

/* Where a payload came from. */
enum payload_src {
	SRC_NONE = 0,
	SRC_SEGMENT = 1,   /* the segment that made the kernel send the RST */
	SRC_ARRIVED = 2,   /* a request that arrived and was never read */
	SRC_NONLINEAR = 3, /* the segment's bytes were in page fragments: not read */
	SRC_UNACKED = 4,   /* what this end sent and the peer had not acknowledged
			    * when its RST came (the retransmit queue) */
};

/* Addresses as the socket sees them: "local" is this host's end. IPv4 is
 * kept in the first 4 bytes of the 16. */
struct tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 lport;  /* host byte order */
	__u16 rport;
	__u16 _pad;
};

/* HTTP/1.x on one connection, counted in the kernel as the calls happen,
 * so that no event is needed per request. On a TLS connection, only its
 * exchanges are counted (requests: application data the way the
 * ClientHello went, after the last answer; responses: the answers), and
 * no bytes are kept. */
struct http_acct {
	__u64 last_request_ns;
	__u64 last_response_ns; /* start of the last final (>= 200) response */
	__u64 max_reuse_gap_ns; /* longest idle before a request, after a response */
	__u32 requests;		/* calls that started a request */
	__u32 responses;	/* final responses */
	__u16 last_status;
	__u16 req_len; /* bytes in last_req */
	__u8 req_dir;  /* enum data_dir the requests flowed in */
	__u8 partial;  /* bit per enum data_dir: a start line cut short */
	__u8 _pad[2];
	__u8 last_req[MAX_PAYLOAD]; /* the start of the last call that began a
					   request: user space keeps only its
					   request line(s) */
};

/* One connection as the BPF connection table holds it. */
struct conn {
	__u64 sk;	    /* kernel address: the key while the socket lives */
	__u64 start_ns;	    /* ESTABLISHED (0: it was open before katrace) */
	__u64 close_ns;	    /* first close transition */
	__u64 last_send_ns; /* last send(2)-family call that moved data, */
	__u64 last_recv_ns; /* and recv(2): the socket's TCP clock then (its
				   last transmit or arriving segment) */
	__u64 bytes_in;	    /* from tcp_sock at the time of the event */
	__u64 bytes_out;
	struct tuple t;
	__u32 tgid;	/* owner, set only from process context */
	__u8 role;	/* enum conn_role */
	__u8 closed_by; /* enum closed_by */
	__u8 nstates;
	__u8 proto;	     /* enum conn_proto */
	__u8 in_cgroup;	     /* the owner runs in --cgroup's tree */
	__u8 closed_exiting; /* the owner closed it while exiting (crash, kill, exit) */
	__u8 peer_exiting;   /* the peer's FIN or RST came from a process of this host
				that was exiting (on one host, the segment is handled
				in its sender's context) */
	__u8 level;	     /* enum level; LEVEL_CONN: no HTTP accounting
				   (http is zero), last_send/recv_ns from the
				   socket's own jiffies stamps at the event */
	__u8 tls_plain;	     /* PROTO_TLS: HTTP counted from the plaintext the
				TLS library handled (uprobes), not from exchanges */
	__u8 in_targets;     /* the owner was a -p target (or followed) when it
				took the connection */
	__u8 _pad2[2];
	__u8 states[MAX_STATES]; /* TCP_* values, first is the state at start */
	char comm[TASK_COMM_LEN];
	struct http_acct http;
};

struct event_hdr {
	__u32 type; /* enum event_type */
	__u32 cpu;
	__u64 ts_ns; /* CLOCK_MONOTONIC, taken in BPF */
};

struct conn_event {
	struct event_hdr h;
	struct conn c;
};

struct reset_event {
	struct event_hdr h;
	__u64 sk;	   /* 0 when no socket was found */
	struct tuple t;	   /* from the socket, else from the segment */
	__s32 reason;	   /* raw enum sk_rst_reason value, -1 when unknown */
	__u8 sent;	   /* 1: tcp_send_reset, 0: tcp_receive_reset */
	__u8 sk_kind;	   /* enum sk_kind */
	__u16 payload_len; /* bytes captured into payload */
	__u32 seg_len;	   /* TCP payload length of the segment that caused it */
	__u32 tgid;	   /* owner when the socket is in the table */
	__u8 payload_src;  /* enum payload_src */
	__u8 seg_flags;	   /* TCP flags of the segment that caused it (sent) */
	__u8 sk_state;	   /* the socket's TCP state then, 0 without a socket */
	__u8 _pad[1];
	__u64 arrived_ns; /* SRC_ARRIVED: when the unread request arrived */
	char comm[TASK_COMM_LEN];
	__u8 payload[MAX_PAYLOAD];
};

/* EV_LISTEN and EV_EXIT: what a socket owner did, for the causes of failed
 * requests other than the keep-alive race. */
struct owner_event {
	struct event_hdr h;
	struct tuple t; /* EV_LISTEN: the listening address */
	__u32 tgid;
	__s32 exit_code; /* EV_EXIT: as wait(2) reports it (signal, or status << 8) */
	__u8 up;	 /* EV_LISTEN: 1 listen(), 0 closed */
	__u8 _pad[3];
	char comm[TASK_COMM_LEN];
};

/* A request that arrived on a connection, kept until the next one (to name
 * it if the socket is closed with it unread). */
struct arrival {
	__u64 ts_ns;
	__u32 seq; /* of its first byte: unread while >= copied_seq */
	__u16 len;
	__u8 payload[MAX_PAYLOAD];
};

/* A listening socket as the BPF listeners table holds it: its address and
 * owner, kept from listen() because at its close the local port reads 0. */
struct listen_entry {
	struct tuple t;
	__u32 tgid;
	char comm[TASK_COMM_LEN];
};

/* Slots of the per-CPU counter array. The same names run through user
 * space (struct run_counters) to the summary and the metrics. */
enum counter {
	CNT_DROPPED = 0,      /* events lost to a full ring buffer */
	CNT_TABLE_FULL,	      /* connections the kernel table could not take */
	CNT_UNREADABLE_RESET, /* reset segments whose bytes could not be read */
	CNT_UNTRACKED_CLOSE,  /* closes of connections not in the table: evicted
				   (LRU), or open since before katrace started */
	CNT_MAX
};

#endif /* KATRACE_H */
