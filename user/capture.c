// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "capture.h"

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
	if (gzwrite(c->gz, &le, sizeof(le)) != sizeof(le) ||
	    gzwrite(c->gz, rec, len) != (int)len) {
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

int capture_replay(const char *path, struct capture_header *h, struct capture_end *end,
		   header_fn on_header, record_fn fn, void *ctx)
{
	static uint8_t rec[CAPTURE_MAX_RECORD];
	struct capture_header want;
	char msg[160];
	ssize_t n;
	gzFile gz;
	int fd, r;

	capture_header_init(&want);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
		return fail(path, msg, NULL, -1);
	}
	n = read(fd, h, sizeof(*h));
	if (n < (ssize_t)sizeof(h->magic) || memcmp(h->magic, CAPTURE_MAGIC, sizeof(h->magic)))
		return fail(path, "not a katrace capture file", NULL, fd);
	if (n < (ssize_t)(sizeof(h->magic) + sizeof(h->version)))
		return fail(path, "truncated capture: the header is cut short", NULL, fd);
	if (le32toh(h->version) > CAPTURE_VERSION) {
		snprintf(msg, sizeof(msg), "capture format version %u is newer than this katrace reads (%u)",
			 le32toh(h->version), CAPTURE_VERSION);
		return fail(path, msg, NULL, fd);
	}
	if (le32toh(h->version) < CAPTURE_VERSION) {
		snprintf(msg, sizeof(msg), "capture format version %u is older than this katrace reads "
			 "(%u): replay it with the katrace that wrote it", le32toh(h->version), CAPTURE_VERSION);
		return fail(path, msg, NULL, fd);
	}
	if (n < (ssize_t)sizeof(*h))
		return fail(path, "truncated capture: the header is cut short", NULL, fd);
	if (h->version != CAPTURE_VERSION || h->header_size != sizeof(*h))
		return fail(path, "corrupted capture header", NULL, fd);
	if (memcmp(h->record_sizes, want.record_sizes, sizeof(want.record_sizes)))
		return fail(path, "capture written by a katrace build with other record layouts", NULL, fd);
	for (int i = 0; i < MAX_RST_REASONS; i++)
		h->rst_reasons[i][RST_REASON_LEN - 1] = 0;	/* a hostile file's names end too */
	if (on_header)
		on_header(ctx, h);

	gz = gzdopen(fd, "rb");
	if (!gz)
		return fail(path, "cannot start decompression", NULL, fd);
	for (uint64_t i = 0;; i++) {
		uint32_t len;

		r = read_exact(gz, &len, sizeof(len));
		if (r <= 0)
			return fail(path, r == 0 ? "truncated capture: it ends before its end record"
					    : "truncated or corrupted capture: compressed data ends mid-record",
				    gz, fd);
		len = le32toh(len);
		if (len < sizeof(struct event_hdr) || len > CAPTURE_MAX_RECORD) {
			snprintf(msg, sizeof(msg), "corrupted capture: record %llu has length %u",
				 (unsigned long long)i, len);
			return fail(path, msg, gz, fd);
		}
		if (read_exact(gz, rec, len) != 1)
			return fail(path, "truncated or corrupted capture: compressed data ends mid-record",
				    gz, fd);
		if (((struct event_hdr *)rec)->type == EV_CAPTURE_END) {
			if (len != sizeof(*end))
				return fail(path, "corrupted capture: bad end record", gz, fd);
			memcpy(end, rec, sizeof(*end));
			break;
		}
		if (fn(ctx, rec, len)) {
			snprintf(msg, sizeof(msg), "corrupted capture: record %llu is not a katrace event",
				 (unsigned long long)i);
			return fail(path, msg, gz, fd);
		}
	}
	/* the gzip trailer's CRC is checked when the stream is read to its end */
	{
		uint8_t extra;
		int err;

		if (gzread(gz, &extra, 1) != 0 || (gzerror(gz, &err), err != Z_OK))
			return fail(path, "corrupted capture: data after the end record, or a bad checksum",
				    gz, fd);
	}
	gzclose(gz);
	return 0;
}
