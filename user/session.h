/* One run's state: takes raw event records (live or replayed), keeps the
 * connection table, and hands finished records to the output. */
#ifndef SESSION_H
#define SESSION_H
#include <stddef.h>
#include <stdint.h>
#include "conntab.h"
#include "output.h"

struct session {
	struct output out;
	struct conntab conns;
	uint64_t events;
	uint64_t bad_records;	/* wrong size or unknown type */
	uint64_t last_ts_ns;	/* newest kernel stamp seen */
};

int session_init(struct session *s, uint32_t max_conns);
/* ring_buffer sample callback shape; always returns 0 so polling goes on. */
int session_event(void *ctx, const void *data, size_t len);
/* End of run: report connections whose close began but whose socket the
 * kernel has not freed yet (a CLOSE_WAIT the application never closed). */
void session_finish(struct session *s);
void session_free(struct session *s);

#endif
