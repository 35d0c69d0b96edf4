// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <math.h>
#include <string.h>
#include <time.h>
#include "output.h"

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void json_string_or_null(FILE *f, const char *s)
{
	if (s && s[0])
		json_string(f, s);
	else
		fputs("null", f);
}

static void print_time(struct output *o, uint64_t mono_ns)
{
	int64_t wall = (int64_t)mono_ns + o->wall_offset_ns;
	time_t sec = wall / 1000000000;
	struct tm tm;
	char buf[16];

	if (o->unix_ts) {
		fprintf(o->f, "%-17.6f ", wall / 1e9);
		return;
	}
	localtime_r(&sec, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	fprintf(o->f, "%s.%03d ", buf, (int)(wall % 1000000000 / 1000000));
}

static void json_ms(FILE *f, const char *key, double ms)
{
	if (ms < 0)
		fprintf(f, ",\"%s\":null", key);
	else
		fprintf(f, ",\"%s\":%.1f", key, ms);
}

static void text_ms(FILE *f, double ms)
{
	if (ms < 0)
		fprintf(f, "%9s ", "-");
	else
		fprintf(f, "%9.1f ", ms);
}

static void header(struct output *o)
{
	if (o->header_done || o->json)
		return;
	fprintf(o->f, "%-*s %-7s %-15s %-22s %-22s %-7s %-9s %9s %9s %8s %8s %4s %-24s %s\n",
		o->unix_ts ? 17 : 12, "TIME", "PID", "COMM", "LADDR", "RADDR", "ROLE", "CLOSED_BY",
		"IDLE_MS", "LIFE_MS", "RX_B", "TX_B", "REQS", "LAST_REQUEST", "STATES");
	o->header_done = true;
}

/* Printable, for a comm that may hold anything. */
static void copy_comm(char *dst, const char *src)
{
	int i;

	for (i = 0; i < TASK_COMM_LEN && src[i]; i++)
		dst[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = 0;
}

/* What a close record says of a connection: when, and how long it idled
 * (before its unanswered request, if one was outstanding) or waited. */
struct close_view {
	uint64_t at;
	double idle_ms, waited_ms, life_ms;
	bool outstanding;
	char comm[TASK_COMM_LEN + 1], laddr[64], raddr[64];
};

static void close_view(const struct conn *c, const struct http_state *h, uint64_t end_ns,
		       struct close_view *v)
{
	memset(v, 0, sizeof(*v));
	v->at = c->close_ns ? c->close_ns : end_ns;
	v->idle_ms = c->close_ns ? span_ms(conn_idle_since(c, h), c->close_ns) : -1;
	v->waited_ms = -1;
	if (h) {
		double idle;

		v->outstanding = conn_wait(c, h, end_ns, &idle, &v->waited_ms);
		if (v->outstanding)
			v->idle_ms = idle;
	}
	v->life_ms = span_ms(c->start_ns, end_ns);
	copy_comm(v->comm, c->comm);
	format_endpoint(&c->t, true, v->laddr, sizeof(v->laddr));
	format_endpoint(&c->t, false, v->raddr, sizeof(v->raddr));
}

static void close_json(struct output *o, const struct conn *c, const struct http_state *h,
		       const struct close_view *v)
{
	int i;

	fprintf(o->f, "{\"type\":\"close\",\"ts\":%.6f,\"pid\":%u,\"comm\":",
		(int64_t)(v->at + o->wall_offset_ns) / 1e9, c->tgid);
	json_string(o->f, v->comm);
	fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"proto\":", v->laddr,
		v->raddr, role_name(c->role));
	json_string_or_null(o->f, proto_name(c->proto));
	fprintf(o->f, ",\"closed_by\":\"%s\"", closed_by_name(c->closed_by));
	json_ms(o->f, "idle_ms", v->idle_ms);
	json_ms(o->f, "lifetime_ms", v->life_ms);
	fprintf(o->f, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"states\":[",
		(unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	for (i = 0; i < c->nstates && i < MAX_STATES; i++)
		fprintf(o->f, "%s\"%s\"", i ? "," : "", tcp_state_name(c->states[i]));
	if (h && !h->counted)
		fputs("],\"requests\":null,\"last_request\":", o->f);
	else
		fprintf(o->f, "],\"requests\":%u,\"last_request\":", h ? h->requests : 0);
	json_string_or_null(o->f, h ? h->last_request : NULL);
	/* the last request's status: none while it is outstanding */
	if (h && h->last_status && !v->outstanding)
		fprintf(o->f, ",\"last_status\":%d", h->last_status);
	else
		fputs(",\"last_status\":null", o->f);
	fprintf(o->f, ",\"outstanding\":%s", v->outstanding ? "true" : "false");
	json_ms(o->f, "waited_ms", v->waited_ms);
	fprintf(o->f, ",\"owner_exiting\":%s,\"peer_exiting\":%s}\n",
		c->closed_exiting ? "true" : "false", c->peer_exiting ? "true" : "false");
}

static void close_text(struct output *o, const struct conn *c, const struct http_state *h,
		       const struct close_view *v)
{
	int i;

	header(o);
	print_time(o, v->at);
	fprintf(o->f, "%-7u %-15s %-22s %-22s %-7s %-9s ", c->tgid, v->comm[0] ? v->comm : "?",
		v->laddr, v->raddr, role_name(c->role), closed_by_name(c->closed_by));
	text_ms(o->f, v->idle_ms);
	text_ms(o->f, v->life_ms);
	fprintf(o->f, "%8llu %8llu ", (unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out);
	if (h && !h->counted)
		fprintf(o->f, "%4s ", "-");
	else
		fprintf(o->f, "%4u ", h ? h->requests : 0);
	fprintf(o->f, "%-24.*s ", 24, h && h->last_request[0] ? h->last_request : "-");
	for (i = 0; i < c->nstates && i < MAX_STATES; i++)
		fprintf(o->f, "%s%s", i ? ">" : "", tcp_state_name(c->states[i]));
	fputc('\n', o->f);
}

void output_close_record(struct output *o, const struct conn *c, const struct http_state *h,
			 uint64_t end_ns)
{
	struct close_view v;

	close_view(c, h, end_ns, &v);
	if (o->json)
		close_json(o, c, h, &v);
	else
		close_text(o, c, h, &v);
	fflush(o->f);
}

static void json_pid_comm(FILE *f, bool known, uint32_t pid, const char *comm)
{
	char printable[TASK_COMM_LEN + 1];

	if (!known) {
		fputs("null,\"comm\":null", f);
		return;
	}
	copy_comm(printable, comm);
	fprintf(f, "%u,\"comm\":", pid);
	json_string(f, printable);
}

static void lost_json(struct output *o, const struct lost *l, const char *laddr, const char *raddr)
{
	int64_t wall = (int64_t)l->ts_ns + o->wall_offset_ns;

	fprintf(o->f, "{\"type\":\"lost_request\",\"ts\":%.6f,\"pid\":", wall / 1e9);
	json_pid_comm(o->f, l->matched, l->conn.tgid, l->conn.comm);
	fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"proto\":", laddr, raddr,
		l->side == LOST_AT_SERVER ? "server" : "client");
	json_string_or_null(o->f, l->matched ? proto_name(l->conn.proto) : NULL);
	fputs(",\"request\":", o->f);
	json_string_or_null(o->f, l->request);
	fputs(",\"unnamed_because\":", o->f);
	json_string_or_null(o->f, l->request[0] ? NULL : unnamed_name(l->unnamed));
	fprintf(o->f, ",\"seen_by_peer\":%s", l->seen_by_peer ? "true" : "false");
	if (!isnan(l->close_to_request_ms))
		fprintf(o->f, ",\"close_to_request_ms\":%.1f", l->close_to_request_ms);
	else
		fputs(",\"close_to_request_ms\":null", o->f);
	json_ms(o->f, "idle_ms", l->idle_ms);
	fputs(",\"reset_reason\":", o->f);
	json_string_or_null(o->f, l->reason);
	fprintf(o->f, ",\"cause\":\"%s\"", cause_name(l->cause));
	json_ms(o->f, "waited_ms", l->waited_ms);
	json_ms(o->f, "answered_ms", l->answered_ms);
	fputs(",\"other_end\":", o->f);
	if (l->other.seen) {
		fputs("{\"pid\":", o->f);
		json_pid_comm(o->f, true, l->other.pid, l->other.comm);
		fputs("}", o->f);
	} else {
		fputs("null", o->f);
	}
	fputs("}\n", o->f);
}

/* Traced on the backend: the request arrived on a connection it closed. */
static void lost_text_server(struct output *o, const struct lost *l, const char *laddr,
			     const char *raddr)
{
	bool known_close = !isnan(l->close_to_request_ms);

	if (l->request[0])
		fprintf(o->f, "%s <- %s \"%s\": ", laddr, raddr, l->request);
	else
		fprintf(o->f, "%s <- %s a request (its bytes were unreadable here): ", laddr,
			raddr);
	if (known_close && l->close_to_request_ms >= 0)
		fprintf(o->f, "arrived %.1f ms after this server closed the connection",
			l->close_to_request_ms);
	else if (known_close)
		fprintf(o->f, "arrived %.1f ms before this server closed the connection",
			-l->close_to_request_ms);
	else
		fprintf(o->f, "arrived on a connection this server had closed");
	if (l->idle_ms >= 0)
		fprintf(o->f, " after %.1f ms idle", l->idle_ms);
	if (known_close && l->close_to_request_ms < 0)
		fprintf(o->f, ", and lay unread");
	fprintf(o->f, "; the kernel answered RST (%s)\n", l->reason ? l->reason : "reason unknown");
}

/* Traced on the proxy: it wrote the request and got RST back. */
static void lost_text_client(struct output *o, const struct lost *l, const char *laddr,
			     const char *raddr)
{
	bool known_close = !isnan(l->close_to_request_ms);
	bool by_rst = l->matched && l->conn.closed_by == CLOSED_PEER_RST;

	if (l->request[0])
		fprintf(o->f, "%s -> %s \"%s\": ", laddr, raddr, l->request);
	else /* --level conn keeps no request line on this side */
		fprintf(o->f, "%s -> %s a request (not named at --level conn): ", laddr, raddr);
	if (!known_close)
		fprintf(o->f, "sent on an idle connection");
	else if (by_rst)
		fprintf(o->f, "sent %.1f ms before the peer aborted the connection",
			-l->close_to_request_ms);
	else if (l->close_to_request_ms >= 0)
		fprintf(o->f, "sent %.1f ms after the peer's FIN arrived", l->close_to_request_ms);
	else
		fprintf(o->f, "sent %.1f ms before the peer's FIN arrived",
			-l->close_to_request_ms);
	if (l->idle_ms >= 0)
		fprintf(o->f, " after %.1f ms idle", l->idle_ms);
	fprintf(o->f, "; the peer answered RST: no response\n");
}

/* Any cause but the race: what happened to the request. */
static void lost_text_cause(struct output *o, const struct lost *l, const char *laddr,
			    const char *raddr)
{
	bool server = l->side == LOST_AT_SERVER;

	fprintf(o->f, "%s %s %s ", laddr, server ? "<-" : "->", raddr);
	if (l->request[0])
		fprintf(o->f, "\"%s\": ", l->request);
	else
		fputs("a request: ", o->f);
	switch (l->cause) {
	case CAUSE_BACKEND_EXIT:
		fputs("in flight when the backend exited", o->f);
		break;
	case CAUSE_PROXY_TIMEOUT:
		fprintf(o->f, "%s gave up waiting for the response",
			server ? "the peer" : "this side");
		break;
	default:
		fputs("the backend closed the connection without answering", o->f);
		break;
	}
	if (l->waited_ms >= 0)
		fprintf(o->f, " after %.1f ms", l->waited_ms);
	if (l->answered_ms >= 0)
		fprintf(o->f, "; the backend answered %.1f ms after it came", l->answered_ms);
	fprintf(o->f, " (%s)\n", cause_name(l->cause));
}

void output_lost_record(struct output *o, const struct lost *l)
{
	char comm[TASK_COMM_LEN + 1] = "", laddr[64], raddr[64];

	if (l->matched)
		copy_comm(comm, l->conn.comm);
	format_endpoint(&l->t, true, laddr, sizeof(laddr));
	format_endpoint(&l->t, false, raddr, sizeof(raddr));
	if (o->json) {
		lost_json(o, l, laddr, raddr);
	} else {
		header(o);
		fputs("LOST ", o->f);
		print_time(o, l->ts_ns);
		if (l->matched)
			fprintf(o->f, "%s[%u] ", comm, l->conn.tgid);
		if (l->cause != CAUSE_KEEPALIVE_RACE)
			lost_text_cause(o, l, laddr, raddr);
		else if (l->side == LOST_AT_SERVER)
			lost_text_server(o, l, laddr, raddr);
		else
			lost_text_client(o, l, laddr, raddr);
	}
	fflush(o->f);
}

void exit_status_text(int exit_code, char *buf, size_t len)
{
	if (exit_code & 0x7f)
		snprintf(buf, len, "SIG%s", sigabbrev_np(exit_code & 0x7f) ?: "?");
	else
		snprintf(buf, len, "exit code %d", (exit_code >> 8) & 0xff);
}

static void json_ts(struct output *o, const char *type, uint64_t ts_ns)
{
	fprintf(o->f, "{\"type\":\"%s\",\"ts\":%.6f", type,
		(int64_t)(ts_ns + o->wall_offset_ns) / 1e9);
}

void output_refused_record(struct output *o, const struct refused *r)
{
	char laddr[64], raddr[64];

	format_endpoint(&r->t, true, laddr, sizeof(laddr));
	format_endpoint(&r->t, false, raddr, sizeof(raddr));
	if (o->json) {
		json_ts(o, "refused", r->ts_ns);
		fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"pid\":", laddr, raddr);
		json_pid_comm(o->f, r->client.seen, r->client.pid, r->client.comm);
		fputs("}\n", o->f);
	} else {
		header(o);
		fputs("REFUSED ", o->f);
		print_time(o, r->ts_ns);
		fprintf(o->f, "%s -> %s: nothing listened; the kernel answered RST", raddr, laddr);
		if (r->client.seen)
			fprintf(o->f, " (connect() by %.*s[%u])", TASK_COMM_LEN, r->client.comm,
				r->client.pid);
		fputc('\n', o->f);
	}
	fflush(o->f);
}

void output_listener_record(struct output *o, const struct listener_change *l)
{
	char laddr[64], comm[TASK_COMM_LEN + 1];

	format_endpoint(&l->t, true, laddr, sizeof(laddr));
	copy_comm(comm, l->comm);
	if (o->json) {
		json_ts(o, "listener", l->ts_ns);
		fprintf(o->f, ",\"laddr\":\"%s\",\"state\":\"%s\",\"pid\":%u,\"comm\":", laddr,
			l->up ? "up" : "down", l->pid);
		json_string(o->f, comm);
		fputs("}\n", o->f);
	} else {
		header(o);
		fputs("LISTEN ", o->f);
		print_time(o, l->ts_ns);
		fprintf(o->f, "%s[%u] %s %s\n", comm, l->pid, laddr, l->up ? "up" : "down");
	}
	fflush(o->f);
}

void output_exit_record(struct output *o, const struct owner_exit *x)
{
	char comm[TASK_COMM_LEN + 1], status[32];
	uint32_t i, shown = x->in_flight < 4 ? x->in_flight : 4;

	copy_comm(comm, x->comm);
	exit_status_text(x->exit_code, status, sizeof(status));
	if (o->json) {
		json_ts(o, "process_exit", x->ts_ns);
		fprintf(o->f, ",\"pid\":%u,\"comm\":", x->pid);
		json_string(o->f, comm);
		if (x->exit_code & 0x7f)
			fprintf(o->f, ",\"exit_code\":null,\"signal\":\"%s\"", status);
		else
			fprintf(o->f, ",\"exit_code\":%d,\"signal\":null",
				(x->exit_code >> 8) & 0xff);
		fprintf(o->f, ",\"connections\":%u,\"in_flight\":%u,\"requests\":[", x->conns,
			x->in_flight);
		for (i = 0; i < shown; i++) {
			fputs(i ? "," : "", o->f);
			json_string_or_null(o->f, x->requests[i]);
		}
		fputs("]}\n", o->f);
	} else {
		header(o);
		fputs("EXIT ", o->f);
		print_time(o, x->ts_ns);
		fprintf(o->f, "%s[%u] %s: closed %u connections, %u requests in flight", comm,
			x->pid, status, x->conns, x->in_flight);
		for (i = 0; i < shown; i++)
			fprintf(o->f, "%s\"%s\"", i ? ", " : ": ",
				x->requests[i][0] ? x->requests[i] : "?");
		fputc('\n', o->f);
	}
	fflush(o->f);
}

static void idle_line(FILE *f, const char *who, const struct idle_stats *st,
		      const struct cluster *c, const struct idle_pct *pct, bool json)
{
	double p50 = pct->p50_ms, p99 = pct->p99_ms;

	if (json) {
		fprintf(f, "\"%s\":{\"closes\":%llu", who, (unsigned long long)st->n);
		if (st->n)
			fprintf(f,
				",\"min_ms\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f",
				st->min_ms, p50, p99, st->max_ms);
		if (c->found)
			fprintf(f,
				",\"timeout_s\":%.4f,\"timeout_closes\":%u,\"timeout_spread_ms\":%.1f}",
				c->value_ms / 1000, c->count, c->width_ms);
		else
			fputs(",\"timeout_s\":null}", f);
		return;
	}
	fprintf(f, "  idle closes by the %-8s %llu", who, (unsigned long long)st->n);
	if (st->n)
		fprintf(f, ", idle min %.1f / p50 %.1f / p99 %.1f / max %.1f ms", st->min_ms, p50,
			p99, st->max_ms);
	if (c->found)
		fprintf(f, "; effective timeout %.2f s (%u close%s within %.1f ms)",
			c->value_ms / 1000, c->count, c->count == 1 ? "" : "s", c->width_ms);
	fputc('\n', f);
}

/* Failed requests by cause, and what else failed (refused attempts). */
static void causes_json(FILE *f, const struct service *s, const struct verdict *v)
{
	int c, i;

	fputs(",\"failed\":{", f);
	for (c = 0; c < N_CAUSES; c++)
		fprintf(f, "%s\"%s\":%llu", c ? "," : "", cause_name(c),
			(unsigned long long)s->causes.lost[c]);
	fprintf(f, "},\"refused\":%llu,\"backend_exits\":%u,\"listener_down_ms\":%.1f",
		(unsigned long long)s->causes.refused, s->causes.exits, s->causes.down_ms);
	fputs(",\"findings\":[", f);
	for (i = 0; i < v->nfindings; i++) {
		fprintf(f, "%s{\"cause\":\"%s\",\"count\":%llu,\"evidence\":", i ? "," : "",
			v->findings[i].cause, (unsigned long long)v->findings[i].requests);
		json_string(f, v->findings[i].evidence);
		fputs(",\"fix\":", f);
		json_string(f, v->findings[i].fix);
		fputc('}', f);
	}
	fputc(']', f);
}

static void service_json(FILE *f, const struct service *s, const struct verdict *v)
{
	uint64_t k;

	fputs("{\"service\":", f);
	json_string(f, s->name);
	fprintf(f, ",\"traced\":\"%s\",\"backend_comm\":", s->local ? "backend" : "proxy");
	json_string_or_null(f, s->backend_comm);
	fputs(",\"peer_comm\":", f);
	json_string_or_null(f, s->peer_comm);
	fprintf(f, ",\"connections\":%llu,", (unsigned long long)s->conns);
	idle_line(f, "backend_idle", &s->backend, &v->backend, &v->backend_pct, true);
	fputc(',', f);
	idle_line(f, "peer_idle", &s->peer, &v->peer, &v->peer_pct, true);
	fprintf(f, ",\"max_reuse_gap_ms\":%.1f,\"lost\":%llu,\"lost_examples\":[",
		s->max_reuse_gap_ms, (unsigned long long)s->lost);
	for (k = 0; k < s->lost && k < LOST_EXAMPLES; k++) {
		fputs(k ? "," : "", f);
		json_string(f, s->lost_examples[k]);
	}
	fprintf(f, "],\"verdict\":\"%s\",\"why\":", verdict_name(v->kind));
	json_string(f, v->why);
	fputs(",\"fix\":", f);
	json_string_or_null(f, v->fix);
	causes_json(f, s, v);
	fputc('}', f);
}

static void summary_json(struct output *o, const struct analyzer *a, const struct verdict *v,
			 const struct run_counters *n, uint64_t now_ns)
{
	int64_t wall = (int64_t)now_ns + o->wall_offset_ns;
	int i;

	fprintf(o->f,
		"{\"type\":\"summary\",\"ts\":%.6f,\"events\":%llu,\"lost_requests\":%llu,"
		"\"dropped_events\":%llu,\"untracked_conns\":%llu,\"margin_s\":%.1f,\"services\":[",
		wall / 1e9, (unsigned long long)n->events, (unsigned long long)n->lost_requests,
		(unsigned long long)n->dropped, (unsigned long long)n->table_full,
		a->margin_ms / 1000);
	for (i = 0; i < a->n; i++) {
		fputs(i ? "," : "", o->f);
		service_json(o->f, &a->svc[i], &v[i]);
	}
	fputs("]}\n", o->f);
}

/* The idle closes of one side as a log2 histogram, in bcc's tools' form. */
static void log2_text(FILE *f, const char *who, const struct idle_stats *st)
{
	uint64_t most = 0;
	int k, first = -1, last = -1, stars;

	for (k = 0; k < LOG2_SLOTS; k++) {
		if (!st->log2_ms[k])
			continue;
		first = first < 0 ? k : first;
		last = k;
		most = st->log2_ms[k] > most ? st->log2_ms[k] : most;
	}
	if (first < 0)
		return;
	fprintf(f, "  idle at close by the %s\n  %22s : %-8s %s\n", who, "msecs", "count",
		"distribution");
	for (k = first; k <= last; k++) {
		stars = (int)(st->log2_ms[k] * 40 / most);
		fprintf(f, "  %9llu -> %-9llu : %-8llu |%-40.*s|\n", 1ULL << k, (2ULL << k) - 1,
			(unsigned long long)st->log2_ms[k], stars,
			"****************************************");
	}
}

static void service_text(FILE *f, const struct service *s, const struct verdict *v)
{
	const char *comm = s->local ? s->backend_comm : s->peer_comm;
	uint64_t k;

	fprintf(f, "service %s (%s%s%s), %llu connections\n", s->name,
		s->local ? "traced on the backend" : "traced on the proxy", comm[0] ? ": " : "",
		comm, (unsigned long long)s->conns);
	idle_line(f, "backend:", &s->backend, &v->backend, &v->backend_pct, false);
	idle_line(f, "peer:", &s->peer, &v->peer, &v->peer_pct, false);
	log2_text(f, "backend", &s->backend);
	log2_text(f, "peer", &s->peer);
	if (s->max_reuse_gap_ms >= MIN_IDLE_MS)
		fprintf(f,
			"  the peer reused connections idle up to %.1f ms (its timeout is at least that)\n",
			s->max_reuse_gap_ms);
	fprintf(f, "  lost requests: %llu", (unsigned long long)s->lost);
	for (k = 0; k < s->lost && k < LOST_EXAMPLES; k++)
		fprintf(f, "%s%s", k ? ", " : ": ", s->lost_examples[k]);
	fprintf(f, "%s\n", s->lost > LOST_EXAMPLES ? ", ..." : "");
	fprintf(f, "  verdict: %s: %s\n", verdict_name(v->kind), v->why);
	if (v->fix[0])
		fprintf(f, "  fix: %s\n", v->fix);
	for (k = 0; k < (uint64_t)v->nfindings; k++)
		fprintf(f, "  %s: %s\n    fix: %s\n", v->findings[k].cause, v->findings[k].evidence,
			v->findings[k].fix);
}

static void summary_text(struct output *o, const struct analyzer *a, const struct verdict *v,
			 const struct run_counters *n)
{
	int i;

	fprintf(o->f,
		"\nSUMMARY: %llu events, %llu lost requests, %llu dropped (ring buffer full)%s\n",
		(unsigned long long)n->events, (unsigned long long)n->lost_requests,
		(unsigned long long)n->dropped, n->dropped ? ": numbers below are incomplete" : "");
	if (!a->n)
		fprintf(o->f, "no HTTP keep-alive connection finished yet: %s\n",
			verdict_name(VERDICT_INSUFFICIENT));
	for (i = 0; i < a->n; i++)
		service_text(o->f, &a->svc[i], &v[i]);
}

void output_summary(struct output *o, const struct analyzer *a, const struct verdict *v,
		    const struct run_counters *n, uint64_t now_ns)
{
	if (o->json)
		summary_json(o, a, v, n, now_ns);
	else
		summary_text(o, a, v, n);
	fflush(o->f);
}
