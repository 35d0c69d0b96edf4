// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "session.h"

int session_init(struct session *s, uint32_t max_conns)
{
	memset(s, 0, sizeof(*s));
	return conntab_init(&s->conns, max_conns);
}

static size_t record_size(uint32_t type)
{
	switch (type) {
	case EV_CLOSE:
	case EV_DESTROY:
		return sizeof(struct conn_event);
	case EV_RESET:
		return sizeof(struct reset_event);
	case EV_DATA:
		return sizeof(struct data_event);
	}
	return 0;
}

static void on_close(struct session *s, const struct conn_event *e)
{
	struct conn_rec *r = conntab_get(&s->conns, e->c.sk);

	if (!r)
		return;
	r->c = e->c;
	r->closing = true;
}

static void on_destroy(struct session *s, const struct conn_event *e)
{
	struct conn_rec *r = conntab_find(&s->conns, e->c.sk);

	output_close(&s->out, &e->c, e->h.ts_ns);
	if (r)
		conntab_remove(&s->conns, r);
}

int session_event(void *ctx, const void *data, size_t len)
{
	struct session *s = ctx;
	const struct event_hdr *h = data;

	if (len < sizeof(*h) || len < record_size(h->type) || !record_size(h->type)) {
		s->bad_records++;
		return 0;
	}
	s->events++;
	if (h->ts_ns > s->last_ts_ns)
		s->last_ts_ns = h->ts_ns;

	switch (h->type) {
	case EV_CLOSE:
		on_close(s, data);
		break;
	case EV_DESTROY:
		on_destroy(s, data);
		break;
	}
	return 0;
}

static void flush_pending(struct conn_rec *r, void *arg)
{
	struct session *s = arg;

	if (r->closing)
		output_close(&s->out, &r->c, s->last_ts_ns);
	conntab_remove(&s->conns, r);
}

void session_finish(struct session *s)
{
	conntab_each(&s->conns, flush_pending, s);
}

void session_free(struct session *s)
{
	conntab_free(&s->conns);
}
