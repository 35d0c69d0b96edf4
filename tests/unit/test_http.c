/* HTTP/1.x start-line parser: no root, no BPF. */
#include <string.h>
#include "unit.h"
#include "http.h"
#include "http_methods.h"

static enum http_kind parse(const char *s, bool full, struct http_msg *m, size_t *used)
{
	return http_parse((const uint8_t *)s, strlen(s), full, m, used);
}

static void request_line_and_query_redaction(void)
{
	struct http_msg m;
	size_t used;

	CHECK(parse("GET /a/b?token=x HTTP/1.1\r\nHost: h\r\n\r\n", false, &m, &used) ==
		      HTTP_REQUEST,
	      "kind");
	CHECK(!strcmp(m.method, "GET") && !strcmp(m.path, "/a/b?\xe2\x80\xa6"), "%s %s", m.method,
	      m.path);
	CHECK(used == strlen("GET /a/b?token=x HTTP/1.1\r\nHost: h\r\n\r\n"), "used %zu", used);
	parse("GET /a/b?token=x HTTP/1.1\r\n\r\n", true, &m, &used);
	CHECK(!strcmp(m.path, "/a/b?token=x"), "%s", m.path);
}

static void every_method(void)
{
	static const char *const ms[] = { "GET",     "POST",  "PUT",	 "HEAD", "DELETE",
					  "OPTIONS", "PATCH", "CONNECT", "TRACE" };
	struct http_msg m;
	char buf[64];
	size_t used, i;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		snprintf(buf, sizeof(buf), "%s /x HTTP/1.0\r\n\r\n", ms[i]);
		CHECK(parse(buf, false, &m, &used) == HTTP_REQUEST && !strcmp(m.method, ms[i]),
		      "%s", ms[i]);
	}
}

/* The BPF side compares a call's first four bytes with each method's word:
 * the word must be the method's name, followed by its space when shorter. */
static void method_words_match_names(void)
{
#define METHOD_ENTRY(name, word) { name, word },
	static const struct {
		const char *name;
		uint32_t word;
	} m[] = { HTTP_METHODS(METHOD_ENTRY) };
	uint8_t want[5];

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		snprintf((char *)want, sizeof(want), "%-4.4s", m[i].name);
		CHECK((want[0] | want[1] << 8 | want[2] << 16 | (uint32_t)want[3] << 24) ==
			      m[i].word,
		      "%s: %#x", m[i].name, m[i].word);
	}
	CHECK(!memcmp("HTTP", &(uint32_t){ HEAD_HTTP }, 4), "HEAD_HTTP");
}

static void responses(void)
{
	struct http_msg m;
	size_t used;

	CHECK(parse("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad", false, &m, &used) ==
			      HTTP_RESPONSE &&
		      m.status == 502,
	      "status %d", m.status);
	CHECK(used == strlen("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"),
	      "used %zu", used);
	CHECK(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", false, &m,
		    &used) == HTTP_RESPONSE &&
		      used == 0,
	      "a response without length goes on: used %zu", used);
	CHECK(parse("HTTP/1.1 100 Continue\r\n\r\n", false, &m, &used) == HTTP_RESPONSE &&
		      m.status == 100,
	      "1xx");
	CHECK(parse("HTTP/1.1 99x\r\n\r\n", false, &m, &used) == HTTP_NONE, "bad status");
	CHECK(parse("HTTP/2 200\r\n\r\n", false, &m, &used) == HTTP_NONE, "not 1.x");
}

static void not_http(void)
{
	static const uint8_t tls[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00 };
	struct http_msg m;
	size_t used;

	CHECK(http_parse(tls, sizeof(tls), false, &m, &used) == HTTP_NONE, "tls");
	CHECK(parse("GETX / HTTP/1.1\r\n", false, &m, &used) == HTTP_NONE, "GETX");
	CHECK(parse("GET  HTTP/1.1\r\n", false, &m, &used) == HTTP_NONE, "empty target");
	CHECK(parse("GET /x SMTP/1.1\r\n", false, &m, &used) == HTTP_NONE, "protocol");
	CHECK(parse("GET /\x01\x02 HTTP/1.1\r\n", false, &m, &used) == HTTP_NONE, "control bytes");
	CHECK(http_parse((const uint8_t *)"", 0, false, &m, &used) == HTTP_NONE, "empty");
	CHECK(parse("*1\r\n$4\r\nPING\r\n", false, &m, &used) == HTTP_NONE, "redis");
}

static void partial_and_long_lines(void)
{
	char buf[700];
	struct http_msg m;
	size_t used;

	CHECK(parse("GET /just/the/start", false, &m, &used) == HTTP_REQUEST &&
		      !strcmp(m.path, "/just/the/start") && used == 0,
	      "partial %s", m.path);
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', 600);
	strcpy(buf + 605, " HTTP/1.1\r\n\r\n");
	CHECK(parse(buf, false, &m, &used) == HTTP_REQUEST && strlen(m.path) == HTTP_MAX_PATH,
	      "cut at %d: %zu", HTTP_MAX_PATH, strlen(m.path));
}

static void pipelined_and_bodies(void)
{
	const char *p =
		"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\ncontent-length: 4\r\n\r\nbodyGET /3 HTTP/1.1\r\n\r\n";
	const uint8_t *b = (const uint8_t *)p;
	size_t len = strlen(p);
	struct http_msg m;
	const char *want[] = { "/1", "/2", "/3" };
	int n = 0;

	while (http_next(&b, &len, false, &m) && m.kind == HTTP_REQUEST) {
		CHECK(n < 3 && !strcmp(m.path, want[n]), "message %d is %s", n, m.path);
		n++;
	}
	CHECK(n == 3 && len == 0, "found %d, %zu bytes left", n, len);
}

int main(void)
{
	RUN(request_line_and_query_redaction);
	RUN(every_method);
	RUN(method_words_match_names);
	RUN(responses);
	RUN(not_http);
	RUN(partial_and_long_lines);
	RUN(pipelined_and_bodies);
	return any_failed;
}
