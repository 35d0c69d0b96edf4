/* Capture files: katrace -w FILE records the event stream, `katrace report
 * FILE` replays it through the same join and analysis.
 *
 * Layout: struct capture_header, uncompressed, then a gzip stream of
 * records, each a little-endian u32 length and that many bytes (an event
 * as the kernel sent it, HTTP payloads cut to their start lines), ended by
 * a capture_end record: a file without it was cut short. */
#ifndef CAPTURE_H
#define CAPTURE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "katrace.h"

#define CAPTURE_MAGIC "KATRACE\x1a"
/* 2: HTTP counted in the kernel, no data events; 3: listener and exit
 * records, a reset's segment flags and socket state (2 is still read,
 * with those unknown) */
#define CAPTURE_VERSION	   3
#define CAPTURE_OLDEST	   2
#define CAPTURE_MAX_RECORD 4096
#define EV_CAPTURE_END	   100 /* only in files */
/* Only in files, as struct owner_event: the live run flushed what it held
 * (EV_TICK), and began following a process (EV_FOLLOW, its tgid), so that
 * a replay decides as the live run did. */
#define EV_TICK	  101
#define EV_FOLLOW 102

struct capture_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	int64_t wall_offset_ns;
	uint32_t flags;		  /* CAPTURE_F_* */
	uint32_t record_sizes[4]; /* conn, reset, end, owner records (0: none) */
	char rst_reasons[MAX_RST_REASONS][RST_REASON_LEN];
};

#define CAPTURE_F_PID_FILTER 1
#define CAPTURE_F_FULL_PATH  2

struct capture_end {
	struct event_hdr h;		      /* type EV_CAPTURE_END */
	uint64_t events, dropped, table_full; /* struct run_counters' */
};

struct capture;

/* NULL after printing why. */
struct capture *capture_create(const char *path, const struct capture_header *h);
int capture_write(struct capture *c, const void *rec, uint32_t len);
/* An event as a capture keeps it: of HTTP, only the start lines (the query
 * cut unless full_path), never headers or bodies. */
int capture_write_conn(struct capture *c, const struct conn_event *e, bool full_path);
int capture_write_reset(struct capture *c, const struct reset_event *e, bool full_path);
/* Writes the end record; returns 0 when everything reached the file. */
int capture_close(struct capture *c, const struct capture_end *end);

void capture_header_init(struct capture_header *h);

typedef int (*record_fn)(void *ctx, const void *rec, size_t len);
typedef void (*header_fn)(void *ctx, const struct capture_header *h);
/* Reads a capture: the header into *h and to on_header (may be NULL) before
 * any record, then each record to fn, and the end record into *end.
 * Returns 0, or -1 after printing a one-line error. */
int capture_replay(const char *path, struct capture_header *h, struct capture_end *end,
		   header_fn on_header, record_fn fn, void *ctx);

#endif
