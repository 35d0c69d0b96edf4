/* The join and the analyzer, on synthetic event streams and on captures
 * recorded from race-lab runs (tests/fixtures): no root, no BPF. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "capture.h"
#include "html.h"
#include "unit.h"
#include "session.h"

#define MS 1000000ULL

static struct session *new_session(void)
{
	struct session_opts o = { .max_conns = 65536, .margin_ms = 5000, .timeline = true };

	o.out.f = fopen("/dev/null", "w");
	return session_new(&o);
}

static void free_session(struct session *s)
{
	fclose(session_log(s));
	session_free(s);
}

static uint64_t lost_requests(const struct session *s)
{
	struct run_counters n;

	session_counters(s, &n);
	return n.lost_requests;
}

/* An accepted (role server) or connected (client) HTTP connection with
 * `reqs` exchanges, `gap_ms` apart, closed idle_ms after the last response
 * by `by`, as the kernel reports it when the socket is freed. Times in ms
 * from t0. */
static void http_conn(struct session *s, uint64_t sk, int role, uint16_t lport, uint16_t rport,
		      uint64_t t0, int reqs, double gap_ms, double idle_ms, int by)
{
	static const char req[] = "GET /item HTTP/1.1\r\nHost: x\r\n\r\n";
	struct conn_event e = { .h.type = EV_DESTROY };
	uint64_t t = t0 * MS + (uint64_t)((reqs - 1) * gap_ms * MS);

	e.c.sk = sk;
	e.c.role = role;
	e.c.tgid = 42;
	strcpy(e.c.comm, role == ROLE_SERVER ? "node" : "haproxy");
	e.c.t.family = AF_INET;
	e.c.t.lport = lport;
	e.c.t.rport = rport;
	inet_pton(AF_INET, "127.0.0.1", e.c.t.laddr);
	inet_pton(AF_INET, "10.0.0.9", e.c.t.raddr);
	e.c.start_ns = t0 * MS - MS;
	e.c.http.requests = e.c.http.responses = reqs;
	e.c.http.req_dir = role == ROLE_SERVER ? DIR_IN : DIR_OUT;
	e.c.http.last_status = 200;
	e.c.http.last_request_ns = t;
	e.c.http.last_response_ns = t + MS / 2;
	e.c.http.max_reuse_gap_ns = reqs > 1 ? (uint64_t)((gap_ms - 0.5) * MS) : 0;
	e.c.http.req_len = sizeof(req) - 1;
	memcpy(e.c.http.last_req, req, sizeof(req) - 1);
	if (role == ROLE_SERVER) {
		e.c.last_recv_ns = t;
		e.c.last_send_ns = t + MS / 2;
	} else {
		e.c.last_send_ns = t;
		e.c.last_recv_ns = t + MS / 2;
	}
	e.c.close_ns = t + MS / 2 + (uint64_t)(idle_ms * MS);
	e.c.closed_by = by;
	e.h.ts_ns = e.c.close_ns + MS;
	session_event(s, &e, sizeof(e));
}

static const struct service *find(const struct session *s, const char *name)
{
	for (int i = 0; i < session_analysis(s)->n; i++)
		if (!strcmp(session_analysis(s)->svc[i].name, name))
			return &session_analysis(s)->svc[i];
	return NULL;
}

static void one_close_only(void)
{
	struct session *s = new_session();
	const struct service *svc;
	struct verdict v;

	http_conn(s, 1, ROLE_SERVER, 8080, 5000, 1000, 1, 0, 1201.3, CLOSED_LOCAL_FIN);
	svc = find(s, ":8080");
	CHECK(svc && svc->backend.n == 1, "service");
	/* the terminal histogram's slot: [1024, 2048) ms */
	CHECK(svc->backend.log2_ms[10] == 1 && svc->backend.log2_ms[9] == 0 &&
		      svc->backend.log2_ms[11] == 0,
	      "log2 slots");
	analyze_verdict(session_analysis(s), svc, &v);
	CHECK(v.backend.found && v.backend.count == 1 && fabs(v.backend.value_ms - 1201.3) < 0.01,
	      "%f", v.backend.value_ms);
	CHECK(v.kind == VERDICT_INSUFFICIENT, "%s: %s", verdict_name(v.kind), v.why);
	free_session(s);
}

static void clock_ties(void)
{
	struct session *s = new_session();
	struct verdict v;
	int i;

	for (i = 0; i < 50; i++) /* the same idle time to the nanosecond, same stamps */
		http_conn(s, 100 + i, ROLE_SERVER, 8080, 5000 + i, 1000, 2, 300, 1000.0,
			  CLOSED_LOCAL_FIN);
	analyze_verdict(session_analysis(s), find(s, ":8080"), &v);
	CHECK(v.backend.count == 50 && v.backend.width_ms == 0 &&
		      fabs(v.backend.value_ms - 1000) < 0.01,
	      "%u %f %f", v.backend.count, v.backend.width_ms, v.backend.value_ms);
	free_session(s);
}

static void two_services_at_once(void)
{
	struct session *s = new_session();
	struct verdict a, b;
	int i;

	for (i = 0; i < 20; i++) { /* interleaved */
		http_conn(s, 1000 + i, ROLE_SERVER, 8080, 6000 + i, 1000 + i, 3, 900, 1200 + i % 3,
			  CLOSED_LOCAL_FIN);
		http_conn(s, 2000 + i, ROLE_SERVER, 9090, 7000 + i, 1000 + i, 3, 100, 800 + i % 2,
			  CLOSED_PEER_FIN);
	}
	CHECK(session_analysis(s)->n == 2, "%d services", session_analysis(s)->n);
	analyze_verdict(session_analysis(s), find(s, ":8080"), &a);
	analyze_verdict(session_analysis(s), find(s, ":9090"), &b);
	CHECK(a.backend.found && fabs(a.backend.value_ms - 1201) < 1.5 && !a.peer.found, "8080 %f",
	      a.backend.value_ms);
	/* reused after 0.9 s at most, closed at 1.2 s: the peer's timeout is unknown */
	CHECK(a.kind == VERDICT_INSUFFICIENT && strstr(a.why, "at most 0.90 s"), "8080: %s: %s",
	      verdict_name(a.kind), a.why);
	CHECK(!b.backend.found && b.peer.found && fabs(b.peer.value_ms - 800.5) < 1, "9090 %f",
	      b.peer.value_ms);
	CHECK(b.kind == VERDICT_OK, "9090: %s", verdict_name(b.kind));
	free_session(s);
}

static void peer_never_closes(void)
{
	struct session *s = new_session();
	struct verdict v;
	int i;

	/* the peer reuses connections idle up to 1150 ms, the backend closes at 1200 */
	for (i = 0; i < 30; i++)
		http_conn(s, 1 + i, ROLE_SERVER, 8080, 5000 + i, 1000, 4, 1100.5 + i % 2 * 50, 1200,
			  CLOSED_LOCAL_FIN);
	analyze_verdict(session_analysis(s), find(s, ":8080"), &v);
	CHECK(v.kind == VERDICT_MISMATCH && strstr(v.why, "reused connections idle up to 1.15 s"),
	      "%s: %s", verdict_name(v.kind), v.why);
	CHECK(strstr(v.fix, "server.keepAliveTimeout = 6000"), "%s", v.fix);
	free_session(s);
}

static void margin_decides(void)
{
	static const struct {
		double backend, peer;
		enum verdict_kind want;
	} cases[] = {
		{ 5000, 60000, VERDICT_MISMATCH },  /* Node default behind an ALB */
		{ 60000, 60000, VERDICT_MISMATCH }, /* equal timeouts race too */
		{ 63000, 60000, VERDICT_MISMATCH }, /* under the 5 s margin */
		{ 66000, 60000, VERDICT_OK },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct session *s = new_session();
		struct verdict v;

		/* seen from the proxy: the backend closes some, the proxy others */
		for (int i = 0; i < 10; i++) {
			http_conn(s, 1 + i, ROLE_CLIENT, 40000 + i, 8080, 1000, 2, 10,
				  cases[k].backend, CLOSED_PEER_FIN);
			http_conn(s, 100 + i, ROLE_CLIENT, 41000 + i, 8080, 1000, 2, 10,
				  cases[k].peer, CLOSED_LOCAL_FIN);
		}
		analyze_verdict(session_analysis(s), find(s, "10.0.0.9:8080"), &v);
		CHECK(v.kind == cases[k].want, "backend %.0f peer %.0f: %s: %s", cases[k].backend,
		      cases[k].peer, verdict_name(v.kind), v.why);
		free_session(s);
	}
}

static void nothing_idle(void)
{
	struct session *s = new_session();
	struct verdict v;

	/* closed right after the response: not an idle timeout */
	http_conn(s, 1, ROLE_SERVER, 8080, 5000, 1000, 1, 0, 0.3, CLOSED_PEER_FIN);
	analyze_verdict(session_analysis(s), find(s, ":8080"), &v);
	CHECK(v.kind == VERDICT_INSUFFICIENT && strstr(v.why, "run longer"), "%s", v.why);
	free_session(s);
}

static void many_connections(void)
{
	struct session *s = new_session();
	struct rusage before, after;
	struct verdict v;
	uint32_t i;

	getrusage(RUSAGE_SELF, &before);
	for (i = 0; i < 100000; i++) {
		/* timer jitter of 0-3 ms, and a few clients that leave early */
		double idle = i % 50 ? 5000 + (i * 7919 % 300) / 100.0 : 100 + i % 900;

		http_conn(s, 1 + i, ROLE_SERVER, 8080, 1024 + i % 60000, 1000 + i, 1, 0, idle,
			  i % 50 ? CLOSED_LOCAL_FIN : CLOSED_PEER_FIN);
	}
	getrusage(RUSAGE_SELF, &after);
	analyze_verdict(session_analysis(s), find(s, ":8080"), &v);
	CHECK(v.backend.found && v.backend.value_ms > 5000 && v.backend.value_ms < 5003, "%f",
	      v.backend.value_ms);
	CHECK(find(s, ":8080")->backend.n == 98000, "%llu",
	      (unsigned long long)find(s, ":8080")->backend.n);
	CHECK(session_open_conns(s) == 0, "finished connections must leave the table: %u",
	      session_open_conns(s));
	CHECK(after.ru_maxrss - before.ru_maxrss < 16 * 1024, "grew %ld KiB",
	      after.ru_maxrss - before.ru_maxrss);
	free_session(s);
}

/* ---- recorded race-lab runs ---- */

static int feed(void *ctx, const void *rec, size_t len)
{
	return session_event(ctx, rec, len);
}

/* A RST on a live connection whose tuple an earlier connection, closed
 * idle, had. tcp_send_reset fires after the RST is out, so the peer's
 * tcp_receive_reset can come first and find the earlier one: still one
 * lost request, the backend's. */
static void peer_rst_before_the_backends(void)
{
	static const char req[] = "POST /race/1-2 HTTP/1.1\r\nHost: x\r\n\r\n";
	struct session *s = new_session();
	struct reset_event peer = { .h.type = EV_RESET,
				    .sk = 99,
				    .sk_kind = SK_KIND_FULL,
				    .sk_state = TCP_ESTABLISHED,
				    .payload_src = SRC_UNACKED,
				    .reason = -1,
				    .payload_len = sizeof(req) - 1 };
	struct reset_event backend = peer;

	http_conn(s, 1, ROLE_SERVER, 8080, 5000, 1000, 1, 0, 1200, CLOSED_LOCAL_FIN);
	peer.t.family = AF_INET;
	peer.t.lport = 5000;
	peer.t.rport = 8080;
	inet_pton(AF_INET, "10.0.0.9", peer.t.laddr);
	inet_pton(AF_INET, "127.0.0.1", peer.t.raddr);
	peer.h.ts_ns = 20000 * MS;
	memcpy(peer.payload, req, sizeof(req) - 1);
	backend.sent = 1;
	backend.sk = 2;
	backend.t = tuple_reversed(&peer.t);
	backend.payload_src = SRC_ARRIVED;
	backend.arrived_ns = peer.h.ts_ns - MS;
	backend.h.ts_ns = peer.h.ts_ns + MS / 10;
	memcpy(backend.payload, req, sizeof(req) - 1);
	session_event(s, &peer, sizeof(peer));
	session_event(s, &backend, sizeof(backend));
	session_finish(s);
	CHECK(lost_requests(s) == 1, "%llu lost", (unsigned long long)lost_requests(s));
	free_session(s);
}

static void apply_header(void *ctx, const struct capture_header *h)
{
	session_use_header(ctx, h);
}

static struct session *replay(const char *path)
{
	struct session *s = new_session();
	struct capture_header h;
	struct capture_end end;

	if (capture_replay(path, &h, &end, apply_header, feed, s)) {
		free_session(s);
		return NULL;
	}
	session_finish(s);
	return s;
}

static char *slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = 0;
	return buf;
}

static void lost_equal_truth(const struct service *svc, const char *truth)
{
	uint64_t k, in_truth = 0;
	const char *p;

	for (k = 0; k < svc->lost && k < LOST_EXAMPLES; k++)
		CHECK(strstr(truth, svc->lost_examples[k]), "%s is not a proxy 502",
		      svc->lost_examples[k]);
	for (p = truth; (p = strstr(p, "\"POST /")); p++)
		in_truth++;
	CHECK(svc->lost == in_truth, "%llu lost, %llu 502s", (unsigned long long)svc->lost,
	      (unsigned long long)in_truth);
}

static void recorded_haproxy_race(void)
{
	const char *truth = slurp("tests/fixtures/haproxy-race.truth.json");
	const char *caps[] = { "tests/fixtures/haproxy-backend.katrace",
			       "tests/fixtures/haproxy-proxy.katrace" };

	for (int c = 0; c < 2; c++) {
		struct session *s = replay(caps[c]);
		const struct service *svc = NULL;
		struct verdict v;

		CHECK(s, "%s", caps[c]);
		for (int i = 0; i < session_analysis(s)->n; i++)
			if (session_analysis(s)->svc[i].lost)
				svc = &session_analysis(s)->svc[i];
		CHECK(svc, "%s: no service lost requests", caps[c]);
		lost_equal_truth(svc, truth);
		analyze_verdict(session_analysis(s), svc, &v);
		CHECK(v.kind == VERDICT_MISMATCH, "%s", verdict_name(v.kind));
		/* Node closes at keepAliveTimeout 200 ms + ~1000 ms */
		CHECK(v.backend.found && fabs(v.backend.value_ms - 1201) < 20, "%f",
		      v.backend.value_ms);
		free_session(s);
	}
}

static void recorded_nginx_control(void)
{
	struct session *s = replay("tests/fixtures/nginx-proxy.katrace");
	const struct service *svc = NULL;
	struct verdict v;

	CHECK(s, "replay");
	for (int i = 0; i < session_analysis(s)->n; i++)
		if (!session_analysis(s)->svc[i].local)
			svc = &session_analysis(s)->svc[i];
	CHECK(svc && svc->lost == 0 && lost_requests(s) == 0, "lost");
	analyze_verdict(session_analysis(s), svc, &v);
	CHECK(v.kind == VERDICT_OK && v.peer.found && fabs(v.peer.value_ms - 1000) < 20, "%s %f",
	      verdict_name(v.kind), v.peer.value_ms);
	free_session(s);
}

/* The page escapes what came from the network, and holds what a replayed
 * race lost. */
static void html_of_a_race(void)
{
	struct analyzer a;
	struct lost l = { .side = LOST_AT_SERVER, .ts_ns = 5 * MS, .idle_ms = 1200 };
	struct session *s = replay("tests/fixtures/haproxy-backend.katrace");
	char *page = NULL;
	size_t len = 0;
	FILE *f;

	analyzer_init(&a, 5000);
	a.keep_timeline = true;
	strcpy(l.request, "GET /<script>alert('x')</script>");
	l.t.lport = 80;
	analyze_lost(&a, &l);
	f = open_memstream(&page, &len);
	CHECK(html_report(f, &a, "a <test>") == 0, "write");
	fclose(f);
	CHECK(!strstr(page, "<script") && strstr(page, "GET /&lt;script&gt;alert(&#39;x&#39;)"),
	      "not escaped");
	CHECK(strstr(page, "a &lt;test&gt;"), "source not escaped");
	free(page);
	analyzer_free(&a);
	CHECK(s, "replay");
	f = open_memstream(&page, &len);
	html_report(f, session_analysis(s), "fixture");
	fclose(f);
	CHECK(strstr(page, "data-verdict='MISMATCH'") && strstr(page, "POST /race/17-10") &&
		      strstr(page, "backend closes at 1.20 s"),
	      "page");
	free(page);
	free_session(s);
}

int main(void)
{
	RUN(one_close_only);
	RUN(clock_ties);
	RUN(two_services_at_once);
	RUN(peer_never_closes);
	RUN(margin_decides);
	RUN(nothing_idle);
	RUN(many_connections);
	RUN(peer_rst_before_the_backends);
	RUN(recorded_haproxy_race);
	RUN(recorded_nginx_control);
	RUN(html_of_a_race);
	return any_failed;
}
