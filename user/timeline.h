/* What happened when, per service, for the HTML report's pictures: the idle
 * closes of each side (a uniform sample past MAX_CLOSE_MARKS) and each
 * failed request, refused attempt, exit and down window (the first
 * MAX_EVENT_MARKS; the rest are counted). Kept only when a report is asked
 * for. */
#ifndef TIMELINE_H
#define TIMELINE_H
#include <stdbool.h>
#include <stdint.h>
#include "conn.h"

#define MAX_CLOSE_MARKS 8192
#define MAX_EVENT_MARKS 1024

enum mark_kind { MARK_LOST, MARK_REFUSED, MARK_EXIT, MARK_DOWN };

struct close_mark {
	uint64_t ts_ns;
	float idle_ms;
	bool by_backend;
};

struct event_mark {
	uint64_t ts_ns;
	uint64_t end_ns; /* MARK_DOWN: back up; 0 while still down */
	enum mark_kind kind;
	enum lost_cause cause;	       /* MARK_LOST */
	double idle_ms;		       /* MARK_LOST: the connection's idle at close; < 0: unknown */
	const char *reason;	       /* MARK_LOST: the reset reason's name, or NULL */
	char what[HTTP_MAX_PATH + 24]; /* the request line, or who exited */
};

struct timeline {
	struct close_mark *closes;
	uint32_t ncloses;
	uint64_t closes_seen;
	struct event_mark *events;
	uint32_t nevents;
	uint64_t events_seen;
	uint64_t rng;
};

void timeline_close(struct timeline *t, uint64_t ts_ns, double idle_ms, bool by_backend);
/* The next event's slot, NULL past MAX_EVENT_MARKS (or out of memory). */
struct event_mark *timeline_event(struct timeline *t, enum mark_kind kind, uint64_t ts_ns);
void timeline_free(struct timeline *t);

#endif
