// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "capture.h"
#include "session.h"

struct session *session_new(uint32_t max_conns, double margin_ms)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (conntab_init(&s->conns, max_conns)) {
		free(s);
		return NULL;
	}
	analyzer_init(&s->an, margin_ms);
	return s;
}

static size_t record_size(uint32_t type)
{
	switch (type) {
	case EV_CLOSE:
	case EV_DESTROY:
		return sizeof(struct conn_event);
	case EV_RESET:
		return sizeof(struct reset_event);
	}
	return 0;
}

/* ---- recording: what katrace keeps of HTTP is the start line ---- */

/* The start line of m as bytes http_parse() reads back to the same m: no
 * headers, no body, the query already cut unless --full-path. */
static uint16_t sanitized(const struct http_msg *m, uint8_t *out, size_t max)
{
	char target[sizeof(m->path)];
	size_t n = strlen(m->path);
	int len;

	memcpy(target, m->path, n + 1);
	if (n >= 4 && !memcmp(target + n - 4, "?\xe2\x80\xa6", 4))
		target[n - 3] = 0;	/* "?…" back to "?" */
	if (m->kind == HTTP_REQUEST)
		len = snprintf((char *)out, max, "%s %s HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			       m->method, target);
	else
		len = snprintf((char *)out, max, "HTTP/1.1 %03d\r\nContent-Length: 0\r\n\r\n",
			       m->status);
	return len < 0 || (size_t)len >= max ? 0 : len;
}

/* The request lines in a buffer of request bytes, back to back, as bytes
 * that parse to the same lines: what a capture keeps of last_req. */
static uint16_t sanitized_requests(const struct session *s, const uint8_t *buf, size_t len,
				   uint8_t *out, size_t max)
{
	struct http_msg m;
	size_t n = 0;

	while (http_next(&buf, &len, s->full_path, &m) && m.kind == HTTP_REQUEST) {
		uint16_t k = sanitized(&m, out + n, max - n);

		if (!k)
			break;
		n += k;
	}
	return n;
}

static void record_conn(struct session *s, const struct conn_event *e)
{
	struct conn_event out;
	size_t len = e->c.http.req_len < MAX_PAYLOAD ? e->c.http.req_len : MAX_PAYLOAD;

	if (!s->cap)
		return;
	out = *e;
	memset(out.c.http.last_req, 0, sizeof(out.c.http.last_req));
	out.c.http.req_len = sanitized_requests(s, e->c.http.last_req, len, out.c.http.last_req,
						sizeof(out.c.http.last_req));
	capture_write(s->cap, &out, sizeof(out));
}

static void record_reset(struct session *s, const struct reset_event *e)
{
	struct reset_event out;
	struct http_msg m;
	size_t used;

	if (!s->cap)
		return;
	out = *e;
	out.payload_len = 0;
	if (e->payload_len && http_parse(e->payload, e->payload_len, s->full_path, &m, &used) ==
	    HTTP_REQUEST)
		out.payload_len = sanitized(&m, out.payload, sizeof(out.payload));
	memset(out.payload + out.payload_len, 0, sizeof(out.payload) - out.payload_len);
	capture_write(s->cap, &out, sizeof(out));
}

/* ---- HTTP join: the kernel counted, user space reads the request line ---- */

static void derive_http(const struct session *s, const struct conn *c, struct http_state *h)
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
	if (c->per_conn) {
		/* nothing counted: requests flow into a server, out of a client */
		h->req_dir = c->role == ROLE_CLIENT ? DIR_OUT : DIR_IN;
		/* Idle runs to the close, from the stamps the close event brought
		 * (exact multiples of a jiffy before it); a later event estimates
		 * the same jiffy stamps anew and may place them past the close. */
		h->idle_since_ns = idle_since;
		if (!idle_since && c->close_ns) {
			idle_since = conn_served(c, h) ? response_way_ns(c, h) : conn_last_activity(c);
			h->idle_since_ns = idle_since < c->close_ns ? idle_since : c->close_ns;
		}
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
	while (http_next(&buf, &len, s->full_path, &m) && m.kind == HTTP_REQUEST) {
		last = m;
		found++;
	}
	if (found) {
		http_request_line(&last, h->last_request, sizeof(h->last_request));
		h->requests += found - 1;
	}
	if (h->responses > h->requests)	/* pipelined reads start several requests */
		h->requests = h->responses;
}

/* ---- finished connections, for resets that come after the socket ---- */

static void remember(struct session *s, const struct conn_rec *r, uint64_t end_ns)
{
	struct finished *f = &s->recent[s->recent_next++ % RECENT_CONNS];

	f->c = r->c;
	f->http = r->http;
	f->end_ns = end_ns;
}

static bool same_addr(uint16_t fa, const uint8_t *a, uint16_t fb, const uint8_t *b)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	/* a dual-stack socket carries IPv4 peers as ::ffff:a.b.c.d */
	if (fa == AF_INET6 && !memcmp(a, v4mapped, 12)) {
		fa = AF_INET;
		a += 12;
	}
	if (fb == AF_INET6 && !memcmp(b, v4mapped, 12)) {
		fb = AF_INET;
		b += 12;
	}
	return fa == fb && !memcmp(a, b, fa == AF_INET ? 4 : 16);
}

static bool same_tuple(const struct tuple *a, const struct tuple *b)
{
	return a->lport == b->lport && a->rport == b->rport &&
	       same_addr(a->family, a->laddr, b->family, b->laddr) &&
	       same_addr(a->family, a->raddr, b->family, b->raddr);
}

static struct finished *find_recent(struct session *s, const struct tuple *t)
{
	uint32_t i;

	for (i = 1; i <= RECENT_CONNS && i <= s->recent_next; i++) {
		struct finished *f = &s->recent[(s->recent_next - i) % RECENT_CONNS];

		if (same_tuple(&f->c.t, t))
			return f;
	}
	return NULL;
}

/* ---- records ---- */

static void proxy_lost(struct session *s, struct conn_rec *r);

static void close_record(struct session *s, const struct conn_rec *r, uint64_t end_ns)
{
	output_close(&s->out, &r->c, &r->http, end_ns);
	analyze_conn(&s->an, &r->c, &r->http);
	if (r->c.role <= ROLE_CLIENT && r->c.closed_by <= CLOSED_PEER_RST)
		s->closes[r->c.role][r->c.closed_by]++;
}

static void on_close(struct session *s, const struct conn_event *e)
{
	struct conn_rec *r = conntab_get(&s->conns, e->c.sk);

	if (!r)
		return;
	r->c = e->c;
	derive_http(s, &r->c, &r->http);
	r->closing = true;
}

static void on_destroy(struct session *s, const struct conn_event *e)
{
	struct conn_rec *r = conntab_find(&s->conns, e->c.sk), tmp;

	if (!r) {
		memset(&tmp, 0, sizeof(tmp));
		r = &tmp;
	}
	r->c = e->c;
	derive_http(s, &r->c, &r->http);
	proxy_lost(s, r);
	close_record(s, r, e->h.ts_ns);
	remember(s, r, e->h.ts_ns);
	if (r != &tmp)
		conntab_remove(&s->conns, r);
}

static const char *reason_name(struct session *s, int reason)
{
	if (reason < 0 || reason >= MAX_RST_REASONS || !s->rst_reasons[reason][0])
		return NULL;
	return s->rst_reasons[reason];
}

/* The backend sent a RST in answer to a request: the request was lost. */
static void backend_lost(struct session *s, const struct reset_event *e)
{
	struct conn_rec *live = NULL;
	struct finished *f = NULL;
	const struct conn *c = NULL;
	const struct http_state *h = NULL;
	struct http_msg m;
	struct lost lost = {};
	size_t used;
	uint64_t arrived = e->payload_src == SRC_ARRIVED ? e->arrived_ns : e->h.ts_ns;

	bool readable = http_parse(e->payload, e->payload_len, s->full_path, &m, &used) == HTTP_REQUEST;

	/* bytes in page fragments the kernel would not let BPF read: still a
	 * lost request if the connection carried HTTP */
	if (!readable && !(e->payload_src == SRC_NONLINEAR && e->seg_len))
		return;
	if (e->sk_kind == RST_SK_FULL)
		live = conntab_find(&s->conns, e->sk);
	if (live) {
		c = &live->c;
		h = &live->http;
	} else if ((f = find_recent(s, &e->t))) {
		c = &f->c;
		h = &f->http;
	} else if (s->pid_filter || !readable) {
		return;	/* not one of the traced process's connections */
	}
	if (!readable && !conn_served(c, h))
		return;
	if (live)
		live->http.lost_reported = true;

	lost.ts_ns = arrived;
	lost.side = LOST_AT_SERVER;
	if (readable)
		http_request_line(&m, lost.request, sizeof(lost.request));
	lost.reason = reason_name(s, e->reason);
	lost.close_to_request_ms = NAN;
	lost.idle_ms = -1;
	lost.t = e->t;
	if (c) {
		lost.c = c;
		lost.t = c->t;
		if (c->close_ns && c->closed_by != CLOSED_NONE) {
			/* negative: it arrived before the close, and lay unread */
			lost.close_to_request_ms = ((double)arrived - (double)c->close_ns) / 1e6;
			lost.idle_ms = span_ms(conn_idle_since(c, h), c->close_ns);
		}
	}
	s->lost_requests++;
	output_lost(&s->out, &lost);
	analyze_lost(&s->an, c, &lost.t, true, lost.request);
}

/* The proxy (client side) got a RST on a connection where its last request
 * has no response: that request was lost. Decided when the socket is gone:
 * on loopback the RST comes back inside the send() that carried the
 * request, before that send's own event. */
static void proxy_lost(struct session *s, struct conn_rec *r)
{
	struct lost lost = {};

	if (!r->peer_rst_ns || r->http.lost_reported || r->http.req_dir != DIR_OUT ||
	    !conn_served(&r->c, &r->http) || !conn_outstanding(&r->c, &r->http))
		return;
	r->http.lost_reported = true;
	/* per connection, the request's line is not known: only that it went */
	lost.ts_ns = r->http.counted ? r->http.last_request_ns : r->c.last_send_ns;
	lost.side = LOST_AT_CLIENT;
	lost.c = &r->c;
	lost.t = r->c.t;
	snprintf(lost.request, sizeof(lost.request), "%s", r->http.last_request);
	lost.close_to_request_ms = NAN;
	lost.idle_ms = -1;
	if (r->c.closed_by == CLOSED_PEER_FIN || r->c.closed_by == CLOSED_PEER_RST) {
		/* The backend's close as this side saw it: its FIN, or its RST
		 * when it aborted. Negative: the request went out first. */
		lost.close_to_request_ms = ((double)lost.ts_ns - (double)r->c.close_ns) / 1e6;
		lost.idle_ms = span_ms(conn_idle_since(&r->c, &r->http), r->c.close_ns);
	} else {
		lost.idle_ms = span_ms(conn_idle_since(&r->c, &r->http), lost.ts_ns);
	}
	s->lost_requests++;
	output_lost(&s->out, &lost);
	analyze_lost(&s->an, &r->c, &lost.t, false, lost.request);
}

static void on_reset(struct session *s, const struct reset_event *e)
{
	if (s->verbose) {
		char l[64], r[64];
		format_endpoint(&e->t, true, l, sizeof(l));
		format_endpoint(&e->t, false, r, sizeof(r));
		fprintf(stderr, "katrace: reset %s sk=%llx kind=%d reason=%s payload=%d/%u bytes (source %d) %s %s\n",
			e->sent ? "sent" : "received", (unsigned long long)e->sk, e->sk_kind,
			reason_name(s, e->reason) ? reason_name(s, e->reason) : "?",
			e->payload_len, e->seg_len, e->payload_src, l, r);
	}
	if (e->sent && (e->payload_len || (e->payload_src == SRC_NONLINEAR && e->seg_len)))
		backend_lost(s, e);
	else if (!e->sent && e->sk_kind == RST_SK_FULL) {
		struct conn_rec *r = conntab_find(&s->conns, e->sk);

		if (r && !r->peer_rst_ns)
			r->peer_rst_ns = e->h.ts_ns;
	}
}

int session_event(void *ctx, const void *data, size_t len)
{
	struct session *s = ctx;
	const struct event_hdr *h = data;

	if (len < sizeof(*h) || !record_size(h->type) || len < record_size(h->type)) {
		s->bad_records++;
		return 0;
	}
	s->events++;
	if (h->ts_ns > s->last_ts_ns)
		s->last_ts_ns = h->ts_ns;

	switch (h->type) {
	case EV_CLOSE:
		record_conn(s, data);
		on_close(s, data);
		break;
	case EV_DESTROY:
		record_conn(s, data);
		on_destroy(s, data);
		break;
	case EV_RESET:
		record_reset(s, data);
		on_reset(s, data);
		break;
	}
	return 0;
}

static void flush_pending(struct conn_rec *r, void *arg)
{
	struct session *s = arg;

	proxy_lost(s, r);
	if (r->closing)
		close_record(s, r, s->last_ts_ns);
	conntab_remove(&s->conns, r);
}

void session_finish(struct session *s)
{
	conntab_each(&s->conns, flush_pending, s);
}

void session_summary(struct session *s, uint64_t dropped, uint64_t not_tracked)
{
	struct run_counts n = {
		.events = s->events, .lost_requests = s->lost_requests,
		.dropped = dropped, .not_tracked = not_tracked,
	};

	output_summary(&s->out, &s->an, &n, s->last_ts_ns);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	conntab_free(&s->conns);
	analyzer_free(&s->an);
	free(s);
}
