// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "advice.h"
#include "analyze.h"

const double idle_buckets[N_IDLE_BUCKETS] = IDLE_BUCKETS;

void analyzer_init(struct analyzer *a, double margin_ms)
{
	memset(a, 0, sizeof(*a));
	a->margin_ms = margin_ms;
	a->rng = 0x9e3779b97f4a7c15ULL;
}

void analyzer_free(struct analyzer *a)
{
	int i;

	for (i = 0; i < a->n; i++) {
		free(a->svc[i].backend.samples);
		free(a->svc[i].peer.samples);
		timeline_free(&a->svc[i].timeline);
	}
	a->n = 0;
}

const char *verdict_name(enum verdict_kind k)
{
	return k == VERDICT_OK ? "OK" : k == VERDICT_MISMATCH ? "MISMATCH" : "INSUFFICIENT DATA";
}

static uint64_t next_rand(struct analyzer *a)
{
	a->rng ^= a->rng << 13;
	a->rng ^= a->rng >> 7;
	a->rng ^= a->rng << 17;
	return a->rng;
}

static void add_idle(struct analyzer *a, struct idle_stats *st, double ms)
{
	if (!st->samples) {
		st->samples = malloc(MAX_SAMPLES * sizeof(double));
		if (!st->samples)
			return;
	}
	if (!st->n || ms < st->min_ms)
		st->min_ms = ms;
	if (!st->n || ms > st->max_ms)
		st->max_ms = ms;
	st->n++;
	if (st->nsamples < MAX_SAMPLES)
		st->samples[st->nsamples++] = ms;
	else if (next_rand(a) % st->n < MAX_SAMPLES) /* reservoir: all stay equally likely */
		st->samples[next_rand(a) % MAX_SAMPLES] = ms;
}

/* The service a connection belongs to: the local port when it was
 * accepted here (katrace watches the backend), the peer when it was
 * connected from here (katrace watches the proxy). */
static struct service *service_of(struct analyzer *a, const struct conn *c, const struct tuple *t)
{
	char name[72];
	bool local;
	int i;

	if (c && c->role == ROLE_SERVER) {
		snprintf(name, sizeof(name), ":%u", t->lport);
		local = true;
	} else {
		format_endpoint(t, false, name, sizeof(name));
		local = false;
		/* a connection seen only mid-way: accepted here if its local
		 * port is a service we already know as local */
		if (!c || c->role == ROLE_UNKNOWN) {
			char port[16];

			snprintf(port, sizeof(port), ":%u", t->lport);
			for (i = 0; i < a->n; i++)
				if (a->svc[i].local && !strcmp(a->svc[i].name, port))
					return &a->svc[i];
		}
	}
	for (i = 0; i < a->n; i++)
		if (a->svc[i].local == local && !strcmp(a->svc[i].name, name))
			return &a->svc[i];
	if (a->n == MAX_SERVICES) {
		a->untracked++;
		return NULL;
	}
	memset(&a->svc[a->n], 0, sizeof(a->svc[0]));
	snprintf(a->svc[a->n].name, sizeof(a->svc[0].name), "%s", name);
	a->svc[a->n].local = local;
	return &a->svc[a->n++];
}

static void set_comm(char *dst, const char *comm)
{
	if (!dst[0] && comm[0])
		snprintf(dst, TASK_COMM_LEN, "%.*s", TASK_COMM_LEN - 1, comm);
}

/* Slot k holds [2^k, 2^(k+1)) ms; slot 0 also what is under 1 ms. */
static int log2_slot(double ms)
{
	uint64_t v = (uint64_t)ms;
	int k = 0;

	while (v > 1 && k < LOG2_SLOTS - 1) {
		v >>= 1;
		k++;
	}
	return k;
}

void analyze_conn(struct analyzer *a, const struct conn *c, const struct http_state *h,
		  bool genuine)
{
	struct idle_stats *st;
	struct service *s;
	bool by_backend;
	double idle;
	int b;

	/* only HTTP keep-alive connections that served something */
	if (!conn_served(c, h))
		return;
	s = service_of(a, c, &c->t);
	if (!s)
		return;
	s->conns++;
	set_comm(s->local ? s->backend_comm : s->peer_comm, c->comm);
	if (h->max_reuse_gap_ns / 1e6 > s->max_reuse_gap_ms)
		s->max_reuse_gap_ms = h->max_reuse_gap_ns / 1e6;
	if (c->closed_by == CLOSED_NONE || !c->close_ns || conn_outstanding(c, h) || !genuine)
		return; /* not closed, closed with a request outstanding, or not by a timer */
	idle = span_ms(conn_idle_since(c, h), c->close_ns);
	if (idle < 0)
		return;
	by_backend =
		s->local ? (c->closed_by == CLOSED_LOCAL_FIN || c->closed_by == CLOSED_LOCAL_RST) :
			   (c->closed_by == CLOSED_PEER_FIN || c->closed_by == CLOSED_PEER_RST);
	st = by_backend ? &s->backend : &s->peer;
	for (b = 0; b < N_IDLE_BUCKETS && idle / 1000 > idle_buckets[b]; b++)
		;
	st->hist[b]++;
	st->hist_sum_s += idle / 1000;
	if (idle >= MIN_IDLE_MS) {
		add_idle(a, st, idle);
		st->log2_ms[log2_slot(idle)]++;
		if (a->keep_timeline)
			timeline_close(&s->timeline, c->close_ns, idle, by_backend);
	}
}

static void add_example(char (*examples)[HTTP_MAX_PATH + 24], uint64_t n, const char *what)
{
	if (n < LOST_EXAMPLES)
		snprintf(examples[n], sizeof(examples[0]), "%s", what);
}

static void mark_lost(struct timeline *t, const struct lost *l, const char *what)
{
	struct event_mark *m = timeline_event(t, MARK_LOST, l->ts_ns);

	if (!m)
		return;
	m->cause = l->cause;
	m->idle_ms = l->idle_ms;
	m->reason = l->reason;
	snprintf(m->what, sizeof(m->what), "%s", what);
}

void analyze_lost(struct analyzer *a, const struct lost *l)
{
	struct conn tmp = {};
	const struct conn *c = &l->conn;
	struct service *s;
	const char *what;

	if (!l->matched) {
		tmp.t = l->t;
		tmp.role = l->side == LOST_AT_SERVER ? ROLE_SERVER : ROLE_CLIENT;
		c = &tmp;
	}
	s = service_of(a, c, &c->t);
	if (!s)
		return;
	what = l->request[0]					   ? l->request :
	       l->unnamed == UNNAMED_ENCRYPTED			   ? "(inside TLS)" :
	       c->level == LEVEL_CONN && l->side == LOST_AT_CLIENT ? "(not named at --level conn)" :
								     "(unreadable)";
	add_example(s->lost_examples, s->lost, what);
	s->lost++;
	if (a->keep_timeline)
		mark_lost(&s->timeline, l, what);
	add_example(s->causes.examples[l->cause], s->causes.lost[l->cause], what);
	if (l->cause == CAUSE_PROXY_TIMEOUT && l->waited_ms >= 0) {
		if (!s->causes.lost[l->cause] || l->waited_ms < s->causes.waited_min_ms)
			s->causes.waited_min_ms = l->waited_ms;
		if (l->waited_ms > s->causes.waited_max_ms)
			s->causes.waited_max_ms = l->waited_ms;
	}
	if (l->cause == CAUSE_PROXY_TIMEOUT && l->answered_ms >= 0) {
		if (!s->causes.answered || l->answered_ms < s->causes.answered_min_ms)
			s->causes.answered_min_ms = l->answered_ms;
		if (l->answered_ms > s->causes.answered_max_ms)
			s->causes.answered_max_ms = l->answered_ms;
		s->causes.answered++;
	}
	s->causes.lost[l->cause]++;
}

void analyze_refused(struct analyzer *a, const struct refused *r)
{
	struct conn tmp = { .t = r->t, .role = r->at_server ? ROLE_SERVER : ROLE_CLIENT };
	struct service *s;

	if (!r->at_server) /* the connecting end: its remote is the service */
		tmp.t = tuple_reversed(&r->t);
	s = service_of(a, &tmp, &tmp.t);
	if (s)
		s->causes.refused++;
	if (s && a->keep_timeline)
		timeline_event(&s->timeline, MARK_REFUSED, r->ts_ns);
}

static struct service *local_service(struct analyzer *a, uint16_t port)
{
	struct conn tmp = { .role = ROLE_SERVER, .t.lport = port };

	return service_of(a, &tmp, &tmp.t);
}

void analyze_clock(const struct analyzer *a, int digits, uint64_t mono_ns, char *buf, size_t len)
{
	int64_t wall = (int64_t)mono_ns + a->wall_offset_ns;
	time_t sec = wall / 1000000000;
	struct tm tm;
	char hms[16];

	localtime_r(&sec, &tm);
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%0*d", hms, digits,
		 (int)(wall % 1000000000 / (digits == 3 ? 1000000 : 100000000)));
}

/* The first window in words: when, who went (its exit, if it exited), who
 * listens again. */
static void window_text(const struct analyzer *a, const struct service *s, uint64_t from_ns,
			uint64_t to_ns, const struct listen_entry *next, char *out, size_t len)
{
	const struct causes *c = &s->causes;
	char from[24], to[24], status[32], went[80] = "";
	size_t n;

	analyze_clock(a, 1, from_ns, from, sizeof(from));
	analyze_clock(a, 1, to_ns, to, sizeof(to));
	if (c->exits && c->last_exit_code & 0x7f)
		snprintf(status, sizeof(status), "signal %d", c->last_exit_code & 0x7f);
	else
		snprintf(status, sizeof(status), "exit code %d", (c->last_exit_code >> 8) & 0xff);
	if (c->exits)
		snprintf(went, sizeof(went), ": %s[%u] exited (%s)", c->exit_comm, c->exit_pid,
			 status);
	n = snprintf(out, len, "down from %s to %s (%.1f s)%s", from, to, (to_ns - from_ns) / 1e9,
		     went);
	if (n < len)
		snprintf(out + n, len - n, next ? "%s %.*s[%u] listening again" : "%s still down",
			 went[0] ? "," : ":", TASK_COMM_LEN, next ? next->comm : "",
			 next ? next->tgid : 0);
}

static void mark_down(struct timeline *t, uint64_t from_ns, uint64_t to_ns)
{
	struct event_mark *m = timeline_event(t, MARK_DOWN, from_ns);

	if (m)
		m->end_ns = to_ns;
}

void analyze_listener_down(struct analyzer *a, uint16_t port, uint64_t from_ns, uint64_t to_ns,
			   const struct listen_entry *next)
{
	struct service *s = local_service(a, port);

	if (!s || to_ns < from_ns)
		return;
	if (!s->causes.down_windows++) {
		s->causes.down_from_ns = from_ns;
		s->causes.down_to_ns = next ? to_ns : 0;
		window_text(a, s, from_ns, to_ns, next, s->causes.first_window,
			    sizeof(s->causes.first_window));
	}
	s->causes.down_ms += (to_ns - from_ns) / 1e6;
	if (a->keep_timeline)
		mark_down(&s->timeline, from_ns, next ? to_ns : 0);
}

void analyze_exit(struct analyzer *a, uint16_t port, uint64_t ts_ns, uint32_t pid, const char *comm,
		  int exit_code)
{
	struct service *s = local_service(a, port);
	struct event_mark *m;

	if (!s)
		return;
	m = a->keep_timeline ? timeline_event(&s->timeline, MARK_EXIT, ts_ns) : NULL;
	if (m)
		snprintf(m->what, sizeof(m->what), "%.*s[%u] exited (%s %d)", TASK_COMM_LEN - 1,
			 comm, pid, exit_code & 0x7f ? "signal" : "exit code",
			 exit_code & 0x7f ? exit_code & 0x7f : (exit_code >> 8) & 0xff);
	s->causes.exits++;
	s->causes.last_exit_code = exit_code;
	s->causes.exit_pid = pid;
	snprintf(s->causes.exit_comm, sizeof(s->causes.exit_comm), "%.*s", TASK_COMM_LEN - 1, comm);
	set_comm(s->backend_comm, comm);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

double percentile(const double *sorted, uint32_t n, double p)
{
	double rank;
	uint32_t i;

	if (!n)
		return NAN;
	rank = p * (n - 1);
	i = (uint32_t)rank;
	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + (rank - i) * (sorted[i + 1] - sorted[i]);
}

/* A timer-driven close lands within a few ms of its setting (Node: 0-3 ms
 * late, measured), so the timeout is the densest window of that width:
 * 4 ms, or 0.5 % of the value for long timeouts. Values must be sorted. */
struct cluster infer_timeout(const double *ms, uint32_t n)
{
	struct cluster best = {};
	uint32_t i, j = 0;

	for (i = 0; i < n; i++) {
		double width = fmax(4.0, ms[i] * 0.005);

		if (j < i)
			j = i;
		while (j + 1 < n && ms[j + 1] <= ms[i] + width)
			j++;
		if (j - i + 1 > best.count) {
			best.found = true;
			best.count = j - i + 1;
			best.value_ms = percentile(ms + i, best.count, 0.5);
			best.width_ms = ms[j] - ms[i];
		}
	}
	return best;
}

/* A side's timeout and percentiles, from one sort of its samples. */
static struct cluster side_timeout(const struct idle_stats *st, struct idle_pct *pct)
{
	struct cluster none = {};
	double *sorted;
	struct cluster c;

	pct->p50_ms = pct->p99_ms = NAN;
	if (!st->nsamples)
		return none;
	sorted = malloc(st->nsamples * sizeof(double));
	if (!sorted)
		return none;
	memcpy(sorted, st->samples, st->nsamples * sizeof(double));
	qsort(sorted, st->nsamples, sizeof(double), cmp_double);
	c = infer_timeout(sorted, st->nsamples);
	pct->p50_ms = percentile(sorted, st->nsamples, 0.5);
	pct->p99_ms = percentile(sorted, st->nsamples, 0.99);
	free(sorted);
	return c;
}

/* "set server.keepAliveTimeout ..." for the backend, and what to do at the
 * peer if katrace knows what it is. */
static void verdict_fix(const struct service *s, const struct verdict *v, double margin_ms,
			char *out, size_t len)
{
	const struct software *b = software_by_comm(s->backend_comm);
	const struct software *p = software_by_comm(s->peer_comm);
	double peer_s = v->peer.found ? v->peer.value_ms / 1000 : s->max_reuse_gap_ms / 1000;
	double want_s = ceil(peer_s + margin_ms / 1000);
	size_t n = 0;
	int i;

	if (v->peer.found)
		n += snprintf(out + n, len - n,
			      "make the backend keep idle connections at least %.0f s "
			      "(the peer's %.2f s plus the %.0f s margin)",
			      want_s, peer_s, margin_ms / 1000);
	else if (s->max_reuse_gap_ms > 0)
		n += snprintf(
			out + n, len - n,
			"make the backend keep idle connections at least %.0f s "
			"(the peer reuses connections idle %.2f s, so it keeps them at least that "
			"long; plus the %.0f s margin)",
			want_s, peer_s, margin_ms / 1000);
	else
		n += snprintf(out + n, len - n,
			      "make the backend keep idle connections longer than "
			      "the peer does, by at least %.0f s",
			      margin_ms / 1000);
	if (b && n < len)
		n += snprintf(out + n, len - n, "; %s (the backend): ", b->name);
	if (b && n < len)
		n += software_setting(b, want_s, out + n, len - n);
	if (p && p->as_proxy && v->backend.found && v->backend.value_ms > margin_ms + 1000 &&
	    n < len)
		n += snprintf(out + n, len - n, "; or at %s (the peer): %s below %.0f s", p->name,
			      p->as_proxy, floor((v->backend.value_ms - margin_ms) / 1000));
	if (!v->peer.found && !p && n < len) {
		n += snprintf(out + n, len - n,
			      "; if the peer is not on this host, its default idle "
			      "timeout is the floor:");
		for (i = 0; i < n_lb_defaults && n < len; i++)
			n += snprintf(out + n, len - n, "%s %s %.0f s", i ? "," : "",
				      lb_defaults[i].name, lb_defaults[i].idle_s);
	}
}

/* Both sides' timeouts are known: the margin between them decides. */
static void verdict_both_known(struct verdict *v, double m)
{
	v->kind = v->margin_ms >= m ? VERDICT_OK : VERDICT_MISMATCH;
	if (v->margin_ms < 0)
		snprintf(v->why, sizeof(v->why),
			 "the backend closes idle connections after "
			 "%.2f s, before the peer does (%.2f s)",
			 v->backend.value_ms / 1000, v->peer.value_ms / 1000);
	else
		snprintf(v->why, sizeof(v->why),
			 "the backend outlasts the peer by %.2f s "
			 "(%.2f s against %.2f s)%s",
			 v->margin_ms / 1000, v->backend.value_ms / 1000, v->peer.value_ms / 1000,
			 v->margin_ms < m ? ", less than the margin: equal timeouts race too" : "");
}

/* Only the backend's timeout is known: the peer's reuse of idle
 * connections (gap, ms) may still show it keeps them longer. */
static void verdict_backend_known(struct verdict *v, double gap)
{
	double b = v->backend.value_ms / 1000;

	if (gap > 0 && gap >= 0.9 * v->backend.value_ms) {
		v->kind = VERDICT_MISMATCH;
		snprintf(v->why, sizeof(v->why),
			 "the backend closes idle connections after "
			 "%.2f s and the peer reused connections idle up to %.2f s: it keeps "
			 "them at least that long",
			 b, gap / 1000);
	} else if (gap > 0) {
		snprintf(v->why, sizeof(v->why),
			 "the backend closes idle connections "
			 "after %.2f s, but the peer's timeout is unknown: it never closed "
			 "one, and reused connections idle at most %.2f s",
			 b, gap / 1000);
	} else {
		snprintf(v->why, sizeof(v->why),
			 "the backend closes idle connections "
			 "after %.2f s, but the peer's timeout is unknown: it never closed "
			 "one, nor reused one after idling",
			 b);
	}
}

static struct finding *finding(struct verdict *v, const char *cause, uint64_t n)
{
	struct finding *f = &v->findings[v->nfindings++];

	f->cause = cause;
	f->requests = n;
	return f;
}

static void examples_text(const struct causes *c, enum lost_cause cause, char *out, size_t len)
{
	uint64_t k, n = c->lost[cause];
	size_t used = 0;

	out[0] = 0;
	for (k = 0; k < n && k < LOST_EXAMPLES && used < len; k++)
		used += snprintf(out + used, len - used, "%s%s", k ? ", " : "",
				 c->examples[cause][k]);
	if (n > LOST_EXAMPLES && used < len)
		snprintf(out + used, len - used, ", ...");
}

static void exit_finding(const struct service *s, struct verdict *v)
{
	const struct causes *c = &s->causes;
	struct finding *f = finding(v, "backend_exit", c->lost[CAUSE_BACKEND_EXIT]);
	char status[32], lines[300];

	if (c->last_exit_code & 0x7f)
		snprintf(status, sizeof(status), "signal %d", c->last_exit_code & 0x7f);
	else
		snprintf(status, sizeof(status), "exit code %d", (c->last_exit_code >> 8) & 0xff);
	examples_text(c, CAUSE_BACKEND_EXIT, lines, sizeof(lines));
	if (c->exits)
		snprintf(f->evidence, sizeof(f->evidence),
			 "%s[%u] exited %u time%s (the last: %s) with %llu request%s in flight%s%s",
			 c->exit_comm, c->exit_pid, c->exits, c->exits == 1 ? "" : "s", status,
			 (unsigned long long)f->requests, f->requests == 1 ? "" : "s",
			 lines[0] ? ": " : "", lines);
	else
		snprintf(f->evidence, sizeof(f->evidence),
			 "the backend exited with %llu request%s in flight%s%s",
			 (unsigned long long)f->requests, f->requests == 1 ? "" : "s",
			 lines[0] ? ": " : "", lines);
	snprintf(
		f->fix, sizeof(f->fix),
		"find why the backend dies (its own log; SIGKILL: the OOM killer in the kernel log, "
		"or a supervisor's kill timeout); stop it with SIGTERM and let it finish the "
		"requests it holds before it exits");
}

static void down_finding(const struct service *s, struct verdict *v)
{
	const struct causes *c = &s->causes;
	struct finding *f = finding(v, "refused", c->refused);

	if (!c->down_windows) {
		snprintf(f->evidence, sizeof(f->evidence),
			 "%llu connection attempt%s to %s %s refused: nothing listened",
			 (unsigned long long)c->refused, c->refused == 1 ? "" : "s", s->name,
			 c->refused == 1 ? "was" : "were");
		snprintf(
			f->fix, sizeof(f->fix),
			"start the backend on %s (its process, or the proxy in front of it, is not "
			"running), or point the load balancer at the port it listens on",
			s->name);
		return;
	}
	snprintf(f->evidence, sizeof(f->evidence),
		 "listener %s %s; down %u time%s, %.1f s in all; %llu connection attempt%s refused",
		 s->name, c->first_window, c->down_windows, c->down_windows == 1 ? "" : "s",
		 c->down_ms / 1000, (unsigned long long)c->refused,
		 c->refused == 1 ? " was" : "s were");
	snprintf(f->fix, sizeof(f->fix),
		 "keep listening until the load balancer has taken the target out of rotation "
		 "(deregister, then drain, then close the listener: a preStop delay, or a SIGTERM "
		 "handler that stops accepting only after deregistration); start the next process "
		 "before the old one stops");
}

static void wait_finding(const struct service *s, struct verdict *v, enum lost_cause cause)
{
	const struct causes *c = &s->causes;
	struct finding *f = finding(v, cause_name(cause), c->lost[cause]);
	char lines[300];

	examples_text(c, cause, lines, sizeof(lines));
	if (cause == CAUSE_PROXY_TIMEOUT) {
		snprintf(
			f->evidence, sizeof(f->evidence),
			"the proxy gave up on %llu request%s after %.2f-%.2f s with no response%s%s",
			(unsigned long long)f->requests, f->requests == 1 ? "" : "s",
			c->waited_min_ms / 1000, c->waited_max_ms / 1000, lines[0] ? ": " : "",
			lines);
		snprintf(
			f->fix, sizeof(f->fix),
			"the backend answers slower than the proxy waits: raise the proxy's timeout "
			"(HAProxy timeout server, nginx proxy_read_timeout, ALB idle timeout) above "
			"the backend's slowest answers, or make those answers faster");
		return;
	}
	snprintf(f->evidence, sizeof(f->evidence),
		 "the backend closed or reset %llu connection%s with a request outstanding%s%s",
		 (unsigned long long)f->requests, f->requests == 1 ? "" : "s", lines[0] ? ": " : "",
		 lines);
	if (c->refused) /* seen from the proxy: it went away */
		snprintf(
			f->fix, sizeof(f->fix),
			"the backend then refused connections: its process went away (a crash, a "
			"kill or a stop without draining); trace the backend's host to tell which");
	else
		snprintf(f->fix, sizeof(f->fix),
			 "see why the backend drops requests it has read (its error log: a handler "
			 "that fails without answering, a request too large, a limit reached)");
}

/* Every cause of failure but the race, with its evidence and fix. */
static void cause_findings(const struct service *s, struct verdict *v)
{
	const struct causes *c = &s->causes;

	if (c->refused || c->down_windows)
		down_finding(s, v);
	if (c->lost[CAUSE_BACKEND_EXIT] || c->exits)
		exit_finding(s, v);
	if (c->lost[CAUSE_PROXY_TIMEOUT])
		wait_finding(s, v, CAUSE_PROXY_TIMEOUT);
	if (c->lost[CAUSE_BACKEND_RESET])
		wait_finding(s, v, CAUSE_BACKEND_RESET);
}

void analyze_verdict(const struct analyzer *a, const struct service *s, struct verdict *v)
{
	double m = a->margin_ms, gap = s->max_reuse_gap_ms >= MIN_IDLE_MS ? s->max_reuse_gap_ms : 0;

	memset(v, 0, sizeof(*v));
	v->backend = side_timeout(&s->backend, &v->backend_pct);
	v->peer = side_timeout(&s->peer, &v->peer_pct);
	cause_findings(s, v);
	if (v->backend.found && v->peer.found)
		v->margin_ms = v->backend.value_ms - v->peer.value_ms;

	if (s->causes.lost[CAUSE_KEEPALIVE_RACE]) {
		uint64_t raced = s->causes.lost[CAUSE_KEEPALIVE_RACE];

		v->kind = VERDICT_MISMATCH;
		snprintf(v->why, sizeof(v->why),
			 "%llu request%s lost to the backend closing idle "
			 "connections the peer still reused%s%.2f s",
			 (unsigned long long)raced, raced == 1 ? " was" : "s were",
			 v->backend.found ? "; the backend closes them after " :
					    "; the peer reused connections after up to ",
			 v->backend.found ? v->backend.value_ms / 1000 : gap / 1000);
	} else if (v->backend.found && v->peer.found) {
		verdict_both_known(v, m);
	} else if (v->backend.found) {
		verdict_backend_known(v, gap);
	} else if (v->peer.found) {
		v->kind = VERDICT_OK;
		snprintf(v->why, sizeof(v->why),
			 "the peer closes idle connections after %.2f s; "
			 "the backend never closed one first",
			 v->peer.value_ms / 1000);
	} else if (v->nfindings) {
		snprintf(
			v->why, sizeof(v->why),
			"no idle close seen to compare keep-alive timeouts with; the requests that "
			"failed have the other causes below");
	} else {
		snprintf(v->why, sizeof(v->why),
			 "no idle close seen yet%s; run longer than the "
			 "suspected timeout",
			 s->conns ? "" : " (no HTTP keep-alive connection finished)");
	}
	if (v->kind == VERDICT_MISMATCH)
		verdict_fix(s, v, m, v->fix, sizeof(v->fix));
}

void analyze_verdicts(const struct analyzer *a, struct verdict *v)
{
	int i;

	for (i = 0; i < a->n; i++)
		analyze_verdict(a, &a->svc[i], &v[i]);
}
