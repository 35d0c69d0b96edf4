// SPDX-License-Identifier: GPL-2.0
/*
 * katrace check: opens real keep-alive connections to a service, sends a
 * request on each and watches, with the tracer (kernel timestamps, FIN or
 * RST, which side), when the service closes the idle connection. Without
 * BPF it measures from its own socket and says so.
 */
#define _GNU_SOURCE
#include <argp.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "advice.h"
#include "args.h"
#include "check.h"
#include "html.h"
#include "output.h"
#include "loader.h"
#include "session.h"

#define CLOSED_AFTER_RESPONSE_MS 50.0 /* sooner than this: no keep-alive at all */
#define MAX_REPEAT		 64
#define STR(x)			 STR_(x)
#define STR_(x)			 #x

static struct {
	const char *target;
	char host[256], port_s[8];
	uint16_t port;
	double lb_s, margin_s;
	const char *lb_name;
	const char *path, *method, *spawn, *junit;
	int repeat;
	bool json;
} opt = { .lb_s = -1, .margin_s = 5, .path = "/", .method = "GET" };

enum {
	OPT_TARGET = 2000,
	OPT_LB_IDLE,
	OPT_MARGIN,
	OPT_PATH,
	OPT_METHOD,
	OPT_REPEAT,
	OPT_LB,
	OPT_SPAWN,
	OPT_JSON,
	OPT_JUNIT
};

static const struct argp_option options[] = {
	{ "target", OPT_TARGET, "HOST:PORT", 0, "The service to check", 0 },
	{ "lb-idle-timeout", OPT_LB_IDLE, "DURATION", 0,
	  "The load balancer's idle timeout (60s, 500ms, 1m)", 0 },
	{ "lb", OPT_LB, "NAME", 0,
	  "A load balancer's default idle timeout: aws-alb gcp azure nginx haproxy envoy cloudflare",
	  0 },
	{ "margin", OPT_MARGIN, "DURATION", 0,
	  "How much longer the service must keep idle connections (default 5s)", 0 },
	{ "path", OPT_PATH, "PATH", 0, "Request path (default /)", 0 },
	{ "method", OPT_METHOD, "METHOD", 0, "Request method (default GET)", 0 },
	{ "repeat", OPT_REPEAT, "N", 0,
	  "Also send N requests after idling just below the LB timeout", 0 },
	{ "spawn", OPT_SPAWN, "CMD", 0, "Start CMD (sh -c), wait for the port, stop it afterwards",
	  0 },
	{ "json", OPT_JSON, NULL, 0, "The result as one JSON object", 0 },
	{ "junit", OPT_JUNIT, "FILE", 0, "Also write the result as JUnit XML", 0 },
	{},
};

double parse_duration(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "ms"))
		return v / 1000;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	return -1;
}

/* --target HOST:PORT, [IPV6]:PORT */
static void parse_target(const char *arg, struct argp_state *st)
{
	const char *colon = strrchr(arg, ':');

	opt.target = arg;
	if (!colon || colon == arg || !colon[1] || strlen(colon + 1) >= sizeof(opt.port_s) ||
	    (size_t)(colon - arg) >= sizeof(opt.host))
		argp_error(st, "--target wants HOST:PORT, got '%s'", arg);
	snprintf(opt.host, sizeof(opt.host), "%.*s", (int)(colon - arg), arg);
	if (opt.host[0] == '[' && opt.host[strlen(opt.host) - 1] == ']') { /* [::1]:8080 */
		memmove(opt.host, opt.host + 1, strlen(opt.host));
		opt.host[strlen(opt.host) - 1] = 0;
	}
	snprintf(opt.port_s, sizeof(opt.port_s), "%s", colon + 1);
	opt.port = parse_num(opt.port_s, 1, 65535, "--target port", st);
}

/* One case per option: as long as the option list. */
static error_t parse_opt(int key, char *arg, struct argp_state *st)
{
	const struct lb_default *lb;

	switch (key) {
	case OPT_TARGET:
		parse_target(arg, st);
		break;
	case OPT_LB_IDLE:
		opt.lb_s = parse_duration(arg);
		if (opt.lb_s <= 0)
			argp_error(st, "invalid --lb-idle-timeout: '%s'", arg);
		break;
	case OPT_LB:
		lb = lb_by_preset(arg);
		if (!lb)
			argp_error(
				st,
				"unknown --lb '%s' (aws-alb gcp azure nginx haproxy envoy cloudflare)",
				arg);
		opt.lb_s = lb->idle_s;
		opt.lb_name = lb->name;
		break;
	case OPT_MARGIN:
		opt.margin_s = parse_duration(arg);
		if (opt.margin_s < 0)
			argp_error(st, "invalid --margin: '%s'", arg);
		break;
	case OPT_PATH:
		if (arg[0] != '/' || strpbrk(arg, " \r\n"))
			argp_error(st, "--path must start with / and hold no spaces");
		opt.path = arg;
		break;
	case OPT_METHOD:
		opt.method = arg;
		break;
	case OPT_REPEAT:
		opt.repeat =
			parse_num(arg, 0, MAX_REPEAT, "--repeat (0 to " STR(MAX_REPEAT) ")", st);
		break;
	case OPT_SPAWN:
		opt.spawn = arg;
		break;
	case OPT_JSON:
		opt.json = true;
		break;
	case OPT_JUNIT:
		opt.junit = arg;
		break;
	case ARGP_KEY_ARG:
		if (st->arg_num == 0 && !strcmp(arg, "check"))
			break;
		argp_error(st, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (!opt.target)
			argp_error(st, "--target HOST:PORT is required");
		if (opt.lb_s < 0)
			argp_error(st, "give --lb-idle-timeout DURATION or --lb NAME");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the result ---- */

struct result {
	int status;	  /* 0 pass, 1 fail, 2 could not check */
	char reason[512]; /* exit 2: why */
	bool kernel;	  /* timed by the tracer, else by the client socket */
	char fallback_why[256];
	bool server_closed;
	const char *close_kind; /* "FIN" or "RST" */
	double idle_s;		/* when the server closed, idle since the response */
	char server_comm[TASK_COMM_LEN + 1];
	int repeat_ok, repeat_failed;
	double repeat_gap_s;
	double elapsed_s;
	char fix[512];
};

__attribute__((format(printf, 2, 3))) static int cannot(struct result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->status = 2;
	return 2;
}

/* ---- talking to the service ---- */

static int connect_target(struct result *r, double timeout_s)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int fd = -1, err;

	err = getaddrinfo(opt.host, opt.port_s, &hints, &ai);
	if (err) {
		cannot(r, "cannot resolve %s: %s", opt.host, gai_strerror(err));
		return -1;
	}
	for (a = ai; a; a = a->ai_next) {
		struct timeval tv = { (time_t)timeout_s, (suseconds_t)(fmod(timeout_s, 1) * 1e6) };

		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (!connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		cannot(r, "cannot connect to %s: %s", opt.target, strerror(errno));
	return fd;
}

static bool header_has(const char *head, const char *name, const char *value)
{
	const char *p = head;
	size_t n = strlen(name);

	while ((p = strchr(p, '\n'))) {
		p++;
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ')
				v++;
			if (!value || !strncasecmp(v, value, strlen(value)))
				return true;
		}
	}
	return false;
}

/* The rest of a body after the head: need bytes (Content-Length), or up to
 * the last chunk (need < 0: chunked). buf holds the have bytes already read.
 * 0, or 2. */
static int read_body(int fd, struct result *r, char *buf, size_t size, size_t have, long need)
{
	ssize_t n;

	if (need >= 0) {
		for (long left = need - (long)have; left > 0; left -= n) {
			n = recv(fd, buf, size, 0);
			if (n <= 0)
				return cannot(
					r, "%s closed the connection in the middle of a response",
					opt.target);
		}
		return 0;
	}
	while (!memmem(buf, have, "0\r\n\r\n", 5)) {
		if (have > size / 2) {
			memmove(buf, buf + have - 8, 8);
			have = 8;
		}
		n = recv(fd, buf + have, size - have, 0);
		if (n <= 0)
			return cannot(r, "%s closed the connection in the middle of a response",
				      opt.target);
		have += n;
	}
	return 0;
}

/* Reads up to the end of a response's head into buf; returns where the
 * head's blank line starts, or NULL with r->reason set (*have: bytes read). */
static char *read_head(int fd, struct result *r, char *buf, size_t size, size_t *have)
{
	struct http_msg m;
	size_t used;
	char *body;
	ssize_t n;

	while (!(body = memmem(buf, *have, "\r\n\r\n", 4))) {
		n = *have < size - 1 ? recv(fd, buf + *have, size - 1 - *have, 0) : 0;
		if (n <= 0) {
			if (*have &&
			    http_parse((uint8_t *)buf, *have, false, &m, &used) != HTTP_RESPONSE)
				break;
			cannot(r, "%s answered no HTTP response (%s)", opt.target,
			       n == 0 ? "it closed the connection" : strerror(errno));
			return NULL;
		}
		*have += n;
		buf[*have] = 0;
		if (*have >= 12 &&
		    http_parse((uint8_t *)buf, *have, false, &m, &used) != HTTP_RESPONSE)
			break;
	}
	if (http_parse((uint8_t *)buf, *have, false, &m, &used) != HTTP_RESPONSE || !body) {
		cannot(r, "%s does not speak HTTP/1.x: its answer starts with no status line",
		       opt.target);
		return NULL;
	}
	return body;
}

/* One request and its whole response. 0, or 2 with r->reason set. */
static int exchange(int fd, struct result *r)
{
	char req[1024], buf[65536], *body;
	size_t have = 0;
	long need;
	ssize_t n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: katrace-check\r\n"
		     "Content-Length: 0\r\n\r\n",
		     opt.method, opt.path, opt.host);
	if (send(fd, req, n, MSG_NOSIGNAL) != n)
		return cannot(r, "cannot send to %s: %s", opt.target, strerror(errno));
	body = read_head(fd, r, buf, sizeof(buf), &have);
	if (!body)
		return 2;
	*body = 0;
	if (header_has(buf, "Connection", "close") ||
	    (!strncmp(buf, "HTTP/1.0", 8) && !header_has(buf, "Connection", "keep-alive")))
		return cannot(r,
			      "%s closes the connection after every response (Connection: close): "
			      "there is no idle keep-alive connection to check",
			      opt.target);
	if (header_has(buf, "Transfer-Encoding", "chunked")) {
		need = -2;
	} else {
		const char *cl = strcasestr(buf, "\ncontent-length:");

		need = cl ? atol(cl + 16) : -1;
	}
	if (need == -1)
		return cannot(
			r,
			"%s answers without Content-Length or chunked encoding: the connection "
			"cannot be kept alive",
			opt.target);
	have -= (body + 4) - buf;
	memmove(buf, body + 4, have);
	return read_body(fd, r, buf, sizeof(buf), have, need);
}

/* ---- spawning the service ---- */

static pid_t spawned;

static void stop_spawned(void)
{
	int i;

	if (spawned <= 0)
		return;
	kill(-spawned, SIGTERM);
	for (i = 0; i < 50 && waitpid(spawned, NULL, WNOHANG) == 0; i++)
		usleep(100000);
	if (i == 50) {
		kill(-spawned, SIGKILL);
		waitpid(spawned, NULL, 0);
	}
	spawned = 0;
}

static int spawn_and_wait(struct result *r)
{
	double deadline = now_s() + 30;
	int status;

	spawned = fork();
	if (spawned < 0)
		return cannot(r, "cannot fork: %s", strerror(errno));
	if (!spawned) {
		setpgid(0, 0);
		dup2(2, 1); /* its chatter must not mix with our --json */
		execl("/bin/sh", "sh", "-c", opt.spawn, (char *)NULL);
		_exit(127);
	}
	setpgid(spawned, spawned);
	while (now_s() < deadline) {
		struct result probe = {};
		int fd;

		if (waitpid(spawned, &status, WNOHANG) == spawned) {
			spawned = 0;
			return cannot(r,
				      "the spawned command exited (status %d) before %s accepted "
				      "connections",
				      WIFEXITED(status) ? WEXITSTATUS(status) : -1, opt.target);
		}
		fd = connect_target(&probe, 1);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		usleep(100000);
	}
	return cannot(r, "nothing accepted connections on %s within 30 s of --spawn", opt.target);
}

/* ---- the check ---- */

struct found {
	uint16_t client_port;
	const struct conn *client, *server;
	const struct http_state *client_http;
};

static void match(const struct conn *c, const struct http_state *h, void *arg)
{
	struct found *f = arg;

	if (c->closed_by == CLOSED_NONE)
		return;
	if (c->t.lport == f->client_port && c->role == ROLE_CLIENT) {
		f->client = c;
		f->client_http = h;
	} else if (c->t.rport == f->client_port && c->role == ROLE_SERVER) {
		f->server = c;
	}
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
}

static void check_fix(struct result *r)
{
	const struct software *sw = software_by_comm(r->server_comm);
	double want = ceil(opt.lb_s + opt.margin_s);
	size_t n;

	n = snprintf(r->fix, sizeof(r->fix),
		     "keep idle connections open at least %.0f s (the load "
		     "balancer's %.0f s plus the %.0f s margin)",
		     want, opt.lb_s, opt.margin_s);
	if (sw && n < sizeof(r->fix))
		n += snprintf(r->fix + n, sizeof(r->fix) - n, "; %s: ", sw->name);
	if (sw && n < sizeof(r->fix))
		software_setting(sw, want, r->fix + n, sizeof(r->fix) - n);
}

/* A request on each idle --repeat connection: answered, or not. Returns 0,
 * the connections left. */
static int send_repeats(struct result *r, const int *fds, int n, useconds_t pause_us)
{
	for (int i = 0; i < n; i++) {
		struct result rr = {};

		if (pause_us)
			usleep(pause_us);
		if (exchange(fds[i], &rr))
			r->repeat_failed++;
		else
			r->repeat_ok++;
		close(fds[i]);
	}
	return 0;
}

/* The connection to watch and the --repeat ones, each after one
 * exchange. 0, or 2 with r->reason set. */
static int open_conns(struct result *r, int *fd, int *repeat_fd, int *nrep)
{
	*fd = connect_target(r, 5);
	if (*fd < 0)
		return 2;
	if (exchange(*fd, r)) {
		close(*fd);
		return 2;
	}
	for (*nrep = 0; *nrep < opt.repeat; (*nrep)++) {
		int rfd = connect_target(r, 5);

		if (rfd < 0 || exchange(rfd, r)) {
			if (rfd >= 0)
				close(rfd);
			while (*nrep > 0)
				close(repeat_fd[--*nrep]);
			close(*fd);
			return 2;
		}
		repeat_fd[*nrep] = rfd;
	}
	return 0;
}

/* Waits, as long as the LB plus margin, for the server to close the idle
 * connection fd, sending the --repeat requests just below the LB timeout
 * (the LB would still reuse the connection then). 0, or 2. */
static int watch_idle(struct result *r, struct tracer *t, int fd, int *repeat_fd, int nrep,
		      double t_resp)
{
	double deadline = t_resp + opt.lb_s + opt.margin_s, t_repeat;

	r->repeat_gap_s = fmax(opt.lb_s * 0.9, opt.lb_s - 1);
	t_repeat = now_s() + r->repeat_gap_s;
	while (now_s() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		double t_close;
		char byte;

		if (t)
			tracer_poll(t, 0);
		if (nrep && now_s() >= t_repeat)
			nrep = send_repeats(r, repeat_fd, nrep, 0);
		if (poll(&p, 1, 50) <= 0)
			continue;
		t_close = now_s();
		if (recv(fd, &byte, 1, MSG_DONTWAIT) > 0)
			return cannot(r, "%s sent data nobody asked for on an idle connection",
				      opt.target);
		r->server_closed = true;
		r->close_kind = errno == ECONNRESET ? "RST" : "FIN";
		r->idle_s = t_close - t_resp;
		break;
	}
	if (nrep) /* the server closed first: send them now, they show it */
		send_repeats(r, repeat_fd, nrep, 1000);
	return 0;
}

/* The kernel's stamps for the close, and the server's process if it is
 * local, from what the tracer saw of our connection. */
static void use_kernel_view(struct result *r, struct session *s, struct tracer *t,
			    uint16_t client_port)
{
	struct found f = { .client_port = client_port };
	double until = now_s() + 0.3;

	while (now_s() < until)
		tracer_poll(t, 50);
	session_each_conn(s, match, &f);
	if (f.client && r->server_closed && f.client->close_ns &&
	    (f.client->closed_by == CLOSED_PEER_FIN || f.client->closed_by == CLOSED_PEER_RST)) {
		r->idle_s = span_ms(conn_idle_since(f.client, f.client_http), f.client->close_ns) /
			    1000;
		r->close_kind = f.client->closed_by == CLOSED_PEER_RST ? "RST" : "FIN";
	} else if (r->server_closed) {
		r->kernel = false;
		snprintf(r->fallback_why, sizeof(r->fallback_why),
			 "the tracer saw no close for this connection");
	}
	if (f.server)
		snprintf(r->server_comm, sizeof(r->server_comm), "%.*s", TASK_COMM_LEN,
			 f.server->comm);
}

/* The spawned service's name, when the tracer could not tell it. */
static void spawned_comm(struct result *r)
{
	char path[64];
	FILE *c;

	snprintf(path, sizeof(path), "/proc/%d/comm", spawned);
	c = fopen(path, "r");
	if (c && fgets(r->server_comm, sizeof(r->server_comm), c))
		r->server_comm[strcspn(r->server_comm, "\n")] = 0;
	if (c)
		fclose(c);
}

static int run_check(struct result *r)
{
	struct tracer_opts topts = { .port = opt.port, .max_conns = 4096, .quiet = true };
	struct session_opts sopts = { .max_conns = 4096, .margin_ms = opt.margin_s * 1000 };
	int repeat_fd[MAX_REPEAT], nrep = 0, fd;
	struct tracer *t = NULL;
	struct session *s;
	uint16_t client_port;
	double t_resp;

	sopts.out.f = fopen("/dev/null", "w");
	s = sopts.out.f ? session_new(&sopts) : NULL;
	if (!s)
		return cannot(r, "out of memory");
	if (opt.spawn && spawn_and_wait(r))
		goto out;
	t = tracer_open(&topts, session_event, s);
	r->kernel = t != NULL;
	if (!t)
		snprintf(r->fallback_why, sizeof(r->fallback_why), "%s", tracer_error());
	if (open_conns(r, &fd, repeat_fd, &nrep))
		goto out;
	t_resp = now_s();
	client_port = local_port(fd);
	if (watch_idle(r, t, fd, repeat_fd, nrep, t_resp)) {
		close(fd);
		goto out;
	}
	close(fd);
	if (t)
		use_kernel_view(r, s, t, client_port);
	if (!r->server_comm[0] && spawned > 0)
		spawned_comm(r);
	if (r->server_closed && r->idle_s * 1000 < CLOSED_AFTER_RESPONSE_MS) {
		cannot(r,
		       "%s closed the connection %.1f ms after the response: it does not keep "
		       "connections alive",
		       opt.target, r->idle_s * 1000);
		goto out;
	}
	r->status = r->server_closed || r->repeat_failed ? 1 : 0;
	if (r->status)
		check_fix(r);
out:
	tracer_close(t);
	stop_spawned();
	fclose(session_log(s));
	session_free(s);
	return r->status;
}

/* ---- reporting ---- */

static void describe(const struct result *r, char *out, size_t len)
{
	size_t n;

	if (r->status == 2) {
		snprintf(out, len, "could not check: %s", r->reason);
		return;
	}
	if (r->server_closed)
		n = snprintf(out, len,
			     "%s closed an idle keep-alive connection after %.3f s (%s), "
			     "%s the load balancer's %.3f s plus the %.3f s margin",
			     opt.target, r->idle_s, r->close_kind,
			     r->idle_s < opt.lb_s ? "before" : "within", opt.lb_s, opt.margin_s);
	else
		n = snprintf(out, len,
			     "%s kept an idle keep-alive connection open past the load "
			     "balancer's %.3f s plus the %.3f s margin",
			     opt.target, opt.lb_s, opt.margin_s);
	if (opt.repeat && n < len)
		n += snprintf(out + n, len - n,
			      "; requests after %.1f s idle: %d answered, %d failed",
			      r->repeat_gap_s, r->repeat_ok, r->repeat_failed);
}

static void print_json(const struct result *r, const char *what)
{
	printf("{\"type\":\"check\",\"target\":");
	json_string(stdout, opt.target);
	printf(",\"result\":\"%s\",\"exit\":%d,\"lb_idle_timeout_s\":%.3f,\"margin_s\":%.3f",
	       r->status == 0 ? "pass" :
	       r->status == 1 ? "fail" :
				"error",
	       r->status, opt.lb_s, opt.margin_s);
	printf(",\"measured_by\":\"%s\",\"server_closed\":%s,\"server_idle_timeout_s\":",
	       r->kernel ? "kernel" : "client-socket", r->server_closed ? "true" : "false");
	if (r->server_closed)
		printf("%.4f,\"closed_with\":\"%s\"", r->idle_s, r->close_kind);
	else
		printf("null,\"closed_with\":null");
	printf(",\"server_comm\":");
	json_string_or_null(stdout, r->server_comm);
	if (opt.repeat)
		printf(",\"repeat\":{\"idle_s\":%.3f,\"answered\":%d,\"failed\":%d}",
		       r->repeat_gap_s, r->repeat_ok, r->repeat_failed);
	fputs(",\"message\":", stdout);
	json_string(stdout, what);
	fputs(",\"fix\":", stdout);
	json_string_or_null(stdout, r->fix);
	if (!r->kernel && r->status != 2) {
		fputs(",\"fallback\":", stdout);
		json_string(stdout, r->fallback_why);
	}
	fputs("}\n", stdout);
}

static void print_text(const struct result *r, const char *what)
{
	if (!r->kernel && r->status != 2)
		printf("katrace check: BPF unavailable (%s): measured from the client socket\n",
		       r->fallback_why);
	printf("katrace check: %s: %s\n",
	       r->status == 0 ? "PASS" :
	       r->status == 1 ? "FAIL" :
				"ERROR",
	       what);
	if (r->fix[0])
		printf("katrace check: fix: %s\n", r->fix);
}

static void write_junit(const struct result *r, const char *what)
{
	FILE *f = fopen(opt.junit, "w");

	if (!f) {
		fprintf(stderr, "katrace check: cannot write %s: %s\n", opt.junit, strerror(errno));
		return;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuite name=\"katrace check\" tests=\"1\" failures=\"%d\" errors=\"%d\" time=\"%.3f\">\n"
		"  <testcase classname=\"katrace.check\" name=\"",
		r->status == 1, r->status == 2, r->elapsed_s);
	fprintf(f, "idle keep-alive timeout of ");
	markup_text(f, opt.target);
	fprintf(f, " exceeds the load balancer's %.3f s by %.3f s\" time=\"%.3f\">\n", opt.lb_s,
		opt.margin_s, r->elapsed_s);
	if (r->status) {
		fprintf(f, "    <%s message=\"", r->status == 1 ? "failure" : "error");
		markup_text(f, what);
		fprintf(f, "\">");
		if (r->fix[0]) {
			fputs("fix: ", f);
			markup_text(f, r->fix);
		}
		fprintf(f, "</%s>\n", r->status == 1 ? "failure" : "error");
	}
	fprintf(f, "    <system-out>");
	markup_text(f, what);
	fprintf(f, " (measured from the %s)</system-out>\n  </testcase>\n</testsuite>\n",
		r->kernel ? "kernel" : "client socket");
	fclose(f);
}

static void print_result(const struct result *r)
{
	char what[768];

	describe(r, what, sizeof(what));
	if (opt.json)
		print_json(r, what);
	else
		print_text(r, what);
	fflush(stdout);
	if (opt.junit)
		write_junit(r, what);
}

int check_main(int argc, char **argv)
{
	static const struct argp argp = {
		options,
		parse_opt,
		NULL,
		"katrace check: does a service keep idle keep-alive connections open longer than "
		"its load balancer? Exit 0: yes; 1: no; 2: the check could not be made.\n\n"
		"EXAMPLES:\n"
		"    katrace check --target 127.0.0.1:8080 --lb aws-alb\n"
		"    katrace check --target 127.0.0.1:3000 --lb-idle-timeout 60s --margin 5s "
		"--spawn 'node server.js' --junit report.xml",
		NULL,
		NULL,
		NULL
	};
	struct result r = {};
	double t0 = now_s();

	if (argp_parse(&argp, argc, argv, 0, NULL, NULL))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	run_check(&r);
	r.elapsed_s = now_s() - t0;
	print_result(&r);
	return r.status;
}
