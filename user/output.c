// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <time.h>
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

uint64_t conn_idle_since(const struct conn *c, const struct http_state *h)
{
	uint64_t t;

	if (!h || !h->responses)
		return conn_last_activity(c);
	/* the response went the other way from the requests */
	t = h->req_dir == DIR_IN ? c->last_send_ns : c->last_recv_ns;
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
		fprintf(o->f, "],\"requests\":%u,\"last_request\":", h ? h->requests : 0);
		if (h && h->last_request[0])
			json_string(o->f, h->last_request);
		else
			fputs("null", o->f);
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
	fprintf(o->f, "%8llu %8llu %4u %-24.*s ", (unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out, h ? h->requests : 0, 24,
		h && h->last_request[0] ? h->last_request : "-");
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
		json_string(o->f, l->request);
		if (known_close)
			fprintf(o->f, ",\"close_to_request_ms\":%.1f", l->close_to_request_ms);
		else
			fputs(",\"close_to_request_ms\":null", o->f);
		json_ms(o->f, "idle_ms", l->idle_ms);
		fputs(",\"reset_reason\":", o->f);
		if (l->reason)
			json_string(o->f, l->reason);
		else
			fputs("null", o->f);
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
		fprintf(o->f, "%s <- %s \"%s\": ", laddr, raddr, l->request);
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

		fprintf(o->f, "%s -> %s \"%s\": ", laddr, raddr, l->request);
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
