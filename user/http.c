// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include "http.h"
#include "http_methods.h"

#define METHOD_NAME(name, word) name,
static const char *const methods[] = { HTTP_METHODS(METHOD_NAME) };

static const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *needle)
{
	size_t n = strlen(needle);

	for (; p + n <= end; p++)
		if (!memcmp(p, needle, n))
			return p;
	return NULL;
}

static bool is_target_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f;
}

/* Content-Length of the header block [p, end), or -1. */
static long content_length(const uint8_t *p, const uint8_t *end)
{
	static const char name[] = "content-length:";
	const uint8_t *line = p;

	while (line < end) {
		const uint8_t *eol = find(line, end, "\r\n");
		size_t i, n = (eol ? eol : end) - line;

		if (n > sizeof(name) - 1) {
			for (i = 0; i < sizeof(name) - 1; i++)
				if ((line[i] | 0x20) != name[i])
					break;
			if (i == sizeof(name) - 1) {
				long v = 0;

				for (i = sizeof(name) - 1; i < n && line[i] == ' '; i++)
					;
				for (; i < n && line[i] >= '0' && line[i] <= '9' && v < (1L << 40);
				     i++)
					v = v * 10 + (line[i] - '0');
				return v;
			}
		}
		if (!eol)
			break;
		line = eol + 2;
	}
	return -1;
}

static enum http_kind parse_request(const uint8_t *buf, const uint8_t *end, bool full_path,
				    struct http_msg *m, const uint8_t **after_line)
{
	const uint8_t *p = buf, *target;
	size_t i, mlen = 0, out = 0;
	bool in_query = false;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		mlen = strlen(methods[i]);
		if ((size_t)(end - buf) > mlen && !memcmp(buf, methods[i], mlen) &&
		    buf[mlen] == ' ')
			break;
	}
	if (i == sizeof(methods) / sizeof(methods[0]))
		return HTTP_NONE;
	memcpy(m->method, buf, mlen);
	m->method[mlen] = 0;
	target = p = buf + mlen + 1;
	while (p < end && is_target_char(*p)) {
		if (*p == '?' && !full_path && !in_query) {
			in_query = true;
			if (out + 4 < sizeof(m->path)) {
				memcpy(m->path + out, "?\xe2\x80\xa6", 4); /* "?…" */
				out += 4;
			}
		} else if (!in_query && out < HTTP_MAX_PATH) {
			m->path[out++] = *p;
		}
		p++;
	}
	m->path[out] = 0;
	if (p == target)
		return HTTP_NONE;
	/* The line must go on as " HTTP/1.x\r\n", as far as we have it. */
	if (p < end) {
		static const char proto[] = " HTTP/1.";
		size_t have = end - p < (long)sizeof(proto) - 1 ? (size_t)(end - p) :
								  sizeof(proto) - 1;

		if (memcmp(p, proto, have))
			return HTTP_NONE;
	}
	*after_line = p;
	return HTTP_REQUEST;
}

static enum http_kind parse_response(const uint8_t *buf, const uint8_t *end, struct http_msg *m,
				     const uint8_t **after_line)
{
	/* "HTTP/1.1 200" */
	if (end - buf < 12 || memcmp(buf, "HTTP/1.", 7) || buf[8] != ' ')
		return HTTP_NONE;
	if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
	    buf[11] > '9')
		return HTTP_NONE;
	m->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	*after_line = buf + 12;
	return HTTP_RESPONSE;
}

enum http_kind http_parse(const uint8_t *buf, size_t len, bool full_path, struct http_msg *m,
			  size_t *used)
{
	const uint8_t *end = buf + len, *line_end = NULL, *hdr_end;
	long body;

	memset(m, 0, sizeof(*m));
	*used = 0;
	if (len >= 4 && !memcmp(buf, "HTTP", 4))
		m->kind = parse_response(buf, end, m, &line_end);
	else
		m->kind = parse_request(buf, end, full_path, m, &line_end);
	if (m->kind == HTTP_NONE)
		return HTTP_NONE;

	/* Where the next message would start, if these bytes show it. */
	hdr_end = find(line_end, end, "\r\n\r\n");
	if (!hdr_end)
		return m->kind;
	body = content_length(line_end, hdr_end + 2);
	if (body < 0) {
		/* a request without Content-Length has no body; a response's
		 * end cannot be told from here */
		if (m->kind != HTTP_REQUEST)
			return m->kind;
		body = 0;
	}
	if ((size_t)(hdr_end + 4 - buf) + (size_t)body <= len)
		*used = hdr_end + 4 - buf + body;
	return m->kind;
}

bool http_next(const uint8_t **buf, size_t *len, bool full_path, struct http_msg *m)
{
	size_t used;

	if (!*len || http_parse(*buf, *len, full_path, m, &used) == HTTP_NONE)
		return false;
	if (!used || used >= *len)
		used = *len;
	*buf += used;
	*len -= used;
	return true;
}

void http_request_line(const struct http_msg *m, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s", m->method, m->path);
}
