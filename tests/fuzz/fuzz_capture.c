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
	struct run_counters before, after;

	session_counters(ctx, &before);
	session_event(ctx, rec, len);
	session_counters(ctx, &after);
	return after.bad_records != before.bad_records;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session_opts o = { .max_conns = 1024, .margin_ms = 5000 };
	struct capture_header h;
	struct capture_end end;
	struct run_counters n;
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
	o.out.f = fopen("/dev/null", "w");
	s = session_new(&o);
	if (!capture_replay(path, &h, &end, NULL, feed, s))
		session_finish(s);
	session_counters(s, &n);
	session_summary(s, &n);
	fclose(o.out.f);
	session_free(s);
out:
	close(fd);
	return 0;
}
