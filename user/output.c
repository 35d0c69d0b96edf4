// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include "analyze.h"
#include "output.h"

static const char *const tcp_states[] = {
	[1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
	[5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
	[9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
	[13] = "BOUND_INACTIVE",
};

const char *tcp_state_name(int state)
{
	if (state > 0 && state < (int)(sizeof(tcp_states) / sizeof(tcp_states[0])))
		return tcp_states[state];
	return "UNKNOWN";
}

const char *closed_by_name(int closed_by)
{
	static const char *const names[] = {
		[CLOSED_NONE] = "open", [CLOSED_LOCAL_FIN] = "local-fin",
		[CLOSED_PEER_FIN] = "peer-fin", [CLOSED_LOCAL_RST] = "local-rst",
		[CLOSED_PEER_RST] = "peer-rst",
	};
	return closed_by >= 0 && closed_by <= CLOSED_PEER_RST ? names[closed_by] : "unknown";
}

const char *role_name(int role)
{
	return role == ROLE_SERVER ? "server" : role == ROLE_CLIENT ? "client" : "unknown";
}

void format_endpoint(const struct tuple *t, bool local, char *buf, size_t len)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a = local ? t->laddr : t->raddr;
	uint16_t port = local ? t->lport : t->rport;
	char ip[INET6_ADDRSTRLEN];

	if (t->family == AF_INET6 && memcmp(a, v4mapped, 12)) {
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, port);
		return;
	}
	inet_ntop(AF_INET, t->family == AF_INET6 ? a + 12 : a, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, port);
}

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

/* Per connection, nothing was counted: requests and responses are data
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
	return c->proto == PROTO_HTTP && request_way_ns(c, h) && response_way_ns(c, h);
}

bool conn_outstanding(const struct conn *c, const struct http_state *h)
{
	if (h->counted)
		return h->requests > h->responses;
	return request_way_ns(c, h) > response_way_ns(c, h);
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
		o->unix_ts ? 17 : 12, "TIME", "PID", "COMM", "LADDR", "RADDR", "ROLE",
		"CLOSED_BY", "IDLE_MS", "LIFE_MS", "RX_B", "TX_B", "REQS", "LAST_REQUEST", "STATES");
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

void output_close(struct output *o, const struct conn *c, const struct http_state *h,
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
		fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"closed_by\":\"%s\"",
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
	fprintf(o->f, "%-7u %-15s %-22s %-22s %-7s %-9s ", c->tgid, comm[0] ? comm : "?",
		laddr, raddr, role_name(c->role), closed_by_name(c->closed_by));
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

void output_lost(struct output *o, const struct lost *l)
{
	char comm[TASK_COMM_LEN + 1] = "", laddr[64], raddr[64];
	int64_t wall = (int64_t)l->ts_ns + o->wall_offset_ns;
	bool known_close = !isnan(l->close_to_request_ms);

	if (l->c)
		copy_comm(comm, l->c->comm);
	format_endpoint(&l->t, true, laddr, sizeof(laddr));
	format_endpoint(&l->t, false, raddr, sizeof(raddr));

	if (o->json) {
		fprintf(o->f, "{\"type\":\"lost_request\",\"ts\":%.6f,\"pid\":", wall / 1e9);
		if (l->c) {
			fprintf(o->f, "%u,\"comm\":", l->c->tgid);
			json_string(o->f, comm);
		} else {
			fputs("null,\"comm\":null", o->f);
		}
		fprintf(o->f, ",\"laddr\":\"%s\",\"raddr\":\"%s\",\"role\":\"%s\",\"request\":",
			laddr, raddr, l->side == LOST_AT_SERVER ? "server" : "client");
		json_string_or_null(o->f, l->request);
		if (known_close)
			fprintf(o->f, ",\"close_to_request_ms\":%.1f", l->close_to_request_ms);
		else
			fputs(",\"close_to_request_ms\":null", o->f);
		json_ms(o->f, "idle_ms", l->idle_ms);
		fputs(",\"reset_reason\":", o->f);
		json_string_or_null(o->f, l->reason);
		fputs("}\n", o->f);
		fflush(o->f);
		return;
	}
	header(o);
	fputs("LOST ", o->f);
	print_time(o, l->ts_ns);
	if (l->c)
		fprintf(o->f, "%s[%u] ", comm, l->c->tgid);
	if (l->side == LOST_AT_SERVER) {
		if (l->request[0])
			fprintf(o->f, "%s <- %s \"%s\": ", laddr, raddr, l->request);
		else
			fprintf(o->f, "%s <- %s a request (its bytes were unreadable here): ", laddr, raddr);
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
	} else {
		bool by_rst = l->c && l->c->closed_by == CLOSED_PEER_RST;

		if (l->request[0])
			fprintf(o->f, "%s -> %s \"%s\": ", laddr, raddr, l->request);
		else	/* --level conn keeps no request line on this side */
			fprintf(o->f, "%s -> %s a request (not named at --level conn): ", laddr, raddr);
		if (!known_close)
			fprintf(o->f, "sent on an idle connection");
		else if (by_rst)
			fprintf(o->f, "sent %.1f ms before the peer aborted the connection",
				-l->close_to_request_ms);
		else if (l->close_to_request_ms >= 0)
			fprintf(o->f, "sent %.1f ms after the peer's FIN arrived", l->close_to_request_ms);
		else
			fprintf(o->f, "sent %.1f ms before the peer's FIN arrived", -l->close_to_request_ms);
		if (l->idle_ms >= 0)
			fprintf(o->f, " after %.1f ms idle", l->idle_ms);
		fprintf(o->f, "; the peer answered RST: no response\n");
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
			fprintf(f, ",\"min_ms\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f",
				st->min_ms, p50, p99, st->max_ms);
		if (c->found)
			fprintf(f, ",\"timeout_s\":%.4f,\"timeout_closes\":%u,\"timeout_spread_ms\":%.1f}",
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
		fprintf(f, "; effective timeout %.2f s (%u close%s within %.1f ms)", c->value_ms / 1000,
			c->count, c->count == 1 ? "" : "s", c->width_ms);
	fputc('\n', f);
}

void output_summary(struct output *o, const struct analyzer *a, const struct run_counts *n,
		    uint64_t now_ns)
{
	int64_t wall = (int64_t)now_ns + o->wall_offset_ns;
	struct verdict v;
	uint64_t i, k;

	if (o->json) {
		fprintf(o->f, "{\"type\":\"summary\",\"ts\":%.6f,\"events\":%llu,\"lost_requests\":%llu,"
			"\"dropped_events\":%llu,\"untracked_conns\":%llu,\"margin_s\":%.1f,\"services\":[",
			wall / 1e9, (unsigned long long)n->events, (unsigned long long)n->lost_requests,
			(unsigned long long)n->dropped, (unsigned long long)n->not_tracked,
			a->margin_ms / 1000);
		for (i = 0; i < (uint64_t)a->n; i++) {
			const struct service *s = &a->svc[i];

			analyze_verdict(a, s, &v);
			fprintf(o->f, "%s{\"service\":", i ? "," : "");
			json_string(o->f, s->name);
			fprintf(o->f, ",\"traced\":\"%s\",\"backend_comm\":", s->local ? "backend" : "proxy");
			json_string_or_null(o->f, s->backend_comm);
			fputs(",\"peer_comm\":", o->f);
			json_string_or_null(o->f, s->peer_comm);
			fprintf(o->f, ",\"connections\":%llu,", (unsigned long long)s->conns);
			idle_line(o->f, "backend_idle", &s->backend, &v.backend, &v.backend_pct, true);
			fputc(',', o->f);
			idle_line(o->f, "peer_idle", &s->peer, &v.peer, &v.peer_pct, true);
			fprintf(o->f, ",\"max_reuse_gap_ms\":%.1f,\"lost\":%llu,\"lost_examples\":[",
				s->max_reuse_gap_ms, (unsigned long long)s->lost);
			for (k = 0; k < s->lost && k < LOST_EXAMPLES; k++) {
				fputs(k ? "," : "", o->f);
				json_string(o->f, s->lost_examples[k]);
			}
			fprintf(o->f, "],\"verdict\":\"%s\",\"why\":", verdict_name(v.kind));
			json_string(o->f, v.why);
			fputs(",\"fix\":", o->f);
			json_string_or_null(o->f, v.fix);
			fputc('}', o->f);
		}
		fputs("]}\n", o->f);
		fflush(o->f);
		return;
	}
	fprintf(o->f, "\nSUMMARY: %llu events, %llu lost requests, %llu dropped (ring buffer full)%s\n",
		(unsigned long long)n->events, (unsigned long long)n->lost_requests,
		(unsigned long long)n->dropped, n->dropped ? ": numbers below are incomplete" : "");
	if (!a->n)
		fprintf(o->f, "no HTTP keep-alive connection finished yet: %s\n",
			verdict_name(VERDICT_INSUFFICIENT));
	for (i = 0; i < (uint64_t)a->n; i++) {
		const struct service *s = &a->svc[i];

		analyze_verdict(a, s, &v);
		fprintf(o->f, "service %s (%s%s%s), %llu connections\n", s->name,
			s->local ? "traced on the backend" : "traced on the proxy",
			(s->local ? s->backend_comm : s->peer_comm)[0] ? ": " : "",
			s->local ? s->backend_comm : s->peer_comm, (unsigned long long)s->conns);
		idle_line(o->f, "backend:", &s->backend, &v.backend, &v.backend_pct, false);
		idle_line(o->f, "peer:", &s->peer, &v.peer, &v.peer_pct, false);
		if (s->max_reuse_gap_ms >= MIN_IDLE_MS)
			fprintf(o->f, "  the peer reused connections idle up to %.1f ms (its timeout is at least that)\n",
				s->max_reuse_gap_ms);
		fprintf(o->f, "  lost requests: %llu", (unsigned long long)s->lost);
		for (k = 0; k < s->lost && k < LOST_EXAMPLES; k++)
			fprintf(o->f, "%s%s", k ? ", " : ": ", s->lost_examples[k]);
		fprintf(o->f, "%s\n", s->lost > LOST_EXAMPLES ? ", ..." : "");
		fprintf(o->f, "  verdict: %s: %s\n", verdict_name(v.kind), v.why);
		if (v.fix[0])
			fprintf(o->f, "  fix: %s\n", v.fix);
	}
	fflush(o->f);
}
