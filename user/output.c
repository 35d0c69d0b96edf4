// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
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
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);	/* bytes, never raw: output stays valid JSON */
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

void output_close(struct output *o, const struct conn *c, uint64_t end_ns)
{
	char comm[TASK_COMM_LEN + 1] = {}, laddr[64], raddr[64];
	uint64_t at = c->close_ns ? c->close_ns : end_ns;
	double idle = c->close_ns ? span_ms(conn_last_activity(c), c->close_ns) : -1;
	double life = span_ms(c->start_ns, end_ns);
	int i;

	memcpy(comm, c->comm, TASK_COMM_LEN);
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
		fprintf(o->f, "]}\n");
		fflush(o->f);
		return;
	}
	if (!o->header_done) {
		fprintf(o->f, "%-*s %-7s %-15s %-22s %-22s %-7s %-9s %9s %9s %8s %8s %s\n",
			o->unix_ts ? 17 : 12, "TIME", "PID", "COMM", "LADDR", "RADDR", "ROLE",
			"CLOSED_BY", "IDLE_MS", "LIFE_MS", "RX_B", "TX_B", "STATES");
		o->header_done = true;
	}
	print_time(o, at);
	fprintf(o->f, "%-7u %-15s %-22s %-22s %-7s %-9s ", c->tgid, comm[0] ? comm : "?",
		laddr, raddr, role_name(c->role), closed_by_name(c->closed_by));
	text_ms(o->f, idle);
	text_ms(o->f, life);
	fprintf(o->f, "%8llu %8llu ", (unsigned long long)c->bytes_in,
		(unsigned long long)c->bytes_out);
	for (i = 0; i < c->nstates && i < MAX_STATES; i++)
		fprintf(o->f, "%s%s", i ? ">" : "", tcp_state_name(c->states[i]));
	fputc('\n', o->f);
	fflush(o->f);
}
