/* The connection model: one traced TCP connection as the kernel reported it
 * (struct conn, katrace.h), what the HTTP join knows of it, the predicates
 * of its lifecycle, and a request lost on it. The table, the session, the
 * analysis and the renderers all speak of connections in these terms. */
#ifndef CONN_H
#define CONN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "katrace.h"
#include "http.h"

/* What the HTTP join knows of one connection. */
struct http_state {
	bool counted;		      /* false: traced at --level conn, nothing counted */
	uint32_t requests, responses; /* final (non-1xx) responses */
	uint8_t req_dir;	      /* enum data_dir the requests flowed in */
	bool lost_reported;
	int last_status; /* 0: none yet */
	uint64_t last_request_ns;
	uint64_t last_response_ns;
	uint64_t max_reuse_gap_ns; /* longest idle before a request on this connection */
	uint64_t idle_since_ns;	   /* not counted: when the last response (or any
					   data, if not HTTP) went, as of the close */
	char last_request[HTTP_MAX_PATH + 24]; /* "METHOD /path", "" if none */
};

/* The join: what the kernel counted of c's HTTP into h, with its request
 * line read from the kept bytes (query cut unless full_path). What h knew
 * before (a reported loss, an idle start fixed at the close) is kept. */
void conn_read_http(const struct conn *c, bool full_path, struct http_state *h);

/* ms between two monotonic stamps, or a negative value when unknown. */
double span_ms(uint64_t from_ns, uint64_t to_ns);
/* When the connection last moved data (or was established). */
uint64_t conn_last_activity(const struct conn *c);
/* Start of the idle period before a close: the end of the last response on
 * an HTTP connection, else the last data in either direction. */
uint64_t conn_idle_since(const struct conn *c, const struct http_state *h);
/* When data last went the way responses go (by the connection's role). */
uint64_t response_way_ns(const struct conn *c, const struct http_state *h);
/* An HTTP connection that served at least one request. */
bool conn_served(const struct conn *c, const struct http_state *h);
/* Its last request has no response. */
bool conn_outstanding(const struct conn *c, const struct http_state *h);
/* A TLS connection that served requests none of whose plaintext was seen
 * (its HTTP counted from the exchanges of records). */
bool conn_sealed(const struct conn *c, const struct http_state *h);

/* The same two ends; an IPv4 peer of a dual-stack socket (::ffff:a.b.c.d)
 * equals its IPv4 form. */
bool same_tuple(const struct tuple *a, const struct tuple *b);
/* The same connection as its other end sees it: local and remote swapped. */
struct tuple tuple_reversed(const struct tuple *t);
/* "ip:port", "[ip6]:port"; IPv4-mapped IPv6 prints as IPv4. */
void format_endpoint(const struct tuple *t, bool local, char *buf, size_t len);

const char *tcp_state_name(int state);
const char *closed_by_name(int closed_by);
const char *role_name(int role);

enum lost_side {
	LOST_AT_SERVER, /* traced on the backend: its kernel answered the request with RST */
	LOST_AT_CLIENT, /* traced on the proxy: it wrote the request, got RST back */
};

/* Why a request failed. */
enum lost_cause {
	CAUSE_KEEPALIVE_RACE, /* it arrived on an idle connection the backend was closing */
	CAUSE_BACKEND_EXIT,   /* the backend exited with it in flight or unread */
	CAUSE_PROXY_TIMEOUT,  /* the peer gave up waiting: closed or reset with it outstanding */
	CAUSE_BACKEND_RESET, /* the backend closed or reset with it outstanding, for another reason */
	N_CAUSES
};

const char *cause_name(enum lost_cause cause);

/* Why a lost request's line is not known (it is still counted). */
enum unnamed {
	UNNAMED_NO = 0,
	UNNAMED_PAGE_FRAGMENTS, /* its bytes were in page fragments BPF could not read */
	UNNAMED_BUSY,		/* it came on a busy connection, where arrivals are not kept */
	UNNAMED_CONN_LEVEL,	/* --level conn reads no request lines of its own */
	UNNAMED_UNPARSED,	/* its bytes were read and are not an HTTP request line */
	UNNAMED_UNACKED,	/* the peer's unacknowledged bytes could not be read */
	UNNAMED_ENCRYPTED,	/* it went inside TLS */
	N_UNNAMED
};

const char *unnamed_name(enum unnamed why);
/* "http", "tls", "other"; NULL while unknown. */
const char *proto_name(enum conn_proto proto);

/* The other end of a connection, when katrace saw it on this host too. */
struct other_end {
	bool seen;
	uint32_t pid;
	char comm[TASK_COMM_LEN];
};

/* A request that failed on a connection. */
struct lost {
	uint64_t ts_ns; /* arrival (server side) or write (client side) */
	enum lost_side side;
	enum lost_cause cause;
	bool matched; /* conn is the traced connection it was lost on */
	struct conn conn;
	struct tuple t;
	char request[HTTP_MAX_PATH + 24];
	double close_to_request_ms; /* may be < 0 (see README); NAN: unknown */
	double idle_ms;		    /* < 0: unknown */
	double waited_ms;	    /* how long it was outstanding before the close; < 0: unknown */
	double answered_ms;	    /* the backend answered this long after it came, once the
				       peer had given up; < 0: it did not */
	const char *reason;	    /* sk_rst_reason name, NULL if unknown */
	enum unnamed unnamed;	    /* why request is empty */
	bool seen_by_peer;	    /* known only from the RST the peer's end received */
	struct other_end other;
};

/* A connection attempt refused: nothing listened on the port. */
struct refused {
	uint64_t ts_ns;
	struct tuple t; /* local: the port that refused; remote: who tried */
	bool at_server; /* seen by the refusing host's kernel (else by the connecting one's) */
	struct other_end client; /* the connecting process, when on this host */
};

/* A process that owned traced sockets exited, and what it left behind. */
struct owner_exit {
	uint64_t ts_ns;
	uint32_t pid;
	char comm[TASK_COMM_LEN];
	int exit_code;			      /* as wait(2) reports it */
	uint32_t conns;			      /* connections it closed as it exited */
	uint32_t in_flight;		      /* requests unanswered on them */
	char requests[4][HTTP_MAX_PATH + 24]; /* the first of those */
	bool held_listener;		      /* it listened on a port katrace follows */
};

/* A listener going up or down. */
struct listener_change {
	uint64_t ts_ns;
	struct tuple t;
	bool up;
	uint32_t pid;
	char comm[TASK_COMM_LEN];
};

/* Whether a request was outstanding when the connection closed (it ended
 * at end_ns); then how long it waited for an answer and the idle spell
 * before it (< 0: unknown). */
bool conn_wait(const struct conn *c, const struct http_state *h, uint64_t end_ns, double *idle_ms,
	       double *waited_ms);

#endif
