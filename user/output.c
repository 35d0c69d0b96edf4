// SPDX-License-Identifier: GPL-2.0
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

void output_close_record(struct output *o, const struct conn *c, const struct http_state *h,
			 uint64_t end_ns)
{
	char comm[TASK_COMM_LEN + 1] = {}, laddr[64], raddr[64];
	uint64_t at = c->close_ns ? c->close_ns : end_ns;
	double idle = c->close_ns ? span_ms(conn_idle_since(c, h), c->close_ns) : -1;
	double life = span_ms(c->start_ns, end_ns);
	int i;

	copy_comm(comm, c->comm);
	format_endpoint(&c->t, true, laddr, sizeof(laddr));
	format_endpoint(&c->t, false, raddr, sizeof(raddr));

	if (o->json) {
		fprintf(o->f, "{\"type\":\"close\",\"ts\":%.6f,\"pid\":%u,\"comm\":",
			(int64_t)(at + o->wall_offset_ns) / 1e9, c->tgid);
		json_string(o->f, comm);
		fprintf(o->f,
			",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"closed_by\":\"%s\"",
			laddr, raddr, role_name(c->role), closed_by_name(c->closed_by));
		json_ms(o->f, "idle_ms", idle);
		json_ms(o->f, "lifetime_ms", life);
		fprintf(o->f, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"states\":[",
			(unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
		for (i = 0; i < c->nstates && i < MAX_STATES; i++)
			fprintf(o->f, "%s\"%s\"", i ? "," : "", tcp_state_name(c->states[i]));
		if (h && !h->counted)
			fputs("],\"requests\":null,\"last_request\":", o->f);
		else
			fprintf(o->f, "],\"requests\":%u,\"last_request\":", h ? h->requests : 0);
		json_string_or_null(o->f, h ? h->last_request : NULL);
		if (h && h->last_status)
			fprintf(o->f, ",\"last_status\":%d}\n", h->last_status);
		else
			fputs(",\"last_status\":null}\n", o->f);
		fflush(o->f);
		return;
	}
	header(o);
	print_time(o, at);
	fprintf(o->f, "%-7u %-15s %-22s %-22s %-7s %-9s ", c->tgid, comm[0] ? comm : "?", laddr,
		raddr, role_name(c->role), closed_by_name(c->closed_by));
	text_ms(o->f, idle);
	text_ms(o->f, life);
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
	fflush(o->f);
}

static void lost_json(struct output *o, const struct lost *l, const char *comm, const char *laddr,
		      const char *raddr)
{
	int64_t wall = (int64_t)l->ts_ns + o->wall_offset_ns;

	fprintf(o->f, "{\"type\":\"lost_request\",\"ts\":%.6f,\"pid\":", wall / 1e9);
	if (l->c) {
		fprintf(o->f, "%u,\"comm\":", l->c->tgid);
		json_string(o->f, comm);
	} else {
		fputs("null,\"comm\":null", o->f);
	}
	fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"request\":", laddr,
		raddr, l->side == LOST_AT_SERVER ? "server" : "client");
	json_string_or_null(o->f, l->request);
	if (!isnan(l->close_to_request_ms))
		fprintf(o->f, ",\"close_to_request_ms\":%.1f", l->close_to_request_ms);
	else
		fputs(",\"close_to_request_ms\":null", o->f);
	json_ms(o->f, "idle_ms", l->idle_ms);
	fputs(",\"reset_reason\":", o->f);
	json_string_or_null(o->f, l->reason);
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
	bool by_rst = l->c && l->c->closed_by == CLOSED_PEER_RST;

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

void output_lost_record(struct output *o, const struct lost *l)
{
	char comm[TASK_COMM_LEN + 1] = "", laddr[64], raddr[64];

	if (l->c)
		copy_comm(comm, l->c->comm);
	format_endpoint(&l->t, true, laddr, sizeof(laddr));
	format_endpoint(&l->t, false, raddr, sizeof(raddr));
	if (o->json) {
		lost_json(o, l, comm, laddr, raddr);
	} else {
		header(o);
		fputs("LOST ", o->f);
		print_time(o, l->ts_ns);
		if (l->c)
			fprintf(o->f, "%s[%u] ", comm, l->c->tgid);
		if (l->side == LOST_AT_SERVER)
			lost_text_server(o, l, laddr, raddr);
		else
			lost_text_client(o, l, laddr, raddr);
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

static void service_text(FILE *f, const struct service *s, const struct verdict *v)
{
	const char *comm = s->local ? s->backend_comm : s->peer_comm;
	uint64_t k;

	fprintf(f, "service %s (%s%s%s), %llu connections\n", s->name,
		s->local ? "traced on the backend" : "traced on the proxy", comm[0] ? ": " : "",
		comm, (unsigned long long)s->conns);
	idle_line(f, "backend:", &s->backend, &v->backend, &v->backend_pct, false);
	idle_line(f, "peer:", &s->peer, &v->peer, &v->peer_pct, false);
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
