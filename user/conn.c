// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "conn.h"

/* ---- the HTTP join ---- */

/* At the conn level nothing was counted: requests flow into a server, out
 * of a client. Idle runs to the close, from the stamps the close event
 * brought (exact multiples of a jiffy before it); a later event estimates
 * the same jiffy stamps anew and may place them past the close. */
static void conn_level_http(const struct conn *c, uint64_t idle_since, struct http_state *h)
{
	h->req_dir = c->role == ROLE_CLIENT ? DIR_OUT : DIR_IN;
	h->idle_since_ns = idle_since;
	if (!idle_since && c->close_ns) {
		idle_since = conn_served(c, h) ? response_way_ns(c, h) : conn_last_activity(c);
		h->idle_since_ns = idle_since < c->close_ns ? idle_since : c->close_ns;
	}
}

void conn_read_http(const struct conn *c, bool full_path, struct http_state *h)
{
	const struct http_acct *k = &c->http;
	size_t len = k->req_len < MAX_PAYLOAD ? k->req_len : MAX_PAYLOAD;
	const uint8_t *buf = k->last_req;
	struct http_msg m, last;
	uint32_t found = 0;
	bool reported = h->lost_reported;
	uint64_t idle_since = h->idle_since_ns;

	memset(h, 0, sizeof(*h));
	h->lost_reported = reported;
	if (c->level == LEVEL_CONN) {
		conn_level_http(c, idle_since, h);
		return;
	}
	h->counted = true;
	h->requests = k->requests;
	h->responses = k->responses;
	h->req_dir = k->req_dir;
	h->last_status = k->last_status;
	h->last_request_ns = k->last_request_ns;
	h->last_response_ns = k->last_response_ns;
	h->max_reuse_gap_ns = k->max_reuse_gap_ns;
	/* the last read or write that began a request may hold several
	 * (pipelining) as far as its first bytes show */
	while (http_next(&buf, &len, full_path, &m) && m.kind == HTTP_REQUEST) {
		last = m;
		found++;
	}
	if (found) {
		http_request_line(&last, h->last_request, sizeof(h->last_request));
		h->requests += found - 1;
	}
	if (h->responses > h->requests) /* pipelined reads start several requests */
		h->requests = h->responses;
}

/* ---- the lifecycle ---- */

double span_ms(uint64_t from_ns, uint64_t to_ns)
{
	if (!from_ns || !to_ns || to_ns < from_ns)
		return -1;
	return (to_ns - from_ns) / 1e6;
}

uint64_t conn_last_activity(const struct conn *c)
{
	uint64_t t = c->start_ns;

	if (c->last_send_ns > t)
		t = c->last_send_ns;
	if (c->last_recv_ns > t)
		t = c->last_recv_ns;
	return t;
}

/* At the conn level, nothing was counted: requests and responses are data
 * one way and the other, told apart by the connection's role. */
static uint64_t request_way_ns(const struct conn *c, const struct http_state *h)
{
	return h->req_dir == DIR_IN ? c->last_recv_ns : c->last_send_ns;
}

uint64_t response_way_ns(const struct conn *c, const struct http_state *h)
{
	return h->req_dir == DIR_IN ? c->last_send_ns : c->last_recv_ns;
}

bool conn_served(const struct conn *c, const struct http_state *h)
{
	if (!h)
		return false;
	if (h->counted)
		return h->requests > 0;
	return (c->proto == PROTO_HTTP || c->proto == PROTO_TLS) && request_way_ns(c, h) &&
	       response_way_ns(c, h);
}

bool conn_outstanding(const struct conn *c, const struct http_state *h)
{
	if (h->counted)
		return h->requests > h->responses;
	return request_way_ns(c, h) > response_way_ns(c, h);
}

bool conn_sealed(const struct conn *c, const struct http_state *h)
{
	return c->proto == PROTO_TLS && !c->tls_plain && conn_served(c, h);
}

uint64_t conn_idle_since(const struct conn *c, const struct http_state *h)
{
	uint64_t t;

	if (h && !h->counted)
		return h->idle_since_ns;
	if (!h || !h->responses)
		return conn_last_activity(c);
	t = response_way_ns(c, h);
	return t > h->last_response_ns ? t : h->last_response_ns;
}

/* When the last unanswered request went: its own stamp when counted, else
 * the last data the way requests go. */
static uint64_t outstanding_since(const struct conn *c, const struct http_state *h)
{
	return h->counted ? h->last_request_ns : request_way_ns(c, h);
}

bool conn_wait(const struct conn *c, const struct http_state *h, uint64_t end_ns, double *idle_ms,
	       double *waited_ms)
{
	uint64_t asked;

	*idle_ms = *waited_ms = -1;
	if (!c->close_ns || !conn_served(c, h) || !conn_outstanding(c, h))
		return false;
	asked = outstanding_since(c, h);
	/* to the close; a request sent after the peer's FIN waited to the end */
	*waited_ms = span_ms(asked, asked < c->close_ns ? c->close_ns : end_ns);
	*idle_ms = span_ms(conn_idle_since(c, h), asked);
	return true;
}

const char *cause_name(enum lost_cause cause)
{
	static const char *const names[] = {
		[CAUSE_KEEPALIVE_RACE] = "keepalive_race",
		[CAUSE_BACKEND_EXIT] = "backend_exit",
		[CAUSE_PROXY_TIMEOUT] = "proxy_timeout",
		[CAUSE_BACKEND_RESET] = "backend_reset",
	};
	return cause >= 0 && cause < N_CAUSES ? names[cause] : "unknown";
}

const char *unnamed_name(enum unnamed why)
{
	static const char *const names[] = {
		[UNNAMED_PAGE_FRAGMENTS] = "page_fragments", [UNNAMED_BUSY] = "busy_connection",
		[UNNAMED_CONN_LEVEL] = "conn_level",	     [UNNAMED_UNPARSED] = "not_http",
		[UNNAMED_UNACKED] = "unacked_unreadable",    [UNNAMED_ENCRYPTED] = "encrypted",
	};
	return why > UNNAMED_NO && why < N_UNNAMED ? names[why] : NULL;
}

const char *proto_name(enum conn_proto proto)
{
	return proto == PROTO_HTTP  ? "http" :
	       proto == PROTO_TLS   ? "tls" :
	       proto == PROTO_OTHER ? "other" :
				      NULL;
}

/* ---- addresses ---- */

/* A dual-stack socket carries IPv4 peers as ::ffff:a.b.c.d: the address
 * and family they stand for. */
static const uint8_t *unmapped(uint16_t *family, const uint8_t *a)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (*family == AF_INET6 && !memcmp(a, v4mapped, sizeof(v4mapped))) {
		*family = AF_INET;
		return a + sizeof(v4mapped);
	}
	return a;
}

static bool same_addr(uint16_t fa, const uint8_t *a, uint16_t fb, const uint8_t *b)
{
	a = unmapped(&fa, a);
	b = unmapped(&fb, b);
	return fa == fb && !memcmp(a, b, fa == AF_INET ? 4 : 16);
}

bool same_tuple(const struct tuple *a, const struct tuple *b)
{
	return a->lport == b->lport && a->rport == b->rport &&
	       same_addr(a->family, a->laddr, b->family, b->laddr) &&
	       same_addr(a->family, a->raddr, b->family, b->raddr);
}

struct tuple tuple_reversed(const struct tuple *t)
{
	struct tuple r = *t;

	memcpy(r.laddr, t->raddr, sizeof(r.laddr));
	memcpy(r.raddr, t->laddr, sizeof(r.raddr));
	r.lport = t->rport;
	r.rport = t->lport;
	return r;
}

void format_endpoint(const struct tuple *t, bool local, char *buf, size_t len)
{
	uint16_t family = t->family;
	const uint8_t *a = unmapped(&family, local ? t->laddr : t->raddr);
	uint16_t port = local ? t->lport : t->rport;
	char ip[INET6_ADDRSTRLEN];

	if (family == AF_INET6) {
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, port);
		return;
	}
	inet_ntop(AF_INET, a, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, port);
}

/* ---- names ---- */

const char *tcp_state_name(int state)
{
	static const char *const names[] = {
		[1] = "ESTABLISHED",	 [2] = "SYN_SENT",  [3] = "SYN_RECV", [4] = "FIN_WAIT1",
		[5] = "FIN_WAIT2",	 [6] = "TIME_WAIT", [7] = "CLOSE",    [8] = "CLOSE_WAIT",
		[9] = "LAST_ACK",	 [10] = "LISTEN",   [11] = "CLOSING", [12] = "NEW_SYN_RECV",
		[13] = "BOUND_INACTIVE",
	};

	if (state > 0 && state < (int)(sizeof(names) / sizeof(names[0])))
		return names[state];
	return "UNKNOWN";
}

const char *closed_by_name(int closed_by)
{
	static const char *const names[] = {
		[CLOSED_NONE] = "open",		[CLOSED_LOCAL_FIN] = "local-fin",
		[CLOSED_PEER_FIN] = "peer-fin", [CLOSED_LOCAL_RST] = "local-rst",
		[CLOSED_PEER_RST] = "peer-rst",
	};
	return closed_by >= 0 && closed_by <= CLOSED_PEER_RST ? names[closed_by] : "unknown";
}

const char *role_name(int role)
{
	return role == ROLE_SERVER ? "server" : role == ROLE_CLIENT ? "client" : "unknown";
}
