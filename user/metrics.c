// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "metrics.h"
#include "session.h"

static void label(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s=\"", name);
	for (; *value; value++) { /* label values escape \, " and newline */
		if (*value == '\\' || *value == '"')
			fputc('\\', f);
		if (*value == '\n')
			fputs("\\n", f);
		else
			fputc(*value, f);
	}
	fputc('"', f);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "name{service="...",side="..."" : the caller closes the braces. */
static void service_side(FILE *f, const char *name, const struct service *s, const char *side)
{
	fprintf(f, "%s{", name);
	label(f, "service", s->name);
	fputc(',', f);
	label(f, "side", side);
}

static void histogram(FILE *f, const struct service *s, const char *side,
		      const struct idle_stats *st)
{
	uint64_t cum = 0;
	int b;

	for (b = 0; b <= N_IDLE_BUCKETS; b++) {
		cum += st->hist[b];
		service_side(f, "katrace_idle_before_close_seconds_bucket", s, side);
		if (b < N_IDLE_BUCKETS)
			fprintf(f, ",le=\"%g\"} %llu\n", idle_buckets[b], (unsigned long long)cum);
		else
			fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	service_side(f, "katrace_idle_before_close_seconds_sum", s, side);
	fprintf(f, "} %.6f\n", st->hist_sum_s);
	service_side(f, "katrace_idle_before_close_seconds_count", s, side);
	fprintf(f, "} %llu\n", (unsigned long long)cum);
}

static void self_usage(double *cpu_s, long *rss_bytes)
{
	struct rusage ru;
	long pages = 0, resident = 0;
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	*cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	if (f)
		fclose(f);
	*rss_bytes = resident * sysconf(_SC_PAGESIZE);
}

static void close_metrics(FILE *f, const struct session *s)
{
	int r, c;

	header(f, "katrace_connections_closed_total", "counter",
	       "TCP connections that ended, by role and by who closed first.");
	for (r = ROLE_UNKNOWN; r <= ROLE_CLIENT; r++)
		for (c = CLOSED_LOCAL_FIN; c <= CLOSED_PEER_RST; c++)
			fprintf(f,
				"katrace_connections_closed_total{role=\"%s\",closed_by=\"%s\"} %llu\n",
				role_name(r), closed_by_name(c),
				(unsigned long long)session_closes(s, r, c));
}

static void timeout_gauges(FILE *f, const struct service *s, const struct verdict *v)
{
	if (v->backend.found) {
		service_side(f, "katrace_idle_timeout_seconds", s, "backend");
		fprintf(f, "} %.4f\n", v->backend.value_ms / 1000);
	}
	if (v->peer.found) {
		service_side(f, "katrace_idle_timeout_seconds", s, "peer");
		fprintf(f, "} %.4f\n", v->peer.value_ms / 1000);
	}
}

/* Per service, with one verdict per service and scrape. */
static void service_metrics(FILE *f, const struct session *s)
{
	const struct analyzer *a = session_analysis(s);
	static struct verdict v[MAX_SERVICES];
	int i, c;

	header(f, "katrace_idle_before_close_seconds", "histogram",
	       "Idle time of HTTP keep-alive connections when one side closed them, per service and side.");
	for (i = 0; i < a->n; i++) {
		histogram(f, &a->svc[i], "backend", &a->svc[i].backend);
		histogram(f, &a->svc[i], "peer", &a->svc[i].peer);
	}
	header(f, "katrace_lost_requests_total", "counter",
	       "Failed requests, per service and cause (keepalive_race, backend_exit, proxy_timeout, backend_reset).");
	for (i = 0; i < a->n; i++)
		for (c = 0; c < N_CAUSES; c++) {
			fputs("katrace_lost_requests_total{", f);
			label(f, "service", a->svc[i].name);
			fprintf(f, ",cause=\"%s\"} %llu\n", cause_name(c),
				(unsigned long long)a->svc[i].causes.lost[c]);
		}
	header(f, "katrace_refused_connections_total", "counter",
	       "Connection attempts refused (nothing listened), per service.");
	for (i = 0; i < a->n; i++) {
		fputs("katrace_refused_connections_total{", f);
		label(f, "service", a->svc[i].name);
		fprintf(f, "} %llu\n", (unsigned long long)a->svc[i].causes.refused);
	}
	header(f, "katrace_process_exits_total", "counter",
	       "Exits of a backend process that listened on the service's port.");
	for (i = 0; i < a->n; i++) {
		fputs("katrace_process_exits_total{", f);
		label(f, "service", a->svc[i].name);
		fprintf(f, "} %u\n", a->svc[i].causes.exits);
	}
	header(f, "katrace_idle_timeout_seconds", "gauge",
	       "Inferred effective idle keep-alive timeout, per service and side (absent until known).");
	session_verdicts(s, v);
	for (i = 0; i < a->n; i++)
		timeout_gauges(f, &a->svc[i], &v[i]);
	header(f, "katrace_timeout_mismatch", "gauge",
	       "1 while the verdict for a service is MISMATCH: its backend closes idle connections its peer still reuses.");
	for (i = 0; i < a->n; i++) {
		fputs("katrace_timeout_mismatch{", f);
		label(f, "service", a->svc[i].name);
		fprintf(f, "} %d\n", v[i].kind == VERDICT_MISMATCH);
	}
}

/* katrace's own health: what it read, dropped and evicted, and its cost. */
static void run_metrics(FILE *f, const struct run_counters *n)
{
	double cpu;
	long rss;

	header(f, "katrace_events_total", "counter", "Events read from the kernel.");
	fprintf(f, "katrace_events_total %llu\n", (unsigned long long)n->events);
	header(f, "katrace_ringbuf_dropped_events_total", "counter",
	       "Events the kernel dropped because the ring buffer was full.");
	fprintf(f, "katrace_ringbuf_dropped_events_total %llu\n", (unsigned long long)n->dropped);
	header(f, "katrace_evictions_total", "counter",
	       "Connections dropped from a bounded table: kernel (LRU evicted or refused) and user space (LRU).");
	fprintf(f, "katrace_evictions_total{table=\"kernel\"} %llu\n",
		(unsigned long long)(n->untracked_closes + n->table_full));
	fprintf(f, "katrace_evictions_total{table=\"user\"} %llu\n",
		(unsigned long long)n->user_evictions);
	header(f, "katrace_unreadable_resets_total", "counter",
	       "Lost-request segments whose bytes the kernel would not let BPF read.");
	fprintf(f, "katrace_unreadable_resets_total %llu\n",
		(unsigned long long)n->unreadable_resets);
	self_usage(&cpu, &rss);
	header(f, "katrace_process_cpu_seconds_total", "counter",
	       "katrace's own user and system CPU time.");
	fprintf(f, "katrace_process_cpu_seconds_total %.3f\n", cpu);
	header(f, "katrace_process_resident_memory_bytes", "gauge",
	       "katrace's own resident memory.");
	fprintf(f, "katrace_process_resident_memory_bytes %ld\n", rss);
}

void metrics_render(FILE *f, const struct session *s, const struct run_counters *n)
{
	close_metrics(f, s);
	service_metrics(f, s);
	run_metrics(f, n);
}

int metrics_write_file(const char *path, const struct session *s, const struct run_counters *n)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "katrace: cannot write %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	metrics_render(f, s, n);
	if (fclose(f) || rename(tmp, path)) {
		fprintf(stderr, "katrace: cannot replace %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
