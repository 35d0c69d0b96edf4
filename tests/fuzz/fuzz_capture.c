/* libFuzzer target: `katrace report` on hostile input. The first byte picks
 * the layer: odd, the bytes are the whole file (header checks, gzip); even,
 * they are the decompressed record stream behind a valid header, which
 * drives the session, the join and the analyzer. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include "capture.h"
#include "session.h"

static int feed(void *ctx, const void *rec, size_t len)
{
	struct session *s = ctx;
	uint64_t bad = s->bad_records;

	session_event(s, rec, len);
	return s->bad_records != bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct capture_header h;
	struct capture_end end;
	struct session *s;
	char path[64];
	int fd;

	if (!size)
		return 0;
	fd = memfd_create("capture", 0);
	if (fd < 0)
		return 0;
	if (data[0] & 1) {
		if (write(fd, data + 1, size - 1) < 0)
			goto out;
	} else {
		gzFile gz;

		capture_header_init(&h);
		if (write(fd, &h, sizeof(h)) != sizeof(h))
			goto out;
		gz = gzdopen(dup(fd), "wb1");
		gzwrite(gz, data + 1, size - 1);
		gzclose(gz);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	s = session_new(1024, 5000);
	s->out.f = fopen("/dev/null", "w");
	if (!capture_replay(path, &h, &end, NULL, feed, s))
		session_finish(s);
	session_summary(s, 0, 0);
	fclose(s->out.f);
	session_free(s);
out:
	close(fd);
	return 0;
}
