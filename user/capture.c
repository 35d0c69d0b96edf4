// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "capture.h"
#include "http.h"

struct capture {
	gzFile gz;
	const char *path;
	int failed;
};

void capture_header_init(struct capture_header *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, CAPTURE_MAGIC, sizeof(h->magic));
	h->version = CAPTURE_VERSION;
	h->header_size = sizeof(*h);
	h->record_sizes[0] = sizeof(struct conn_event);
	h->record_sizes[1] = sizeof(struct reset_event);
	h->record_sizes[2] = sizeof(struct capture_end);
	h->record_sizes[3] = sizeof(struct owner_event);
}

struct capture *capture_create(const char *path, const struct capture_header *h)
{
	struct capture *c = calloc(1, sizeof(*c));
	int fd;

	if (!c)
		return NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, h, sizeof(*h)) != sizeof(*h)) {
		fprintf(stderr, "katrace: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(c);
		return NULL;
	}
	c->gz = gzdopen(fd, "wb6");
	if (!c->gz) {
		fprintf(stderr, "katrace: cannot start compression for %s\n", path);
		close(fd);
		free(c);
		return NULL;
	}
	c->path = path;
	return c;
}

int capture_write(struct capture *c, const void *rec, uint32_t len)
{
	uint32_t le = htole32(len);

	if (c->failed)
		return -1;
	if (gzwrite(c->gz, &le, sizeof(le)) != sizeof(le) || gzwrite(c->gz, rec, len) != (int)len) {
		int err;

		fprintf(stderr, "katrace: writing %s failed: %s\n", c->path, gzerror(c->gz, &err));
		c->failed = 1;
		return -1;
	}
	return 0;
}

int capture_close(struct capture *c, const struct capture_end *end)
{
	int ret;

	capture_write(c, end, sizeof(*end));
	ret = gzclose(c->gz) == Z_OK && !c->failed ? 0 : -1;
	if (ret && !c->failed)
		fprintf(stderr, "katrace: finishing %s failed\n", c->path);
	free(c);
	return ret;
}

static int fail(const char *path, const char *what, gzFile gz, int fd)
{
	fprintf(stderr, "katrace: %s: %s\n", path, what);
	if (gz)
		gzclose(gz);
	else if (fd >= 0)
		close(fd);
	return -1;
}

/* 1: read all of it, 0: clean end of stream before any byte, -1: short */
static int read_exact(gzFile gz, void *buf, unsigned n)
{
	int got = gzread(gz, buf, n);

	if (got == (int)n)
		return 1;
	return got == 0 && gzeof(gz) ? 0 : -1;
}

/* The header's checks; NULL when it can be read, else why not (in msg). */
static const char *check_header(struct capture_header *h, ssize_t n, char *msg, size_t len)
{
	struct capture_header want;

	capture_header_init(&want);
	if (n < (ssize_t)sizeof(h->magic) || memcmp(h->magic, CAPTURE_MAGIC, sizeof(h->magic)))
		return "not a katrace capture file";
	if (n < (ssize_t)(sizeof(h->magic) + sizeof(h->version)))
		return "truncated capture: the header is cut short";
	if (le32toh(h->version) > CAPTURE_VERSION) {
		snprintf(msg, len,
			 "capture format version %u is newer than this katrace reads (%u)",
			 le32toh(h->version), CAPTURE_VERSION);
		return msg;
	}
	if (le32toh(h->version) < CAPTURE_OLDEST) {
		snprintf(msg, len,
			 "capture format version %u is older than this katrace reads "
			 "(%u): replay it with the katrace that wrote it",
			 le32toh(h->version), CAPTURE_OLDEST);
		return msg;
	}
	if (n < (ssize_t)sizeof(*h))
		return "truncated capture: the header is cut short";
	if (h->header_size != sizeof(*h))
		return "corrupted capture header";
	if (h->version == 2 && !h->record_sizes[3])
		h->record_sizes[3] = want.record_sizes[3]; /* none in it */
	if (memcmp(h->record_sizes, want.record_sizes, sizeof(want.record_sizes)))
		return "capture written by a katrace build with other record layouts";
	for (int i = 0; i < MAX_RST_REASONS; i++)
		h->rst_reasons[i][RST_REASON_LEN - 1] = 0; /* a hostile file's names end too */
	return NULL;
}

/* The records up to and including the end record; NULL, or why not. */
/* Version 2 left these bytes of a reset unset: unknown, as zero. */
static void upgrade_v2(uint8_t *rec, uint32_t n)
{
	struct reset_event *r = (struct reset_event *)rec;

	if (r->h.type == EV_RESET && n == sizeof(*r)) {
		r->seg_flags = 0;
		r->sk_state = 0;
		r->_pad[0] = 0;
	}
}

static const char *read_records(gzFile gz, uint32_t version, struct capture_end *end, record_fn fn,
				void *ctx, char *msg, size_t len)
{
	static const char *const mid_record =
		"truncated or corrupted capture: compressed data ends mid-record";
	static uint8_t rec[CAPTURE_MAX_RECORD];

	for (uint64_t i = 0;; i++) {
		uint32_t n;
		int r = read_exact(gz, &n, sizeof(n));

		if (r <= 0)
			return r == 0 ? "truncated capture: it ends before its end record" :
					mid_record;
		n = le32toh(n);
		if (n < sizeof(struct event_hdr) || n > CAPTURE_MAX_RECORD) {
			snprintf(msg, len, "corrupted capture: record %llu has length %u",
				 (unsigned long long)i, n);
			return msg;
		}
		if (read_exact(gz, rec, n) != 1)
			return mid_record;
		if (((struct event_hdr *)rec)->type == EV_CAPTURE_END) {
			if (n != sizeof(*end))
				return "corrupted capture: bad end record";
			memcpy(end, rec, sizeof(*end));
			return NULL;
		}
		if (version == 2)
			upgrade_v2(rec, n);
		if (fn(ctx, rec, n)) {
			snprintf(msg, len, "corrupted capture: record %llu is not a katrace event",
				 (unsigned long long)i);
			return msg;
		}
	}
}

/* The gzip trailer's CRC is checked when the stream is read to its end. */
static bool clean_end(gzFile gz)
{
	uint8_t extra;
	int err;

	return gzread(gz, &extra, 1) == 0 && (gzerror(gz, &err), err == Z_OK);
}

int capture_replay(const char *path, struct capture_header *h, struct capture_end *end,
		   header_fn on_header, record_fn fn, void *ctx)
{
	const char *why;
	char msg[160];
	gzFile gz;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
		return fail(path, msg, NULL, -1);
	}
	why = check_header(h, read(fd, h, sizeof(*h)), msg, sizeof(msg));
	if (why)
		return fail(path, why, NULL, fd);
	if (on_header)
		on_header(ctx, h);
	gz = gzdopen(fd, "rb");
	if (!gz)
		return fail(path, "cannot start decompression", NULL, fd);
	why = read_records(gz, h->version, end, fn, ctx, msg, sizeof(msg));
	if (!why && !clean_end(gz))
		why = "corrupted capture: data after the end record, or a bad checksum";
	if (why)
		return fail(path, why, gz, fd);
	gzclose(gz);
	return 0;
}

/* ---- what a capture keeps of HTTP: the start lines ---- */

/* The start line of m as bytes http_parse() reads back to the same m: no
 * headers, no body, the query already cut unless --full-path. */
static uint16_t sanitized(const struct http_msg *m, uint8_t *out, size_t max)
{
	char target[sizeof(m->path)];
	size_t n = strlen(m->path);
	int len;

	memcpy(target, m->path, n + 1);
	if (n >= 4 && !memcmp(target + n - 4, "?\xe2\x80\xa6", 4))
		target[n - 3] = 0; /* "?…" back to "?" */
	if (m->kind == HTTP_REQUEST)
		len = snprintf((char *)out, max, "%s %s HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			       m->method, target);
	else
		len = snprintf((char *)out, max, "HTTP/1.1 %03d\r\nContent-Length: 0\r\n\r\n",
			       m->status);
	return len < 0 || (size_t)len >= max ? 0 : len;
}

/* The request lines in a buffer of request bytes, back to back, as bytes
 * that parse to the same lines: what a capture keeps of last_req. */
static uint16_t sanitized_requests(const uint8_t *buf, size_t len, bool full_path, uint8_t *out,
				   size_t max)
{
	struct http_msg m;
	size_t n = 0;

	while (http_next(&buf, &len, full_path, &m) && m.kind == HTTP_REQUEST) {
		uint16_t k = sanitized(&m, out + n, max - n);

		if (!k)
			break;
		n += k;
	}
	return n;
}

int capture_write_conn(struct capture *cap, const struct conn_event *e, bool full_path)
{
	struct conn_event out = *e;
	size_t len = e->c.http.req_len < MAX_PAYLOAD ? e->c.http.req_len : MAX_PAYLOAD;

	memset(out.c.http.last_req, 0, sizeof(out.c.http.last_req));
	out.c.http.req_len = sanitized_requests(e->c.http.last_req, len, full_path,
						out.c.http.last_req, sizeof(out.c.http.last_req));
	return capture_write(cap, &out, sizeof(out));
}

int capture_write_reset(struct capture *cap, const struct reset_event *e, bool full_path)
{
	struct reset_event out = *e;
	struct http_msg m;
	size_t used;

	out.payload_len = 0;
	if (e->payload_len &&
	    http_parse(e->payload, e->payload_len, full_path, &m, &used) == HTTP_REQUEST)
		out.payload_len = sanitized(&m, out.payload, sizeof(out.payload));
	memset(out.payload + out.payload_len, 0, sizeof(out.payload) - out.payload_len);
	return capture_write(cap, &out, sizeof(out));
}
