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
#include "endpoint.h"
#include "html.h"
#include "metrics.h"
#include "procfs.h"
#include "session.h"
#include "tlsprobe.h"

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
	const char *write_path; /* -w */
	bool daemon;
	enum level level;
	bool level_given;     /* else the mode's default: conn with --daemon */
	const char *log_path; /* --log, default stdout */
	const char *metrics_addr;
	const char *metrics_file;
	const char *cgroup_path;
	uint64_t cgroup_id;
	const char *report_path; /* katrace report FILE */
	const char *html_path;	 /* --html */
} env = { .max_conns = 65536, .margin_s = 5 };

enum {
	OPT_PORT = 1000,
	OPT_JSON,
	OPT_MAX_CONNS,
	OPT_BTF,
	OPT_FULL_PATH,
	OPT_MARGIN,
	OPT_DAEMON,
	OPT_LOG,
	OPT_METRICS_ADDR,
	OPT_METRICS_FILE,
	OPT_CGROUP,
	OPT_LEVEL,
	OPT_HTML
};

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
	"    katrace report incident.katrace --html incident.html   # the picture\n"
	"    katrace check --target 127.0.0.1:3000 --lb aws-alb   # CI: see katrace check --help";

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Trace this process (repeatable, or comma-separated)", 0 },
	{ "port", OPT_PORT, "PORT", 0, "Only connections with this local or remote port", 0 },
	{ "duration", 'd', "SECONDS", 0, "Stop after this long (default: until Ctrl-C)", 0 },
	{ "timestamp", 'T', NULL, 0, "Print unix timestamps instead of wall-clock time", 0 },
	{ "json", OPT_JSON, NULL, 0, "One JSON object per line (schema in README.md)", 0 },
	{ "full-path", OPT_FULL_PATH, NULL, 0, "Keep query strings (default: replaced by ?…)", 0 },
	{ "margin", OPT_MARGIN, "SECONDS", 0,
	  "How much longer the backend must keep idle connections than its peer (default 5)", 0 },
	{ "max-conns", OPT_MAX_CONNS, "N", 0, "Connections tracked at once (default 65536)", 0 },
	{ "write", 'w', "FILE", 0,
	  "Record the event stream into FILE (zlib); replay with: katrace report FILE", 0 },
	{ "html", OPT_HTML, "FILE", 0,
	  "At the end, write the report as one self-contained HTML page (timeline, idle times "
	  "against the timeouts, verdict)",
	  0 },
	{ "cgroup", OPT_CGROUP, "PATH", 0,
	  "Only processes in this cgroup v2 directory (a container), or below it", 0 },
	{ "level", OPT_LEVEL, "request|conn", 0,
	  "request: follow every HTTP request (count, last request line, status; "
	  "the default live). conn: connections only, no program per request, for a sidecar's overhead (the default with --daemon)",
	  0 },
	{ "daemon", OPT_DAEMON, NULL, 0,
	  "Run as a sidecar until SIGTERM: JSON lines to --log, SIGHUP reopens it, SIGUSR1 logs a summary",
	  0 },
	{ "log", OPT_LOG, "FILE", 0, "Where records go (default stdout)", 0 },
	{ "metrics-addr", OPT_METRICS_ADDR, "HOST:PORT", 0,
	  "Serve Prometheus metrics on GET /metrics", 0 },
	{ "metrics-file", OPT_METRICS_FILE, "PATH", 0,
	  "Write Prometheus metrics to PATH every 10 s (node_exporter textfile)", 0 },
	{ "btf", OPT_BTF, "FILE", 0,
	  "Take the kernel's tracepoints from this BTF instead of "
	  "/sys/kernel/btf/vmlinux (a test hook: shows katrace an older kernel)",
	  0 },
	{ "verbose", 'v', NULL, 0,
	  "Print the kernel features found, libbpf's messages and every reset seen", 0 },
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

/* --cgroup: a cgroup v2 directory's inode number is its cgroup id. */
static void set_cgroup(const char *path)
{
	struct statfs fs;
	struct stat st;

	if (statfs(path, &fs) || fs.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */ ||
	    stat(path, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "katrace: --cgroup %s is not a cgroup v2 directory\n", path);
		exit(1);
	}
	env.cgroup_path = path;
	env.cgroup_id = st.st_ino;
}

static double parse_seconds(const char *arg, bool zero_ok, const char *what, struct argp_state *st)
{
	char *end;
	double v = strtod(arg, &end);

	if (*end || end == arg || v < 0 || (!zero_ok && v == 0))
		argp_error(st, "invalid %s: '%s'", what, arg);
	return v;
}

/* katrace report FILE: the only positional arguments. */
static void positional(const char *arg, struct argp_state *st)
{
	if (st->arg_num == 0 && !strcmp(arg, "report") && !env.report_path)
		env.report_path = "";
	else if (st->arg_num == 1 && env.report_path && !env.report_path[0])
		env.report_path = arg;
	else
		argp_error(st, "unexpected argument '%s'", arg);
}

static void options_done(struct argp_state *st)
{
	if (!env.level_given)
		env.level = env.daemon ? LEVEL_CONN : LEVEL_REQUEST;
	if (env.report_path && !env.report_path[0])
		argp_error(st, "report needs a capture file: katrace report FILE");
	if (env.report_path && (env.ntgids || env.port || env.write_path || env.duration_s))
		argp_error(st, "report replays a capture: -p, --port, -d and -w do not apply");
}

static void set_level(const char *arg, struct argp_state *st)
{
	if (!strcmp(arg, "conn"))
		env.level = LEVEL_CONN;
	else if (!strcmp(arg, "request"))
		env.level = LEVEL_REQUEST;
	else
		argp_error(st, "invalid --level: '%s' (request or conn)", arg);
	env.level_given = true;
}

/* One case per option: as long as the option list. */
static error_t parse_arg(int key, char *arg, struct argp_state *st)
{
	switch (key) {
	case 'p':
		add_pids(arg, st);
		break;
	case OPT_PORT:
		env.port = parse_num(arg, 1, 65535, "port", st);
		break;
	case 'd':
		env.duration_s = parse_seconds(arg, false, "duration", st);
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
		env.margin_s = parse_seconds(arg, true, "margin", st);
		break;
	case 'v':
		env.verbose = true;
		break;
	case 'w':
		env.write_path = arg;
		break;
	case OPT_DAEMON:
		env.daemon = env.json = true;
		break;
	case OPT_LEVEL:
		set_level(arg, st);
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
	case OPT_CGROUP:
		set_cgroup(arg);
		break;
	case OPT_HTML:
		env.html_path = arg;
		break;
	case ARGP_KEY_ARG:
		positional(arg, st);
		break;
	case ARGP_KEY_END:
		options_done(st);
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

/* Everything the run counted so far: the session's and the kernel's. */
static void run_counters(const struct session *s, struct tracer *t, struct run_counters *n)
{
	session_counters(s, n);
	n->dropped = tracer_counter(t, CNT_DROPPED);
	n->table_full = tracer_counter(t, CNT_TABLE_FULL);
	n->untracked_closes = tracer_counter(t, CNT_UNTRACKED_CLOSE);
	n->unreadable_resets = tracer_counter(t, CNT_UNREADABLE_RESET);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Whether the run goes on: while a traced process lives, or one that
 * served a port died (a restart is followed: a supervisor's, systemd's). */
static bool targets_alive(const struct session *s)
{
	int i, alive = 0, serving = 0;

	for (i = 0; i < env.ntgids; i++) {
		pid_t pid = env.tgids[i] > 0 ? env.tgids[i] : -env.tgids[i];

		if (session_held_listener(s, pid))
			serving++;
		if (env.tgids[i] <= 0)
			continue;
		if (kill(pid, 0) && errno == ESRCH) {
			fprintf(stderr, "katrace: pid %d exited%s\n", pid,
				session_held_listener(s, pid) ?
					"; following its ports for the process that listens next" :
					"");
			env.tgids[i] = -pid;
			continue;
		}
		alive++;
	}
	return alive > 0 || serving > 0;
}

/* Processes that began listening on a followed port: traced from now on. */
static void follow_successors(struct tracer *t, const struct session *s)
{
	uint32_t followed[MAX_PIDS];
	int n = session_followed(s, followed, MAX_PIDS), i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < env.ntgids; j++)
			if (env.tgids[j] == (pid_t)followed[i] ||
			    env.tgids[j] == -(pid_t)followed[i])
				break;
		if (j < env.ntgids || env.ntgids == MAX_PIDS)
			continue;
		env.tgids[env.ntgids++] = followed[i];
		tracer_add_target(t, followed[i]);
		fprintf(stderr, "katrace: following pid %u, listening on a port it serves\n",
			followed[i]);
	}
}

/* The run's totals, on stderr, the same live and replayed. */
static void print_totals(const struct run_counters *n)
{
	fprintf(stderr,
		"katrace: %llu events, %llu lost requests, %llu dropped (ring buffer full), "
		"%llu not tracked (table full)\n",
		(unsigned long long)n->events, (unsigned long long)n->lost_requests,
		(unsigned long long)n->dropped, (unsigned long long)n->table_full);
}

static void apply_header(void *ctx, const struct capture_header *h)
{
	session_use_header(ctx, h);
}

/* katrace report FILE: the recorded stream through the same join and analysis. */
static int report(struct session *s)
{
	struct capture_header h;
	struct capture_end end = {};
	struct run_counters n;

	if (capture_replay(env.report_path, &h, &end, apply_header, session_event, s))
		return 1;
	session_counters(s, &n);
	if (n.bad_records) {
		fprintf(stderr,
			"katrace: %s: corrupted capture: %llu records are not katrace events\n",
			env.report_path, (unsigned long long)n.bad_records);
		return 1;
	}
	session_finish(s);
	session_counters(s, &n);
	/* the live run's counts: its events included those -w could not keep */
	n.events = end.events;
	n.dropped = end.dropped;
	n.table_full = end.table_full;
	session_summary(s, &n);
	print_totals(&n);
	return 0;
}

/* A live run: the tracer, the optional capture and metrics endpoint. */
#define MAX_SEALED_NOTES 64

struct live {
	struct session *s;
	struct tracer *t;
	struct capture *cap;
	struct endpoint *metrics;
	struct tls_probes *tls;		   /* --level request */
	uint32_t sealed[MAX_SEALED_NOTES]; /* processes told of as unprobed */
	int nsealed;
	uint64_t deadline, last_check, drops_seen, drain_until, last_metrics;
};

/* CLOCK_REALTIME - CLOCK_MONOTONIC, taken once: the records and a capture's
 * header must agree on it to the nanosecond. */
static int64_t wall_offset_ns;

static struct session *open_session(void)
{
	struct session_opts o = {
		.out = { .json = env.json,
			 .unix_ts = env.unix_ts,
			 .wall_offset_ns = wall_offset_ns },
		.max_conns = env.max_conns,
		.margin_ms = env.margin_s * 1000,
		.full_path = env.full_path,
		.pid_filter = env.ntgids > 0,
		.verbose = env.verbose,
		.timeline = env.html_path != NULL,
	};
	struct session *s;

	o.out.f = open_log(env.log_path);
	if (!o.out.f)
		return NULL;
	s = session_new(&o);
	if (!s)
		fprintf(stderr, "katrace: out of memory\n");
	return s;
}

static struct capture *open_capture(struct tracer *t)
{
	struct capture_header h;

	capture_header_init(&h);
	h.wall_offset_ns = wall_offset_ns;
	h.flags = (env.ntgids ? CAPTURE_F_PID_FILTER : 0) |
		  (env.full_path ? CAPTURE_F_FULL_PATH : 0);
	tracer_reset_reasons(t, h.rst_reasons);
	return capture_create(env.write_path, &h);
}

/* The listeners up before the tracer attached: the kernel gave no event for
 * them. They enter the session as events of their own, and so a capture. */
static void seed_listeners(struct session *s, struct tracer *t)
{
	static struct listen_entry found[256];
	int i, n = 0;

	if (!env.ntgids)
		n = procfs_listeners(0, found, 256);
	for (i = 0; i < env.ntgids && n < 256; i++)
		n += procfs_listeners(env.tgids[i], found + n, 256 - n);
	for (i = 0; i < n; i++) {
		struct owner_event e = { .h.type = EV_LISTEN,
					 .h.ts_ns = now_ns(CLOCK_MONOTONIC),
					 .t = found[i].t,
					 .tgid = found[i].tgid,
					 .up = 1 };

		if (env.port && e.t.lport != env.port)
			continue;
		memcpy(e.comm, found[i].comm, sizeof(e.comm));
		if (env.ntgids)
			tracer_follow_port(t, e.t.lport);
		session_event(s, &e, sizeof(e));
	}
}

#define MAX_SOCKET_OWNERS 4096

/* --level request: the TLS library probes, at start on the traced
 * processes (with no -p, on those that own TCP sockets). */
static struct tls_probes *start_tls_probes(struct tracer *t)
{
	static pid_t owners[MAX_SOCKET_OWNERS];
	struct tls_probes *p;
	int n = env.ntgids;

	if (env.level != LEVEL_REQUEST || !(p = tls_probes_new(t, env.ntgids > 0, env.verbose)))
		return NULL;
	if (!env.ntgids)
		n = procfs_socket_owners(owners, sizeof(owners) / sizeof(owners[0]));
	for (int i = 0; i < n; i++) {
		pid_t pid = env.ntgids ? env.tgids[i] : owners[i];

		if (!tls_probe_process(p, pid, false) && env.verbose)
			fprintf(stderr,
				"katrace: pid %d: no OpenSSL to probe (SSL_write not found)\n",
				pid);
	}
	return p;
}

/* Said once per process: its TLS requests cannot be named. */
static void note_sealed(struct live *l, const struct owner_seen *o)
{
	if (l->nsealed == MAX_SEALED_NOTES)
		return;
	for (int i = 0; i < l->nsealed; i++)
		if (l->sealed[i] == o->tgid)
			return;
	l->sealed[l->nsealed++] = o->tgid;
	fprintf(stderr,
		"katrace: note: %.16s[%u]: its TLS library cannot be probed (no OpenSSL "
		"SSL_write in its executable or a libssl it maps: Go, BoringSSL, stripped): "
		"its requests inside TLS are counted, not named\n",
		o->comm, o->tgid);
}

/* The owners of connections seen since the last turn: their TLS library
 * probed from now on. */
static void probe_owners(struct live *l)
{
	struct owner_seen o[OWNERS_FRESH];
	int n = session_take_owners(l->s, o, OWNERS_FRESH);

	for (int i = 0; i < n; i++)
		if (!tls_probe_process(l->tls, o[i].tgid, o[i].sealed) && o[i].sealed)
			note_sealed(l, &o[i]);
}

/* Set-up: the tracer attached, the capture and endpoint open, signals
 * caught. -1 after saying why. */
static int start_live(struct live *l)
{
	struct tracer_opts o = {
		.tgids = env.tgids,
		.ntgids = env.ntgids,
		.port = env.port,
		.max_conns = env.max_conns,
		.btf_path = env.btf_path,
		.verbose = env.verbose,
		.cgroup_id = env.cgroup_id,
		.level = env.level,
	};
	char reasons[MAX_RST_REASONS][RST_REASON_LEN];

	l->t = tracer_open(&o, session_event, l->s);
	if (!l->t)
		return -1;
	l->tls = start_tls_probes(l->t);
	if (env.verbose)
		kernel_features_print(stderr, tracer_features(l->t));
	tracer_reset_reasons(l->t, reasons);
	session_set_reset_reasons(l->s, (const char(*)[RST_REASON_LEN])reasons);
	if (tracer_fallbacks(l->t))
		fprintf(stderr, "katrace: note: %s\n", tracer_fallbacks(l->t));
	if (env.write_path && !(l->cap = open_capture(l->t)))
		return -1;
	session_record_to(l->s, l->cap);
	for (int i = 0; i < env.ntgids; i++)
		session_follow(l->s, env.tgids[i]);
	seed_listeners(l->s, l->t);
	if (env.metrics_addr && !(l->metrics = endpoint_open(env.metrics_addr, "/metrics",
							     "text/plain; version=0.0.4")))
		return -1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (env.duration_s > 0)
		l->deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(env.duration_s * 1e9);
	fprintf(stderr, "katrace: tracing%s%s, %s; %s\n",
		env.ntgids	? " the given processes" :
		env.cgroup_path ? " the cgroup " :
				  " every TCP connection",
		env.cgroup_path && !env.ntgids ? env.cgroup_path : "",
		env.level == LEVEL_CONN ? "per connection" : "per request",
		env.daemon ? "SIGTERM stops, SIGHUP reopens the log, SIGUSR1 logs a summary" :
			     "Ctrl-C to stop");
	return 0;
}

/* What the signals asked for: a summary, the log reopened. */
static void handle_requests(struct live *l)
{
	struct run_counters n;
	FILE *f;

	if (summary_wanted) {
		summary_wanted = 0;
		run_counters(l->s, l->t, &n);
		session_summary(l->s, &n);
	}
	if (reopen_wanted) {
		reopen_wanted = 0;
		if (env.log_path && (f = open_log(env.log_path))) {
			fclose(session_log(l->s));
			session_set_log(l->s, f);
		}
	}
}

/* Every half second: drops so far, and whether the traced processes live.
 * The kernel closes a dead process's sockets: give their events time to
 * arrive. */
static void check_health(struct live *l, uint64_t now)
{
	uint64_t drops = tracer_counter(l->t, CNT_DROPPED);

	if (now - l->last_check < 500000000ULL)
		return;
	l->last_check = now;
	if (drops > l->drops_seen) {
		l->drops_seen = drops;
		fprintf(stderr, "katrace: warning: %llu events dropped so far (ring buffer full)\n",
			(unsigned long long)drops);
	}
	if (env.ntgids && !targets_alive(l->s)) {
		fprintf(stderr, "katrace: every traced process has exited; stopping\n");
		l->drain_until = now + 300000000ULL;
	}
}

/* GET /metrics: the run's counters as they are now, and the session's. */
static int render_metrics(void *ctx, FILE *f)
{
	struct live *l = ctx;
	struct run_counters n;

	run_counters(l->s, l->t, &n);
	metrics_render(f, l->s, &n);
	return 0;
}

/* One turn of the event loop; false when the run is over. */
static bool tick(struct live *l)
{
	struct pollfd pfd[1 + ENDPOINT_POLLFDS] = { { .fd = tracer_fd(l->t), .events = POLLIN } };
	int npfd = 1 + (l->metrics ? endpoint_pollfds(l->metrics, pfd + 1) : 0);
	struct run_counters n;
	uint64_t now;
	int err;

	if (poll(pfd, npfd, 100) < 0 && errno != EINTR) {
		fprintf(stderr, "katrace: poll failed: %s\n", strerror(errno));
		return false;
	}
	err = tracer_consume(l->t);
	if (err < 0 && err != -EINTR) {
		fprintf(stderr, "katrace: ring buffer read failed: %s\n", strerror(-err));
		return false;
	}
	if (l->metrics)
		endpoint_serve(l->metrics, pfd + 1, npfd - 1, now_ns(CLOCK_MONOTONIC) / 1000000,
			       render_metrics, l);
	handle_requests(l);
	if (l->tls) /* a successor's library too, before it is said to be followed */
		probe_owners(l);
	if (env.ntgids) /* before the new process's connections end */
		follow_successors(l->t, l->s);
	now = now_ns(CLOCK_MONOTONIC);
	session_tick(l->s, now);
	if (env.metrics_file && now - l->last_metrics >= METRICS_FILE_PERIOD_NS) {
		l->last_metrics = now;
		run_counters(l->s, l->t, &n);
		metrics_write_file(env.metrics_file, l->s, &n);
	}
	if (l->deadline && now >= l->deadline)
		return false;
	if (l->drain_until)
		return now < l->drain_until;
	check_health(l, now);
	return true;
}

/* Tear-down: what is left in the ring buffer, the summary, the capture's
 * end record, the last metrics file. Returns the exit status. */
static int finish_live(struct live *l)
{
	struct run_counters n;
	int err = 0;

	tracer_poll(l->t, 0);
	if (l->tls)
		probe_owners(l);
	session_finish(l->s);
	run_counters(l->s, l->t, &n);
	session_summary(l->s, &n);
	if (l->cap) {
		struct capture_end end = {
			.h.type = EV_CAPTURE_END,
			.h.ts_ns = session_last_ts(l->s),
			.events = n.events,
			.dropped = n.dropped,
			.table_full = n.table_full,
		};

		session_record_to(l->s, NULL);
		err = capture_close(l->cap, &end) ? 1 : 0;
		l->cap = NULL;
	}
	print_totals(&n);
	if (env.metrics_file)
		metrics_write_file(env.metrics_file, l->s, &n);
	return err;
}

static void close_live(struct live *l)
{
	endpoint_close(l->metrics);
	tls_probes_free(l->tls);
	tracer_close(l->t);
}

/* What the run traced, in words, for the report's heading. */
static void source_text(char *buf, size_t len)
{
	size_t n;
	int i;

	if (env.report_path) {
		snprintf(buf, len, "Replayed from the capture %s.", env.report_path);
		return;
	}
	n = snprintf(buf, len, "Traced live: %s", env.ntgids ? "pid" : "every TCP connection");
	for (i = 0; i < env.ntgids && n < len; i++)
		n += snprintf(buf + n, len - n, " %d",
			      env.tgids[i] > 0 ? env.tgids[i] : -env.tgids[i]);
	if (env.port && n < len)
		n += snprintf(buf + n, len - n, ", port %u", env.port);
	if (n < len)
		snprintf(buf + n, len - n, ", at --level %s.",
			 env.level == LEVEL_CONN ? "conn" : "request");
}

/* --html: opened before tracing, so that a path it cannot write fails at once. */
static int write_html(FILE *f, const struct session *s)
{
	char source[512];
	int err;

	source_text(source, sizeof(source));
	err = html_report(f, session_analysis(s), source);
	if (fclose(f) || err) {
		fprintf(stderr, "katrace: cannot write %s: %s\n", env.html_path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "katrace: report written to %s\n", env.html_path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct argp argp = { opts, parse_arg, NULL, doc, NULL, NULL, NULL };
	struct live l = {};
	FILE *log, *html = NULL;
	int err;

	if (argc > 1 && !strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return 1;
	wall_offset_ns = (int64_t)(now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC));
	if (env.html_path && !(html = fopen(env.html_path, "we"))) {
		fprintf(stderr, "katrace: cannot write %s: %s\n", env.html_path, strerror(errno));
		return 1;
	}
	l.s = open_session();
	if (!l.s)
		return 1;
	if (env.report_path) {
		err = report(l.s);
	} else if (start_live(&l)) {
		err = 1;
	} else {
		while (!stop_signal && tick(&l))
			;
		err = finish_live(&l);
	}
	if (html && !err) {
		err = write_html(html, l.s);
	} else if (html) { /* no run, no report */
		fclose(html);
		unlink(env.html_path);
	}
	close_live(&l);
	log = session_log(l.s);
	if (log != stdout)
		fclose(log);
	session_free(l.s);
	return err;
}
