/* One run's state: takes raw event records (live or replayed), joins them
 * into connections with their HTTP requests, names the requests lost to a
 * close race, and hands finished records to the output. */
#ifndef SESSION_H
#define SESSION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "analyze.h"
#include "conntab.h"
#include "output.h"

#define RECENT_CONNS	4096	/* finished connections kept to match late resets */

struct finished {
	struct conn c;
	struct http_state http;
	uint64_t end_ns;
};

struct session {
	struct output out;
	struct conntab conns;
	bool full_path;		/* keep query strings */
	bool pid_filter;
	bool verbose;		/* every reset, on stderr */	/* resets that match no traced connection are dropped */
	char rst_reasons[MAX_RST_REASONS][RST_REASON_LEN];	/* enum sk_rst_reason names, from BTF */
	struct finished recent[RECENT_CONNS];	/* ring */
	uint32_t recent_next;
	uint64_t events;
	uint64_t bad_records;	/* wrong size or unknown type */
	uint64_t lost_requests;
	uint64_t last_ts_ns;	/* newest kernel stamp seen */
	struct analyzer an;
	uint64_t closes[3][CLOSED_PEER_RST + 1];	/* by enum conn_role, enum closed_by */
	struct capture *cap;	/* -w: where the event stream is recorded */
};

/* Allocates; NULL when out of memory. */
struct session *session_new(uint32_t max_conns, double margin_ms);
/* ring_buffer sample callback shape; always returns 0 so polling goes on
 * (bad records are counted in bad_records). */
int session_event(void *ctx, const void *data, size_t len);
/* End of run: report connections whose close began but whose socket the
 * kernel has not freed yet (a CLOSE_WAIT the application never closed). */
void session_finish(struct session *s);
/* Per service: idle closes of each side, lost requests, verdict and fix. */
void session_summary(struct session *s, uint64_t dropped, uint64_t not_tracked);
void session_free(struct session *s);

#endif
