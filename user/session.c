// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <netinet/tcp.h>
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

/* A listener katrace has seen go up, and whether it is down now. */
struct listener {
	struct listen_entry e;
	bool up;
	bool followed;	  /* the service of a traced process (or of its successor) */
	uint64_t down_ns; /* when it went down; 0 while up */
};

/* A record held for a moment: the other end of the same connection or
 * attempt, on this host, may still complete it; an exit's closes follow it. */
struct held {
	enum { HELD_LOST, HELD_REFUSED, HELD_EXIT } kind;
	uint64_t due_ns;
	union {
		struct lost lost;
		struct refused refused;
		struct owner_exit exit;
	};
};

#define MAX_LISTENERS 64
#define MAX_HELD      64
#define HOLD_NS	      (200 * 1000000ULL)

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
	struct listener listeners[MAX_LISTENERS];
	int nlisteners;
	uint32_t followed[MAX_LISTENERS]; /* tgids whose listeners are followed */
	int nfollowed;
	uint32_t served[MAX_LISTENERS]; /* tgids that listened on a followed port */
	int nserved;
	struct held held[MAX_HELD];
	int nheld;
	struct owners owners; /* for the TLS library probes */
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
	s->an.wall_offset_ns = o->out.wall_offset_ns;
	s->an.keep_timeline = o->timeline;
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
	s->an.wall_offset_ns = h->wall_offset_ns;
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
	case EV_LISTEN:
	case EV_EXIT:
	case EV_FOLLOW:
	case EV_TICK:
		return sizeof(struct owner_event);
	}
	return 0;
}

/* ---- held records ---- */

static void emit_lost(struct session *s, const struct lost *l)
{
	s->lost_requests++;
	output_lost_record(&s->out, l);
	analyze_lost(&s->an, l);
}

static void emit_held(struct session *s, struct held *h)
{
	switch (h->kind) {
	case HELD_LOST:
		emit_lost(s, &h->lost);
		break;
	case HELD_REFUSED:
		output_refused_record(&s->out, &h->refused);
		analyze_refused(&s->an, &h->refused);
		break;
	case HELD_EXIT:
		output_exit_record(&s->out, &h->exit);
		break;
	}
}

/* Emits, oldest first, what is due by now (everything when all). Returns
 * how many it emitted. */
static int flush_held(struct session *s, uint64_t now_ns, bool all)
{
	int i, n = 0, kept = 0;

	for (i = 0; i < s->nheld; i++) {
		if (all || s->held[i].due_ns <= now_ns) {
			emit_held(s, &s->held[i]);
			n++;
		} else {
			s->held[kept++] = s->held[i];
		}
	}
	s->nheld = kept;
	return n;
}

/* Held from the newest event on, not from the record's own time: a slow
 * request's arrival may be long past. */
static struct held *hold(struct session *s, unsigned int kind)
{
	struct held *h;

	if (s->nheld == MAX_HELD) /* full: the oldest goes out as it is */
		flush_held(s, s->held[0].due_ns, false);
	if (s->nheld == MAX_HELD)
		flush_held(s, 0, true);
	h = &s->held[s->nheld++];
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->due_ns = s->last_ts_ns + HOLD_NS;
	return h;
}

/* The same connection seen from its other end on this host. */
static bool reversed(const struct tuple *a, const struct tuple *b)
{
	struct tuple r = tuple_reversed(b);

	return same_tuple(a, &r);
}

static struct held *held_of(struct session *s, unsigned int kind, const struct tuple *t)
{
	int i;

	for (i = 0; i < s->nheld; i++)
		if (s->held[i].kind == kind &&
		    (kind == HELD_LOST ? reversed(&s->held[i].lost.t, t) :
					 reversed(&s->held[i].refused.t, t)))
			return &s->held[i];
	return NULL;
}

/* A lost request held as seen only by the peer, on this very end. */
static struct held *held_by_peer(struct session *s, const struct tuple *t)
{
	int i;

	for (i = 0; i < s->nheld; i++)
		if (s->held[i].kind == HELD_LOST && s->held[i].lost.seen_by_peer &&
		    same_tuple(&s->held[i].lost.t, t))
			return &s->held[i];
	return NULL;
}

static struct owner_exit *exit_of(struct session *s, uint32_t pid)
{
	int i;

	for (i = 0; i < s->nheld; i++)
		if (s->held[i].kind == HELD_EXIT && s->held[i].exit.pid == pid)
			return &s->held[i].exit;
	return NULL;
}

static void set_other_end(struct other_end *o, const struct conn *c)
{
	o->seen = true;
	o->pid = c->tgid;
	memcpy(o->comm, c->comm, sizeof(o->comm));
}

/* Two records of one failed request: the backend's own evidence wins
 * over the client's, and over the RST its peer received (which can come
 * first: tcp_send_reset fires after the RST went out). */
static void merge_lost(struct lost *first, const struct lost *l)
{
	struct other_end other = first->other;

	if (l->side == LOST_AT_SERVER && first->side == LOST_AT_CLIENT) {
		struct conn client = first->conn;

		*first = *l;
		set_other_end(&first->other, &client);
	} else if (first->seen_by_peer && !l->seen_by_peer && l->side == LOST_AT_SERVER) {
		*first = *l;
		first->other = other;
	} else if (l->matched && first->side != l->side) {
		set_other_end(&first->other, &l->conn);
	}
}

/* A failed request, held for its other end: seen from both ends of one
 * host, it is one record, the backend's (it knows more), carrying both. */
static void report_lost(struct session *s, const struct lost *l)
{
	struct held *h = held_of(s, HELD_LOST, &l->t);
	struct owner_exit *x;

	if (!h && !l->seen_by_peer)
		h = held_by_peer(s, &l->t);
	if (h) {
		merge_lost(&h->lost, l);
		return;
	}
	x = l->cause == CAUSE_BACKEND_EXIT && l->matched ? exit_of(s, l->conn.tgid) : NULL;
	if (x && x->in_flight < 4)
		snprintf(x->requests[x->in_flight], sizeof(x->requests[0]), "%s", l->request);
	if (x)
		x->in_flight++;
	h = hold(s, HELD_LOST);
	h->lost = *l;
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

/* ---- listeners and the processes behind them ---- */

static bool is_followed(const struct session *s, uint32_t tgid)
{
	int i;

	if (!s->pid_filter)
		return true;
	for (i = 0; i < s->nfollowed; i++)
		if (s->followed[i] == tgid)
			return true;
	return false;
}

static void follow(struct session *s, uint32_t tgid)
{
	if (is_followed(s, tgid) || s->nfollowed == MAX_LISTENERS)
		return;
	s->followed[s->nfollowed++] = tgid;
}

static struct listener *listener_on(struct session *s, uint16_t port)
{
	int i;

	for (i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].e.t.lport == port)
			return &s->listeners[i];
	return NULL;
}

/* A connection closed while its service's listener was down: a shutdown,
 * not an idle timeout. */
static bool closed_in_shutdown(struct session *s, const struct conn *c)
{
	struct listener *l = c->role == ROLE_SERVER ? listener_on(s, c->t.lport) : NULL;

	return l && !l->up && c->close_ns >= l->down_ns;
}

static void on_listen(struct session *s, const struct owner_event *e);

/* A listener closed that was up before katrace started: BPF knew no port
 * for it, only the process that closed it. */
static void owner_listeners_down(struct session *s, const struct owner_event *e)
{
	struct owner_event one = *e;
	int i;

	for (i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].e.tgid != e->tgid || !s->listeners[i].up)
			continue;
		one.t = s->listeners[i].e.t;
		on_listen(s, &one);
	}
}

static void on_listen(struct session *s, const struct owner_event *e)
{
	struct listener *l = listener_on(s, e->t.lport);
	struct listener_change rec = { .ts_ns = e->h.ts_ns, .t = e->t, .up = e->up, .pid = e->tgid };

	if (!e->up && !e->t.lport) {
		owner_listeners_down(s, e);
		return;
	}
	if (e->up)
		owners_see(&s->owners, e->tgid, e->comm, false);
	/* a port once followed stays followed: whoever listens on it next */
	if (!is_followed(s, e->tgid) && !(l && l->followed))
		return;
	if (!l && s->nlisteners < MAX_LISTENERS)
		l = &s->listeners[s->nlisteners++];
	if (!l)
		return;
	if (e->up && !l->up && l->down_ns) {
		struct listen_entry next = { .t = e->t, .tgid = e->tgid };

		memcpy(next.comm, e->comm, sizeof(next.comm));
		analyze_listener_down(&s->an, e->t.lport, l->down_ns, e->h.ts_ns, &next);
	}
	l->e.t = e->t;
	l->e.tgid = e->tgid;
	memcpy(l->e.comm, e->comm, sizeof(l->e.comm));
	l->up = e->up;
	l->followed = true;
	l->down_ns = e->up ? 0 : e->h.ts_ns;
	if (e->up) {
		follow(s, e->tgid);
		if (!session_held_listener(s, e->tgid) && s->nserved < MAX_LISTENERS)
			s->served[s->nserved++] = e->tgid;
	}
	memcpy(rec.comm, e->comm, sizeof(rec.comm));
	output_listener_record(&s->out, &rec);
}

static void on_owner_exit(struct session *s, const struct owner_event *e)
{
	struct held *h;
	int i;

	/* two threads exiting at once can both see the group's last thread
	 * go (they read signal->live after both decrements): one exit */
	if (exit_of(s, e->tgid))
		return;
	h = hold(s, HELD_EXIT);
	h->exit.ts_ns = e->h.ts_ns;
	h->exit.pid = e->tgid;
	memcpy(h->exit.comm, e->comm, sizeof(h->exit.comm));
	h->exit.exit_code = e->exit_code;
	for (i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].e.tgid != e->tgid)
			continue;
		h->exit.held_listener = true;
		analyze_exit(&s->an, s->listeners[i].e.t.lport, e->h.ts_ns, e->tgid, e->comm,
			     e->exit_code);
	}
}

/* ---- connections ---- */

static void close_record(struct session *s, const struct conn_rec *r, uint64_t end_ns)
{
	struct owner_exit *x = r->c.closed_exiting ? exit_of(s, r->c.tgid) : NULL;

	if (x)
		x->conns++;
	output_close_record(&s->out, &r->c, &r->http, end_ns);
	analyze_conn(&s->an, &r->c, &r->http,
		     !r->c.closed_exiting && !r->c.peer_exiting && !closed_in_shutdown(s, &r->c));
	if (r->c.role <= ROLE_CLIENT && r->c.closed_by <= CLOSED_PEER_RST)
		s->closes[r->c.role][r->c.closed_by]++;
}

static void lost_from_conn(struct lost *l, const struct conn_rec *r, enum lost_side side,
			   uint64_t end_ns)
{
	double idle;

	memset(l, 0, sizeof(*l));
	l->answered_ms = -1;
	l->side = side;
	l->matched = true;
	l->conn = r->c;
	l->t = r->c.t;
	l->close_to_request_ms = NAN;
	snprintf(l->request, sizeof(l->request), "%s",
		 r->http.last_request[0] ? r->http.last_request : r->unacked_request);
	if (!l->request[0])
		l->unnamed = r->c.proto == PROTO_TLS ? UNNAMED_ENCRYPTED :
			     r->http.counted	     ? UNNAMED_UNPARSED :
						       UNNAMED_CONN_LEVEL;
	conn_wait(&r->c, &r->http, end_ns, &idle, &l->waited_ms);
	l->idle_ms = idle;
	l->ts_ns = r->c.close_ns - (uint64_t)(l->waited_ms > 0 ? l->waited_ms * 1e6 : 0);
}

/* The peer gave up on a request the backend answered later. */
static void answered_too_late(struct session *s, const struct conn_rec *r)
{
	struct lost l;

	lost_from_conn(&l, r, LOST_AT_SERVER, r->c.close_ns);
	l.cause = CAUSE_PROXY_TIMEOUT;
	l.ts_ns = r->http.last_request_ns;
	l.waited_ms = span_ms(r->http.last_request_ns, r->c.close_ns);
	l.answered_ms = span_ms(r->http.last_request_ns, r->http.last_response_ns);
	report_lost(s, &l);
}

/* The backend's end closed with a request it had read and not answered. */
static void server_failed(struct session *s, struct conn_rec *r, uint64_t end_ns)
{
	struct lost l;

	lost_from_conn(&l, r, LOST_AT_SERVER, end_ns);
	if (r->c.closed_exiting)
		l.cause = CAUSE_BACKEND_EXIT;
	else if (r->c.closed_by == CLOSED_PEER_FIN || r->c.closed_by == CLOSED_PEER_RST)
		l.cause = CAUSE_PROXY_TIMEOUT;
	else
		l.cause = CAUSE_BACKEND_RESET;
	report_lost(s, &l);
}

/* The proxy's end (a client) closed with its last request unanswered. The
 * race: the request went out on a connection that had idled, and the
 * backend's FIN came before it or its RST right after it, not from a
 * backend exiting on this host. */
static void client_failed(struct session *s, struct conn_rec *r, uint64_t end_ns)
{
	bool by_peer = r->c.closed_by == CLOSED_PEER_FIN || r->c.closed_by == CLOSED_PEER_RST;
	struct lost l;

	lost_from_conn(&l, r, LOST_AT_CLIENT, end_ns);
	/* at the conn level, the request's line is not known: only that it went */
	l.ts_ns = r->http.counted ? r->http.last_request_ns : r->c.last_send_ns;
	if (by_peer) {
		/* The backend's close as this side saw it: its FIN, or its RST
		 * when it aborted. Negative: the request went out first. */
		l.close_to_request_ms = ((double)l.ts_ns - (double)r->c.close_ns) / 1e6;
		l.idle_ms = span_ms(conn_idle_since(&r->c, &r->http), r->c.close_ns);
	} else {
		l.idle_ms = span_ms(conn_idle_since(&r->c, &r->http), l.ts_ns);
	}
	if (!by_peer)
		l.cause = CAUSE_PROXY_TIMEOUT;
	else if (r->c.peer_exiting) /* its FIN or RST came from the exiting backend */
		l.cause = CAUSE_BACKEND_EXIT;
	else if (r->peer_rst_ns &&
		 span_ms(conn_idle_since(&r->c, &r->http), l.ts_ns) >= MIN_IDLE_MS)
		l.cause = CAUSE_KEEPALIVE_RACE;
	else
		l.cause = CAUSE_BACKEND_RESET;
	report_lost(s, &l);
}

/* A connection over at end_ns: did a request fail on it? Its end is told
 * by the way requests went (a connection adopted mid-way has no role). */
static void conn_failed(struct session *s, struct conn_rec *r, uint64_t end_ns)
{
	if (r->http.lost_reported || !r->c.close_ns || !conn_served(&r->c, &r->http))
		return;
	if (!conn_outstanding(&r->c, &r->http)) {
		/* answered well after the peer's close: a send is stamped
		 * at its return, which on one host can trail the close it
		 * caused (the client read the answer and closed) */
		if (r->gave_up && r->http.counted &&
		    r->http.last_response_ns > r->c.close_ns + MIN_IDLE_MS * 1000000ULL) {
			r->http.lost_reported = true;
			answered_too_late(s, r);
		}
		return;
	}
	r->http.lost_reported = true;
	if (r->c.role != ROLE_CLIENT && r->http.req_dir == DIR_IN)
		server_failed(s, r, end_ns);
	else if (r->c.role != ROLE_SERVER && r->http.req_dir == DIR_OUT)
		client_failed(s, r, end_ns);
}

static void on_close(struct session *s, const struct conn_event *e)
{
	struct conn_rec *r = conntab_get(&s->conns, e->c.sk);

	if (!r)
		return;
	/* a record left by an earlier socket at this address: start afresh */
	if (r->c.start_ns != e->c.start_ns || r->c.t.lport != e->c.t.lport) {
		memset(&r->http, 0, sizeof(r->http));
		r->peer_rst_ns = 0;
		r->gave_up = false;
	}
	r->c = e->c;
	conn_read_http(&r->c, s->full_path, &r->http);
	owners_see(&s->owners, r->c.tgid, r->c.comm, false);
	r->closing = true;
	/* the backend may still answer after the peer gave up: decided now */
	r->gave_up = (r->c.closed_by == CLOSED_PEER_FIN || r->c.closed_by == CLOSED_PEER_RST) &&
		     r->c.role != ROLE_CLIENT && r->http.req_dir == DIR_IN &&
		     conn_served(&r->c, &r->http) && conn_outstanding(&r->c, &r->http);
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
	owners_see(&s->owners, r->c.tgid, r->c.comm, conn_sealed(&r->c, &r->http));
	conn_failed(s, r, e->h.ts_ns);
	close_record(s, r, e->h.ts_ns);
	remember(s, r, e->h.ts_ns);
	if (r != &tmp)
		conntab_remove(&s->conns, r);
}

/* ---- resets ---- */

static const char *reason_name(struct session *s, int reason)
{
	if (reason < 0 || reason >= MAX_RST_REASONS || !s->rst_reasons[reason][0])
		return NULL;
	return s->rst_reasons[reason];
}

/* The connection a reset in answer to a request belongs to: live, or
 * finished moments ago (NULL: neither). */
static const struct conn *reset_conn(struct session *s, const struct reset_event *e,
				     struct http_state **h, struct conn_rec **live)
{
	struct finished *f;

	*live = e->sk_kind == SK_KIND_FULL ? conntab_find(&s->conns, e->sk) : NULL;
	if (*live) {
		*h = &(*live)->http;
		return &(*live)->c;
	}
	f = find_recent(s, &e->t);
	*h = f ? &f->http : NULL;
	return f ? &f->c : NULL;
}

/* A TLS record that starts a segment, or an arrival left unread, as a
 * request: application data, not an alert (a closing peer's close_notify
 * is none; in TLS 1.3 it is a 19-byte application-data record). Unread, a
 * segment's size decides: more than an alert's 24 or 31 bytes. */
static bool tls_request(const struct reset_event *e)
{
	const uint8_t *p = e->payload;

	if (e->payload_len >= 5)
		return p[0] == 23 && p[1] == 3 && (p[3] << 8 | p[4]) != 19;
	return e->seg_len > 31;
}

/* A reset answering a segment katrace could not read as a request, on a
 * connection that served: HTTP in page fragments BPF could not read, or a
 * request inside TLS (the race is the same there). */
static bool unreadable_request(const struct reset_event *e, const struct conn *c,
			       const struct http_state *h)
{
	if (!c || !conn_served(c, h))
		return false;
	if (c->proto == PROTO_TLS)
		return tls_request(e);
	return e->payload_src == SRC_NONLINEAR;
}

/* The backend sent a RST in answer to a request: the request was lost,
 * to the race, or to the backend's exit when an exiting process closed. */
static void backend_lost(struct session *s, const struct reset_event *e)
{
	struct http_state *h = NULL;
	struct conn_rec *live;
	const struct conn *c;
	struct http_msg m;
	struct lost l = { .side = LOST_AT_SERVER,
			  .close_to_request_ms = NAN,
			  .idle_ms = -1,
			  .waited_ms = -1,
			  .answered_ms = -1,
			  .t = e->t };
	size_t used;
	uint64_t arrived = e->payload_src == SRC_ARRIVED ? e->arrived_ns : e->h.ts_ns;
	bool readable = http_parse(e->payload, e->payload_len, s->full_path, &m, &used) ==
			HTTP_REQUEST;

	if (!readable && !e->seg_len && e->payload_src != SRC_ARRIVED)
		return;
	c = reset_conn(s, e, &h, &live);
	if (!c && (s->pid_filter || !readable))
		return; /* not one of the traced process's connections */
	if (!readable && !unreadable_request(e, c, h))
		return;
	if (h) /* live or finished: the peer's RST is then this record's */
		h->lost_reported = true;
	l.ts_ns = arrived;
	if (readable)
		http_request_line(&m, l.request, sizeof(l.request));
	else
		l.unnamed = c->proto == PROTO_TLS ? UNNAMED_ENCRYPTED : UNNAMED_PAGE_FRAGMENTS;
	l.reason = reason_name(s, e->reason);
	if (c) {
		l.matched = true;
		l.conn = *c;
		l.t = c->t;
		l.cause = c->closed_exiting ? CAUSE_BACKEND_EXIT : CAUSE_KEEPALIVE_RACE;
		if (c->close_ns && c->closed_by != CLOSED_NONE) {
			/* negative: it arrived before the close, and lay unread */
			l.close_to_request_ms = ((double)arrived - (double)c->close_ns) / 1e6;
			l.idle_ms = span_ms(conn_idle_since(c, h), c->close_ns);
		}
	}
	report_lost(s, &l);
}

/* A connection attempt refused: a SYN answered with RST on this host (the
 * port that refused is local), or a connect() of this host reset in
 * SYN_SENT. On one host both are seen: one record, held for the other. */
static void refused(struct session *s, const struct reset_event *e)
{
	struct refused r = { .ts_ns = e->h.ts_ns, .t = e->t, .at_server = e->sent };
	struct listener *l;
	struct held *h;

	if (!e->sent) { /* the connecting end: the refusing port is its remote */
		r.t = tuple_reversed(&e->t);
		r.client.seen = true;
		r.client.pid = e->tgid;
		memcpy(r.client.comm, e->comm, sizeof(r.client.comm));
		h = held_of(s, HELD_REFUSED, &e->t);
		if (h) {
			h->refused.client = r.client;
			return;
		}
	} else {
		l = listener_on(s, e->t.lport);
		if (s->pid_filter && !(l && l->followed))
			return; /* a port no traced process served */
	}
	h = hold(s, HELD_REFUSED);
	h->refused = r;
}

/* The request line in the bytes a received RST found unacknowledged. */
static bool unacked_request(struct session *s, const struct reset_event *e, char *line, size_t len)
{
	struct http_msg m;
	size_t used;

	if (e->payload_src != SRC_UNACKED ||
	    http_parse(e->payload, e->payload_len, s->full_path, &m, &used) != HTTP_REQUEST)
		return false;
	http_request_line(&m, line, len);
	return true;
}

/* A traced backend's connection, closed and gone (a time-wait socket, or
 * none), answered the peer's next request with RST; before Linux 6.10 no
 * tcp_send_reset tells of it. With the peer on this host, its end's
 * tcp_receive_reset does: the request lost, from the other end. */
static void lost_seen_by_peer(struct session *s, const struct reset_event *e)
{
	struct tuple backend = tuple_reversed(&e->t);
	struct finished *f = find_recent(s, &backend);
	struct lost l = { .side = LOST_AT_SERVER, .waited_ms = -1, .answered_ms = -1 };

	if (!f || f->http.lost_reported || held_of(s, HELD_LOST, &e->t) ||
	    f->c.closed_by != CLOSED_LOCAL_FIN || !conn_served(&f->c, &f->http))
		return;
	if (f->c.proto == PROTO_TLS && !tls_request(e))
		return; /* the peer's close_notify, not a request */
	f->http.lost_reported = true;
	if (!unacked_request(s, e, l.request, sizeof(l.request)))
		l.unnamed = f->c.proto == PROTO_TLS ? UNNAMED_ENCRYPTED : UNNAMED_UNACKED;
	l.seen_by_peer = true;
	l.ts_ns = e->h.ts_ns;
	l.matched = true;
	l.conn = f->c;
	l.t = f->c.t;
	l.cause = f->c.closed_exiting ? CAUSE_BACKEND_EXIT : CAUSE_KEEPALIVE_RACE;
	l.close_to_request_ms = ((double)e->h.ts_ns - (double)f->c.close_ns) / 1e6;
	l.idle_ms = span_ms(conn_idle_since(&f->c, &f->http), f->c.close_ns);
	report_lost(s, &l);
}

/* The connecting end of a lost request got the backend's RST: if the
 * backend's end already reported it, this end is the record's other end.
 * The request it had sent is kept for --level conn, which has no line of
 * its own. */
static void peer_reset(struct session *s, const struct reset_event *e)
{
	struct conn_rec *r = conntab_find(&s->conns, e->sk);
	struct held *h;

	if (!r) {
		lost_seen_by_peer(s, e);
		return;
	}
	if (!r->peer_rst_ns)
		r->peer_rst_ns = e->h.ts_ns;
	unacked_request(s, e, r->unacked_request, sizeof(r->unacked_request));
	h = held_of(s, HELD_LOST, &r->c.t);
	if (h && h->lost.side == LOST_AT_SERVER && !r->http.lost_reported) {
		r->http.lost_reported = true;
		set_other_end(&h->lost.other, &r->c);
	}
}

/* An exiting backend aborted a connection with bytes unread (the kernel
 * sends RST): a request lost to the exit, whose line BPF did not see (it
 * came on a busy connection, where arrivals are not kept). */
static void aborted_unread(struct session *s, const struct reset_event *e)
{
	struct conn_rec *r = conntab_find(&s->conns, e->sk);
	struct lost l;

	if (!r || !r->c.closed_exiting || r->c.closed_by != CLOSED_LOCAL_RST ||
	    r->c.proto != PROTO_HTTP || r->c.role == ROLE_CLIENT || r->http.lost_reported)
		return;
	r->http.lost_reported = true;
	lost_from_conn(&l, r, LOST_AT_SERVER, e->h.ts_ns);
	l.request[0] = 0;
	l.unnamed = UNNAMED_BUSY;
	l.ts_ns = e->h.ts_ns;
	l.waited_ms = -1;
	l.reason = reason_name(s, e->reason);
	l.cause = CAUSE_BACKEND_EXIT;
	report_lost(s, &l);
}

static bool is_syn(const struct reset_event *e)
{
	return (e->seg_flags & 0x12) == 0x02; /* SYN without ACK */
}

static void on_reset(struct session *s, const struct reset_event *e)
{
	if (s->verbose) {
		char l[64], r[64];
		format_endpoint(&e->t, true, l, sizeof(l));
		format_endpoint(&e->t, false, r, sizeof(r));
		fprintf(stderr,
			"katrace: reset %s sk=%llx kind=%d state=%d flags=%#x reason=%s payload=%d/%u bytes (source %d) %s %s\n",
			e->sent ? "sent" : "received", (unsigned long long)e->sk, e->sk_kind,
			e->sk_state, e->seg_flags,
			reason_name(s, e->reason) ? reason_name(s, e->reason) : "?", e->payload_len,
			e->seg_len, e->payload_src, l, r);
	}
	if (e->sent && e->sk_kind == SK_KIND_NONE && is_syn(e))
		refused(s, e);
	else if (!e->sent && e->sk_state == TCP_SYN_SENT)
		refused(s, e);
	else if (e->sent && (e->payload_len || (e->payload_src == SRC_NONLINEAR && e->seg_len)))
		backend_lost(s, e);
	else if (e->sent && e->sk_kind == SK_KIND_FULL)
		aborted_unread(s, e);
	else if (!e->sent && e->sk_kind == SK_KIND_FULL)
		peer_reset(s, e);
}

/* What a capture holds beyond the kernel's events. */
static void on_file_record(struct session *s, const struct owner_event *e)
{
	if (e->h.type == EV_FOLLOW)
		follow(s, e->tgid);
	else
		flush_held(s, e->h.ts_ns, false);
}

static void record(struct session *s, const void *data)
{
	const struct event_hdr *h = data;

	if (!s->cap)
		return;
	if (h->type == EV_CLOSE || h->type == EV_DESTROY)
		capture_write_conn(s->cap, data, s->full_path);
	else if (h->type == EV_RESET)
		capture_write_reset(s->cap, data, s->full_path);
	else
		capture_write(s->cap, data, sizeof(struct owner_event));
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
	if (h->ts_ns > s->last_ts_ns && h->type < EV_CAPTURE_END) /* the kernel's, not a file's */
		s->last_ts_ns = h->ts_ns;
	record(s, data);
	flush_held(s, h->ts_ns, false);
	switch (h->type) {
	case EV_CLOSE:
		on_close(s, data);
		break;
	case EV_DESTROY:
		on_destroy(s, data);
		break;
	case EV_RESET:
		on_reset(s, data);
		break;
	case EV_LISTEN:
		on_listen(s, data);
		break;
	case EV_EXIT:
		on_owner_exit(s, data);
		break;
	default:
		on_file_record(s, data);
		break;
	}
	return 0;
}

void session_follow(struct session *s, uint32_t tgid)
{
	struct owner_event e = { .h.type = EV_FOLLOW, .h.ts_ns = s->last_ts_ns, .tgid = tgid };

	record(s, &e);
	follow(s, tgid);
}

int session_take_owners(struct session *s, struct owner_seen *out, int max)
{
	return owners_take(&s->owners, out, max);
}

int session_followed(const struct session *s, uint32_t *out, int max)
{
	int i;

	for (i = 0; i < s->nfollowed && i < max; i++)
		out[i] = s->followed[i];
	return i;
}

bool session_held_listener(const struct session *s, uint32_t tgid)
{
	int i;

	for (i = 0; i < s->nserved; i++)
		if (s->served[i] == tgid)
			return true;
	return false;
}

void session_tick(struct session *s, uint64_t now_ns)
{
	struct owner_event e = { .h.type = EV_TICK, .h.ts_ns = now_ns };
	int i;

	for (i = 0; i < s->nheld && s->held[i].due_ns > now_ns; i++)
		;
	if (i == s->nheld)
		return;
	record(s, &e);
	flush_held(s, now_ns, false);
}

static void flush_open(struct conn_rec *r, void *arg)
{
	struct session *s = arg;

	conn_failed(s, r, s->last_ts_ns);
	if (r->closing)
		close_record(s, r, s->last_ts_ns);
	conntab_remove(&s->conns, r);
}

void session_finish(struct session *s)
{
	int i;

	for (i = 0; i < s->nlisteners; i++) /* down to the end */
		if (!s->listeners[i].up && s->listeners[i].down_ns)
			analyze_listener_down(&s->an, s->listeners[i].e.t.lport,
					      s->listeners[i].down_ns, s->last_ts_ns, NULL);
	conntab_each(&s->conns, flush_open, s);
	flush_held(s, 0, true);
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
