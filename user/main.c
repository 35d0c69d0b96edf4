// SPDX-License-Identifier: GPL-2.0
/*
 * katrace: which side closed each idle keep-alive TCP connection, when, and
 * after how long idle. See README.md.
 */
#include <argp.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include "args.h"
#include "capture.h"
#include "check.h"
#include "loader.h"
#include "metrics.h"
#include "session.h"

#define MAX_PIDS 64

static struct env {
	pid_t tgids[MAX_PIDS];
	int ntgids;
	uint16_t port;
	double duration_s;
	bool json;
	bool unix_ts;
	bool verbose;
	bool full_path;
	double margin_s;
	uint32_t max_conns;
	const char *btf_path;
	const char *write_path;		/* -w */
	bool daemon;
	int per_conn;			/* --level: -1 = the mode's default */
	const char *log_path;		/* --log, default stdout */
	const char *metrics_addr;
	const char *metrics_file;
	const char *cgroup_path;
	uint64_t cgroup_id;
	const char *report_path;	/* katrace report FILE */
} env = { .max_conns = 65536, .margin_s = 5, .per_conn = -1 };

enum { OPT_PORT = 1000, OPT_JSON, OPT_MAX_CONNS, OPT_BTF, OPT_FULL_PATH, OPT_MARGIN, OPT_DAEMON,
       OPT_LOG, OPT_METRICS_ADDR, OPT_METRICS_FILE, OPT_CGROUP, OPT_LEVEL };

#define METRICS_FILE_PERIOD_NS 10000000000ULL

const char *argp_program_version = "katrace 0.1";
static const char doc[] =
	"Trace who closes each TCP connection, when, and after how long idle.\n"
	"\n"
	"EXAMPLES:\n"
	"    katrace                 # every TCP connection on the host\n"
	"    katrace -p 1234         # connections owned by process 1234\n"
	"    katrace --port 8080     # local or remote port 8080\n"
	"    katrace -p 1234 --json -d 60\n"
	"    katrace -p 1234 -w incident.katrace   # record, then:\n"
	"    katrace report incident.katrace       # replay (no root needed)\n"
	"    katrace check --target 127.0.0.1:3000 --lb aws-alb   # CI: see katrace check --help";

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Trace this process (repeatable, or comma-separated)", 0 },
	{ "port", OPT_PORT, "PORT", 0, "Only connections with this local or remote port", 0 },
	{ "duration", 'd', "SECONDS", 0, "Stop after this long (default: until Ctrl-C)", 0 },
	{ "timestamp", 'T', NULL, 0, "Print unix timestamps instead of wall-clock time", 0 },
	{ "json", OPT_JSON, NULL, 0, "One JSON object per line (schema in README.md)", 0 },
	{ "full-path", OPT_FULL_PATH, NULL, 0, "Keep query strings (default: replaced by ?…)", 0 },
	{ "margin", OPT_MARGIN, "SECONDS", 0, "How much longer the backend must keep idle connections than its peer (default 5)", 0 },
	{ "max-conns", OPT_MAX_CONNS, "N", 0, "Connections tracked at once (default 65536)", 0 },
	{ "write", 'w', "FILE", 0, "Record the event stream into FILE (zlib); replay with: katrace report FILE", 0 },
	{ "cgroup", OPT_CGROUP, "PATH", 0, "Only processes in this cgroup v2 directory (a container), or below it", 0 },
	{ "level", OPT_LEVEL, "request|conn", 0, "request: follow every HTTP request (count, last request line, status; "
	  "the default live). conn: connections only, no program per request, for a sidecar's overhead (the default with --daemon)", 0 },
	{ "daemon", OPT_DAEMON, NULL, 0, "Run as a sidecar until SIGTERM: JSON lines to --log, SIGHUP reopens it, SIGUSR1 logs a summary", 0 },
	{ "log", OPT_LOG, "FILE", 0, "Where records go (default stdout)", 0 },
	{ "metrics-addr", OPT_METRICS_ADDR, "HOST:PORT", 0, "Serve Prometheus metrics on GET /metrics", 0 },
	{ "metrics-file", OPT_METRICS_FILE, "PATH", 0, "Write Prometheus metrics to PATH every 10 s (node_exporter textfile)", 0 },
	{ "btf", OPT_BTF, "FILE", 0, "Kernel BTF to use instead of /sys/kernel/btf/vmlinux", 0 },
	{ "verbose", 'v', NULL, 0, "Print libbpf's messages and every reset seen", 0 },
	{},
};

/* -p names a process; a thread id stands for its whole process. */
static pid_t resolve_tgid(pid_t pid)
{
	char path[64], line[128];
	pid_t tgid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static void add_pids(char *arg, struct argp_state *st)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		pid_t pid = parse_num(tok, 1, INT_MAX, "pid", st), tgid;

		tgid = resolve_tgid(pid);
		if (tgid <= 0) {
			fprintf(stderr, "katrace: pid %d not found\n", pid);
			exit(1);
		}
		if (env.ntgids == MAX_PIDS)
			argp_error(st, "at most %d pids", MAX_PIDS);
		env.tgids[env.ntgids++] = tgid;
	}
}

static error_t parse_arg(int key, char *arg, struct argp_state *st)
{
	char *end;

	switch (key) {
	case 'p':
		add_pids(arg, st);
		break;
	case OPT_PORT:
		env.port = parse_num(arg, 1, 65535, "port", st);
		break;
	case 'd':
		env.duration_s = strtod(arg, &end);
		if (*end || end == arg || env.duration_s <= 0)
			argp_error(st, "invalid duration: '%s'", arg);
		break;
	case 'T':
		env.unix_ts = true;
		break;
	case OPT_JSON:
		env.json = true;
		break;
	case OPT_MAX_CONNS:
		env.max_conns = parse_num(arg, 16, 16 * 1024 * 1024, "--max-conns", st);
		break;
	case OPT_BTF:
		env.btf_path = arg;
		break;
	case OPT_FULL_PATH:
		env.full_path = true;
		break;
	case OPT_MARGIN:
		env.margin_s = strtod(arg, &end);
		if (*end || end == arg || env.margin_s < 0)
			argp_error(st, "invalid margin: '%s'", arg);
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'w':
		env.write_path = arg;
		break;
	case OPT_DAEMON:
		env.daemon = true;
		env.json = true;
		break;
	case OPT_LEVEL:
		if (!strcmp(arg, "conn"))
			env.per_conn = 1;
		else if (!strcmp(arg, "request"))
			env.per_conn = 0;
		else
			argp_error(st, "invalid --level: '%s' (request or conn)", arg);
		break;
	case OPT_LOG:
		env.log_path = arg;
		break;
	case OPT_METRICS_ADDR:
		env.metrics_addr = arg;
		break;
	case OPT_METRICS_FILE:
		env.metrics_file = arg;
		break;
	case OPT_CGROUP: {
		struct statfs fs;
		struct stat st;

		/* a cgroup v2 directory's inode number is its cgroup id */
		if (statfs(arg, &fs) || fs.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */ ||
		    stat(arg, &st) || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "katrace: --cgroup %s is not a cgroup v2 directory\n", arg);
			exit(1);
		}
		env.cgroup_path = arg;
		env.cgroup_id = st.st_ino;
		break;
	}
	case ARGP_KEY_ARG:
		if (st->arg_num == 0 && !strcmp(arg, "report") && !env.report_path) {
			env.report_path = "";
			break;
		}
		if (st->arg_num == 1 && env.report_path && !env.report_path[0]) {
			env.report_path = arg;
			break;
		}
		argp_error(st, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (env.per_conn < 0)
			env.per_conn = env.daemon;
		if (env.report_path && !env.report_path[0])
			argp_error(st, "report needs a capture file: katrace report FILE");
		if (env.report_path && (env.ntgids || env.port || env.write_path || env.duration_s))
			argp_error(st, "report replays a capture: -p, --port, -d and -w do not apply");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static volatile sig_atomic_t stop_signal, summary_wanted, reopen_wanted;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		summary_wanted = 1;
	else if (sig == SIGHUP)
		reopen_wanted = 1;
	else
		stop_signal = sig;
}

static FILE *open_log(const char *path)
{
	FILE *f;

	if (!path)
		return stdout;
	f = fopen(path, "ae");
	if (!f)
		fprintf(stderr, "katrace: cannot open log %s: %s\n", path, strerror(errno));
	return f;
}

static void metric_counts(struct tracer *t, struct metric_counts *n)
{
	n->dropped = tracer_counter(t, CNT_RB_DROPS);
	n->map_full = tracer_counter(t, CNT_MAP_FULL);
	n->untracked_closes = tracer_counter(t, CNT_UNTRACKED_CLOSE);
	n->unreadable_resets = tracer_counter(t, CNT_SKB_NONLINEAR);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* True while at least one traced process lives. */
static bool targets_alive(void)
{
	int i, alive = 0;

	for (i = 0; i < env.ntgids; i++) {
		if (env.tgids[i] <= 0)
			continue;
		if (kill(env.tgids[i], 0) && errno == ESRCH) {
			fprintf(stderr, "katrace: pid %d exited\n", env.tgids[i]);
			env.tgids[i] = -env.tgids[i];
			continue;
		}
		alive++;
	}
	return alive > 0;
}

/* The run's totals, on stderr, the same live and replayed. */
static void print_totals(const struct session *s, uint64_t events, uint64_t dropped,
			 uint64_t not_tracked)
{
	fprintf(stderr, "katrace: %llu events, %llu lost requests, %llu dropped (ring buffer full), "
		"%llu not tracked (table full)\n", (unsigned long long)events,
		(unsigned long long)s->lost_requests, (unsigned long long)dropped,
		(unsigned long long)not_tracked);
}

/* What the live run knew before its first event: the clock, the filter,
 * the reset-reason names of the kernel it ran on. */
static void apply_header(void *ctx, const struct capture_header *h)
{
	struct session *s = ctx;

	s->out.wall_offset_ns = h->wall_offset_ns;
	s->pid_filter = h->flags & CAPTURE_F_PID_FILTER;
	memcpy(s->rst_reasons, h->rst_reasons, sizeof(s->rst_reasons));
}

/* katrace report FILE: the recorded stream through the same join and analysis. */
static int report(struct session *s)
{
	struct capture_header h;
	struct capture_end end = {};
	uint64_t bad;

	if (capture_replay(env.report_path, &h, &end, apply_header, session_event, s))
		return 1;
	bad = s->bad_records;
	if (bad) {
		fprintf(stderr, "katrace: %s: corrupted capture: %llu records are not katrace events\n",
			env.report_path, (unsigned long long)bad);
		return 1;
	}
	session_finish(s);
	s->events = end.events;
	session_summary(s, end.dropped, end.not_tracked);
	print_totals(s, end.events, end.dropped, end.not_tracked);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct argp argp = { opts, parse_arg, NULL, doc, NULL, NULL, NULL };
	struct capture_header cap_header;
	struct tracer_opts topts;
	struct session *s;
	struct tracer *t;
	uint64_t start, deadline = 0, last_check = 0, drops_seen = 0, drain_until = 0, last_metrics = 0;
	uint64_t not_tracked;
	int err, metrics_fd = -1;

	if (argc > 1 && !strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return 1;
	s = session_new(env.max_conns, env.margin_s * 1000);
	if (!s) {
		fprintf(stderr, "katrace: out of memory\n");
		return 1;
	}
	s->out.f = open_log(env.log_path);
	if (!s->out.f)
		return 1;
	s->out.json = env.json;
	s->out.unix_ts = env.unix_ts;
	s->out.wall_offset_ns = (int64_t)(now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC));
	s->full_path = env.full_path;
	s->pid_filter = env.ntgids > 0;
	s->verbose = env.verbose;
	if (env.report_path) {
		err = report(s);
		session_free(s);
		return err;
	}

	topts = (struct tracer_opts){
		.tgids = env.tgids, .ntgids = env.ntgids, .port = env.port,
		.max_conns = env.max_conns, .btf_path = env.btf_path, .verbose = env.verbose,
		.cgroup_id = env.cgroup_id, .per_conn = env.per_conn,
	};
	t = tracer_open(&topts, session_event, s);
	if (!t)
		return 1;
	tracer_reset_reasons(t, s->rst_reasons);
	if (tracer_fallbacks(t))
		fprintf(stderr, "katrace: note: %s\n", tracer_fallbacks(t));
	if (env.write_path) {
		capture_header_init(&cap_header);
		cap_header.wall_offset_ns = s->out.wall_offset_ns;
		cap_header.flags = (env.ntgids ? CAPTURE_F_PID_FILTER : 0) |
				   (env.full_path ? CAPTURE_F_FULL_PATH : 0);
		memcpy(cap_header.rst_reasons, s->rst_reasons, sizeof(cap_header.rst_reasons));
		s->cap = capture_create(env.write_path, &cap_header);
		if (!s->cap) {
			tracer_close(t);
			return 1;
		}
	}

	if (env.metrics_addr) {
		metrics_fd = metrics_listen(env.metrics_addr);
		if (metrics_fd < 0) {
			tracer_close(t);
			return 1;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	start = now_ns(CLOCK_MONOTONIC);
	if (env.duration_s > 0)
		deadline = start + (uint64_t)(env.duration_s * 1e9);
	fprintf(stderr, "katrace: tracing%s%s, %s; %s\n",
		env.ntgids ? " the given processes" : env.cgroup_path ? " the cgroup " : " every TCP connection",
		env.cgroup_path && !env.ntgids ? env.cgroup_path : "",
		env.per_conn ? "per connection" : "per request",
		env.daemon ? "SIGTERM stops, SIGHUP reopens the log, SIGUSR1 logs a summary" : "Ctrl-C to stop");

	while (!stop_signal) {
		struct pollfd pfd[2] = {
			{ .fd = tracer_fd(t), .events = POLLIN },
			{ .fd = metrics_fd, .events = POLLIN },
		};
		struct metric_counts mc;
		uint64_t now;

		if (poll(pfd, metrics_fd >= 0 ? 2 : 1, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "katrace: poll failed: %s\n", strerror(errno));
			break;
		}
		err = tracer_consume(t);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "katrace: ring buffer read failed: %s\n", strerror(-err));
			break;
		}
		if (metrics_fd >= 0 && (pfd[1].revents & POLLIN)) {
			metric_counts(t, &mc);
			metrics_serve_one(metrics_fd, s, &mc);
		}
		now = now_ns(CLOCK_MONOTONIC);
		if (summary_wanted) {
			summary_wanted = 0;
			session_summary(s, tracer_counter(t, CNT_RB_DROPS), tracer_counter(t, CNT_MAP_FULL));
		}
		if (reopen_wanted) {
			FILE *f;

			reopen_wanted = 0;
			if (env.log_path && (f = open_log(env.log_path))) {
				fclose(s->out.f);
				s->out.f = f;
			}
		}
		if (env.metrics_file && now - last_metrics >= METRICS_FILE_PERIOD_NS) {
			last_metrics = now;
			metric_counts(t, &mc);
			metrics_write_file(env.metrics_file, s, &mc);
		}
		if (deadline && now >= deadline)
			break;
		if (drain_until) {
			if (now >= drain_until)
				break;
			continue;
		}
		if (now - last_check < 500000000ULL)
			continue;
		last_check = now;
		if (tracer_counter(t, CNT_RB_DROPS) > drops_seen) {
			drops_seen = tracer_counter(t, CNT_RB_DROPS);
			fprintf(stderr, "katrace: warning: %llu events dropped so far (ring buffer full)\n",
				(unsigned long long)drops_seen);
		}
		/* The kernel closes a dead process's sockets: give their events time to arrive. */
		if (env.ntgids && !targets_alive()) {
			fprintf(stderr, "katrace: every traced process has exited; stopping\n");
			drain_until = now + 300000000ULL;
		}
	}
	tracer_poll(t, 0);
	session_finish(s);
	drops_seen = tracer_counter(t, CNT_RB_DROPS);
	not_tracked = tracer_counter(t, CNT_MAP_FULL);
	session_summary(s, drops_seen, not_tracked);
	err = 0;
	if (s->cap) {
		struct capture_end end = {
			.h.type = EV_CAPTURE_END, .h.ts_ns = s->last_ts_ns, .events = s->events,
			.dropped = drops_seen, .not_tracked = not_tracked,
		};

		err = capture_close(s->cap, &end) ? 1 : 0;
		s->cap = NULL;
	}
	print_totals(s, s->events, drops_seen, not_tracked);
	if (env.metrics_file) {
		struct metric_counts mc;

		metric_counts(t, &mc);
		metrics_write_file(env.metrics_file, s, &mc);
	}
	if (metrics_fd >= 0)
		close(metrics_fd);
	tracer_close(t);
	if (s->out.f != stdout)
		fclose(s->out.f);
	session_free(s);
	return err;
}
