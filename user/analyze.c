// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void analyze_conn(struct analyzer *a, const struct conn *c, const struct http_state *h)
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
	if (c->closed_by == CLOSED_NONE || !c->close_ns || conn_outstanding(c, h))
		return; /* not closed, or closed with a request outstanding */
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
	if (idle >= MIN_IDLE_MS)
		add_idle(a, st, idle);
}

void analyze_lost(struct analyzer *a, const struct conn *c, const struct tuple *t, bool at_server,
		  const char *request)
{
	struct conn tmp = {};
	struct service *s;

	if (!c) {
		tmp.t = *t;
		tmp.role = at_server ? ROLE_SERVER : ROLE_CLIENT;
		c = &tmp;
	}
	s = service_of(a, c, &c->t);
	if (!s)
		return;
	if (s->lost < LOST_EXAMPLES)
		snprintf(s->lost_examples[s->lost], sizeof(s->lost_examples[0]), "%s",
			 request[0]			      ? request :
			 c->level == LEVEL_CONN && !at_server ? "(not named at --level conn)" :
								"(unreadable)");
	s->lost++;
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

void analyze_verdict(const struct analyzer *a, const struct service *s, struct verdict *v)
{
	double m = a->margin_ms, gap = s->max_reuse_gap_ms >= MIN_IDLE_MS ? s->max_reuse_gap_ms : 0;

	memset(v, 0, sizeof(*v));
	v->backend = side_timeout(&s->backend, &v->backend_pct);
	v->peer = side_timeout(&s->peer, &v->peer_pct);
	if (v->backend.found && v->peer.found)
		v->margin_ms = v->backend.value_ms - v->peer.value_ms;

	if (s->lost) {
		v->kind = VERDICT_MISMATCH;
		snprintf(v->why, sizeof(v->why),
			 "%llu request%s lost to the backend closing idle "
			 "connections the peer still reused%s%.2f s",
			 (unsigned long long)s->lost, s->lost == 1 ? " was" : "s were",
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
