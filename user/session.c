// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conntab.h"
#include "session.h"

#define RECENT_CONNS 4096 /* finished connections kept to match late resets */

struct finished {
	struct conn c;
	struct http_state http;
	uint64_t end_ns;
};

struct session {
	struct output out;
	struct conntab conns;
	bool full_path;
	bool pid_filter;
	bool verbose;
	char rst_reasons[MAX_RST_REASONS][RST_REASON_LEN]; /* enum sk_rst_reason names, from BTF */
	struct finished recent[RECENT_CONNS];		   /* ring */
	uint32_t recent_next;
	uint64_t events;
	uint64_t bad_records; /* wrong size or unknown type */
	uint64_t lost_requests;
	uint64_t last_ts_ns; /* newest kernel stamp seen */
	struct analyzer an;
	uint64_t closes[3][CLOSED_PEER_RST + 1]; /* by enum conn_role, enum closed_by */
	struct capture *cap;			 /* -w: where the event stream is recorded */
};

struct session *session_new(const struct session_opts *o)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (conntab_init(&s->conns, o->max_conns)) {
		free(s);
		return NULL;
	}
	analyzer_init(&s->an, o->margin_ms);
	s->out = o->out;
	s->full_path = o->full_path;
	s->pid_filter = o->pid_filter;
	s->verbose = o->verbose;
	return s;
}

void session_set_reset_reasons(struct session *s, const char (*names)[RST_REASON_LEN])
{
	memcpy(s->rst_reasons, names, sizeof(s->rst_reasons));
}

void session_use_header(struct session *s, const struct capture_header *h)
{
	s->out.wall_offset_ns = h->wall_offset_ns;
	s->pid_filter = h->flags & CAPTURE_F_PID_FILTER;
	session_set_reset_reasons(s, h->rst_reasons);
}

void session_record_to(struct session *s, struct capture *cap)
{
	s->cap = cap;
}

void session_set_log(struct session *s, FILE *f)
{
	s->out.f = f;
}

FILE *session_log(const struct session *s)
{
	return s->out.f;
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

/* ---- finished connections, for resets that come after the socket ---- */

static void remember(struct session *s, const struct conn_rec *r, uint64_t end_ns)
{
	struct finished *f = &s->recent[s->recent_next++ % RECENT_CONNS];

	f->c = r->c;
	f->http = r->http;
	f->end_ns = end_ns;
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
	output_close_record(&s->out, &r->c, &r->http, end_ns);
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
	conn_read_http(&r->c, s->full_path, &r->http);
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
	conn_read_http(&r->c, s->full_path, &r->http);
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

	bool readable = http_parse(e->payload, e->payload_len, s->full_path, &m, &used) ==
			HTTP_REQUEST;

	/* bytes in page fragments the kernel would not let BPF read: still a
	 * lost request if the connection carried HTTP */
	if (!readable && !(e->payload_src == SRC_NONLINEAR && e->seg_len))
		return;
	if (e->sk_kind == SK_KIND_FULL)
		live = conntab_find(&s->conns, e->sk);
	if (live) {
		c = &live->c;
		h = &live->http;
	} else if ((f = find_recent(s, &e->t))) {
		c = &f->c;
		h = &f->http;
	} else if (s->pid_filter || !readable) {
		return; /* not one of the traced process's connections */
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
	output_lost_record(&s->out, &lost);
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
	/* at the conn level, the request's line is not known: only that it went */
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
	output_lost_record(&s->out, &lost);
	analyze_lost(&s->an, &r->c, &lost.t, false, lost.request);
}

static void on_reset(struct session *s, const struct reset_event *e)
{
	if (s->verbose) {
		char l[64], r[64];
		format_endpoint(&e->t, true, l, sizeof(l));
		format_endpoint(&e->t, false, r, sizeof(r));
		fprintf(stderr,
			"katrace: reset %s sk=%llx kind=%d reason=%s payload=%d/%u bytes (source %d) %s %s\n",
			e->sent ? "sent" : "received", (unsigned long long)e->sk, e->sk_kind,
			reason_name(s, e->reason) ? reason_name(s, e->reason) : "?", e->payload_len,
			e->seg_len, e->payload_src, l, r);
	}
	if (e->sent && (e->payload_len || (e->payload_src == SRC_NONLINEAR && e->seg_len)))
		backend_lost(s, e);
	else if (!e->sent && e->sk_kind == SK_KIND_FULL) {
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
		if (s->cap)
			capture_write_conn(s->cap, data, s->full_path);
		on_close(s, data);
		break;
	case EV_DESTROY:
		if (s->cap)
			capture_write_conn(s->cap, data, s->full_path);
		on_destroy(s, data);
		break;
	case EV_RESET:
		if (s->cap)
			capture_write_reset(s->cap, data, s->full_path);
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

void session_counters(const struct session *s, struct run_counters *c)
{
	c->events = s->events;
	c->bad_records = s->bad_records;
	c->lost_requests = s->lost_requests;
	c->user_evictions = s->conns.evictions;
}

uint32_t session_open_conns(const struct session *s)
{
	return s->conns.count;
}

uint64_t session_last_ts(const struct session *s)
{
	return s->last_ts_ns;
}

const struct analyzer *session_analysis(const struct session *s)
{
	return &s->an;
}

void session_verdicts(const struct session *s, struct verdict *v)
{
	analyze_verdicts(&s->an, v);
}

uint64_t session_closes(const struct session *s, int role, int closed_by)
{
	if (role < ROLE_UNKNOWN || role > ROLE_CLIENT || closed_by < 0 ||
	    closed_by > CLOSED_PEER_RST)
		return 0;
	return s->closes[role][closed_by];
}

struct each_live {
	conn_fn fn;
	void *arg;
};

static void each_live(struct conn_rec *r, void *arg)
{
	struct each_live *e = arg;

	e->fn(&r->c, &r->http, e->arg);
}

void session_each_conn(struct session *s, conn_fn fn, void *arg)
{
	struct each_live live = { fn, arg };
	uint32_t i;

	for (i = 0; i < RECENT_CONNS && i < s->recent_next; i++)
		fn(&s->recent[i].c, &s->recent[i].http, arg);
	conntab_each(&s->conns, each_live, &live);
}

void session_summary(struct session *s, const struct run_counters *n)
{
	static struct verdict v[MAX_SERVICES];

	session_verdicts(s, v);
	output_summary(&s->out, &s->an, v, n, s->last_ts_ns);
}

void session_free(struct session *s)
{
	if (!s)
		return;
	conntab_free(&s->conns);
	analyzer_free(&s->an);
	free(s);
}
