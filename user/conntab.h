/* User-space connection table: bounded, least recently used evicted first. */
#ifndef CONNTAB_H
#define CONNTAB_H
#include <stdbool.h>
#include <stdint.h>
#include "conn.h"

struct conn_rec {
	struct conn c;		/* the latest the kernel told us */
	bool closing;		/* an EV_CLOSE arrived */
	uint64_t peer_rst_ns;	/* a RST arrived from the peer */
	struct http_state http; /* from the kernel's accounting, at each event */
	bool gave_up;		/* the peer closed it with a request outstanding */
	/* the request line the peer's RST found unacknowledged (this end's
	 * retransmit queue): the proxy's lost request at --level conn */
	char unacked_request[HTTP_MAX_PATH + 24];
	/* internal */
	struct conn_rec *hnext, *lru_prev, *lru_next;
};

struct conntab {
	struct conn_rec **buckets;
	uint32_t nbuckets, count, max;
	uint64_t evictions;
	struct conn_rec *lru_head, *lru_tail; /* head = most recent */
};

int conntab_init(struct conntab *t, uint32_t max);
void conntab_free(struct conntab *t);
struct conn_rec *conntab_find(struct conntab *t, uint64_t sk);
/* Finds or adds; evicts the least recently used entry when full. */
struct conn_rec *conntab_get(struct conntab *t, uint64_t sk);
void conntab_remove(struct conntab *t, struct conn_rec *r);
/* Oldest first; fn may remove the record it is given. */
void conntab_each(struct conntab *t, void (*fn)(struct conn_rec *, void *), void *arg);

#endif
