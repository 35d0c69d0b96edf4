// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>
#include "timeline.h"

static uint64_t next_rand(struct timeline *t)
{
	if (!t->rng)
		t->rng = 0x9e3779b97f4a7c15ULL;
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

void timeline_close(struct timeline *t, uint64_t ts_ns, double idle_ms, bool by_backend)
{
	struct close_mark m = { .ts_ns = ts_ns, .idle_ms = idle_ms, .by_backend = by_backend };

	if (!t->closes) {
		t->closes = malloc(MAX_CLOSE_MARKS * sizeof(*t->closes));
		if (!t->closes)
			return;
	}
	t->closes_seen++;
	if (t->ncloses < MAX_CLOSE_MARKS)
		t->closes[t->ncloses++] = m;
	else if (next_rand(t) % t->closes_seen < MAX_CLOSE_MARKS) /* reservoir */
		t->closes[next_rand(t) % MAX_CLOSE_MARKS] = m;
}

struct event_mark *timeline_event(struct timeline *t, enum mark_kind kind, uint64_t ts_ns)
{
	struct event_mark *m;

	t->events_seen++;
	if (!t->events)
		t->events = malloc(MAX_EVENT_MARKS * sizeof(*t->events));
	if (!t->events || t->nevents == MAX_EVENT_MARKS)
		return NULL;
	m = &t->events[t->nevents++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->ts_ns = ts_ns;
	m->idle_ms = -1;
	return m;
}

void timeline_free(struct timeline *t)
{
	free(t->closes);
	free(t->events);
	memset(t, 0, sizeof(*t));
}
